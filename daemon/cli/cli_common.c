/* What the commands share. */
#include "cli_common.h"

#include <unistd.h>

#include "vigil/log.h"
#include "vigil/workpool.h"

unsigned vg_cli_default_workers(unsigned one_core)
{
    /* One evaluation thread per core. The main thread (reading, polling,
     * producing) and librdkafka's threads mostly wait, so leaving them a
     * core of their own wasted it: on 2 cores, `vigil run` with 1 worker
     * ran 41,000 events/s end to end and with 2 workers 90,000
     * (tests/bench/bench_e2e.sh --terms sdn). On one core, `vigil scan`
     * evaluates on its main thread (its one core reads and writes; threads
     * would only add cost), while `vigil run` keeps one worker, to which
     * its main thread hands the large batches of a backlog and goes on
     * polling and serving delivery reports. */
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return (unsigned)vg_env_number("VIGIL_WORKERS", 0, VG_MAX_WORKERS,
                                   n > 1 ? (unsigned)(n > 16 ? 16 : n) : one_core);
}
