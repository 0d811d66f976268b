/* Conditions: a rule's `match` and a macro's body. A condition is a map
 * with one form: all / any (a list of conditions), not, macro (a name),
 * text (keywords in text fields) or field (one operator on one field).
 * Macros are compiled on first use and shared by every condition that
 * names them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ruleset_int.h"
#include "vigil/utf8.h"

static const char *const COND_KEYS[] = {"all", "any", "not", "macro", "text", "field"};
static const one_of_t FORMS = {COND_KEYS, N(COND_KEYS),
                               "a condition has exactly one of all, any, not, macro, text, field",
                               "wrap them in 'all' or 'any'", NULL};
static const char *const TEXT_KEYS[] = {"any",    "all",     "near", "within",
                                        "ordered", "except", "case", "fields"};
static const char *const OPS[] = {"eq", "in",  "prefix", "suffix", "contains", "matches",
                                  "lt", "lte", "gt",     "gte",    "exists"};

/* ---- text conditions ---- */

static int cmp_ref(const void *a, const void *b)
{
    const vg_term_ref_t *x = a, *y = b;
    return x->term < y->term ? -1 : x->term > y->term;
}

/* The slot (index in the ruleset's text fields) of a dotted path. Each
 * field is extracted from an event once, however many rules search it. */
static long intern_slot(compiler_t *c, const char *path)
{
    vg_ruleset_t *rs = c->rs;
    size_t len = strlen(path);
    uint32_t *f = vg_strmap_get(&c->slot_idx, path, len);
    if (f)
        return (long)*f;
    size_t i = rs->nslots;
    char **st = realloc(rs->slot_text, (i + 1) * sizeof(char *));
    if (st)
        rs->slot_text = st;
    char ***sp = realloc(rs->slot_path, (i + 1) * sizeof(char **));
    if (sp)
        rs->slot_path = sp;
    size_t *sn = realloc(rs->slot_npath, (i + 1) * sizeof(size_t));
    if (sn)
        rs->slot_npath = sn;
    if (!st || !sp || !sn) {
        vg_rc_oom(c);
        return -1;
    }
    rs->slot_text[i] = vg_rc_strndup(c, path, len);
    rs->slot_path[i] = NULL;
    rs->slot_npath[i] = 0;
    rs->nslots++;
    if (!rs->slot_text[i] || !vg_rc_split_path(c, path, len, &rs->slot_path[i], &rs->slot_npath[i]))
        return -1;
    if (vg_strmap_put(&c->slot_idx, path, len, (uint32_t)i) < 0) {
        vg_rc_oom(c);
        return -1;
    }
    return (long)i;
}

/* Interns TERMS into *refs (sorted by id), numbering their items from 0
 * in *ngroups (an entity is one item). Every term is checked, not only
 * those up to the first bad one, so that one load reports them all. */
static bool intern_terms(compiler_t *c, const char *file, const vg_ynode_t *terms,
                         vg_term_ref_t **refs, size_t *nrefs, size_t *ngroups)
{
    list_def_t tmp = {0};
    bool ok = vg_rc_collect_items(c, file, terms, &tmp);
    if (ok && tmp.nitems == 0) {
        ERR(c, file, terms, "a text condition needs at least one term");
        ok = false;
    }
    *refs = calloc(tmp.nitems ? tmp.nitems : 1, sizeof(vg_term_ref_t));
    if (!*refs)
        vg_rc_oom(c), ok = false;
    uint32_t last_group = UINT32_MAX;
    for (size_t i = 0; *refs && i < tmp.nitems; i++) {
        const item_t *it = &tmp.items[i];
        if (it->group != last_group) {
            last_group = it->group;
            (*ngroups)++;
        }
        if (it->type != VG_YSCALAR_STRING && it->type != VG_YSCALAR_INT &&
            it->type != VG_YSCALAR_FLOAT) {
            vg_rc_err_at(c, it->file, it->line, it->col, "a keyword term must be a string");
            ok = false;
            continue;
        }
        long id = vg_rc_intern_term(c, it);
        if (id < 0) {
            ok = false;
            continue;
        }
        /* The same term twice in one item counts once. An item's refs
         * are the last ones added, so only they are looked at: scanning
         * them all made a long list quadratic. */
        bool dup = false;
        for (size_t j = *nrefs; j-- > 0 && !dup && (*refs)[j].group == *ngroups - 1;)
            dup = (*refs)[j].term == (uint32_t)id;
        if (!dup)
            (*refs)[(*nrefs)++] =
                (vg_term_ref_t){(uint32_t)id, it->list, it->entity, (uint32_t)(*ngroups - 1)};
    }
    free(tmp.items);
    if (ok)
        qsort(*refs, *nrefs, sizeof(vg_term_ref_t), cmp_ref);
    return ok;
}

