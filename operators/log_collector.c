/*
 * log_collector.c — `log_collector`: the edge of the pipeline. Parses each
 * `raw` line as JSON (yajl, validating: UTF-8, syntax, integer overflow),
 * checks it is a known event with the fields that event needs, and emits a
 * typed `event`. Every line that fails goes to the `dead_letter` output with
 * the reason and its source offset, and is counted; none is dropped silently.
 *
 * Every line is first checked to be strict UTF-8 (yajl alone lets overlong
 * forms and UTF-16 surrogates through). Parsing is streaming (yajl callbacks, no tree): fields of interest are
 * recognised at depth 1 by name (names configurable) and copied straight into
 * the event payload being built; other fields and nested objects are skipped.
 * yajl's allocations come from a per-line scratch arena, so the hot path does
 * no malloc. Text is parsed here once; nothing downstream sees it again.
 *
 * Rules (each failure's reason is in docs/operators.md):
 *   all events   type (known), ts (integer ms, or seconds with ts_unit: s),
 *                user (string), request (string)
 *   request      candidates: optional list of strings
 *   impression   items: non-empty list of strings; propensities: optional
 *                list of numbers in [0, 1], as many as items; model_version:
 *                optional integer
 *   click, pay   item (string); pay: amount optional number
 *   context      only with `context_fields`: an object; each listed field in
 *                it must be a number (else the line is rejected); a request
 *                carries the listed values in order (missing: NaN, counted)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "rn_event.h"
#include "rn_sample.h"
#include "rn_operator.h"

enum rn_lc_field {
    RN_F_NONE = -1,
    RN_F_TYPE = 0,
    RN_F_TS,
    RN_F_USER,
    RN_F_REQUEST,
    RN_F_ITEM,
    RN_F_ITEMS,
    RN_F_CANDIDATES,
    RN_F_PROPS,
    RN_F_AMOUNT,
    RN_F_MODEL_VERSION,
    RN_F_EVENT_ID,
    RN_F_CONTEXT,
    RN_F_COUNT,
};

struct rn_lc_cfg {
    const char *names[RN_F_COUNT];
    int ts_unit; /* 0: ms, 1: s, 2: RFC 3339 string */
    const struct rn_cfg_node *feedback_types;
    int64_t max_items;
    int64_t max_id_len;
    int64_t min_ts, max_ts; /* ms */
    const struct rn_cfg_node *context_node;
    size_t name_len[RN_F_COUNT];
    char ctx_names[RN_CONTEXT_MAX][RN_CONTEXT_NAME_MAX];
    size_t ctx_len[RN_CONTEXT_MAX];
    uint32_t n_ctx;
    const struct rn_names *kinds; /* the job's event kinds (read-only once it runs) */
};

static const char *const rn_lc_units[] = {"ms", "s", "rfc3339", NULL};
static const char *const rn_lc_metrics[] = {"requests", "impressions", "clicks", "pays",
                                            "rejected", "other_feedback", "context_missing", NULL};
enum { RN_LC_M_REJECTED = 4, RN_LC_M_OTHER = 5, RN_LC_M_CTX_MISSING = 6 };

#define RN_LC_NAME_KEY(key, idx, def, what)                                                    \
    {key, RN_CT_STRING, def, NULL, offsetof(struct rn_lc_cfg, names) + (idx) * sizeof(char *), \
     what, NULL, 0, 0, 0}

