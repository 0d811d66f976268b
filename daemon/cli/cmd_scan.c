/* vigil scan and vigil eval: rules over JSON-lines files. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_common.h"
#include "commands.h"
#include "monotime.h"
#include "linereader.h"
#include "vigil/alert.h"
#include "vigil/event.h"
#include "vigil/log.h"
#include "vigil/scanner.h"
#include "vigil/state.h"
#include "vigil/workpool.h"

#define MAX_RULE_PATHS 64

typedef struct scan_opts {
    const char *rules[MAX_RULE_PATHS];
    size_t nrules;
    char *text_fields;
    const char *time_field;
    size_t max_bytes;
    size_t max_depth;
} scan_opts_t;


static vg_ruleset_t *load(scan_opts_t *o)
{
    size_t nf = 0;
    char **fields = NULL;
    if (o->text_fields && !(fields = vg_cli_split_commas(o->text_fields, &nf))) {
        fprintf(stderr, "vigil: out of memory\n");
        return NULL;
    }
    vg_ruleset_t *rs =
        vg_cli_load_rules(o->rules, o->nrules, nf ? (const char *const *)fields : NULL, nf);
    free(fields);
    return rs;
}

typedef struct input_stats {
    uint64_t events, malformed, bytes;
} input_stats_t;

/* One JSON-lines input: a file or stdin, read line by line, with a
 * progress bar on stderr when that is a terminal and the input a file. */
typedef struct input {
    const char *name;
    FILE *f;
    bool is_stdin;
    off_t total;
    bool bar;
    double last_bar;
    vg_linereader_t lr;
    bool mapped; /* lines stay valid until input_close */
    int last;
} input_t;

static int input_open(input_t *in, const char *path, size_t max_bytes, bool progress)
{
    memset(in, 0, sizeof(*in));
    in->is_stdin = strcmp(path, "-") == 0;
    in->name = in->is_stdin ? "<stdin>" : path;
    in->f = in->is_stdin ? stdin : fopen(path, "rb");
    if (!in->f) {
        fprintf(stderr, "vigil: %s: cannot open: %m\n", path);
        return -1;
    }
    struct stat sb;
    if (!in->is_stdin && fstat(fileno(in->f), &sb) == 0 && S_ISREG(sb.st_mode))
        in->total = sb.st_size;
    in->bar = progress && in->total > 0;
    in->last_bar = vg_monotime();
    vg_linereader_init(&in->lr, in->f, max_bytes);
    /* A file is mapped: its lines are evaluated where they lie. */
    in->mapped = !in->is_stdin && vg_linereader_map(&in->lr);
    return 0;
}

/* The next non-blank line, trimmed of surrounding blanks: 1 a line, 2 a
 * line over the size limit (len is its size), 0 the end, -1 an error. */
static int input_next(input_t *in, const char **line, size_t *len, input_stats_t *st)
{
    int r;
    while ((r = vg_linereader_next(&in->lr, line, len)) > 0) {
        st->bytes += *len + 1;
        if (in->bar && (in->lr.line & 1023) == 0 && vg_monotime() - in->last_bar > 0.2) {
            in->last_bar = vg_monotime();
            int pct = (int)(100.0 * (double)in->lr.bytes_read / (double)in->total);
            int w = pct / 5;
            fprintf(stderr, "\r%s [%.*s%*s] %3d%%", in->name, w, "####################", 20 - w,
                    "", pct);
        }
        if (r == 2)
            return 2;
        const char *l = *line;
        size_t n = *len, s0 = 0;
        while (n && (l[n - 1] == '\r' || l[n - 1] == ' ' || l[n - 1] == '\t'))
            n--;
        while (s0 < n && (l[s0] == ' ' || l[s0] == '\t'))
            s0++;
        if (s0 == n)
            continue; /* blank lines separate nothing and are not errors */
        *line = l + s0;
        *len = n - s0;
        return 1;
    }
    in->last = r;
    return r;
}

/* Closes the input; -1 when reading it failed. */
static int input_close(input_t *in)
{
    if (!in->f)
        return -1;
    if (in->bar)
        fprintf(stderr, "\r%*s\r", 80, "");
    int rc = 0;
    if (in->last < 0) {
        fprintf(stderr, "vigil: %s: read error: %m\n", in->name);
        rc = -1;
    }
    vg_linereader_free(&in->lr);
    if (!in->is_stdin)
        fclose(in->f);
    in->f = NULL;
    return rc;
}

