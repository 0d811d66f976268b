/* The rule compiler: YAML rule files → validated, immutable ruleset.
 *
 * Loading happens in passes so that names are global across files and
 * every error in every file is reported in one run: parse each file;
 * register lists and macros; compile rules (resolving lists and macros on
 * first use, with cycle detection); compile unreferenced macros too, so
 * they are validated; finally build the vectorscan databases from the
 * interned terms. */
#include "vigil/ruleset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine_int.h"
#include "hash.h"
#include "strbuf.h"
#include "vigil/utf8.h"
#include "vigil/yaml.h"

#define MAX_TERM_BYTES 4096
#define MAX_TERMS 2000000
#define MAX_LIST_FILE_BYTES (64u * 1024 * 1024)
#define MAX_COND_DEPTH 64
#define MAX_RULE_FILES 10000

typedef struct item {
    const char *text;
    size_t len;
    vg_yscalar_t type;
    double num;
    bool quoted;
    const char *file;
    unsigned line, col;
    const char *list; /* the list it was written in */
} item_t;

enum { UNSEEN, VISITING, DONE, FAILED };

typedef struct list_def {
    const char *name;
    const vg_ynode_t *node;
    const char *file;
    unsigned line, col;
    int state;
    item_t *items;
    size_t nitems, cap;
} list_def_t;

typedef struct macro_def {
    const char *name;
    const vg_ynode_t *node;
    const char *file;
    unsigned line, col;
    int state;
    vg_cond_t *cond;
} macro_def_t;

typedef struct compiler {
    vg_ruleset_t *rs;
    vg_diags_t *diags;
    vg_ydoc_t **docs;
    const char **doc_names; /* kept for the ruleset's lifetime */
    size_t ndocs;
    list_def_t *lists;
    size_t nlists;
    vg_strmap_t list_idx;
    macro_def_t *macros;
    size_t nmacros;
    vg_strmap_t macro_idx;
    vg_strmap_t term_idx;
    vg_strmap_t bad_terms; /* locations of terms already reported */
    size_t term_cap;
    vg_strmap_t rule_idx;
    vg_strmap_t slot_idx;
    vg_strmap_t topic_idx;
    size_t rule_cap, cond_cap, string_cap;
    const char *const *default_fields;
    size_t n_default_fields;
    uint64_t hash;
    bool oom;
} compiler_t;

static const char *const DEFAULT_TEXT_FIELDS[] = {"title", "body"};
static const char *const SEVERITIES[] = {"info", "low", "medium", "high", "critical"};
static const char *const TOP_KEYS[] = {"lists", "macros", "rules"};
static const char *const RULE_KEYS[] = {"id",        "title",   "description", "severity",
                                        "tags",      "enabled", "match",       "alert",
                                        "tests",     "threshold", "spike",     "first_seen",
                                        "absence",   "throttle", "digest",     "event_time"};
static const char *const ALERT_KEYS[] = {"topic", "summary"};
static const char *const TEST_KEYS[] = {"match", "no_match", "sequences"};
static const char *const SEQ_KEYS[] = {"name", "events", "expect"};
static const char *const EXPECT_KEYS[] = {"at",       "kind",       "group",      "count",
                                          "window_start", "window_end", "suppressed", "field",
                                          "value",    "baseline",   "factor",     "last_seen",
                                          "partial",  "items",      "items_dropped"};
static const char *const AGG_KEYS[] = {"threshold", "spike", "first_seen", "absence"};
static const char *const THRESHOLD_KEYS[] = {"count", "window", "group_by", "max_keys"};
static const char *const SPIKE_KEYS[] = {"factor",   "min_count", "window",
                                         "baseline", "group_by",  "max_keys"};
static const char *const FIRST_SEEN_KEYS[] = {"field", "horizon", "group_by", "max_keys"};
static const char *const ABSENCE_KEYS[] = {"window", "group_by", "max_keys"};
static const char *const THROTTLE_KEYS[] = {"window", "group_by", "max_keys"};
static const char *const DIGEST_KEYS[] = {"window", "group_by", "max_keys", "max_items"};
static const char *const EVENT_TIME_KEYS[] = {"field", "lateness"};
static const char *const COND_KEYS[] = {"all", "any", "not", "macro", "text", "field"};
static const char *const TEXT_KEYS[] = {"any", "all", "fields"};
static const char *const OPS[] = {"eq",  "in",  "prefix", "suffix", "contains", "matches",
                                  "lt",  "lte", "gt",     "gte",    "exists"};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static void err_at(compiler_t *c, const char *file, unsigned line, unsigned col, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));
static void err_at(compiler_t *c, const char *file, unsigned line, unsigned col, const char *fmt,
                   ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    vg_diags_add(c->diags, VG_DIAG_ERROR, file, line, col, "%s", msg);
}

#define ERR(c, file, node, ...) err_at((c), (file), (node)->line, (node)->col, __VA_ARGS__)

static void oom(compiler_t *c)
{
    if (!c->oom)
        vg_diags_add(c->diags, VG_DIAG_ERROR, NULL, 0, 0, "out of memory while loading rules");
    c->oom = true;
}

static char *xstrndup(compiler_t *c, const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) {
        oom(c);
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static bool grow(compiler_t *c, void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *n = realloc(*arr, ncap * elem);
    if (!n) {
        oom(c);
        return false;
    }
    *arr = n;
    *cap = ncap;
    return true;
}

/* Strings the ruleset keeps for its lifetime (file and list names). */
static const char *keep_string(compiler_t *c, const char *s)
{
    vg_ruleset_t *rs = c->rs;
    if (!grow(c, (void **)&rs->strings, &c->string_cap, rs->nstrings + 1, sizeof(char *)))
        return NULL;
    char *d = xstrndup(c, s, strlen(s));
    if (!d)
        return NULL;
    rs->strings[rs->nstrings++] = d;
    return d;
}

static vg_cond_t *new_cond(compiler_t *c, vg_cond_kind_t kind, const char *file,
                           const vg_ynode_t *at)
{
    vg_ruleset_t *rs = c->rs;
    if (!grow(c, (void **)&rs->conds, &c->cond_cap, rs->nconds + 1, sizeof(vg_cond_t *)))
        return NULL;
    vg_cond_t *cd = calloc(1, sizeof(*cd));
    if (!cd) {
        oom(c);
        return NULL;
    }
    cd->kind = kind;
    cd->file = file;
    cd->line = at->line;
    cd->col = at->col;
    vg_strmap_init(&cd->set);
    rs->conds[rs->nconds++] = cd;
    return cd;
}

static void free_cond(vg_cond_t *cd)
{
    free(cd->kids);
    free(cd->name);
    free(cd->terms);
    free(cd->slots);
    free(cd->path_text);
    for (size_t i = 0; i < cd->npath; i++)
        free(cd->path[i]);
    free(cd->path);
    for (size_t i = 0; i < cd->nopds; i++)
        free(cd->opds[i].text);
    free(cd->opds);
    vg_strmap_free(&cd->set);
    free(cd->nums);
    if (cd->re)
        hs_free_database(cd->re);
    free(cd);
}

static void free_path(vg_path_t *p)
{
    free(p->text);
    for (size_t i = 0; i < p->nparts; i++)
        free(p->parts[i]);
    free(p->parts);
}

static void free_rule_state(vg_rule_state_t *st)
{
    if (!st)
        return;
    free_path(&st->field);
    for (size_t i = 0; i < st->ngroup; i++)
        free_path(&st->group[i]);
    free(st->group);
    for (size_t i = 0; i < st->nout_group; i++)
        free_path(&st->out_group[i]);
    free(st->out_group);
    free_path(&st->time_field);
    free(st->summary);
    free(st);
}

static void free_rule(vg_rule_t *r)
{
    if (!r)
        return;
    free_rule_state(r->state);
    for (size_t i = 0; i < r->nseqs; i++) {
        vg_rule_seq_t *q = &r->seqs[i];
        for (size_t j = 0; j < q->nevents; j++)
            free(q->events[j]);
        free(q->events);
        free(q->lens);
        free(q->ev_lines);
        free(q->expect);
        free(q->name);
    }
    free(r->seqs);
    free(r->id);
    free(r->title);
    free(r->description);
    for (size_t i = 0; i < r->ntags; i++)
        free(r->tags[i]);
    free(r->tags);
    free(r->topic);
    free(r->summary);
    for (size_t i = 0; i < r->ntests; i++)
        free(r->tests[i].json);
    free(r->tests);
    free(r);
}

void vg_ruleset_destroy(vg_ruleset_t *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->nrules; i++)
        free_rule(rs->rules[i]);
    free(rs->rules);
    for (size_t i = 0; i < rs->nterms; i++) {
        free(rs->terms[i].text);
        free(rs->terms[i].pattern);
        free(rs->terms[i].words);
    }
    free(rs->terms);
    for (size_t i = 0; i < rs->nslots; i++) {
        free(rs->slot_text[i]);
        for (size_t j = 0; j < rs->slot_npath[i]; j++)
            free(rs->slot_path[i][j]);
        free(rs->slot_path[i]);
    }
    free(rs->slot_text);
    free(rs->slot_path);
    free(rs->slot_npath);
    free(rs->stateful_slots);
    if (rs->db_lit)
        hs_free_database(rs->db_lit);
    if (rs->db_norm)
        hs_free_database(rs->db_norm);
    if (rs->db_user)
        hs_free_database(rs->db_user);
    for (size_t i = 0; i < rs->nconds; i++)
        free_cond(rs->conds[i]);
    free(rs->conds);
    for (size_t i = 0; i < rs->nstrings; i++)
        free(rs->strings[i]);
    free(rs->strings);
    for (size_t i = 0; i < rs->ntopics; i++)
        free(rs->topics[i]);
    free(rs->topics);
    free(rs);
}

/* ---- small node helpers ---- */

static bool is_str(const vg_ynode_t *n)
{
    return n && n->kind == VG_YNODE_SCALAR && n->type == VG_YSCALAR_STRING;
}

/* Checks that every key of map is in keys; reports the others with a
 * suggestion. */
static void check_keys(compiler_t *c, const char *file, const vg_ynode_t *map,
                       const char *const *keys, size_t nkeys, const char *what)
{
    for (size_t i = 0; i < map->count; i++) {
        const vg_ynode_t *k = map->items[2 * i];
        bool ok = false;
        for (size_t j = 0; j < nkeys && !ok; j++)
            ok = strcmp(k->str, keys[j]) == 0;
        if (ok)
            continue;
        const char *s = vg_suggest(k->str, keys, nkeys);
        char allowed[256] = "";
        for (size_t j = 0; j < nkeys; j++) {
            strncat(allowed, keys[j], sizeof(allowed) - strlen(allowed) - 1);
            if (j + 1 < nkeys)
                strncat(allowed, ", ", sizeof(allowed) - strlen(allowed) - 1);
        }
        if (s)
            ERR(c, file, k, "unknown key '%s' in %s (did you mean '%s'?)", k->str, what, s);
        else
            ERR(c, file, k, "unknown key '%s' in %s (allowed: %s)", k->str, what, allowed);
    }
}

static char *get_string(compiler_t *c, const char *file, const vg_ynode_t *map, const char *key,
                        bool required, const vg_ynode_t *where)
{
    const vg_ynode_t *v = vg_ynode_get(map, key);
    if (!v) {
        if (required)
            ERR(c, file, where, "missing required key '%s'", key);
        return NULL;
    }
    if (v->kind != VG_YNODE_SCALAR || v->type == VG_YSCALAR_NULL) {
        ERR(c, file, v, "'%s' must be a string, got %s", key, vg_ynode_describe(v));
        return NULL;
    }
    return xstrndup(c, v->str, v->len);
}

/* ---- lists ---- */

static list_def_t *find_list(compiler_t *c, const char *name)
{
    uint32_t *i = vg_strmap_get(&c->list_idx, name, strlen(name));
    return i ? &c->lists[*i] : NULL;
}