/* Except and near look at every occurrence of their terms. */
static void keep_all(compiler_t *c, const vg_term_ref_t *refs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        c->rs->terms[refs[i].term].all_occ = true;
}

/* The slots a text condition searches: its 'fields', or the defaults. */
static bool text_fields(compiler_t *c, const char *file, vg_cond_t *cd, const vg_ynode_t *fields)
{
    if (fields && (fields->kind != VG_YNODE_SEQ || fields->count == 0)) {
        ERR(c, file, fields, "'fields' must be a non-empty list of field paths");
        return false;
    }
    size_t nf = fields ? fields->count : c->n_default_fields;
    cd->slots = calloc(nf ? nf : 1, sizeof(uint32_t));
    if (!cd->slots) {
        vg_rc_oom(c);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < nf; i++) {
        const char *p = fields ? fields->items[i]->str : c->default_fields[i];
        if (fields && (!is_str(fields->items[i]) ||
                       !vg_rc_valid_path(fields->items[i]->str, fields->items[i]->len))) {
            ERR(c, file, fields->items[i],
                "field paths are dot-separated names like 'title' or 'doc.title'");
            ok = false;
            continue;
        }
        long s = intern_slot(c, p);
        if (s < 0)
            return false;
        bool dup = false;
        for (size_t j = 0; j < cd->nslots && !dup; j++)
            dup = cd->slots[j] == (uint32_t)s;
        if (!dup)
            cd->slots[cd->nslots++] = (uint32_t)s;
    }
    return ok;
}

/* case: sensitive | insensitive (rule 13); false after reporting. */
static bool text_case(compiler_t *c, const char *file, const vg_ynode_t *v, bool *cs)
{
    const vg_ynode_t *k = vg_ynode_get(v, "case");
    *cs = false;
    if (!k)
        return true;
    if (is_str(k) && (strcmp(k->str, "sensitive") == 0 || strcmp(k->str, "insensitive") == 0)) {
        *cs = k->str[0] == 's';
        return true;
    }
    ERR(c, file, k, "'case' takes sensitive or insensitive, got %s",
        k->kind == VG_YNODE_SCALAR ? k->str : vg_ynode_describe(k));
    return false;
}

/* near: [TERMS, TERMS], within: N (0-100), ordered: BOOL (rule 15). */
static bool text_near(compiler_t *c, const char *file, vg_cond_t *cd, const vg_ynode_t *v,
                      const vg_ynode_t *near)
{
    const vg_ynode_t *w = vg_ynode_get(v, "within"), *o = vg_ynode_get(v, "ordered");
    bool ok = true;
    if (near->kind != VG_YNODE_SEQ || near->count != 2) {
        ERR(c, file, near, "'near' takes two lists of terms: near: [TERMS, TERMS]");
        return false;
    }
    if (!w) {
        ERR(c, file, near, "'near' needs 'within: N' (the most words between, 0 to 100)");
        ok = false;
    } else if (w->kind != VG_YNODE_SCALAR || w->type != VG_YSCALAR_INT || w->num < 0 ||
               w->num > 100) {
        ERR(c, file, w, "'within' takes a whole number of words from 0 to 100, got %s",
            w->kind == VG_YNODE_SCALAR ? w->str : vg_ynode_describe(w));
        ok = false;
    } else {
        cd->within = (uint32_t)w->num;
    }
    if (o && (o->kind != VG_YNODE_SCALAR || o->type != VG_YSCALAR_BOOL)) {
        ERR(c, file, o, "'ordered' takes true or false, got %s", vg_ynode_describe(o));
        ok = false;
    } else if (o) {
        cd->ordered = o->boolean;
    }
    for (int side = 0; side < 2; side++) {
        size_t groups = 0;
        ok = intern_terms(c, file, near->items[side], &cd->near[side], &cd->nnear[side],
                          &groups) &&
             ok;
    }
    return ok;
}

