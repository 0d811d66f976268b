/* The daemon's configuration file. One static table lists every key with
 * its type, default, bounds and meaning; the defaults, the parser, the
 * "unknown key, did you mean" hints and the range checks are all driven
 * by it, so adding a setting is adding a row. */
#include "vigil/config.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vigil/log.h"
#include "vigil/metrics_http.h"
#include "regfile.h"
#include "vigil/ruleset.h"
#include "vigil/yaml.h"

typedef enum {
    VG_CONF_STRING,     /* char *, non-empty */
    VG_CONF_STRLIST,    /* vg_strlist_t, at least one non-empty string */
    VG_CONF_SIZE,       /* size_t within [min, max] */
    VG_CONF_DELIVERY,   /* vg_delivery_t, one of vg_delivery_names */
    VG_CONF_PROPERTIES, /* prop_keys/prop_values: a map of scalars */
    VG_CONF_BOOL,       /* bool */
    VG_CONF_CHOICE,     /* int: the index of the value in def_list; def is the default */
} vg_conf_type_t;

/* Extra checks on a string (or each string of a list). */
typedef enum {
    VG_CHECK_NONE,
    VG_CHECK_TOPIC,      /* a legal Kafka topic name */
    VG_CHECK_FIELD_PATH, /* dot-separated, no empty segment */
    VG_CHECK_LISTEN,     /* host:port, or "off" */
} vg_conf_check_t;

typedef struct vg_conf_key {
    const char *path; /* dotted: "kafka.brokers" */
    vg_conf_type_t type;
    vg_conf_check_t check;
    size_t offset;                /* of the field in vg_config_t */
    const char *def;              /* STRING and DELIVERY default */
    const char *const *def_list;  /* STRLIST default / CHOICE names, NULL-terminated */
    size_t def_num, min, max;     /* SIZE default and bounds */
    const char *description;
} vg_conf_key_t;

static const char *const vg_default_topics[] = {"news", "trade", NULL};
static const char *const vg_default_rule_paths[] = {"/etc/vigil/rules.d", NULL};
static const char *const vg_default_text_fields[] = {"title", "body", NULL};

/* Indexed by vg_log_format_t and vg_log_level_t (vigil/log.h). */
static const char *const vg_log_format_names[] = {"logfmt", "json", NULL};
static const char *const vg_log_level_names[] = {"debug", "info", "warn", "error", NULL};
/* Indexed by vg_on_permanent_t (vigil/config.h). */
static const char *const vg_on_permanent_names[] = {"dead-letter", "block", "stop", NULL};

/* Indexed by vg_delivery_t. */
static const char *const vg_delivery_names[] = {"at-least-once", "exactly-once"};

#define VG_OFF(field) offsetof(vg_config_t, field)

