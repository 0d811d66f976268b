/* YAML loading: libyaml's event parser feeding a read-only tree whose
 * nodes live in an arena owned by the document. Everything that could let
 * a hostile file exhaust memory or the stack is bounded here: the file
 * size before parsing, the nesting depth while parsing (the loader keeps
 * its own stack, it never recurses), and the number of nodes the document
 * would have if every alias were expanded (so "billion laughs" is refused
 * after reading a few hundred bytes, although aliases are shared, never
 * copied). */
#include "vigil/yaml.h"

#include <yaml.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "decimal.h"
#include "hex.h"

/* ---- arena -------------------------------------------------------------- */

#define VG_ARENA_CHUNK (64 * 1024)

typedef struct vg_arena_chunk {
    struct vg_arena_chunk *next;
    size_t used;
    size_t size;
    alignas(max_align_t) unsigned char data[];
} vg_arena_chunk_t;

typedef struct vg_arena {
    vg_arena_chunk_t *head;
} vg_arena_t;

static void *vg_arena_alloc(vg_arena_t *a, size_t n)
{
    const size_t align = alignof(max_align_t);
    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + align - 1) & ~(align - 1);
    if (n == 0)
        n = align;
    vg_arena_chunk_t *c = a->head;
    if (c != NULL && c->size - c->used >= n) {
        void *p = c->data + c->used;
        c->used += n;
        return p;
    }
    /* A large block gets a chunk of its own placed behind the head, so the
     * free space left in the head is not thrown away. */
    bool own = n > VG_ARENA_CHUNK / 4;
    size_t size = own ? n : VG_ARENA_CHUNK;
    vg_arena_chunk_t *fresh = malloc(sizeof(*fresh) + size);
    if (fresh == NULL)
        return NULL;
    fresh->size = size;
    fresh->used = n;
    if (own && c != NULL) {
        fresh->next = c->next;
        c->next = fresh;
    } else {
        fresh->next = c;
        a->head = fresh;
    }
    return fresh->data;
}