/* Registers a near condition with the ruleset, for the scanner. */
static bool add_near(compiler_t *c, vg_cond_t *cd)
{
    vg_ruleset_t *rs = c->rs;
    vg_cond_t **nc = realloc(rs->near_conds, (rs->nnear_conds + 1) * sizeof(*nc));
    if (!nc)
        return vg_rc_oom(c), false;
    rs->near_conds = nc;
    cd->near_idx = (uint32_t)rs->nnear_conds;
    rs->near_conds[rs->nnear_conds++] = cd;
    return true;
}

/* The form of a text condition: one of any, all, near; within and
 * ordered only with near. */
static bool text_form(compiler_t *c, const char *file, const vg_ynode_t *v,
                      const vg_ynode_t **terms, bool *all, const vg_ynode_t **near)
{
    const vg_ynode_t *any = vg_ynode_get(v, "any"), *al = vg_ynode_get(v, "all");
    *near = vg_ynode_get(v, "near");
    if ((any != NULL) + (al != NULL) + (*near != NULL) != 1) {
        ERR(c, file, v, "a text condition needs exactly one of 'any', 'all' or 'near'");
        return false;
    }
    *terms = any ? any : al;
    *all = al != NULL;
    static const char *const near_only[] = {"within", "ordered"};
    for (size_t i = 0; i < N(near_only) && !*near; i++) {
        const vg_ynode_t *k = vg_ynode_get(v, near_only[i]);
        if (k) {
            ERR(c, file, k, "'%s' works only with 'near' (near: [TERMS, TERMS], within: N)",
                near_only[i]);
            return false;
        }
    }
    return true;
}

static vg_cond_t *compile_text(compiler_t *c, const char *file, const vg_ynode_t *key,
                               const vg_ynode_t *v)
{
    static const map_spec_t spec = {"text", "a map such as {any: [terms], fields: [title]}",
                                    "a text condition", TEXT_KEYS, N(TEXT_KEYS)};
    if (!vg_rc_check_map(c, file, v, &spec))
        return NULL;
    const vg_ynode_t *terms = NULL, *near = NULL, *ex = vg_ynode_get(v, "except");
    bool all = false, cs;
    if (!text_form(c, file, v, &terms, &all, &near) || !text_case(c, file, v, &cs))
        return NULL;
    vg_cond_t *cd = vg_rc_new_cond(c, VG_COND_TEXT, file, key);
    if (!cd)
        return NULL;
    cd->text_all = all;
    cd->is_near = near != NULL;
    c->case_sensitive = cs;
    bool ok = near ? text_near(c, file, cd, v, near)
                   : intern_terms(c, file, terms, &cd->terms, &cd->nterms, &cd->ngroups);
    size_t exg = 0;
    if (ex)
        ok = intern_terms(c, file, ex, &cd->except, &cd->nexcept, &exg) && ok;
    c->case_sensitive = false;
    ok = text_fields(c, file, cd, vg_ynode_get(v, "fields")) && ok;
    if (ok && (near || ex)) {
        keep_all(c, cd->terms, cd->nterms);
        keep_all(c, cd->except, cd->nexcept);
        keep_all(c, cd->near[0], cd->nnear[0]);
        keep_all(c, cd->near[1], cd->nnear[1]);
    }
    if (ok && near)
        ok = add_near(c, cd);
    return ok ? cd : NULL;
}

/* ---- field conditions ---- */

