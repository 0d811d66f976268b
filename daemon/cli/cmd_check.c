/* vigil check and vigil test: the analyst's tools for rule files. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "vigil/rule_state.h" /* embedded test sequences */
#include "vigil/config.h"
#include "vigil/diag.h"
#include "vigil/event.h"
#include "vigil/pipeline.h"
#include "vigil/scanner.h"
#include "vigil/state.h"

#include <json-c/json.h>
#include <strings.h>

/* Loads rules, printing their diagnostics; with strict, a warning fails
 * the load as an error would. The compile bounds are cfg's (check
 * --config) or the defaults, and VIGIL_MAX_COMPILE_SECONDS /
 * VIGIL_MAX_COMPILE_MEMORY (MiB) override them. */
static vg_ruleset_t *load_rules(const char *const *paths, size_t n, const char *const *text_fields,
                                size_t n_text_fields, bool strict, const vg_config_t *cfg)
{
    vg_ruleset_options_t opts = {.text_fields = text_fields, .n_text_fields = n_text_fields};
    if (cfg) {
        opts.max_compile_seconds = (unsigned)cfg->rules_max_compile_seconds;
        opts.max_compile_memory = cfg->rules_max_compile_memory * 1024 * 1024;
    }
    char err[256];
    if (vg_ruleset_options_from_env(&opts, err, sizeof(err)) != 0) {
        fprintf(stderr, "vigil: %s\n", err);
        return NULL;
    }
    vg_diags_t *d = vg_diags_new();
    if (!d) {
        fprintf(stderr, "vigil: out of memory\n");
        return NULL;
    }
    vg_ruleset_t *rs = vg_ruleset_load(paths, n, &opts, d);
    if (strict && vg_diags_promote_warnings(d) > 0) {
        vg_ruleset_destroy(rs);
        rs = NULL;
    }
    vg_diags_print(d, stderr);
    if (!rs)
        fprintf(stderr, "vigil: %zu error%s; no rules loaded\n", vg_diags_errors(d),
                vg_diags_errors(d) == 1 ? "" : "s");
    vg_diags_destroy(d);
    return rs;
}

vg_ruleset_t *vg_cli_load_rules(const char *const *paths, size_t n,
                                const char *const *text_fields, size_t n_text_fields)
{
    return load_rules(paths, n, text_fields, n_text_fields, false, NULL);
}

char **vg_cli_split_commas(char *s, size_t *n)
{
    size_t cap = 1;
    for (char *p = s; *p; p++)
        cap += *p == ',';
    char **out = calloc(cap, sizeof(char *));
    *n = 0;
    if (!out)
        return NULL;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ","))
        out[(*n)++] = tok;
    return out;
}

/* The rules' alert topics against the configuration's other topics;
 * prints what it refuses. 0, or -1 when one was refused. */
static int check_topics(const vg_config_t *cfg, const vg_ruleset_t *rs)
{
    vg_diags_t *d = vg_diags_new();
    if (!d) {
        fprintf(stderr, "vigil: out of memory\n");
        return -1;
    }
    size_t refused = vg_config_check_rule_topics(cfg, rs, d);
    vg_diags_print(d, stderr);
    vg_diags_destroy(d);
    if (refused)
        fprintf(stderr, "vigil: %zu error%s; no rules loaded\n", refused, refused == 1 ? "" : "s");
    return refused ? -1 : 0;
}

