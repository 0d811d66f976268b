/* One rule: its id, metadata and alert settings here; its condition,
 * stateful settings and tests through their stages. A rule with any
 * error is dropped, but all of its errors are reported first. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ruleset_int.h"

static const char *const SEVERITIES[] = {"info", "low", "medium", "high", "critical"};
static const char *const RULE_KEYS[] = {"id",      "title",     "description", "severity",
                                        "tags",    "enabled",   "match",       "alert",
                                        "tests",   "threshold", "spike",       "first_seen",
                                        "absence", "throttle",  "digest",      "event_time"};
static const char *const ALERT_KEYS[] = {"topic", "summary"};

/* Ids go into alerts, metric labels and Kafka headers and keys: keep
 * them plain. */
static bool valid_rule_id(const char *s)
{
    if (!(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
        return false;
    for (const char *p = s; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '.' || *p == '_' ||
              *p == '-'))
            return false;
    return strlen(s) <= 200;
}

/* Kafka's own rules for a topic name. */
static bool valid_topic(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 249 || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
        return false;
    for (const char *p = t; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

/* Adds topic to the distinct alert topics the ruleset writes to. */
static void add_topic(compiler_t *c, const char *topic)
{
    vg_ruleset_t *rs = c->rs;
    int r = vg_strmap_put(&c->topic_idx, topic, strlen(topic), 0);
    if (r < 0) {
        vg_rc_oom(c);
        return;
    }
    if (r == 0)
        return;
    char **t = realloc(rs->topics, (rs->ntopics + 1) * sizeof(char *));
    if (!t)
        return vg_rc_oom(c);
    rs->topics = t;
    rs->topics[rs->ntopics] = vg_rc_strndup(c, topic, strlen(topic));
    if (rs->topics[rs->ntopics])
        rs->ntopics++;
}

static bool rule_id(compiler_t *c, const char *file, vg_rule_t *r, const vg_ynode_t *n)
{
    r->id = vg_rc_get_string(c, file, n, "id", true, n);
    const vg_ynode_t *idn = vg_ynode_get(n, "id");
    if (!r->id)
        return false;
    if (!valid_rule_id(r->id)) {
        ERR(c, file, idn,
            "rule id '%s' must be lower-case letters, digits, '.', '_' or '-' (e.g. "
            "'chipmaker-export-curb')",
            r->id);
        return false;
    }
    uint32_t *prev = vg_strmap_get(&c->rule_idx, r->id, strlen(r->id));
    if (prev) {
        const vg_rule_t *o = c->rs->rules[*prev];
        ERR(c, file, idn, "duplicate rule id '%s' (first defined at %s:%u)", r->id, o->file,
            o->line);
        return false;
    }
    return true;
}

static bool rule_severity(compiler_t *c, const char *file, vg_rule_t *r, const vg_ynode_t *n)
{
    r->severity = "medium";
    const vg_ynode_t *sev = vg_ynode_get(n, "severity");
    if (!sev)
        return true;
    for (size_t i = 0; i < N(SEVERITIES); i++)
        if (is_str(sev) && strcmp(sev->str, SEVERITIES[i]) == 0) {
            r->severity = SEVERITIES[i];
            return true;
        }
    const char *s =
        sev->kind == VG_YNODE_SCALAR ? vg_suggest(sev->str, SEVERITIES, N(SEVERITIES)) : NULL;
    if (s)
        ERR(c, file, sev, "unknown severity '%s' (did you mean '%s'?)", sev->str, s);
    else
        ERR(c, file, sev, "severity must be one of info, low, medium, high, critical");
    return false;
}

static bool rule_tags(compiler_t *c, const char *file, vg_rule_t *r, const vg_ynode_t *n)
{
    const vg_ynode_t *tags = vg_ynode_get(n, "tags");
    if (!tags)
        return true;
    if (tags->kind != VG_YNODE_SEQ) {
        ERR(c, file, tags, "'tags' takes a list of strings, got %s", vg_ynode_describe(tags));
        return false;
    }
    r->tags = calloc(tags->count ? tags->count : 1, sizeof(char *));
    if (!r->tags)
        return vg_rc_oom(c), false;
    bool ok = true;
    for (size_t i = 0; i < tags->count; i++) {
        const vg_ynode_t *t = tags->items[i];
        if (t->kind != VG_YNODE_SCALAR || t->type == VG_YSCALAR_NULL) {
            ERR(c, file, t, "a tag must be a string, got %s", vg_ynode_describe(t));
            ok = false;
            continue;
        }
        r->tags[r->ntags++] = vg_rc_strndup(c, t->str, t->len);
    }
    return ok;
}

static bool rule_enabled(compiler_t *c, const char *file, vg_rule_t *r, const vg_ynode_t *n)
{
    r->enabled = true;
    const vg_ynode_t *en = vg_ynode_get(n, "enabled");
    if (!en)
        return true;
    if (en->kind != VG_YNODE_SCALAR || en->type != VG_YSCALAR_BOOL) {
        ERR(c, file, en, "'enabled' takes true or false, got %s", vg_ynode_describe(en));
        return false;
    }
    r->enabled = en->boolean;
    return true;
}

/* alert: {topic, summary}. ok is the verdict so far: the topic joins the
 * ruleset's topics only for a rule without errors. */
static bool rule_alert(compiler_t *c, const char *file, vg_rule_t *r, const vg_ynode_t *n, bool ok)
{
    const vg_ynode_t *alert = vg_ynode_get(n, "alert");
    if (!alert)
        return ok;
    static const map_spec_t spec = {"alert", "{topic: NAME, summary: TEMPLATE}", "alert",
                                    ALERT_KEYS, N(ALERT_KEYS)};
    if (!vg_rc_check_map(c, file, alert, &spec))
        return false;
    r->topic = vg_rc_get_string(c, file, alert, "topic", false, alert);
    r->summary = vg_rc_get_string(c, file, alert, "summary", false, alert);
    const vg_ynode_t *tn = vg_ynode_get(alert, "topic");
    if (tn) {
        r->topic_line = tn->line;
        r->topic_col = tn->col;
    }
    if (r->topic && !valid_topic(r->topic)) {
        ERR(c, file, vg_ynode_get(alert, "topic"),
            "'%s' is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at most 249)",
            r->topic);
        ok = false;
    }
    if (r->topic && ok)
        add_topic(c, r->topic);
    return ok;
}

/* Adds a compiled rule to the ruleset; frees it after errors. */
static void add_rule(compiler_t *c, vg_rule_t *r, bool ok)
{
    vg_ruleset_t *rs = c->rs;
    if (!ok || c->oom ||
        !vg_rc_grow(c, (void **)&rs->rules, &c->rule_cap, rs->nrules + 1, sizeof(vg_rule_t *))) {
        vg_rc_free_rule(r);
        return;
    }
    if (vg_strmap_put(&c->rule_idx, r->id, strlen(r->id), (uint32_t)rs->nrules) < 0) {
        vg_rc_free_rule(r);
        return vg_rc_oom(c);
    }
    rs->rules[rs->nrules++] = r;
}

void vg_rc_compile_rule(compiler_t *c, const char *file, const vg_ynode_t *n)
{
    if (n->kind != VG_YNODE_MAP) {
        ERR(c, file, n, "each rule must be a map with at least 'id' and 'match', got %s",
            vg_ynode_describe(n));
        return;
    }
    vg_rc_check_keys(c, file, n, RULE_KEYS, N(RULE_KEYS), "a rule");
    vg_rule_t *r = calloc(1, sizeof(*r));
    if (!r)
        return vg_rc_oom(c);
    r->file = file;
    r->line = n->line;
    bool ok = rule_id(c, file, r, n);
    r->title = vg_rc_get_string(c, file, n, "title", false, n);
    r->description = vg_rc_get_string(c, file, n, "description", false, n);
    ok = rule_severity(c, file, r, n) && ok;
    ok = rule_tags(c, file, r, n) && ok;
    ok = rule_enabled(c, file, r, n) && ok;
    ok = rule_alert(c, file, r, n, ok);
    const vg_ynode_t *match = vg_ynode_get(n, "match");
    if (!match) {
        ERR(c, file, n, "rule '%s' has no 'match' condition", r->id ? r->id : "?");
        ok = false;
    } else {
        r->match = vg_rc_compile_cond(c, file, match, 0);
        ok = r->match && ok;
    }
    ok = vg_rc_compile_state(c, file, r, n) && ok;
    const vg_ynode_t *tests = vg_ynode_get(n, "tests");
    if (tests)
        ok = vg_rc_compile_tests(c, file, r, tests) && ok;
    if (!r->title && r->id)
        r->title = vg_rc_strndup(c, r->id, strlen(r->id));
    add_rule(c, r, ok);
}
