/* Named definitions: lists (inline, spliced with `$name`, or read from a
 * file) and the registration of lists and macros in the first pass. A
 * list is resolved into items on first use, so that a list may splice one
 * defined later or in another file; the def_t state catches cycles. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "regfile.h"
#include "ruleset_int.h"
#include "vigil/norm.h"
#include "vigil/utf8.h"

/* A list file's size limit (README, Configuration); a rule file's is the
 * YAML loader's, 16 MiB. */
#define MAX_LIST_FILE_BYTES (64u * 1024 * 1024)

static const char *const TOP_KEYS[] = {"lists", "macros", "rules"};

/* ---- registration (pass 1) ---- */

/* Where register_kind keeps one kind of definition. */
typedef struct def_kind {
    const char *key;   /* the top-level key: "lists" */
    const char *noun;  /* "list" */
    const char *shape; /* what the map holds, for the error */
    size_t size;       /* of one list_def_t or macro_def_t */
    void **defs;       /* &c->lists or &c->macros */
    size_t *ndefs;
    vg_strmap_t *idx; /* name → index in defs */
} def_kind_t;

static def_t *def_at(const def_kind_t *kind, size_t i)
{
    return (def_t *)((char *)*kind->defs + i * kind->size);
}

/* Registers the definitions under kind->key of one file; false after
 * running out of memory. */
static bool register_kind(compiler_t *c, const char *file, const vg_ynode_t *root,
                          const def_kind_t *kind)
{
    const vg_ynode_t *map = vg_ynode_get(root, kind->key);
    if (!map || is_null(map))
        return true;
    if (map->kind != VG_YNODE_MAP) {
        ERR(c, file, map, "'%s' takes a map of %s, got %s", kind->key, kind->shape,
            vg_ynode_describe(map));
        return true;
    }
    for (size_t i = 0; i < map->count; i++) {
        const vg_ynode_t *k = map->items[2 * i];
        uint32_t *prev = vg_strmap_get(kind->idx, k->str, k->len);
        if (prev) {
            const def_t *o = def_at(kind, *prev);
            ERR(c, file, k, "duplicate %s '%s' (first defined at %s:%u:%u)", kind->noun, k->str,
                o->file, o->line, o->col);
            continue;
        }
        void *grown = realloc(*kind->defs, (*kind->ndefs + 1) * kind->size);
        if (!grown)
            return vg_rc_oom(c), false;
        *kind->defs = grown;
        /* Terms keep their list's name for alert evidence, after the
         * YAML documents are gone. */
        const char *name = vg_rc_keep_string(c, k->str);
        if (!name)
            return false;
        def_t *d = def_at(kind, *kind->ndefs);
        memset(d, 0, kind->size);
        *d = (def_t){.name = name,
                     .node = map->items[2 * i + 1],
                     .file = file,
                     .line = k->line,
                     .col = k->col};
        if (vg_strmap_put(kind->idx, k->str, k->len, (uint32_t)*kind->ndefs) < 0)
            return vg_rc_oom(c), false;
        (*kind->ndefs)++;
    }
    return true;
}

void vg_rc_register_defs(compiler_t *c, const char *file, const vg_ynode_t *root)
{
    vg_rc_check_keys(c, file, root, TOP_KEYS, N(TOP_KEYS), "a rule file");
    const def_kind_t kinds[] = {
        {"lists", "list", "name: [terms]", sizeof(list_def_t), (void **)&c->lists, &c->nlists,
         &c->list_idx},
        {"macros", "macro", "name: condition", sizeof(macro_def_t), (void **)&c->macros,
         &c->nmacros, &c->macro_idx},
    };
    for (size_t i = 0; i < N(kinds); i++)
        if (!register_kind(c, file, root, &kinds[i]))
            return;
}

/* ---- items ---- */

static list_def_t *find_list(compiler_t *c, const char *name)
{
    uint32_t *i = vg_strmap_get(&c->list_idx, name, strlen(name));
    return i ? &c->lists[*i] : NULL;
}

static void unknown_list(compiler_t *c, const char *file, unsigned line, unsigned col,
                         const char *name)
{
    const char **names = malloc((c->nlists + 1) * sizeof(char *));
    for (size_t i = 0; names && i < c->nlists; i++)
        names[i] = c->lists[i].def.name;
    const char *s = names ? vg_suggest(name, names, c->nlists) : NULL;
    if (s)
        vg_rc_err_at(c, file, line, col, "'$%s' is not a defined list (did you mean '$%s'?)", name,
                     s);
    else
        vg_rc_err_at(c, file, line, col,
                     "'$%s' is not a defined list (define it under 'lists:' in any rule file)",
                     name);
    free(names);
}

static bool add_item(compiler_t *c, list_def_t *l, const item_t *it)
{
    if (!vg_rc_grow(c, (void **)&l->items, &l->cap, l->nitems + 1, sizeof(item_t)))
        return false;
    l->items[l->nitems++] = *it;
    return true;
}

