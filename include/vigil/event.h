/* Events: one JSON object per Kafka message or input line. Decoding
 * enforces the input limits that DESIGN.md names: a message that is not a
 * JSON object, is not valid UTF-8, is larger than max_bytes or nested
 * deeper than max_depth is refused with a reason (and then dead-lettered
 * or reported by the caller, never dropped). */
#ifndef VIGIL_EVENT_H
#define VIGIL_EVENT_H

#include <stddef.h>

struct json_object;

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

#endif
