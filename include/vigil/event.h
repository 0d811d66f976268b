/* Events: one JSON object per Kafka message or input line. Decoding
 * enforces the input limits that DESIGN.md names: a message that is not a
 * JSON object, is not valid UTF-8, is larger than max_bytes or nested
 * deeper than max_depth is refused with a reason (and then dead-lettered
 * or reported by the caller, never dropped). */
#ifndef VIGIL_EVENT_H
#define VIGIL_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
struct vg_path; /* vg_path_t, daemon/base/path.h */

typedef enum {
    VG_EVENT_OK = 0,
    VG_EVENT_TOO_LARGE,
    VG_EVENT_BAD_UTF8,
    VG_EVENT_TOO_DEEP,
    VG_EVENT_BAD_JSON,
    VG_EVENT_NOT_OBJECT
} vg_event_status_t;

typedef struct vg_event_limits {
    size_t max_bytes; /* default 1 MiB */
    size_t max_depth; /* default 64 */
} vg_event_limits_t;

typedef struct vg_decoder vg_decoder_t;
typedef struct vg_event vg_event_t;

/* A decoder holds reusable parser state; one per thread. limits may be
 * NULL for the defaults. */
vg_decoder_t *vg_decoder_new(const vg_event_limits_t *limits);
void vg_decoder_destroy(vg_decoder_t *dec);

/* Decodes buf[0..len). On success stores a new event in *out (the caller
 * destroys it) and returns VG_EVENT_OK. Otherwise returns the status and
 * writes a one-line reason into err. buf must stay valid while the event
 * lives (the event refers to it for its raw text). */
vg_event_status_t vg_decoder_parse(vg_decoder_t *dec, const char *buf, size_t len,
                                   vg_event_t **out, char *err, size_t err_size);

/* A short stable name of a status, used as the vigil-error header prefix
 * and in metrics: "too_large", "invalid_utf8", "too_deep", "invalid_json",
 * "not_object". */
const char *vg_event_status_name(vg_event_status_t st);

void vg_event_destroy(vg_event_t *ev);

/* The decoded object, owned by the event. */
struct json_object *vg_event_json(const vg_event_t *ev);
/* The original bytes. */
const char *vg_event_raw(const vg_event_t *ev, size_t *len);
/* False when the original bytes are JSON but not I-JSON (RFC 7493): a
 * lone surrogate escape, a key repeated in one object, or a number beyond
 * the range of a double (1e999). Alerts then embed the event as decoded
 * (alert.c) instead of its bytes. */
bool vg_event_is_ijson(const vg_event_t *ev);

/* ---- field paths ----
 * The one walker of dotted paths over a decoded event, for rules, alert
 * summaries, group keys and event times alike. */

/* Called for each value a path reaches (NULL for a JSON null); returning
 * true stops the walk. */
typedef bool (*vg_json_leaf_fn)(struct json_object *leaf, void *arg);

/* Calls fn for every value at parts[0..nparts) below o, flattening arrays
 * on the way and at the end (each element is walked, so a path through a
 * list of objects reaches the field of every one). Returns true when fn
 * stopped the walk. */
bool vg_json_walk(struct json_object *o, char *const *parts, size_t nparts, vg_json_leaf_fn fn,
                  void *arg);
/* The same from the event's root. */
bool vg_event_walk(const vg_event_t *ev, const struct vg_path *p, vg_json_leaf_fn fn, void *arg);

/* How vg_json_lookup treats an array on the way to the last key. */
typedef enum {
    VG_LOOKUP_OBJECTS, /* objects only: an array on the way means no value */
    VG_LOOKUP_FIRST    /* an array on the way stands for its first element */
} vg_lookup_mode_t;

/* The one value at path p below o, as it is (an array at the end is
 * returned whole), or NULL when there is none (or it is a JSON null). */
struct json_object *vg_json_lookup(struct json_object *o, const struct vg_path *p,
                                   vg_lookup_mode_t mode);

/* The event time at p (arrays on the way stand for their first element):
 * a string in RFC 3339, a date, or epoch seconds/milliseconds, or an
 * epoch number (see vg_state_parse_time). true and *ms when there is one
 * and it parses. */
bool vg_event_time(const vg_event_t *ev, const struct vg_path *p, int64_t *ms);

#endif
