/*
 * map.c — `map`: keeps the records that satisfy `where` and rewrites numeric
 * fields with `set`, on any record type that declares its fields
 * (rn_type.fields). Stateless; runs fused in its input's thread.
 *
 *   where: "kind == bid"                 field [op number] cmp value
 *   where: ["kind == bid", "auction % 123 == 0"]     all must hold
 *   set:   { price: "price * 0.908" }    operand [op operand]
 *
 * op is one of + - * / %; cmp one of == != < <= > >=; a value is a number, a
 * quoted string (text fields, == and != only) or, for a field that names its
 * values (the nexmark kind), one of those names. Arithmetic is in double
 * precision (exact for integers below 2^53); a result written to an integer
 * field is truncated toward zero. The conditions are parsed at load time;
 * field names are resolved against the type of the first record (an unknown
 * one stops the job with a message naming the operator and the field).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_operator.h"

#define RN_MAP_MAX 8
#define RN_MAP_NAME 48

struct rn_map_term {
    int is_field;
    char field[RN_MAP_NAME];
    double num;
};

/* operand [op operand] */
struct rn_map_expr {
    struct rn_map_term a, b;
    char op; /* 0: none, or + - * / % */
};

enum rn_map_cmp { RN_MC_EQ, RN_MC_NE, RN_MC_LT, RN_MC_LE, RN_MC_GT, RN_MC_GE };

struct rn_map_cond {
    struct rn_map_expr lhs;
    enum rn_map_cmp cmp;
    int rhs_kind; /* 0 number, 1 string, 2 symbol */
    double num;
    char text[64];
};

struct rn_map_set {
    char field[RN_MAP_NAME];
    struct rn_map_expr e;
};

struct rn_map_cfg {
    const struct rn_cfg_node *where, *set;
    uint32_t n_where, n_set;
    struct rn_map_cond conds[RN_MAP_MAX];
    struct rn_map_set sets[RN_MAP_MAX];
};

/* What the fields resolved to for one input type. */
struct rn_map_local {
    int type_id;
    struct rn_field wa[RN_MAP_MAX], wb[RN_MAP_MAX], sa[RN_MAP_MAX], sb[RN_MAP_MAX],
        target[RN_MAP_MAX];
    double rhs[RN_MAP_MAX]; /* conditions on symbols: the symbol's number */
};

static const struct rn_config_key rn_map_keys[] = {
    {"where", RN_CT_NODE, NULL, NULL, offsetof(struct rn_map_cfg, where),
     "A condition, or a list of conditions that must all hold, such as "
     "\"auction % 123 == 0\"; records that fail one are dropped.",
     NULL, 0, 0, 0},
    {"set", RN_CT_NODE, NULL, NULL, offsetof(struct rn_map_cfg, set),
     "A map of numeric field to expression, such as {price: \"price * 0.908\"}.", NULL, 0, 0, 0},
    RN_CONFIG_END,
};

/* ---- parsing ---------------------------------------------------------------------------- */

struct rn_map_lex {
    const char *s;
};

static void rn_map_ws(struct rn_map_lex *l)
{
    while (*l->s == ' ' || *l->s == '\t')
        l->s++;
}

/* A field name or a number. */
static int rn_map_term(struct rn_map_lex *l, struct rn_map_term *t)
{
    rn_map_ws(l);
    const char *s = l->s;
    if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_') {
        size_t n = 0;
        while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') || s[n] == '_' ||
               (s[n] >= '0' && s[n] <= '9'))
            n++;
        if (n >= RN_MAP_NAME) return RN_EINVAL;
        t->is_field = 1;
        memcpy(t->field, s, n);
        t->field[n] = 0;
        l->s = s + n;
        return 0;
    }
    char *end;
    t->num = strtod(s, &end);
    if (end == s || !isfinite(t->num)) return RN_EINVAL;
    t->is_field = 0;
    l->s = end;
    return 0;
}

