/* Event time of the stateful rules: the rule's time field (parsed by
 * vg_event_time), else the Kafka timestamp. */
#include "state_int.h"
#include "timefmt.h"

bool vg_state_parse_time(const char *s, size_t n, int64_t *ms)
{
    return vg_time_parse(s, n, ms);
}

int64_t vg_state_kafka_time(const vg_alert_source_t *src)
{
    /* The producer sets the Kafka timestamp: the same range as epoch
     * numbers, so that window arithmetic cannot overflow. */
    if (src && src->topic && src->timestamp_ms >= 0 &&
        src->timestamp_ms < INT64_C(1000000000000000))
        return src->timestamp_ms;
    return NO_TIME;
}

int64_t vg_state_event_time(const vg_state_t *st, const rstate_t *r, const vg_event_t *ev,
                            const vg_alert_source_t *src)
{
    const vg_path_t *p = r->cfg->time_field.text ? &r->cfg->time_field : &st->default_time;
    int64_t ms;
    return vg_event_time(ev, p, &ms) ? ms : vg_state_kafka_time(src);
}
