/* raw_scan: the practical limit for vigil's keyword search. Reads JSON
 * lines, takes the "title" and "body" strings of each event, lower-cases
 * their ASCII letters into a buffer and scans it with one Vectorscan
 * literal database of all the terms (hs_compile_lit_multi, caseless),
 * counting matches. No word boundaries, no white-space folding, no rule
 * evaluation, no alert output: a lower bound on the work vigil does.
 *
 *   raw_scan [--no-lower] [--minimal] TERMS.txt EVENTS.jsonl
 *
 * --minimal: instead of json-c, a minimal extractor that walks the top
 * level of each object, skips every other value and decodes only the
 * "title" and "body" strings (escapes and \uXXXX, surrogate pairs),
 * lower-casing while it copies: the cheapest way to get the text.
 * --no-lower: scan json-c's string as it is (json-c mode only).
 *
 * TERMS.txt: one term per line, as a vigil list file: blank lines and lines
 * starting with '#' are skipped, surrounding white space is dropped; a
 * trailing '*' is dropped (the stem is scanned), a leading "$$" stands for
 * "$", and "/regex/" lines are skipped (counted in the output).
 *
 * Prints one line of key=value pairs: events, input bytes, text bytes
 * scanned, matches, events with a match, compile time, total time
 * (read + JSON parse + lower-case + scan) and scan-only time, and the rates
 * events/s and text MB/s (MB = 10^6 bytes) over the total time.
 *
 * Build: gcc -O2 tests/bench/raw_scan.c -lhs -ljson-c -o build/raw_scan
 */
#include <hs/hs.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *msg, const char *arg)
{
    fprintf(stderr, "raw_scan: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    exit(2);
}

typedef struct counts {
    unsigned long long matches;
    int hit;
} counts_t;

static int on_match(unsigned int id, unsigned long long from, unsigned long long to,
                    unsigned int flags, void *ctx)
{
    (void)id;
    (void)from;
    (void)to;
    (void)flags;
    counts_t *c = ctx;
    c->matches++;
    c->hit = 1;
    return 0;
}

/* Reads the terms; returns how many, sets *skipped to the regex count. */
static size_t read_terms(const char *path, char ***pats_out, size_t **lens_out, size_t *skipped)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot open", path);
    size_t cap = 1024, n = 0;
    char **pats = malloc(cap * sizeof *pats);
    size_t *lens = malloc(cap * sizeof *lens);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    *skipped = 0;
    if (!pats || !lens)
        die("out of memory", NULL);
    while ((got = getline(&line, &lcap, f)) >= 0) {
        char *s = line, *e = line + got;
        while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
            e--;
        if (s == e || *s == '#')
            continue;
        if (e - s >= 2 && *s == '/' && e[-1] == '/') {
            (*skipped)++;
            continue;
        }
        if (e - s >= 2 && s[0] == '$' && s[1] == '$')
            s++;
        if (e - s >= 2 && e[-1] == '*')
            e--;
        if (n == cap) {
            cap *= 2;
            pats = realloc(pats, cap * sizeof *pats);
            lens = realloc(lens, cap * sizeof *lens);
            if (!pats || !lens)
                die("out of memory", NULL);
        }
        lens[n] = (size_t)(e - s);
        pats[n] = malloc(lens[n] + 1);
        if (!pats[n])
            die("out of memory", NULL);
        memcpy(pats[n], s, lens[n]);
        pats[n][lens[n]] = '\0';
        n++;
    }
    free(line);
    fclose(f);
    *pats_out = pats;
    *lens_out = lens;
    return n;
}