static const struct rn_config_key rn_lc_keys[] = {
    RN_LC_NAME_KEY("type_field", RN_F_TYPE, "type", "Field holding the event type."),
    RN_LC_NAME_KEY("ts_field", RN_F_TS, "ts", "Field holding the event time."),
    RN_LC_NAME_KEY("user_field", RN_F_USER, "user", "Field holding the user id (string)."),
    RN_LC_NAME_KEY("request_field", RN_F_REQUEST, "request",
                   "Field holding the request id (string)."),
    RN_LC_NAME_KEY("item_field", RN_F_ITEM, "item", "Field holding the item id of a click or pay."),
    RN_LC_NAME_KEY("items_field", RN_F_ITEMS, "items",
                   "Field holding the displayed item ids of an impression."),
    RN_LC_NAME_KEY("candidates_field", RN_F_CANDIDATES, "candidates",
                   "Field holding the candidate item ids of a request."),
    RN_LC_NAME_KEY("propensities_field", RN_F_PROPS, "propensities",
                   "Field holding the logging propensity of each displayed item."),
    RN_LC_NAME_KEY("amount_field", RN_F_AMOUNT, "amount", "Field holding the amount of a pay."),
    RN_LC_NAME_KEY("model_version_field", RN_F_MODEL_VERSION, "model_version",
                   "Field holding the model version that served an impression."),
    RN_LC_NAME_KEY("event_id_field", RN_F_EVENT_ID, "event_id",
                   "Field holding the producer's id of the event (optional; a `dedup` "
                   "operator keyed by `event_id` drops repeats)."),
    RN_LC_NAME_KEY("context_field", RN_F_CONTEXT, "context",
                   "Field holding a request's context object (read only with `context_fields`)."),
    {"context_fields", RN_CT_NODE, NULL, NULL, offsetof(struct rn_lc_cfg, context_node),
     "Numeric fields of a request's context object to carry in its event (a list of names, "
     "such as [hour, page]; default none). A request without one of them carries NaN "
     "(counted as context_missing); a non-numeric value rejects the line. Downstream, "
     "online_joiner and experience_collector carry the values into samples and states, and "
     "the learner and inference append them to phi when they name the same list.",
     NULL, 0, 0, 0},
    {"ts_unit", RN_CT_ENUM, "ms", NULL, offsetof(struct rn_lc_cfg, ts_unit),
     "Format of the event-time field: epoch milliseconds (integer), epoch seconds (may have a "
     "fraction), or an RFC 3339 string (\"2023-11-14T22:13:20.5Z\", offsets allowed).",
     rn_lc_units, 0, 0, 0},
    {"feedback_types", RN_CT_NODE, NULL, NULL, offsetof(struct rn_lc_cfg, feedback_types),
     "Extra feedback event types besides click and pay (a list of names, such as [dwell, "
     "like, cart]); like click, each needs `item`. Reward weights are the joiner's.",
     NULL, 0, 0, 0},
    {"max_items", RN_CT_INT, "1000", "items", offsetof(struct rn_lc_cfg, max_items),
     "Most items (or candidates) accepted in one event.", NULL, 0, 1, 1000000},
    {"max_id_length", RN_CT_INT, "256", "bytes", offsetof(struct rn_lc_cfg, max_id_len),
     "Longest accepted id (user, request, item).", NULL, 0, 1, 65536},
    {"min_ts", RN_CT_INT, "0", "ms", offsetof(struct rn_lc_cfg, min_ts),
     "Earliest accepted event time (epoch ms).", NULL, 0, 0, 0},
    {"max_ts", RN_CT_INT, "32503680000000", "ms", offsetof(struct rn_lc_cfg, max_ts),
     "Latest accepted event time (epoch ms; default: year 3000).", NULL, 0, 0, 0},
    RN_CONFIG_END,
};

/* Load time: checks the settings and declares the job's event kinds (the
 * feedback types) and context fields, which the event type keeps per job. */
static int rn_lc_init_types(void *ctx, struct rn_types *ts, const struct rn_cfg_node *node,
                            char *errbuf, size_t errlen)
{
    struct rn_lc_cfg *c = ctx;
    c->kinds = rn_event_kinds(ts);
    const struct rn_cfg_node *ft = c->feedback_types;
    if (ft) {
        if (ft->kind != RN_CFG_SEQ) {
            rn_cfg_errf(errbuf, errlen, ft, "'feedback_types' must be a list of names");
            return RN_EINVAL;
        }
        for (const struct rn_cfg_node *n = ft->child; n; n = n->next) {
            int ok = n->kind == RN_CFG_SCALAR && n->value[0];
            for (const char *p = ok ? n->value : ""; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || *p == '_' || (*p >= '0' && *p <= '9'))) ok = 0;
            if (!ok) {
                rn_cfg_errf(errbuf, errlen, n, "a feedback type is a name of a-z, 0-9 and '_'");
                return RN_EINVAL;
            }
            int k = rn_event_kind_register(ts, n->value);
            if (k < 0) {
                rn_cfg_errf(errbuf, errlen, n, "too many event types (at most 16, names < 24 bytes)");
                return RN_EINVAL;
            }
            if (k < RN_EV_CLICK) {
                rn_cfg_errf(errbuf, errlen, n, "'%s' is not a feedback type", n->value);
                return RN_EINVAL;
            }
        }
    }
    for (int i = 0; i < RN_F_COUNT; i++) {
        c->name_len[i] = strlen(c->names[i]);
        for (int j = 0; j < i; j++) {
            if (strcmp(c->names[i], c->names[j]) == 0) {
                rn_cfg_errf(errbuf, errlen, node, "two fields are both named '%s'", c->names[i]);
                return RN_EINVAL;
            }
        }
    }
    int rc = rn_context_fields_parse(c->context_node, c->ctx_names, &c->n_ctx, errbuf, errlen);
    if (rc) return rc;
    for (uint32_t i = 0; i < c->n_ctx; i++) c->ctx_len[i] = strlen(c->ctx_names[i]);
    if (rn_context_fields_set(ts, c->ctx_names, c->n_ctx)) {
        rn_cfg_errf(errbuf, errlen, c->context_node,
                    "'context_fields' differs from another operator's list in this job");
        return RN_EINVAL;
    }
    if (c->min_ts >= c->max_ts) {
        rn_cfg_errf(errbuf, errlen, node, "min_ts must be below max_ts");
        return RN_EINVAL;
    }
    return 0;
}