static int rn_map_expr(struct rn_map_lex *l, struct rn_map_expr *e)
{
    if (rn_map_term(l, &e->a)) return RN_EINVAL;
    rn_map_ws(l);
    e->op = 0;
    if (*l->s && strchr("+-*/%", *l->s)) {
        e->op = *l->s++;
        if (rn_map_term(l, &e->b)) return RN_EINVAL;
    }
    return 0;
}

static int rn_map_parse_cond(const char *text, struct rn_map_cond *c)
{
    struct rn_map_lex l = {text};
    if (rn_map_expr(&l, &c->lhs) || !c->lhs.a.is_field) return RN_EINVAL;
    rn_map_ws(&l);
    static const char *const ops[] = {"==", "!=", "<=", ">=", "<", ">"};
    static const enum rn_map_cmp cmps[] = {RN_MC_EQ, RN_MC_NE, RN_MC_LE,
                                           RN_MC_GE, RN_MC_LT, RN_MC_GT};
    int found = -1;
    for (int i = 0; i < 6 && found < 0; i++)
        if (strncmp(l.s, ops[i], strlen(ops[i])) == 0) found = i;
    if (found < 0) return RN_EINVAL;
    c->cmp = cmps[found];
    l.s += strlen(ops[found]);
    rn_map_ws(&l);
    const char *s = l.s;
    size_t n;
    if (*s == '\'' || *s == '"') {
        const char *q = strchr(s + 1, *s);
        if (!q || (size_t)(q - s - 1) >= sizeof c->text) return RN_EINVAL;
        n = (size_t)(q - s - 1);
        memcpy(c->text, s + 1, n);
        c->text[n] = 0;
        c->rhs_kind = 1;
        l.s = q + 1;
    } else {
        struct rn_map_term t;
        if (rn_map_term(&l, &t)) return RN_EINVAL;
        if (t.is_field) {
            snprintf(c->text, sizeof c->text, "%s", t.field);
            c->rhs_kind = 2;
        } else {
            c->num = t.num;
            c->rhs_kind = 0;
        }
    }
    rn_map_ws(&l);
    if (*l.s) return RN_EINVAL;
    if (c->rhs_kind == 1 && (c->lhs.op || (c->cmp != RN_MC_EQ && c->cmp != RN_MC_NE)))
        return RN_EINVAL;
    return 0;
}

static int rn_map_init(void *ctx, const struct rn_cfg_node *node, char *errbuf, size_t errlen)
{
    struct rn_map_cfg *c = ctx;
    if (!c->where && !c->set) {
        rn_cfg_errf(errbuf, errlen, node, "'map' needs 'where', 'set' or both");
        return RN_EINVAL;
    }
    if (c->where) {
        const struct rn_cfg_node *w = c->where;
        const struct rn_cfg_node *first = w->kind == RN_CFG_SEQ ? w->child : w;
        if (w->kind == RN_CFG_MAP || !first) {
            rn_cfg_errf(errbuf, errlen, w, "'where' must be a condition or a list of them");
            return RN_EINVAL;
        }
        for (const struct rn_cfg_node *n = first; n; n = w->kind == RN_CFG_SEQ ? n->next : NULL) {
            if (c->n_where == RN_MAP_MAX) {
                rn_cfg_errf(errbuf, errlen, n, "at most %d conditions", RN_MAP_MAX);
                return RN_EINVAL;
            }
            if (n->kind != RN_CFG_SCALAR || rn_map_parse_cond(n->value, &c->conds[c->n_where])) {
                rn_cfg_errf(errbuf, errlen, n,
                            "cannot read condition '%s' (expected: field [op number] cmp value, "
                            "such as \"auction %% 123 == 0\")",
                            n->kind == RN_CFG_SCALAR ? n->value : "?");
                return RN_EINVAL;
            }
            c->n_where++;
        }
    }
    if (c->set) {
        if (c->set->kind != RN_CFG_MAP || !c->set->child) {
            rn_cfg_errf(errbuf, errlen, c->set,
                        "'set' must be a map of field to expression, such as "
                        "{price: \"price * 0.908\"}");
            return RN_EINVAL;
        }
        for (const struct rn_cfg_node *n = c->set->child; n; n = n->next) {
            struct rn_map_set *s = &c->sets[c->n_set];
            struct rn_map_lex l = {n->value};
            if (c->n_set == RN_MAP_MAX || strlen(n->key) >= RN_MAP_NAME ||
                n->kind != RN_CFG_SCALAR || rn_map_expr(&l, &s->e) || (rn_map_ws(&l), *l.s != 0)) {
                rn_cfg_errf(errbuf, errlen, n,
                            "cannot read '%s: %s' (expected: operand [op operand], at most %d)",
                            n->key, n->kind == RN_CFG_SCALAR ? n->value : "?", RN_MAP_MAX);
                return RN_EINVAL;
            }
            snprintf(s->field, sizeof s->field, "%s", n->key);
            c->n_set++;
        }
    }
    return 0;
}