int vg_cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"text-fields", required_argument, NULL, 't'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"strict", no_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL;
    char *tf = NULL;
    bool quiet = false, strict = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:t:q", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 't': tf = optarg; break;
        case 'q': quiet = true; break;
        case 's': strict = true; break;
        default: vg_cli_usage(stderr, "check"); return VG_EXIT_USAGE;
        }
    }
    vg_config_t *cfg = NULL;
    if (config) {
        vg_diags_t *d = vg_diags_new();
        cfg = d ? vg_config_load(config, d) : NULL;
        if (d)
            vg_diags_print(d, stderr);
        vg_diags_destroy(d);
        /* As vigil run would refuse them, before any broker is asked. */
        char err[1024];
        if (cfg && vg_pipeline_check_properties(cfg, err, sizeof(err)) > 0) {
            fprintf(stderr, "%s: error: %s\n", config, err);
            vg_config_destroy(cfg);
            cfg = NULL;
        }
        if (!cfg) {
            fprintf(stderr, "vigil: configuration %s is invalid\n", config);
            return VG_EXIT_INVALID;
        }
        if (!quiet)
            printf("%s: configuration OK\n", config);
    }
    const char *const *paths = (const char *const *)argv + optind;
    size_t npaths = (size_t)(argc - optind);
    const char *const *fields = NULL;
    size_t nfields = 0;
    char **split = NULL;
    if (tf) {
        split = vg_cli_split_commas(tf, &nfields);
        fields = (const char *const *)split;
    }
    if (cfg) {
        if (npaths == 0) {
            paths = (const char *const *)cfg->rule_paths.items;
            npaths = cfg->rule_paths.count;
        }
        if (!tf) {
            fields = (const char *const *)cfg->text_fields.items;
            nfields = cfg->text_fields.count;
        }
    }
    if (npaths == 0) {
        fprintf(stderr, "vigil check: name at least one rule file or folder\n");
        vg_cli_usage(stderr, "check");
        free(split);
        vg_config_destroy(cfg);
        return VG_EXIT_USAGE;
    }
    vg_ruleset_t *rs = load_rules(paths, npaths, fields, nfields, strict, cfg);
    if (rs && cfg && check_topics(cfg, rs) != 0) {
        vg_ruleset_destroy(rs);
        rs = NULL;
    }
    int rc = VG_EXIT_INVALID;
    if (rs) {
        rc = VG_EXIT_OK;
        if (!quiet) {
            for (size_t i = 0; i < vg_ruleset_rule_count(rs); i++) {
                const vg_rule_t *r = vg_ruleset_rule(rs, i);
                printf("  %-40s %-8s %s%s  (%s:%u)\n", vg_rule_id(r), vg_rule_severity(r),
                       vg_rule_title(r), vg_rule_enabled(r) ? "" : " [disabled]", vg_rule_file(r),
                       vg_rule_line(r));
                if (vg_rule_state_summary(r))
                    printf("  %-40s stateful: %s\n", "", vg_rule_state_summary(r));
            }
            printf("OK: %zu file%s, %zu rule%s, %zu list%s, %zu macro%s, %zu keyword term%s "
                   "(ruleset %s)\n",
                   vg_ruleset_file_count(rs), vg_ruleset_file_count(rs) == 1 ? "" : "s",
                   vg_ruleset_rule_count(rs), vg_ruleset_rule_count(rs) == 1 ? "" : "s",
                   vg_ruleset_list_count(rs), vg_ruleset_list_count(rs) == 1 ? "" : "s",
                   vg_ruleset_macro_count(rs), vg_ruleset_macro_count(rs) == 1 ? "" : "s",
                   vg_ruleset_term_count(rs), vg_ruleset_term_count(rs) == 1 ? "" : "s",
                   vg_ruleset_hash(rs));
        }
    }
    vg_ruleset_destroy(rs);
    free(split);
    vg_config_destroy(cfg);
    return rc;
}

/* ---- stateful test sequences ---- */

typedef struct seq_alert {
    json_object *alert;
    size_t at; /* 1-based event index; 0 after the last event (flush) */
} seq_alert_t;

typedef struct seq_run {
    seq_alert_t *alerts;
    size_t n, cap;
    size_t at;
} seq_run_t;

static int collect_alert(void *ctx, const vg_state_alert_t *a)
{
    seq_run_t *run = ctx;
    if (run->n == run->cap) {
        size_t cap = run->cap ? run->cap * 2 : 8;
        seq_alert_t *na = realloc(run->alerts, cap * sizeof(*na));
        if (!na)
            return -1;
        run->alerts = na;
        run->cap = cap;
    }
    json_tokener *tok = json_tokener_new();
    json_object *o = tok ? json_tokener_parse_ex(tok, a->json, (int)a->len) : NULL;
    json_tokener_free(tok);
    if (!o)
        return -1;
    run->alerts[run->n++] = (seq_alert_t){o, run->at};
    return 0;
}

/* Values compare like rule conditions: numbers numerically, text ignoring
 * case, and two texts that are both times as the same instant. */