static const vg_conf_key_t vg_conf_keys[] = {
    {"kafka.brokers", VG_CONF_STRING, VG_CHECK_NONE, VG_OFF(brokers), "127.0.0.1:9092", NULL,
     0, 0, 0, "bootstrap brokers, comma-separated host:port"},
    {"kafka.group", VG_CONF_STRING, VG_CHECK_NONE, VG_OFF(group), "vigil", NULL, 0, 0, 0,
     "consumer group id; instances in one group share the input"},
    {"kafka.properties", VG_CONF_PROPERTIES, VG_CHECK_NONE, VG_OFF(prop_keys), NULL, NULL, 0,
     0, 0, "librdkafka properties (security.protocol, sasl.*, ssl.*, ...), passed through"},
    {"input.topics", VG_CONF_STRLIST, VG_CHECK_TOPIC, VG_OFF(input_topics), NULL,
     vg_default_topics, 0, 0, 0, "topics to consume events from"},
    {"input.time_field", VG_CONF_STRING, VG_CHECK_FIELD_PATH, VG_OFF(time_field),
     "published_at", NULL, 0, 0, 0, "event field holding the event's time"},
    {"input.max_event_bytes", VG_CONF_SIZE, VG_CHECK_NONE, VG_OFF(max_event_bytes), NULL, NULL,
     1048576, 1024, 67108864, "larger events go to the dead-letter topic"},
    {"input.max_event_depth", VG_CONF_SIZE, VG_CHECK_NONE, VG_OFF(max_event_depth), NULL, NULL,
     64, 2, 1000, "events nested deeper go to the dead-letter topic"},
    {"input.accept_alerts", VG_CONF_BOOL, VG_CHECK_NONE, VG_OFF(accept_alerts), "false", NULL, 0,
     0, 0, "evaluate input messages that carry vigil's alert header (false: skip them)"},
    {"output.topic", VG_CONF_STRING, VG_CHECK_TOPIC, VG_OFF(output_topic), "alerts", NULL, 0, 0,
     0, "default alert topic; a rule's alert.topic overrides it"},
    {"output.dead_letter_topic", VG_CONF_STRING, VG_CHECK_TOPIC, VG_OFF(dead_letter_topic),
     "vigil.dead-letter", NULL, 0, 0, 0, "where undecodable or oversized events go"},
    {"output.include_event", VG_CONF_BOOL, VG_CHECK_NONE, VG_OFF(include_event), "true", NULL, 0,
     0, 0, "copy the whole event into each alert (false: its source and matches only)"},
    {"output.max_matches", VG_CONF_SIZE, VG_CHECK_NONE, VG_OFF(max_matches), NULL, NULL, 100, 1,
     100000, "evidence entries per alert; the rest are counted in matches_omitted"},
    {"output.on_permanent_error", VG_CONF_CHOICE, VG_CHECK_NONE, VG_OFF(on_permanent_error),
     "dead-letter", vg_on_permanent_names, 0, 0, 0,
     "an output that can never be delivered: dead-letter (a loss record), block or stop"},
    {"output.permanent_error_retry_ms", VG_CONF_SIZE, VG_CHECK_NONE, VG_OFF(permanent_retry_ms),
     NULL, NULL, 30000, 0, 86400000,
     "how long a topic-side permanent error (too large, missing, not authorised) is retried"},
    {"output.dead_letter_max_bytes", VG_CONF_SIZE, VG_CHECK_NONE, VG_OFF(dead_letter_max_bytes),
     NULL, NULL, 65536, 0, 16777216, "a loss record keeps this much of the undelivered value"},
    {"rules.paths", VG_CONF_STRLIST, VG_CHECK_NONE, VG_OFF(rule_paths), NULL,
     vg_default_rule_paths, 0, 0, 0, "rule files or folders of *.yaml files"},
    {"text_fields", VG_CONF_STRLIST, VG_CHECK_FIELD_PATH, VG_OFF(text_fields), NULL,
     vg_default_text_fields, 0, 0, 0, "fields searched by text conditions without fields:"},
    {"delivery", VG_CONF_DELIVERY, VG_CHECK_NONE, VG_OFF(delivery), "at-least-once", NULL, 0, 0,
     0, "at-least-once or exactly-once (Kafka transactions)"},
    {"exactly_once.commit_interval_ms", VG_CONF_SIZE, VG_CHECK_NONE,
     VG_OFF(eos_commit_interval_ms), NULL, NULL, 100, 1, 60000,
     "exactly-once: commit the open transaction after this many milliseconds"},
    {"exactly_once.commit_max_events", VG_CONF_SIZE, VG_CHECK_NONE,
     VG_OFF(eos_commit_max_events), NULL, NULL, 10000, 1, 1000000,
     "exactly-once: or once it holds this many input events"},
    {"state.checkpoint_topic", VG_CONF_STRING, VG_CHECK_TOPIC, VG_OFF(state_topic),
     "vigil.state", NULL, 0, 0, 0,
     "compacted topic holding the stateful rules' windows per input partition"},
    {"state.checkpoint_interval_ms", VG_CONF_SIZE, VG_CHECK_NONE, VG_OFF(state_interval_ms), NULL,
     NULL, 5000, 100, 3600000, "checkpoint a partition's windows at least this often"},
    {"state.checkpoint_events", VG_CONF_SIZE, VG_CHECK_NONE, VG_OFF(state_events), NULL, NULL,
     10000, 1, 10000000, "or after this many events of the partition"},
    {"state.checkpoint_max_bytes", VG_CONF_SIZE, VG_CHECK_NONE, VG_OFF(state_max_bytes), NULL,
     NULL, 16777216, 1048576, 1000000000,
     "largest checkpoint record (the topic's max.message.bytes)"},
    {"metrics.listen", VG_CONF_STRING, VG_CHECK_LISTEN, VG_OFF(metrics_listen),
     "127.0.0.1:9464", NULL, 0, 0, 0, "host:port for Prometheus /metrics and /healthz, or off"},
    {"metrics.max_connections", VG_CONF_SIZE, VG_CHECK_NONE, VG_OFF(metrics_max_connections),
     NULL, NULL, VG_METRICS_HTTP_MAX_CONNECTIONS, 1, 1024,
     "open connections to the endpoint; one more closes the oldest"},
    {"metrics.max_connections_per_client", VG_CONF_SIZE, VG_CHECK_NONE,
     VG_OFF(metrics_max_per_client), NULL, NULL, VG_METRICS_HTTP_MAX_PER_CLIENT, 1, 1024,
     "open connections from one IP address; one more closes its oldest"},
    {"metrics.request_timeout_ms", VG_CONF_SIZE, VG_CHECK_NONE,
     VG_OFF(metrics_request_timeout_ms), NULL, NULL, VG_METRICS_HTTP_REQUEST_TIMEOUT_MS, 100,
     600000, "a connection is closed this long after it was accepted"},
    {"rules.watch", VG_CONF_BOOL, VG_CHECK_NONE, VG_OFF(rules_watch), "false", NULL, 0, 0, 0,
     "reload the rules when files under rules.paths change (as SIGHUP does)"},
    {"rules.watch_quiet_ms", VG_CONF_SIZE, VG_CHECK_NONE, VG_OFF(rules_watch_quiet_ms), NULL,
     NULL, 500, 50, 60000, "how long the rule files must stay unchanged before a reload"},
    {"rules.max_compile_seconds", VG_CONF_SIZE, VG_CHECK_NONE, VG_OFF(rules_max_compile_seconds),
     NULL, NULL, 60, 1, 86400, "a rule load (start or reload) taking longer fails"},
    {"rules.max_compile_memory", VG_CONF_SIZE, VG_CHECK_NONE, VG_OFF(rules_max_compile_memory),
     NULL, NULL, 4096, 64, 1048576, "MiB the rules' vectorscan compile may use; more fails"},
    {"log.format", VG_CONF_CHOICE, VG_CHECK_NONE, VG_OFF(log_format), "logfmt",
     vg_log_format_names, 0, 0, 0, "logfmt or json, one line per event on stderr"},
    {"log.level", VG_CONF_CHOICE, VG_CHECK_NONE, VG_OFF(log_level), "info", vg_log_level_names,
     0, 0, 0, "debug, info, warn or error; lines below it are dropped"},
};

#define VG_CONF_NKEYS (sizeof(vg_conf_keys) / sizeof(vg_conf_keys[0]))

