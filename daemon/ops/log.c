/* The daemon's log (include/vigil/log.h): render one event as a logfmt or
 * JSON line, hold back repeats per message key, write it in one write(2).
 * Everything that touches the settings or the rate-limit table runs under
 * one mutex; logging is not on a hot path. */
#include "vigil/log.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vigil/utf8.h"

/* A line longer than this is cut (its last value ends in "..."). */
#define LINE_MAX_BYTES 8192
/* Room kept for closing a line: quote, brace, newline, the summary. */
#define LINE_RESERVE 64
#define MAX_FIELDS 32
/* Distinct message keys tracked for rate limiting at one time. */
#define RL_SLOTS 256
#define RL_MSG_BYTES 160

typedef struct rl_slot {
    uint64_t hash;
    bool used;
    vg_log_level_t level;
    uint64_t window_start;
    unsigned printed;
    unsigned long long suppressed;
    char msg[RL_MSG_BYTES];
} rl_slot_t;

/* Internal field kinds: the public ones plus a number kept as written
 * (a bare value parsed back out of a vg_log() line). */
enum { F_NUMTEXT = 100 };

typedef struct field {
    const char *key;
    size_t key_len;
    int type;
    const char *s;
    size_t s_len;
    long long i;
    unsigned long long u;
    double d;
} field_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static vg_log_options_t opts;
static bool configured;
static rl_slot_t slots[RL_SLOTS];

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const format_names[] = {"logfmt", "json"};

/* ---- settings ----------------------------------------------------------- */