/* Callback per decoded event of an input; returns false to stop. */
typedef bool (*event_fn)(void *ctx, const char *file, uint64_t line, vg_event_t *ev);

/* Reads one JSON-lines input in this thread (vigil eval), reporting
 * malformed lines as file:line. */
static int read_input(const char *path, const scan_opts_t *o, vg_decoder_t *dec, event_fn fn,
                      void *ctx, input_stats_t *st, bool progress)
{
    input_t in;
    if (input_open(&in, path, o->max_bytes, progress) != 0)
        return -1;
    const char *line;
    size_t len;
    int r, rc = 0;
    while ((r = input_next(&in, &line, &len, st)) > 0) {
        if (r == 2) {
            fprintf(stderr, "%s:%llu: event of %zu bytes exceeds the limit of %zu bytes\n",
                    in.name, (unsigned long long)in.lr.line, len, o->max_bytes);
            st->malformed++;
            continue;
        }
        vg_event_t *ev = NULL;
        char err[256];
        if (vg_decoder_parse(dec, line, len, &ev, err, sizeof(err)) != VG_EVENT_OK) {
            fprintf(stderr, "%s:%llu: %s\n", in.name, (unsigned long long)in.lr.line, err);
            st->malformed++;
            continue;
        }
        st->events++;
        bool go_on = fn(ctx, in.name, in.lr.line, ev);
        vg_event_destroy(ev);
        if (!go_on) {
            rc = -1;
            break;
        }
    }
    return input_close(&in) != 0 ? -1 : rc;
}

static int parse_common(int argc, char **argv, scan_opts_t *o, const char *cmd, char **label,
                        size_t *examples)
{
    static const struct option opts[] = {{"rules", required_argument, NULL, 'r'},
                                         {"text-fields", required_argument, NULL, 't'},
                                         {"time-field", required_argument, NULL, 'T'},
                                         {"max-event-bytes", required_argument, NULL, 'B'},
                                         {"label", required_argument, NULL, 'l'},
                                         {"examples", required_argument, NULL, 'e'},
                                         {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof(*o));
    o->time_field = "published_at";
    o->max_bytes = 1024 * 1024;
    o->max_depth = 64;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:t:T:B:l:e:", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            if (o->nrules == MAX_RULE_PATHS) {
                fprintf(stderr, "vigil %s: at most %d --rules\n", cmd, MAX_RULE_PATHS);
                return -1;
            }
            o->rules[o->nrules++] = optarg;
            break;
        case 't': o->text_fields = optarg; break;
        case 'T': o->time_field = optarg; break;
        case 'B': {
            char *end;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*end || v < 64 || v > 1024ull * 1024 * 1024) {
                fprintf(stderr, "vigil %s: --max-event-bytes takes 64..1073741824\n", cmd);
                return -1;
            }
            o->max_bytes = (size_t)v;
            break;
        }
        case 'l':
            if (!label)
                goto bad;
            *label = optarg;
            break;
        case 'e': {
            if (!examples)
                goto bad;
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 1000) {
                fprintf(stderr, "vigil %s: --examples takes 0..1000\n", cmd);
                return -1;
            }
            *examples = (size_t)v;
            break;
        }
        default: goto bad;
        }
    }
    if (o->nrules == 0) {
        fprintf(stderr, "vigil %s: --rules PATH is required\n", cmd);
        goto bad;
    }
    return 0;
bad:
    vg_cli_usage(stderr, cmd);
    return -1;
}

/* The serial state step of stateful rules: each input file is one
 * partition with a state of its own, fed in line order with what the
 * workers decoded and matched (rules/README.md "Stateful rules"). */
typedef struct scan_state {
    const vg_ruleset_t *rs;
    vg_state_t *st; /* of the current input */
    vg_state_stats_t total;
    uint64_t *alerts;
} scan_state_t;

static int print_state_alert(void *ctx, const vg_state_alert_t *a)
{
    scan_state_t *ss = ctx;
    fwrite(a->json, 1, a->len, stdout);
    fputc('\n', stdout);
    (*ss->alerts)++;
    return 0;
}

