/* vigil run: the daemon. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "cli_common.h"
#include "commands.h"
#include "vigil/config.h"
#include "vigil/log.h"
#include "vigil/metrics.h"
#include "vigil/metrics_http.h"
#include "vigil/pipeline.h"
#include "vigil/watch.h"

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

/* A reload compiles on a thread of its own while the main loop pings the
 * watchdog; these pings cover the time the compile waits anyway, should
 * the main loop be the one compiling. */
static void compile_tick(void *arg)
{
    const uint64_t *watchdog_usec = arg;
    if (*watchdog_usec)
        sd_notify(0, "WATCHDOG=1");
}

/* Loads rules.paths under rules.max_compile_seconds/_memory; SIGTERM or
 * SIGINT abandons the load. Each problem found is a log line whose
 * message is the problem and whose `at` is file:line:col, so a broken
 * edit shows in the journal as clearly as in `vigil check`. */
static vg_ruleset_t *load_rules(const vg_config_t *cfg, uint64_t *watchdog_usec)
{
    static const vg_log_level_t levels[] = {VG_LOG_ERROR, VG_LOG_WARN, VG_LOG_INFO};
    vg_diags_t *d = vg_diags_new();
    if (!d) {
        vg_log_fields(VG_LOG_ERROR, "out of memory loading the rules", NULL, 0);
        return NULL;
    }
    vg_ruleset_options_t ro = {.text_fields = (const char *const *)cfg->text_fields.items,
                               .n_text_fields = cfg->text_fields.count,
                               .max_compile_seconds = (unsigned)cfg->rules_max_compile_seconds,
                               .max_compile_memory = cfg->rules_max_compile_memory * 1024 * 1024,
                               .cancel = &stop_requested,
                               .tick = watchdog_usec ? compile_tick : NULL,
                               .tick_arg = watchdog_usec};
    vg_ruleset_t *rs = vg_ruleset_load((const char *const *)cfg->rule_paths.items,
                                       cfg->rule_paths.count, &ro, d);
    /* An alert topic that is an input, dead-letter or checkpoint topic. */
    if (rs && vg_config_check_rule_topics(cfg, rs, d) > 0) {
        vg_ruleset_destroy(rs);
        rs = NULL;
    }
    for (size_t i = 0; i < vg_diags_count(d); i++) {
        const vg_diag_t *m = vg_diags_get(d, i);
        char at[600];
        if (m->line)
            snprintf(at, sizeof(at), "%s:%u:%u", m->file ? m->file : "-", m->line, m->col);
        else
            snprintf(at, sizeof(at), "%s", m->file ? m->file : "-");
        vg_log_kv(levels[m->level <= VG_DIAG_NOTE ? m->level : VG_DIAG_NOTE], m->message,
                  VG_LOG_STR("at", at));
    }
    if (!rs)
        vg_log_kv(VG_LOG_ERROR, "no rules loaded", VG_LOG_UINT("errors", vg_diags_errors(d)));
    vg_diags_destroy(d);
    return rs;
}

/* systemd's notify protocol (Type=notify): READY once the rules are
 * loaded and the Kafka clients created (not once consuming: a broker
 * down at boot or an input topic not created yet must not make the start
 * time out and restart in a loop), RELOADING/READY around reloads,
 * STOPPING, WATCHDOG pings from the main loop, STATUS with what consuming
 * waits for, then with counts. Outside systemd these do nothing. */
typedef struct notifier {
    const vg_config_t *cfg;
    uint64_t watchdog_usec;
    struct timespec last_ping, last_status, last_log_tick;
    vg_watch_t *watch;  /* rules.watch; NULL when off */
    char awaiting[256]; /* as last said in STATUS= */
} notifier_t;

static vg_ruleset_t *reload_rules(void *arg)
{
    notifier_t *n = arg;
    sd_notify(0, "RELOADING=1\nSTATUS=Reloading rules");
    vg_ruleset_t *rs = load_rules(n->cfg, &n->watchdog_usec);
    sd_notifyf(0, "READY=1\nSTATUS=%s", rs ? "Rules reloaded" : "Reload failed; old rules kept");
    return rs;
}

static void on_started(void *arg, const char *awaiting)
{
    notifier_t *n = arg;
    snprintf(n->awaiting, sizeof(n->awaiting), "%s", awaiting);
    if (awaiting[0])
        sd_notifyf(0, "READY=1\nSTATUS=Waiting for %s", awaiting);
    else
        sd_notify(0, "READY=1\nSTATUS=Consuming");
}