/* ---- minimal extractor ---- */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at '"'; returns the position after the closing quote, or NULL. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* Skips one value (string, number, literal, object or array). */
static const char *skip_value(const char *p, const char *end)
{
    int depth = 0;
    while (p < end) {
        char ch = *p;
        if (ch == '"') {
            p = skip_string(p, end);
            if (!p)
                return NULL;
            if (depth == 0)
                return p;
            continue;
        }
        if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (depth == 0)
                return p;
            if (--depth == 0)
                return p + 1;
        } else if (depth == 0 && (ch == ',' || ch == ' ' || ch == '\t' || ch == '\r' ||
                                  ch == '\n')) {
            return p;
        }
        p++;
    }
    return depth == 0 ? p : NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int hex4(const char *p, const char *end)
{
    if (end - p < 4)
        return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the JSON string at p ('"') into out (room for end - p bytes),
 * lower-casing ASCII letters. Returns the end of the string or NULL. */
static const char *decode_string(const char *p, const char *end, char *out, size_t *len)
{
    size_t o = 0;
    for (p++; p < end; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"') {
            *len = o;
            return p + 1;
        }
        if (ch != '\\') {
            out[o++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
            continue;
        }
        if (++p >= end)
            return NULL;
        switch (*p) {
        case 'n': out[o++] = '\n'; break;
        case 't': out[o++] = '\t'; break;
        case 'r': out[o++] = '\r'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'u': {
            int cp = hex4(p + 1, end);
            if (cp < 0)
                return NULL;
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && end - p >= 7 && p[1] == '\\' && p[2] == 'u') {
                int lo = hex4(p + 3, end);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            if (cp >= 0xD800 && cp < 0xE000)
                cp = 0xFFFD;
            if (cp >= 'A' && cp <= 'Z')
                cp += 32;
            o += put_utf8(out + o, (unsigned)cp);
            break;
        }
        default: out[o++] = *p; break; /* \" \\ \/ */
        }
    }
    return NULL;
}

/* Calls scan_fn on the decoded "title" and "body" of one JSON object line.
 * Returns 0, or -1 when the line is not a JSON object as far as it looks. */
typedef void (*text_fn)(const char *s, size_t len, void *ctx);

static int minimal_extract(const char *p, const char *end, char **buf, size_t *bcap,
                           text_fn fn, void *ctx)
{
    p = skip_ws(p, end);
    if (p == end || *p != '{')
        return -1;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return 0;
    while (p < end) {
        if (*p != '"')
            return -1;
        const char *k = p + 1;
        p = skip_string(p, end);
        if (!p)
            return -1;
        size_t klen = (size_t)(p - 1 - k);
        int want = (klen == 5 && memcmp(k, "title", 5) == 0) ||
                   (klen == 4 && memcmp(k, "body", 4) == 0);
        p = skip_ws(p, end);
        if (p == end || *p != ':')
            return -1;
        p = skip_ws(p + 1, end);
        if (want && p < end && *p == '"') {
            size_t need = (size_t)(end - p);
            if (need > *bcap) {
                *bcap = need * 2;
                *buf = realloc(*buf, *bcap);
                if (!*buf)
                    die("out of memory", NULL);
            }
            size_t len;
            p = decode_string(p, end, *buf, &len);
            if (!p)
                return -1;
            fn(*buf, len, ctx);
        } else {
            p = skip_value(p, end);
            if (!p)
                return -1;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}')
            return 0;
        return -1;
    }
    return -1;
}

typedef struct scan_ctx {
    hs_database_t *db;
    hs_scratch_t *scratch;
    counts_t *c;
    unsigned long long *text_bytes;
    double *scan_s;
} scan_ctx_t;

static void scan_text(const char *s, size_t len, void *ctx)
{
    scan_ctx_t *x = ctx;
    *x->text_bytes += len;
    double ts = now();
    if (hs_scan(x->db, s, (unsigned)len, 0, x->scratch, on_match, x->c) != HS_SUCCESS)
        die("hs_scan failed", NULL);
    *x->scan_s += now() - ts;
}

int main(int argc, char **argv)
{
    int lower = 1, minimal = 0;
    int a = 1;
    for (; a < argc && argv[a][0] == '-' && argv[a][1] == '-'; a++) {
        if (strcmp(argv[a], "--no-lower") == 0)
            lower = 0;
        else if (strcmp(argv[a], "--minimal") == 0)
            minimal = 1;
        else
            break;
    }
    if (argc - a != 2) {
        fprintf(stderr, "usage: raw_scan [--no-lower] [--minimal] TERMS.txt EVENTS.jsonl\n");
        return 2;
    }
    char **pats;
    size_t *lens, skipped;
    size_t n = read_terms(argv[a], &pats, &lens, &skipped);
    if (n == 0)
        die("no literal terms in", argv[a]);
    unsigned *flags = malloc(n * sizeof *flags), *ids = malloc(n * sizeof *ids);
    if (!flags || !ids)
        die("out of memory", NULL);
    for (size_t i = 0; i < n; i++) {
        flags[i] = HS_FLAG_CASELESS;
        ids[i] = (unsigned)i;
    }
    double t0 = now();
    hs_database_t *db = NULL;
    hs_compile_error_t *ce = NULL;
    if (hs_compile_lit_multi((const char *const *)pats, flags, ids, lens, (unsigned)n,
                             HS_MODE_BLOCK, NULL, &db, &ce) != HS_SUCCESS)
        die("hs_compile_lit_multi failed", ce && ce->message ? ce->message : "?");
    hs_scratch_t *scratch = NULL;
    if (hs_alloc_scratch(db, &scratch) != HS_SUCCESS)
        die("hs_alloc_scratch failed", NULL);
    double t_compile = now() - t0;

    FILE *in = fopen(argv[a + 1], "rb");
    if (!in)
        die("cannot open", argv[a + 1]);
    char *line = NULL, *buf = NULL;
    size_t lcap = 0, bcap = 0;
    ssize_t got;
    unsigned long long events = 0, bad = 0, in_bytes = 0, text_bytes = 0, hit_events = 0;
    counts_t c = {0, 0};
    double scan_s = 0;
    static const char *const fields[] = {"title", "body"};
    json_tokener *tok = json_tokener_new();
    if (!tok)
        die("out of memory", NULL);
    double t1 = now();
    scan_ctx_t sx = {db, scratch, &c, &text_bytes, &scan_s};
    while ((got = getline(&line, &lcap, in)) >= 0) {
        in_bytes += (unsigned long long)got;
        if (minimal) {
            c.hit = 0;
            if (minimal_extract(line, line + got, &buf, &bcap, scan_text, &sx) != 0) {
                bad++;
                continue;
            }
            events++;
            hit_events += (unsigned long long)c.hit;
            continue;
        }
        json_tokener_reset(tok);
        json_object *ev = json_tokener_parse_ex(tok, line, (int)got);
        if (!ev || !json_object_is_type(ev, json_type_object)) {
            bad++;
            json_object_put(ev);
            continue;
        }
        events++;
        c.hit = 0;
        for (size_t k = 0; k < 2; k++) {
            json_object *v;
            if (!json_object_object_get_ex(ev, fields[k], &v) ||
                !json_object_is_type(v, json_type_string))
                continue;
            const char *s = json_object_get_string(v);
            size_t len = (size_t)json_object_get_string_len(v);
            const char *scan = s;
            if (lower) {
                if (len > bcap) {
                    bcap = len * 2;
                    buf = realloc(buf, bcap);
                    if (!buf)
                        die("out of memory", NULL);
                }
                for (size_t i = 0; i < len; i++) {
                    unsigned char ch = (unsigned char)s[i];
                    buf[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
                }
                scan = buf;
            }
            text_bytes += len;
            double ts = now();
            if (hs_scan(db, scan, (unsigned)len, 0, scratch, on_match, &c) != HS_SUCCESS)
                die("hs_scan failed", NULL);
            scan_s += now() - ts;
        }
        hit_events += (unsigned long long)c.hit;
        json_object_put(ev);
    }
    double total = now() - t1;
    printf("extract=%s terms=%zu regex_skipped=%zu events=%llu malformed=%llu input_bytes=%llu "
           "text_bytes=%llu matches=%llu matched_events=%llu compile_s=%.4f total_s=%.4f "
           "scan_s=%.4f events_per_s=%.0f text_mb_per_s=%.1f\n",
           minimal ? "minimal" : "json-c", n, skipped, events, bad, in_bytes, text_bytes, c.matches, hit_events, t_compile, total,
           scan_s, events / total, (double)text_bytes / 1e6 / total);
    json_tokener_free(tok);
    free(line);
    free(buf);
    fclose(in);
    hs_free_scratch(scratch);
    hs_free_database(db);
    for (size_t i = 0; i < n; i++)
        free(pats[i]);
    free(pats);
    free(lens);
    free(flags);
    free(ids);
    return 0;
}
