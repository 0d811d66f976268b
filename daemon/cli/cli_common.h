/* What the commands share (private to daemon/cli). */
#ifndef VIGIL_CLI_COMMON_H
#define VIGIL_CLI_COMMON_H

/* How many evaluation threads to start: VIGIL_WORKERS when it is set (a
 * whole number up to VG_MAX_WORKERS; anything else is named in a warning
 * and ignored), else one per core, at most 16, and one_core on a machine
 * with one core. */
unsigned vg_cli_default_workers(unsigned one_core);

#endif
