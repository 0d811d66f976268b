/* The daemon's log: both formats, escaping (quotes, newlines, control
 * characters, ill-formed UTF-8), lines written by vg_log() split back into
 * fields, levels, secrets, rate limiting on an injected clock, journald
 * detection, and lines from many threads never mixing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vigil/log.h"

static int out_fd = -1;
static uint64_t fake_now;

static uint64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

/* Logs go to a memory file; every test starts with an empty one and
 * these settings. */
static void use(vg_log_format_t format, unsigned burst)
{
    if (out_fd < 0)
        out_fd = memfd_create("vigil-log-test", 0);
    assert_true(out_fd >= 0);
    assert_int_equal(ftruncate(out_fd, 0), 0);
    assert_int_equal(lseek(out_fd, 0, SEEK_SET), 0);
    vg_log_options_t o;
    vg_log_options_default(&o);
    o.format = format;
    o.fd = out_fd;
    o.timestamps = false;
    o.priority_prefix = false;
    o.burst = burst;
    o.window_ms = 10000;
    o.clock_ms = fake_clock;
    fake_now = 1000000;
    vg_log_configure(&o);
}

/* Everything written so far (static buffer, NUL-terminated). */
static const char *output(void)
{
    static char buf[1 << 20];
    off_t end = lseek(out_fd, 0, SEEK_CUR);
    assert_true(end >= 0 && (size_t)end < sizeof(buf));
    ssize_t n = pread(out_fd, buf, (size_t)end, 0);
    assert_int_equal(n, end);
    buf[n] = '\0';
    return buf;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static size_t count_of(const char *s, const char *what)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

static void assert_output(const char *want)
{
    const char *got = output();
    if (strcmp(got, want) != 0)
        fail_msg("log output\n got: %s\nwant: %s", got, want);
}

/* Every line is one JSON object; returns the last one (caller puts). */
static json_object *parse_json_lines(const char *s, size_t want_lines)
{
    size_t lines = 0;
    json_object *last = NULL;
    while (*s) {
        const char *nl = strchr(s, '\n');
        assert_non_null(nl);
        char *line = strndup(s, (size_t)(nl - s));
        json_object *o = json_tokener_parse(line);
        if (!o)
            fail_msg("not JSON: %s", line);
        free(line);
        assert_true(json_object_is_type(o, json_type_object));
        json_object_put(last);
        last = o;
        lines++;
        s = nl + 1;
    }
    assert_int_equal(lines, want_lines);
    return last;
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("no key %s", key);
    return json_object_get_string(v);
}

/* ---- formats ------------------------------------------------------------ */

static void test_logfmt(void **state)
{
    (void)state;
    use(VG_LOG_LOGFMT, 5);
    vg_log_kv(VG_LOG_INFO, "rules reloaded", VG_LOG_UINT("rules", 12),
              VG_LOG_STR("ruleset", "ab12"), VG_LOG_STR("path", "/etc/vigil/rules d"),
              VG_LOG_INT("delta", -3), VG_LOG_BOOL("watch", 1), VG_LOG_DOUBLE("took_s", 0.25),
              VG_LOG_STR("empty", ""), VG_LOG_STR("none", NULL));
    vg_log_fields(VG_LOG_ERROR, "no fields", NULL, 0);
    assert_output("level=info msg=\"rules reloaded\" rules=12 ruleset=ab12 "
                  "path=\"/etc/vigil/rules d\" delta=-3 watch=true took_s=0.25 empty=\"\" "
                  "none=\"\"\n"
                  "level=error msg=\"no fields\"\n");
}

static void test_json(void **state)
{
    (void)state;
    use(VG_LOG_JSON, 5);
    vg_log_kv(VG_LOG_WARN, "rules reloaded", VG_LOG_UINT("rules", 12),
              VG_LOG_STR("ruleset", "ab12"), VG_LOG_BOOL("watch", 0),
              VG_LOG_DOUBLE("nan", 0.0 / 0.0));
    assert_output("{\"level\":\"warn\",\"msg\":\"rules reloaded\",\"rules\":12,"
                  "\"ruleset\":\"ab12\",\"watch\":false,\"nan\":null}\n");
    json_object_put(parse_json_lines(output(), 1));
}

/* Quotes, backslashes, newlines, tabs, control characters and ill-formed
 * UTF-8 in values; good UTF-8 stays as it is. */
static void test_escaping(void **state)
{
    (void)state;
    const char *nasty = "say \"hi\"\\ now\nnext\tline\x01 caf\xc3\xa9 bad\xff\xfe cut\xc3";
    const char *want_inner = "say \\\"hi\\\"\\\\ now\\nnext\\tline\\u0001 caf\xc3\xa9 "
                             "bad\\ufffd\\ufffd cut\\ufffd";
    char want[512];

    use(VG_LOG_LOGFMT, 5);
    vg_log_kv(VG_LOG_INFO, "odd \"msg\"\n", VG_LOG_STR("v", nasty), VG_LOG_STR("eq", "a=b"),
              VG_LOG_STR("k ey", "x"));
    snprintf(want, sizeof(want),
             "level=info msg=\"odd \\\"msg\\\"\\n\" v=\"%s\" eq=\"a=b\" k_ey=x\n", want_inner);
    assert_output(want);
    assert_int_equal(count_lines(output()), 1);

    use(VG_LOG_JSON, 5);
    vg_log_kv(VG_LOG_INFO, "odd \"msg\"\n", VG_LOG_STR("v", nasty));
    snprintf(want, sizeof(want),
             "{\"level\":\"info\",\"msg\":\"odd \\\"msg\\\"\\n\",\"v\":\"%s\"}\n", want_inner);
    assert_output(want);
    json_object *o = parse_json_lines(output(), 1);
    assert_string_equal(jstr(o, "msg"), "odd \"msg\"\n");
    assert_string_equal(jstr(o, "v"), "say \"hi\"\\ now\nnext\tline\x01 caf\xc3\xa9 "
                                      "bad\xef\xbf\xbd\xef\xbf\xbd cut\xef\xbf\xbd");
    json_object_put(o);
}

/* vg_log()'s printf text is split back into fields, so JSON gets numbers
 * and strings, and an unescaped quote or newline in a %s is escaped. */
static void test_printf_lines(void **state)
{
    (void)state;
    const char *fmt = "msg=\"cannot store offset\" topic=%s partition=%d offset=%lld err=\"%s\"";
    const char *err = "broker said \"no\"\nthen left";
    use(VG_LOG_LOGFMT, 5);
    vg_log(VG_LOG_WARN, fmt, "news", 3, 1234567890123LL, err);
    vg_log(VG_LOG_INFO, "plain words, no fields");
    vg_log(VG_LOG_INFO, "msg=\"zero\" a=007 b=-1.5 c=1. d=x=y");
    assert_output("level=warn msg=\"cannot store offset\" topic=news partition=3 "
                  "offset=1234567890123 err=\"broker said \\\"no\\\"\\nthen left\"\n"
                  "level=info msg=\"plain words, no fields\"\n"
                  "level=info msg=\"zero\" a=007 b=-1.5 c=1. d=\"x=y\"\n");

    use(VG_LOG_JSON, 5);
    vg_log(VG_LOG_WARN, fmt, "news", 3, 1234567890123LL, err);
    vg_log(VG_LOG_INFO, "msg=\"zero\" a=007 b=-1.5 c=1.");
    const char *s = output();
    assert_non_null(strstr(s, "\"partition\":3,\"offset\":1234567890123,"));
    /* not JSON numbers as written: kept as strings */
    assert_non_null(strstr(s, "\"a\":\"007\",\"b\":-1.5,\"c\":\"1.\""));
    json_object *o = parse_json_lines(s, 2);
    json_object_put(o);
    use(VG_LOG_JSON, 5);
    vg_log(VG_LOG_WARN, fmt, "news", 3, 1LL, err);
    o = parse_json_lines(output(), 1);
    assert_string_equal(jstr(o, "err"), err);
    assert_string_equal(jstr(o, "topic"), "news");
    json_object_put(o);
}

static void test_levels(void **state)
{
    (void)state;
    use(VG_LOG_LOGFMT, 5);
    vg_log_fields(VG_LOG_DEBUG, "hidden", NULL, 0);
    vg_log_set_level(VG_LOG_WARN);
    vg_log_fields(VG_LOG_INFO, "hidden too", NULL, 0);
    vg_log_fields(VG_LOG_WARN, "shown", NULL, 0);
    vg_log_set_level(VG_LOG_DEBUG);
    vg_log(VG_LOG_DEBUG, "msg=\"debug now\"");
    assert_output("level=warn msg=\"shown\"\nlevel=debug msg=\"debug now\"\n");
    vg_log_level_t l;
    vg_log_format_t f;
    assert_int_equal(vg_log_level_parse("warning", &l), 0);
    assert_int_equal(l, VG_LOG_WARN);
    assert_int_equal(vg_log_format_parse("xml", &f), -1);
    assert_string_equal(vg_log_level_name(VG_LOG_ERROR), "error");
    assert_string_equal(vg_log_format_name(VG_LOG_JSON), "json");
}

/* ---- secrets ------------------------------------------------------------ */

static void test_secrets(void **state)
{
    (void)state;
    for (int f = 0; f < 2; f++) {
        use(f ? VG_LOG_JSON : VG_LOG_LOGFMT, 5);
        vg_log_kv(VG_LOG_INFO, "config", VG_LOG_STR("sasl.password", "hunter2"),
                  VG_LOG_STR("api_token", "tok-123"), VG_LOG_STR("user", "vigil"));
        vg_log_kv(VG_LOG_ERROR, "librdkafka",
                  VG_LOG_STR("detail", "bad conf sasl.password=hunter2, ssl.key.password: s3cr3t;"
                                       " ok=1"));
        vg_log(VG_LOG_ERROR, "msg=\"librdkafka\" detail=\"Secret=hunter2 token=tok-123\"");
        const char *s = output();
        assert_null(strstr(s, "hunter2"));
        assert_null(strstr(s, "tok-123"));
        assert_null(strstr(s, "s3cr3t"));
        assert_int_equal(count_of(s, "[redacted]"), 6);
        assert_non_null(strstr(s, "vigil"));
        assert_non_null(strstr(s, "ok=1"));
        if (f)
            json_object_put(parse_json_lines(s, 3));
    }
    use(VG_LOG_LOGFMT, 5);
    vg_log_kv(VG_LOG_INFO, "x", VG_LOG_STR("detail", "sasl.password=hunter2"));
    assert_output("level=info msg=\"x\" detail=\"sasl.password=[redacted]\"\n");
}

/* The value after a secret's name in quotes: password="x", token:'x',
 * key: "x", a JSON "secret": "x", and the same inside escaped JSON. */
static void test_secrets_quoted(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "auth failed: password=\"hunter2 q\" user=vigil",
        "token:'tok-123' ok=1",
        "sasl.password: \"s3cr3t\", ok=1",
        "{\"user\":\"vigil\",\"client_secret\": \"hunter2\"}",
        "body {\\\"password\\\":\\\"s3cr3t\\\",\\\"user\\\":\\\"vigil\\\"}",
        "API_TOKEN = 'x' stays, API_TOKEN='tok-123' goes",
    };
    for (int f = 0; f < 2; f++) {
        use(f ? VG_LOG_JSON : VG_LOG_LOGFMT, 0);
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
            vg_log_kv(VG_LOG_ERROR, "librdkafka", VG_LOG_STR("detail", texts[i]));
            vg_log(VG_LOG_ERROR, "msg=\"librdkafka\" detail=\"%s\"", texts[i]);
        }
        const char *s = output();
        assert_null(strstr(s, "hunter2"));
        assert_null(strstr(s, "tok-123"));
        assert_null(strstr(s, "s3cr3t"));
        assert_int_equal(count_of(s, "[redacted]"), 12);
        assert_int_equal(count_of(s, "vigil"), 6);
        if (f)
            json_object_put(parse_json_lines(s, 12));
    }
    use(VG_LOG_LOGFMT, 0);
    vg_log_kv(VG_LOG_INFO, "x", VG_LOG_STR("detail", "password=\"hunter2\" token: 'tok-123'"));
    vg_log_kv(VG_LOG_INFO, "x", VG_LOG_STR("detail", "password=\"\" secret=\"unterminated"));
    assert_output("level=info msg=\"x\" detail=\"password=\\\"[redacted]\\\" token: "
                  "'[redacted]'\"\n"
                  "level=info msg=\"x\" detail=\"password=\\\"\\\" secret=\\\"[redacted]\"\n");
}