static double since(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void on_tick(void *arg, const vg_pipeline_stats_t *st)
{
    notifier_t *n = arg;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    /* Ping at half the watchdog interval: a stuck main loop stops pinging. */
    if (n->watchdog_usec && since(&n->last_ping, &now) * 1e6 > (double)n->watchdog_usec / 2) {
        sd_notify(0, "WATCHDOG=1");
        n->last_ping = now;
    }
    /* Rule files edited and quiet since: the same reload as SIGHUP. */
    vg_watch_change_t change;
    if (n->watch &&
        vg_watch_poll(n->watch, (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u,
                      &change)) {
        vg_log_kv(VG_LOG_INFO, "rule files changed; reloading",
                  VG_LOG_UINT("events", change.events), VG_LOG_STR("last", change.last));
        reload_requested = 1;
    }
    /* Summaries of rate-limited log lines come out even when quiet. */
    if (since(&n->last_log_tick, &now) >= 1.0) {
        vg_log_tick();
        n->last_log_tick = now;
    }
    /* What consuming waits for, as soon as that changes; else counts. */
    bool changed = strcmp(n->awaiting, st->awaiting) != 0;
    if (changed)
        snprintf(n->awaiting, sizeof(n->awaiting), "%s", st->awaiting);
    if (changed && !st->awaiting[0])
        sd_notify(0, "STATUS=Consuming");
    else if (changed || (st->awaiting[0] && since(&n->last_status, &now) >= 5.0))
        sd_notifyf(0, "STATUS=Waiting for %s", st->awaiting);
    else if (since(&n->last_status, &now) >= 5.0)
        sd_notifyf(0, "STATUS=Consumed %llu events; %llu alerts, %llu dead-lettered",
                   (unsigned long long)st->consumed, (unsigned long long)st->alerts,
                   (unsigned long long)st->dead_lettered);
    else
        return;
    n->last_status = now;
}

/* SIGTERM/SIGINT ask the loop to stop, SIGHUP to reload; the handlers
 * only set flags. */
static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* rules.watch: reload when a rule file changes. Not fatal: the rules are
 * loaded and SIGHUP still reloads. */
static void start_watching(notifier_t *nt)
{
    const vg_config_t *cfg = nt->cfg;
    char err[512];
    if (!cfg->rules_watch)
        return;
    nt->watch = vg_watch_new((const char *const *)cfg->rule_paths.items, cfg->rule_paths.count,
                             (unsigned)cfg->rules_watch_quiet_ms, err, sizeof(err));
    if (nt->watch)
        vg_log_kv(VG_LOG_INFO, "watching rule files",
                  VG_LOG_UINT("paths", cfg->rule_paths.count),
                  VG_LOG_STR("first", cfg->rule_paths.items[0]),
                  VG_LOG_UINT("quiet_ms", cfg->rules_watch_quiet_ms));
    else
        vg_log_kv(VG_LOG_ERROR, "rule files are not watched; SIGHUP still reloads",
                  VG_LOG_STR("err", err));
}

int vg_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"log-format", required_argument, NULL, 'F'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL;
    bool verbose = false;
    vg_log_format_t log_format = VG_LOG_LOGFMT;
    bool log_format_given = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:v", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'v': verbose = true; break;
        case 'F':
            if (vg_log_format_parse(optarg, &log_format) != 0) {
                fprintf(stderr, "vigil run: --log-format must be logfmt or json, got '%s'\n",
                        optarg);
                return VG_EXIT_USAGE;
            }
            log_format_given = true;
            break;
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
    /* From here on every event of note is a log line: --log-format and
     * --verbose win over log.format and log.level. */
    vg_log_options_t lo;
    vg_log_options_default(&lo);
    lo.format = log_format_given ? log_format : (vg_log_format_t)cfg->log_format;
    lo.level = verbose ? VG_LOG_DEBUG : (vg_log_level_t)cfg->log_level;
    vg_log_configure(&lo);
    /* A property librdkafka refuses would fail the same way at every
     * restart: an invalid configuration (exit 1), found before the rules
     * are compiled. */
    char err[512];
    if (vg_pipeline_check_properties(cfg, err, sizeof(err)) > 0) {
        vg_log_kv(VG_LOG_ERROR, "invalid kafka.properties", VG_LOG_STR("err", err),
                  VG_LOG_STR("config", config));
        vg_log_flush();
        vg_config_destroy(cfg);
        return VG_EXIT_INVALID;
    }
    vg_ruleset_t *rs = load_rules(cfg, NULL);
    if (!rs) {
        vg_config_destroy(cfg);
        return VG_EXIT_INVALID;
    }
    install_signals();

    /* The endpoint comes up before Kafka: a metrics address that cannot
     * be bound is a configuration error to report now, not after joining
     * the group. */
    vg_metrics_t *metrics = NULL;
    vg_metrics_http_t *http = NULL;
    if (!vg_metrics_listen_off(cfg->metrics_listen)) {
        metrics = vg_metrics_new();
        vg_metrics_http_opts_t ho = {
            .max_connections = (unsigned)cfg->metrics_max_connections,
            .max_per_client = (unsigned)cfg->metrics_max_per_client,
            .request_timeout_ms = (unsigned)cfg->metrics_request_timeout_ms};
        http = metrics ? vg_metrics_http_start_opts(cfg->metrics_listen, metrics, &ho, err,
                                                    sizeof(err))
                       : NULL;
        if (!http) {
            fprintf(stderr, "vigil run: %s\n",
                    metrics ? err : "out of memory setting up metrics");
            vg_metrics_destroy(metrics);
            vg_ruleset_destroy(rs);
            vg_config_destroy(cfg);
            return VG_EXIT_RUNTIME;
        }
    }

    notifier_t nt = {.cfg = cfg};
    if (sd_watchdog_enabled(0, &nt.watchdog_usec) <= 0)
        nt.watchdog_usec = 0;
    clock_gettime(CLOCK_MONOTONIC, &nt.last_ping);
    nt.last_status = nt.last_log_tick = nt.last_ping;
    start_watching(&nt);
    vg_pipeline_opts_t po = {.workers = vg_cli_default_workers(1),
                             .stop = &stop_requested, .reload = &reload_requested,
                             .reload_fn = reload_rules, .reload_arg = &nt,
                             .on_started = on_started, .started_arg = &nt,
                             .on_tick = on_tick, .tick_arg = &nt,
                             .metrics = metrics};
    int rc = vg_pipeline_run(cfg, rs, &po, NULL, err, sizeof(err));
    sd_notify(0, "STOPPING=1");
    vg_watch_destroy(nt.watch);
    vg_metrics_http_stop(http);
    vg_metrics_destroy(metrics);
    if (rc != 0)
        vg_log_kv(VG_LOG_ERROR, "cannot run", VG_LOG_STR("err", err));
    vg_log_flush();
    vg_config_destroy(cfg);
    return rc == 0 ? VG_EXIT_OK : VG_EXIT_RUNTIME;
}