/* ---- per-line parse state ---------------------------------------------------- */

struct rn_lc {
    const struct rn_lc_cfg *cfg;
    struct rn_arena scratch; /* yajl's allocations; reset per line */
    yajl_alloc_funcs afuncs;
    struct rn_payload pl;    /* the event being built */
    struct rn_str *items;    /* item strings (offsets into pl) */
    double *props;
    uint32_t n_items, n_props, cap_items;
    int depth;
    int field;     /* field of the current depth-1 key */
    int in_array;  /* inside the current field's array (depth 2) */
    int in_ctx;    /* inside the context object (depth 2) */
    int ctx_field; /* index into context_fields of the current depth-2 key, or -1 */
    uint32_t ctx_seen; /* bit per context field */
    double ctx[RN_CONTEXT_MAX];
    uint32_t seen; /* bit per field */
    const char *reason;
    char reason_buf[160];
    /* Values. */
    int kind;
    int64_t ts;
    double amount;
    int64_t model_version;
};

/* yajl allocator on the scratch arena: each block carries its size for realloc. */
static void *rn_lc_malloc(void *ctx, size_t sz)
{
    struct rn_lc *lc = ctx;
    size_t *p = rn_arena_alloc(&lc->scratch, sz + sizeof(size_t));
    *p = sz;
    return p + 1;
}
static void *rn_lc_realloc(void *ctx, void *old, size_t sz)
{
    if (!old) return rn_lc_malloc(ctx, sz);
    size_t oldsz = ((size_t *)old)[-1];
    if (sz <= oldsz) return old;
    void *n = rn_lc_malloc(ctx, sz);
    memcpy(n, old, oldsz);
    return n;
}
static void rn_lc_free(void *ctx, void *p)
{
    (void)ctx;
    (void)p;
}

#define RN_LC_FAIL(lc, msg)                                                                    \
    do {                                                                                       \
        (lc)->reason = (msg);                                                                  \
        return 0;                                                                              \
    } while (0)

static int rn_lc_failf(struct rn_lc *lc, const char *fmt, const char *arg)
{
    snprintf(lc->reason_buf, sizeof lc->reason_buf, fmt, arg);
    lc->reason = lc->reason_buf;
    return 0;
}

static int rn_lc_top(struct rn_lc *lc)
{
    if (lc->depth == 0) RN_LC_FAIL(lc, "not a JSON object");
    return 1;
}

static int rn_lc_push_item(struct rn_lc *lc, const char *s, size_t n)
{
    if (lc->n_items >= (uint32_t)lc->cfg->max_items) RN_LC_FAIL(lc, "too many items");
    if (n == 0) RN_LC_FAIL(lc, "empty item id");
    if ((int64_t)n > lc->cfg->max_id_len) RN_LC_FAIL(lc, "item id too long");
    if (lc->n_items == lc->cap_items) {
        lc->cap_items = lc->cap_items ? lc->cap_items * 2 : 64;
        lc->items = rn_xrealloc(lc->items, lc->cap_items * sizeof *lc->items);
        lc->props = rn_xrealloc(lc->props, lc->cap_items * sizeof *lc->props);
    }
    lc->items[lc->n_items++] = rn_payload_str(&lc->pl, s, n);
    return 1;
}