static const char **list_names(compiler_t *c)
{
    const char **names = malloc((c->nlists + 1) * sizeof(char *));
    if (!names)
        return NULL;
    for (size_t i = 0; i < c->nlists; i++)
        names[i] = c->lists[i].name;
    return names;
}

static void unknown_list(compiler_t *c, const char *file, unsigned line, unsigned col,
                         const char *name)
{
    const char **names = list_names(c);
    const char *s = names ? vg_suggest(name, names, c->nlists) : NULL;
    if (s)
        err_at(c, file, line, col, "'$%s' is not a defined list (did you mean '$%s'?)", name, s);
    else
        err_at(c, file, line, col,
               "'$%s' is not a defined list (define it under 'lists:' in any rule file)", name);
    free(names);
}

static bool add_item(compiler_t *c, list_def_t *l, const item_t *it)
{
    if (!grow(c, (void **)&l->items, &l->cap, l->nitems + 1, sizeof(item_t)))
        return false;
    l->items[l->nitems++] = *it;
    return true;
}

static bool resolve_list(compiler_t *c, list_def_t *l);

/* Appends the items of a scalar node: a `$name` splice or a value. */
static bool append_scalar_item(compiler_t *c, list_def_t *l, const vg_ynode_t *n)
{
    if (n->kind != VG_YNODE_SCALAR) {
        ERR(c, l->file, n, "list items must be strings or numbers, got %s", vg_ynode_describe(n));
        return false;
    }
    if (n->type == VG_YSCALAR_STRING && n->str[0] == '$' && n->str[1] != '$') {
        list_def_t *o = find_list(c, n->str + 1);
        if (!o) {
            unknown_list(c, l->file, n->line, n->col, n->str + 1);
            return false;
        }
        if (!resolve_list(c, o)) {
            if (o->state == VISITING)
                ERR(c, l->file, n, "list '%s' includes itself through '$%s' (a cycle)", l->name,
                    o->name);
            return false;
        }
        for (size_t i = 0; i < o->nitems; i++)
            if (!add_item(c, l, &o->items[i]))
                return false;
        return true;
    }
    item_t it = {.text = n->str, .len = n->len, .type = n->type, .num = n->num,
                 .quoted = n->quoted, .file = l->file, .line = n->line, .col = n->col,
                 .list = l->name};
    if (n->type == VG_YSCALAR_STRING && n->str[0] == '$') {
        it.text++; /* "$$x" is the literal "$x" */
        it.len--;
    }
    return add_item(c, l, &it);
}

static char *read_file(const char *path, size_t max, size_t *len, char *err, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errsz, "not a regular file");
        fclose(f);
        return NULL;
    }
    if ((size_t)st.st_size > max) {
        snprintf(err, errsz, "file of %lld bytes exceeds the limit of %zu bytes",
                 (long long)st.st_size, max);
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        snprintf(err, errsz, "out of memory");
        fclose(f);
        return NULL;
    }
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* A list given as {file: PATH}: one term per line, relative to the rule
 * file's folder; blank lines and '#' comments are skipped. */
static bool load_list_file(compiler_t *c, list_def_t *l, const vg_ynode_t *fnode)
{
    if (!is_str(fnode) || fnode->len == 0) {
        ERR(c, l->file, fnode, "'file' must be a path, got %s", vg_ynode_describe(fnode));
        return false;
    }
    char path[4096];
    const char *slash = strrchr(l->file, '/');
    if (fnode->str[0] == '/' || !slash)
        snprintf(path, sizeof(path), "%s", fnode->str);
    else
        snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - l->file), l->file, fnode->str);
    char err[256];
    size_t len = 0;
    char *buf = read_file(path, MAX_LIST_FILE_BYTES, &len, err, sizeof(err));
    if (!buf) {
        ERR(c, l->file, fnode, "list file '%s': %s", path, err);
        return false;
    }
    const char *kept = keep_string(c, path);
    /* The buffer lives as long as the ruleset's strings, because items
     * point into it until the terms are interned. */
    if (!kept || !grow(c, (void **)&c->rs->strings, &c->string_cap, c->rs->nstrings + 1,
                       sizeof(char *))) {
        free(buf);
        return false;
    }
    c->rs->strings[c->rs->nstrings++] = buf;
    c->hash = vg_hash64(c->hash, buf, len);
    if (memchr(buf, '\0', len) || !vg_utf8_valid(buf, len)) {
        ERR(c, l->file, fnode, "list file '%s' is not UTF-8 text", path);
        return false;
    }
    unsigned lineno = 0;
    for (char *p = buf; p < buf + len;) {
        char *e = memchr(p, '\n', (size_t)(buf + len - p));
        if (!e)
            e = buf + len;
        lineno++;
        char *s = p, *t = e;
        while (s < t && isspace((unsigned char)*s))
            s++;
        while (t > s && isspace((unsigned char)t[-1]))
            t--;
        if (t > s && *s != '#') {
            *t = '\0';
            item_t it = {.text = s, .len = (size_t)(t - s), .type = VG_YSCALAR_STRING,
                         .quoted = true, .file = kept, .line = lineno, .col = 1,
                         .list = l->name};
            if (!add_item(c, l, &it))
                return false;
        }
        p = e + 1;
    }
    return true;
}

static bool resolve_list(compiler_t *c, list_def_t *l)
{
    if (l->state == DONE)
        return true;
    if (l->state == FAILED || l->state == VISITING)
        return false;
    l->state = VISITING;
    bool ok = true;
    const vg_ynode_t *n = l->node;
    if (n->kind == VG_YNODE_SEQ) {
        for (size_t i = 0; i < n->count; i++)
            ok = append_scalar_item(c, l, n->items[i]) && ok;
    } else if (n->kind == VG_YNODE_MAP) {
        static const char *const keys[] = {"file"};
        check_keys(c, l->file, n, keys, 1, "a list");
        const vg_ynode_t *f = vg_ynode_get(n, "file");
        if (!f) {
            ERR(c, l->file, n, "list '%s' must be a YAML list or {file: PATH}", l->name);
            ok = false;
        } else {
            ok = load_list_file(c, l, f);
        }
    } else {
        ERR(c, l->file, n, "list '%s' must be a YAML list or {file: PATH}, got %s", l->name,
            vg_ynode_describe(n));
        ok = false;
    }
    l->state = ok ? DONE : FAILED;
    return ok;
}

/* ---- terms ---- */

static long intern_term_once(compiler_t *c, const item_t *it);

/* Interns a keyword term and returns its id, or -1 after reporting. A term
 * written once in a list shared by many conditions is reported once. */
static long intern_term(compiler_t *c, const item_t *it)
{
    char loc[64];
    snprintf(loc, sizeof(loc), "%p:%u:%u", (const void *)it->file, it->line, it->col);
    if (vg_strmap_get(&c->bad_terms, loc, strlen(loc)))
        return -1;
    long id = intern_term_once(c, it);
    if (id < 0 && vg_strmap_put(&c->bad_terms, loc, strlen(loc), 0) < 0)
        oom(c);
    return id;
}

static long intern_term_once(compiler_t *c, const item_t *it)
{
    vg_ruleset_t *rs = c->rs;
    if (it->len == 0) {
        err_at(c, it->file, it->line, it->col, "empty keyword term");
        return -1;
    }
    if (it->len > MAX_TERM_BYTES) {
        err_at(c, it->file, it->line, it->col, "keyword term of %zu bytes exceeds %d bytes",
               it->len, MAX_TERM_BYTES);
        return -1;
    }
    if (memchr(it->text, '\0', it->len)) {
        err_at(c, it->file, it->line, it->col, "keyword term contains a NUL character");
        return -1;
    }
    vg_term_t t = {0};
    vg_strbuf_t key;
    vg_strbuf_init(&key);
    if (it->len >= 2 && it->text[0] == '/' && it->text[it->len - 1] == '/') {
        t.kind = VG_TERM_USER_REGEX;
        t.pattern = xstrndup(c, it->text + 1, it->len - 2);
        t.pattern_len = it->len - 2;
        if (!t.pattern)
            return -1;
        if (t.pattern_len == 0) {
            err_at(c, it->file, it->line, it->col, "empty regular expression '//'");
            free(t.pattern);
            return -1;
        }
        hs_database_t *db = NULL;
        hs_compile_error_t *ce = NULL;
        unsigned fl = HS_FLAG_CASELESS | HS_FLAG_UTF8 | HS_FLAG_UCP;
        if (hs_compile(t.pattern, fl | HS_FLAG_SOM_LEFTMOST, HS_MODE_BLOCK, NULL, &db, &ce) !=
            HS_SUCCESS) {
            hs_free_compile_error(ce);
            ce = NULL;
            if (hs_compile(t.pattern, fl, HS_MODE_BLOCK, NULL, &db, &ce) != HS_SUCCESS) {
                err_at(c, it->file, it->line, it->col,
                       "regular expression /%s/ cannot be compiled: %s (vigil uses the "
                       "Hyperscan subset of PCRE: no back-references or look-behind)",
                       t.pattern, ce && ce->message ? ce->message : "unknown error");
                hs_free_compile_error(ce);
                free(t.pattern);
                return -1;
            }
            t.no_som = true;
        }
        hs_free_database(db);
        vg_strbuf_puts(&key, "R");
        vg_strbuf_append(&key, t.pattern, t.pattern_len);
    } else {
        /* Fold, trim and collapse white space so that the term compares
         * with text normalised the same way at match time. */
        char *folded = malloc(it->len * 3 + 1);
        if (!folded) {
            oom(c);
            return -1;
        }
        size_t n = vg_utf8_fold(it->text, it->len, true, folded, NULL);
        size_t s = 0;
        while (s < n && folded[s] == ' ')
            s++;
        while (n > s && folded[n - 1] == ' ')
            n--;
        if (n == s) {
            err_at(c, it->file, it->line, it->col, "keyword term is only white space");
            free(folded);
            return -1;
        }
        /* Check each word for a '*' suffix. */
        bool inner_star = false, bad = false;
        size_t ws = s;
        for (size_t i = s; i <= n; i++) {
            if (i < n && folded[i] != ' ')
                continue;
            size_t wl = i - ws;
            if (wl == 1 && folded[ws] == '*')
                bad = true;
            else if (folded[i - 1] == '*' && i != n)
                inner_star = true;
            ws = i + 1;
        }
        if (bad) {
            err_at(c, it->file, it->line, it->col,
                   "'*' must end a word (as in 'sanction*'); a lone '*' matches any word");
            free(folded);
            return -1;
        }
        if (!inner_star) {
            t.kind = VG_TERM_LITERAL;
            t.star = folded[n - 1] == '*';
            t.pattern_len = n - s - (t.star ? 1 : 0);
            t.pattern = xstrndup(c, folded + s, t.pattern_len);
            vg_strbuf_puts(&key, t.star ? "P" : "L");
            vg_strbuf_append(&key, folded + s, t.pattern_len);
        } else {
            /* A phrase like "export* ban": vectorscan finds candidates with
             * a byte pattern (a '*' word's tail as "no space"), and the
             * scanner checks each candidate word by word from its start. */
            vg_strbuf_t re;
            vg_strbuf_init(&re);
            for (size_t i = s; i < n; i++) {
                unsigned char ch = (unsigned char)folded[i];
                bool word_end = i + 1 == n || folded[i + 1] == ' ';
                if (ch == '*' && word_end && i > s && folded[i - 1] != ' ') {
                    if (i + 1 != n)
                        vg_strbuf_puts(&re, "[^\\x20]*");
                } else if (ch >= 0x80 || isalnum(ch)) {
                    vg_strbuf_putc(&re, (char)ch);
                } else {
                    vg_strbuf_printf(&re, "\\x%02x", ch);
                }
            }
            t.kind = VG_TERM_NORM_REGEX;
            t.pattern = vg_strbuf_detach(&re, &t.pattern_len);
            t.words = xstrndup(c, folded + s, n - s);
            vg_strbuf_puts(&key, "N");
            vg_strbuf_append(&key, folded + s, n - s);
            hs_database_t *db = NULL;
            hs_compile_error_t *ce = NULL;
            if (t.pattern && hs_compile(t.pattern, HS_FLAG_SOM_LEFTMOST, HS_MODE_BLOCK, NULL, &db,
                                        &ce) != HS_SUCCESS) {
                err_at(c, it->file, it->line, it->col, "keyword phrase cannot be compiled: %s",
                       ce && ce->message ? ce->message : "unknown error");
                hs_free_compile_error(ce);
                free(t.pattern);
                free(t.words);
                free(folded);
                vg_strbuf_free(&key);
                return -1;
            }
            hs_free_database(db);
        }
        free(folded);
        if (!t.pattern)
            return -1;
    }
    if (vg_strbuf_failed(&key)) {
        free(t.pattern);
        vg_strbuf_free(&key);
        oom(c);
        return -1;
    }
    uint32_t *found = vg_strmap_get(&c->term_idx, key.buf, key.len);
    if (found) {
        free(t.words);
        free(t.pattern);
        vg_strbuf_free(&key);
        return (long)*found;
    }
    if (rs->nterms >= MAX_TERMS) {
        err_at(c, it->file, it->line, it->col, "more than %d distinct keyword terms", MAX_TERMS);
        free(t.pattern);
        vg_strbuf_free(&key);
        return -1;
    }
    t.text = xstrndup(c, it->text, it->len);
    if (!t.text ||
        !grow(c, (void **)&rs->terms, &c->term_cap, rs->nterms + 1, sizeof(vg_term_t)) ||
        vg_strmap_put(&c->term_idx, key.buf, key.len, (uint32_t)rs->nterms) < 0) {
        free(t.text);
        free(t.pattern);
        free(t.words);
        vg_strbuf_free(&key);
        oom(c);
        return -1;
    }
    vg_strbuf_free(&key);
    rs->terms[rs->nterms] = t;
    return (long)rs->nterms++;
}