/* Longest dotted path the table may hold, and the most names one level
 * can have; both far above what the table uses. */
#define VG_CONF_PATH_MAX 128
#define VG_CONF_LEVEL_MAX 32

/* ---- string lists ------------------------------------------------------- */

static void vg_strlist_clear(vg_strlist_t *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* Appends s, taking ownership of it (also when failing). */
static int vg_strlist_push(vg_strlist_t *l, char *s)
{
    if (s == NULL)
        return -1;
    char **items = realloc(l->items, (l->count + 1) * sizeof(*items));
    if (items == NULL) {
        free(s);
        return -1;
    }
    l->items = items;
    l->items[l->count++] = s;
    return 0;
}

/* ---- defaults ----------------------------------------------------------- */

static int vg_conf_set_default(vg_config_t *cfg, const vg_conf_key_t *k)
{
    char *base = (char *)cfg;
    switch (k->type) {
    case VG_CONF_STRING: {
        char **field = (char **)(base + k->offset);
        free(*field);
        *field = strdup(k->def);
        return *field != NULL ? 0 : -1;
    }
    case VG_CONF_STRLIST: {
        vg_strlist_t *field = (vg_strlist_t *)(base + k->offset);
        vg_strlist_clear(field);
        for (const char *const *s = k->def_list; *s != NULL; s++)
            if (vg_strlist_push(field, strdup(*s)) != 0)
                return -1;
        return 0;
    }
    case VG_CONF_SIZE:
        *(size_t *)(base + k->offset) = k->def_num;
        return 0;
    case VG_CONF_DELIVERY:
        *(vg_delivery_t *)(base + k->offset) = VG_DELIVERY_AT_LEAST_ONCE;
        return 0;
    case VG_CONF_PROPERTIES:
        vg_strlist_clear(&cfg->prop_keys);
        vg_strlist_clear(&cfg->prop_values);
        return 0;
    case VG_CONF_BOOL:
        *(bool *)(base + k->offset) = strcmp(k->def, "true") == 0;
        return 0;
    case VG_CONF_CHOICE:
        for (int i = 0; k->def_list[i] != NULL; i++)
            if (strcmp(k->def_list[i], k->def) == 0) {
                *(int *)(base + k->offset) = i;
                return 0;
            }
        return -1;
    }
    return -1;
}

vg_config_t *vg_config_new(void)
{
    vg_config_t *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return NULL;
    for (size_t i = 0; i < VG_CONF_NKEYS; i++) {
        if (vg_conf_set_default(cfg, &vg_conf_keys[i]) != 0) {
            vg_config_destroy(cfg);
            return NULL;
        }
    }
    return cfg;
}

void vg_config_destroy(vg_config_t *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->brokers);
    free(cfg->group);
    vg_strlist_clear(&cfg->prop_keys);
    vg_strlist_clear(&cfg->prop_values);
    vg_strlist_clear(&cfg->input_topics);
    free(cfg->time_field);
    free(cfg->output_topic);
    free(cfg->dead_letter_topic);
    free(cfg->state_topic);
    vg_strlist_clear(&cfg->rule_paths);
    vg_strlist_clear(&cfg->text_fields);
    free(cfg->metrics_listen);
    free(cfg->file);
    free(cfg);
}

const char *vg_config_property(const vg_config_t *cfg, const char *key)
{
    if (cfg == NULL || key == NULL)
        return NULL;
    for (size_t i = 0; i < cfg->prop_keys.count; i++)
        if (strcmp(cfg->prop_keys.items[i], key) == 0)
            return cfg->prop_values.items[i];
    return NULL;
}

const char *vg_delivery_name(vg_delivery_t d)
{
    return (size_t)d < sizeof(vg_delivery_names) / sizeof(vg_delivery_names[0])
               ? vg_delivery_names[d]
               : "unknown";
}

/* ---- loading ------------------------------------------------------------ */

typedef struct vg_conf_ctx {
    vg_config_t *cfg;
    vg_diags_t *diags;
    const char *file;
} vg_conf_ctx_t;

