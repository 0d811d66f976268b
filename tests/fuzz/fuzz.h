/* The libFuzzer entry points of tests/fuzz/fuzz_*.c, and what the targets
 * share. Each target file defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize); the same file is linked either with libFuzzer
 * (-DVIGIL_FUZZ=ON, clang) or with tests/fuzz/replay.c, which feeds it the
 * committed regression inputs and seeds in an ordinary ctest. Every
 * target is linked with fuzz_common.c; those that evaluate events against
 * the repository's rules also with fuzz_engine.c. A target reports a
 * broken invariant with fuzz_fail(), which aborts: libFuzzer then saves
 * the input and the replay test fails. */
#ifndef VIGIL_FUZZ_H
#define VIGIL_FUZZ_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "vigil/diag.h"
#include "vigil/event.h"
#include "vigil/ruleset.h"
#include "vigil/scanner.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define fuzz_fail(...)                                                                             \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: invariant broken: ", __FILE__, __LINE__);                          \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

/* fuzz_common.c (every target) */

/* True when VIGIL_FUZZ_VERBOSE is set: targets then tell what each input
 * did on stderr. */
bool fuzz_verbose(void);

/* The checks of a loader's answer: every diagnostic in d formats into a
 * NUL-terminated line, and a result (got_result) came back exactly when no
 * error was reported. what names the result in the failure message
 * ("ruleset"). Under fuzz_verbose() the diagnostics are printed. */
void fuzz_check_diags(const vg_diags_t *d, bool got_result, const char *what);

/* fuzz_engine.c (fuzz_event, fuzz_state) */

/* The fixed setup of the targets that evaluate events: the *.yaml files
 * of VIGIL_FUZZ_RULES from the environment, else of the repository's
 * rules/ (compiled in), compiled once, with a scanner and a decoder for
 * them, and a strict, UTF-8-validating JSON parser for their output.
 * Made by LLVMFuzzerInitialize (defined in fuzz_engine.c) or on first use;
 * freed at exit. Fails (aborts) when the rules do not load. */
typedef struct fuzz_engine {
    vg_ruleset_t *rules;
    vg_scanner_t *scanner;
    vg_decoder_t *decoder;
    json_tokener *tok;
} fuzz_engine_t;

const fuzz_engine_t *fuzz_engine(void);

/* Checks that json[0..len) is one line holding exactly one strict JSON
 * object whose "rule" is rule_id, and returns that object (the caller puts
 * it). what names the alert in the failure message. */
json_object *fuzz_alert_object(const char *json, size_t len, const char *rule_id, const char *what);

#endif