static void vg_arena_free(vg_arena_t *a)
{
    vg_arena_chunk_t *c = a->head;
    while (c != NULL) {
        vg_arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

/* ---- document ----------------------------------------------------------- */

struct vg_ydoc {
    vg_arena_t arena;
    char *name;
    char *bytes;
    size_t len;
    const vg_ynode_t *root;
};

static vg_ydoc_t *vg_ydoc_alloc(const char *name)
{
    vg_ydoc_t *doc = calloc(1, sizeof(*doc));
    if (doc == NULL)
        return NULL;
    if (name != NULL && (doc->name = strdup(name)) == NULL) {
        free(doc);
        return NULL;
    }
    return doc;
}

void vg_ydoc_destroy(vg_ydoc_t *doc)
{
    if (doc == NULL)
        return;
    vg_arena_free(&doc->arena);
    free(doc->name);
    free(doc->bytes);
    free(doc);
}

const vg_ynode_t *vg_ydoc_root(const vg_ydoc_t *doc)
{
    return doc != NULL ? doc->root : NULL;
}

const char *vg_ydoc_name(const vg_ydoc_t *doc)
{
    return doc != NULL ? doc->name : NULL;
}

const char *vg_ydoc_bytes(const vg_ydoc_t *doc, size_t *len)
{
    if (len != NULL)
        *len = doc != NULL ? doc->len : 0;
    return doc != NULL ? doc->bytes : NULL;
}

static vg_ylimits_t vg_ylimits_resolve(const vg_ylimits_t *limits)
{
    vg_ylimits_t l = {VG_YAML_MAX_BYTES, VG_YAML_MAX_DEPTH, VG_YAML_MAX_NODES};
    if (limits != NULL) {
        if (limits->max_bytes != 0)
            l.max_bytes = limits->max_bytes;
        if (limits->max_depth != 0)
            l.max_depth = limits->max_depth;
        if (limits->max_nodes != 0)
            l.max_nodes = limits->max_nodes;
    }
    /* Room for the one extra byte read to detect an oversized file. */
    if (l.max_bytes > SIZE_MAX / 2)
        l.max_bytes = SIZE_MAX / 2;
    return l;
}

/* ---- scalar typing (YAML 1.2 core schema) ------------------------------- */

static bool vg_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool vg_text_is(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}

static bool vg_text_is_any(const char *s, size_t len, const char *const *words)
{
    for (; *words != NULL; words++)
        if (vg_text_is(s, len, *words))
            return true;
    return false;
}

/* Types a plain scalar by its text. s is NUL-terminated at s[len]. */
static void vg_type_plain(vg_ynode_t *n)
{
    static const char *const nulls[] = {"~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    static const char *const infs[] = {".inf", ".Inf", ".INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    const char *s = n->str;
    size_t len = n->len;

    n->type = VG_YSCALAR_STRING;
    if (len == 0 || vg_text_is_any(s, len, nulls)) {
        n->type = VG_YSCALAR_NULL;
        return;
    }
    if (vg_text_is_any(s, len, trues) || vg_text_is_any(s, len, falses)) {
        n->type = VG_YSCALAR_BOOL;
        n->boolean = vg_text_is_any(s, len, trues);
        return;
    }

    /* Integers: decimal with an optional sign, 0o octal, 0x hex. Values
     * beyond 2^53 lose precision in the double; that is the price of one
     * numeric type, and rules compare with doubles anyway. */
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    if (i < len) {
        size_t j = i;
        while (j < len && vg_is_digit(s[j]))
            j++;
        if (j == len) {
            n->type = VG_YSCALAR_INT;
            n->num = strtod(s, NULL);
            return;
        }
    }
    if (len > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
        int base = s[1] == 'o' ? 8 : 16;
        double v = 0;
        size_t j = 2;
        for (; j < len; j++) {
            int d = vg_hex_digit(s[j]);
            if (d < 0 || d >= base)
                break;
            v = v * base + d;
        }
        if (j == len) {
            n->type = VG_YSCALAR_INT;
            n->num = v;
            return;
        }
    }

    if (vg_decimal_syntax(s, len)) {
        n->type = VG_YSCALAR_FLOAT;
        /* vigil never changes LC_NUMERIC, so strtod reads '.' here. */
        n->num = strtod(s, NULL);
        return;
    }
    i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    if (vg_text_is_any(s + i, len - i, infs)) {
        n->type = VG_YSCALAR_FLOAT;
        n->num = s[0] == '-' ? -INFINITY : INFINITY;
        return;
    }
    if (vg_text_is_any(s, len, nans)) {
        n->type = VG_YSCALAR_FLOAT;
        n->num = NAN;
    }
}

/* ---- loader ------------------------------------------------------------- */

typedef struct vg_anchor {
    struct vg_anchor *next;
    const char *name;
    const vg_ynode_t *node;
    size_t expanded;   /* nodes the anchored node stands for, aliases expanded */
    bool complete;     /* false while the anchored collection is still open */
    unsigned long seq; /* which definition of the name this is */
} vg_anchor_t;

typedef struct vg_frame {
    vg_ynode_t *node;
    const vg_ynode_t **items;
    size_t count;
    size_t cap;
    size_t total_before; /* loader total before this collection started */
    vg_anchor_t *anchor; /* its anchor, or NULL */
    unsigned long anchor_seq;
} vg_frame_t;

typedef struct vg_loader {
    vg_ydoc_t *doc;
    vg_diags_t *diags;
    vg_ylimits_t lim;
    vg_arena_t scratch; /* anchors: gone when loading ends */
    vg_frame_t *stack;
    size_t depth;
    size_t stack_cap;
    vg_anchor_t **buckets;
    size_t nbuckets;
    size_t nanchors;
    unsigned long anchor_seq;
    size_t total; /* nodes so far, every alias counted at its expanded size */
    unsigned documents;
    size_t bom; /* bytes of byte order mark skipped before parsing */
} vg_loader_t;

static unsigned vg_clamp_uint(size_t v)
{
    return v > UINT_MAX ? UINT_MAX : (unsigned)v;
}

static void vg_error_at(vg_loader_t *L, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Error at a libyaml mark; marks are 0-based, messages are 1-based. */
static void vg_error_at(vg_loader_t *L, yaml_mark_t mark, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    vg_diags_add(L->diags, VG_DIAG_ERROR, L->doc->name, vg_clamp_uint(mark.line + 1),
                 vg_clamp_uint(mark.column + 1), "%s", msg);
}

static void vg_error_oom(vg_loader_t *L)
{
    vg_diags_add(L->diags, VG_DIAG_ERROR, L->doc->name, 0, 0, "out of memory while loading YAML");
}

/* Line and column (1-based, columns in characters) of a byte offset. */
static void vg_offset_position(const char *s, size_t len, size_t offset, unsigned *line,
                               unsigned *col)
{
    size_t l = 1, c = 1;
    if (offset > len)
        offset = len;
    for (size_t i = 0; i < offset; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b == '\n' || (b == '\r' && (i + 1 >= len || s[i + 1] != '\n'))) {
            l++;
            c = 1;
        } else if ((b & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = vg_clamp_uint(l);
    *col = vg_clamp_uint(c);
}

static void vg_report_parser_error(vg_loader_t *L, const yaml_parser_t *p)
{
    const char *name = L->doc->name;
    const char *problem = p->problem != NULL ? p->problem : "malformed YAML";
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        vg_error_oom(L);
        return;
    case YAML_READER_ERROR: {
        /* Reader errors (bad UTF-8, control characters) carry a byte
         * offset instead of a mark. */
        const char *bytes = L->doc->bytes + L->bom;
        size_t len = L->doc->len - L->bom, offset = p->problem_offset;
        /* libyaml points at the bad continuation byte; the character that
         * is broken starts at its lead byte. */
        if (strcmp(problem, "invalid trailing UTF-8 octet") == 0) {
            for (int back = 0; back < 3 && offset > 0 && offset <= len; back++) {
                unsigned char b = (unsigned char)bytes[offset - 1];
                if ((b & 0x80) == 0)
                    break;
                offset--;
                if ((b & 0xC0) == 0xC0)
                    break;
            }
        }
        unsigned line, col;
        vg_offset_position(bytes, len, offset, &line, &col);
        if (p->problem_value != -1)
            vg_diags_add(L->diags, VG_DIAG_ERROR, name, line, col,
                         "%s (#%X); the file must be UTF-8 text", problem,
                         (unsigned)p->problem_value);
        else
            vg_diags_add(L->diags, VG_DIAG_ERROR, name, line, col,
                         "%s; the file must be UTF-8 text", problem);
        return;
    }
    default: {
        unsigned line = vg_clamp_uint(p->problem_mark.line + 1);
        unsigned col = vg_clamp_uint(p->problem_mark.column + 1);
        if (p->context == NULL)
            vg_diags_add(L->diags, VG_DIAG_ERROR, name, line, col, "%s", problem);
        else if (p->context_mark.line != p->problem_mark.line ||
                 p->context_mark.column != p->problem_mark.column)
            vg_diags_add(L->diags, VG_DIAG_ERROR, name, line, col,
                         "%s (%s that started at line %zu, column %zu)", problem, p->context,
                         p->context_mark.line + 1, p->context_mark.column + 1);
        else
            vg_diags_add(L->diags, VG_DIAG_ERROR, name, line, col, "%s (%s)", problem,
                         p->context);
        return;
    }
    }
}

static size_t vg_hash_name(const char *s)
{
    size_t h = 14695981039346656037ULL & SIZE_MAX;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * (1099511628211ULL & SIZE_MAX);
    return h;
}

static vg_anchor_t *vg_anchor_find(const vg_loader_t *L, const char *name)
{
    if (L->nbuckets == 0)
        return NULL;
    for (vg_anchor_t *a = L->buckets[vg_hash_name(name) & (L->nbuckets - 1)]; a != NULL;
         a = a->next)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

/* Defines (or redefines: the latest definition wins) an anchor. */
static vg_anchor_t *vg_anchor_define(vg_loader_t *L, const char *name, const vg_ynode_t *node,
                                     bool complete)
{
    vg_anchor_t *a = vg_anchor_find(L, name);
    if (a == NULL) {
        if (L->nanchors >= L->nbuckets) {
            size_t nb = L->nbuckets != 0 ? L->nbuckets * 2 : 64;
            vg_anchor_t **b = calloc(nb, sizeof(*b));
            if (b == NULL)
                return NULL;
            for (size_t i = 0; i < L->nbuckets; i++) {
                vg_anchor_t *e = L->buckets[i];
                while (e != NULL) {
                    vg_anchor_t *next = e->next;
                    size_t h = vg_hash_name(e->name) & (nb - 1);
                    e->next = b[h];
                    b[h] = e;
                    e = next;
                }
            }
            free(L->buckets);
            L->buckets = b;
            L->nbuckets = nb;
        }
        size_t nlen = strlen(name);
        a = vg_arena_alloc(&L->scratch, sizeof(*a));
        char *copy = vg_arena_alloc(&L->scratch, nlen + 1);
        if (a == NULL || copy == NULL)
            return NULL;
        memcpy(copy, name, nlen + 1);
        a->name = copy;
        size_t h = vg_hash_name(name) & (L->nbuckets - 1);
        a->next = L->buckets[h];
        L->buckets[h] = a;
        L->nanchors++;
    }
    a->node = node;
    a->complete = complete;
    a->expanded = 1;
    a->seq = ++L->anchor_seq;
    return a;
}

/* Counts n more nodes toward the expanded size of the document. */
static int vg_count_nodes(vg_loader_t *L, size_t n, yaml_mark_t mark, bool alias)
{
    if (n > L->lim.max_nodes || L->total > L->lim.max_nodes - n) {
        if (alias)
            vg_error_at(L, mark, "aliases expand this document beyond %zu nodes",
                        L->lim.max_nodes);
        else
            vg_error_at(L, mark, "the document has more than %zu nodes", L->lim.max_nodes);
        return -1;
    }
    L->total += n;
    return 0;
}

static const char *vg_kind_name(vg_ynode_kind_t kind)
{
    return kind == VG_YNODE_SEQ ? "a list" : kind == VG_YNODE_MAP ? "a map" : "a scalar";
}

/* A map's keys must be scalars: refuse a collection where a key is due. */
static int vg_check_key_position(vg_loader_t *L, vg_ynode_kind_t kind, yaml_mark_t mark)
{
    if (L->depth == 0 || kind == VG_YNODE_SCALAR)
        return 0;
    const vg_frame_t *top = &L->stack[L->depth - 1];
    if (top->node->kind != VG_YNODE_MAP || top->count % 2 != 0)
        return 0;
    vg_error_at(L, mark, "a map key must be a scalar, not %s", vg_kind_name(kind));
    return -1;
}

/* Attaches a finished node to the open collection, or makes it the root. */
static int vg_attach(vg_loader_t *L, const vg_ynode_t *node)
{
    if (L->depth == 0) {
        L->doc->root = node;
        return 0;
    }
    vg_frame_t *top = &L->stack[L->depth - 1];
    if (top->count == top->cap) {
        size_t cap = top->cap != 0 ? top->cap * 2 : 8;
        const vg_ynode_t **items = realloc(top->items, cap * sizeof(*items));
        if (items == NULL) {
            vg_error_oom(L);
            return -1;
        }
        top->items = items;
        top->cap = cap;
    }
    top->items[top->count++] = node;
    return 0;
}

#define VG_TAG_PREFIX "tag:yaml.org,2002:"

/* Honours the core-schema tags that make sense in vigil's files
 * (!!str, !!int, ...) and refuses any other, which would otherwise be
 * silently ignored. */
static int vg_apply_tag(vg_loader_t *L, vg_ynode_t *n, const char *tag, yaml_mark_t mark)
{
    if (tag == NULL)
        return 0;
    const char *t = strncmp(tag, VG_TAG_PREFIX, strlen(VG_TAG_PREFIX)) == 0
                        ? tag + strlen(VG_TAG_PREFIX)
                        : NULL;
    if (n->kind == VG_YNODE_SCALAR) {
        if (strcmp(tag, "!") == 0 || (t != NULL && strcmp(t, "str") == 0)) {
            n->type = VG_YSCALAR_STRING;
            return 0;
        }
        if (t != NULL && (strcmp(t, "int") == 0 || strcmp(t, "float") == 0 ||
                          strcmp(t, "bool") == 0 || strcmp(t, "null") == 0)) {
            /* A tag forces typing even of a quoted scalar: !!int "12". */
            if (n->type == VG_YSCALAR_STRING)
                vg_type_plain(n);
            bool ok = (t[0] == 'i' && n->type == VG_YSCALAR_INT) ||
                      (t[0] == 'f' && (n->type == VG_YSCALAR_FLOAT || n->type == VG_YSCALAR_INT)) ||
                      (t[0] == 'b' && n->type == VG_YSCALAR_BOOL) ||
                      (t[0] == 'n' && n->type == VG_YSCALAR_NULL);
            if (!ok) {
                vg_error_at(L, mark, "this scalar is not a valid !!%s", t);
                return -1;
            }
            if (t[0] == 'f')
                n->type = VG_YSCALAR_FLOAT;
            return 0;
        }
    } else if (t != NULL && strcmp(t, n->kind == VG_YNODE_SEQ ? "seq" : "map") == 0) {
        return 0;
    } else if (strcmp(tag, "!") == 0) {
        return 0;
    }
    char shown[80];
    vg_diag_excerpt(tag, strlen(tag), 60, shown, sizeof(shown));
    vg_error_at(L, mark, "unsupported tag '%s'", shown);
    return -1;
}

static unsigned vg_mark_line(yaml_mark_t m)
{
    return vg_clamp_uint(m.line + 1);
}

static unsigned vg_mark_col(yaml_mark_t m)
{
    return vg_clamp_uint(m.column + 1);
}

static int vg_on_scalar(vg_loader_t *L, const yaml_event_t *ev)
{
    const char *anchor = (const char *)ev->data.scalar.anchor;
    const char *tag = (const char *)ev->data.scalar.tag;
    size_t len = ev->data.scalar.length;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;

    /* "---" with nothing after it is an empty document, like an empty
     * file, rather than a document holding null. */
    if (L->depth == 0 && plain && len == 0 && anchor == NULL && tag == NULL)
        return 0;
    if (vg_count_nodes(L, 1, ev->start_mark, false) != 0)
        return -1;

    vg_ynode_t *n = vg_arena_alloc(&L->doc->arena, sizeof(*n));
    char *text = vg_arena_alloc(&L->doc->arena, len + 1);
    if (n == NULL || text == NULL) {
        vg_error_oom(L);
        return -1;
    }
    memcpy(text, ev->data.scalar.value, len);
    text[len] = '\0';
    *n = (vg_ynode_t){.kind = VG_YNODE_SCALAR,
                      .line = vg_mark_line(ev->start_mark),
                      .col = vg_mark_col(ev->start_mark),
                      .str = text,
                      .len = len,
                      .type = VG_YSCALAR_STRING,
                      .quoted = !plain};
    if (plain)
        vg_type_plain(n);
    if (vg_apply_tag(L, n, tag, ev->start_mark) != 0)
        return -1;
    if (anchor != NULL && vg_anchor_define(L, anchor, n, true) == NULL) {
        vg_error_oom(L);
        return -1;
    }
    return vg_attach(L, n);
}

static int vg_on_alias(vg_loader_t *L, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    const vg_anchor_t *a = vg_anchor_find(L, name);
    char shown[80];
    vg_diag_excerpt(name, strlen(name), 60, shown, sizeof(shown));
    if (a == NULL) {
        vg_error_at(L, ev->start_mark,
                    "alias '*%s' names no anchor; an anchor '&name' must come before its aliases",
                    shown);
        return -1;
    }
    /* libyaml only reports an anchor before its node's contents, so an
     * alias inside the node it names would make a cycle. */
    if (!a->complete) {
        vg_error_at(L, ev->start_mark, "alias '*%s' refers to a node that contains it", shown);
        return -1;
    }
    if (vg_check_key_position(L, a->node->kind, ev->start_mark) != 0)
        return -1;
    if (vg_count_nodes(L, a->expanded, ev->start_mark, true) != 0)
        return -1;
    return vg_attach(L, a->node);
}

static int vg_on_collection_start(vg_loader_t *L, const yaml_event_t *ev, vg_ynode_kind_t kind)
{
    const char *anchor, *tag;
    if (kind == VG_YNODE_SEQ) {
        anchor = (const char *)ev->data.sequence_start.anchor;
        tag = (const char *)ev->data.sequence_start.tag;
    } else {
        anchor = (const char *)ev->data.mapping_start.anchor;
        tag = (const char *)ev->data.mapping_start.tag;
    }
    if (vg_check_key_position(L, kind, ev->start_mark) != 0)
        return -1;
    if (L->depth >= L->lim.max_depth) {
        vg_error_at(L, ev->start_mark, "lists and maps are nested more than %zu levels deep",
                    L->lim.max_depth);
        return -1;
    }
    size_t total_before = L->total;
    if (vg_count_nodes(L, 1, ev->start_mark, false) != 0)
        return -1;

    vg_ynode_t *n = vg_arena_alloc(&L->doc->arena, sizeof(*n));
    if (n == NULL) {
        vg_error_oom(L);
        return -1;
    }
    *n = (vg_ynode_t){.kind = kind,
                      .line = vg_mark_line(ev->start_mark),
                      .col = vg_mark_col(ev->start_mark)};
    if (vg_apply_tag(L, n, tag, ev->start_mark) != 0)
        return -1;

    if (L->depth == L->stack_cap) {
        size_t cap = L->stack_cap != 0 ? L->stack_cap * 2 : 16;
        vg_frame_t *stack = realloc(L->stack, cap * sizeof(*stack));
        if (stack == NULL) {
            vg_error_oom(L);
            return -1;
        }
        L->stack = stack;
        L->stack_cap = cap;
    }
    vg_frame_t *f = &L->stack[L->depth++];
    *f = (vg_frame_t){.node = n, .total_before = total_before};
    if (anchor != NULL) {
        f->anchor = vg_anchor_define(L, anchor, n, false);
        if (f->anchor == NULL) {
            vg_error_oom(L);
            return -1;
        }
        f->anchor_seq = f->anchor->seq;
    }
    return 0;
}

typedef struct vg_keyref {
    const vg_ynode_t *key;
    size_t index;
} vg_keyref_t;

static int vg_keyref_by_text(const void *pa, const void *pb)
{
    const vg_keyref_t *a = pa, *b = pb;
    size_t n = a->key->len < b->key->len ? a->key->len : b->key->len;
    int c = memcmp(a->key->str, b->key->str, n);
    if (c != 0)
        return c;
    if (a->key->len != b->key->len)
        return a->key->len < b->key->len ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

typedef struct vg_dupref {
    size_t index;
    const vg_ynode_t *first;
} vg_dupref_t;

static int vg_dupref_by_index(const void *pa, const void *pb)
{
    const vg_dupref_t *a = pa, *b = pb;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Reports every repeated key of a map, in file order. Sorting keeps a map
 * with many keys from costing quadratic time. */
static int vg_check_duplicate_keys(vg_loader_t *L, const vg_frame_t *f)
{
    size_t nkeys = f->count / 2;
    if (nkeys < 2)
        return 0;
    vg_keyref_t *refs = malloc(nkeys * sizeof(*refs));
    vg_dupref_t *dups = malloc(nkeys * sizeof(*dups));
    if (refs == NULL || dups == NULL) {
        free(refs);
        free(dups);
        vg_error_oom(L);
        return -1;
    }
    for (size_t i = 0; i < nkeys; i++)
        refs[i] = (vg_keyref_t){f->items[2 * i], i};
    qsort(refs, nkeys, sizeof(*refs), vg_keyref_by_text);
    size_t ndups = 0;
    for (size_t i = 1, first = 0; i < nkeys; i++) {
        const vg_ynode_t *a = refs[first].key, *b = refs[i].key;
        if (a->len == b->len && memcmp(a->str, b->str, a->len) == 0)
            dups[ndups++] = (vg_dupref_t){refs[i].index, a};
        else
            first = i;
    }
    qsort(dups, ndups, sizeof(*dups), vg_dupref_by_index);
    for (size_t i = 0; i < ndups; i++) {
        const vg_ynode_t *key = f->items[2 * dups[i].index];
        char shown[80];
        vg_diag_excerpt(key->str, key->len, 60, shown, sizeof(shown));
        /* An aliased key is the anchored node itself, so its position is
         * the anchor's; still the best place to point at. */
        vg_diags_add(L->diags, VG_DIAG_ERROR, L->doc->name, key->line, key->col,
                     "duplicate key '%s' (first defined at line %u)", shown, dups[i].first->line);
    }
    free(refs);
    free(dups);
    return ndups != 0 ? -1 : 0;
}

static int vg_on_collection_end(vg_loader_t *L)
{
    vg_frame_t *f = &L->stack[L->depth - 1];
    vg_ynode_t *n = f->node;
    if (n->kind == VG_YNODE_MAP && vg_check_duplicate_keys(L, f) != 0)
        return -1;
    if (f->count != 0) {
        const vg_ynode_t **items = vg_arena_alloc(&L->doc->arena, f->count * sizeof(*items));
        if (items == NULL) {
            vg_error_oom(L);
            return -1;
        }
        memcpy(items, f->items, f->count * sizeof(*items));
        n->items = items;
    }
    n->count = n->kind == VG_YNODE_MAP ? f->count / 2 : f->count;
    /* Everything counted since the collection started is inside it, so the
     * difference is its expanded size, ready for any alias to it. */
    if (f->anchor != NULL && f->anchor->seq == f->anchor_seq) {
        f->anchor->expanded = L->total - f->total_before;
        f->anchor->complete = true;
    }
    free(f->items);
    f->items = NULL;
    L->depth--;
    return vg_attach(L, n);
}

static int vg_on_event(vg_loader_t *L, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (L->documents++ != 0) {
            vg_error_at(L, ev->start_mark,
                        "a second YAML document starts here; a file holds exactly one");
            return -1;
        }
        return 0;
    case YAML_SCALAR_EVENT:
        return vg_on_scalar(L, ev);
    case YAML_ALIAS_EVENT:
        return vg_on_alias(L, ev);
    case YAML_SEQUENCE_START_EVENT:
        return vg_on_collection_start(L, ev, VG_YNODE_SEQ);
    case YAML_MAPPING_START_EVENT:
        return vg_on_collection_start(L, ev, VG_YNODE_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return vg_on_collection_end(L);
    default:
        return 0;
    }
}

static void vg_loader_release(vg_loader_t *L)
{
    for (size_t i = 0; i < L->depth; i++)
        free(L->stack[i].items);
    free(L->stack);
    free(L->buckets);
    vg_arena_free(&L->scratch);
}

/* Parses doc->bytes into doc. Takes doc: returns it, or destroys it and
 * returns NULL after adding an error to diags. */
static vg_ydoc_t *vg_ydoc_parse(vg_ydoc_t *doc, const vg_ylimits_t *lim, vg_diags_t *diags)
{
    vg_loader_t L = {.doc = doc, .diags = diags, .lim = *lim};
    yaml_parser_t parser;
    yaml_event_t event;
    bool parser_ready = false, have_event = false;

    /* libyaml would stop at a NUL as if the file ended there. */
    const char *nul = memchr(doc->bytes, '\0', doc->len);
    if (nul != NULL) {
        unsigned line, col;
        vg_offset_position(doc->bytes, doc->len, (size_t)(nul - doc->bytes), &line, &col);
        vg_diags_add(diags, VG_DIAG_ERROR, doc->name, line, col,
                     "the file contains a NUL byte; it must be UTF-8 text");
        goto fail;
    }
    if (!yaml_parser_initialize(&parser)) {
        vg_error_oom(&L);
        goto fail;
    }
    parser_ready = true;
    /* libyaml would count a UTF-8 byte order mark as a column. */
    if (doc->len >= 3 && memcmp(doc->bytes, "\xEF\xBB\xBF", 3) == 0)
        L.bom = 3;
    yaml_parser_set_input_string(&parser, (const unsigned char *)doc->bytes + L.bom,
                                 doc->len - L.bom);
    /* Without this, libyaml would also accept UTF-16 by its BOM. */
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);

    for (;;) {
        if (!yaml_parser_parse(&parser, &event)) {
            vg_report_parser_error(&L, &parser);
            goto fail;
        }
        have_event = true;
        if (event.type == YAML_STREAM_END_EVENT)
            break;
        if (vg_on_event(&L, &event) != 0)
            goto fail;
        yaml_event_delete(&event);
        have_event = false;
    }
    yaml_event_delete(&event);
    yaml_parser_delete(&parser);
    vg_loader_release(&L);
    return doc;

fail:
    if (have_event)
        yaml_event_delete(&event);
    if (parser_ready)
        yaml_parser_delete(&parser);
    vg_loader_release(&L);
    vg_ydoc_destroy(doc);
    return NULL;
}

vg_ydoc_t *vg_ydoc_load_buffer(const char *name, const char *buf, size_t len,
                               const vg_ylimits_t *limits, vg_diags_t *diags)
{
    vg_ylimits_t lim = vg_ylimits_resolve(limits);
    if (len > lim.max_bytes) {
        vg_diags_add(diags, VG_DIAG_ERROR, name, 0, 0,
                     "the document is %zu bytes, more than the limit of %zu bytes", len,
                     lim.max_bytes);
        return NULL;
    }
    vg_ydoc_t *doc = vg_ydoc_alloc(name);
    if (doc == NULL || (doc->bytes = malloc(len + 1)) == NULL) {
        vg_diags_add(diags, VG_DIAG_ERROR, name, 0, 0, "out of memory while loading YAML");
        vg_ydoc_destroy(doc);
        return NULL;
    }
    if (len != 0)
        memcpy(doc->bytes, buf, len);
    doc->bytes[len] = '\0';
    doc->len = len;
    return vg_ydoc_parse(doc, &lim, diags);
}

vg_ydoc_t *vg_ydoc_load_file(const char *path, const vg_ylimits_t *limits, vg_diags_t *diags)
{
    vg_ylimits_t lim = vg_ylimits_resolve(limits);
    vg_ydoc_t *doc = NULL;
    char *buf = NULL;
    size_t len = 0, cap;
    struct stat st;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        vg_diags_add(diags, VG_DIAG_ERROR, path, 0, 0, "cannot open: %s", strerror(errno));
        goto fail;
    }
    if (fstat(fd, &st) != 0) {
        vg_diags_add(diags, VG_DIAG_ERROR, path, 0, 0, "cannot read: %s", strerror(errno));
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        vg_diags_add(diags, VG_DIAG_ERROR, path, 0, 0, "is a directory, not a YAML file");
        goto fail;
    }
    /* Refuse an oversized file before reading a byte of it. */
    if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > lim.max_bytes) {
        vg_diags_add(diags, VG_DIAG_ERROR, path, 0, 0,
                     "the file is %jd bytes, more than the limit of %zu bytes",
                     (intmax_t)st.st_size, lim.max_bytes);
        goto fail;
    }
    cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 64 * 1024;
    if (cap > lim.max_bytes + 1)
        cap = lim.max_bytes + 1;
    /* A file may still grow (or be a pipe): read at most one byte more
     * than allowed, which is enough to know it is too big. */
    for (;;) {
        if (len == cap) {
            if (cap > lim.max_bytes)
                break;
            size_t ncap = cap * 2 > lim.max_bytes + 1 ? lim.max_bytes + 1 : cap * 2;
            char *nbuf = realloc(buf, ncap);
            if (nbuf == NULL) {
                vg_diags_add(diags, VG_DIAG_ERROR, path, 0, 0, "out of memory while reading");
                goto fail;
            }
            buf = nbuf;
            cap = ncap;
        }
        if (buf == NULL && (buf = malloc(cap)) == NULL) {
            vg_diags_add(diags, VG_DIAG_ERROR, path, 0, 0, "out of memory while reading");
            goto fail;
        }
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            vg_diags_add(diags, VG_DIAG_ERROR, path, 0, 0, "cannot read: %s", strerror(errno));
            goto fail;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    if (len > lim.max_bytes) {
        vg_diags_add(diags, VG_DIAG_ERROR, path, 0, 0,
                     "the file is more than the limit of %zu bytes", lim.max_bytes);
        goto fail;
    }
    close(fd);
    fd = -1;

    doc = vg_ydoc_alloc(path);
    if (doc == NULL) {
        vg_diags_add(diags, VG_DIAG_ERROR, path, 0, 0, "out of memory while loading YAML");
        goto fail;
    }
    doc->bytes = buf;
    doc->len = len;
    buf = NULL;
    return vg_ydoc_parse(doc, &lim, diags);

fail:
    if (fd >= 0)
        close(fd);
    free(buf);
    vg_ydoc_destroy(doc);
    return NULL;
}

const vg_ynode_t *vg_ynode_get(const vg_ynode_t *map, const char *key)
{
    if (map == NULL || key == NULL || map->kind != VG_YNODE_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i < map->count; i++) {
        const vg_ynode_t *k = map->items[2 * i];
        if (k->len == klen && memcmp(k->str, key, klen) == 0)
            return map->items[2 * i + 1];
    }
    return NULL;
}

const char *vg_ynode_describe(const vg_ynode_t *node)
{
    if (node == NULL)
        return "null";
    switch (node->kind) {
    case VG_YNODE_SEQ:
        return "a list";
    case VG_YNODE_MAP:
        return "a map";
    case VG_YNODE_SCALAR:
    default:
        break;
    }
    switch (node->type) {
    case VG_YSCALAR_NULL:
        return "null";
    case VG_YSCALAR_BOOL:
        return "a boolean";
    case VG_YSCALAR_INT:
    case VG_YSCALAR_FLOAT:
        return "a number";
    case VG_YSCALAR_STRING:
    default:
        return "a string";
    }
}
