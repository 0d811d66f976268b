/* The rule compiler: YAML rule files → validated, immutable ruleset.
 *
 * Loading happens in passes so that names are global across files and
 * every error in every file is reported in one run: parse each file;
 * register lists and macros; compile rules (resolving lists and macros on
 * first use, with cycle detection); compile unreferenced macros too, so
 * they are validated; finally build the vectorscan databases from the
 * interned terms.
 *
 * This file holds the public API, the passes and the helpers every stage
 * uses; ruleset_int.h lists the stages' files. */
#include "vigil/ruleset.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hash.h"
#include "regfile.h"
#include "ruleset_int.h"
#include "vigil/norm.h"

#define MAX_RULE_FILES 10000

static const char *const DEFAULT_TEXT_FIELDS[] = {"title", "body"};

/* ---- diagnostics and memory ---- */

void vg_rc_err_at(compiler_t *c, const char *file, unsigned line, unsigned col, const char *fmt,
                  ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    vg_diags_add(c->diags, VG_DIAG_ERROR, file, line, col, "%s", msg);
}

void vg_rc_oom(compiler_t *c)
{
    if (!c->oom)
        vg_diags_add(c->diags, VG_DIAG_ERROR, NULL, 0, 0, "out of memory while loading rules");
    c->oom = true;
}

char *vg_rc_strndup(compiler_t *c, const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) {
        vg_rc_oom(c);
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

bool vg_rc_grow(compiler_t *c, void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *n = realloc(*arr, ncap * elem);
    if (!n) {
        vg_rc_oom(c);
        return false;
    }
    *arr = n;
    *cap = ncap;
    return true;
}

bool vg_rc_keep_buffer(compiler_t *c, char *buf)
{
    vg_ruleset_t *rs = c->rs;
    if (!buf ||
        !vg_rc_grow(c, (void **)&rs->strings, &c->string_cap, rs->nstrings + 1, sizeof(char *))) {
        free(buf);
        return false;
    }
    rs->strings[rs->nstrings++] = buf;
    return true;
}

/* Strings the ruleset keeps for its lifetime (file and list names). */
const char *vg_rc_keep_string(compiler_t *c, const char *s)
{
    char *d = vg_rc_strndup(c, s, strlen(s));
    return vg_rc_keep_buffer(c, d) ? d : NULL;
}

vg_cond_t *vg_rc_new_cond(compiler_t *c, vg_cond_kind_t kind, const char *file,
                          const vg_ynode_t *at)
{
    vg_ruleset_t *rs = c->rs;
    if (!vg_rc_grow(c, (void **)&rs->conds, &c->cond_cap, rs->nconds + 1, sizeof(vg_cond_t *)))
        return NULL;
    vg_cond_t *cd = calloc(1, sizeof(*cd));
    if (!cd) {
        vg_rc_oom(c);
        return NULL;
    }
    cd->kind = kind;
    cd->file = file;
    cd->line = at->line;
    cd->col = at->col;
    vg_strmap_init(&cd->set);
    rs->conds[rs->nconds++] = cd;
    return cd;
}

/* ---- destroy ---- */

static void free_cond(vg_cond_t *cd)
{
    free(cd->kids);
    free(cd->name);
    free(cd->terms);
    free(cd->except);
    free(cd->near[0]);
    free(cd->near[1]);
    free(cd->slots);
    free(cd->path_text);
    for (size_t i = 0; i < cd->npath; i++)
        free(cd->path[i]);
    free(cd->path);
    for (size_t i = 0; i < cd->nopds; i++)
        free(cd->opds[i].text);
    free(cd->opds);
    vg_strmap_free(&cd->set);
    free(cd->nums);
    if (cd->re)
        hs_free_database(cd->re);
    free(cd);
}

static void free_rule_state(vg_rule_state_t *st)
{
    if (!st)
        return;
    vg_path_free(&st->field);
    for (size_t i = 0; i < st->ngroup; i++)
        vg_path_free(&st->group[i]);
    free(st->group);
    for (size_t i = 0; i < st->nout_group; i++)
        vg_path_free(&st->out_group[i]);
    free(st->out_group);
    vg_path_free(&st->time_field);
    free(st->summary);
    free(st);
}

static void free_seq(vg_rule_seq_t *q)
{
    for (size_t j = 0; j < q->nevents; j++)
        free(q->events[j]);
    free(q->events);
    free(q->lens);
    free(q->ev_lines);
    free(q->expect);
    free(q->name);
}

void vg_rc_free_rule(vg_rule_t *r)
{
    if (!r)
        return;
    free_rule_state(r->state);
    for (size_t i = 0; i < r->nseqs; i++)
        free_seq(&r->seqs[i]);
    free(r->seqs);
    free(r->id);
    free(r->title);
    free(r->description);
    for (size_t i = 0; i < r->ntags; i++)
        free(r->tags[i]);
    free(r->tags);
    free(r->topic);
    free(r->summary);
    for (size_t i = 0; i < r->ntests; i++)
        free(r->tests[i].json);
    free(r->tests);
    free(r);
}

static void free_terms_and_slots(vg_ruleset_t *rs)
{
    for (size_t i = 0; i < rs->nterms; i++) {
        free(rs->terms[i].text);
        free(rs->terms[i].pattern);
        free(rs->terms[i].words);
        free(rs->terms[i].lit_dash);
    }
    free(rs->terms);
    for (size_t i = 0; i < rs->nslots; i++) {
        free(rs->slot_text[i]);
        for (size_t j = 0; j < rs->slot_npath[i]; j++)
            free(rs->slot_path[i][j]);
        free(rs->slot_path[i]);
    }
    free(rs->slot_text);
    free(rs->slot_path);
    free(rs->slot_npath);
    free(rs->stateful_slots);
}

void vg_ruleset_destroy(vg_ruleset_t *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->nrules; i++)
        vg_rc_free_rule(rs->rules[i]);
    free(rs->rules);
    free_terms_and_slots(rs);
    for (int k = 0; k < 2; k++) {
        if (rs->db_lit[k])
            hs_free_database(rs->db_lit[k]);
        for (size_t i = 0; i < rs->nlit_more[k]; i++)
            if (rs->db_lit_more[k][i])
                hs_free_database(rs->db_lit_more[k][i]);
        free(rs->db_lit_more[k]);
        if (rs->db_norm[k])
            hs_free_database(rs->db_norm[k]);
        if (rs->db_user[k])
            hs_free_database(rs->db_user[k]);
    }
    free(rs->near_conds);
    for (size_t i = 0; i < rs->nconds; i++)
        free_cond(rs->conds[i]);
    free(rs->conds);
    for (size_t i = 0; i < rs->nstrings; i++)
        free(rs->strings[i]);
    free(rs->strings);
    for (size_t i = 0; i < rs->ntopics; i++)
        free(rs->topics[i]);
    free(rs->topics);
    free(rs);
}