static bool state_item(scan_state_t *ss, const vg_work_item_t *it)
{
    char err[256];
    vg_state_input_t in;
    if (!vg_state_input_from_item(&in, it))
        return true; /* reported by the parallel step already */
    int n = vg_state_apply(ss->st, &in, &it->src, print_state_alert, ss, err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "%s:%llu: %s\n", it->src.file, (unsigned long long)it->src.line, err);
        return false;
    }
    return true;
}

/* Ends an input's partition: open digests are sent as they stand. */
static bool state_end(scan_state_t *ss)
{
    if (!ss || !ss->st)
        return true;
    char err[256];
    bool ok = vg_state_flush(ss->st, print_state_alert, ss, err, sizeof(err)) >= 0;
    if (!ok)
        fprintf(stderr, "vigil scan: %s\n", err);
    vg_state_stats_t s;
    vg_state_stats(ss->st, &s);
    ss->total.events += s.events;
    ss->total.late += s.late;
    ss->total.untimed += s.untimed;
    ss->total.evicted += s.evicted;
    ss->total.keys_dropped += s.keys_dropped;
    ss->total.suppressed += s.suppressed;
    vg_state_destroy(ss->st);
    ss->st = NULL;
    return ok;
}

/* Writes what a finished batch produced, in input order: alerts to
 * stdout, malformed lines to stderr. Returns false on an internal error. */
static bool emit_batch(vg_batch_t *b, uint64_t *alerts, input_stats_t *st, scan_state_t *ss)
{
    bool ok = true;
    for (size_t i = 0; i < b->n; i++) {
        const vg_work_item_t *it = &b->items[i];
        if (it->status != VG_EVENT_OK || it->eval_failed) {
            fprintf(stderr, "%s:%llu: %.*s\n", it->src.file, (unsigned long long)it->src.line,
                    (int)it->err_len, b->text + it->err_off);
            if (it->eval_failed)
                ok = false;
            else
                st->malformed++;
            continue;
        }
        st->events++;
        for (size_t k = 0; k < it->nalerts; k++) {
            const vg_work_alert_t *a = &b->alerts[it->first_alert + k];
            fwrite(b->text + a->off, 1, a->len, stdout);
            fputc('\n', stdout);
            (*alerts)++;
        }
        if (ss && ss->st && !state_item(ss, it))
            ok = false;
    }
    return ok;
}

/* Reads JSON lines from every input into batches that the pool evaluates
 * on all cores; results come back in input order. */
static int scan_inputs(vg_workpool_t *pool, const char *const *inputs, size_t ninputs,
                       const scan_opts_t *o, bool progress, uint64_t *alerts, input_stats_t *st,
                       scan_state_t *ss)
{
    int rc = 0;
    vg_batch_t *b = NULL, *done;
    bool failed = false;
    for (size_t f = 0; f < ninputs && !failed; f++) {
        input_t in;
        if (input_open(&in, inputs[f], o->max_bytes, progress) != 0) {
            rc = -1;
            continue;
        }
        if (ss) {
            vg_state_options_t so = {.time_field = o->time_field};
            if (!(ss->st = vg_state_new(ss->rs, &so))) {
                fprintf(stderr, "vigil scan: out of memory\n");
                failed = true;
            }
        }
        const char *line;
        size_t len;
        int r;
        while (!failed && (r = input_next(&in, &line, &len, st)) > 0) {
            vg_alert_source_t src = {.file = in.name, .line = in.lr.line, .timestamp_ms = -1};
            for (;;) {
                while (!b && !(b = vg_workpool_acquire(pool))) {
                    done = vg_workpool_next(pool, true);
                    failed |= !emit_batch(done, alerts, st, ss);
                    vg_workpool_release(pool, done);
                }
                bool added = r == 2     ? vg_batch_add_oversize(b, len, &src, NULL)
                             : in.mapped ? vg_batch_add(b, line, len, &src, NULL)
                                         : vg_batch_add_copy(b, line, len, &src, NULL);
                if (added)
                    break;
                vg_workpool_submit(pool, b);
                b = NULL;
                while ((done = vg_workpool_next(pool, false))) {
                    failed |= !emit_batch(done, alerts, st, ss);
                    vg_workpool_release(pool, done);
                }
            }
        }
        /* Finish this input's lines while its name is still valid. */
        if (b && b->n) {
            vg_workpool_submit(pool, b);
            b = NULL;
        }
        while ((done = vg_workpool_next(pool, true))) {
            failed |= !emit_batch(done, alerts, st, ss);
            vg_workpool_release(pool, done);
        }
        failed |= !state_end(ss);
        if (input_close(&in) != 0)
            rc = -1;
    }
    if (b)
        vg_workpool_release(pool, b);
    return failed ? -2 : rc;
}

