/* Micro-benchmark of the text normaliser (daemon/base/norm.c): MB/s of
 * input through vg_norm_run on English news (the ASCII fast path, mostly)
 * and on Chinese/Japanese/Korean text (the general path), beside a plain
 * ASCII lower-casing copy and the simple fold the scanner uses today
 * (vg_utf8_fold). Prints figures; never fails on a slow machine.
 *
 *   bench_norm [REUTERS_JSONL [DEMO_JSONL]]
 *
 * REUTERS_JSONL (default /tmp/cmp/reuters.jsonl) and DEMO_JSONL (default
 * rules/demo/events.jsonl) are JSON lines whose "title" and "body" are the
 * texts. The CJK corpus is synthesised from the sentences below, with the
 * demo stories mixed in. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vigil/norm.h"
#include "vigil/utf8.h"

typedef struct {
    char **text;
    size_t *len;
    size_t n, cap, bytes, ascii_texts;
} corpus_t;

static void add_text(corpus_t *c, const char *s, size_t len)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        c->text = realloc(c->text, c->cap * sizeof(*c->text));
        c->len = realloc(c->len, c->cap * sizeof(*c->len));
        if (!c->text || !c->len) {
            fprintf(stderr, "bench_norm: out of memory\n");
            exit(1);
        }
    }
    char *t = malloc(len + 1);
    if (!t) {
        fprintf(stderr, "bench_norm: out of memory\n");
        exit(1);
    }
    memcpy(t, s, len);
    t[len] = '\0';
    size_t i = 0;
    while (i < len && (unsigned char)s[i] < 0x80)
        i++;
    c->ascii_texts += i == len;
    c->text[c->n] = t;
    c->len[c->n++] = len;
    c->bytes += len;
}

/* Adds the title and body of each JSON line of path; returns the number of
 * lines read, or -1 when the file cannot be opened. */
static long load_jsonl(corpus_t *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    long lines = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) > 0) {
        json_object *o = json_tokener_parse(line);
        if (!o)
            continue;
        static const char *const fields[] = {"title", "body"};
        for (int k = 0; k < 2; k++) {
            json_object *v = json_object_object_get(o, fields[k]);
            if (v && json_object_is_type(v, json_type_string))
                add_text(c, json_object_get_string(v), (size_t)json_object_get_string_len(v));
        }
        json_object_put(o);
        lines++;
    }
    free(line);
    fclose(f);
    return lines;
}

/* Sentences of the kind the desk reads, to synthesise a CJK corpus. */
static const char *const cjk_sentences[] = {
    "美光科技未通过网络安全审查，关键信息基础设施运营者应停止采购其产品。",
    "美国商务部将中芯国际（SMIC）及其关联公司列入实体清单，理由是国家安全。",
    "中国商务部宣布对镓、锗相关物项实施出口管制，自２０２３年８月１日起施行。",
    "荷兰政府表示，ASML向中国出口部分深紫外光刻机需要申请许可证。",
    "日本政府は半導体製造装置など２３品目を輸出規制の対象に加えると発表した。",
    "経済産業省は、マイクロンの広島工場に最大１９２０億円を助成する。",
    "サムスン電子とＳＫハイニックスは、米国の規制強化に対応を急いでいる。",
    "政府は輸出規制を強化し、先端半導体の対中輸出を事実上禁止した。",
    "삼성전자가 미국 정부로부터 중국 공장에 대한 장비 반입 유예를 받았다.",
    "SK하이닉스는 우시 공장의 운영에 차질이 없을 것이라고 밝혔다.",
    "산업통상자원부는 반도체 공급망 대화를 열고 수출 의존도를 논의했다.",
    "미국은 동맹국들에 반도체 장비 수출과 정비 서비스를 제한하라고 압박했다.",
    "Reuters reported that Tokyo Electron shares fell 3% in Tokyo trading.",
    "華為（ファーウェイ）向けの輸出許可は取り消された。",
    "据路透社报道，英伟达将为中国市场推出符合出口管制规定的芯片。",
};