/* ---- YAML nodes ---- */

void vg_rc_check_keys(compiler_t *c, const char *file, const vg_ynode_t *map,
                      const char *const *keys, size_t nkeys, const char *what)
{
    for (size_t i = 0; i < map->count; i++) {
        const vg_ynode_t *k = map->items[2 * i];
        bool ok = false;
        for (size_t j = 0; j < nkeys && !ok; j++)
            ok = strcmp(k->str, keys[j]) == 0;
        if (ok)
            continue;
        const char *s = vg_suggest(k->str, keys, nkeys);
        char allowed[256] = "";
        for (size_t j = 0; j < nkeys; j++) {
            strncat(allowed, keys[j], sizeof(allowed) - strlen(allowed) - 1);
            if (j + 1 < nkeys)
                strncat(allowed, ", ", sizeof(allowed) - strlen(allowed) - 1);
        }
        if (s)
            ERR(c, file, k, "unknown key '%s' in %s (did you mean '%s'?)", k->str, what, s);
        else
            ERR(c, file, k, "unknown key '%s' in %s (allowed: %s)", k->str, what, allowed);
    }
}

bool vg_rc_check_map(compiler_t *c, const char *file, const vg_ynode_t *v, const map_spec_t *spec)
{
    if (v->kind != VG_YNODE_MAP) {
        ERR(c, file, v, "'%s' takes %s, got %s", spec->key, spec->shape, vg_ynode_describe(v));
        return false;
    }
    vg_rc_check_keys(c, file, v, spec->keys, spec->nkeys, spec->what);
    return true;
}