int vg_cmd_scan(int argc, char **argv)
{
    scan_opts_t o;
    if (parse_common(argc, argv, &o, "scan", NULL, NULL) != 0)
        return VG_EXIT_USAGE;
    vg_ruleset_t *rs = load(&o);
    if (!rs)
        return VG_EXIT_INVALID;
    bool stateful = vg_ruleset_has_stateful(rs);
    vg_workpool_options_t po = {.workers = vg_cli_default_workers(0),
                                .limits = {o.max_bytes, o.max_depth},
                                .time_field = o.time_field,
                                .stateful = stateful,
                                .help_when_waiting = true};
    vg_workpool_t *pool = vg_workpool_new(rs, &po);
    int rc = VG_EXIT_OK;
    if (!pool) {
        fprintf(stderr, "vigil scan: cannot set up matching (out of memory)\n");
        vg_ruleset_destroy(rs);
        return VG_EXIT_RUNTIME;
    }
    static const char *const stdin_only[] = {"-"};
    const char *const *inputs = optind < argc ? (const char *const *)argv + optind : stdin_only;
    size_t ninputs = optind < argc ? (size_t)(argc - optind) : 1;
    input_stats_t st = {0};
    uint64_t alerts = 0;
    scan_state_t ss = {.rs = rs, .alerts = &alerts};
    double t0 = vg_monotime();
    if (rc == VG_EXIT_OK && scan_inputs(pool, inputs, ninputs, &o, isatty(STDERR_FILENO),
                                        &alerts, &st, stateful ? &ss : NULL) != 0)
        rc = VG_EXIT_RUNTIME;
    fflush(stdout);
    double dt = vg_monotime() - t0;
    fprintf(stderr,
            "vigil scan: %llu events, %llu malformed, %llu alerts from %zu rules in %.2f s "
            "(%.0f events/s, %.1f MB/s, %u worker threads)\n",
            (unsigned long long)st.events, (unsigned long long)st.malformed,
            (unsigned long long)alerts, vg_ruleset_rule_count(rs), dt,
            dt > 0 ? (double)st.events / dt : 0.0, dt > 0 ? (double)st.bytes / dt / 1e6 : 0.0,
            po.workers);
    if (stateful)
        fprintf(stderr,
                "vigil scan: stateful rules (counted per rule): %llu late events dropped, %llu "
                "without event time, "
                "%llu keys evicted, %llu alerts throttled\n",
                (unsigned long long)ss.total.late, (unsigned long long)ss.total.untimed,
                (unsigned long long)ss.total.evicted, (unsigned long long)ss.total.suppressed);
    vg_state_destroy(ss.st);
    vg_workpool_destroy(pool);
    vg_ruleset_destroy(rs);
    return rc;
}

/* ---- eval ---- */

#define MAX_EXAMPLES 1000

typedef struct rule_score {
    uint64_t tp, fp, fn;
    char **fp_ex, **fn_ex;
    size_t nfp_ex, nfn_ex;
} rule_score_t;

typedef struct eval_ctx {
    vg_scanner_t *sc;
    vg_scanner_t *label_sc;
    const vg_ruleset_t *rs;
    rule_score_t *scores;
    size_t examples;
    uint64_t positives, events;
    bool failed;
    bool stateful;
    bool *hit;
} eval_ctx_t;