static void vg_conf_error(vg_conf_ctx_t *c, const vg_ynode_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void vg_conf_error(vg_conf_ctx_t *c, const vg_ynode_t *at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    vg_diags_add(c->diags, VG_DIAG_ERROR, c->file, at != NULL ? at->line : 0,
                 at != NULL ? at->col : 0, "%s", msg);
}

static void vg_conf_oom(vg_conf_ctx_t *c)
{
    vg_diags_add(c->diags, VG_DIAG_ERROR, c->file, 0, 0, "out of memory while loading");
}

/* A value for a message: quoted text, or a stand-in when the text came
 * (partly) from the environment, which is where secrets live. */
static const char *vg_conf_shown(const char *value, bool from_env, char *buf, size_t size)
{
    if (from_env)
        return "the value taken from the environment";
    char excerpt[96];
    vg_diag_excerpt(value, strlen(value), 64, excerpt, sizeof(excerpt));
    snprintf(buf, size, "'%s'", excerpt);
    return buf;
}

typedef struct vg_buf {
    char *s;
    size_t len, cap;
} vg_buf_t;

static int vg_buf_append(vg_buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 32;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (p == NULL)
            return -1;
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

static bool vg_is_var_start(char ch)
{
    return isalpha((unsigned char)ch) || ch == '_';
}

static bool vg_is_var_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_';
}

/* Replaces ${NAME} in a string scalar with the environment variable NAME;
 * "$${" stands for a literal "${". Messages name the variable but never
 * show the value or the surrounding text. With hide, each value taken is
 * registered with the log (vg_log_add_secret), which then never shows it:
 * it may be a password, or, in a list of brokers, a host that librdkafka
 * names in its messages. Values of a fixed set (log.level, delivery) are
 * no secret, and would erase common words from the log. Returns a new
 * string, or NULL after adding an error. */
static char *vg_conf_expand(vg_conf_ctx_t *c, const char *path, const vg_ynode_t *node, bool hide,
                            bool *from_env)
{
    const char *s = node->str;
    size_t n = node->len;
    vg_buf_t out = {0};

    if (vg_buf_append(&out, "", 0) != 0)
        goto oom;
    for (size_t i = 0; i < n;) {
        if (s[i] == '$' && i + 2 < n && s[i + 1] == '$' && s[i + 2] == '{') {
            if (vg_buf_append(&out, "${", 2) != 0)
                goto oom;
            i += 3;
            continue;
        }
        if (s[i] != '$' || i + 1 >= n || s[i + 1] != '{') {
            if (vg_buf_append(&out, s + i, 1) != 0)
                goto oom;
            i++;
            continue;
        }
        size_t start = i + 2, end = start;
        while (end < n && s[end] != '}')
            end++;
        if (end >= n) {
            vg_conf_error(c, node, "%s: '${' without a closing '}' (write '$${' for a literal '${')",
                          path);
            goto fail;
        }
        bool valid = end > start && vg_is_var_start(s[start]);
        for (size_t j = start; valid && j < end; j++)
            valid = vg_is_var_char(s[j]);
        if (!valid) {
            vg_conf_error(c, node,
                          "%s: '${...}' must hold an environment variable name (letters, digits "
                          "and '_'); write '$${' for a literal '${'",
                          path);
            goto fail;
        }
        char name[256];
        if (end - start >= sizeof(name)) {
            vg_conf_error(c, node, "%s: environment variable name is too long", path);
            goto fail;
        }
        memcpy(name, s + start, end - start);
        name[end - start] = '\0';
        const char *value = getenv(name);
        if (value == NULL) {
            vg_conf_error(c, node, "%s: environment variable '%s' is not set", path, name);
            goto fail;
        }
        if (vg_buf_append(&out, value, strlen(value)) != 0 ||
            (hide && vg_log_add_secret(value) != 0))
            goto oom;
        *from_env = true;
        i = end + 1;
    }
    return out.s;

oom:
    vg_conf_oom(c);
fail:
    free(out.s);
    return NULL;
}

/* The text of a scalar that stands for a string. Numbers are taken as
 * written (a group may be called 2024); booleans and null are refused as
 * the likely mistakes they are. hide: as in vg_conf_expand. Returns a new
 * string or NULL after an error. */
static char *vg_conf_text(vg_conf_ctx_t *c, const char *path, const vg_ynode_t *node,
                          const char *expected, bool hide, bool *from_env)
{
    *from_env = false;
    if (node == NULL || node->kind != VG_YNODE_SCALAR || node->type == VG_YSCALAR_NULL ||
        node->type == VG_YSCALAR_BOOL) {
        vg_conf_error(c, node, "%s: expected %s, got %s", path, expected,
                      vg_ynode_describe(node));
        return NULL;
    }
    if (strlen(node->str) != node->len) {
        vg_conf_error(c, node, "%s: the value contains a NUL character", path);
        return NULL;
    }
    char *text = node->type == VG_YSCALAR_STRING ? vg_conf_expand(c, path, node, hide, from_env)
                                                 : strdup(node->str);
    if (text == NULL && node->type != VG_YSCALAR_STRING)
        vg_conf_oom(c);
    return text;
}

static bool vg_is_topic_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '.' || ch == '_' || ch == '-';
}

/* Runs a key's extra check on one string; returns false after an error. */
static bool vg_conf_check(vg_conf_ctx_t *c, const vg_conf_key_t *k, const char *path,
                          const vg_ynode_t *node, const char *value, bool from_env)
{
    char buf[128];
    if (value[0] == '\0') {
        vg_conf_error(c, node, "%s: must not be empty%s", path,
                      k->check == VG_CHECK_LISTEN ? " (off turns the endpoint off)" : "");
        return false;
    }
    switch (k->check) {
    case VG_CHECK_NONE:
        return true;
    case VG_CHECK_TOPIC: {
        /* Kafka's own rule, so a typo fails at load, not at first use. */
        size_t n = strlen(value);
        bool ok = n <= 249 && strcmp(value, ".") != 0 && strcmp(value, "..") != 0;
        for (size_t i = 0; ok && i < n; i++)
            ok = vg_is_topic_char(value[i]);
        if (!ok)
            vg_conf_error(c, node,
                          "%s: %s is not a valid Kafka topic name (letters, digits, '.', '_' "
                          "and '-', at most 249)",
                          path, vg_conf_shown(value, from_env, buf, sizeof(buf)));
        return ok;
    }
    case VG_CHECK_FIELD_PATH: {
        size_t n = strlen(value);
        bool ok = value[0] != '.' && value[n - 1] != '.' && strstr(value, "..") == NULL;
        if (!ok)
            vg_conf_error(c, node,
                          "%s: %s is not a field path (object keys separated by single dots)",
                          path, vg_conf_shown(value, from_env, buf, sizeof(buf)));
        return ok;
    }
    case VG_CHECK_LISTEN: {
        if (strcmp(value, "off") == 0)
            return true;
        const char *colon = strrchr(value, ':');
        const char *port = colon != NULL ? colon + 1 : "";
        size_t hostlen = colon != NULL ? (size_t)(colon - value) : 0;
        bool host_ok = hostlen > 0;
        if (host_ok && value[0] == '[')
            host_ok = hostlen > 2 && value[hostlen - 1] == ']';
        else if (host_ok)
            host_ok = memchr(value, ':', hostlen) == NULL;
        unsigned long p = 0;
        bool port_ok = port[0] != '\0' && strlen(port) <= 5;
        for (const char *q = port; port_ok && *q != '\0'; q++) {
            port_ok = isdigit((unsigned char)*q);
            p = p * 10 + (unsigned long)(*q - '0');
        }
        port_ok = port_ok && p >= 1 && p <= 65535;
        if (!host_ok || !port_ok)
            vg_conf_error(c, node,
                          "%s: expected host:port with a port from 1 to 65535 (an IPv6 address "
                          "in brackets: [::1]:9464) or off, got %s",
                          path, vg_conf_shown(value, from_env, buf, sizeof(buf)));
        return host_ok && port_ok;
    }
    }
    return true;
}

