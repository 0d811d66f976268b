/* The vigil subcommands. Each returns the process exit status:
 * 0 success, 1 invalid rules/config or failed tests, 2 usage error,
 * 3 runtime failure. */
#ifndef VIGIL_COMMANDS_H
#define VIGIL_COMMANDS_H

#include <stdio.h>

#include "vigil/ruleset.h"

enum { VG_EXIT_OK = 0, VG_EXIT_INVALID = 1, VG_EXIT_USAGE = 2, VG_EXIT_RUNTIME = 3 };

int vg_cmd_run(int argc, char **argv);
int vg_cmd_demo(int argc, char **argv);
int vg_cmd_check(int argc, char **argv);
int vg_cmd_test(int argc, char **argv);
int vg_cmd_scan(int argc, char **argv);
int vg_cmd_eval(int argc, char **argv);

/* Loads rules from paths, printing every diagnostic to stderr. */
vg_ruleset_t *vg_cli_load_rules(const char *const *paths, size_t n,
                                const char *const *text_fields, size_t n_text_fields);

/* Splits "a,b,c" (a --text-fields value) into a malloc'd array of
 * pointers into s, which it modifies; empty items are skipped. *n gets the
 * count. NULL when out of memory. */
char **vg_cli_split_commas(char *s, size_t *n);

/* Prints "vigil <cmd>: <usage>" style help. */
void vg_cli_usage(FILE *f, const char *cmd);

#endif