static bool is_one_of(const one_of_t *spec, const char *key, size_t *index)
{
    for (size_t j = 0; j < spec->n; j++)
        if (strcmp(key, spec->names[j]) == 0) {
            *index = j;
            return true;
        }
    return false;
}

const vg_ynode_t *vg_rc_find_one_of(compiler_t *c, const char *file, const vg_ynode_t *map,
                                    const one_of_t *spec, size_t *index, const vg_ynode_t **value,
                                    bool *ok)
{
    const vg_ynode_t *found = NULL;
    for (size_t i = 0; i < map->count; i++) {
        const vg_ynode_t *k = map->items[2 * i];
        size_t j;
        if (!is_one_of(spec, k->str, &j)) {
            if (spec->other && !spec->other(c, file, k))
                *ok = false;
            continue;
        }
        /* All of them are reported, each against the first. */
        if (found) {
            ERR(c, file, k, "%s; '%s' and '%s' both given (%s)", spec->rule, found->str, k->str,
                spec->advice);
            *ok = false;
            continue;
        }
        found = k;
        *index = j;
        *value = map->items[2 * i + 1];
    }
    return found;
}

char *vg_rc_get_string(compiler_t *c, const char *file, const vg_ynode_t *map, const char *key,
                       bool required, const vg_ynode_t *where)
{
    const vg_ynode_t *v = vg_ynode_get(map, key);
    if (!v) {
        if (required)
            ERR(c, file, where, "missing required key '%s'", key);
        return NULL;
    }
    if (v->kind != VG_YNODE_SCALAR || v->type == VG_YSCALAR_NULL) {
        ERR(c, file, v, "'%s' must be a string, got %s", key, vg_ynode_describe(v));
        return NULL;
    }
    return vg_rc_strndup(c, v->str, v->len);
}

/* ---- rule files ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool has_yaml_ext(const char *name)
{
    size_t n = strlen(name);
    return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

/* Appends the rule files of folder dir, sorted by name so that the load
 * order (and with it the order of errors and the hash) does not depend on
 * the order readdir returns them in. */
static void add_folder(compiler_t *c, const char *dir, char ***files, size_t *nf, size_t *cap)
{
    DIR *d = opendir(dir);
    if (!d) {
        vg_diags_add(c->diags, VG_DIAG_ERROR, dir, 0, 0, "cannot open folder: %s", strerror(errno));
        return;
    }
    size_t first = *nf;
    bool slash = dir[strlen(dir) - 1] == '/';
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !has_yaml_ext(de->d_name))
            continue;
        if (*nf >= MAX_RULE_FILES || !vg_rc_grow(c, (void **)files, cap, *nf + 1, sizeof(char *)))
            break;
        size_t l = strlen(dir) + strlen(de->d_name) + 2;
        char *p = malloc(l);
        if (!p) {
            vg_rc_oom(c);
            break;
        }
        snprintf(p, l, "%s%s%s", dir, slash ? "" : "/", de->d_name);
        (*files)[(*nf)++] = p;
    }
    closedir(d);
    if (*nf == first)
        vg_diags_add(c->diags, VG_DIAG_WARNING, dir, 0, 0,
                     "folder has no *.yaml or *.yml rule files");
    /* Not qsort(NULL, 0, …) on an empty folder: that is undefined. */
    if (*nf > first)
        qsort(*files + first, *nf - first, sizeof(char *), cmp_str);
}

/* Expands paths into the ordered list of rule files. */
static char **expand_paths(compiler_t *c, const char *const *paths, size_t n, size_t *count)
{
    char **files = NULL;
    size_t nf = 0, cap = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            vg_diags_add(c->diags, VG_DIAG_ERROR, paths[i], 0, 0, "cannot read: %s",
                         strerror(errno));
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            add_folder(c, paths[i], &files, &nf, &cap);
            continue;
        }
        if (!vg_rc_grow(c, (void **)&files, &cap, nf + 1, sizeof(char *)))
            break;
        files[nf++] = vg_rc_strndup(c, paths[i], strlen(paths[i]));
    }
    *count = nf;
    return files;
}