static bool set_operand(compiler_t *c, vg_operand_t *o, const char *text, size_t len,
                        vg_yscalar_t type, double num)
{
    switch (type) {
    case VG_YSCALAR_INT:
    case VG_YSCALAR_FLOAT:
        o->type = VG_OPD_NUMBER;
        break;
    case VG_YSCALAR_BOOL:
        o->type = VG_OPD_BOOL;
        break;
    case VG_YSCALAR_NULL:
        o->type = VG_OPD_NULL;
        break;
    default:
        o->type = VG_OPD_STRING;
        break;
    }
    o->num = num;
    /* A boolean compares through its text ("True" folds to "true"); null
     * has several spellings and compares as "null". */
    if (type == VG_YSCALAR_NULL) {
        text = "null";
        len = 4;
    }
    o->text = malloc(len * 3 + 1);
    if (!o->text) {
        vg_rc_oom(c);
        return false;
    }
    o->len = vg_utf8_fold(text, len, false, o->text, NULL);
    return true;
}

/* cd's single operand, from scalar node v. */
static bool one_operand(compiler_t *c, vg_cond_t *cd, const vg_ynode_t *v)
{
    cd->opds = calloc(1, sizeof(vg_operand_t));
    if (!cd->opds)
        return vg_rc_oom(c), false;
    cd->nopds = 1;
    return set_operand(c, &cd->opds[0], v->str, v->len, v->type, v->num);
}

