/* A YAML document loaded into a read-only tree that remembers where each
 * node was written, for error messages with file:line:column. Loading is
 * bounded: file size, nesting depth and the number of nodes after alias
 * expansion are limited, so hostile files (billion laughs, deep nesting)
 * are refused instead of exhausting memory. */
#ifndef VIGIL_YAML_H
#define VIGIL_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include "vigil/diag.h"

typedef enum { VG_YNODE_SCALAR, VG_YNODE_SEQ, VG_YNODE_MAP } vg_ynode_kind_t;

/* Scalar types of YAML 1.2's core schema. A quoted scalar is always a
 * string; a plain one is typed by its text. */
typedef enum {
    VG_YSCALAR_STRING,
    VG_YSCALAR_NULL,
    VG_YSCALAR_BOOL,
    VG_YSCALAR_INT,
    VG_YSCALAR_FLOAT
} vg_yscalar_t;

typedef struct vg_ynode vg_ynode_t;
struct vg_ynode {
    vg_ynode_kind_t kind;
    unsigned line, col;  /* 1-based position of the node's first character */
    /* scalars */
    const char *str;     /* NUL-terminated text as written (after YAML unescaping) */
    size_t len;          /* may be > strlen(str) if the scalar holds NUL */
    vg_yscalar_t type;
    bool quoted;
    double num;          /* INT and FLOAT */
    bool boolean;        /* BOOL */
    /* sequences: items[0..count); maps: items[2*i] is key i (always a
     * scalar), items[2*i+1] its value */
    const vg_ynode_t *const *items;
    size_t count;
};

/* A field left 0 takes its default. */
typedef struct vg_ylimits {
    size_t max_bytes;  /* file size; default 16 MiB */
    size_t max_depth;  /* nesting of sequences/maps; default 64 */
    size_t max_nodes;  /* nodes after alias expansion; default 1,000,000 */
} vg_ylimits_t;

#define VG_YAML_MAX_BYTES ((size_t)16 * 1024 * 1024)
#define VG_YAML_MAX_DEPTH ((size_t)64)
#define VG_YAML_MAX_NODES ((size_t)1000000)

typedef struct vg_ydoc vg_ydoc_t;

/* Loads one YAML document from a file or a buffer. limits may be NULL for
 * the defaults. On failure returns NULL and adds an error with the
 * location to diags (never NULL). Multiple documents in one stream,
 * duplicate keys in a map and non-scalar keys are errors. An empty
 * document loads with a NULL root. The caller owns the result.
 *
 * The input must be UTF-8 (a BOM is skipped) without NUL bytes. An alias
 * is not copied: it is the anchored node itself, so the tree may be a DAG
 * and an aliased node reports the anchor's line:col. The core-schema tags
 * !!str, !!int, !!float, !!bool, !!null, !!seq, !!map and the
 * non-specific "!" are honoured; any other tag is an error. "<<" is an
 * ordinary key (YAML 1.2 has no merge keys). */
vg_ydoc_t *vg_ydoc_load_file(const char *path, const vg_ylimits_t *limits, vg_diags_t *diags);
vg_ydoc_t *vg_ydoc_load_buffer(const char *name, const char *buf, size_t len,
                               const vg_ylimits_t *limits, vg_diags_t *diags);
void vg_ydoc_destroy(vg_ydoc_t *doc);

const vg_ynode_t *vg_ydoc_root(const vg_ydoc_t *doc);
/* The file name given at load; owned by doc. */
const char *vg_ydoc_name(const vg_ydoc_t *doc);
/* The raw bytes that were parsed; owned by doc. */
const char *vg_ydoc_bytes(const vg_ydoc_t *doc, size_t *len);

/* Value for key in a map node, or NULL. */
const vg_ynode_t *vg_ynode_get(const vg_ynode_t *map, const char *key);
/* Human name of a node's kind for messages: "a string", "a list", "a map",
 * "a number", "a boolean", "null". */
const char *vg_ynode_describe(const vg_ynode_t *node);

#endif
