/* Every vectorscan compile of a load goes through here, to a helper
 * process (base/subproc.h) started when the load begins: a compile can
 * take minutes and gigabytes for a few hostile regexes or a huge list,
 * and cannot be stopped in place, but a process can be killed. The
 * helper runs under the load's time limit (rules.max_compile_seconds)
 * and memory limit (rules.max_compile_memory) and is forked before the
 * rule files are read, so it starts small. It answers each compile with
 * the serialised database, or with vectorscan's error.
 *
 * A request:  op ('S' one pattern, 'M' regexes, 'L' literals), want_db,
 *             u32 count, then per pattern u32 flags, u32 id, u32 length
 *             and the bytes with a NUL.
 * An answer:  'K' and the serialised database (empty without want_db),
 *             or 'E', an i32 expression index and the message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monotime.h"
#include "ruleset_int.h"
#include "strbuf.h"
#include "subproc.h"

/* Literals per database: vectorscan's compile time and memory grow faster
 * than the number of literals (1.8 GB for a million in one database,
 * under 600 MB in shards of this size). */
#define VG_RC_LITERAL_SHARD 250000

/* ---- the helper's side ---- */

static bool take(const char **p, const char *end, void *out, size_t n)
{
    if ((size_t)(end - *p) < n)
        return false;
    memcpy(out, *p, n);
    *p += n;
    return true;
}

typedef struct request {
    char op;
    bool want_db;
    uint32_t n;
    const char **pats;
    unsigned *flags, *ids;
    size_t *lens;
} request_t;

static void request_free(request_t *r)
{
    free(r->pats);
    free(r->flags);
    free(r->ids);
    free(r->lens);
}

/* Points r's patterns into buf; false when malformed or out of memory. */
static bool parse_request(const char *buf, size_t len, request_t *r)
{
    const char *p = buf, *end = buf + len;
    uint8_t want;
    if (!take(&p, end, &r->op, 1) || !take(&p, end, &want, 1) || !take(&p, end, &r->n, 4))
        return false;
    r->want_db = want;
    size_t n = r->n ? r->n : 1;
    r->pats = calloc(n, sizeof(char *));
    r->flags = calloc(n, sizeof(unsigned));
    r->ids = calloc(n, sizeof(unsigned));
    r->lens = calloc(n, sizeof(size_t));
    if (!r->pats || !r->flags || !r->ids || !r->lens)
        return false;
    for (uint32_t i = 0; i < r->n; i++) {
        uint32_t fl, id, l;
        if (!take(&p, end, &fl, 4) || !take(&p, end, &id, 4) || !take(&p, end, &l, 4) ||
            (size_t)(end - p) < (size_t)l + 1)
            return false;
        r->flags[i] = fl;
        r->ids[i] = id;
        r->lens[i] = l;
        r->pats[i] = p;
        p += (size_t)l + 1;
    }
    return true;
}

/* vectorscan reports running out of memory as a compile error; under the
 * memory limit that is the limit's doing, not the pattern's. */
static bool is_nomem(const hs_compile_error_t *ce)
{
    return ce && ce->message &&
           (strstr(ce->message, "allocate memory") || strstr(ce->message, "Allocator"));
}