/* Registered texts (what the configuration took from the environment)
 * are redacted wherever they appear: message, value, key, a bare number,
 * with characters that are escaped, and where a line is cut. */
static void test_registered_secrets(void **state)
{
    (void)state;
    assert_int_equal(vg_log_add_secret("k9.example.org:9093"), 0);
    assert_int_equal(vg_log_add_secret("pw\"with\\quote"), 0);
    assert_int_equal(vg_log_add_secret("7654321"), 0);
    assert_int_equal(vg_log_add_secret("k9.example.org:9093"), 0); /* once is enough */
    assert_int_equal(vg_log_add_secret("abc"), 0);                 /* too short: ignored */
    assert_int_equal(vg_log_add_secret(NULL), 0);
    for (int f = 0; f < 2; f++) {
        use(f ? VG_LOG_JSON : VG_LOG_LOGFMT, 0);
        vg_log(VG_LOG_INFO, "msg=\"started\" brokers=\"%s\" group=abc",
               "k9.example.org:9093,k2:9092");
        vg_log_kv(VG_LOG_ERROR, "cannot reach k9.example.org:9093",
                  VG_LOG_STR("err", "login pw\"with\\quote refused"));
        vg_log(VG_LOG_WARN, "msg=\"odd\" 7654321=x n=7654321 m=17654321");
        const char *s = output();
        assert_null(strstr(s, "k9.example.org"));
        assert_null(strstr(s, "with\\\\quote"));
        assert_null(strstr(s, "with"));
        assert_null(strstr(s, "654321"));
        assert_non_null(strstr(s, "k2:9092"));
        assert_non_null(strstr(s, f ? "\"group\":\"abc\"" : " group=abc"));
        /* One in the first line, two in the second, two in the third, whose
         * key is written "redacted". */
        assert_int_equal(count_of(s, "[redacted]"), 5);
        assert_non_null(strstr(s, f ? "\"redacted\":\"x\"" : " redacted=x "));
        if (f)
            json_object_put(parse_json_lines(s, 3));
    }
    /* vg_log() cuts its text at 4095 bytes, and a line at 8192: wherever
     * the cut falls in a secret, no part of it may show. */
    static char pad[9000];
    for (size_t at = 4095 - 4 - 24; at < 4095 - 4; at++) {
        use(VG_LOG_LOGFMT, 0);
        memset(pad, 'x', at);
        pad[at] = '\0';
        vg_log(VG_LOG_INFO, "msg=%sk9.example.org:9093 end", pad);
        const char *s = output();
        if (strstr(s, "k9.ex") || !strstr(s, "[redacted]"))
            fail_msg("cut after %zu bytes: %s", at, s + at - 10);
    }
    int cut = 0;
    for (size_t at = 8192 - 64 - 24 - 30; at < 8192 - 64 - 24; at++) {
        use(VG_LOG_LOGFMT, 0);
        memset(pad, 'y', at);
        snprintf(pad + at, sizeof(pad) - at, "k9.example.org:9093");
        vg_log_kv(VG_LOG_INFO, "cut", VG_LOG_STR("v", pad));
        const char *s = output();
        if (strstr(s, "k9.ex"))
            fail_msg("cut after %zu bytes: %s", at, s + at - 10);
        cut += strstr(s, "truncated=true") != NULL;
    }
    assert_true(cut > 0 && cut < 30);
    vg_log_forget_secrets();
    use(VG_LOG_LOGFMT, 0);
    vg_log_kv(VG_LOG_INFO, "x", VG_LOG_STR("v", "k9.example.org:9093"));
    assert_output("level=info msg=\"x\" v=k9.example.org:9093\n");
    assert_true(vg_log_secret_name("sasl.oauthbearer.client.secret"));
    assert_true(vg_log_secret_name("ssl.key.PASSWORD"));
    assert_false(vg_log_secret_name("sasl.username"));
    assert_false(vg_log_secret_name(NULL));
}