static char *describe_event(const char *file, uint64_t line, vg_event_t *ev)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        return NULL;
    fprintf(f, "%s:%llu", file, (unsigned long long)line);
    size_t rawlen;
    const char *raw = vg_event_raw(ev, &rawlen);
    /* A title is what an analyst recognises; fall back to the raw text. */
    const char *t = strstr(raw, "\"title\":\"");
    if (t) {
        t += 9;
        const char *e = t;
        while (*e && *e != '"' && e - t < 100)
            e += *e == '\\' && e[1] ? 2 : 1;
        fprintf(f, " %.*s", (int)(e - t), t);
    } else {
        fprintf(f, " %.*s", rawlen > 100 ? 100 : (int)rawlen, raw);
    }
    fclose(f);
    return out;
}

static void add_example(char ***arr, size_t *n, size_t max, const char *file, uint64_t line,
                        vg_event_t *ev)
{
    if (*n >= max)
        return;
    if (!*arr)
        *arr = calloc(max, sizeof(char *));
    if (!*arr)
        return;
    char *d = describe_event(file, line, ev);
    if (d)
        (*arr)[(*n)++] = d;
}

static bool eval_event(void *vctx, const char *file, uint64_t line, vg_event_t *ev)
{
    eval_ctx_t *e = vctx;
    char err[256];
    int pos = vg_scanner_eval(e->label_sc, ev, err, sizeof(err));
    int n = pos < 0 ? -1 : vg_scanner_eval(e->sc, ev, err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "%s:%llu: %s\n", file, (unsigned long long)line, err);
        e->failed = true;
        return false;
    }
    e->events++;
    e->positives += pos > 0;
    size_t nr = vg_ruleset_rule_count(e->rs);
    memset(e->hit, 0, nr * sizeof(bool));
    for (int i = 0; i < n; i++) {
        const vg_rule_t *r = vg_scanner_match(e->sc, (size_t)i);
        for (size_t k = 0; k < nr; k++)
            if (vg_ruleset_rule(e->rs, k) == r)
                e->hit[k] = true;
    }
    /* A stateful rule is scored on its match condition, event by event. */
    n = e->stateful ? vg_scanner_eval_stateful(e->sc, ev, err, sizeof(err)) : 0;
    if (n < 0) {
        fprintf(stderr, "%s:%llu: %s\n", file, (unsigned long long)line, err);
        e->failed = true;
        return false;
    }
    for (int i = 0; i < n; i++) {
        const vg_rule_t *r = vg_scanner_match(e->sc, (size_t)i);
        for (size_t k = 0; k < nr; k++)
            if (vg_ruleset_rule(e->rs, k) == r)
                e->hit[k] = true;
    }
    for (size_t k = 0; k < nr; k++) {
        rule_score_t *s = &e->scores[k];
        if (e->hit[k] && pos > 0)
            s->tp++;
        else if (e->hit[k]) {
            s->fp++;
            add_example(&s->fp_ex, &s->nfp_ex, e->examples, file, line, ev);
        } else if (pos > 0) {
            s->fn++;
            add_example(&s->fn_ex, &s->nfn_ex, e->examples, file, line, ev);
        }
    }
    return true;
}

/* Builds a one-rule ruleset that matches the labelled events: the label
 * uses the same field semantics as rules (paths, arrays, case). */
static vg_ruleset_t *label_ruleset(const char *label)
{
    const char *eq = strchr(label, '=');
    if (!eq || eq == label) {
        fprintf(stderr, "vigil eval: --label takes FIELD=VALUE, e.g. --label topics=trade\n");
        return NULL;
    }
    char *yaml = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&yaml, &len);
    if (!f)
        return NULL;
    fprintf(f, "rules:\n  - id: label\n    match: {field: \"");
    for (const char *p = label; p < eq; p++)
        fprintf(f, (*p == '"' || *p == '\\') ? "\\%c" : "%c", *p);
    fprintf(f, "\", eq: \"");
    for (const char *p = eq + 1; *p; p++)
        fprintf(f, (*p == '"' || *p == '\\') ? "\\%c" : "%c", *p);
    fprintf(f, "\"}\n");
    fclose(f);
    vg_diags_t *d = vg_diags_new();
    vg_rule_source_t src = {"--label", yaml, len};
    vg_ruleset_t *rs = d ? vg_ruleset_load_sources(&src, 1, NULL, d) : NULL;
    if (!rs && d)
        vg_diags_print(d, stderr);
    vg_diags_destroy(d);
    free(yaml);
    return rs;
}

