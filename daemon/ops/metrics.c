/* The Prometheus registry. One mutex guards everything: the pipeline's
 * main thread takes it for a few nanoseconds per update, the HTTP thread
 * for the length of one render; neither is frequent enough for a finer
 * scheme to pay. Series of a family sit in a hash table (label values ->
 * series) for updates and in a list for rendering in creation order. */
#include "vigil/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "list.h"
#include "strbuf.h"

typedef struct series {
    uint64_t hash;
    char **values;     /* family->nlabels strings, allocated with the series */
    double value;      /* counter, gauge; histogram: sum */
    uint64_t *buckets; /* histogram: nbounds + 1 counts, not cumulative */
    uint64_t count;    /* histogram */
    struct series *hnext;
    struct series *prev, *next;
} series_t;

struct vg_metric {
    vg_metrics_t *reg;
    char *name, *help;
    vg_metric_type_t type;
    char **labels;
    size_t nlabels;
    double *bounds;
    size_t nbounds;
    series_t **table;
    size_t table_size, nseries;
    series_t *first, *last;
    struct vg_metric *next;
};

struct vg_metrics {
    pthread_mutex_t lock;
    vg_metric_t *first, *last;
    bool health_set, healthy;
    char health[256]; /* why not healthy */
    double health_at;
};

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- names ---- */

static bool name_ok(const char *s, bool colon)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                     (colon && c == ':');
        if (!alpha && !(p > s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* ---- series ---- */

static uint64_t hash_values(const char *const *values, size_t n)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++)
            h = (h ^ *p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL; /* no UTF-8 byte: separates values */
    }
    return h;
}

static bool same_values(const series_t *s, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->values[i], values[i]) != 0)
            return false;
    return true;
}

static series_t *find_series(vg_metric_t *f, const char *const *values, uint64_t h)
{
    if (!f->table_size)
        return NULL;
    for (series_t *s = f->table[h % f->table_size]; s; s = s->hnext)
        if (s->hash == h && same_values(s, values, f->nlabels))
            return s;
    return NULL;
}

static bool grow_table(vg_metric_t *f)
{
    size_t n = f->table_size ? f->table_size * 2 : 16;
    series_t **t = calloc(n, sizeof(*t));
    if (!t)
        return false;
    for (series_t *s = f->first; s; s = s->next) {
        s->hnext = t[s->hash % n];
        t[s->hash % n] = s;
    }
    free(f->table);
    f->table = t;
    f->table_size = n;
    return true;
}

/* The series for values, created at zero when missing; NULL when out of
 * memory. */
static series_t *get_series(vg_metric_t *f, const char *const *values)
{
    uint64_t h = hash_values(values, f->nlabels);
    series_t *s = find_series(f, values, h);
    if (s)
        return s;
    if (f->nseries >= f->table_size && !grow_table(f))
        return NULL;
    /* One allocation: the series, its value pointers, then the strings. */
    size_t size = sizeof(*s) + f->nlabels * sizeof(char *);
    for (size_t i = 0; i < f->nlabels; i++)
        size += strlen(values[i]) + 1;
    s = calloc(1, size);
    if (!s)
        return NULL;
    if (f->type == VG_METRIC_HISTOGRAM) {
        s->buckets = calloc(f->nbounds + 1, sizeof(*s->buckets));
        if (!s->buckets) {
            free(s);
            return NULL;
        }
    }
    s->values = (char **)(s + 1);
    char *p = (char *)(s->values + f->nlabels);
    for (size_t i = 0; i < f->nlabels; i++) {
        size_t n = strlen(values[i]) + 1;
        memcpy(p, values[i], n);
        s->values[i] = p;
        p += n;
    }
    s->hash = h;
    s->hnext = f->table[h % f->table_size];
    f->table[h % f->table_size] = s;
    VG_DLIST_APPEND(f->first, f->last, s, prev, next);
    f->nseries++;
    return s;
}