/* ---- the passes ---- */

/* Pass 1: the lists and macros of every file, so that a rule may use a
 * name defined in a file loaded after its own. */
static void register_pass(compiler_t *c)
{
    for (size_t i = 0; i < c->ndocs; i++) {
        const vg_ynode_t *root = vg_ydoc_root(c->docs[i]);
        const char *file = c->doc_names[i];
        if (!root)
            continue;
        if (root->kind != VG_YNODE_MAP) {
            ERR(c, file, root, "a rule file is a map with 'lists', 'macros' and 'rules', got %s",
                vg_ynode_describe(root));
            continue;
        }
        vg_rc_register_defs(c, file, root);
    }
}

/* Pass 2: the rules of every file, in file order. */
static void rules_pass(compiler_t *c)
{
    for (size_t i = 0; i < c->ndocs; i++) {
        const vg_ynode_t *root = vg_ydoc_root(c->docs[i]);
        const char *file = c->doc_names[i];
        if (!root || root->kind != VG_YNODE_MAP)
            continue;
        const vg_ynode_t *rules = vg_ynode_get(root, "rules");
        if (!rules || is_null(rules))
            continue;
        if (rules->kind != VG_YNODE_SEQ) {
            ERR(c, file, rules,
                "'rules' takes a list of rules (each item starts with '- id:'), got %s",
                vg_ynode_describe(rules));
            continue;
        }
        for (size_t j = 0; j < rules->count; j++)
            vg_rc_compile_rule(c, file, rules->items[j]);
    }
}

/* Marks the text fields that cond searches (macros included). */
static void mark_slots(const vg_cond_t *cd, bool *slots, unsigned depth)
{
    if (!cd || depth > 2 * MAX_COND_DEPTH)
        return;
    if (cd->kind == VG_COND_TEXT)
        for (size_t i = 0; i < cd->nslots; i++)
            slots[cd->slots[i]] = true;
    for (size_t i = 0; i < cd->nkids; i++)
        mark_slots(cd->kids[i], slots, depth + 1);
}

/* The state step scans only what stateful rules search. */
static void mark_stateful_slots(compiler_t *c)
{
    vg_ruleset_t *rs = c->rs;
    rs->stateful_slots = calloc(rs->nslots ? rs->nslots : 1, sizeof(bool));
    if (!rs->stateful_slots)
        vg_rc_oom(c);
    for (size_t i = 0; rs->stateful_slots && i < rs->nrules; i++)
        if (rs->rules[i]->state)
            mark_slots(rs->rules[i]->match, rs->stateful_slots, 0);
}

static vg_ruleset_t *compile_all(compiler_t *c)
{
    vg_ruleset_t *rs = c->rs;
    register_pass(c);
    rules_pass(c);
    /* Validate what no rule used, so that a broken list or macro is not
     * found only when someone starts using it. */
    for (size_t i = 0; i < c->nlists; i++)
        vg_rc_resolve_list(c, &c->lists[i]);
    for (size_t i = 0; i < c->nmacros; i++)
        vg_rc_compile_macro(c, &c->macros[i]);
    /* A ruleset with errors is thrown away: building its databases would
     * cost time and could only repeat errors already reported. */
    if (vg_diags_errors(c->diags) == 0)
        vg_rc_build_databases(c);
    mark_stateful_slots(c);
    rs->nfiles = c->ndocs;
    rs->nlists = c->nlists;
    rs->nmacros = c->nmacros;
    c->hash = vg_hash_finish(c->hash);
    snprintf(rs->hash, sizeof(rs->hash), "%016llx", (unsigned long long)c->hash);
    if (vg_diags_errors(c->diags) > 0)
        return NULL;
    vg_ruleset_t *out = c->rs;
    c->rs = NULL;
    return out;
}

/* ---- the compiler ---- */