static int rn_lc_number(struct rn_lc *lc, double d, int is_int, long long iv)
{
    if (!rn_lc_top(lc)) return 0;
    if (lc->in_ctx) {
        if (lc->depth == 2 && lc->ctx_field >= 0) lc->ctx[lc->ctx_field] = is_int ? (double)iv : d;
        return 1;
    }
    if (lc->depth > 2 || (lc->depth == 2 && !lc->in_array)) return 1;
    switch (lc->field) {
    case RN_F_TS:
        if (lc->in_array) RN_LC_FAIL(lc, "'ts' must be a number");
        if (lc->cfg->ts_unit == 2) RN_LC_FAIL(lc, "'ts' must be an RFC 3339 string");
        if (lc->cfg->ts_unit == 0) {
            if (!is_int) RN_LC_FAIL(lc, "'ts' must be an integer (epoch ms)");
            lc->ts = iv;
        } else {
            /* Seconds: range-check before scaling, so nothing overflows. */
            double sec = is_int ? (double)iv : d;
            if (!(sec >= (double)lc->cfg->min_ts / 1000.0 && sec <= (double)lc->cfg->max_ts / 1000.0))
                RN_LC_FAIL(lc, "'ts' out of range");
            lc->ts = is_int ? (int64_t)iv * 1000 : (int64_t)(d * 1000.0);
        }
        if (lc->ts < lc->cfg->min_ts || lc->ts > lc->cfg->max_ts) RN_LC_FAIL(lc, "'ts' out of range");
        return 1;
    case RN_F_AMOUNT:
        if (lc->in_array) RN_LC_FAIL(lc, "'amount' must be a number");
        lc->amount = is_int ? (double)iv : d;
        return 1;
    case RN_F_MODEL_VERSION:
        if (lc->in_array || !is_int) RN_LC_FAIL(lc, "'model_version' must be an integer");
        lc->model_version = iv;
        return 1;
    case RN_F_PROPS: {
        if (!lc->in_array) RN_LC_FAIL(lc, "'propensities' must be a list of numbers");
        double v = is_int ? (double)iv : d;
        if (!(v >= 0.0 && v <= 1.0)) RN_LC_FAIL(lc, "propensity outside [0, 1]");
        if (lc->n_props >= (uint32_t)lc->cfg->max_items) RN_LC_FAIL(lc, "too many propensities");
        if (lc->n_props >= lc->cap_items) {
            lc->cap_items = lc->cap_items ? lc->cap_items * 2 : 64;
            lc->items = rn_xrealloc(lc->items, lc->cap_items * sizeof *lc->items);
            lc->props = rn_xrealloc(lc->props, lc->cap_items * sizeof *lc->props);
        }
        lc->props[lc->n_props++] = v;
        return 1;
    }
    case RN_F_NONE: return 1;
    case RN_F_CONTEXT:
        return rn_lc_failf(lc, "'%s' must be an object", lc->cfg->names[lc->field]);
    default: return rn_lc_failf(lc, "'%s' must be a string", lc->cfg->names[lc->field]);
    }
}

/* A non-numeric value inside the context object: rejects the line when the
 * key is one of context_fields, else skips it. */
static int rn_lc_ctx_not_number(struct rn_lc *lc)
{
    if (lc->depth != 2 || lc->ctx_field < 0) return 1;
    return rn_lc_failf(lc, "context field '%s' must be a number", lc->cfg->ctx_names[lc->ctx_field]);
}

static int rn_lc_integer(void *ctx, long long v)
{
    return rn_lc_number(ctx, (double)v, 1, v);
}

static int rn_lc_double(void *ctx, double v)
{
    return rn_lc_number(ctx, v, 0, 0);
}

static int rn_lc_other(void *ctx, const char *what)
{
    struct rn_lc *lc = ctx;
    if (!rn_lc_top(lc)) return 0;
    if (lc->in_ctx) return rn_lc_ctx_not_number(lc);
    if (lc->depth > 2 || (lc->depth == 2 && !lc->in_array) || lc->field == RN_F_NONE) return 1;
    char msg[96];
    snprintf(msg, sizeof msg, "'%%s' must not be %s", what);
    return rn_lc_failf(lc, msg, lc->cfg->names[lc->field]);
}

static int rn_lc_null(void *ctx)
{
    return rn_lc_other(ctx, "null");
}

static int rn_lc_boolean(void *ctx, int v)
{
    (void)v;
    return rn_lc_other(ctx, "a boolean");
}

