/* vigil run: the daemon. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "vigil/config.h"
#include "vigil/log.h"
#include "vigil/pipeline.h"

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_hup(int sig)
{
    (void)sig;
    reload_requested = 1;
}

static vg_ruleset_t *load_rules(void *arg)
{
    const vg_config_t *cfg = arg;
    return vg_cli_load_rules((const char *const *)cfg->rule_paths.items, cfg->rule_paths.count,
                             (const char *const *)cfg->text_fields.items, cfg->text_fields.count);
}

int vg_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:v", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'v': vg_log_set_level(VG_LOG_DEBUG); break;
        default: vg_cli_usage(stderr, "run"); return VG_EXIT_USAGE;
        }
    }
    if (!config || optind != argc) {
        fprintf(stderr, "vigil run: --config FILE is required (and nothing else)\n");
        vg_cli_usage(stderr, "run");
        return VG_EXIT_USAGE;
    }
    vg_diags_t *d = vg_diags_new();
    vg_config_t *cfg = d ? vg_config_load(config, d) : NULL;
    if (d)
        vg_diags_print(d, stderr);
    vg_diags_destroy(d);
    if (!cfg) {
        fprintf(stderr, "vigil run: configuration %s is invalid\n", config);
        return VG_EXIT_INVALID;
    }
    if (cfg->delivery == VG_DELIVERY_EXACTLY_ONCE) {
        fprintf(stderr, "vigil run: delivery: exactly-once is not implemented yet; use "
                        "at-least-once\n");
        vg_config_destroy(cfg);
        return VG_EXIT_INVALID;
    }
    vg_ruleset_t *rs = load_rules(cfg);
    if (!rs) {
        vg_config_destroy(cfg);
        return VG_EXIT_INVALID;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    vg_pipeline_opts_t po = {.stop = &stop_requested, .reload = &reload_requested,
                             .reload_fn = load_rules, .reload_arg = cfg};
    char err[512];
    int rc = vg_pipeline_run(cfg, rs, &po, NULL, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "vigil run: %s\n", err);
    vg_config_destroy(cfg);
    return rc == 0 ? VG_EXIT_OK : VG_EXIT_RUNTIME;
}