static void compiler_free(compiler_t *c)
{
    for (size_t i = 0; i < c->nlists; i++)
        free(c->lists[i].items);
    free(c->lists);
    free(c->macros);
    vg_strmap_free(&c->list_idx);
    vg_strmap_free(&c->macro_idx);
    vg_strmap_free(&c->term_idx);
    vg_strmap_free(&c->bad_terms);
    vg_strmap_free(&c->rule_idx);
    vg_strmap_free(&c->slot_idx);
    vg_strmap_free(&c->topic_idx);
    vg_rc_compile_end(c);
    vg_norm_destroy(c->norm);
    for (size_t i = 0; i < c->ndocs; i++)
        vg_ydoc_destroy(c->docs[i]);
    free(c->docs);
    free(c->doc_names);
    vg_ruleset_destroy(c->rs);
}

static bool compiler_init(compiler_t *c, const vg_ruleset_options_t *opts, vg_diags_t *diags)
{
    memset(c, 0, sizeof(*c));
    c->diags = diags;
    c->rs = calloc(1, sizeof(vg_ruleset_t));
    if (!c->rs)
        return false;
    if (opts && opts->n_text_fields) {
        c->default_fields = opts->text_fields;
        c->n_default_fields = opts->n_text_fields;
    } else {
        c->default_fields = DEFAULT_TEXT_FIELDS;
        c->n_default_fields = N(DEFAULT_TEXT_FIELDS);
    }
    /* The default fields change what rules search, so they are part of
     * the hash (with their NULs, so that "a","bc" differs from "ab","c"). */
    c->hash = VG_HASH_INIT;
    for (size_t i = 0; i < c->n_default_fields; i++)
        c->hash = vg_hash64(c->hash, c->default_fields[i], strlen(c->default_fields[i]) + 1);
    /* Before the files are read: the compile helper is forked while the
     * process is small, and the deadline covers the whole load. */
    vg_rc_compile_begin(c, opts);
    return true;
}

static void add_doc(compiler_t *c, vg_ydoc_t *doc)
{
    vg_ydoc_t **d = realloc(c->docs, (c->ndocs + 1) * sizeof(*d));
    if (d)
        c->docs = d;
    const char **names = realloc(c->doc_names, (c->ndocs + 1) * sizeof(*names));
    if (names)
        c->doc_names = names;
    const char *name = d && names ? vg_rc_keep_string(c, vg_ydoc_name(doc)) : NULL;
    if (!name) {
        vg_ydoc_destroy(doc);
        vg_rc_oom(c);
        return;
    }
    c->docs[c->ndocs] = doc;
    c->doc_names[c->ndocs++] = name;
    size_t len;
    const char *bytes = vg_ydoc_bytes(doc, &len);
    c->hash = vg_hash64(c->hash, bytes, len);
}

vg_ruleset_t *vg_ruleset_load(const char *const *paths, size_t n_paths,
                              const vg_ruleset_options_t *opts, vg_diags_t *diags)
{
    compiler_t c;
    if (!compiler_init(&c, opts, diags))
        return NULL;
    size_t nf = 0;
    char **files = expand_paths(&c, paths, n_paths, &nf);
    for (size_t i = 0; i < nf; i++) {
        vg_ydoc_t *doc = files[i] ? vg_ydoc_load_regular(files[i], NULL, diags) : NULL;
        if (doc)
            add_doc(&c, doc);
        free(files[i]);
    }
    free(files);
    vg_ruleset_t *rs = c.oom || c.abandoned ? NULL : compile_all(&c);
    compiler_free(&c);
    return rs;
}

vg_ruleset_t *vg_ruleset_load_sources(const vg_rule_source_t *sources, size_t n,
                                      const vg_ruleset_options_t *opts, vg_diags_t *diags)
{
    compiler_t c;
    if (!compiler_init(&c, opts, diags))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        vg_ydoc_t *doc =
            vg_ydoc_load_buffer(sources[i].name, sources[i].data, sources[i].len, NULL, diags);
        if (doc)
            add_doc(&c, doc);
    }
    vg_ruleset_t *rs = c.oom || c.abandoned ? NULL : compile_all(&c);
    compiler_free(&c);
    return rs;
}

/* One bound from the environment: a whole number in [1, 1000000]. */
static int env_bound(const char *name, unsigned long *out, char *err, size_t err_size)
{
    const char *v = getenv(name);
    if (!v)
        return 0;
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || end == v || *end || n < 1 || n > 1000000 || v[0] == '-') {
        snprintf(err, err_size, "%s must be a whole number from 1 to 1000000, got '%.64s'", name,
                 v);
        return -1;
    }
    *out = n;
    return 1;
}