/* Appends the items of list `$name` written at node n. */
static bool splice_list(compiler_t *c, list_def_t *l, const vg_ynode_t *n)
{
    list_def_t *o = find_list(c, n->str + 1);
    if (!o) {
        unknown_list(c, l->def.file, n->line, n->col, n->str + 1);
        return false;
    }
    if (!vg_rc_resolve_list(c, o)) {
        if (o->def.state == VISITING)
            ERR(c, l->def.file, n, "list '%s' includes itself through '$%s' (a cycle)", l->def.name,
                o->def.name);
        return false;
    }
    for (size_t i = 0; i < o->nitems; i++)
        if (!add_item(c, l, &o->items[i]))
            return false;
    return true;
}

/* The item of scalar node t written in list l. */
static item_t node_item(const list_def_t *l, const vg_ynode_t *t, uint32_t group)
{
    return (item_t){.text = t->str,
                    .len = t->len,
                    .group = group,
                    .type = t->type,
                    .num = t->num,
                    .quoted = t->quoted,
                    .file = l->def.file,
                    .line = t->line,
                    .col = t->col,
                    .list = l->def.name};
}

/* An entity item (rule 16): {name: NAME, aliases: [TERM…]}. Its name and
 * aliases are items of one group, each carrying the name. */
static bool append_entity(compiler_t *c, list_def_t *l, const vg_ynode_t *n)
{
    static const char *const keys[] = {"name", "aliases"};
    const vg_ynode_t *name = vg_ynode_get(n, "name"), *al = vg_ynode_get(n, "aliases");
    if (!name) {
        ERR(c, l->def.file, n,
            "list items must be strings, numbers or entities such as {name: Micron, aliases: "
            "[美光]}; this map has no 'name'");
        return false;
    }
    vg_rc_check_keys(c, l->def.file, n, keys, N(keys), "an entity");
    if (!is_str(name) || name->len == 0) {
        ERR(c, l->def.file, name, "an entity's name must be a non-empty string, got %s",
            is_str(name) ? "an empty one" : vg_ynode_describe(name));
        return false;
    }
    if (al && al->kind != VG_YNODE_SEQ) {
        ERR(c, l->def.file, al, "'aliases' takes a list of terms, got %s", vg_ynode_describe(al));
        return false;
    }
    const char *kept = vg_rc_keep_string(c, name->str);
    if (!kept)
        return false;
    uint32_t group = c->next_group++;
    size_t nal = al ? al->count : 0;
    bool ok = true;
    for (size_t i = 0; i <= nal; i++) {
        const vg_ynode_t *t = i == 0 ? name : al->items[i - 1];
        if (t->kind != VG_YNODE_SCALAR || t->type == VG_YSCALAR_NULL) {
            ERR(c, l->def.file, t, "an entity's aliases are terms (strings), got %s",
                vg_ynode_describe(t));
            ok = false;
            continue;
        }
        item_t it = node_item(l, t, group);
        it.entity = kept;
        it.alias = i > 0;
        ok = add_item(c, l, &it) && ok;
    }
    return ok;
}

/* Appends the items of a node: a `$name` splice, a value or an entity. */
static bool append_scalar_item(compiler_t *c, list_def_t *l, const vg_ynode_t *n)
{
    if (n->kind == VG_YNODE_MAP)
        return append_entity(c, l, n);
    if (n->kind != VG_YNODE_SCALAR) {
        ERR(c, l->def.file, n, "list items must be strings, numbers or entities, got %s",
            vg_ynode_describe(n));
        return false;
    }
    if (n->type == VG_YSCALAR_STRING && n->str[0] == '$' && n->str[1] != '$')
        return splice_list(c, l, n);
    item_t it = node_item(l, n, c->next_group++);
    if (n->type == VG_YSCALAR_STRING && n->str[0] == '$') {
        it.text++; /* "$$x" is the literal "$x" */
        it.len--;
    }
    return add_item(c, l, &it);
}

/* Collects TERMS: `$name`, a single string, or a list of strings and
 * `$name` splices, into a temporary list. */
bool vg_rc_collect_items(compiler_t *c, const char *file, const vg_ynode_t *n, list_def_t *out)
{
    out->def.file = file;
    out->def.name = NULL;
    if (n->kind == VG_YNODE_SCALAR || n->kind == VG_YNODE_MAP)
        return append_scalar_item(c, out, n);
    if (n->kind != VG_YNODE_SEQ) {
        ERR(c, file, n, "expected a list of terms or '$listname', got %s", vg_ynode_describe(n));
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < n->count; i++)
        ok = append_scalar_item(c, out, n->items[i]) && ok;
    return ok;
}

/* ---- list files ---- */

/* Adds one item per line of buf: trimmed, without blank lines and '#'
 * comments. Items point into buf, so it is cut at each item's end. */
static bool add_lines(compiler_t *c, list_def_t *l, const char *file, char *buf, size_t len)
{
    unsigned lineno = 0;
    for (char *p = buf; p < buf + len;) {
        char *e = memchr(p, '\n', (size_t)(buf + len - p));
        if (!e)
            e = buf + len;
        lineno++;
        char *s = p, *t = e;
        while (s < t && isspace((unsigned char)*s))
            s++;
        while (t > s && isspace((unsigned char)t[-1]))
            t--;
        if (t > s && *s != '#') {
            *t = '\0';
            item_t it = {.text = s,
                         .len = (size_t)(t - s),
                         .group = c->next_group++,
                         .type = VG_YSCALAR_STRING,
                         .quoted = true,
                         .file = file,
                         .line = lineno,
                         .col = 1,
                         .list = l->def.name};
            if (!add_item(c, l, &it))
                return false;
        }
        p = e + 1;
    }
    return true;
}