/* Collects TERMS: `$name`, a single string, or a list of strings and
 * `$name` splices, into a temporary list. */
static bool collect_items(compiler_t *c, const char *file, const vg_ynode_t *n, list_def_t *out)
{
    out->file = file;
    out->name = NULL;
    if (n->kind == VG_YNODE_SCALAR) {
        return append_scalar_item(c, out, n);
    }
    if (n->kind != VG_YNODE_SEQ) {
        ERR(c, file, n, "expected a list of terms or '$listname', got %s", vg_ynode_describe(n));
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < n->count; i++)
        ok = append_scalar_item(c, out, n->items[i]) && ok;
    return ok;
}

static int cmp_ref(const void *a, const void *b)
{
    const vg_term_ref_t *x = a, *y = b;
    return x->term < y->term ? -1 : x->term > y->term;
}

static long intern_slot(compiler_t *c, const char *path)
{
    vg_ruleset_t *rs = c->rs;
    size_t len = strlen(path);
    uint32_t *f = vg_strmap_get(&c->slot_idx, path, len);
    if (f)
        return (long)*f;
    size_t i = rs->nslots;
    char **st = realloc(rs->slot_text, (i + 1) * sizeof(char *));
    if (st)
        rs->slot_text = st;
    char ***sp = realloc(rs->slot_path, (i + 1) * sizeof(char **));
    if (sp)
        rs->slot_path = sp;
    size_t *sn = realloc(rs->slot_npath, (i + 1) * sizeof(size_t));
    if (sn)
        rs->slot_npath = sn;
    if (!st || !sp || !sn) {
        oom(c);
        return -1;
    }
    rs->slot_text[i] = xstrndup(c, path, len);
    size_t parts = 1;
    for (const char *p = path; *p; p++)
        parts += *p == '.';
    rs->slot_path[i] = calloc(parts, sizeof(char *));
    rs->slot_npath[i] = 0;
    rs->nslots++;
    if (!rs->slot_text[i] || !rs->slot_path[i]) {
        oom(c);
        return -1;
    }
    const char *p = path;
    for (size_t k = 0; k < parts; k++) {
        const char *e = strchr(p, '.');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        rs->slot_path[i][k] = xstrndup(c, p, l);
        rs->slot_npath[i]++;
        p = e ? e + 1 : p + l;
    }
    if (vg_strmap_put(&c->slot_idx, path, len, (uint32_t)i) < 0) {
        oom(c);
        return -1;
    }
    return (long)i;
}

static bool valid_path(const char *s, size_t len)
{
    if (len == 0 || s[0] == '.' || s[len - 1] == '.' || memchr(s, '\0', len))
        return false;
    return strstr(s, "..") == NULL;
}

static vg_cond_t *compile_text(compiler_t *c, const char *file, const vg_ynode_t *key,
                               const vg_ynode_t *v)
{
    if (v->kind != VG_YNODE_MAP) {
        ERR(c, file, v, "'text' takes a map such as {any: [terms], fields: [title]}, got %s",
            vg_ynode_describe(v));
        return NULL;
    }
    check_keys(c, file, v, TEXT_KEYS, N(TEXT_KEYS), "a text condition");
    const vg_ynode_t *any = vg_ynode_get(v, "any"), *all = vg_ynode_get(v, "all");
    if ((any != NULL) == (all != NULL)) {
        ERR(c, file, v, "a text condition needs exactly one of 'any' or 'all'");
        return NULL;
    }
    vg_cond_t *cd = new_cond(c, VG_COND_TEXT, file, key);
    if (!cd)
        return NULL;
    cd->text_all = all != NULL;
    list_def_t tmp = {0};
    bool ok = collect_items(c, file, any ? any : all, &tmp);
    if (ok && tmp.nitems == 0) {
        ERR(c, file, any ? any : all, "a text condition needs at least one term");
        ok = false;
    }
    if (tmp.nitems) {
        cd->terms = calloc(tmp.nitems, sizeof(vg_term_ref_t));
        if (!cd->terms)
            oom(c), ok = false;
    }
    for (size_t i = 0; cd->terms && i < tmp.nitems; i++) {
        const item_t *it = &tmp.items[i];
        if (it->type != VG_YSCALAR_STRING && it->type != VG_YSCALAR_INT &&
            it->type != VG_YSCALAR_FLOAT) {
            err_at(c, it->file, it->line, it->col, "a keyword term must be a string");
            ok = false;
            continue;
        }
        long id = intern_term(c, it);
        if (id < 0) {
            ok = false;
            continue;
        }
        /* The same term twice in one condition counts once. */
        bool dup = false;
        for (size_t j = 0; j < cd->nterms && !dup; j++)
            dup = cd->terms[j].term == (uint32_t)id;
        if (!dup)
            cd->terms[cd->nterms++] = (vg_term_ref_t){(uint32_t)id, it->list};
    }
    free(tmp.items);
    if (ok)
        qsort(cd->terms, cd->nterms, sizeof(vg_term_ref_t), cmp_ref);
    const vg_ynode_t *fields = vg_ynode_get(v, "fields");
    if (fields && (fields->kind != VG_YNODE_SEQ || fields->count == 0)) {
        ERR(c, file, fields, "'fields' must be a non-empty list of field paths");
        return NULL;
    }
    size_t nf = fields ? fields->count : c->n_default_fields;
    cd->slots = calloc(nf ? nf : 1, sizeof(uint32_t));
    if (!cd->slots) {
        oom(c);
        return NULL;
    }
    for (size_t i = 0; i < nf; i++) {
        const char *p = fields ? fields->items[i]->str : c->default_fields[i];
        if (fields && (!is_str(fields->items[i]) ||
                       !valid_path(fields->items[i]->str, fields->items[i]->len))) {
            ERR(c, file, fields->items[i],
                "field paths are dot-separated names like 'title' or 'doc.title'");
            ok = false;
            continue;
        }
        long s = intern_slot(c, p);
        if (s < 0)
            return NULL;
        bool dup = false;
        for (size_t j = 0; j < cd->nslots && !dup; j++)
            dup = cd->slots[j] == (uint32_t)s;
        if (!dup)
            cd->slots[cd->nslots++] = (uint32_t)s;
    }
    return ok ? cd : NULL;
}

/* ---- field conditions ---- */

static bool set_operand(compiler_t *c, vg_operand_t *o, const char *text, size_t len,
                        vg_yscalar_t type, double num)
{
    switch (type) {
    case VG_YSCALAR_INT:
    case VG_YSCALAR_FLOAT: o->type = VG_OPD_NUMBER; break;
    case VG_YSCALAR_BOOL: o->type = VG_OPD_BOOL; break;
    case VG_YSCALAR_NULL: o->type = VG_OPD_NULL; break;
    default: o->type = VG_OPD_STRING; break;
    }
    o->num = num;
    /* A boolean compares through its text ("True" folds to "true"); null
     * has several spellings and compares as "null". */
    if (type == VG_YSCALAR_NULL) {
        text = "null";
        len = 4;
    }
    o->text = malloc(len * 3 + 1);
    if (!o->text) {
        oom(c);
        return false;
    }
    o->len = vg_utf8_fold(text, len, false, o->text, NULL);
    return true;
}