static void vg_conf_string(vg_conf_ctx_t *c, const vg_conf_key_t *k, const vg_ynode_t *node)
{
    bool from_env;
    char *text = vg_conf_text(c, k->path, node, "a string", true, &from_env);
    if (text == NULL)
        return;
    if (!vg_conf_check(c, k, k->path, node, text, from_env)) {
        free(text);
        return;
    }
    char **field = (char **)((char *)c->cfg + k->offset);
    free(*field);
    *field = text;
}

static void vg_conf_strlist(vg_conf_ctx_t *c, const vg_conf_key_t *k, const vg_ynode_t *node)
{
    if (node == NULL || node->kind != VG_YNODE_SEQ) {
        vg_conf_error(c, node, "%s: expected a list of strings, got %s", k->path,
                      vg_ynode_describe(node));
        return;
    }
    if (node->count == 0) {
        vg_conf_error(c, node, "%s: the list must have at least one entry", k->path);
        return;
    }
    vg_strlist_t list = {0};
    bool ok = true;
    for (size_t i = 0; i < node->count; i++) {
        char path[VG_CONF_PATH_MAX + 24];
        snprintf(path, sizeof(path), "%s[%zu]", k->path, i);
        bool from_env;
        const vg_ynode_t *item = node->items[i];
        char *text = vg_conf_text(c, path, item, "a string", true, &from_env);
        if (text == NULL || !vg_conf_check(c, k, path, item, text, from_env)) {
            free(text);
            ok = false;
            continue;
        }
        if (vg_strlist_push(&list, text) != 0) {
            vg_conf_oom(c);
            ok = false;
        }
    }
    if (!ok) {
        vg_strlist_clear(&list);
        return;
    }
    vg_strlist_t *field = (vg_strlist_t *)((char *)c->cfg + k->offset);
    vg_strlist_clear(field);
    *field = list;
}

static void vg_conf_size(vg_conf_ctx_t *c, const vg_conf_key_t *k, const vg_ynode_t *node)
{
    bool number = node != NULL && node->kind == VG_YNODE_SCALAR &&
                  (node->type == VG_YSCALAR_INT || node->type == VG_YSCALAR_FLOAT);
    if (!number) {
        vg_conf_error(c, node, "%s: expected a number, got %s", k->path, vg_ynode_describe(node));
        return;
    }
    if (!isfinite(node->num) || node->num != floor(node->num) || node->num < (double)k->min ||
        node->num > (double)k->max) {
        vg_conf_error(c, node, "%s: expected a whole number from %zu to %zu, got %s", k->path,
                      k->min, k->max, node->str);
        return;
    }
    *(size_t *)((char *)c->cfg + k->offset) = (size_t)node->num;
}

static void vg_conf_delivery(vg_conf_ctx_t *c, const vg_conf_key_t *k, const vg_ynode_t *node)
{
    bool from_env;
    char *text = vg_conf_text(c, k->path, node, "a string", false, &from_env);
    if (text == NULL)
        return;
    const size_t n = sizeof(vg_delivery_names) / sizeof(vg_delivery_names[0]);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(text, vg_delivery_names[i]) == 0) {
            *(vg_delivery_t *)((char *)c->cfg + k->offset) = (vg_delivery_t)i;
            free(text);
            return;
        }
    }
    char buf[128], hint[96] = "";
    const char *near = from_env ? NULL : vg_suggest(text, vg_delivery_names, n);
    if (near != NULL)
        snprintf(hint, sizeof(hint), " (did you mean '%s'?)", near);
    vg_conf_error(c, node, "%s: must be '%s' or '%s', got %s%s", k->path, vg_delivery_names[0],
                  vg_delivery_names[1], vg_conf_shown(text, from_env, buf, sizeof(buf)), hint);
    free(text);
}

/* kafka.properties: names are librdkafka's business, checked when the
 * client is configured; values may be secrets, so no message here shows
 * one. */