static void free_series(series_t *s)
{
    free(s->buckets);
    free(s);
}

static void unlink_series(vg_metric_t *f, series_t *s)
{
    series_t **pp = &f->table[s->hash % f->table_size];
    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    VG_DLIST_UNLINK(f->first, f->last, s, prev, next);
    f->nseries--;
    free_series(s);
}

/* ---- registry ---- */

vg_metrics_t *vg_metrics_new(void)
{
    vg_metrics_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

static void free_family(vg_metric_t *f)
{
    if (!f)
        return;
    VG_LIST_FREE(f->first, next, free_series);
    free(f->table);
    for (size_t i = 0; f->labels && i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->labels);
    free(f->bounds);
    free(f->name);
    free(f->help);
    free(f);
}

void vg_metrics_destroy(vg_metrics_t *m)
{
    if (!m)
        return;
    VG_LIST_FREE(m->first, next, free_family);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static bool same_shape(const vg_metric_t *f, vg_metric_type_t type, const char *const *labels,
                       size_t nlabels, const double *bounds, size_t nbounds)
{
    if (f->type != type || f->nlabels != nlabels || f->nbounds != nbounds)
        return false;
    for (size_t i = 0; i < nlabels; i++)
        if (strcmp(f->labels[i], labels[i]) != 0)
            return false;
    for (size_t i = 0; i < nbounds; i++)
        if (f->bounds[i] != bounds[i])
            return false;
    return true;
}

static vg_metric_t *add_family(vg_metrics_t *m, vg_metric_type_t type, const char *name,
                               const char *help, const char *const *labels, size_t nlabels,
                               const double *bounds, size_t nbounds)
{
    if (!m || !name_ok(name, true) || (nlabels && !labels) || (nbounds && !bounds))
        return NULL;
    for (size_t i = 0; i < nlabels; i++)
        /* "__" names are Prometheus's own; "le" is the histogram's. */
        if (!name_ok(labels[i], false) || strncmp(labels[i], "__", 2) == 0 ||
            strcmp(labels[i], "le") == 0)
            return NULL;
    for (size_t i = 0; i < nbounds; i++)
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return NULL;

    pthread_mutex_lock(&m->lock);
    vg_metric_t *f = NULL;
    for (vg_metric_t *g = m->first; g; g = g->next)
        if (strcmp(g->name, name) == 0) {
            f = same_shape(g, type, labels, nlabels, bounds, nbounds) ? g : NULL;
            pthread_mutex_unlock(&m->lock);
            return f;
        }
    f = calloc(1, sizeof(*f));
    if (!f)
        goto fail;
    f->reg = m;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->labels = nlabels ? calloc(nlabels, sizeof(char *)) : NULL;
    f->bounds = nbounds ? malloc(nbounds * sizeof(double)) : NULL;
    if (!f->name || !f->help || (nlabels && !f->labels) || (nbounds && !f->bounds))
        goto fail;
    f->nlabels = nlabels;
    for (size_t i = 0; i < nlabels; i++)
        if (!(f->labels[i] = strdup(labels[i])))
            goto fail;
    if (nbounds)
        memcpy(f->bounds, bounds, nbounds * sizeof(double));
    f->nbounds = nbounds;
    /* A family without labels always has its one series, so it shows up
     * (at 0) from the first scrape. */
    if (nlabels == 0 && !get_series(f, NULL))
        goto fail;
    VG_SLIST_APPEND(m->first, m->last, f, next);
    pthread_mutex_unlock(&m->lock);
    return f;
fail:
    pthread_mutex_unlock(&m->lock);
    free_family(f);
    return NULL;
}

vg_metric_t *vg_metrics_counter(vg_metrics_t *m, const char *name, const char *help,
                                const char *const *labels, size_t nlabels)
{
    return add_family(m, VG_METRIC_COUNTER, name, help, labels, nlabels, NULL, 0);
}

vg_metric_t *vg_metrics_gauge(vg_metrics_t *m, const char *name, const char *help,
                              const char *const *labels, size_t nlabels)
{
    return add_family(m, VG_METRIC_GAUGE, name, help, labels, nlabels, NULL, 0);
}

vg_metric_t *vg_metrics_histogram(vg_metrics_t *m, const char *name, const char *help,
                                  const double *bounds, size_t nbounds)
{
    return add_family(m, VG_METRIC_HISTOGRAM, name, help, NULL, 0, bounds, nbounds);
}

/* ---- updates ---- */

/* Adds v to the series for values (add), or sets it to v. */
static void update_value(vg_metric_t *f, const char *const *values, double v, bool add)
{
    if (!f || f->type == VG_METRIC_HISTOGRAM)
        return;
    pthread_mutex_lock(&f->reg->lock);
    series_t *s = get_series(f, values);
    if (s)
        s->value = add ? s->value + v : v;
    pthread_mutex_unlock(&f->reg->lock);
}

void vg_metric_add(vg_metric_t *f, const char *const *values, double delta)
{
    update_value(f, values, delta, true);
}

void vg_metric_set(vg_metric_t *f, const char *const *values, double v)
{
    update_value(f, values, v, false);
}

void vg_metric_observe(vg_metric_t *f, double v)
{
    if (!f || f->type != VG_METRIC_HISTOGRAM || isnan(v))
        return;
    /* The first bucket whose bound is >= v; the last one is +Inf. */
    size_t lo = 0, hi = f->nbounds;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v <= f->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    pthread_mutex_lock(&f->reg->lock);
    series_t *s = f->first;
    s->buckets[lo]++;
    s->count++;
    s->value += v;
    pthread_mutex_unlock(&f->reg->lock);
}

void vg_metric_remove(vg_metric_t *f, const char *const *values)
{
    if (!f || f->nlabels == 0)
        return;
    pthread_mutex_lock(&f->reg->lock);
    series_t *s = find_series(f, values, hash_values(values, f->nlabels));
    if (s)
        unlink_series(f, s);
    pthread_mutex_unlock(&f->reg->lock);
}

void vg_metric_replace(vg_metric_t *f, const char *const *values, double v)
{
    if (!f || f->type == VG_METRIC_HISTOGRAM)
        return;
    pthread_mutex_lock(&f->reg->lock);
    uint64_t h = hash_values(values, f->nlabels);
    series_t *keep = find_series(f, values, h);
    for (series_t *s = f->first, *next; s; s = next) {
        next = s->next;
        if (s != keep)
            unlink_series(f, s);
    }
    series_t *s = keep ? keep : get_series(f, values);
    if (s)
        s->value = v;
    pthread_mutex_unlock(&f->reg->lock);
}

double vg_metric_value(vg_metric_t *f, const char *const *values)
{
    if (!f)
        return NAN;
    pthread_mutex_lock(&f->reg->lock);
    series_t *s = find_series(f, values, hash_values(values, f->nlabels));
    double v = !s ? NAN : f->type == VG_METRIC_HISTOGRAM ? (double)s->count : s->value;
    pthread_mutex_unlock(&f->reg->lock);
    return v;
}

/* ---- exposition ---- */

/* The shortest text that reads back as the same double, so counters
 * print as "42" and bucket bounds as "0.005", not "0.0050000000000000001". */
static const char *fmt_double(double v, char *buf, size_t size)
{
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(buf, size, "%.0f", v);
        return buf;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

/* HELP text escapes backslash and newline; label values also '"'. */
static void put_escaped(vg_strbuf_t *sb, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            vg_strbuf_puts(sb, "\\\\");
        else if (*s == '\n')
            vg_strbuf_puts(sb, "\\n");
        else if (quote && *s == '"')
            vg_strbuf_puts(sb, "\\\"");
        else
            vg_strbuf_putc(sb, *s);
    }
}

/* name{labels[,le="bound"]} value */
static void put_sample(vg_strbuf_t *sb, const vg_metric_t *f, const char *suffix,
                       const series_t *s, const char *le, double v)
{
    vg_strbuf_puts(sb, f->name);
    vg_strbuf_puts(sb, suffix);
    if (f->nlabels || le) {
        vg_strbuf_putc(sb, '{');
        for (size_t i = 0; i < f->nlabels; i++) {
            if (i)
                vg_strbuf_putc(sb, ',');
            vg_strbuf_puts(sb, f->labels[i]);
            vg_strbuf_puts(sb, "=\"");
            put_escaped(sb, s->values[i], true);
            vg_strbuf_putc(sb, '"');
        }
        if (le) {
            vg_strbuf_puts(sb, f->nlabels ? ",le=\"" : "le=\"");
            vg_strbuf_puts(sb, le);
            vg_strbuf_putc(sb, '"');
        }
        vg_strbuf_putc(sb, '}');
    }
    char num[40];
    vg_strbuf_putc(sb, ' ');
    vg_strbuf_puts(sb, fmt_double(v, num, sizeof(num)));
    vg_strbuf_putc(sb, '\n');
}

static void put_family(vg_strbuf_t *sb, const vg_metric_t *f)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    vg_strbuf_printf(sb, "# HELP %s ", f->name);
    put_escaped(sb, f->help, false);
    vg_strbuf_printf(sb, "\n# TYPE %s %s\n", f->name, types[f->type]);
    for (const series_t *s = f->first; s; s = s->next) {
        if (f->type != VG_METRIC_HISTOGRAM) {
            put_sample(sb, f, "", s, NULL, s->value);
            continue;
        }
        uint64_t cum = 0;
        for (size_t i = 0; i <= f->nbounds; i++) {
            char le[40];
            cum += s->buckets[i];
            put_sample(sb, f, "_bucket", s,
                       i < f->nbounds ? fmt_double(f->bounds[i], le, sizeof(le)) : "+Inf",
                       (double)cum);
        }
        put_sample(sb, f, "_sum", s, NULL, s->value);
        put_sample(sb, f, "_count", s, NULL, (double)s->count);
    }
}

char *vg_metrics_render(vg_metrics_t *m, size_t *len)
{
    if (!m)
        return NULL;
    vg_strbuf_t sb;
    vg_strbuf_init(&sb);
    pthread_mutex_lock(&m->lock);
    for (const vg_metric_t *f = m->first; f; f = f->next)
        put_family(&sb, f);
    pthread_mutex_unlock(&m->lock);
    if (vg_strbuf_failed(&sb)) {
        vg_strbuf_free(&sb);
        return NULL;
    }
    return vg_strbuf_detach(&sb, len);
}

/* ---- health ---- */

void vg_metrics_set_health(vg_metrics_t *m, const char *reason)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->health_set = true;
    m->healthy = reason == NULL;
    snprintf(m->health, sizeof(m->health), "%s", reason ? reason : "");
    m->health_at = mono_now();
    pthread_mutex_unlock(&m->lock);
}

bool vg_metrics_health(vg_metrics_t *m, double stall_s, char *reason, size_t reason_size)
{
    if (!m) {
        snprintf(reason, reason_size, "no metrics");
        return false;
    }
    pthread_mutex_lock(&m->lock);
    double age = mono_now() - m->health_at;
    bool ok = false;
    if (!m->health_set)
        snprintf(reason, reason_size, "starting");
    else if (age > stall_s)
        snprintf(reason, reason_size, "main loop has not reported for %.0f s", age);
    else if (!m->healthy)
        snprintf(reason, reason_size, "%s", m->health);
    else
        ok = true;
    pthread_mutex_unlock(&m->lock);
    if (ok && reason_size)
        reason[0] = '\0';
    return ok;
}