static hs_database_t *compile_regex(compiler_t *c, const char *file, const vg_ynode_t *n)
{
    if (!is_str(n) || n->len < 3 || n->str[0] != '/' || n->str[n->len - 1] != '/') {
        ERR(c, file, n, "'matches' takes a regular expression written /…/, got %s",
            n->kind == VG_YNODE_SCALAR ? "text without slashes" : vg_ynode_describe(n));
        return NULL;
    }
    char *pat = xstrndup(c, n->str + 1, n->len - 2);
    if (!pat)
        return NULL;
    hs_database_t *db = NULL;
    hs_compile_error_t *ce = NULL;
    if (hs_compile(pat, HS_FLAG_CASELESS | HS_FLAG_UTF8 | HS_FLAG_UCP | HS_FLAG_SINGLEMATCH |
                            HS_FLAG_ALLOWEMPTY,
                   HS_MODE_BLOCK, NULL, &db, &ce) != HS_SUCCESS) {
        ERR(c, file, n,
            "regular expression /%s/ cannot be compiled: %s (vigil uses the Hyperscan subset "
            "of PCRE: no back-references or look-behind)",
            pat, ce && ce->message ? ce->message : "unknown error");
        hs_free_compile_error(ce);
        db = NULL;
    }
    free(pat);
    return db;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static vg_cond_t *compile_field(compiler_t *c, const char *file, const vg_ynode_t *map,
                                const vg_ynode_t *key, const vg_ynode_t *pathn)
{
    if (!is_str(pathn) && !(pathn->kind == VG_YNODE_SCALAR && pathn->type != VG_YSCALAR_NULL)) {
        ERR(c, file, pathn, "'field' takes a field path such as 'title' or 'doc.source', got %s",
            vg_ynode_describe(pathn));
        return NULL;
    }
    if (!valid_path(pathn->str, pathn->len)) {
        ERR(c, file, pathn, "invalid field path '%s' (dot-separated names)", pathn->str);
        return NULL;
    }
    /* Exactly one operator beside 'field'. */
    const vg_ynode_t *opk = NULL, *opv = NULL;
    int op = -1;
    bool ok = true;
    for (size_t i = 0; i < map->count; i++) {
        const vg_ynode_t *k = map->items[2 * i];
        if (strcmp(k->str, "field") == 0)
            continue;
        int found = -1;
        for (size_t j = 0; j < N(OPS); j++)
            if (strcmp(k->str, OPS[j]) == 0)
                found = (int)j;
        if (found < 0) {
            const char *s = vg_suggest(k->str, OPS, N(OPS));
            if (s)
                ERR(c, file, k, "unknown operator '%s' (did you mean '%s'?)", k->str, s);
            else
                ERR(c, file, k,
                    "unknown operator '%s' (operators: eq, in, prefix, suffix, contains, "
                    "matches, lt, lte, gt, gte, exists)",
                    k->str);
            ok = false;
            continue;
        }
        if (opk) {
            ERR(c, file, k, "a field condition takes one operator; '%s' and '%s' both given "
                            "(combine two conditions with 'all')",
                opk->str, k->str);
            ok = false;
            continue;
        }
        opk = k;
        opv = map->items[2 * i + 1];
        op = found;
    }
    if (!ok)
        return NULL;
    if (!opk) {
        ERR(c, file, key,
            "field condition on '%s' needs an operator: eq, in, prefix, suffix, contains, "
            "matches, lt, lte, gt, gte or exists",
            pathn->str);
        return NULL;
    }
    vg_cond_t *cd = new_cond(c, VG_COND_FIELD, file, key);
    if (!cd)
        return NULL;
    cd->op = (vg_op_t)op;
    cd->path_text = xstrndup(c, pathn->str, pathn->len);
    size_t parts = 1;
    for (size_t i = 0; i < pathn->len; i++)
        parts += pathn->str[i] == '.';
    cd->path = calloc(parts, sizeof(char *));
    if (!cd->path_text || !cd->path) {
        oom(c);
        return NULL;
    }
    const char *p = pathn->str;
    for (size_t k = 0; k < parts; k++) {
        const char *e = strchr(p, '.');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (!(cd->path[k] = xstrndup(c, p, l)))
            return NULL;
        cd->npath++;
        p = e ? e + 1 : p + l;
    }
    switch (cd->op) {
    case VG_OP_EXISTS:
        if (opv->kind != VG_YNODE_SCALAR || opv->type != VG_YSCALAR_BOOL) {
            ERR(c, file, opv, "'exists' takes true or false, got %s", vg_ynode_describe(opv));
            return NULL;
        }
        cd->exists = opv->boolean;
        return cd;
    case VG_OP_MATCHES:
        cd->re = compile_regex(c, file, opv);
        return cd->re ? cd : NULL;
    case VG_OP_LT:
    case VG_OP_LTE:
    case VG_OP_GT:
    case VG_OP_GTE:
        if (opv->kind != VG_YNODE_SCALAR ||
            (opv->type != VG_YSCALAR_INT && opv->type != VG_YSCALAR_FLOAT) || isnan(opv->num)) {
            ERR(c, file, opv, "'%s' compares numbers: write a number such as 100 or -2.5e3, got %s%s",
                opk->str, vg_ynode_describe(opv),
                opv->kind == VG_YNODE_SCALAR && opv->quoted ? " (remove the quotes)" : "");
            return NULL;
        }
        cd->opds = calloc(1, sizeof(vg_operand_t));
        if (!cd->opds)
            return oom(c), NULL;
        cd->nopds = 1;
        return set_operand(c, &cd->opds[0], opv->str, opv->len, opv->type, opv->num) ? cd : NULL;
    case VG_OP_IN: {
        if (opv->kind == VG_YNODE_MAP) {
            ERR(c, file, opv, "'in' takes a list or '$listname', got a map");
            return NULL;
        }
        list_def_t tmp = {0};
        if (!collect_items(c, file, opv, &tmp)) {
            free(tmp.items);
            return NULL;
        }
        cd->opds = calloc(tmp.nitems ? tmp.nitems : 1, sizeof(vg_operand_t));
        cd->nums = calloc(tmp.nitems ? tmp.nitems : 1, sizeof(double));
        if (!cd->opds || !cd->nums) {
            free(tmp.items);
            return oom(c), NULL;
        }
        for (size_t i = 0; i < tmp.nitems; i++) {
            const item_t *it = &tmp.items[i];
            vg_operand_t *o = &cd->opds[cd->nopds++];
            if (!set_operand(c, o, it->text, it->len, it->type, it->num)) {
                free(tmp.items);
                return NULL;
            }
            if (o->type == VG_OPD_NUMBER)
                cd->nums[cd->nnums++] = o->num;
            else if (vg_strmap_put(&cd->set, o->text, o->len, 1) < 0) {
                free(tmp.items);
                return oom(c), NULL;
            }
        }
        free(tmp.items);
        qsort(cd->nums, cd->nnums, sizeof(double), cmp_double);
        return cd;
    }
    default:
        /* eq, prefix, suffix, contains: one scalar. */
        if (opv->kind != VG_YNODE_SCALAR) {
            ERR(c, file, opv, "'%s' takes a single value, got %s%s", opk->str,
                vg_ynode_describe(opv), opv->kind == VG_YNODE_SEQ ? " (use 'in' for a list)" : "");
            return NULL;
        }
        cd->opds = calloc(1, sizeof(vg_operand_t));
        if (!cd->opds)
            return oom(c), NULL;
        cd->nopds = 1;
        if (!set_operand(c, &cd->opds[0], opv->str, opv->len, opv->type, opv->num))
            return NULL;
        /* prefix/suffix/contains compare text: a number operand is its
         * text as written (hs_code prefix 8542). */
        if (cd->op != VG_OP_EQ)
            cd->opds[0].type = VG_OPD_STRING;
        if (cd->op != VG_OP_EQ && opv->type == VG_YSCALAR_NULL) {
            ERR(c, file, opv, "'%s' needs a value, got null", opk->str);
            return NULL;
        }
        return cd;
    }
}

/* ---- conditions and macros ---- */

static vg_cond_t *compile_cond(compiler_t *c, const char *file, const vg_ynode_t *n,
                               unsigned depth);

static vg_cond_t *compile_macro(compiler_t *c, macro_def_t *m)
{
    if (m->state == DONE)
        return m->cond;
    if (m->state == FAILED || m->state == VISITING)
        return NULL;
    m->state = VISITING;
    m->cond = compile_cond(c, m->file, m->node, 0);
    m->state = m->cond ? DONE : FAILED;
    return m->cond;
}

static vg_cond_t *compile_cond(compiler_t *c, const char *file, const vg_ynode_t *n,
                               unsigned depth)
{
    if (depth > MAX_COND_DEPTH) {
        ERR(c, file, n, "conditions nest deeper than %d levels", MAX_COND_DEPTH);
        return NULL;
    }
    if (n->kind != VG_YNODE_MAP || n->count == 0) {
        ERR(c, file, n,
            "a condition must be a map with one of all, any, not, macro, text or field; got %s",
            vg_ynode_describe(n));
        return NULL;
    }
    /* The form is the first key that names one; everything else must be
     * an operator of 'field' or is an error. */
    const vg_ynode_t *form = NULL, *value = NULL;
    bool ok = true;
    for (size_t i = 0; i < n->count; i++) {
        const vg_ynode_t *k = n->items[2 * i];
        bool is_form = false;
        for (size_t j = 0; j < N(COND_KEYS) && !is_form; j++)
            is_form = strcmp(k->str, COND_KEYS[j]) == 0;
        if (!is_form)
            continue;
        if (form) {
            ERR(c, file, k,
                "a condition has exactly one of all, any, not, macro, text, field; '%s' and "
                "'%s' both given (wrap them in 'all' or 'any')",
                form->str, k->str);
            ok = false;
            continue;
        }
        form = k;
        value = n->items[2 * i + 1];
    }
    if (!ok)
        return NULL;
    if (!form) {
        const vg_ynode_t *k = n->items[0];
        const char *cands[N(COND_KEYS) + N(OPS)];
        size_t nc = 0;
        for (size_t j = 0; j < N(COND_KEYS); j++)
            cands[nc++] = COND_KEYS[j];
        const char *s = vg_suggest(k->str, cands, nc);
        bool is_op = false;
        for (size_t j = 0; j < N(OPS); j++)
            is_op = is_op || strcmp(k->str, OPS[j]) == 0;
        if (is_op)
            ERR(c, file, k, "operator '%s' needs 'field: PATH' beside it", k->str);
        else if (s)
            ERR(c, file, k, "unknown condition '%s' (did you mean '%s'?)", k->str, s);
        else
            ERR(c, file, k,
                "unknown condition '%s' (a condition is one of all, any, not, macro, text, "
                "field)",
                k->str);
        return NULL;
    }
    if (strcmp(form->str, "field") == 0)
        return compile_field(c, file, n, form, value);
    if (n->count > 1) {
        for (size_t i = 0; i < n->count; i++)
            if (n->items[2 * i] != form)
                ERR(c, file, n->items[2 * i], "unexpected key '%s' beside '%s'",
                    n->items[2 * i]->str, form->str);
        return NULL;
    }
    if (strcmp(form->str, "text") == 0)
        return compile_text(c, file, form, value);
    if (strcmp(form->str, "macro") == 0) {
        if (!is_str(value)) {
            ERR(c, file, value, "'macro' takes a macro name, got %s", vg_ynode_describe(value));
            return NULL;
        }
        uint32_t *mi = vg_strmap_get(&c->macro_idx, value->str, value->len);
        if (!mi) {
            const char **names = malloc((c->nmacros + 1) * sizeof(char *));
            for (size_t i = 0; names && i < c->nmacros; i++)
                names[i] = c->macros[i].name;
            const char *s = names ? vg_suggest(value->str, names, c->nmacros) : NULL;
            if (s)
                ERR(c, file, value, "unknown macro '%s' (did you mean '%s'?)", value->str, s);
            else
                ERR(c, file, value, "unknown macro '%s' (define it under 'macros:')", value->str);
            free(names);
            return NULL;
        }
        macro_def_t *m = &c->macros[*mi];
        if (m->state == VISITING) {
            ERR(c, file, value, "macro '%s' refers to itself (a cycle)", m->name);
            return NULL;
        }
        vg_cond_t *body = compile_macro(c, m);
        if (!body)
            return NULL;
        vg_cond_t *cd = new_cond(c, VG_COND_MACRO, file, form);
        if (!cd)
            return NULL;
        cd->name = xstrndup(c, m->name, strlen(m->name));
        cd->kids = malloc(sizeof(vg_cond_t *));
        if (!cd->kids)
            return oom(c), NULL;
        cd->kids[0] = body;
        cd->nkids = 1;
        return cd;
    }
    if (strcmp(form->str, "not") == 0) {
        vg_cond_t *kid = compile_cond(c, file, value, depth + 1);
        if (!kid)
            return NULL;
        vg_cond_t *cd = new_cond(c, VG_COND_NOT, file, form);
        if (!cd)
            return NULL;
        cd->kids = malloc(sizeof(vg_cond_t *));
        if (!cd->kids)
            return oom(c), NULL;
        cd->kids[0] = kid;
        cd->nkids = 1;
        return cd;
    }
    /* all / any */
    if (value->kind != VG_YNODE_SEQ) {
        ERR(c, file, value, "'%s' takes a list of conditions, got %s", form->str,
            vg_ynode_describe(value));
        return NULL;
    }
    vg_cond_t *cd = new_cond(c, strcmp(form->str, "all") == 0 ? VG_COND_ALL : VG_COND_ANY, file,
                             form);
    if (!cd)
        return NULL;
    cd->kids = calloc(value->count ? value->count : 1, sizeof(vg_cond_t *));
    if (!cd->kids)
        return oom(c), NULL;
    for (size_t i = 0; i < value->count; i++) {
        vg_cond_t *kid = compile_cond(c, file, value->items[i], depth + 1);
        if (!kid)
            ok = false;
        else
            cd->kids[cd->nkids++] = kid;
    }
    return ok ? cd : NULL;
}

/* ---- rules ---- */

/* True when s is a JSON number, allowing a leading '+' (dropped). */
static bool json_number_text(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return false;
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    return i == n;
}

/* Writes a YAML node as JSON (for embedded test events). */
static void node_to_json(vg_strbuf_t *sb, const vg_ynode_t *n)
{
    switch (n->kind) {
    case VG_YNODE_SCALAR:
        switch (n->type) {
        case VG_YSCALAR_NULL: vg_strbuf_puts(sb, "null"); return;
        case VG_YSCALAR_BOOL: vg_strbuf_puts(sb, n->boolean ? "true" : "false"); return;
        case VG_YSCALAR_INT:
        case VG_YSCALAR_FLOAT:
            if (json_number_text(n->str, n->len)) {
                /* As written, so big integers keep every digit. */
                size_t skip = n->str[0] == '+';
                vg_strbuf_append(sb, n->str + skip, n->len - skip);
                return;
            }
            if (isfinite(n->num)) {
                if (n->num == floor(n->num) && fabs(n->num) < 1e15)
                    vg_strbuf_printf(sb, "%.0f", n->num);
                else
                    vg_strbuf_printf(sb, "%.17g", n->num);
                return;
            }
            vg_strbuf_json_string(sb, n->str, n->len);
            return;
        default: vg_strbuf_json_string(sb, n->str, n->len); return;
        }
    case VG_YNODE_SEQ:
        vg_strbuf_putc(sb, '[');
        for (size_t i = 0; i < n->count; i++) {
            if (i)
                vg_strbuf_putc(sb, ',');
            node_to_json(sb, n->items[i]);
        }
        vg_strbuf_putc(sb, ']');
        return;
    case VG_YNODE_MAP:
        vg_strbuf_putc(sb, '{');
        for (size_t i = 0; i < n->count; i++) {
            if (i)
                vg_strbuf_putc(sb, ',');
            vg_strbuf_json_string(sb, n->items[2 * i]->str, n->items[2 * i]->len);
            vg_strbuf_putc(sb, ':');
            node_to_json(sb, n->items[2 * i + 1]);
        }
        vg_strbuf_putc(sb, '}');
        return;
    }
}

static bool compile_sequences(compiler_t *c, const char *file, vg_rule_t *r,
                              const vg_ynode_t *l);

static bool compile_tests(compiler_t *c, const char *file, vg_rule_t *r, const vg_ynode_t *t)
{
    if (t->kind != VG_YNODE_MAP) {
        ERR(c, file, t, "'tests' takes {match: [events], no_match: [events]}, got %s",
            vg_ynode_describe(t));
        return false;
    }
    check_keys(c, file, t, TEST_KEYS, N(TEST_KEYS), "tests");
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        const vg_ynode_t *l = vg_ynode_get(t, pass ? "no_match" : "match");
        if (l && l->kind == VG_YNODE_SEQ)
            total += l->count;
    }
    r->tests = calloc(total ? total : 1, sizeof(vg_rule_test_case_t));
    if (!r->tests)
        return oom(c), false;
    bool ok = true;
    for (int pass = 0; pass < 2; pass++) {
        const vg_ynode_t *l = vg_ynode_get(t, pass ? "no_match" : "match");
        if (!l)
            continue;
        if (l->kind != VG_YNODE_SEQ) {
            ERR(c, file, l, "'%s' takes a list of events, got %s", pass ? "no_match" : "match",
                vg_ynode_describe(l));
            ok = false;
            continue;
        }
        for (size_t i = 0; i < l->count; i++) {
            const vg_ynode_t *ev = l->items[i];
            if (ev->kind != VG_YNODE_MAP) {
                ERR(c, file, ev, "a test event must be a map like {title: \"...\"}, got %s",
                    vg_ynode_describe(ev));
                ok = false;
                continue;
            }
            vg_strbuf_t sb;
            vg_strbuf_init(&sb);
            node_to_json(&sb, ev);
            if (vg_strbuf_failed(&sb)) {
                vg_strbuf_free(&sb);
                return oom(c), false;
            }
            vg_rule_test_case_t *tc = &r->tests[r->ntests++];
            tc->json = vg_strbuf_detach(&sb, &tc->len);
            tc->expect_match = pass == 0;
            tc->line = ev->line;
        }
    }
    const vg_ynode_t *seqs = vg_ynode_get(t, "sequences");
    if (seqs)
        ok = compile_sequences(c, file, r, seqs) && ok;
    return ok;
}