int vg_cmd_eval(int argc, char **argv)
{
    scan_opts_t o;
    char *label = NULL;
    size_t examples = 3;
    if (parse_common(argc, argv, &o, "eval", &label, &examples) != 0)
        return VG_EXIT_USAGE;
    if (!label || optind >= argc) {
        fprintf(stderr, "vigil eval: --label FIELD=VALUE and at least one FILE are required\n");
        vg_cli_usage(stderr, "eval");
        return VG_EXIT_USAGE;
    }
    vg_ruleset_t *lrs = label_ruleset(label);
    if (!lrs)
        return VG_EXIT_USAGE;
    vg_ruleset_t *rs = load(&o);
    if (!rs) {
        vg_ruleset_destroy(lrs);
        return VG_EXIT_INVALID;
    }
    size_t nr = vg_ruleset_rule_count(rs);
    vg_event_limits_t lim = {o.max_bytes, o.max_depth};
    eval_ctx_t e = {.sc = vg_scanner_new(rs), .label_sc = vg_scanner_new(lrs), .rs = rs,
                    .scores = calloc(nr ? nr : 1, sizeof(rule_score_t)),
                    .hit = calloc(nr ? nr : 1, sizeof(bool)), .examples = examples,
                    .stateful = vg_ruleset_has_stateful(rs)};
    vg_decoder_t *dec = vg_decoder_new(&lim);
    int rc = VG_EXIT_OK;
    if (!e.sc || !e.label_sc || !e.scores || !e.hit || !dec) {
        fprintf(stderr, "vigil eval: out of memory\n");
        rc = VG_EXIT_RUNTIME;
        goto out;
    }
    input_stats_t st = {0};
    for (int i = optind; i < argc; i++)
        if (read_input(argv[i], &o, dec, eval_event, &e, &st, isatty(STDERR_FILENO)) != 0)
            rc = VG_EXIT_RUNTIME;
    printf("%llu events, %llu labelled %s, %llu malformed\n\n", (unsigned long long)e.events,
           (unsigned long long)e.positives, label, (unsigned long long)st.malformed);
    printf("%-40s %7s %7s %7s %9s %7s %7s\n", "RULE", "TP", "FP", "FN", "PRECISION", "RECALL",
           "F1");
    for (size_t k = 0; k < nr; k++) {
        rule_score_t *s = &e.scores[k];
        double p = s->tp + s->fp ? (double)s->tp / (double)(s->tp + s->fp) : 0.0;
        double r = s->tp + s->fn ? (double)s->tp / (double)(s->tp + s->fn) : 0.0;
        double f1 = p + r > 0 ? 2 * p * r / (p + r) : 0.0;
        printf("%-40s %7llu %7llu %7llu %9.3f %7.3f %7.3f\n", vg_rule_id(vg_ruleset_rule(rs, k)),
               (unsigned long long)s->tp, (unsigned long long)s->fp, (unsigned long long)s->fn, p,
               r, f1);
    }
    for (size_t k = 0; k < nr && examples; k++) {
        rule_score_t *s = &e.scores[k];
        if (!s->nfp_ex && !s->nfn_ex)
            continue;
        printf("\n%s\n", vg_rule_id(vg_ruleset_rule(rs, k)));
        for (size_t i = 0; i < s->nfp_ex; i++)
            printf("  false positive: %s\n", s->fp_ex[i]);
        for (size_t i = 0; i < s->nfn_ex; i++)
            printf("  false negative: %s\n", s->fn_ex[i]);
    }
out:
    for (size_t k = 0; e.scores && k < nr; k++) {
        for (size_t i = 0; i < e.scores[k].nfp_ex; i++)
            free(e.scores[k].fp_ex[i]);
        for (size_t i = 0; i < e.scores[k].nfn_ex; i++)
            free(e.scores[k].fn_ex[i]);
        free(e.scores[k].fp_ex);
        free(e.scores[k].fn_ex);
    }
    free(e.scores);
    free(e.hit);
    vg_decoder_destroy(dec);
    vg_scanner_destroy(e.sc);
    vg_scanner_destroy(e.label_sc);
    vg_ruleset_destroy(rs);
    vg_ruleset_destroy(lrs);
    return rc;
}