static int rn_lc_string(void *ctx, const unsigned char *s, size_t n)
{
    struct rn_lc *lc = ctx;
    if (!rn_lc_top(lc)) return 0;
    if (lc->in_ctx) return rn_lc_ctx_not_number(lc);
    if (lc->depth > 2 || (lc->depth == 2 && !lc->in_array) || lc->field == RN_F_NONE) return 1;
    const char *p = (const char *)s;
    struct rn_event *e;
    switch (lc->field) {
    case RN_F_TS:
        if (lc->cfg->ts_unit != 2 || lc->in_array) RN_LC_FAIL(lc, "'ts' must be a number");
        if (rn_parse_rfc3339(p, n, &lc->ts)) RN_LC_FAIL(lc, "'ts' is not an RFC 3339 time");
        if (lc->ts < lc->cfg->min_ts || lc->ts > lc->cfg->max_ts) RN_LC_FAIL(lc, "'ts' out of range");
        return 1;
    case RN_F_TYPE:
        if (lc->in_array) RN_LC_FAIL(lc, "'type' must be a string");
        lc->kind = rn_names_find(lc->cfg->kinds, p, n);
        if (lc->kind < 0) {
            char t[48];
            snprintf(t, sizeof t, "%.*s", (int)RN_MIN(n, 40), p);
            return rn_lc_failf(lc, "unknown event type '%s'", t);
        }
        return 1;
    case RN_F_USER:
    case RN_F_REQUEST:
    case RN_F_ITEM:
    case RN_F_EVENT_ID:
        if (lc->in_array) return rn_lc_failf(lc, "'%s' must be a string", lc->cfg->names[lc->field]);
        if (n == 0) return rn_lc_failf(lc, "'%s' is empty", lc->cfg->names[lc->field]);
        if ((int64_t)n > lc->cfg->max_id_len)
            return rn_lc_failf(lc, "'%s' is too long", lc->cfg->names[lc->field]);
        {
            struct rn_str str = rn_payload_str(&lc->pl, p, n);
            e = rn_payload_fixed(&lc->pl);
            if (lc->field == RN_F_USER) e->user = str;
            else if (lc->field == RN_F_REQUEST) e->request = str;
            else if (lc->field == RN_F_EVENT_ID) e->event_id = str;
            else e->item = str;
        }
        return 1;
    case RN_F_ITEMS:
    case RN_F_CANDIDATES:
        if (!lc->in_array)
            return rn_lc_failf(lc, "'%s' must be a list of strings", lc->cfg->names[lc->field]);
        return rn_lc_push_item(lc, p, n);
    case RN_F_CONTEXT:
        return rn_lc_failf(lc, "'%s' must be an object", lc->cfg->names[lc->field]);
    default:
        return rn_lc_failf(lc, "'%s' must be a number", lc->cfg->names[lc->field]);
    }
}

static int rn_lc_start_map(void *ctx)
{
    struct rn_lc *lc = ctx;
    if (lc->in_ctx) {
        if (lc->depth == 2 && lc->ctx_field >= 0) return rn_lc_ctx_not_number(lc);
        lc->depth++;
        return 1;
    }
    if (lc->depth == 1 && lc->field == RN_F_CONTEXT) {
        lc->in_ctx = 1;
        lc->ctx_field = -1;
        lc->depth++;
        return 1;
    }
    if (lc->depth == 1 && lc->field != RN_F_NONE)
        return rn_lc_failf(lc, "'%s' must not be an object", lc->cfg->names[lc->field]);
    if (lc->depth == 2 && lc->in_array && lc->field != RN_F_NONE)
        return rn_lc_failf(lc, "'%s' must not hold objects", lc->cfg->names[lc->field]);
    lc->depth++;
    return 1;
}

static int rn_lc_map_key(void *ctx, const unsigned char *k, size_t n)
{
    struct rn_lc *lc = ctx;
    if (lc->in_ctx && lc->depth == 2) {
        lc->ctx_field = -1;
        for (uint32_t i = 0; i < lc->cfg->n_ctx; i++) {
            if (lc->cfg->ctx_len[i] == n && memcmp(lc->cfg->ctx_names[i], k, n) == 0) {
                if (lc->ctx_seen & (1u << i))
                    return rn_lc_failf(lc, "duplicate context field '%s'", lc->cfg->ctx_names[i]);
                lc->ctx_seen |= 1u << i;
                lc->ctx_field = (int)i;
                break;
            }
        }
        return 1;
    }
    if (lc->depth != 1) return 1;
    lc->field = RN_F_NONE;
    for (int i = 0; i < RN_F_COUNT; i++) {
        if (i == RN_F_CONTEXT && lc->cfg->n_ctx == 0) continue; /* not read: skipped as before */
        if (lc->cfg->name_len[i] == n && memcmp(lc->cfg->names[i], k, n) == 0) {
            if (lc->seen & (1u << i)) return rn_lc_failf(lc, "duplicate field '%s'", lc->cfg->names[i]);
            lc->seen |= 1u << i;
            lc->field = i;
            break;
        }
    }
    return 1;
}

