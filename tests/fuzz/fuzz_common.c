/* What every fuzz target shares (fuzz.h): verbosity and the checks of a
 * loader's diagnostics. Uses the base layer only, so that any target can
 * link it. */
#include <string.h>

#include "fuzz.h"

bool fuzz_verbose(void)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("VIGIL_FUZZ_VERBOSE") != NULL;
    return verbose;
}

void fuzz_check_diags(const vg_diags_t *d, bool got_result, const char *what)
{
    char line[512];
    for (size_t i = 0; i < vg_diags_count(d); i++) {
        vg_diags_format(d, i, line, sizeof(line));
        if (!memchr(line, '\0', sizeof(line)))
            fuzz_fail("diagnostic %zu is not NUL-terminated", i);
    }
    if (got_result && vg_diags_errors(d))
        fuzz_fail("a %s came back with %zu errors", what, vg_diags_errors(d));
    if (!got_result && !vg_diags_errors(d))
        fuzz_fail("no %s and no error message", what);
    if (fuzz_verbose())
        vg_diags_print(d, stderr);
}