int vg_ruleset_options_from_env(vg_ruleset_options_t *opts, char *err, size_t err_size)
{
    unsigned long secs, mib;
    int r = env_bound("VIGIL_MAX_COMPILE_SECONDS", &secs, err, err_size);
    if (r < 0)
        return -1;
    if (r > 0)
        opts->max_compile_seconds = (unsigned)secs;
    r = env_bound("VIGIL_MAX_COMPILE_MEMORY", &mib, err, err_size);
    if (r < 0)
        return -1;
    if (r > 0)
        opts->max_compile_memory = (size_t)mib * 1024 * 1024;
    return 0;
}

/* ---- accessors ---- */

/* One line each, as a table: clang-format would spread them to four. */
/* clang-format off */
size_t vg_ruleset_rule_count(const vg_ruleset_t *rs) { return rs->nrules; }
const vg_rule_t *vg_ruleset_rule(const vg_ruleset_t *rs, size_t i) { return rs->rules[i]; }
const char *vg_ruleset_hash(const vg_ruleset_t *rs) { return rs->hash; }
size_t vg_ruleset_file_count(const vg_ruleset_t *rs) { return rs->nfiles; }
size_t vg_ruleset_list_count(const vg_ruleset_t *rs) { return rs->nlists; }
size_t vg_ruleset_macro_count(const vg_ruleset_t *rs) { return rs->nmacros; }
size_t vg_ruleset_term_count(const vg_ruleset_t *rs) { return rs->nterms; }
size_t vg_ruleset_topic_count(const vg_ruleset_t *rs) { return rs->ntopics; }
const char *vg_ruleset_topic(const vg_ruleset_t *rs, size_t i) { return rs->topics[i]; }
const char *vg_rule_id(const vg_rule_t *r) { return r->id; }
const char *vg_rule_title(const vg_rule_t *r) { return r->title; }
const char *vg_rule_severity(const vg_rule_t *r) { return r->severity; }
const char *vg_rule_topic(const vg_rule_t *r) { return r->topic; }
bool vg_rule_enabled(const vg_rule_t *r) { return r->enabled; }
const vg_rule_state_t *vg_rule_state(const vg_rule_t *r) { return r->state; }
const char *vg_rule_summary(const vg_rule_t *r) { return r->summary; }
size_t vg_rule_tag_count(const vg_rule_t *r) { return r->ntags; }
const char *vg_rule_tag(const vg_rule_t *r, size_t i) { return r->tags[i]; }
size_t vg_rule_seq_count(const vg_rule_t *r) { return r->nseqs; }
const vg_rule_seq_t *vg_rule_seq(const vg_rule_t *r, size_t i) { return &r->seqs[i]; }
bool vg_rule_is_stateful(const vg_rule_t *r) { return r->state != NULL; }
const char *vg_rule_file(const vg_rule_t *r) { return r->file; }
unsigned vg_rule_line(const vg_rule_t *r) { return r->line; }
void vg_rule_topic_at(const vg_rule_t *r, unsigned *line, unsigned *col)
{
    *line = r->topic_line;
    *col = r->topic_col;
}
size_t vg_rule_test_count(const vg_rule_t *r) { return r->ntests; }
/* clang-format on */

const char *vg_rule_state_summary(const vg_rule_t *r)
{
    return r->state ? r->state->summary : NULL;
}

bool vg_ruleset_has_stateful(const vg_ruleset_t *rs)
{
    for (size_t i = 0; i < rs->nrules; i++)
        if (rs->rules[i]->enabled && rs->rules[i]->state)
            return true;
    return false;
}

const char *vg_rule_test(const vg_rule_t *r, size_t i, size_t *len, bool *expect_match,
                         unsigned *line)
{
    const vg_rule_test_case_t *t = &r->tests[i];
    if (len)
        *len = t->len;
    if (expect_match)
        *expect_match = t->expect_match;
    if (line)
        *line = t->line;
    return t->json;
}
