/* Dotted field paths ("entities.name"): the one way rules, the state, the
 * alert renderer and the CLI name a field of an event. A path is split at
 * every dot once, when it is made, so that walking an event costs no
 * parsing. Walking a decoded event is the engine's (vg_event_walk in
 * include/vigil/event.h). */
#ifndef VIGIL_PATH_H
#define VIGIL_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* A dotted field path, split at the dots. Owns its strings. */
typedef struct vg_path {
    char *text;   /* as written, NUL-terminated */
    char **parts; /* nparts keys, each NUL-terminated */
    size_t nparts;
} vg_path_t;

/* Makes *p from text[0..len) (not NUL-terminated in general). Every dot
 * splits, so "a..b" has an empty middle key and "" one empty key. false
 * when out of memory (then *p holds what was made; vg_path_free frees
 * it). */
bool vg_path_init(vg_path_t *p, const char *text, size_t len);

/* The same for a NUL-terminated text. */
bool vg_path_init_str(vg_path_t *p, const char *text);

/* Frees what p owns and empties it (NULL and empty paths are fine). */
void vg_path_free(vg_path_t *p);

/* How many keys text[0..len) splits into: its dots + 1. */
size_t vg_path_count_parts(const char *text, size_t len);

#endif