static bool journal_reads(int fd)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(fd, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void vg_log_options_default(vg_log_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->format = VG_LOG_LOGFMT;
    o->level = VG_LOG_INFO;
    o->fd = 2;
    bool journal = journal_reads(2);
    o->timestamps = !journal;
    o->priority_prefix = journal;
    o->burst = 5;
    o->window_ms = 10000;
}

/* Caller holds lock. */
static void ensure_configured(void)
{
    if (!configured) {
        vg_log_options_default(&opts);
        configured = true;
    }
}

void vg_log_configure(const vg_log_options_t *o)
{
    pthread_mutex_lock(&lock);
    opts = *o;
    if (opts.level > VG_LOG_ERROR)
        opts.level = VG_LOG_ERROR;
    configured = true;
    memset(slots, 0, sizeof(slots));
    pthread_mutex_unlock(&lock);
}

void vg_log_set_level(vg_log_level_t level)
{
    pthread_mutex_lock(&lock);
    ensure_configured();
    opts.level = level <= VG_LOG_ERROR ? level : VG_LOG_ERROR;
    pthread_mutex_unlock(&lock);
}

void vg_log_set_format(vg_log_format_t format)
{
    pthread_mutex_lock(&lock);
    ensure_configured();
    opts.format = format == VG_LOG_JSON ? VG_LOG_JSON : VG_LOG_LOGFMT;
    pthread_mutex_unlock(&lock);
}

const char *vg_log_format_name(vg_log_format_t f)
{
    return (unsigned)f < 2 ? format_names[f] : "unknown";
}

const char *vg_log_level_name(vg_log_level_t l)
{
    return (unsigned)l < 4 ? level_names[l] : "unknown";
}

int vg_log_format_parse(const char *name, vg_log_format_t *out)
{
    for (unsigned i = 0; name && i < 2; i++)
        if (strcmp(name, format_names[i]) == 0) {
            *out = (vg_log_format_t)i;
            return 0;
        }
    return -1;
}

int vg_log_level_parse(const char *name, vg_log_level_t *out)
{
    for (unsigned i = 0; name && i < 4; i++)
        if (strcmp(name, level_names[i]) == 0) {
            *out = (vg_log_level_t)i;
            return 0;
        }
    if (name && strcmp(name, "warning") == 0) {
        *out = VG_LOG_WARN;
        return 0;
    }
    return -1;
}

static uint64_t now_ms(void)
{
    if (opts.clock_ms)
        return opts.clock_ms(opts.clock_arg);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- rendering ---------------------------------------------------------- */

typedef struct out {
    char buf[LINE_MAX_BYTES];
    size_t len;
    bool cut; /* the line was too long; later fields are dropped */
} out_t;

static size_t room(const out_t *o)
{
    return o->len + LINE_RESERVE < sizeof(o->buf) ? sizeof(o->buf) - LINE_RESERVE - o->len : 0;
}

/* Appends unless the line is already full; the reserve is for closing. */
static void put(out_t *o, const char *s, size_t n)
{
    if (o->cut || n > room(o)) {
        o->cut = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void puts_(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

/* Closing text goes into the reserve, which is always there. */
static void put_closing(out_t *o, const char *s)
{
    size_t n = strlen(s);
    if (o->len + n < sizeof(o->buf)) {
        memcpy(o->buf + o->len, s, n);
        o->len += n;
    }
}

static bool secret_key(const char *k, size_t n)
{
    static const char *const words[] = {"password", "passwd", "secret", "token", "credential"};
    char low[64];
    if (n >= sizeof(low))
        n = sizeof(low) - 1;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)k[i]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(low, words[i]))
            return true;
    return false;
}

/* ---- secrets ----------------------------------------------------------- */

bool vg_log_secret_name(const char *name)
{
    return name && secret_key(name, strlen(name));
}

/* Texts registered with vg_log_add_secret; guarded by lock. */
static char **secrets;
static size_t *secret_lens;
static size_t nsecrets, secrets_cap;

int vg_log_add_secret(const char *text)
{
    size_t len = text ? strlen(text) : 0;
    if (len < VG_LOG_SECRET_MIN)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nsecrets; i++)
        if (secret_lens[i] == len && memcmp(secrets[i], text, len) == 0)
            goto out;
    if (nsecrets == secrets_cap) {
        size_t cap = secrets_cap ? 2 * secrets_cap : 8;
        char **s = realloc(secrets, cap * sizeof(*s));
        if (s)
            secrets = s;
        size_t *l = s ? realloc(secret_lens, cap * sizeof(*l)) : NULL;
        if (l)
            secret_lens = l;
        if (!s || !l) {
            rc = -1;
            goto out;
        }
        secrets_cap = cap;
    }
    if (!(secrets[nsecrets] = strdup(text))) {
        rc = -1;
        goto out;
    }
    secret_lens[nsecrets++] = len;
out:
    pthread_mutex_unlock(&lock);
    return rc;
}

void vg_log_forget_secrets(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nsecrets; i++)
        free(secrets[i]);
    free(secrets);
    free(secret_lens);
    secrets = NULL;
    secret_lens = NULL;
    nsecrets = secrets_cap = 0;
    pthread_mutex_unlock(&lock);
}

/* Length of the longest registered secret at s[i], or 0. Caller holds
 * lock. */
static size_t secret_at(const char *s, size_t n, size_t i)
{
    size_t best = 0;
    for (size_t k = 0; k < nsecrets; k++)
        if (secret_lens[k] > best && secret_lens[k] <= n - i && s[i] == secrets[k][0] &&
            memcmp(s + i, secrets[k], secret_lens[k]) == 0)
            best = secret_lens[k];
    return best;
}

static bool has_secret(const char *s, size_t n)
{
    for (size_t i = 0; nsecrets && i < n; i++)
        if (secret_at(s, n, i))
            return true;
    return false;
}

bool vg_log_has_secret(const char *text)
{
    if (!text)
        return false;
    pthread_mutex_lock(&lock);
    bool found = has_secret(text, strlen(text));
    pthread_mutex_unlock(&lock);
    return found;
}

/* The length of a secret that a text cut at n may have been cut in: the
 * shortest tail of s[0..n) that begins a registered secret, or 0. */
static size_t cut_secret_tail(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < nsecrets; k++)
            if (secret_lens[k] > n - i && memcmp(s + i, secrets[k], n - i) == 0)
                return n - i;
    return 0;
}