static void synth_cjk(corpus_t *c, const corpus_t *demo, size_t target)
{
    unsigned long seed = 12345;
    char buf[8192];
    size_t ns = sizeof(cjk_sentences) / sizeof(cjk_sentences[0]);
    while (c->bytes < target) {
        size_t len = 0;
        int k = 4 + (int)(seed % 9);
        for (int i = 0; i < k; i++) {
            seed = seed * 6364136223846793005UL + 1442695040888963407UL;
            const char *s = cjk_sentences[(seed >> 33) % ns];
            size_t l = strlen(s);
            if (len + l + 1 >= sizeof(buf))
                break;
            memcpy(buf + len, s, l);
            len += l;
        }
        add_text(c, buf, len);
        /* now and then a demo story (English, some French) */
        if (demo->n && (seed >> 40) % 8 == 0) {
            size_t d = (seed >> 20) % demo->n;
            add_text(c, demo->text[d], demo->len[d]);
        }
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

enum mode { M_LOWER, M_FOLD, M_NORM, M_NORM_CS, M_NORM_MAP };

static const char *const mode_names[] = {
    "ASCII lower-casing copy (baseline)",
    "vg_utf8_fold, simple folding (today)",
    "vg_norm_run",
    "vg_norm_run, case-sensitive",
    "vg_norm_run + vg_norm_map",
};

static volatile size_t g_sink;

/* One pass over the corpus; returns seconds. */
static double pass(const corpus_t *c, enum mode m, vg_norm_t *n, char *buf)
{
    double t0 = now();
    size_t sum = 0;
    for (size_t i = 0; i < c->n; i++) {
        const unsigned char *s = (const unsigned char *)c->text[i];
        size_t len = c->len[i];
        const char *out;
        size_t out_len = 0;
        switch (m) {
        case M_LOWER:
            for (size_t k = 0; k < len; k++)
                buf[k] = (char)((unsigned)s[k] - 'A' < 26u ? s[k] | 0x20 : s[k]);
            out_len = len;
            break;
        case M_FOLD:
            out_len = vg_utf8_fold(c->text[i], len, false, buf, NULL);
            break;
        case M_NORM:
        case M_NORM_CS:
        case M_NORM_MAP:
            if (vg_norm_run(n, c->text[i], len, m == M_NORM_CS ? VG_NORM_CASE_SENSITIVE : 0, &out,
                            &out_len, NULL, 0) != 0) {
                fprintf(stderr, "bench_norm: vg_norm_run failed\n");
                exit(1);
            }
            if (m == M_NORM_MAP)
                sum += vg_norm_map(n)[out_len];
            break;
        }
        sum += out_len;
    }
    g_sink = sum;
    return now() - t0;
}

static void bench(const char *title, const corpus_t *c, vg_norm_t *n)
{
    size_t maxlen = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->len[i] > maxlen)
            maxlen = c->len[i];
    char *buf = malloc(3 * maxlen + 1);
    if (!buf)
        exit(1);
    printf("%s: %zu texts, %.1f MB, %zu of them pure ASCII\n", title, c->n, c->bytes / 1e6,
           c->ascii_texts);
    for (int m = M_LOWER; m <= M_NORM_MAP; m++) {
        double best = 1e9;
        for (int r = 0; r < 5; r++) {
            double t = pass(c, (enum mode)m, n, buf);
            if (t < best)
                best = t;
        }
        printf("  %-38s %9.1f MB/s\n", mode_names[m], c->bytes / 1e6 / best);
    }
    free(buf);
}

static void free_corpus(corpus_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->text[i]);
    free(c->text);
    free(c->len);
}

int main(int argc, char **argv)
{
    const char *reuters = argc > 1 ? argv[1] : "/tmp/cmp/reuters.jsonl";
    const char *demo_path = argc > 2 ? argv[2] : "rules/demo/events.jsonl";
    char err[256];
    vg_norm_t *n = vg_norm_new(err, sizeof(err));
    if (!n) {
        fprintf(stderr, "bench_norm: %s\n", err);
        return 1;
    }
    corpus_t en = {0}, demo = {0}, cjk = {0};
    if (load_jsonl(&en, reuters) < 0)
        fprintf(stderr, "bench_norm: %s: cannot open (no English corpus)\n", reuters);
    if (load_jsonl(&demo, demo_path) < 0)
        fprintf(stderr, "bench_norm: %s: cannot open (no demo stories)\n", demo_path);
    synth_cjk(&cjk, &demo, 8000000);
    if (en.n)
        bench("English news (Reuters-21578 title+body)", &en, n);
    bench("CJK news (synthesised zh/ja/ko, demo stories mixed in)", &cjk, n);
    free_corpus(&en);
    free_corpus(&demo);
    free_corpus(&cjk);
    vg_norm_destroy(n);
    return 0;
}