static int rn_lc_end_map(void *ctx)
{
    struct rn_lc *lc = ctx;
    lc->depth--;
    if (lc->depth == 1) lc->in_ctx = 0;
    return 1;
}

static int rn_lc_start_array(void *ctx)
{
    struct rn_lc *lc = ctx;
    if (lc->depth == 0) RN_LC_FAIL(lc, "not a JSON object");
    if (lc->in_ctx) {
        if (lc->depth == 2 && lc->ctx_field >= 0) return rn_lc_ctx_not_number(lc);
    } else if (lc->depth == 1) {
        switch (lc->field) {
        case RN_F_ITEMS:
        case RN_F_CANDIDATES:
        case RN_F_PROPS: lc->in_array = 1; break;
        case RN_F_NONE: break;
        case RN_F_CONTEXT:
            return rn_lc_failf(lc, "'%s' must be an object", lc->cfg->names[lc->field]);
        default: return rn_lc_failf(lc, "'%s' must not be a list", lc->cfg->names[lc->field]);
        }
    } else if (lc->depth == 2 && lc->in_array && lc->field != RN_F_NONE) {
        return rn_lc_failf(lc, "'%s' must not hold lists", lc->cfg->names[lc->field]);
    }
    lc->depth++;
    return 1;
}

static int rn_lc_end_array(void *ctx)
{
    struct rn_lc *lc = ctx;
    lc->depth--;
    if (lc->depth == 1) lc->in_array = 0;
    return 1;
}

static const yajl_callbacks rn_lc_callbacks = {
    rn_lc_null,      rn_lc_boolean,   rn_lc_integer, rn_lc_double,      NULL,
    rn_lc_string,    rn_lc_start_map, rn_lc_map_key, rn_lc_end_map,     rn_lc_start_array,
    rn_lc_end_array,
};

static int rn_lc_open(struct rn_op *op)
{
    struct rn_lc *lc = rn_xcalloc(1, sizeof *lc);
    lc->cfg = rn_op_ctx(op);
    rn_arena_init(&lc->scratch, 64 * 1024);
    lc->afuncs.malloc = rn_lc_malloc;
    lc->afuncs.realloc = rn_lc_realloc;
    lc->afuncs.free = rn_lc_free;
    lc->afuncs.ctx = lc;
    rn_op_set_local(op, lc);
    return 0;
}

static void rn_lc_close(struct rn_op *op)
{
    struct rn_lc *lc = rn_op_local(op);
    if (!lc) return;
    rn_arena_destroy(&lc->scratch);
    rn_buf_free(&lc->pl.buf);
    free(lc->items);
    free(lc->props);
    free(lc);
    rn_op_set_local(op, NULL);
}

/* Checks required fields after a successful parse; returns a reason or NULL. */
static const char *rn_lc_validate(struct rn_lc *lc)
{
    uint32_t s = lc->seen;
    const char *const *nm = lc->cfg->names;
    if (!(s & (1u << RN_F_TYPE))) return rn_lc_failf(lc, "missing field '%s'", nm[RN_F_TYPE]), lc->reason;
    if (!(s & (1u << RN_F_TS))) return rn_lc_failf(lc, "missing field '%s'", nm[RN_F_TS]), lc->reason;
    if (!(s & (1u << RN_F_USER))) return rn_lc_failf(lc, "missing field '%s'", nm[RN_F_USER]), lc->reason;
    if (!(s & (1u << RN_F_REQUEST)))
        return rn_lc_failf(lc, "missing field '%s'", nm[RN_F_REQUEST]), lc->reason;
    switch (lc->kind) {
    case RN_EV_REQUEST:
        if (s & (1u << RN_F_ITEMS))
            return rn_lc_failf(lc, "a request has no '%s' (requests list candidates)", nm[RN_F_ITEMS]), lc->reason;
        if (s & (1u << RN_F_PROPS))
            return rn_lc_failf(lc, "a request has no '%s' (impressions carry them)", nm[RN_F_PROPS]), lc->reason;
        break;
    case RN_EV_IMPRESSION:
        if (!(s & (1u << RN_F_ITEMS)))
            return rn_lc_failf(lc, "missing field '%s'", nm[RN_F_ITEMS]), lc->reason;
        if (lc->n_items == 0) return rn_lc_failf(lc, "'%s' is empty", nm[RN_F_ITEMS]), lc->reason;
        if ((s & (1u << RN_F_PROPS)) && lc->n_props != lc->n_items)
            return rn_lc_failf(lc, "'%s' and items differ in length", nm[RN_F_PROPS]), lc->reason;
        if (s & (1u << RN_F_CANDIDATES))
            return rn_lc_failf(lc, "an impression has no '%s'", nm[RN_F_CANDIDATES]), lc->reason;
        break;
    default: /* click, pay and the extra feedback types */
        if (!(s & (1u << RN_F_ITEM)))
            return rn_lc_failf(lc, "missing field '%s'", nm[RN_F_ITEM]), lc->reason;
        break;
    }
    return NULL;
}