static bool same_value(json_object *want, json_object *got)
{
    if (!want || !got)
        return want == got;
    json_type wt = json_object_get_type(want), gt = json_object_get_type(got);
    if ((wt == json_type_int || wt == json_type_double) &&
        (gt == json_type_int || gt == json_type_double))
        return json_object_get_double(want) == json_object_get_double(got);
    if (wt == json_type_string && gt == json_type_string) {
        const char *a = json_object_get_string(want), *b = json_object_get_string(got);
        int64_t ta, tb;
        if (vg_state_parse_time(a, strlen(a), &ta) && vg_state_parse_time(b, strlen(b), &tb))
            return ta == tb;
        return strcasecmp(a, b) == 0;
    }
    if (wt == json_type_string || gt == json_type_string) {
        /* 854231 written for a key "854231" */
        const char *a = json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN);
        char *ca = strdup(wt == json_type_string ? json_object_get_string(want) : a);
        const char *b = gt == json_type_string
                            ? json_object_get_string(got)
                            : json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN);
        bool eq = ca && strcasecmp(ca, b) == 0;
        free(ca);
        return eq;
    }
    if (wt == json_type_object && gt == json_type_object) {
        if (json_object_object_length(want) != json_object_object_length(got))
            return false;
        json_object_object_foreach(want, k, v)
        {
            json_object *g;
            if (!json_object_object_get_ex(got, k, &g) || !same_value(v, g))
                return false;
        }
        return true;
    }
    return json_object_equal(want, got) != 0;
}