/* A quote at s[i]: ", ' or one of them after a backslash (text that holds
 * JSON); its length, or 0. */
static size_t quote_at(const char *s, size_t n, size_t i)
{
    if (i < n && (s[i] == '"' || s[i] == '\''))
        return 1;
    if (i + 1 < n && s[i] == '\\' && (s[i + 1] == '"' || s[i + 1] == '\''))
        return 2;
    return 0;
}

static bool is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

/* A secret-naming word ("sasl.password", "api_token") at s[i] given a
 * value: password=x, token: x, password="x", token:'x', "secret": "x"
 * (a quoted name wants a quoted value). *keep is how much to write as it
 * is (the name, its quotes, the sign, blanks, the value's opening quote),
 * *value_end where the value ends (its closing quote is written again).
 * False when no such assignment starts at s[i]. */
static bool secret_assignment(const char *s, size_t n, size_t i, size_t *keep, size_t *value_end)
{
    if (i > 0 && is_name_char(s[i - 1]))
        return false;
    size_t j = i;
    while (j < n && is_name_char(s[j]))
        j++;
    if (j == i || !secret_key(s + i, j - i))
        return false;
    /* A name in quotes: the same quote before and after it. */
    size_t open = i >= 2 && s[i - 1] != '\\' ? quote_at(s, n, i - 2) : 0;
    if (open != 2)
        open = i >= 1 ? quote_at(s, n, i - 1) : 0;
    bool quoted_name = open && j + open <= n && memcmp(s + j, s + i - open, open) == 0;
    if (quoted_name)
        j += open;
    if (j >= n || (s[j] != '=' && s[j] != ':'))
        return false;
    j++;
    while (j < n && s[j] == ' ')
        j++;
    size_t q = quote_at(s, n, j);
    if (q) {
        size_t v = j + q;
        while (v < n && !(quote_at(s, n, v) == q && memcmp(s + v, s + j, q) == 0))
            v++;
        *keep = j + q - i;
        *value_end = v;
        return true;
    }
    if (quoted_name)
        return false;
    size_t v = j;
    while (v < n && s[v] != ' ' && s[v] != ',' && s[v] != ';' && s[v] != '"' && s[v] != '\'' &&
           s[v] != '\n')
        v++;
    *keep = j - i;
    *value_end = v;
    return true;
}

/* Writes the character at s[i] escaped, as in the inside of a quoted
 * string: JSON's rules, which logfmt readers also understand; ill-formed
 * UTF-8 becomes \ufffd. Returns the bytes taken, 0 when the line is full. */
static size_t put_escaped_char(out_t *o, const char *s, size_t n, size_t i)
{
    char esc[8];
    unsigned char c = (unsigned char)s[i];
    size_t take = 1;
    const char *text = NULL;
    size_t tlen = 0;
    if (c == '"' || c == '\\') {
        esc[0] = '\\';
        esc[1] = (char)c;
        text = esc, tlen = 2;
    } else if (c == '\n') {
        text = "\\n", tlen = 2;
    } else if (c == '\r') {
        text = "\\r", tlen = 2;
    } else if (c == '\t') {
        text = "\\t", tlen = 2;
    } else if (c < 0x20 || c == 0x7f) {
        snprintf(esc, sizeof(esc), "\\u%04x", c);
        text = esc, tlen = 6;
    } else if (c >= 0x80) {
        size_t l;
        vg_utf8_decode(s + i, n - i, &l);
        if (l == 1)
            text = "\\ufffd", tlen = 6;
        else
            take = l, text = s + i, tlen = l;
    } else {
        text = s + i, tlen = 1;
    }
    if (tlen + 3 > room(o)) {
        o->cut = true;
        return 0;
    }
    put(o, text, tlen);
    return take;
}