/* ---- stateful rules ---- */

#define MAX_GROUP_PATHS 4
#define MAX_DURATION_MS (INT64_C(3660) * 86400 * 1000)
#define DEFAULT_MAX_KEYS 100000u
#define MAX_MAX_KEYS 10000000u

/* A duration such as 30s, 10m, 24h, 7d or 2w (also 500ms). */
static bool get_duration(compiler_t *c, const char *file, const vg_ynode_t *map, const char *key,
                         bool required, const vg_ynode_t *where, int64_t *ms)
{
    const vg_ynode_t *v = vg_ynode_get(map, key);
    if (!v) {
        if (required)
            ERR(c, file, where, "missing required key '%s' (a duration such as 30s, 10m, 24h "
                                "or 7d)",
                key);
        return !required;
    }
    static const char hint[] = "a duration is a whole number and a unit: ms, s, m, h, d or w "
                               "(30s, 10m, 24h, 7d)";
    if (v->kind != VG_YNODE_SCALAR || v->type == VG_YSCALAR_NULL) {
        ERR(c, file, v, "'%s' takes a duration, got %s (%s)", key, vg_ynode_describe(v), hint);
        return false;
    }
    if (v->type == VG_YSCALAR_INT || v->type == VG_YSCALAR_FLOAT) {
        ERR(c, file, v, "'%s: %s' has no unit (write %ss, %sm, %sh or %sd; units are ms, s, m, "
                        "h, d and w)",
            key, v->str, v->str, v->str, v->str, v->str);
        return false;
    }
    const char *p = v->str;
    int64_t n = 0;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 12) {
        n = n * 10 + (*p++ - '0');
        digits++;
    }
    int64_t unit = 0;
    if (strcmp(p, "ms") == 0)
        unit = 1;
    else if (strcmp(p, "s") == 0)
        unit = 1000;
    else if (strcmp(p, "m") == 0)
        unit = 60000;
    else if (strcmp(p, "h") == 0)
        unit = 3600000;
    else if (strcmp(p, "d") == 0)
        unit = 86400000;
    else if (strcmp(p, "w") == 0)
        unit = 7 * 86400000LL;
    if (digits == 0 || unit == 0) {
        ERR(c, file, v, "'%s: %s' is not a duration (%s)", key, v->str, hint);
        return false;
    }
    if (n > MAX_DURATION_MS / unit) {
        ERR(c, file, v, "'%s: %s' is too long (at most 3660d)", key, v->str);
        return false;
    }
    *ms = n * unit;
    return true;
}

static bool get_uint(compiler_t *c, const char *file, const vg_ynode_t *map, const char *key,
                     uint32_t min, uint32_t max, uint32_t *out)
{
    const vg_ynode_t *v = vg_ynode_get(map, key);
    if (!v)
        return true;
    if (v->kind != VG_YNODE_SCALAR || v->type != VG_YSCALAR_INT || v->num < min ||
        v->num > max) {
        ERR(c, file, v, "'%s' takes a whole number from %u to %u, got %s%s", key, min, max,
            v->kind == VG_YNODE_SCALAR ? v->str : vg_ynode_describe(v),
            v->kind == VG_YNODE_SCALAR && v->quoted ? " (remove the quotes)" : "");
        return false;
    }
    *out = (uint32_t)v->num;
    return true;
}

static bool make_path(compiler_t *c, vg_path_t *p, const char *s, size_t len)
{
    p->text = xstrndup(c, s, len);
    size_t parts = 1;
    for (size_t i = 0; i < len; i++)
        parts += s[i] == '.';
    p->parts = calloc(parts, sizeof(char *));
    if (!p->text || !p->parts) {
        oom(c);
        return false;
    }
    const char *q = p->text;
    for (size_t k = 0; k < parts; k++) {
        const char *e = strchr(q, '.');
        size_t l = e ? (size_t)(e - q) : strlen(q);
        if (!(p->parts[k] = xstrndup(c, q, l)))
            return false;
        p->nparts++;
        q = e ? e + 1 : q + l;
    }
    return true;
}

static bool get_path(compiler_t *c, const char *file, const vg_ynode_t *v, const char *key,
                     vg_path_t *out)
{
    if (!is_str(v) || !valid_path(v->str, v->len)) {
        ERR(c, file, v, "'%s' takes a field path such as 'source' or 'meta.feed', got %s", key,
            v->kind == VG_YNODE_SCALAR ? "an invalid path" : vg_ynode_describe(v));
        return false;
    }
    return make_path(c, out, v->str, v->len);
}

/* group_by: one path or a list of up to MAX_GROUP_PATHS paths. */
static bool get_group(compiler_t *c, const char *file, const vg_ynode_t *map, vg_path_t **out,
                      size_t *n)
{
    const vg_ynode_t *v = vg_ynode_get(map, "group_by");
    if (!v)
        return true;
    const vg_ynode_t *const *items = &v;
    size_t count = 1;
    if (v->kind == VG_YNODE_SEQ) {
        items = v->items;
        count = v->count;
    }
    if (count == 0 || count > MAX_GROUP_PATHS) {
        ERR(c, file, v, "'group_by' takes 1 to %d field paths, got %zu", MAX_GROUP_PATHS, count);
        return false;
    }
    *out = calloc(count, sizeof(vg_path_t));
    if (!*out)
        return oom(c), false;
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        if (!get_path(c, file, items[i], "group_by", &(*out)[*n]))
            ok = false;
        (*n)++;
    }
    return ok;
}

static void group_text(char *buf, size_t size, const vg_path_t *g, size_t n)
{
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, size - l, "%s%s", i ? "," : " by ", g[i].text);
    }
}

static void duration_text(char *buf, size_t size, int64_t ms)
{
    static const struct {
        int64_t ms;
        const char *u;
    } units[] = {{7 * 86400000LL, "w"}, {86400000, "d"}, {3600000, "h"}, {60000, "m"},
                 {1000, "s"},           {1, "ms"}};
    for (size_t i = 0; i < N(units); i++)
        if (ms % units[i].ms == 0) {
            snprintf(buf, size, "%lld%s", (long long)(ms / units[i].ms), units[i].u);
            return;
        }
}

/* Parses threshold / spike / first_seen / absence, throttle / digest and
 * event_time of rule node n into r->state (left NULL for a stateless
 * rule). */