/* Checks one alert against an expectation; writes the first difference. */
static bool alert_matches(json_object *want, const seq_alert_t *a, char *why, size_t size)
{
    json_object *state = NULL;
    json_object_object_get_ex(a->alert, "state", &state);
    json_object_object_foreach(want, k, v)
    {
        if (strcmp(k, "at") == 0) {
            bool end = json_object_is_type(v, json_type_string) &&
                       strcmp(json_object_get_string(v), "end") == 0;
            if (end ? a->at != 0 : (size_t)json_object_get_int64(v) != a->at) {
                if (a->at)
                    snprintf(why, size, "it came at event %zu, expected at %s", a->at,
                             json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
                else
                    snprintf(why, size, "it came at the end, expected at %s",
                             json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
                return false;
            }
            continue;
        }
        json_object *got = NULL;
        if (!state || !json_object_object_get_ex(state, k, &got)) {
            snprintf(why, size, "the alert has no '%s'", k);
            return false;
        }
        bool ok;
        if (strcmp(k, "group") == 0 && !json_object_is_type(v, json_type_object)) {
            /* group: SMIC is short for {entities: SMIC} with one group_by path */
            ok = json_object_is_type(got, json_type_object) &&
                 json_object_object_length(got) == 1;
            if (ok) {
                json_object_object_foreach(got, gk, gv)
                {
                    (void)gk;
                    ok = same_value(v, gv);
                }
            }
        } else if (strcmp(k, "items") == 0 && (json_object_is_type(v, json_type_int))) {
            ok = json_object_is_type(got, json_type_array) &&
                 (int64_t)json_object_array_length(got) == json_object_get_int64(v);
        } else {
            ok = same_value(v, got);
        }
        if (!ok) {
            snprintf(why, size, "%s is %s, expected %s", k,
                     json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN),
                     json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
            return false;
        }
    }
    return true;
}

/* Runs one sequence of a stateful rule; true when it passed. Failures are
 * described on rep. */
static bool run_sequence(const vg_ruleset_t *rs, vg_scanner_t *sc, vg_decoder_t *dec,
                         const vg_rule_t *r, size_t qi, FILE *rep, bool verbose)
{
    const vg_rule_seq_t *q = vg_rule_seq(r, qi);
    char label[160];
    if (q->name)
        snprintf(label, sizeof(label), "sequence '%s'", q->name);
    else
        snprintf(label, sizeof(label), "sequence %zu", qi + 1);
    vg_state_options_t so = {.only_rule = r};
    vg_state_t *st = vg_state_new(rs, &so);
    seq_run_t run = {0};
    vg_match_set_t ms;
    vg_match_set_init(&ms);
    bool ok = st != NULL;
    char err[256] = "out of memory";
    for (size_t i = 0; ok && i < q->nevents; i++) {
        vg_event_t *ev = NULL;
        if (vg_decoder_parse(dec, q->events[i], q->lens[i], &ev, err, sizeof(err)) !=
            VG_EVENT_OK) {
            fprintf(rep, "  %s:%u: test event is not a valid event: %s\n", vg_rule_file(r),
                    q->ev_lines[i], err);
            ok = false;
            break;
        }
        vg_alert_source_t src = {.file = vg_rule_file(r), .line = q->ev_lines[i], .timestamp_ms = -1};
        run.at = i + 1;
        /* The rule is evaluated even when disabled: only its windows are
         * tested here. */
        int nm = vg_scanner_eval_rule(sc, ev, r, err, sizeof(err));
        vg_match_set_reset(&ms);
        if (nm > 0 && vg_match_set_take(&ms, sc, 0, (size_t)nm) != 0) {
            snprintf(err, sizeof(err), "out of memory");
            nm = -1;
        }
        vg_state_input_t in = {.event = ev, .matches = ms.matches, .nmatches = ms.n};
        if (nm < 0 || vg_state_apply(st, &in, &src, collect_alert, &run, err, sizeof(err)) < 0) {
            fprintf(rep, "  %s:%u: %s: %s\n", vg_rule_file(r), q->ev_lines[i], label, err);
            ok = false;
        }
        vg_event_destroy(ev);
    }
    run.at = 0;
    if (ok && vg_state_flush(st, collect_alert, &run, err, sizeof(err)) < 0) {
        fprintf(rep, "  %s:%u: %s: %s\n", vg_rule_file(r), q->line, label, err);
        ok = false;
    }
    json_object *want = ok ? json_tokener_parse(q->expect) : NULL;
    if (ok && !want)
        ok = false;
    if (ok) {
        size_t nw = json_object_array_length(want);
        char why[512] = "";
        size_t bad = SIZE_MAX;
        for (size_t i = 0; i < nw && i < run.n && bad == SIZE_MAX; i++)
            if (!alert_matches(json_object_array_get_idx(want, i), &run.alerts[i], why,
                               sizeof(why)))
                bad = i;
        if (bad != SIZE_MAX || nw != run.n) {
            ok = false;
            if (bad != SIZE_MAX)
                fprintf(rep, "  %s:%u: %s: alert %zu of %zu differs: %s\n", vg_rule_file(r),
                        q->expect_line, label, bad + 1, nw, why);
            else
                fprintf(rep, "  %s:%u: %s: expected %zu alert%s, got %zu\n", vg_rule_file(r),
                        q->expect_line, label, nw, nw == 1 ? "" : "s", run.n);
            for (size_t i = 0; i < run.n; i++) {
                json_object *stobj = NULL;
                json_object_object_get_ex(run.alerts[i].alert, "state", &stobj);
                if (run.alerts[i].at)
                    fprintf(rep, "      got at event %zu: %s\n", run.alerts[i].at,
                            json_object_to_json_string_ext(stobj, JSON_C_TO_STRING_PLAIN));
                else
                    fprintf(rep, "      got at the end: %s\n",
                            json_object_to_json_string_ext(stobj, JSON_C_TO_STRING_PLAIN));
            }
        } else if (verbose) {
            fprintf(rep, "  %s:%u: ok (%s: %zu alert%s)\n", vg_rule_file(r), q->line, label, run.n,
                    run.n == 1 ? "" : "s");
        }
    }
    json_object_put(want);
    for (size_t i = 0; i < run.n; i++)
        json_object_put(run.alerts[i].alert);
    free(run.alerts);
    vg_match_set_free(&ms);
    vg_state_destroy(st);
    return ok;
}

/* Runs the t-th match/no_match case of rule r (*expect: whether it should
 * match); true when it gave the expected result. What went wrong, and with
 * verbose what went right, is described on rep (may be NULL). */
static bool run_case(vg_scanner_t *sc, vg_decoder_t *dec, const vg_rule_t *r, size_t t,
                     FILE *rep, bool verbose, bool *expect)
{
    size_t len;
    unsigned line;
    const char *json = vg_rule_test(r, t, &len, expect, &line);
    vg_event_t *ev = NULL;
    char err[256];
    if (vg_decoder_parse(dec, json, len, &ev, err, sizeof(err)) != VG_EVENT_OK) {
        if (rep)
            fprintf(rep, "  %s:%u: test event is not a valid event: %s\n", vg_rule_file(r), line,
                    err);
        return false;
    }
    int got = vg_scanner_eval_rule(sc, ev, r, err, sizeof(err));
    bool ok = got >= 0 && (got == 1) == *expect;
    if (got < 0) {
        if (rep)
            fprintf(rep, "  %s:%u: %s\n", vg_rule_file(r), line, err);
    } else if (ok) {
        if (verbose && rep)
            fprintf(rep, "  %s:%u: ok (%s)\n", vg_rule_file(r), line,
                    *expect ? "matched" : "did not match");
    } else if (rep) {
        fprintf(rep, "  %s:%u: expected %s, but the rule %s; the conditions said:\n",
                vg_rule_file(r), line, *expect ? "a match" : "no match",
                got ? "matched" : "did not match");
        char *why = vg_scanner_explain(sc, ev, r);
        if (why)
            fputs(why, rep);
        free(why);
    }
    vg_event_destroy(ev);
    return ok;
}

int vg_cmd_test(int argc, char **argv)
{
    static const struct option opts[] = {{"text-fields", required_argument, NULL, 't'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {NULL, 0, NULL, 0}};
    char *tf = NULL;
    bool verbose = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:v", opts, NULL)) != -1) {
        switch (c) {
        case 't': tf = optarg; break;
        case 'v': verbose = true; break;
        default: vg_cli_usage(stderr, "test"); return VG_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "vigil test: name at least one rule file or folder\n");
        vg_cli_usage(stderr, "test");
        return VG_EXIT_USAGE;
    }
    size_t nfields = 0;
    char **split = tf ? vg_cli_split_commas(tf, &nfields) : NULL;
    vg_ruleset_t *rs = vg_cli_load_rules((const char *const *)argv + optind,
                                         (size_t)(argc - optind), (const char *const *)split,
                                         nfields);
    free(split);
    if (!rs)
        return VG_EXIT_INVALID;
    vg_scanner_t *sc = vg_scanner_new(rs);
    vg_decoder_t *dec = vg_decoder_new(NULL);
    if (!sc || !dec) {
        fprintf(stderr, "vigil test: out of memory\n");
        vg_scanner_destroy(sc);
        vg_decoder_destroy(dec);
        vg_ruleset_destroy(rs);
        return VG_EXIT_RUNTIME;
    }
    size_t rules_failed = 0, cases = 0, cases_failed = 0, untested = 0;
    printf("%-42s %-9s %-9s %-9s %s\n", "RULE", "MATCH", "NO_MATCH", "SEQUENCE", "RESULT");
    for (size_t i = 0; i < vg_ruleset_rule_count(rs); i++) {
        const vg_rule_t *r = vg_ruleset_rule(rs, i);
        size_t nt = vg_rule_test_count(r);
        size_t m_ok = 0, m_n = 0, n_ok = 0, n_n = 0;
        char *report = NULL;
        size_t report_len = 0;
        FILE *rep = open_memstream(&report, &report_len);
        for (size_t t = 0; t < nt; t++) {
            bool expect;
            bool ok = run_case(sc, dec, r, t, rep, verbose, &expect);
            cases++;
            m_n += expect;
            n_n += !expect;
            m_ok += ok && expect;
            n_ok += ok && !expect;
            cases_failed += !ok;
        }
        size_t q_ok = 0, q_n = vg_rule_seq_count(r);
        for (size_t q = 0; q < q_n && rep; q++) {
            cases++;
            if (run_sequence(rs, sc, dec, r, q, rep, verbose))
                q_ok++;
            else
                cases_failed++;
        }
        nt += q_n;
        if (rep)
            fclose(rep);
        const char *result = nt == 0 ? "no tests"
                             : (m_ok == m_n && n_ok == n_n && q_ok == q_n) ? "PASS"
                                                                           : "FAIL";
        if (nt == 0)
            untested++;
        else if (strcmp(result, "FAIL") == 0)
            rules_failed++;
        char mcol[32], ncol[32], qcol[32];
        snprintf(mcol, sizeof(mcol), "%zu/%zu", m_ok, m_n);
        snprintf(ncol, sizeof(ncol), "%zu/%zu", n_ok, n_n);
        snprintf(qcol, sizeof(qcol), "%zu/%zu", q_ok, q_n);
        printf("%-42s %-9s %-9s %-9s %s\n", vg_rule_id(r), mcol, ncol, q_n ? qcol : "-",
               result);
        if (report && report_len)
            fputs(report, stdout);
        free(report);
    }
    printf("%zu rule%s, %zu test case%s: %zu passed, %zu failed", vg_ruleset_rule_count(rs),
           vg_ruleset_rule_count(rs) == 1 ? "" : "s", cases, cases == 1 ? "" : "s",
           cases - cases_failed, cases_failed);
    if (untested)
        printf(" (%zu rule%s without tests)", untested, untested == 1 ? "" : "s");
    printf("\n");
    vg_decoder_destroy(dec);
    vg_scanner_destroy(sc);
    vg_ruleset_destroy(rs);
    return rules_failed || cases_failed ? VG_EXIT_INVALID : VG_EXIT_OK;
}
