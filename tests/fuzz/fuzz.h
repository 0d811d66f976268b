/* The libFuzzer entry points of tests/fuzz/fuzz_*.c. Each target file
 * defines LLVMFuzzerTestOneInput (and may define LLVMFuzzerInitialize);
 * the same file is linked either with libFuzzer (-DVIGIL_FUZZ=ON, clang)
 * or with tests/fuzz/replay.c, which feeds it the committed regression
 * inputs and seeds in an ordinary ctest. A target reports a broken
 * invariant with fuzz_fail(), which aborts: libFuzzer then saves the input
 * and the replay test fails. */
#ifndef VIGIL_FUZZ_H
#define VIGIL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define fuzz_fail(...)                                                          \
    do {                                                                        \
        fprintf(stderr, "%s:%d: invariant broken: ", __FILE__, __LINE__);      \
        fprintf(stderr, __VA_ARGS__);                                           \
        fputc('\n', stderr);                                                    \
        abort();                                                                \
    } while (0)

#endif