static void vg_conf_properties(vg_conf_ctx_t *c, const vg_conf_key_t *k, const vg_ynode_t *node)
{
    if (node != NULL && node->kind == VG_YNODE_SCALAR && node->type == VG_YSCALAR_NULL)
        node = NULL;
    if (node != NULL && node->kind != VG_YNODE_MAP) {
        vg_conf_error(c, node, "%s: expected a map of librdkafka properties, got %s", k->path,
                      vg_ynode_describe(node));
        return;
    }
    vg_strlist_t keys = {0}, values = {0};
    bool ok = true;
    for (size_t i = 0; node != NULL && i < node->count; i++) {
        const vg_ynode_t *key = node->items[2 * i], *val = node->items[2 * i + 1];
        char name[96], path[VG_CONF_PATH_MAX + 96];
        vg_diag_excerpt(key->str, key->len, 64, name, sizeof(name));
        snprintf(path, sizeof(path), "%s.%s", k->path, name);
        if (key->len == 0 || strlen(key->str) != key->len) {
            vg_conf_error(c, key, "%s: a property name must be a non-empty string", k->path);
            ok = false;
            continue;
        }
        char *text = NULL;
        bool from_env = false;
        if (val == NULL || val->kind != VG_YNODE_SCALAR || val->type == VG_YSCALAR_NULL) {
            vg_conf_error(c, val != NULL ? val : key,
                          "%s: expected a string, number or boolean, got %s", path,
                          vg_ynode_describe(val));
        } else if (val->type == VG_YSCALAR_BOOL) {
            /* librdkafka wants "true"/"false", YAML also allows "True". */
            text = strdup(val->boolean ? "true" : "false");
            if (text == NULL)
                vg_conf_oom(c);
        } else {
            text = vg_conf_text(c, path, val, "a string", true, &from_env);
            /* sasl.password: x written in the file is as secret. */
            if (text != NULL && vg_log_secret_name(key->str) && vg_log_add_secret(text) != 0) {
                vg_conf_oom(c);
                free(text);
                text = NULL;
            }
        }
        if (text == NULL) {
            ok = false;
            continue;
        }
        if (vg_strlist_push(&values, text) != 0 || vg_strlist_push(&keys, strdup(key->str)) != 0) {
            vg_conf_oom(c);
            ok = false;
            /* Keep the two lists the same length for the cleanup below. */
            break;
        }
    }
    if (!ok) {
        vg_strlist_clear(&keys);
        vg_strlist_clear(&values);
        return;
    }
    vg_strlist_clear(&c->cfg->prop_keys);
    vg_strlist_clear(&c->cfg->prop_values);
    c->cfg->prop_keys = keys;
    c->cfg->prop_values = values;
}

static void vg_conf_bool(vg_conf_ctx_t *c, const vg_conf_key_t *k, const vg_ynode_t *node)
{
    if (node == NULL || node->kind != VG_YNODE_SCALAR || node->type != VG_YSCALAR_BOOL) {
        vg_conf_error(c, node, "%s: expected true or false, got %s", k->path,
                      vg_ynode_describe(node));
        return;
    }
    *(bool *)((char *)c->cfg + k->offset) = node->boolean;
}

static void vg_conf_choice(vg_conf_ctx_t *c, const vg_conf_key_t *k, const vg_ynode_t *node)
{
    bool from_env;
    char *text = vg_conf_text(c, k->path, node, "a string", false, &from_env);
    if (text == NULL)
        return;
    size_t n = 0;
    while (k->def_list[n] != NULL)
        n++;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(text, k->def_list[i]) == 0) {
            *(int *)((char *)c->cfg + k->offset) = (int)i;
            free(text);
            return;
        }
    }
    char buf[128], hint[96] = "", names[256] = "";
    size_t o = 0;
    for (size_t i = 0; i < n && o < sizeof(names); i++)
        o += (size_t)snprintf(names + o, sizeof(names) - o, "%s'%s'",
                              i == 0 ? "" : i + 1 == n ? " or " : ", ", k->def_list[i]);
    const char *near = from_env ? NULL : vg_suggest(text, k->def_list, n);
    if (near != NULL)
        snprintf(hint, sizeof(hint), " (did you mean '%s'?)", near);
    vg_conf_error(c, node, "%s: must be %s, got %s%s", k->path, names,
                  vg_conf_shown(text, from_env, buf, sizeof(buf)), hint);
    free(text);
}

static const vg_conf_key_t *vg_conf_find(const char *path)
{
    for (size_t i = 0; i < VG_CONF_NKEYS; i++)
        if (strcmp(vg_conf_keys[i].path, path) == 0)
            return &vg_conf_keys[i];
    return NULL;
}

/* True when some key lives under path ("kafka" for "kafka.brokers"). */
static bool vg_conf_is_section(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < VG_CONF_NKEYS; i++)
        if (strncmp(vg_conf_keys[i].path, path, n) == 0 && vg_conf_keys[i].path[n] == '.')
            return true;
    return false;
}

/* The names valid directly under prefix ("" for the top level), each
 * once, in table order. */
static size_t vg_conf_level_names(const char *prefix, char names[][VG_CONF_PATH_MAX],
                                  size_t max)
{
    size_t plen = strlen(prefix), n = 0;
    for (size_t i = 0; i < VG_CONF_NKEYS; i++) {
        const char *p = vg_conf_keys[i].path;
        if (plen != 0) {
            if (strncmp(p, prefix, plen) != 0 || p[plen] != '.')
                continue;
            p += plen + 1;
        }
        size_t len = strcspn(p, ".");
        if (len >= VG_CONF_PATH_MAX)
            continue;
        bool seen = false;
        for (size_t j = 0; j < n && !seen; j++)
            seen = strncmp(names[j], p, len) == 0 && names[j][len] == '\0';
        if (!seen && n < max) {
            memcpy(names[n], p, len);
            names[n][len] = '\0';
            n++;
        }
    }
    return n;
}

