/* vigil: entry point and subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *usage;
    const char *summary;
} COMMANDS[] = {
    {"run", vg_cmd_run, "run --config FILE [--log-format logfmt|json] [--verbose]",
     "the daemon: consume, evaluate, alert"},
    {"demo", vg_cmd_demo, "demo",
     "the main job on an embedded default (in-process Kafka, bundled rules and events)"},
    {"check", vg_cmd_check, "check [--config FILE] [--text-fields a,b] [--strict] PATH...",
     "validate rule files and folders; list the rules"},
    {"test", vg_cmd_test, "test [--text-fields a,b] [--verbose] PATH...",
     "run the test cases embedded in rule files"},
    {"scan", vg_cmd_scan, "scan --rules PATH [--rules PATH...] [--time-field F] [FILE...|-]",
     "evaluate rules over JSON-lines files or stdin; print alerts as JSON lines"},
    {"eval", vg_cmd_eval, "eval --rules PATH --label FIELD=VALUE [--examples N] FILE...",
     "per-rule precision, recall and F1 against labelled events"},
};

void vg_cli_usage(FILE *f, const char *cmd)
{
    for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
        if (!cmd || strcmp(cmd, COMMANDS[i].name) == 0)
            fprintf(f, "usage: vigil %s\n       %s\n", COMMANDS[i].usage, COMMANDS[i].summary);
}

static void help(FILE *f)
{
    fprintf(f, "vigil %s: rule-based alerting over Kafka streams of news and trade events\n\n"
               "usage: vigil COMMAND [OPTIONS]\n\ncommands:\n",
            VIGIL_VERSION);
    for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
        fprintf(f, "  %-46s %s\n", COMMANDS[i].usage, COMMANDS[i].summary);
    fprintf(f, "\nEvery command takes --help. Exit status: 0 success, 1 invalid rules or config "
               "or failed tests,\n2 usage error, 3 runtime failure.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        help(stderr);
        return VG_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        help(stdout);
        return VG_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("vigil %s\n", VIGIL_VERSION);
        return VG_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++) {
        if (strcmp(argv[1], COMMANDS[i].name) != 0)
            continue;
        for (int a = 2; a < argc; a++) {
            if (strcmp(argv[a], "--") == 0)
                break;
            if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
                vg_cli_usage(stdout, COMMANDS[i].name);
                return VG_EXIT_OK;
            }
            if (strcmp(argv[a], "--version") == 0) {
                printf("vigil %s\n", VIGIL_VERSION);
                return VG_EXIT_OK;
            }
        }
        return COMMANDS[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "vigil: unknown command '%s'\n\n", argv[1]);
    help(stderr);
    return VG_EXIT_USAGE;
}