static int serve_compile(void *arg, const void *req, size_t len, vg_strbuf_t *resp)
{
    (void)arg;
    request_t r = {0};
    hs_database_t *db = NULL;
    hs_compile_error_t *ce = NULL;
    hs_error_t e = HS_INVALID;
    int rc = -1;
    if (!parse_request(req, len, &r) || r.n == 0)
        goto out;
    if (r.op == 'S')
        e = hs_compile(r.pats[0], r.flags[0], HS_MODE_BLOCK, NULL, &db, &ce);
    else if (r.op == 'M')
        e = hs_compile_multi(r.pats, r.flags, r.ids, r.n, HS_MODE_BLOCK, NULL, &db, &ce);
    else
        e = hs_compile_lit_multi(r.pats, r.flags, r.ids, r.lens, r.n, HS_MODE_BLOCK, NULL, &db,
                                 &ce);
    if (e != HS_SUCCESS) {
        if (is_nomem(ce))
            goto out;
        int32_t expr = ce ? ce->expression : -1;
        vg_strbuf_putc(resp, 'E');
        vg_strbuf_append(resp, (const char *)&expr, sizeof(expr));
        vg_strbuf_puts(resp, ce && ce->message ? ce->message : "unknown error");
        rc = 0;
        goto out;
    }
    vg_strbuf_putc(resp, 'K');
    if (r.want_db) {
        char *bytes = NULL;
        size_t blen = 0;
        if (hs_serialize_database(db, &bytes, &blen) != HS_SUCCESS)
            goto out;
        vg_strbuf_append(resp, bytes, blen);
        free(bytes);
    }
    rc = 0;
out:
    if (ce)
        hs_free_compile_error(ce);
    if (db)
        hs_free_database(db);
    request_free(&r);
    return rc;
}

/* ---- the parent's side ---- */

static void put_u32(vg_strbuf_t *sb, uint32_t v)
{
    vg_strbuf_append(sb, (const char *)&v, sizeof(v));
}

static size_t memory_limit_mib(const compiler_t *c)
{
    return c->max_memory / (1024 * 1024);
}

/* Reports why the load stops, once; later compiles fail quietly. */
static void abandon(compiler_t *c, vg_subproc_status_t st, const vg_rc_where_t *w, const char *why)
{
    if (c->abandoned)
        return;
    c->abandoned = true;
    const char *file = w ? w->file : NULL;
    unsigned line = w ? w->line : 0, col = w ? w->col : 0;
    const char *what = w ? w->what : "the rules";
    switch (st) {
    case VG_SUBPROC_TIMEOUT:
        vg_diags_add(c->diags, VG_DIAG_ERROR, file, line, col,
                     "compiling %s took longer than the limit of %u s on a rule load "
                     "(rules.max_compile_seconds; VIGIL_MAX_COMPILE_SECONDS for check, test, "
                     "scan): the compile was stopped",
                     what, c->max_seconds);
        break;
    case VG_SUBPROC_NOMEM:
        vg_diags_add(c->diags, VG_DIAG_ERROR, file, line, col,
                     "compiling %s needed more than the limit of %zu MiB "
                     "(rules.max_compile_memory; VIGIL_MAX_COMPILE_MEMORY for check, test, "
                     "scan): the compile was stopped",
                     what, memory_limit_mib(c));
        break;
    case VG_SUBPROC_CANCELLED:
        vg_diags_add(c->diags, VG_DIAG_ERROR, NULL, 0, 0,
                     "the rule load was cancelled (vigil is stopping)");
        break;
    default:
        vg_diags_add(c->diags, VG_DIAG_ERROR, file, line, col,
                     "cannot compile %s: the compile helper failed: %s", what, why);
        break;
    }
}

bool vg_rc_compile_begin(compiler_t *c, const vg_ruleset_options_t *opts)
{
    c->max_seconds = opts && opts->max_compile_seconds ? opts->max_compile_seconds
                                                       : VG_RULESET_MAX_COMPILE_SECONDS;
    c->max_memory =
        opts && opts->max_compile_memory ? opts->max_compile_memory : VG_RULESET_MAX_COMPILE_MEMORY;
    c->literal_shard =
        opts && opts->literals_per_database ? opts->literals_per_database : VG_RC_LITERAL_SHARD;
    vg_subproc_limits_t lim = {.deadline = vg_monotime() + c->max_seconds,
                               .max_memory = c->max_memory,
                               .in_process = opts && opts->compile_in_process,
                               .cancel = opts ? opts->cancel : NULL,
                               .tick = opts ? opts->tick : NULL,
                               .tick_arg = opts ? opts->tick_arg : NULL};
    c->deadline = lim.deadline;
    c->cancel = lim.cancel;
    char err[256];
    c->hs = vg_subproc_start(serve_compile, NULL, &lim, err, sizeof(err));
    if (!c->hs)
        abandon(c, VG_SUBPROC_ERROR, NULL, err);
    return c->hs != NULL;
}

