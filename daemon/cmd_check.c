/* vigil check and vigil test: the analyst's tools for rule files. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "vigil/config.h"
#include "vigil/diag.h"
#include "vigil/event.h"
#include "vigil/scanner.h"

vg_ruleset_t *vg_cli_load_rules(const char *const *paths, size_t n,
                                const char *const *text_fields, size_t n_text_fields)
{
    vg_diags_t *d = vg_diags_new();
    if (!d) {
        fprintf(stderr, "vigil: out of memory\n");
        return NULL;
    }
    vg_ruleset_options_t opts = {text_fields, n_text_fields};
    vg_ruleset_t *rs = vg_ruleset_load(paths, n, &opts, d);
    vg_diags_print(d, stderr);
    if (!rs)
        fprintf(stderr, "vigil: %zu error%s; no rules loaded\n", vg_diags_errors(d),
                vg_diags_errors(d) == 1 ? "" : "s");
    vg_diags_destroy(d);
    return rs;
}

/* Splits "a,b,c" into a malloc'd array of pointers into s (modified). */
static char **split_commas(char *s, size_t *n)
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

int vg_cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"text-fields", required_argument, NULL, 't'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL;
    char *tf = NULL;
    bool quiet = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:t:q", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 't': tf = optarg; break;
        case 'q': quiet = true; break;
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
        split = split_commas(tf, &nfields);
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
    vg_ruleset_t *rs = vg_cli_load_rules(paths, npaths, fields, nfields);
    int rc = VG_EXIT_INVALID;
    if (rs) {
        rc = VG_EXIT_OK;
        if (!quiet) {
            for (size_t i = 0; i < vg_ruleset_rule_count(rs); i++) {
                const vg_rule_t *r = vg_ruleset_rule(rs, i);
                printf("  %-40s %-8s %s%s  (%s:%u)\n", vg_rule_id(r), vg_rule_severity(r),
                       vg_rule_title(r), vg_rule_enabled(r) ? "" : " [disabled]", vg_rule_file(r),
                       vg_rule_line(r));
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
    char **split = tf ? split_commas(tf, &nfields) : NULL;
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
    printf("%-42s %-9s %-9s %s\n", "RULE", "MATCH", "NO_MATCH", "RESULT");
    for (size_t i = 0; i < vg_ruleset_rule_count(rs); i++) {
        const vg_rule_t *r = vg_ruleset_rule(rs, i);
        size_t nt = vg_rule_test_count(r);
        size_t m_ok = 0, m_n = 0, n_ok = 0, n_n = 0;
        char *report = NULL;
        size_t report_len = 0;
        FILE *rep = open_memstream(&report, &report_len);
        for (size_t t = 0; t < nt; t++) {
            size_t len;
            bool expect;
            unsigned line;
            const char *json = vg_rule_test(r, t, &len, &expect, &line);
            vg_event_t *ev = NULL;
            char err[256];
            cases++;
            if (expect)
                m_n++;
            else
                n_n++;
            if (vg_decoder_parse(dec, json, len, &ev, err, sizeof(err)) != VG_EVENT_OK) {
                if (rep)
                    fprintf(rep, "  %s:%u: test event is not a valid event: %s\n",
                            vg_rule_file(r), line, err);
                cases_failed++;
                continue;
            }
            int got = vg_scanner_eval_rule(sc, ev, r, err, sizeof(err));
            if (got < 0) {
                if (rep)
                    fprintf(rep, "  %s:%u: %s\n", vg_rule_file(r), line, err);
                cases_failed++;
            } else if ((got == 1) == expect) {
                if (expect)
                    m_ok++;
                else
                    n_ok++;
                if (verbose && rep)
                    fprintf(rep, "  %s:%u: ok (%s)\n", vg_rule_file(r), line,
                            expect ? "matched" : "did not match");
            } else {
                cases_failed++;
                if (rep) {
                    fprintf(rep, "  %s:%u: expected %s, but the rule %s; the conditions said:\n",
                            vg_rule_file(r), line, expect ? "a match" : "no match",
                            got ? "matched" : "did not match");
                    char *why = vg_scanner_explain(sc, ev, r);
                    if (why)
                        fputs(why, rep);
                    free(why);
                }
            }
            vg_event_destroy(ev);
        }
        if (rep)
            fclose(rep);
        const char *result = nt == 0 ? "no tests"
                             : (m_ok == m_n && n_ok == n_n) ? "PASS"
                                                            : "FAIL";
        if (nt == 0)
            untested++;
        else if (strcmp(result, "FAIL") == 0)
            rules_failed++;
        char mcol[32], ncol[32];
        snprintf(mcol, sizeof(mcol), "%zu/%zu", m_ok, m_n);
        snprintf(ncol, sizeof(ncol), "%zu/%zu", n_ok, n_n);
        printf("%-42s %-9s %-9s %s\n", vg_rule_id(r), mcol, ncol, result);
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