/* ---- running ---------------------------------------------------------------------------- */

static int rn_map_field(struct rn_op *op, const struct rn_type *t, const struct rn_record *r,
                        const char *name, int numeric, struct rn_field *f)
{
    if (rn_record_field(t, r, name, f)) {
        rn_op_errorf(op, "record type '%s' has no field '%s'", t->name, name);
        return RN_EINVAL;
    }
    if (numeric && f->kind == RN_FIELD_STR) {
        rn_op_errorf(op, "field '%s' of '%s' is text, not a number", name, t->name);
        return RN_EINVAL;
    }
    return 0;
}

static int rn_map_resolve(struct rn_op *op, struct rn_map_local *m, const struct rn_record *r)
{
    const struct rn_map_cfg *c = rn_op_ctx(op);
    const struct rn_type *t = rn_types_get(rn_op_types(op), r->type);
    if (!t) return RN_EINVAL;
    for (uint32_t i = 0; i < c->n_where; i++) {
        const struct rn_map_cond *k = &c->conds[i];
        if (rn_map_field(op, t, r, k->lhs.a.field, k->rhs_kind != 1, &m->wa[i])) return RN_EINVAL;
        if (k->lhs.op && k->lhs.b.is_field && rn_map_field(op, t, r, k->lhs.b.field, 1, &m->wb[i]))
            return RN_EINVAL;
        if (k->rhs_kind == 2) {
            const struct rn_field *f = &m->wa[i];
            int v = -1;
            for (int j = 0; f->symbols && f->symbols[j]; j++)
                if (strcmp(f->symbols[j], k->text) == 0) v = j;
            if (v < 0) {
                rn_op_errorf(op, "'%s' is not a value of field '%s' of '%s'", k->text,
                             k->lhs.a.field, t->name);
                return RN_EINVAL;
            }
            m->rhs[i] = v;
        } else {
            m->rhs[i] = k->num;
        }
    }
    for (uint32_t i = 0; i < c->n_set; i++) {
        const struct rn_map_set *s = &c->sets[i];
        const struct rn_field *f = rn_type_field_find(t, s->field);
        if (!f || f->kind == RN_FIELD_STR) {
            rn_op_errorf(op, "'set': '%s' is not a numeric field of '%s'", s->field, t->name);
            return RN_EINVAL;
        }
        m->target[i] = *f;
        if (s->e.a.is_field && rn_map_field(op, t, r, s->e.a.field, 1, &m->sa[i])) return RN_EINVAL;
        if (s->e.op && s->e.b.is_field && rn_map_field(op, t, r, s->e.b.field, 1, &m->sb[i]))
            return RN_EINVAL;
    }
    m->type_id = r->type;
    return 0;
}

static double rn_map_eval(const struct rn_map_expr *e, const struct rn_field *fa,
                          const struct rn_field *fb, const void *p)
{
    double a = e->a.is_field ? rn_field_f64(fa, p) : e->a.num;
    if (!e->op) return a;
    double b = e->b.is_field ? rn_field_f64(fb, p) : e->b.num;
    switch (e->op) {
    case '+':
        return a + b;
    case '-':
        return a - b;
    case '*':
        return a * b;
    case '/':
        return a / b;
    default:
        return fmod(a, b);
    }
}