/* ---- rate limiting ------------------------------------------------------ */

static void test_rate_limit(void **state)
{
    (void)state;
    use(VG_LOG_LOGFMT, 2);
    for (int i = 0; i < 5; i++) {
        vg_log_kv(VG_LOG_ERROR, "cannot produce", VG_LOG_INT("attempt", i));
        fake_now += 100;
    }
    /* another key is counted on its own; info is never held back */
    vg_log_kv(VG_LOG_WARN, "consumer error", VG_LOG_INT("attempt", 0));
    for (int i = 0; i < 4; i++)
        vg_log_kv(VG_LOG_INFO, "partitions assigned", VG_LOG_INT("count", i));
    assert_int_equal(count_of(output(), "cannot produce"), 2);
    assert_int_equal(count_of(output(), "partitions assigned"), 4);
    vg_log_tick(); /* window not over: nothing */
    fake_now = 1000000 + 9999;
    vg_log_tick();
    assert_int_equal(count_of(output(), "repeated"), 0);
    fake_now = 1000000 + 10000;
    vg_log_tick();
    const char *s = output();
    assert_non_null(strstr(s, "level=error msg=\"cannot produce (repeated 3 times in the last "
                              "10s)\" repeated=3\n"));
    assert_int_equal(count_of(s, "repeated"), 2);
    vg_log_tick(); /* said once only */
    assert_int_equal(count_of(output(), "(repeated"), 1);

    /* A new window lets the burst through again; a repeat after the
     * window writes the summary before its own line. */
    use(VG_LOG_JSON, 1);
    vg_log_kv(VG_LOG_ERROR, "cannot produce", VG_LOG_INT("n", 1));
    vg_log_kv(VG_LOG_ERROR, "cannot produce", VG_LOG_INT("n", 2));
    fake_now += 20000;
    vg_log_kv(VG_LOG_ERROR, "cannot produce", VG_LOG_INT("n", 3));
    assert_output("{\"level\":\"error\",\"msg\":\"cannot produce\",\"n\":1}\n"
                  "{\"level\":\"error\",\"msg\":\"cannot produce (repeated 1 time in the last "
                  "10s)\",\"repeated\":1}\n"
                  "{\"level\":\"error\",\"msg\":\"cannot produce\",\"n\":3}\n");

    /* vg_log(): the key is the text without its digits */
    use(VG_LOG_LOGFMT, 1);
    for (int i = 0; i < 58; i++)
        vg_log(VG_LOG_ERROR, "msg=\"cannot store offset\" partition=%d offset=%d", i % 3, i);
    vg_log(VG_LOG_ERROR, "msg=\"cannot store offset\" partition=1 offset=1 err=\"other\"");
    fake_now += 2500;
    vg_log_flush(); /* at exit: the span so far */
    s = output();
    assert_int_equal(count_lines(s), 3);
    assert_non_null(strstr(s, "msg=\"cannot store offset (repeated 57 times in the last 2.5s)\" "
                              "repeated=57\n"));
    /* burst 0: no limit */
    use(VG_LOG_LOGFMT, 0);
    for (int i = 0; i < 100; i++)
        vg_log_kv(VG_LOG_ERROR, "same", VG_LOG_INT("i", i));
    vg_log_flush();
    assert_int_equal(count_lines(output()), 100);
}