static void rn_lc_reject(struct rn_op *op, struct rn_emitter *out, const struct rn_raw *raw,
                         const char *reason)
{
    rn_op_metric_add(op, RN_LC_M_REJECTED, 1);
    if (!rn_emit_connected(out, 1)) {
        /* Counted as unrouted by the runtime too; build nothing. */
        rn_emit(out, 1, RN_TS_MIN, 0, 0);
        return;
    }
    rn_emit_dead_letter(out, 1, op, rn_str_ptr(raw, raw->split), raw->split.len, raw->offset,
                        reason, rn_str_ptr(raw, raw->line), raw->line.len, raw->orig_len);
}

static int rn_lc_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    struct rn_lc *lc = rn_op_local(op);
    uint64_t counts[RN_EV_KIND_MAX + 1] = {0};
    for (uint32_t i = 0; i < in->n; i++) {
        const struct rn_raw *raw = in->recs[i].payload;
        const unsigned char *line = (const unsigned char *)rn_str_ptr(raw, raw->line);
        size_t len = raw->line.len;
        if (rn_raw_truncated(raw)) {
            char why[96];
            snprintf(why, sizeof why, "line too long (%u bytes)", raw->orig_len);
            rn_lc_reject(op, out, raw, why);
            continue;
        }
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t')) k++;
        if (k == len) {
            rn_lc_reject(op, out, raw, "empty line");
            continue;
        }
        /* yajl's own UTF-8 check lets overlong forms and surrogates through. */
        long bad = rn_utf8_check(line, len);
        if (bad >= 0) {
            char why[64];
            snprintf(why, sizeof why, "invalid UTF-8 at byte %ld", bad);
            rn_lc_reject(op, out, raw, why);
            continue;
        }
        /* Reset the per-line state. */
        rn_arena_reset(&lc->scratch);
        rn_payload_begin(&lc->pl, sizeof(struct rn_event));
        lc->n_items = lc->n_props = 0;
        lc->depth = 0;
        lc->field = RN_F_NONE;
        lc->in_array = 0;
        lc->in_ctx = 0;
        lc->ctx_field = -1;
        lc->ctx_seen = 0;
        lc->seen = 0;
        lc->reason = NULL;
        lc->kind = -1;
        lc->amount = 0;
        lc->model_version = 0;
        lc->ts = 0;
        yajl_handle h = yajl_alloc(&rn_lc_callbacks, &lc->afuncs, lc);
        yajl_status st = yajl_parse(h, line, len);
        /* Where it went wrong: within the line, or at its end (incomplete). */
        size_t at = st == yajl_status_ok ? len : yajl_get_bytes_consumed(h);
        if (st == yajl_status_ok) st = yajl_complete_parse(h);
        if (st != yajl_status_ok) {
            if (!lc->reason) {
                unsigned char *msg = yajl_get_error(h, 0, line, len);
                char why[200];
                snprintf(why, sizeof why, "invalid JSON at byte %zu: %s", at, (const char *)msg);
                size_t wl = strlen(why);
                while (wl && (why[wl - 1] == ' ' || why[wl - 1] == '\n')) why[--wl] = 0;
                for (char *c = why; *c; c++)
                    if (*c == '\n') *c = ' ';
                yajl_free_error(h, msg);
                yajl_free(h);
                rn_lc_reject(op, out, raw, why);
            } else {
                yajl_free(h);
                rn_lc_reject(op, out, raw, lc->reason);
            }
            continue;
        }
        yajl_free(h);
        const char *why = rn_lc_validate(lc);
        if (why) {
            rn_lc_reject(op, out, raw, why);
            continue;
        }
        /* Lay out the arrays after the strings, then fill the fixed part. */
        uint32_t n = lc->n_items;
        uint32_t items_off = rn_payload_reserve(&lc->pl, n * sizeof(struct rn_str));
        uint32_t ids_off = rn_payload_reserve(&lc->pl, n * sizeof(uint64_t));
        uint32_t props_off = lc->n_props ? rn_payload_reserve(&lc->pl, n * sizeof(double)) : 0;
        uint32_t n_ctx = lc->kind == RN_EV_REQUEST ? lc->cfg->n_ctx : 0;
        uint32_t ctx_off = n_ctx ? rn_payload_reserve(&lc->pl, n_ctx * sizeof(double)) : 0;
        char *base = lc->pl.buf.data;
        struct rn_event *e = (struct rn_event *)base;
        if (n) memcpy(base + items_off, lc->items, n * sizeof(struct rn_str));
        uint64_t *ids = (uint64_t *)(base + ids_off);
        for (uint32_t j = 0; j < n; j++)
            ids[j] = rn_hash64(base + lc->items[j].off, lc->items[j].len);
        if (lc->n_props) memcpy(base + props_off, lc->props, n * sizeof(double));
        if (n_ctx) {
            double *cv = (double *)(base + ctx_off);
            uint32_t missing = 0;
            for (uint32_t j = 0; j < n_ctx; j++) {
                if (lc->ctx_seen & (1u << j)) {
                    cv[j] = lc->ctx[j];
                } else {
                    cv[j] = NAN;
                    missing++;
                }
            }
            if (missing) rn_op_metric_add(op, RN_LC_M_CTX_MISSING, missing);
            e->n_context = n_ctx;
            e->context_off = ctx_off;
        }
        e->ts = lc->ts;
        e->offset = raw->offset;
        e->kind = (uint8_t)lc->kind;
        e->n_items = n;
        e->items_off = items_off;
        e->ids_off = ids_off;
        e->props_off = props_off;
        e->user_id = rn_hash64(base + e->user.off, e->user.len);
        e->request_id = rn_hash64(base + e->request.off, e->request.len);
        e->item_id = e->item.len ? rn_hash64(base + e->item.off, e->item.len) : 0;
        if (lc->seen & (1u << RN_F_AMOUNT)) {
            e->flags |= RN_EVENT_HAS_AMOUNT;
            e->amount = lc->amount;
        }
        if (lc->seen & (1u << RN_F_MODEL_VERSION)) {
            e->flags |= RN_EVENT_HAS_MODEL_VERSION;
            e->model_version = lc->model_version;
        }
        if (lc->n_props) e->flags |= RN_EVENT_HAS_PROPENSITIES;
        if (lc->seen & (1u << RN_F_EVENT_ID)) {
            e->flags |= RN_EVENT_HAS_ID;
            e->event_id_hash = rn_hash64(base + e->event_id.off, e->event_id.len);
        }
        counts[lc->kind < RN_EV_KIND_MAX ? lc->kind : RN_EV_KIND_MAX]++;
        rn_emit_payload(out, 0, e->ts, 0, &lc->pl);
    }
    for (int k = 0; k < RN_EV_KIND_MAX; k++)
        if (counts[k]) rn_op_metric_add(op, k, counts[k]);
    if (counts[RN_EV_KIND_MAX]) rn_op_metric_add(op, RN_LC_M_OTHER, counts[RN_EV_KIND_MAX]);
    return 0;
}

static const struct rn_port_decl rn_lc_out[] = {
    {NULL, "event", "Valid events, typed."},
    {"dead_letter", "dead_letter", "Rejected lines with reason and source offset."},
};

static const struct rn_type *const rn_lc_types[] = {&rn_type_event, NULL};

const struct rn_op_type rn_op_log_collector = {
    RN_OP_TYPE_HEAD,
    .name = "log_collector",
    .description = "Parses and validates JSON event lines into typed events; bad lines go to "
                   "`dead_letter` with the reason and source offset.",
    .kind = RN_KIND_OPERATOR,
    .flags = RN_OP_EVENT_TIME,
    .config = rn_lc_keys,
    .ctx_size = sizeof(struct rn_lc_cfg),
    .in_type = "raw",
    .outputs = rn_lc_out,
    .n_outputs = 2,
    .metrics = rn_lc_metrics,
    .init_types = rn_lc_init_types,
    .types = rn_lc_types,
    .open = rn_lc_open,
    .process = rn_lc_process,
    .close = rn_lc_close,
};