/* Writes s[0..n) escaped (put_escaped_char). A registered secret, and the
 * value after "password=" and the like, become [redacted]. Caller holds
 * lock. */
static void put_escaped(out_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && !o->cut;) {
        size_t len = secret_at(s, n, i), keep, value_end;
        if (len) {
            puts_(o, "[redacted]");
            i += len;
        } else if (isalpha((unsigned char)s[i]) && secret_assignment(s, n, i, &keep, &value_end)) {
            for (size_t end = i + keep, t = 1; i < end && t;)
                i += t = put_escaped_char(o, s, n, i);
            if (value_end > i)
                puts_(o, "[redacted]");
            i = value_end;
        } else {
            size_t t = put_escaped_char(o, s, n, i);
            if (!t)
                break;
            i += t;
        }
    }
    if (o->cut)
        put_closing(o, "...");
}

/* logfmt writes a value bare when nothing in it needs quoting. */
static bool needs_quotes(const char *s, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '=' || c == '\\')
            return true;
    }
    /* A secret inside must be redacted, which the escaper does. */
    size_t keep, value_end;
    for (size_t i = 0; i < n; i++)
        if (isalpha((unsigned char)s[i]) && secret_assignment(s, n, i, &keep, &value_end))
            return true;
    return has_secret(s, n);
}

static void put_string_value(out_t *o, const char *s, size_t n, bool json)
{
    if (!json && !needs_quotes(s, n)) {
        put(o, s, n);
        return;
    }
    put(o, "\"", 1);
    put_escaped(o, s, n);
    put_closing(o, "\"");
}

/* Keys come from code, but a vg_log() text may hold anything: keep
 * letters, digits, '_', '.', '-'. */
static void put_key(out_t *o, const char *k, size_t n, bool json)
{
    char buf[64];
    if (n >= sizeof(buf))
        n = sizeof(buf) - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        buf[i] = isalnum(c) || c == '_' || c == '.' || c == '-' ? (char)c : '_';
    }
    if (n == 0)
        buf[n++] = '_';
    if (json)
        put(o, "\"", 1);
    put(o, buf, n);
    put(o, json ? "\":" : "=", json ? 2 : 1);
}

static void put_field(out_t *o, const field_t *f, bool json)
{
    char num[64];
    if (o->cut)
        return;
    put(o, json ? "," : " ", 1);
    /* Only a vg_log() text can make a key of a secret. */
    if (has_secret(f->key, f->key_len))
        put_key(o, "redacted", 8, json);
    else
        put_key(o, f->key, f->key_len, json);
    if (secret_key(f->key, f->key_len)) {
        put_string_value(o, "[redacted]", 10, json);
        return;
    }
    switch (f->type) {
    case VG_LOG_F_STR:
        put_string_value(o, f->s ? f->s : "", f->s ? f->s_len : 0, json);
        return;
    case F_NUMTEXT:
        if (has_secret(f->s, f->s_len))
            put_string_value(o, f->s, f->s_len, json);
        else
            put(o, f->s, f->s_len);
        return;
    case VG_LOG_F_INT:
        snprintf(num, sizeof(num), "%lld", f->i);
        break;
    case VG_LOG_F_UINT:
        snprintf(num, sizeof(num), "%llu", f->u);
        break;
    case VG_LOG_F_DOUBLE:
        if (isfinite(f->d))
            snprintf(num, sizeof(num), "%.15g", f->d);
        else
            snprintf(num, sizeof(num), "%s", json ? "null" : isnan(f->d) ? "NaN" : "Inf");
        break;
    case VG_LOG_F_BOOL:
        snprintf(num, sizeof(num), "%s", f->i ? "true" : "false");
        break;
    default:
        snprintf(num, sizeof(num), "\"?\"");
        break;
    }
    puts_(o, num);
}