/* Many distinct keys at once: more than the table holds are not limited,
 * and nothing is lost or crashes. */
static void test_rate_limit_many_keys(void **state)
{
    (void)state;
    use(VG_LOG_LOGFMT, 1);
    char msg[32];
    for (int round = 0; round < 2; round++)
        for (int k = 0; k < 400; k++) {
            snprintf(msg, sizeof(msg), "key %c%c%c", 'a' + k % 26, 'a' + (k / 26) % 26,
                     'a' + k / 676);
            vg_log_fields(VG_LOG_ERROR, msg, NULL, 0);
        }
    const char *s = output();
    size_t lines = count_lines(s);
    assert_true(lines >= 400 && lines < 800);
    fake_now += 10000;
    vg_log_tick();
    assert_int_equal(count_of(output(), "(repeated 1 time"), 800 - lines);
}

/* ---- journald, timestamps, long lines ---------------------------------- */

static void test_journald_and_timestamps(void **state)
{
    (void)state;
    use(VG_LOG_LOGFMT, 5);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(out_fd, 2) == 2);
    struct stat st;
    assert_int_equal(fstat(2, &st), 0);
    char js[64];
    snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", js, 1);
    vg_log_options_t o;
    vg_log_options_default(&o);
    setenv("JOURNAL_STREAM", "1:2", 1);
    vg_log_options_t other;
    vg_log_options_default(&other);
    unsetenv("JOURNAL_STREAM");
    dup2(saved, 2);
    close(saved);
    assert_true(o.priority_prefix);
    assert_false(o.timestamps);
    assert_false(other.priority_prefix);
    assert_true(other.timestamps);
    assert_int_equal(o.format, VG_LOG_LOGFMT);
    assert_int_equal(o.level, VG_LOG_INFO);

    o.fd = out_fd;
    o.clock_ms = fake_clock;
    vg_log_configure(&o);
    vg_log_fields(VG_LOG_ERROR, "e", NULL, 0);
    vg_log_fields(VG_LOG_WARN, "w", NULL, 0);
    vg_log_fields(VG_LOG_INFO, "i", NULL, 0);
    assert_output("<3>level=error msg=\"e\"\n<4>level=warn msg=\"w\"\n<6>level=info msg=\"i\"\n");

    use(VG_LOG_LOGFMT, 5);
    other.fd = out_fd;
    other.clock_ms = fake_clock;
    vg_log_configure(&other);
    vg_log_fields(VG_LOG_INFO, "i", NULL, 0);
    const char *s = output();
    /* ts=2026-11-29T12:00:00.123Z */
    assert_int_equal(strncmp(s, "ts=", 3), 0);
    assert_int_equal(strlen(s), strlen("ts=2026-11-29T12:00:00.123Z level=info msg=\"i\"\n"));
    assert_true(s[7] == '-' && s[13] == 'T' && s[22] == '.' && s[26] == 'Z');
    other.format = VG_LOG_JSON;
    use(VG_LOG_JSON, 5);
    other.fd = out_fd;
    vg_log_configure(&other);
    vg_log_fields(VG_LOG_INFO, "i", NULL, 0);
    json_object *j = parse_json_lines(output(), 1);
    assert_int_equal(strlen(jstr(j, "ts")), 24);
    json_object_put(j);
}