static void vg_conf_unknown_key(vg_conf_ctx_t *c, const vg_ynode_t *key, const char *prefix)
{
    char names[VG_CONF_LEVEL_MAX][VG_CONF_PATH_MAX];
    const char *cands[VG_CONF_LEVEL_MAX];
    size_t n = vg_conf_level_names(prefix, names, VG_CONF_LEVEL_MAX);
    for (size_t i = 0; i < n; i++)
        cands[i] = names[i];

    char shown[96], where[VG_CONF_PATH_MAX + 16] = "", hint[VG_CONF_PATH_MAX * 2] = "";
    vg_diag_excerpt(key->str, key->len, 64, shown, sizeof(shown));
    if (prefix[0] != '\0')
        snprintf(where, sizeof(where), " in '%s'", prefix);

    const char *near = strlen(key->str) == key->len ? vg_suggest(key->str, cands, n) : NULL;
    if (near != NULL) {
        snprintf(hint, sizeof(hint), " (did you mean '%s'?)", near);
    } else {
        /* The right name at the wrong level: "brokers" at the top. */
        for (size_t i = 0; i < VG_CONF_NKEYS && near == NULL; i++) {
            const char *p = vg_conf_keys[i].path, *last = strrchr(p, '.');
            last = last != NULL ? last + 1 : p;
            if (strcasecmp(last, key->str) == 0)
                near = p;
        }
        if (near != NULL) {
            snprintf(hint, sizeof(hint), " (did you mean '%s'?)", near);
        } else {
            size_t o = (size_t)snprintf(hint, sizeof(hint), " (valid keys:");
            for (size_t i = 0; i < n && o < sizeof(hint); i++)
                o += (size_t)snprintf(hint + o, sizeof(hint) - o, "%s %s", i != 0 ? "," : "",
                                      names[i]);
            if (o < sizeof(hint))
                snprintf(hint + o, sizeof(hint) - o, ")");
        }
    }
    vg_conf_error(c, key, "unknown key '%s'%s%s", shown, where, hint);
}

static void vg_conf_value(vg_conf_ctx_t *c, const vg_conf_key_t *k, const vg_ynode_t *node)
{
    switch (k->type) {
    case VG_CONF_STRING:
        vg_conf_string(c, k, node);
        break;
    case VG_CONF_STRLIST:
        vg_conf_strlist(c, k, node);
        break;
    case VG_CONF_SIZE:
        vg_conf_size(c, k, node);
        break;
    case VG_CONF_DELIVERY:
        vg_conf_delivery(c, k, node);
        break;
    case VG_CONF_PROPERTIES:
        vg_conf_properties(c, k, node);
        break;
    case VG_CONF_BOOL:
        vg_conf_bool(c, k, node);
        break;
    case VG_CONF_CHOICE:
        vg_conf_choice(c, k, node);
        break;
    }
}

/* Walks one map level; prefix is the dotted path of the map ("" at the
 * top). Keeps going after an error so one run reports them all. */
static void vg_conf_walk(vg_conf_ctx_t *c, const vg_ynode_t *map, const char *prefix)
{
    for (size_t i = 0; i < map->count; i++) {
        const vg_ynode_t *key = map->items[2 * i], *val = map->items[2 * i + 1];
        char path[VG_CONF_PATH_MAX];
        int n = prefix[0] != '\0' ? snprintf(path, sizeof(path), "%s.%s", prefix, key->str)
                                  : snprintf(path, sizeof(path), "%s", key->str);
        bool fits = n >= 0 && (size_t)n < sizeof(path) && strlen(key->str) == key->len;
        const vg_conf_key_t *k = fits ? vg_conf_find(path) : NULL;
        if (k != NULL) {
            vg_conf_value(c, k, val);
        } else if (fits && vg_conf_is_section(path)) {
            if (val->kind == VG_YNODE_MAP)
                vg_conf_walk(c, val, path);
            else if (!(val->kind == VG_YNODE_SCALAR && val->type == VG_YSCALAR_NULL))
                vg_conf_error(c, val, "%s: expected a map, got %s", path, vg_ynode_describe(val));
        } else {
            vg_conf_unknown_key(c, key, prefix);
        }
    }
}

/* ---- the topics vigil writes ------------------------------------------- */

/* The node of dotted key path in the document; NULL when not written. */
static const vg_ynode_t *vg_conf_node(const vg_ynode_t *root, const char *path)
{
    const vg_ynode_t *n = root;
    while (*path != '\0') {
        char part[VG_CONF_PATH_MAX];
        size_t len = strcspn(path, ".");
        if (n == NULL || n->kind != VG_YNODE_MAP || len >= sizeof(part))
            return NULL;
        memcpy(part, path, len);
        part[len] = '\0';
        n = vg_ynode_get(n, part);
        path += len + (path[len] == '.');
    }
    return n;
}

static bool vg_topic_internal(const char *topic)
{
    return strncmp(topic, "__", 2) == 0;
}

/* What goes wrong when a topic vigil writes is also the topic of role
 * key (what is written there would be read back as something else). */
static const char *vg_topic_clash_why(const char *key)
{
    if (strcmp(key, "input.topics") == 0)
        return "what vigil writes there would be consumed again as events (a loop)";
    if (strcmp(key, "state.checkpoint_topic") == 0)
        return "it would be read back as the stateful rules' checkpoints";
    return "alerts and dead-letter copies must stay apart";
}

/* The topics vigil writes (alerts, dead letters, checkpoints) are each
 * their own: none is another of them, an input topic or an internal
 * topic. Each clash is reported where the first of the two keys is
 * written (file:line:col), or the second when the first is a default.
 * Values are not shown: they may come from the environment. */