/* A list given as {file: PATH}: one term per line, relative to the rule
 * file's folder; blank lines and '#' comments are skipped. */
static bool load_list_file(compiler_t *c, list_def_t *l, const vg_ynode_t *fnode)
{
    if (!is_str(fnode) || fnode->len == 0) {
        ERR(c, l->def.file, fnode, "'file' must be a path, got %s", vg_ynode_describe(fnode));
        return false;
    }
    char path[4096];
    const char *slash = strrchr(l->def.file, '/');
    if (fnode->str[0] == '/' || !slash)
        snprintf(path, sizeof(path), "%s", fnode->str);
    else
        snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - l->def.file), l->def.file,
                 fnode->str);
    char err[256];
    size_t len = 0;
    char *buf =
        vg_regfile_read(path, MAX_LIST_FILE_BYTES, "a list file", &len, err, sizeof(err));
    if (!buf) {
        ERR(c, l->def.file, fnode, "list file '%s': %s", path, err);
        return false;
    }
    const char *kept = vg_rc_keep_string(c, path);
    /* The buffer lives as long as the ruleset's strings, because items
     * point into it until the terms are interned. */
    if (!vg_rc_keep_buffer(c, buf) || !kept)
        return false;
    /* The list's contents change the rules as much as the rule files do. */
    c->hash = vg_hash64(c->hash, buf, len);
    if (memchr(buf, '\0', len) || !vg_utf8_valid(buf, len)) {
        ERR(c, l->def.file, fnode, "list file '%s' is not UTF-8 text", path);
        return false;
    }
    /* A byte-order mark is no part of the first term. */
    size_t bom = len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    return add_lines(c, l, kept, buf + bom, len - bom);
}

/* vigil check's warnings about a list: empty, or a term twice (as text
 * reads them: normalised, case folded). */
static void warn_list(compiler_t *c, list_def_t *l)
{
    if (l->nitems == 0) {
        vg_diags_add(c->diags, VG_DIAG_WARNING, l->def.file, l->def.line, l->def.col,
                     "list '%s' is empty: a condition on it never holds", l->def.name);
        return;
    }
    vg_norm_t *nm = vg_rc_norm(c);
    vg_strmap_t seen;
    vg_strmap_init(&seen);
    for (size_t i = 0; nm && i < l->nitems; i++) {
        /* A long list takes a while: a cancelled load stops here too. */
        if (i % 4096 == 4095 && !vg_rc_in_bounds(c))
            break;
        const item_t *it = &l->items[i];
        const char *t;
        size_t tl;
        char err[64];
        if (it->type != VG_YSCALAR_STRING ||
            vg_norm_run(nm, it->text, it->len, 0, &t, &tl, err, sizeof(err)) != 0)
            continue;
        uint32_t *prev = vg_strmap_get(&seen, t, tl);
        if (prev) {
            const item_t *p = &l->items[*prev];
            vg_diags_add(c->diags, VG_DIAG_WARNING, it->file, it->line, it->col,
                         "'%.*s' is in list '%s' twice (as '%.*s' at %s:%u:%u); matching reads "
                         "them as one term",
                         (int)it->len, it->text, l->def.name, (int)p->len, p->text, p->file,
                         p->line, p->col);
        } else if (vg_strmap_put(&seen, t, tl, (uint32_t)i) < 0) {
            break;
        }
    }
    vg_strmap_free(&seen);
}

bool vg_rc_resolve_list(compiler_t *c, list_def_t *l)
{
    if (l->def.state == DONE)
        return true;
    if (l->def.state == FAILED || l->def.state == VISITING)
        return false;
    l->def.state = VISITING;
    bool ok = true;
    const vg_ynode_t *n = l->def.node;
    if (n->kind == VG_YNODE_SEQ) {
        for (size_t i = 0; i < n->count; i++)
            ok = append_scalar_item(c, l, n->items[i]) && ok;
    } else if (n->kind == VG_YNODE_MAP) {
        static const char *const keys[] = {"file"};
        vg_rc_check_keys(c, l->def.file, n, keys, 1, "a list");
        const vg_ynode_t *f = vg_ynode_get(n, "file");
        if (!f) {
            ERR(c, l->def.file, n, "list '%s' must be a YAML list or {file: PATH}", l->def.name);
            ok = false;
        } else {
            ok = load_list_file(c, l, f);
        }
    } else {
        ERR(c, l->def.file, n, "list '%s' must be a YAML list or {file: PATH}, got %s", l->def.name,
            vg_ynode_describe(n));
        ok = false;
    }
    l->def.state = ok ? DONE : FAILED;
    if (ok)
        warn_list(c, l);
    return ok;
}