static void test_long_line(void **state)
{
    (void)state;
    char *big = malloc(20001);
    assert_non_null(big);
    memset(big, 'x', 20000);
    big[20000] = '\0';
    big[100] = '"';
    for (int f = 0; f < 2; f++) {
        use(f ? VG_LOG_JSON : VG_LOG_LOGFMT, 5);
        vg_log_kv(VG_LOG_INFO, "big", VG_LOG_STR("a", "first"), VG_LOG_STR("v", big),
                  VG_LOG_STR("after", "dropped"));
        const char *s = output();
        assert_int_equal(count_lines(s), 1);
        assert_true(strlen(s) <= 8192);
        assert_null(strstr(s, "dropped"));
        assert_non_null(strstr(s, "...\""));
        if (f) {
            json_object *o = parse_json_lines(s, 1);
            json_object *t;
            assert_true(json_object_object_get_ex(o, "truncated", &t));
            json_object_put(o);
        } else {
            assert_non_null(strstr(s, "truncated=true\n"));
        }
    }
    free(big);
}

/* ---- threads ------------------------------------------------------------ */

enum { THREADS = 4, PER_THREAD = 2000 };

static void *writer(void *arg)
{
    long t = (long)arg;
    for (int i = 0; i < PER_THREAD; i++)
        vg_log_kv(VG_LOG_INFO, "from a thread", VG_LOG_INT("thread", t), VG_LOG_INT("i", i),
                  VG_LOG_STR("pad", "some text that makes the line a little longer \"q\""));
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    use(VG_LOG_JSON, 5);
    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, writer, (void *)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    const char *s = output();
    json_object *last = parse_json_lines(s, THREADS * PER_THREAD);
    json_object_put(last);
}

static int teardown_all(void **state)
{
    (void)state;
    if (out_fd >= 0)
        close(out_fd);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logfmt),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_printf_lines),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_secrets_quoted),
        cmocka_unit_test(test_registered_secrets),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_rate_limit_many_keys),
        cmocka_unit_test(test_journald_and_timestamps),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_all);
}
