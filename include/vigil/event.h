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
struct vg_path;       /* vg_path_t, daemon/base/path.h */
struct vg_strbuf;     /* vg_strbuf_t, daemon/base/strbuf.h */
struct vg_rule_state; /* vg_rule_state_t, include/vigil/rule_state.h */
struct vg_evidence;   /* vg_evidence_t, include/vigil/scanner.h */

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

/* The limits that apply: those of limits (NULL or 0: the defaults). */
vg_event_limits_t vg_event_limits_or_defaults(const vg_event_limits_t *limits);

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

/* ---- the keys of stateful rules ----
 * What a stateful rule counts an event under (rules/README.md "Stateful
 * rules"): the case-folded text of the values at its group_by paths
 * (cut at VG_KEY_MAX_VALUE bytes, the separators below turned into
 * spaces), one key per combination of values. Found where the event is
 * decoded, so that the in-order state step need not keep the event. */
#define VG_KEY_MAX_KEYS 64    /* keys (and values of one path) per event and rule */
#define VG_KEY_MAX_VALUE 512  /* bytes of a value that count */
#define VG_KEY_MAX_PATHS 4    /* group_by paths of a rule */
#define VG_KEY_SEP_GROUP '\x1f'  /* between the values of a multi-path key */
#define VG_KEY_SEP_VALUE '\x1e'  /* first_seen: group key, then the value */
#define VG_KEY_SEP_WINDOW '\x1d' /* digest: group key, then the window */

/* Where vg_event_rule_keys puts what it finds: keys and values are the
 * caller's buffers, appended to. */
typedef struct vg_event_keys {
    struct vg_strbuf *keys;   /* nkeys keys, each NUL-terminated */
    size_t nkeys;
    uint64_t dropped;         /* keys over VG_KEY_MAX_KEYS left out */
    struct vg_strbuf *values; /* first_seen: nvalues values, each NUL-terminated */
    size_t nvalues;
} vg_event_keys_t;

/* The keys of ev for the stateful rule whose settings are cfg: its
 * aggregation's group_by (or, without an aggregation, its throttle's or
 * digest's), and a first_seen rule's values of its field. A `group_by:
 * $LIST` item takes the entity names of the rule's match, its evidence
 * evd[0..nevd). false when out of memory. */
bool vg_event_rule_keys(const vg_event_t *ev, const struct vg_rule_state *cfg,
                        const struct vg_evidence *evd, size_t nevd, vg_event_keys_t *out);

/* The distinct key texts of the values at p (arrays give one per
 * element), at most VG_KEY_MAX_KEYS, appended to out each NUL-terminated;
 * returns how many. */
size_t vg_event_key_values(const vg_event_t *ev, const struct vg_path *p, struct vg_strbuf *out);

#endif