static int rn_map_keep(const struct rn_map_cfg *c, const struct rn_map_local *m, const void *p)
{
    for (uint32_t i = 0; i < c->n_where; i++) {
        const struct rn_map_cond *k = &c->conds[i];
        if (k->rhs_kind == 1) {
            int eq;
            if (m->wa[i].kind == RN_FIELD_STR) {
                struct rn_str s = rn_field_str(&m->wa[i], p);
                size_t n = strlen(k->text);
                eq = s.len == n && memcmp(rn_str_ptr(p, s), k->text, n) == 0;
            } else {
                eq = 0;
            }
            if (eq != (k->cmp == RN_MC_EQ)) return 0;
            continue;
        }
        double x = rn_map_eval(&k->lhs, &m->wa[i], &m->wb[i], p), y = m->rhs[i];
        int ok;
        switch (k->cmp) {
        case RN_MC_EQ:
            ok = x == y;
            break;
        case RN_MC_NE:
            ok = x != y;
            break;
        case RN_MC_LT:
            ok = x < y;
            break;
        case RN_MC_LE:
            ok = x <= y;
            break;
        case RN_MC_GT:
            ok = x > y;
            break;
        default:
            ok = x >= y;
        }
        if (!ok) return 0;
    }
    return 1;
}

static int rn_map_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    const struct rn_map_cfg *c = rn_op_ctx(op);
    struct rn_map_local *m = rn_op_local(op);
    if (!m) {
        m = rn_xcalloc(1, sizeof *m);
        m->type_id = -1;
        rn_op_set_local(op, m);
    }
    const struct rn_types *ts = rn_op_types(op);
    for (uint32_t i = 0; i < in->n; i++) {
        const struct rn_record *r = &in->recs[i];
        const struct rn_type *t = rn_types_get(ts, r->type);
        int rc;
        if ((r->type != m->type_id || (t && t->field_lookup)) && (rc = rn_map_resolve(op, m, r)))
            return rc;
        if (!rn_map_keep(c, m, r->payload)) continue;
        if (!c->n_set) {
            rn_emit_copy(out, 0, r);
            continue;
        }
        double v[RN_MAP_MAX];
        for (uint32_t k = 0; k < c->n_set; k++)
            v[k] = rn_map_eval(&c->sets[k].e, &m->sa[k], &m->sb[k], r->payload);
        char *p = rn_emit(out, 0, r->ts, r->key, r->len);
        memcpy(p, r->payload, r->len);
        for (uint32_t k = 0; k < c->n_set; k++) {
            const struct rn_field *f = &m->target[k];
            if (f->kind == RN_FIELD_F64) {
                memcpy(p + f->off, &v[k], sizeof v[k]);
            } else {
                int64_t x = fabs(v[k]) < 9.2e18 ? (int64_t)v[k] : 0; /* NaN, inf: 0 */
                memcpy(p + f->off, &x, sizeof x);
            }
        }
    }
    return 0;
}

static void rn_map_close(struct rn_op *op)
{
    free(rn_op_local(op));
    rn_op_set_local(op, NULL);
}

static const struct rn_port_decl rn_map_out[] = {
    {NULL, "*", "The records kept, with the fields `set` names rewritten."}};

const struct rn_op_type rn_op_map = {
    RN_OP_TYPE_HEAD,
    .name = "map",
    .description = "Keeps records by conditions on their fields and rewrites numeric fields "
                   "with simple arithmetic.",
    .kind = RN_KIND_OPERATOR,
    .config = rn_map_keys,
    .ctx_size = sizeof(struct rn_map_cfg),
    .in_type = "*",
    .outputs = rn_map_out,
    .n_outputs = 1,
    .init = rn_map_init,
    .process = rn_map_process,
    .close = rn_map_close,
};