static hs_database_t *compile_regex(compiler_t *c, const char *file, const vg_ynode_t *n)
{
    if (!is_str(n) || n->len < 3 || n->str[0] != '/' || n->str[n->len - 1] != '/') {
        ERR(c, file, n, "'matches' takes a regular expression written /…/, got %s",
            n->kind == VG_YNODE_SCALAR ? "text without slashes" : vg_ynode_describe(n));
        return NULL;
    }
    if (!vg_rc_regex_flags_ok(c, file, n->line, n->col, n->str + 1, n->len - 2))
        return NULL;
    char *pat = vg_rc_strndup(c, n->str + 1, n->len - 2);
    if (!pat)
        return NULL;
    hs_database_t *db = NULL;
    /* Single match: the condition needs to know whether, not where. */
    unsigned fl =
        HS_FLAG_CASELESS | HS_FLAG_UTF8 | HS_FLAG_UCP | HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY;
    const char *pats[] = {pat};
    vg_rc_where_t w = {"this regular expression", file, n->line, n->col};
    char *msg = NULL;
    int expr;
    if (vg_rc_hs_compile(c, &w, &(vg_rc_patterns_t){pats, &fl, NULL, NULL, 1, false}, &db, &msg,
                         &expr) == 1)
        vg_rc_regex_error(c, file, n->line, n->col, pat, &(hs_compile_error_t){msg, expr});
    free(msg);
    free(pat);
    return db;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static bool field_exists(compiler_t *c, const char *file, vg_cond_t *cd, const vg_ynode_t *opv)
{
    if (opv->kind != VG_YNODE_SCALAR || opv->type != VG_YSCALAR_BOOL) {
        ERR(c, file, opv, "'exists' takes true or false, got %s", vg_ynode_describe(opv));
        return false;
    }
    cd->exists = opv->boolean;
    return true;
}

/* lt, lte, gt, gte: one number. */
static bool field_number(compiler_t *c, const char *file, vg_cond_t *cd, const vg_ynode_t *opk,
                         const vg_ynode_t *opv)
{
    if (opv->kind != VG_YNODE_SCALAR ||
        (opv->type != VG_YSCALAR_INT && opv->type != VG_YSCALAR_FLOAT) || isnan(opv->num)) {
        ERR(c, file, opv, "'%s' compares numbers: write a number such as 100 or -2.5e3, got %s%s",
            opk->str, vg_ynode_describe(opv),
            opv->kind == VG_YNODE_SCALAR && opv->quoted ? " (remove the quotes)" : "");
        return false;
    }
    return one_operand(c, cd, opv);
}

/* in: numbers go to a sorted array, everything else to a set of folded
 * texts, so that a lookup does not walk the list. */
static bool field_in(compiler_t *c, const char *file, vg_cond_t *cd, const vg_ynode_t *opv)
{
    if (opv->kind == VG_YNODE_MAP) {
        ERR(c, file, opv, "'in' takes a list or '$listname', got a map");
        return false;
    }
    list_def_t tmp = {0};
    bool ok = vg_rc_collect_items(c, file, opv, &tmp);
    if (ok) {
        cd->opds = calloc(tmp.nitems ? tmp.nitems : 1, sizeof(vg_operand_t));
        cd->nums = calloc(tmp.nitems ? tmp.nitems : 1, sizeof(double));
        if (!cd->opds || !cd->nums)
            vg_rc_oom(c), ok = false;
    }
    for (size_t i = 0; ok && i < tmp.nitems; i++) {
        const item_t *it = &tmp.items[i];
        if (it->alias)
            continue; /* of an entity, 'in' compares only the name */
        vg_operand_t *o = &cd->opds[cd->nopds++];
        if (!set_operand(c, o, it->text, it->len, it->type, it->num))
            ok = false;
        else if (o->type == VG_OPD_NUMBER)
            cd->nums[cd->nnums++] = o->num;
        else if (vg_strmap_put(&cd->set, o->text, o->len, 1) < 0)
            vg_rc_oom(c), ok = false;
    }
    free(tmp.items);
    if (ok)
        qsort(cd->nums, cd->nnums, sizeof(double), cmp_double);
    return ok;
}

/* eq, prefix, suffix, contains: one scalar. */
static bool field_value(compiler_t *c, const char *file, vg_cond_t *cd, const vg_ynode_t *opk,
                        const vg_ynode_t *opv)
{
    if (opv->kind != VG_YNODE_SCALAR) {
        ERR(c, file, opv, "'%s' takes a single value, got %s%s", opk->str, vg_ynode_describe(opv),
            opv->kind == VG_YNODE_SEQ ? " (use 'in' for a list)" : "");
        return false;
    }
    if (!one_operand(c, cd, opv))
        return false;
    /* prefix/suffix/contains compare text: a number operand is its
     * text as written (hs_code prefix 8542). */
    if (cd->op != VG_OP_EQ)
        cd->opds[0].type = VG_OPD_STRING;
    if (cd->op != VG_OP_EQ && opv->type == VG_YSCALAR_NULL) {
        ERR(c, file, opv, "'%s' needs a value, got null", opk->str);
        return false;
    }
    return true;
}

/* Any key beside 'field' other than an operator is a mistake. */
static bool unknown_operator(compiler_t *c, const char *file, const vg_ynode_t *k)
{
    if (strcmp(k->str, "field") == 0)
        return true;
    const char *s = vg_suggest(k->str, OPS, N(OPS));
    if (s)
        ERR(c, file, k, "unknown operator '%s' (did you mean '%s'?)", k->str, s);
    else
        ERR(c, file, k,
            "unknown operator '%s' (operators: eq, in, prefix, suffix, contains, matches, lt, "
            "lte, gt, gte, exists)",
            k->str);
    return false;
}

static const one_of_t OPERATOR = {OPS, N(OPS), "a field condition takes one operator",
                                  "combine two conditions with 'all'", unknown_operator};

/* Finds the one operator beside 'field'; -1 after reporting. */
static int field_operator(compiler_t *c, const char *file, const vg_ynode_t *map,
                          const vg_ynode_t *key, const vg_ynode_t *pathn, const vg_ynode_t **opk,
                          const vg_ynode_t **opv)
{
    bool ok = true;
    size_t op = 0;
    *opk = vg_rc_find_one_of(c, file, map, &OPERATOR, &op, opv, &ok);
    if (!ok)
        return -1;
    if (!*opk) {
        ERR(c, file, key,
            "field condition on '%s' needs an operator: eq, in, prefix, suffix, contains, "
            "matches, lt, lte, gt, gte or exists",
            pathn->str);
        return -1;
    }
    return (int)op;
}

static vg_cond_t *compile_field(compiler_t *c, const char *file, const vg_ynode_t *map,
                                const vg_ynode_t *key, const vg_ynode_t *pathn)
{
    if (!is_str(pathn) && !(pathn->kind == VG_YNODE_SCALAR && pathn->type != VG_YSCALAR_NULL)) {
        ERR(c, file, pathn, "'field' takes a field path such as 'title' or 'doc.source', got %s",
            vg_ynode_describe(pathn));
        return NULL;
    }
    if (!vg_rc_valid_path(pathn->str, pathn->len)) {
        ERR(c, file, pathn, "invalid field path '%s' (dot-separated names)", pathn->str);
        return NULL;
    }
    const vg_ynode_t *opk = NULL, *opv = NULL;
    int op = field_operator(c, file, map, key, pathn, &opk, &opv);
    if (op < 0)
        return NULL;
    vg_cond_t *cd = vg_rc_new_cond(c, VG_COND_FIELD, file, key);
    if (!cd)
        return NULL;
    cd->op = (vg_op_t)op;
    cd->path_text = vg_rc_strndup(c, pathn->str, pathn->len);
    if (!cd->path_text || !vg_rc_split_path(c, pathn->str, pathn->len, &cd->path, &cd->npath))
        return NULL;
    bool ok;
    switch (cd->op) {
    case VG_OP_EXISTS:
        ok = field_exists(c, file, cd, opv);
        break;
    case VG_OP_MATCHES:
        ok = (cd->re = compile_regex(c, file, opv)) != NULL;
        break;
    case VG_OP_LT:
    case VG_OP_LTE:
    case VG_OP_GT:
    case VG_OP_GTE:
        ok = field_number(c, file, cd, opk, opv);
        break;
    case VG_OP_IN:
        ok = field_in(c, file, cd, opv);
        break;
    default:
        ok = field_value(c, file, cd, opk, opv);
        break;
    }
    return ok ? cd : NULL;
}

/* ---- forms and macros ---- */

vg_cond_t *vg_rc_compile_macro(compiler_t *c, macro_def_t *m)
{
    if (m->def.state == DONE)
        return m->cond;
    if (m->def.state == FAILED || m->def.state == VISITING)
        return NULL;
    m->def.state = VISITING;
    m->cond = vg_rc_compile_cond(c, m->def.file, m->def.node, 0);
    m->def.state = m->cond ? DONE : FAILED;
    return m->cond;
}

/* Reports key k of a condition with no form: an operator without
 * 'field', a near miss, or something else. */
static void unknown_condition(compiler_t *c, const char *file, const vg_ynode_t *k)
{
    bool is_op = false;
    for (size_t j = 0; j < N(OPS); j++)
        is_op = is_op || strcmp(k->str, OPS[j]) == 0;
    const char *s = vg_suggest(k->str, COND_KEYS, N(COND_KEYS));
    if (is_op)
        ERR(c, file, k, "operator '%s' needs 'field: PATH' beside it", k->str);
    else if (s)
        ERR(c, file, k, "unknown condition '%s' (did you mean '%s'?)", k->str, s);
    else
        ERR(c, file, k,
            "unknown condition '%s' (a condition is one of all, any, not, macro, text, field)",
            k->str);
}

/* A condition of kind (not or macro) over one kid. */
static vg_cond_t *wrap(compiler_t *c, vg_cond_kind_t kind, const char *file, const vg_ynode_t *form,
                       vg_cond_t *kid)
{
    vg_cond_t *cd = vg_rc_new_cond(c, kind, file, form);
    if (!cd)
        return NULL;
    cd->kids = malloc(sizeof(vg_cond_t *));
    if (!cd->kids)
        return vg_rc_oom(c), NULL;
    cd->kids[0] = kid;
    cd->nkids = 1;
    return cd;
}

static void unknown_macro(compiler_t *c, const char *file, const vg_ynode_t *value)
{
    const char **names = malloc((c->nmacros + 1) * sizeof(char *));
    for (size_t i = 0; names && i < c->nmacros; i++)
        names[i] = c->macros[i].def.name;
    const char *s = names ? vg_suggest(value->str, names, c->nmacros) : NULL;
    if (s)
        ERR(c, file, value, "unknown macro '%s' (did you mean '%s'?)", value->str, s);
    else
        ERR(c, file, value, "unknown macro '%s' (define it under 'macros:')", value->str);
    free(names);
}

static vg_cond_t *compile_macro_ref(compiler_t *c, const char *file, const vg_ynode_t *form,
                                    const vg_ynode_t *value)
{
    if (!is_str(value)) {
        ERR(c, file, value, "'macro' takes a macro name, got %s", vg_ynode_describe(value));
        return NULL;
    }
    uint32_t *mi = vg_strmap_get(&c->macro_idx, value->str, value->len);
    if (!mi) {
        unknown_macro(c, file, value);
        return NULL;
    }
    macro_def_t *m = &c->macros[*mi];
    if (m->def.state == VISITING) {
        ERR(c, file, value, "macro '%s' refers to itself (a cycle)", m->def.name);
        return NULL;
    }
    vg_cond_t *body = vg_rc_compile_macro(c, m);
    vg_cond_t *cd = body ? wrap(c, VG_COND_MACRO, file, form, body) : NULL;
    /* The name, for explanations; the body is shared with other uses. */
    if (cd && !(cd->name = vg_rc_strndup(c, m->def.name, strlen(m->def.name))))
        return NULL;
    return cd;
}

/* all / any: a list of conditions, each compiled (and reported). */
static vg_cond_t *compile_list(compiler_t *c, const char *file, const vg_ynode_t *form,
                               const vg_ynode_t *value, unsigned depth)
{
    if (value->kind != VG_YNODE_SEQ) {
        ERR(c, file, value, "'%s' takes a list of conditions, got %s", form->str,
            vg_ynode_describe(value));
        return NULL;
    }
    vg_cond_kind_t kind = strcmp(form->str, "all") == 0 ? VG_COND_ALL : VG_COND_ANY;
    vg_cond_t *cd = vg_rc_new_cond(c, kind, file, form);
    if (!cd)
        return NULL;
    cd->kids = calloc(value->count ? value->count : 1, sizeof(vg_cond_t *));
    if (!cd->kids)
        return vg_rc_oom(c), NULL;
    bool ok = true;
    for (size_t i = 0; i < value->count; i++) {
        vg_cond_t *kid = vg_rc_compile_cond(c, file, value->items[i], depth + 1);
        if (!kid)
            ok = false;
        else
            cd->kids[cd->nkids++] = kid;
    }
    return ok ? cd : NULL;
}

vg_cond_t *vg_rc_compile_cond(compiler_t *c, const char *file, const vg_ynode_t *n, unsigned depth)
{
    if (depth > MAX_COND_DEPTH) {
        ERR(c, file, n, "conditions nest deeper than %d levels", MAX_COND_DEPTH);
        return NULL;
    }
    if (n->kind != VG_YNODE_MAP || n->count == 0) {
        ERR(c, file, n,
            "a condition must be a map with one of all, any, not, macro, text or field; got %s",
            vg_ynode_describe(n));
        return NULL;
    }
    /* The form is the first key that names one; everything else must be
     * an operator of 'field' or is an error. */
    bool ok = true;
    size_t which = 0;
    const vg_ynode_t *value = NULL;
    const vg_ynode_t *form = vg_rc_find_one_of(c, file, n, &FORMS, &which, &value, &ok);
    if (!ok)
        return NULL;
    if (!form) {
        unknown_condition(c, file, n->items[0]);
        return NULL;
    }
    if (strcmp(form->str, "field") == 0)
        return compile_field(c, file, n, form, value);
    /* Only 'field' has keys beside it (its operator). */
    if (n->count > 1) {
        for (size_t i = 0; i < n->count; i++)
            if (n->items[2 * i] != form)
                ERR(c, file, n->items[2 * i], "unexpected key '%s' beside '%s'",
                    n->items[2 * i]->str, form->str);
        return NULL;
    }
    if (strcmp(form->str, "text") == 0)
        return compile_text(c, file, form, value);
    if (strcmp(form->str, "macro") == 0)
        return compile_macro_ref(c, file, form, value);
    if (strcmp(form->str, "not") == 0) {
        vg_cond_t *kid = vg_rc_compile_cond(c, file, value, depth + 1);
        return kid ? wrap(c, VG_COND_NOT, file, form, kid) : NULL;
    }
    return compile_list(c, file, form, value, depth);
}