static void vg_conf_check_topics(vg_conf_ctx_t *c, const vg_ynode_t *root)
{
    const vg_config_t *cfg = c->cfg;
    const struct {
        const char *key, *topic;
    } out[] = {{"output.topic", cfg->output_topic},
               {"output.dead_letter_topic", cfg->dead_letter_topic},
               {"state.checkpoint_topic", cfg->state_topic}};
    const size_t nout = sizeof(out) / sizeof(out[0]);
    const vg_ynode_t *inputs = vg_conf_node(root, "input.topics");
    for (size_t i = 0; i < nout; i++) {
        const vg_ynode_t *at = vg_conf_node(root, out[i].key);
        if (vg_topic_internal(out[i].topic))
            vg_conf_error(c, at, "%s: topics starting with '__' are Kafka's internal topics",
                          out[i].key);
        for (size_t j = i + 1; j < nout; j++)
            if (strcmp(out[i].topic, out[j].topic) == 0)
                vg_conf_error(c, at != NULL ? at : vg_conf_node(root, out[j].key),
                              "%s is the same topic as %s: %s", out[i].key, out[j].key,
                              vg_topic_clash_why(out[j].key));
        for (size_t j = 0; j < cfg->input_topics.count; j++) {
            if (strcmp(out[i].topic, cfg->input_topics.items[j]) != 0)
                continue;
            const vg_ynode_t *in = inputs != NULL && inputs->kind == VG_YNODE_SEQ &&
                                           j < inputs->count
                                       ? inputs->items[j]
                                       : NULL;
            vg_conf_error(c, at != NULL ? at : in, "%s is the same topic as input.topics[%zu]: %s",
                          out[i].key, j, vg_topic_clash_why("input.topics"));
        }
    }
}

size_t vg_config_check_rule_topics(const vg_config_t *cfg, const vg_ruleset_t *rs,
                                   vg_diags_t *diags)
{
    size_t refused = 0;
    for (size_t i = 0; i < vg_ruleset_rule_count(rs); i++) {
        const vg_rule_t *r = vg_ruleset_rule(rs, i);
        const char *topic = vg_rule_topic(r);
        if (topic == NULL)
            continue;
        const char *key = NULL;
        if (vg_topic_internal(topic))
            key = "";
        else if (strcmp(topic, cfg->dead_letter_topic) == 0)
            key = "output.dead_letter_topic";
        else if (strcmp(topic, cfg->state_topic) == 0)
            key = "state.checkpoint_topic";
        for (size_t j = 0; key == NULL && j < cfg->input_topics.count; j++)
            if (strcmp(topic, cfg->input_topics.items[j]) == 0)
                key = "input.topics";
        if (key == NULL)
            continue;
        unsigned line, col;
        vg_rule_topic_at(r, &line, &col);
        char shown[96];
        vg_diag_excerpt(topic, strlen(topic), 64, shown, sizeof(shown));
        if (key[0] == '\0')
            vg_diags_add(diags, VG_DIAG_ERROR, vg_rule_file(r), line, col,
                         "rule '%s': alert.topic '%s' is a Kafka internal topic ('__')",
                         vg_rule_id(r), shown);
        else
            vg_diags_add(diags, VG_DIAG_ERROR, vg_rule_file(r), line, col,
                         "rule '%s': alert.topic '%s' is %s%s%s: %s", vg_rule_id(r), shown, key,
                         cfg->file != NULL ? " in " : "", cfg->file != NULL ? cfg->file : "",
                         vg_topic_clash_why(key));
        refused++;
    }
    return refused;
}

static vg_config_t *vg_config_from_doc(const char *name, vg_ydoc_t *doc, vg_diags_t *diags)
{
    size_t errors_before = vg_diags_errors(diags);
    vg_conf_ctx_t c = {.diags = diags, .file = name};
    if (doc == NULL)
        goto fail;
    c.cfg = vg_config_new();
    if (c.cfg == NULL || (name != NULL && (c.cfg->file = strdup(name)) == NULL)) {
        vg_conf_oom(&c);
        goto fail;
    }
    const vg_ynode_t *root = vg_ydoc_root(doc);
    if (root != NULL && root->kind == VG_YNODE_MAP)
        vg_conf_walk(&c, root, "");
    else if (root != NULL && !(root->kind == VG_YNODE_SCALAR && root->type == VG_YSCALAR_NULL))
        vg_conf_error(&c, root, "the configuration must be a map of settings, got %s",
                      vg_ynode_describe(root));
    if (vg_diags_errors(diags) == errors_before)
        vg_conf_check_topics(&c, root);
    if (vg_diags_errors(diags) != errors_before)
        goto fail;
    vg_ydoc_destroy(doc);
    return c.cfg;

fail:
    vg_ydoc_destroy(doc);
    vg_config_destroy(c.cfg);
    return NULL;
}

/* The configuration is small; a tight size limit turns a wrong path (a
 * log file, a device) into a quick, clear error. */
static const vg_ylimits_t vg_conf_limits = {1024 * 1024, 16, 100000};

vg_config_t *vg_config_load(const char *path, vg_diags_t *diags)
{
    vg_diags_t *own = NULL;
    if (diags == NULL && (diags = own = vg_diags_new()) == NULL)
        return NULL;
    vg_ydoc_t *doc = vg_ydoc_load_regular(path, &vg_conf_limits, diags);
    vg_config_t *cfg = vg_config_from_doc(path, doc, diags);
    vg_diags_destroy(own);
    return cfg;
}

vg_config_t *vg_config_load_buffer(const char *name, const char *buf, size_t len,
                                   vg_diags_t *diags)
{
    vg_diags_t *own = NULL;
    if (diags == NULL && (diags = own = vg_diags_new()) == NULL)
        return NULL;
    vg_ydoc_t *doc = vg_ydoc_load_buffer(name, buf, len, &vg_conf_limits, diags);
    vg_config_t *cfg = vg_config_from_doc(name, doc, diags);
    vg_diags_destroy(own);
    return cfg;
}
