/* Files compiled into the program (cmake/embed.cmake), so that `vigil
 * demo` needs nothing on disk. */
#ifndef VIGIL_CLI_EMBEDDED_H
#define VIGIL_CLI_EMBEDDED_H

#include <stddef.h>

typedef struct vg_embedded {
    const char *path;          /* as in the source tree: "rules/x.yaml" */
    const unsigned char *data; /* the file's bytes, NUL-terminated */
    size_t len;                /* without the NUL */
} vg_embedded_t;

/* The demo's files: its events (rules/demo/events.jsonl) and the rule
 * packs it runs, in load order. */
extern const vg_embedded_t vigil_demo_assets[];
extern const size_t vigil_demo_assets_count;

#endif