static bool compile_state(compiler_t *c, const char *file, vg_rule_t *r, const vg_ynode_t *n)
{
    const vg_ynode_t *agg = NULL, *aggk = NULL;
    bool ok = true;
    for (size_t i = 0; i < n->count; i++) {
        const vg_ynode_t *k = n->items[2 * i];
        for (size_t j = 0; j < N(AGG_KEYS); j++) {
            if (strcmp(k->str, AGG_KEYS[j]) != 0)
                continue;
            if (agg) {
                ERR(c, file, k, "a rule takes one of threshold, spike, first_seen and absence; "
                                "'%s' and '%s' both given (write two rules)",
                    aggk->str, k->str);
                ok = false;
            } else {
                aggk = k;
                agg = n->items[2 * i + 1];
            }
        }
    }
    const vg_ynode_t *thr = vg_ynode_get(n, "throttle"), *dig = vg_ynode_get(n, "digest");
    const vg_ynode_t *evt = vg_ynode_get(n, "event_time");
    if (!agg && !thr && !dig) {
        if (evt) {
            ERR(c, file, evt, "'event_time' is only for stateful rules (with threshold, spike, "
                              "first_seen, absence, throttle or digest)");
            return false;
        }
        return ok;
    }
    vg_rule_state_t *st = calloc(1, sizeof(*st));
    if (!st)
        return oom(c), false;
    r->state = st;
    st->max_keys = DEFAULT_MAX_KEYS;
    st->out_max_keys = DEFAULT_MAX_KEYS;
    st->digest_max_items = 100;
    if (thr && dig) {
        ERR(c, file, dig, "a rule takes 'throttle' or 'digest', not both");
        ok = false;
    }
    char sum[512] = "", g[256], d1[32], d2[32];
    if (agg) {
        if (agg->kind != VG_YNODE_MAP) {
            ERR(c, file, agg, "'%s' takes a map such as {count: 3, window: 24h, group_by: "
                              "entities}, got %s",
                aggk->str, vg_ynode_describe(agg));
            ok = false;
            goto event_time;
        }
        const char *kind = aggk->str;
        if (strcmp(kind, "threshold") == 0) {
            st->kind = VG_AGG_THRESHOLD;
            check_keys(c, file, agg, THRESHOLD_KEYS, N(THRESHOLD_KEYS), "threshold");
            if (!vg_ynode_get(agg, "count")) {
                ERR(c, file, agg, "threshold needs 'count' (how many events within the window)");
                ok = false;
            }
            ok = get_uint(c, file, agg, "count", 1, 100000, &st->count) && ok;
            ok = get_duration(c, file, agg, "window", true, agg, &st->window_ms) && ok;
        } else if (strcmp(kind, "spike") == 0) {
            st->kind = VG_AGG_SPIKE;
            check_keys(c, file, agg, SPIKE_KEYS, N(SPIKE_KEYS), "spike");
            const vg_ynode_t *f = vg_ynode_get(agg, "factor");
            if (!f || f->kind != VG_YNODE_SCALAR ||
                (f->type != VG_YSCALAR_INT && f->type != VG_YSCALAR_FLOAT) || !(f->num >= 1) ||
                f->num > 1e6) {
                ERR(c, file, f ? f : agg,
                    "spike needs 'factor': a number of at least 1 (3 means three times the "
                    "baseline)");
                ok = false;
            } else {
                st->factor = f->num;
            }
            st->min_count = 1;
            st->baseline = 7;
            if (!vg_ynode_get(agg, "min_count")) {
                ERR(c, file, agg, "spike needs 'min_count' (the fewest events that can be a "
                                  "spike, so that 0 -> 2 is not one)");
                ok = false;
            }
            ok = get_uint(c, file, agg, "min_count", 1, 10000000, &st->min_count) && ok;
            ok = get_uint(c, file, agg, "baseline", 1, 60, &st->baseline) && ok;
            ok = get_duration(c, file, agg, "window", true, agg, &st->window_ms) && ok;
        } else if (strcmp(kind, "first_seen") == 0) {
            st->kind = VG_AGG_FIRST_SEEN;
            check_keys(c, file, agg, FIRST_SEEN_KEYS, N(FIRST_SEEN_KEYS), "first_seen");
            const vg_ynode_t *f = vg_ynode_get(agg, "field");
            if (!f) {
                ERR(c, file, agg, "first_seen needs 'field' (the field whose new values to "
                                  "report)");
                ok = false;
            } else {
                ok = get_path(c, file, f, "field", &st->field) && ok;
            }
            ok = get_duration(c, file, agg, "horizon", true, agg, &st->window_ms) && ok;
        } else {
            st->kind = VG_AGG_ABSENCE;
            check_keys(c, file, agg, ABSENCE_KEYS, N(ABSENCE_KEYS), "absence");
            ok = get_duration(c, file, agg, "window", true, agg, &st->window_ms) && ok;
        }
        if (st->window_ms <= 0 && ok) {
            ERR(c, file, agg, "the window must be longer than 0");
            ok = false;
        }
        ok = get_group(c, file, agg, &st->group, &st->ngroup) && ok;
        ok = get_uint(c, file, agg, "max_keys", 1, MAX_MAX_KEYS, &st->max_keys) && ok;
    }
    if (thr || dig) {
        const vg_ynode_t *o = thr ? thr : dig;
        const char *what = thr ? "throttle" : "digest";
        st->out = thr ? VG_OUT_THROTTLE : VG_OUT_DIGEST;
        if (o->kind != VG_YNODE_MAP) {
            ERR(c, file, o, "'%s' takes a map such as {window: 1h}, got %s", what,
                vg_ynode_describe(o));
            ok = false;
        } else {
            if (thr)
                check_keys(c, file, o, THROTTLE_KEYS, N(THROTTLE_KEYS), what);
            else
                check_keys(c, file, o, DIGEST_KEYS, N(DIGEST_KEYS), what);
            ok = get_duration(c, file, o, "window", true, o, &st->out_window_ms) && ok;
            if (st->out_window_ms <= 0 && ok) {
                ERR(c, file, o, "the window must be longer than 0");
                ok = false;
            }
            st->out_group_set = vg_ynode_get(o, "group_by") != NULL;
            ok = get_group(c, file, o, &st->out_group, &st->nout_group) && ok;
            ok = get_uint(c, file, o, "max_keys", 1, MAX_MAX_KEYS, &st->out_max_keys) && ok;
            if (dig)
                ok = get_uint(c, file, o, "max_items", 1, 10000, &st->digest_max_items) && ok;
        }
        if (agg && st->out_group_set) {
            ERR(c, file, vg_ynode_get(o, "group_by"),
                "'%s' of a %s rule works per the %s's group_by; remove this group_by", what,
                aggk->str, aggk->str);
            ok = false;
        }
        if (dig && agg) {
            ERR(c, file, dig, "'digest' collects the events of a plain rule; a %s rule already "
                              "sends one alert per group (use 'throttle' to limit those)",
                aggk->str);
            ok = false;
        }
        if (thr && agg && st->kind == VG_AGG_ABSENCE) {
            ERR(c, file, thr, "an absence rule already alerts once per silence; 'throttle' "
                              "would change nothing");
            ok = false;
        }
    }
event_time:
    if (evt) {
        if (evt->kind != VG_YNODE_MAP) {
            ERR(c, file, evt, "'event_time' takes {field: PATH, lateness: DURATION}, got %s",
                vg_ynode_describe(evt));
            ok = false;
        } else {
            check_keys(c, file, evt, EVENT_TIME_KEYS, N(EVENT_TIME_KEYS), "event_time");
            const vg_ynode_t *f = vg_ynode_get(evt, "field");
            if (f)
                ok = get_path(c, file, f, "field", &st->time_field) && ok;
            ok = get_duration(c, file, evt, "lateness", false, evt, &st->lateness_ms) && ok;
        }
    }
    if (!ok)
        return false;
    /* The one-line description doubles as the canonical form hashed into
     * the fingerprint that snapshots are matched against. */
    size_t l = 0;
    if (st->kind != VG_AGG_NONE) {
        group_text(g, sizeof(g), st->group, st->ngroup);
        duration_text(d1, sizeof(d1), st->window_ms);
        switch (st->kind) {
        case VG_AGG_THRESHOLD:
            snprintf(sum, sizeof(sum), "threshold %u in %s%s", st->count, d1, g);
            break;
        case VG_AGG_SPIKE:
            snprintf(sum, sizeof(sum), "spike x%g (min %u) per %s over %u windows%s", st->factor,
                     st->min_count, d1, st->baseline, g);
            break;
        case VG_AGG_FIRST_SEEN:
            snprintf(sum, sizeof(sum), "first_seen %s within %s%s", st->field.text, d1, g);
            break;
        default: snprintf(sum, sizeof(sum), "absence %s%s", d1, g); break;
        }
        l = strlen(sum);
    }
    if (st->out != VG_OUT_EACH) {
        group_text(g, sizeof(g), st->out_group_set ? st->out_group : st->group,
                   st->out_group_set ? st->nout_group : st->ngroup);
        duration_text(d2, sizeof(d2), st->out_window_ms);
        snprintf(sum + l, sizeof(sum) - l, "%s%s %s%s", l ? "; " : "",
                 st->out == VG_OUT_THROTTLE ? "throttle" : "digest", d2, g);
    }
    st->summary = xstrndup(c, sum, strlen(sum));
    char canon[1024];
    snprintf(canon, sizeof(canon), "%s|%s|%lld|%u|%u|%u|%u", sum,
             st->time_field.text ? st->time_field.text : "", (long long)st->lateness_ms,
             st->max_keys, st->out_max_keys, st->digest_max_items, (unsigned)st->kind);
    st->fingerprint = vg_hash_finish(vg_hash64(VG_HASH_INIT, canon, strlen(canon)));
    return st->summary != NULL;
}

/* tests.sequences: [{name, events: [event…], expect: [alert…]}] */
static bool compile_sequences(compiler_t *c, const char *file, vg_rule_t *r,
                              const vg_ynode_t *l)
{
    if (!r->state) {
        ERR(c, file, l, "'sequences' test stateful rules; this rule has no threshold, spike, "
                        "first_seen, absence, throttle or digest (use match/no_match)");
        return false;
    }
    if (l->kind != VG_YNODE_SEQ) {
        ERR(c, file, l, "'sequences' takes a list of {events: [...], expect: [...]}, got %s",
            vg_ynode_describe(l));
        return false;
    }
    r->seqs = calloc(l->count ? l->count : 1, sizeof(vg_rule_seq_t));
    if (!r->seqs)
        return oom(c), false;
    bool ok = true;
    for (size_t i = 0; i < l->count; i++) {
        const vg_ynode_t *q = l->items[i];
        if (q->kind != VG_YNODE_MAP) {
            ERR(c, file, q, "a sequence is a map {name, events, expect}, got %s",
                vg_ynode_describe(q));
            ok = false;
            continue;
        }
        check_keys(c, file, q, SEQ_KEYS, N(SEQ_KEYS), "a test sequence");
        vg_rule_seq_t *s = &r->seqs[r->nseqs++];
        s->line = q->line;
        s->name = get_string(c, file, q, "name", false, q);
        const vg_ynode_t *evs = vg_ynode_get(q, "events"), *exp = vg_ynode_get(q, "expect");
        if (!evs || evs->kind != VG_YNODE_SEQ || evs->count == 0) {
            ERR(c, file, evs ? evs : q, "a sequence needs 'events': a non-empty list of events");
            ok = false;
            continue;
        }
        if (!exp || exp->kind != VG_YNODE_SEQ) {
            ERR(c, file, exp ? exp : q,
                "a sequence needs 'expect': the list of alerts the events must raise, in order "
                "(write 'expect: []' for none)");
            ok = false;
            continue;
        }
        s->events = calloc(evs->count, sizeof(char *));
        s->lens = calloc(evs->count, sizeof(size_t));
        s->ev_lines = calloc(evs->count, sizeof(unsigned));
        if (!s->events || !s->lens || !s->ev_lines)
            return oom(c), false;
        for (size_t j = 0; j < evs->count; j++) {
            const vg_ynode_t *ev = evs->items[j];
            if (ev->kind != VG_YNODE_MAP) {
                ERR(c, file, ev, "a test event must be a map like {title: \"...\"}, got %s",
                    vg_ynode_describe(ev));
                ok = false;
                continue;
            }
            vg_strbuf_t sb;
            vg_strbuf_init(&sb);
            node_to_json(&sb, ev);
            if (vg_strbuf_failed(&sb))
                return vg_strbuf_free(&sb), oom(c), false;
            s->ev_lines[s->nevents] = ev->line;
            s->events[s->nevents] = vg_strbuf_detach(&sb, &s->lens[s->nevents]);
            s->nevents++;
        }
        for (size_t j = 0; j < exp->count; j++) {
            if (exp->items[j]->kind != VG_YNODE_MAP) {
                ERR(c, file, exp->items[j], "an expected alert is a map such as {count: 3, "
                                            "group: SMIC}, got %s",
                    vg_ynode_describe(exp->items[j]));
                ok = false;
                continue;
            }
            size_t before = vg_diags_errors(c->diags);
            check_keys(c, file, exp->items[j], EXPECT_KEYS, N(EXPECT_KEYS), "an expected alert");
            ok = ok && vg_diags_errors(c->diags) == before;
        }
        vg_strbuf_t sb;
        vg_strbuf_init(&sb);
        node_to_json(&sb, exp);
        if (vg_strbuf_failed(&sb))
            return vg_strbuf_free(&sb), oom(c), false;
        s->expect = vg_strbuf_detach(&sb, &s->expect_len);
        s->expect_line = exp->line;
    }
    return ok;
}

