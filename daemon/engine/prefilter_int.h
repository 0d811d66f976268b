/* The pre-decode skip (prefilter.c): tells, from an event's raw bytes,
 * that no rule of the pool can match it and that it would decode without
 * an error, so that it need not be decoded. Private to the engine. */
#ifndef VIGIL_PREFILTER_INT_H
#define VIGIL_PREFILTER_INT_H

#include <hs/hs.h>
#include <stdbool.h>
#include <stddef.h>

#include "vigil/event.h"
#include "vigil/ruleset.h"

typedef struct vg_prefilter vg_prefilter_t;

/* A prefilter for the enabled stateless rules of rs (what
 * vg_scanner_eval evaluates), or NULL when it cannot help: when one of
 * them can hold without a keyword hit, a term is a user regex or a term
 * has no literal part to look for (and when out of memory or vectorscan
 * fails: the prefilter only saves time). rs must outlive it. */
vg_prefilter_t *vg_prefilter_new(const vg_ruleset_t *rs);
void vg_prefilter_destroy(vg_prefilter_t *pf);

/* Makes *scratch fit pf (one per thread; free with hs_free_scratch). 0,
 * or -1 when out of memory. */
int vg_prefilter_alloc_scratch(const vg_prefilter_t *pf, hs_scratch_t **scratch);

/* True when buf[0..len) is certain to decode as an event under limits
 * and certain to match no rule of pf: then it can be counted as an event
 * without alerts and not decoded. False means "maybe": decode it. */
bool vg_prefilter_skip(const vg_prefilter_t *pf, hs_scratch_t *scratch, const char *buf,
                       size_t len, const vg_event_limits_t *limits);

/* True when s[0..n) is a JSON object that the decoder accepts (under
 * max_depth, whatever its size) and whose decoded strings keep their
 * bytes: only ASCII, no \u escape, no integer long enough to be clamped.
 * Allocates nothing. False says nothing (the decoder decides). */
bool vg_json_plain_object(const char *s, size_t n, size_t max_depth);

/* event.c's fast skip over string bytes that need no attention (not '"',
 * '\\' or a control character): the index of the first one that does, or
 * a point near the end from which the caller goes on byte by byte. */
size_t vg_json_skip_plain(const char *s, size_t i, size_t n);

#endif