void vg_rc_compile_end(compiler_t *c)
{
    vg_subproc_stop(c->hs);
    c->hs = NULL;
}

bool vg_rc_in_bounds(compiler_t *c)
{
    if (c->abandoned)
        return false;
    if (c->cancel && *c->cancel)
        abandon(c, VG_SUBPROC_CANCELLED, NULL, "");
    else if (vg_monotime() >= c->deadline)
        abandon(c, VG_SUBPROC_TIMEOUT, NULL, "");
    return !c->abandoned;
}

static void encode(vg_strbuf_t *req, char op, bool want_db, const vg_rc_patterns_t *p)
{
    vg_strbuf_putc(req, op);
    vg_strbuf_putc(req, want_db ? 1 : 0);
    put_u32(req, (uint32_t)p->n);
    for (size_t i = 0; i < p->n; i++) {
        size_t l = p->lens ? p->lens[i] : strlen(p->pats[i]);
        put_u32(req, p->flags[i]);
        put_u32(req, p->ids ? p->ids[i] : 0);
        put_u32(req, (uint32_t)l);
        vg_strbuf_append(req, p->pats[i], l);
        vg_strbuf_putc(req, '\0');
    }
}

/* Reads the helper's answer into *db or the error into *msg. */
static int decode(compiler_t *c, const vg_strbuf_t *resp, const vg_rc_where_t *w,
                  hs_database_t **db, char **msg, int *expr)
{
    if (resp->len >= 1 + sizeof(int32_t) && resp->buf[0] == 'E') {
        int32_t e;
        memcpy(&e, resp->buf + 1, sizeof(e));
        *expr = e;
        *msg = vg_rc_strndup(c, resp->buf + 1 + sizeof(e), resp->len - 1 - sizeof(e));
        return *msg ? 1 : -1;
    }
    if (resp->len < 1 || resp->buf[0] != 'K') {
        abandon(c, VG_SUBPROC_ERROR, w, "a malformed answer");
        return -1;
    }
    if (!db)
        return 0;
    if (hs_deserialize_database(resp->buf + 1, resp->len - 1, db) != HS_SUCCESS) {
        abandon(c, VG_SUBPROC_ERROR, w, "its database could not be read back");
        return -1;
    }
    return 0;
}

int vg_rc_hs_compile(compiler_t *c, const vg_rc_where_t *w, const vg_rc_patterns_t *p,
                     hs_database_t **db, char **msg, int *expr)
{
    *msg = NULL;
    *expr = -1;
    if (db)
        *db = NULL;
    if (c->abandoned || !c->hs)
        return -1;
    if (p->n > UINT32_MAX) {
        abandon(c, VG_SUBPROC_ERROR, w, "too many patterns");
        return -1;
    }
    vg_strbuf_t req, resp;
    vg_strbuf_init(&req);
    vg_strbuf_init(&resp);
    encode(&req, p->literal ? 'L' : p->n == 1 && !p->ids ? 'S' : 'M', db != NULL, p);
    int rc = -1;
    char err[256] = "";
    if (vg_strbuf_failed(&req)) {
        vg_rc_oom(c);
        c->abandoned = true;
    } else {
        vg_subproc_status_t st = vg_subproc_call(c->hs, req.buf, req.len, &resp, err, sizeof(err));
        if (st == VG_SUBPROC_OK)
            rc = decode(c, &resp, w, db, msg, expr);
        else
            abandon(c, st, w, err);
    }
    vg_strbuf_free(&req);
    vg_strbuf_free(&resp);
    return rc;
}