static bool valid_rule_id(const char *s)
{
    if (!(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
        return false;
    for (const char *p = s; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '.' ||
              *p == '_' || *p == '-'))
            return false;
    return strlen(s) <= 200;
}

static void add_topic(compiler_t *c, const char *topic)
{
    vg_ruleset_t *rs = c->rs;
    int r = vg_strmap_put(&c->topic_idx, topic, strlen(topic), 0);
    if (r < 0) {
        oom(c);
        return;
    }
    if (r == 0)
        return;
    char **t = realloc(rs->topics, (rs->ntopics + 1) * sizeof(char *));
    if (!t)
        return oom(c);
    rs->topics = t;
    rs->topics[rs->ntopics] = xstrndup(c, topic, strlen(topic));
    if (rs->topics[rs->ntopics])
        rs->ntopics++;
}

static bool valid_topic(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 249 || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
        return false;
    for (const char *p = t; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

static void compile_rule(compiler_t *c, const char *file, const vg_ynode_t *n)
{
    if (n->kind != VG_YNODE_MAP) {
        ERR(c, file, n, "each rule must be a map with at least 'id' and 'match', got %s",
            vg_ynode_describe(n));
        return;
    }
    check_keys(c, file, n, RULE_KEYS, N(RULE_KEYS), "a rule");
    vg_rule_t *r = calloc(1, sizeof(*r));
    if (!r)
        return oom(c);
    bool ok = true;
    r->file = file;
    r->line = n->line;
    r->enabled = true;
    r->id = get_string(c, file, n, "id", true, n);
    const vg_ynode_t *idn = vg_ynode_get(n, "id");
    if (!r->id) {
        ok = false;
    } else if (!valid_rule_id(r->id)) {
        ERR(c, file, idn,
            "rule id '%s' must be lower-case letters, digits, '.', '_' or '-' (e.g. "
            "'chipmaker-export-curb')",
            r->id);
        ok = false;
    } else {
        uint32_t *prev = vg_strmap_get(&c->rule_idx, r->id, strlen(r->id));
        if (prev) {
            const vg_rule_t *o = c->rs->rules[*prev];
            ERR(c, file, idn, "duplicate rule id '%s' (first defined at %s:%u)", r->id, o->file,
                o->line);
            ok = false;
        }
    }
    r->title = get_string(c, file, n, "title", false, n);
    r->description = get_string(c, file, n, "description", false, n);
    r->severity = "medium";
    const vg_ynode_t *sev = vg_ynode_get(n, "severity");
    if (sev) {
        bool found = false;
        for (size_t i = 0; i < N(SEVERITIES); i++)
            if (is_str(sev) && strcmp(sev->str, SEVERITIES[i]) == 0) {
                r->severity = SEVERITIES[i];
                found = true;
            }
        if (!found) {
            const char *s = sev->kind == VG_YNODE_SCALAR
                                ? vg_suggest(sev->str, SEVERITIES, N(SEVERITIES))
                                : NULL;
            if (s)
                ERR(c, file, sev, "unknown severity '%s' (did you mean '%s'?)", sev->str, s);
            else
                ERR(c, file, sev,
                    "severity must be one of info, low, medium, high, critical");
            ok = false;
        }
    }
    const vg_ynode_t *tags = vg_ynode_get(n, "tags");
    if (tags) {
        if (tags->kind != VG_YNODE_SEQ) {
            ERR(c, file, tags, "'tags' takes a list of strings, got %s", vg_ynode_describe(tags));
            ok = false;
        } else {
            r->tags = calloc(tags->count ? tags->count : 1, sizeof(char *));
            if (!r->tags)
                oom(c), ok = false;
            for (size_t i = 0; r->tags && i < tags->count; i++) {
                const vg_ynode_t *t = tags->items[i];
                if (t->kind != VG_YNODE_SCALAR || t->type == VG_YSCALAR_NULL) {
                    ERR(c, file, t, "a tag must be a string, got %s", vg_ynode_describe(t));
                    ok = false;
                    continue;
                }
                r->tags[r->ntags++] = xstrndup(c, t->str, t->len);
            }
        }
    }
    const vg_ynode_t *en = vg_ynode_get(n, "enabled");
    if (en) {
        if (en->kind != VG_YNODE_SCALAR || en->type != VG_YSCALAR_BOOL) {
            ERR(c, file, en, "'enabled' takes true or false, got %s", vg_ynode_describe(en));
            ok = false;
        } else {
            r->enabled = en->boolean;
        }
    }
    const vg_ynode_t *alert = vg_ynode_get(n, "alert");
    if (alert) {
        if (alert->kind != VG_YNODE_MAP) {
            ERR(c, file, alert, "'alert' takes {topic: NAME, summary: TEMPLATE}, got %s",
                vg_ynode_describe(alert));
            ok = false;
        } else {
            check_keys(c, file, alert, ALERT_KEYS, N(ALERT_KEYS), "alert");
            r->topic = get_string(c, file, alert, "topic", false, alert);
            r->summary = get_string(c, file, alert, "summary", false, alert);
            if (r->topic && !valid_topic(r->topic)) {
                ERR(c, file, vg_ynode_get(alert, "topic"),
                    "'%s' is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at "
                    "most 249)",
                    r->topic);
                ok = false;
            }
            if (r->topic && ok)
                add_topic(c, r->topic);
        }
    }
    const vg_ynode_t *match = vg_ynode_get(n, "match");
    if (!match) {
        ERR(c, file, n, "rule '%s' has no 'match' condition", r->id ? r->id : "?");
        ok = false;
    } else {
        r->match = compile_cond(c, file, match, 0);
        ok = r->match && ok;
    }
    ok = compile_state(c, file, r, n) && ok;
    const vg_ynode_t *tests = vg_ynode_get(n, "tests");
    if (tests)
        ok = compile_tests(c, file, r, tests) && ok;
    if (!r->title && r->id)
        r->title = xstrndup(c, r->id, strlen(r->id));
    vg_ruleset_t *rs = c->rs;
    if (!ok || c->oom ||
        !grow(c, (void **)&rs->rules, &c->rule_cap, rs->nrules + 1, sizeof(vg_rule_t *))) {
        free_rule(r);
        return;
    }
    if (vg_strmap_put(&c->rule_idx, r->id, strlen(r->id), (uint32_t)rs->nrules) < 0) {
        free_rule(r);
        return oom(c);
    }
    rs->rules[rs->nrules++] = r;
}

/* ---- files ---- */

static void register_defs(compiler_t *c, const char *file, const vg_ynode_t *root)
{
    check_keys(c, file, root, TOP_KEYS, N(TOP_KEYS), "a rule file");
    const vg_ynode_t *lists = vg_ynode_get(root, "lists");
    if (lists && lists->kind != VG_YNODE_MAP &&
        !(lists->kind == VG_YNODE_SCALAR && lists->type == VG_YSCALAR_NULL)) {
        ERR(c, file, lists, "'lists' takes a map of name: [terms], got %s",
            vg_ynode_describe(lists));
    } else if (lists && lists->kind == VG_YNODE_MAP) {
        for (size_t i = 0; i < lists->count; i++) {
            const vg_ynode_t *k = lists->items[2 * i];
            uint32_t *prev = vg_strmap_get(&c->list_idx, k->str, k->len);
            if (prev) {
                list_def_t *o = &c->lists[*prev];
                ERR(c, file, k, "duplicate list '%s' (first defined at %s:%u:%u)", k->str,
                    o->file, o->line, o->col);
                continue;
            }
            list_def_t *nl = realloc(c->lists, (c->nlists + 1) * sizeof(list_def_t));
            if (!nl)
                return oom(c);
            c->lists = nl;
            /* Terms keep their list's name for alert evidence, after the
             * YAML documents are gone. */
            const char *name = keep_string(c, k->str);
            if (!name)
                return;
            c->lists[c->nlists] = (list_def_t){.name = name, .node = lists->items[2 * i + 1],
                                               .file = file, .line = k->line, .col = k->col};
            if (vg_strmap_put(&c->list_idx, k->str, k->len, (uint32_t)c->nlists) < 0)
                return oom(c);
            c->nlists++;
        }
    }
    const vg_ynode_t *macros = vg_ynode_get(root, "macros");
    if (macros && macros->kind != VG_YNODE_MAP &&
        !(macros->kind == VG_YNODE_SCALAR && macros->type == VG_YSCALAR_NULL)) {
        ERR(c, file, macros, "'macros' takes a map of name: condition, got %s",
            vg_ynode_describe(macros));
    } else if (macros && macros->kind == VG_YNODE_MAP) {
        for (size_t i = 0; i < macros->count; i++) {
            const vg_ynode_t *k = macros->items[2 * i];
            uint32_t *prev = vg_strmap_get(&c->macro_idx, k->str, k->len);
            if (prev) {
                macro_def_t *o = &c->macros[*prev];
                ERR(c, file, k, "duplicate macro '%s' (first defined at %s:%u:%u)", k->str,
                    o->file, o->line, o->col);
                continue;
            }
            macro_def_t *nm = realloc(c->macros, (c->nmacros + 1) * sizeof(macro_def_t));
            if (!nm)
                return oom(c);
            c->macros = nm;
            c->macros[c->nmacros] = (macro_def_t){.name = k->str,
                                                  .node = macros->items[2 * i + 1],
                                                  .file = file, .line = k->line, .col = k->col};
            if (vg_strmap_put(&c->macro_idx, k->str, k->len, (uint32_t)c->nmacros) < 0)
                return oom(c);
            c->nmacros++;
        }
    }
}

static hs_database_t *build_db(compiler_t *c, vg_term_kind_t kind)
{
    vg_ruleset_t *rs = c->rs;
    size_t n = 0;
    for (size_t i = 0; i < rs->nterms; i++)
        n += rs->terms[i].kind == kind;
    if (n == 0)
        return NULL;
    const char **pats = calloc(n, sizeof(char *));
    unsigned *flags = calloc(n, sizeof(unsigned));
    unsigned *ids = calloc(n, sizeof(unsigned));
    size_t *lens = calloc(n, sizeof(size_t));
    hs_database_t *db = NULL;
    if (!pats || !flags || !ids || !lens) {
        oom(c);
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < rs->nterms; i++) {
        const vg_term_t *t = &rs->terms[i];
        if (t->kind != kind)
            continue;
        pats[k] = t->pattern;
        lens[k] = t->pattern_len;
        ids[k] = (unsigned)i;
        if (kind == VG_TERM_LITERAL)
            flags[k] = 0;
        else if (kind == VG_TERM_NORM_REGEX)
            flags[k] = HS_FLAG_SOM_LEFTMOST;
        else
            flags[k] = HS_FLAG_CASELESS | HS_FLAG_UTF8 | HS_FLAG_UCP |
                       (t->no_som ? 0 : HS_FLAG_SOM_LEFTMOST);
        k++;
    }
    hs_compile_error_t *ce = NULL;
    hs_error_t e;
    if (kind == VG_TERM_LITERAL)
        e = hs_compile_lit_multi(pats, flags, ids, lens, (unsigned)n, HS_MODE_BLOCK, NULL, &db,
                                 &ce);
    else
        e = hs_compile_multi(pats, flags, ids, (unsigned)n, HS_MODE_BLOCK, NULL, &db, &ce);
    if (e != HS_SUCCESS) {
        const char *where = "";
        if (ce && ce->expression >= 0 && (size_t)ce->expression < n)
            where = rs->terms[ids[ce->expression]].text;
        vg_diags_add(c->diags, VG_DIAG_ERROR, NULL, 0, 0,
                     "cannot compile the keyword database: %s%s%s",
                     ce && ce->message ? ce->message : "unknown error", *where ? " at term " : "",
                     where);
        hs_free_compile_error(ce);
        db = NULL;
    }
out:
    free(pats);
    free(flags);
    free(ids);
    free(lens);
    return db;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool has_yaml_ext(const char *name)
{
    size_t n = strlen(name);
    return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

/* Expands paths into the ordered list of rule files. */
static char **expand_paths(compiler_t *c, const char *const *paths, size_t n, size_t *count)
{
    char **files = NULL;
    size_t nf = 0, cap = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            vg_diags_add(c->diags, VG_DIAG_ERROR, paths[i], 0, 0, "cannot read: %s",
                         strerror(errno));
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (!grow(c, (void **)&files, &cap, nf + 1, sizeof(char *)))
                break;
            files[nf++] = xstrndup(c, paths[i], strlen(paths[i]));
            continue;
        }
        DIR *d = opendir(paths[i]);
        if (!d) {
            vg_diags_add(c->diags, VG_DIAG_ERROR, paths[i], 0, 0, "cannot open folder: %s",
                         strerror(errno));
            continue;
        }
        size_t first = nf;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.' || !has_yaml_ext(de->d_name))
                continue;
            if (nf >= MAX_RULE_FILES || !grow(c, (void **)&files, &cap, nf + 1, sizeof(char *)))
                break;
            size_t l = strlen(paths[i]) + strlen(de->d_name) + 2;
            char *p = malloc(l);
            if (!p) {
                oom(c);
                break;
            }
            bool slash = paths[i][strlen(paths[i]) - 1] == '/';
            snprintf(p, l, "%s%s%s", paths[i], slash ? "" : "/", de->d_name);
            files[nf++] = p;
        }
        closedir(d);
        if (nf == first)
            vg_diags_add(c->diags, VG_DIAG_WARNING, paths[i], 0, 0,
                         "folder has no *.yaml or *.yml rule files");
        if (nf > first)
            qsort(files + first, nf - first, sizeof(char *), cmp_str);
    }
    *count = nf;
    return files;
}

/* Marks the text fields that cond searches (macros included). */
static void mark_slots(const vg_cond_t *cd, bool *slots, unsigned depth)
{
    if (!cd || depth > 2 * MAX_COND_DEPTH)
        return;
    if (cd->kind == VG_COND_TEXT)
        for (size_t i = 0; i < cd->nslots; i++)
            slots[cd->slots[i]] = true;
    for (size_t i = 0; i < cd->nkids; i++)
        mark_slots(cd->kids[i], slots, depth + 1);
}

static vg_ruleset_t *compile_all(compiler_t *c)
{
    vg_ruleset_t *rs = c->rs;
    for (size_t i = 0; i < c->ndocs; i++) {
        const vg_ynode_t *root = vg_ydoc_root(c->docs[i]);
        const char *file = c->doc_names[i];
        if (!root)
            continue;
        if (root->kind != VG_YNODE_MAP) {
            ERR(c, file, root, "a rule file is a map with 'lists', 'macros' and 'rules', got %s",
                vg_ynode_describe(root));
            continue;
        }
        register_defs(c, file, root);
    }
    for (size_t i = 0; i < c->ndocs; i++) {
        const vg_ynode_t *root = vg_ydoc_root(c->docs[i]);
        const char *file = c->doc_names[i];
        if (!root || root->kind != VG_YNODE_MAP)
            continue;
        const vg_ynode_t *rules = vg_ynode_get(root, "rules");
        if (!rules || (rules->kind == VG_YNODE_SCALAR && rules->type == VG_YSCALAR_NULL))
            continue;
        if (rules->kind != VG_YNODE_SEQ) {
            ERR(c, file, rules, "'rules' takes a list of rules (each item starts with '- id:'), "
                                "got %s",
                vg_ynode_describe(rules));
            continue;
        }
        for (size_t j = 0; j < rules->count; j++)
            compile_rule(c, file, rules->items[j]);
    }
    /* Validate what no rule used, so that a broken list or macro is not
     * found only when someone starts using it. */
    for (size_t i = 0; i < c->nlists; i++)
        resolve_list(c, &c->lists[i]);
    for (size_t i = 0; i < c->nmacros; i++)
        compile_macro(c, &c->macros[i]);
    if (vg_diags_errors(c->diags) == 0) {
        rs->db_lit = build_db(c, VG_TERM_LITERAL);
        rs->db_norm = build_db(c, VG_TERM_NORM_REGEX);
        rs->db_user = build_db(c, VG_TERM_USER_REGEX);
    }
    /* The state step scans only what stateful rules search. */
    rs->stateful_slots = calloc(rs->nslots ? rs->nslots : 1, sizeof(bool));
    if (!rs->stateful_slots)
        oom(c);
    for (size_t i = 0; rs->stateful_slots && i < rs->nrules; i++)
        if (rs->rules[i]->state)
            mark_slots(rs->rules[i]->match, rs->stateful_slots, 0);
    rs->nfiles = c->ndocs;
    rs->nlists = c->nlists;
    rs->nmacros = c->nmacros;
    c->hash = vg_hash_finish(c->hash);
    snprintf(rs->hash, sizeof(rs->hash), "%016llx", (unsigned long long)c->hash);
    if (vg_diags_errors(c->diags) > 0)
        return NULL;
    vg_ruleset_t *out = c->rs;
    c->rs = NULL;
    return out;
}

static void compiler_free(compiler_t *c)
{
    for (size_t i = 0; i < c->nlists; i++)
        free(c->lists[i].items);
    free(c->lists);
    free(c->macros);
    vg_strmap_free(&c->list_idx);
    vg_strmap_free(&c->macro_idx);
    vg_strmap_free(&c->term_idx);
    vg_strmap_free(&c->bad_terms);
    vg_strmap_free(&c->rule_idx);
    vg_strmap_free(&c->slot_idx);
    vg_strmap_free(&c->topic_idx);
    for (size_t i = 0; i < c->ndocs; i++)
        vg_ydoc_destroy(c->docs[i]);
    free(c->docs);
    free(c->doc_names);
    vg_ruleset_destroy(c->rs);
}

static bool compiler_init(compiler_t *c, const vg_ruleset_options_t *opts, vg_diags_t *diags)
{
    memset(c, 0, sizeof(*c));
    c->diags = diags;
    c->rs = calloc(1, sizeof(vg_ruleset_t));
    if (!c->rs)
        return false;
    if (opts && opts->n_text_fields) {
        c->default_fields = opts->text_fields;
        c->n_default_fields = opts->n_text_fields;
    } else {
        c->default_fields = DEFAULT_TEXT_FIELDS;
        c->n_default_fields = N(DEFAULT_TEXT_FIELDS);
    }
    c->hash = VG_HASH_INIT;
    for (size_t i = 0; i < c->n_default_fields; i++)
        c->hash = vg_hash64(c->hash, c->default_fields[i], strlen(c->default_fields[i]) + 1);
    return true;
}

static void add_doc(compiler_t *c, vg_ydoc_t *doc)
{
    vg_ydoc_t **d = realloc(c->docs, (c->ndocs + 1) * sizeof(*d));
    if (d)
        c->docs = d;
    const char **names = realloc(c->doc_names, (c->ndocs + 1) * sizeof(*names));
    if (names)
        c->doc_names = names;
    const char *name = d && names ? keep_string(c, vg_ydoc_name(doc)) : NULL;
    if (!name) {
        vg_ydoc_destroy(doc);
        oom(c);
        return;
    }
    c->docs[c->ndocs] = doc;
    c->doc_names[c->ndocs++] = name;
    size_t len;
    const char *bytes = vg_ydoc_bytes(doc, &len);
    c->hash = vg_hash64(c->hash, bytes, len);
}

vg_ruleset_t *vg_ruleset_load(const char *const *paths, size_t n_paths,
                              const vg_ruleset_options_t *opts, vg_diags_t *diags)
{
    compiler_t c;
    if (!compiler_init(&c, opts, diags))
        return NULL;
    size_t nf = 0;
    char **files = expand_paths(&c, paths, n_paths, &nf);
    for (size_t i = 0; i < nf; i++) {
        vg_ydoc_t *doc = files[i] ? vg_ydoc_load_file(files[i], NULL, diags) : NULL;
        if (doc)
            add_doc(&c, doc);
        free(files[i]);
    }
    free(files);
    vg_ruleset_t *rs = c.oom ? NULL : compile_all(&c);
    compiler_free(&c);
    return rs;
}

vg_ruleset_t *vg_ruleset_load_sources(const vg_rule_source_t *sources, size_t n,
                                      const vg_ruleset_options_t *opts, vg_diags_t *diags)
{
    compiler_t c;
    if (!compiler_init(&c, opts, diags))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        vg_ydoc_t *doc =
            vg_ydoc_load_buffer(sources[i].name, sources[i].data, sources[i].len, NULL, diags);
        if (doc)
            add_doc(&c, doc);
    }
    vg_ruleset_t *rs = c.oom ? NULL : compile_all(&c);
    compiler_free(&c);
    return rs;
}

size_t vg_ruleset_rule_count(const vg_ruleset_t *rs) { return rs->nrules; }
const vg_rule_t *vg_ruleset_rule(const vg_ruleset_t *rs, size_t i) { return rs->rules[i]; }
const char *vg_ruleset_hash(const vg_ruleset_t *rs) { return rs->hash; }
size_t vg_ruleset_file_count(const vg_ruleset_t *rs) { return rs->nfiles; }
size_t vg_ruleset_list_count(const vg_ruleset_t *rs) { return rs->nlists; }
size_t vg_ruleset_macro_count(const vg_ruleset_t *rs) { return rs->nmacros; }
size_t vg_ruleset_term_count(const vg_ruleset_t *rs) { return rs->nterms; }
size_t vg_ruleset_topic_count(const vg_ruleset_t *rs) { return rs->ntopics; }
const char *vg_ruleset_topic(const vg_ruleset_t *rs, size_t i) { return rs->topics[i]; }
const char *vg_rule_id(const vg_rule_t *r) { return r->id; }
const char *vg_rule_title(const vg_rule_t *r) { return r->title; }
const char *vg_rule_severity(const vg_rule_t *r) { return r->severity; }
const char *vg_rule_topic(const vg_rule_t *r) { return r->topic; }
bool vg_rule_enabled(const vg_rule_t *r) { return r->enabled; }
const vg_rule_state_t *vg_rule_state(const vg_rule_t *r) { return r->state; }
const char *vg_rule_summary(const vg_rule_t *r) { return r->summary; }
size_t vg_rule_tag_count(const vg_rule_t *r) { return r->ntags; }
size_t vg_rule_seq_count(const vg_rule_t *r) { return r->nseqs; }
const vg_rule_seq_t *vg_rule_seq(const vg_rule_t *r, size_t i) { return &r->seqs[i]; }
const char *vg_rule_tag(const vg_rule_t *r, size_t i) { return r->tags[i]; }
bool vg_ruleset_has_stateful(const vg_ruleset_t *rs)
{
    for (size_t i = 0; i < rs->nrules; i++)
        if (rs->rules[i]->enabled && rs->rules[i]->state)
            return true;
    return false;
}

bool vg_rule_is_stateful(const vg_rule_t *r) { return r->state != NULL; }

const char *vg_rule_state_summary(const vg_rule_t *r)
{
    return r->state ? r->state->summary : NULL;
}

const char *vg_rule_file(const vg_rule_t *r) { return r->file; }
unsigned vg_rule_line(const vg_rule_t *r) { return r->line; }
size_t vg_rule_test_count(const vg_rule_t *r) { return r->ntests; }

const char *vg_rule_test(const vg_rule_t *r, size_t i, size_t *len, bool *expect_match,
                         unsigned *line)
{
    const vg_rule_test_case_t *t = &r->tests[i];
    if (len)
        *len = t->len;
    if (expect_match)
        *expect_match = t->expect_match;
    if (line)
        *line = t->line;
    return t->json;
}