static void put_timestamp(out_t *o, bool json)
{
    struct timespec ts;
    struct tm tm;
    char buf[96], stamp[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, sizeof(buf), json ? "\"ts\":\"%s.%03ldZ\"," : "ts=%s.%03ldZ ", stamp,
             ts.tv_nsec / 1000000);
    puts_(o, buf);
}

/* Renders and writes one line. Caller holds lock. */
static void emit(vg_log_level_t level, const char *msg, size_t msg_len, const field_t *fields,
                 size_t n)
{
    static const char *const prio[] = {"<7>", "<6>", "<4>", "<3>"};
    bool json = opts.format == VG_LOG_JSON;
    /* One buffer serves every line: the caller holds lock. */
    static out_t line;
    out_t *o = &line;
    o->len = 0;
    o->cut = false;
    if (opts.priority_prefix)
        puts_(o, prio[level]);
    if (json)
        put(o, "{", 1);
    if (opts.timestamps)
        put_timestamp(o, json);
    puts_(o, json ? "\"level\":\"" : "level=");
    puts_(o, level_names[level]);
    puts_(o, json ? "\",\"msg\":" : " msg=");
    /* msg is always quoted in logfmt: it is prose. */
    put(o, "\"", 1);
    put_escaped(o, msg, msg_len);
    put_closing(o, "\"");
    for (size_t i = 0; i < n; i++)
        put_field(o, &fields[i], json);
    if (o->cut && json)
        put_closing(o, ",\"truncated\":true");
    else if (o->cut)
        put_closing(o, " truncated=true");
    put_closing(o, json ? "}\n" : "\n");
    for (size_t off = 0; off < o->len;) {
        ssize_t w = write(opts.fd, o->buf + off, o->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}

/* ---- rate limiting ------------------------------------------------------ */

static void format_span(uint64_t ms, char *buf, size_t size)
{
    if (ms < 1000)
        snprintf(buf, size, "%ums", (unsigned)ms);
    else if (ms % 1000 == 0)
        snprintf(buf, size, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, size, "%.1fs", (double)ms / 1000.0);
}

/* "msg (repeated 57 times in the last 10s)" with repeated=57. */
static void emit_summary(rl_slot_t *s, uint64_t span_ms)
{
    char span[32], msg[RL_MSG_BYTES + 80];
    format_span(span_ms, span, sizeof(span));
    int len = snprintf(msg, sizeof(msg), "%s (repeated %llu time%s in the last %s)", s->msg,
                       s->suppressed, s->suppressed == 1 ? "" : "s", span);
    field_t f = {.key = "repeated", .key_len = 8, .type = VG_LOG_F_UINT, .u = s->suppressed};
    emit(s->level, msg, len > 0 && (size_t)len < sizeof(msg) ? (size_t)len : strlen(msg), &f, 1);
    s->suppressed = 0;
}

/* When the window of slot s is over at now: writes the summary it owes
 * and starts its next window. Caller holds lock. */
static void roll_window(rl_slot_t *s, uint64_t now)
{
    if (now - s->window_start < opts.window_ms)
        return;
    if (s->suppressed)
        emit_summary(s, opts.window_ms);
    s->window_start = now;
    s->printed = 0;
}

static uint64_t fnv1a(uint64_t h, const char *s, size_t n, bool skip_digits)
{
    for (size_t i = 0; i < n; i++) {
        if (skip_digits && isdigit((unsigned char)s[i]))
            continue;
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Decides whether a line under key hash may be written now; writes a due
 * summary first. Caller holds lock. */
static bool rl_admit(vg_log_level_t level, uint64_t hash, const char *msg, size_t msg_len)
{
    if (level < VG_LOG_WARN || opts.burst == 0)
        return true;
    uint64_t now = now_ms();
    rl_slot_t *s = NULL, *free_slot = NULL;
    for (size_t k = 0; k < RL_SLOTS; k++) {
        rl_slot_t *c = &slots[(hash + k) % RL_SLOTS];
        if (c->used && c->hash == hash) {
            s = c;
            break;
        }
        if (!c->used) {
            free_slot = c;
            break;
        }
    }
    if (!s && !free_slot) {
        /* Table full: reuse a slot whose window is over and owes nothing. */
        for (size_t k = 0; k < RL_SLOTS && !free_slot; k++) {
            rl_slot_t *c = &slots[(hash + k) % RL_SLOTS];
            if (c->suppressed == 0 && now - c->window_start >= opts.window_ms)
                free_slot = c;
        }
        if (!free_slot)
            return true; /* too many distinct keys at once: do not limit */
    }
    if (!s) {
        s = free_slot;
        memset(s, 0, sizeof(*s));
        s->used = true;
        s->hash = hash;
        s->window_start = now;
    }
    roll_window(s, now);
    if (s->printed < opts.burst) {
        s->printed++;
        return true;
    }
    s->suppressed++;
    s->level = level;
    size_t n = msg_len < sizeof(s->msg) - 1 ? msg_len : sizeof(s->msg) - 1;
    memcpy(s->msg, msg, n);
    s->msg[n] = '\0';
    return false;
}

/* Writes the summaries the slots owe. A tick rolls over only the windows
 * that are over; a flush (at exit) writes every summary now, over the time
 * its window has run so far. */
static void emit_owed_summaries(bool flush)
{
    pthread_mutex_lock(&lock);
    ensure_configured();
    uint64_t now = now_ms();
    for (size_t k = 0; k < RL_SLOTS; k++) {
        rl_slot_t *s = &slots[k];
        if (!s->used || !s->suppressed)
            continue;
        if (flush)
            emit_summary(s, now - s->window_start);
        else
            roll_window(s, now);
    }
    pthread_mutex_unlock(&lock);
}

void vg_log_tick(void)
{
    emit_owed_summaries(false);
}

void vg_log_flush(void)
{
    emit_owed_summaries(true);
}

/* ---- entry points ------------------------------------------------------- */

void vg_log_fields(vg_log_level_t level, const char *msg, const vg_log_field_t *fields, size_t n)
{
    if ((unsigned)level > VG_LOG_ERROR)
        level = VG_LOG_ERROR;
    if (!msg)
        msg = "";
    field_t fs[MAX_FIELDS];
    size_t nf = 0;
    for (size_t i = 0; i < n && nf < MAX_FIELDS; i++) {
        const vg_log_field_t *f = &fields[i];
        fs[nf] = (field_t){.key = f->key ? f->key : "_",
                           .key_len = f->key ? strlen(f->key) : 1,
                           .type = (int)f->type,
                           .s = f->s,
                           .s_len = f->s ? strlen(f->s) : 0,
                           .i = f->i,
                           .u = f->u,
                           .d = f->d};
        nf++;
    }
    size_t msg_len = strlen(msg);
    pthread_mutex_lock(&lock);
    ensure_configured();
    if (level >= opts.level &&
        rl_admit(level, fnv1a(14695981039346656037ull, msg, msg_len, false), msg, msg_len))
        emit(level, msg, msg_len, fs, nf);
    pthread_mutex_unlock(&lock);
}

static bool is_key_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-';
}

/* Length of "key=" at s, or 0. */
static size_t key_at(const char *s)
{
    size_t i = 0;
    while (is_key_char(s[i]))
        i++;
    return i > 0 && s[i] == '=' ? i : 0;
}

static bool looks_numeric(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    size_t digits = 0;
    while (i < n && isdigit((unsigned char)s[i]))
        i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        size_t frac = 0;
        while (i < n && isdigit((unsigned char)s[i]))
            i++, frac++;
        if (!frac)
            return false;
    }
    /* No leading zeros beyond "0", as JSON wants. */
    size_t lead = s[0] == '-' ? 1 : 0;
    if (digits > 1 && s[lead] == '0')
        return false;
    return digits > 0 && i == n;
}

/* Splits `msg="..." key=value key2="..."` back into fields. A quoted value
 * ends at the quote that is followed by the end or by " key=", so a quote
 * inside a %s that was not escaped does not end it early. Text that does
 * not parse becomes msg (or a "text" field after msg). */
static size_t parse_logfmt(const char *t, const char **msg, size_t *msg_len, field_t *fs,
                           size_t max)
{
    size_t nf = 0;
    *msg = NULL;
    *msg_len = 0;
    const char *p = t;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        size_t kl = key_at(p);
        if (!kl || nf >= max) {
            if (!*msg) {
                *msg = p;
                *msg_len = strlen(p);
            } else if (nf < max) {
                fs[nf++] = (field_t){.key = "text", .key_len = 4, .type = VG_LOG_F_STR,
                                     .s = p, .s_len = strlen(p)};
            }
            break;
        }
        const char *key = p, *v = p + kl + 1, *vend;
        bool quoted = *v == '"';
        if (quoted) {
            v++;
            const char *q = NULL;
            for (const char *c = v; *c; c++)
                if (*c == '"' && (c[1] == '\0' || (c[1] == ' ' && key_at(c + 2)))) {
                    q = c;
                    break;
                }
            vend = q ? q : v + strlen(v);
            p = q ? q + 1 : vend;
        } else {
            vend = v + strcspn(v, " ");
            p = vend;
        }
        size_t vl = (size_t)(vend - v);
        if (kl == 3 && memcmp(key, "msg", 3) == 0 && !*msg) {
            *msg = v;
            *msg_len = vl;
            continue;
        }
        fs[nf++] = (field_t){.key = key, .key_len = kl,
                             .type = !quoted && looks_numeric(v, vl) ? F_NUMTEXT : VG_LOG_F_STR,
                             .s = v, .s_len = vl};
    }
    if (!*msg)
        *msg = "", *msg_len = 0;
    return nf;
}

void vg_log(vg_log_level_t level, const char *fmt, ...)
{
    if ((unsigned)level > VG_LOG_ERROR)
        level = VG_LOG_ERROR;
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    int full = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&lock);
    /* A secret the cut went through would show its first part. */
    if (full >= (int)sizeof(text)) {
        size_t len = strlen(text);
        size_t tail = cut_secret_tail(text, len);
        size_t at = len - tail < sizeof(text) - 11 ? len - tail : sizeof(text) - 11;
        if (tail)
            memcpy(text + at, "[redacted]", 11);
    }
    pthread_mutex_unlock(&lock);
    const char *msg;
    size_t msg_len;
    field_t fs[MAX_FIELDS];
    size_t nf = parse_logfmt(text, &msg, &msg_len, fs, MAX_FIELDS);
    pthread_mutex_lock(&lock);
    ensure_configured();
    if (level >= opts.level &&
        rl_admit(level, fnv1a(14695981039346656037ull, text, strlen(text), true), msg, msg_len))
        emit(level, msg, msg_len, fs, nf);
    pthread_mutex_unlock(&lock);
}

unsigned long long vg_env_number(const char *name, unsigned long long min,
                                 unsigned long long max, unsigned long long def)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    /* strtoull takes leading blanks and a '-' (wrapping around): neither
     * is a number of workers or bytes. */
    if (*v >= '0' && *v <= '9' && *end == '\0' && errno == 0 && n >= min && n <= max)
        return n;
    vg_log_kv(VG_LOG_WARN, "ignoring an environment variable that is not a whole number in range",
              VG_LOG_STR("variable", name), VG_LOG_STR("value", v), VG_LOG_UINT("min", min),
              VG_LOG_UINT("max", max), VG_LOG_UINT("using", def));
    return def;
}
