/*
 * window.c — `window`: keyed event-time windows with aggregate functions,
 * and `window_count`, the counting case of it kept under its old name.
 *
 * Windows. Tumbling (`size`), sliding (`size`, `slide`: the windows
 * [start, start + size) with start a multiple of slide) or session (`session:
 * gap`: a key's records closer than gap to each other form one window, [first
 * ts, last ts + gap)). Aggregates are named functions of the records of a
 * window: count, sum/min/max/avg of a numeric field, the last N values of a
 * field (collect). Fields are read by name through the input type's field
 * table (rn_record.h), so any type that declares its fields can be windowed.
 *
 * State. All of it is keyed state, so checkpoints, restore and rescaling
 * cover it.
 *   - tumbling/sliding: value state "windows" (window_count: "counts"),
 *     namespace = window end: the accumulators, then the key's text (its
 *     length is the rest of the value). The accumulators are the count
 *     (int64) followed by one double per sum/min/max/avg aggregate, so for
 *     window_count (no aggregate but the count) the value is the count and
 *     the key: window_count's state format version 2, unchanged.
 *   - collect: value state "collect", namespace = window end: per collect
 *     aggregate, a uint32 count then that many {uint32 len, JSON text}.
 *   - sessions: value state "sessions", namespace 0: uint32 n, uint32 key
 *     length, the key's text padded to 8, then n sessions {start, end,
 *     uint32 emitted, uint32 pad, accumulators}.
 *
 * Firing and lateness (`window`). A window's result is emitted when the
 * watermark reaches its end - 1 (timer), and its state is kept until end - 1
 * + allowed_lateness (a second timer). A record that arrives in between (the
 * watermark already past end - 1) still updates the window, and the updated
 * result is emitted at once, marked "update": true. A record all of whose
 * windows are past end - 1 + allowed_lateness is late: counted and sent to
 * the `late` output unchanged. `window_count` keeps its own rule: one result
 * per window, at end - 1 + allowed_lateness.
 *
 * Output of `window`: a "window" record that carries its aggregates' names
 * (so the file sink writes them, and another window or map reads them by
 * name through the type's field_lookup).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_event.h"
#include "rn_operator.h"
#include "rn_state.h"

enum rn_win_fn { RN_WF_COUNT, RN_WF_SUM, RN_WF_MIN, RN_WF_MAX, RN_WF_AVG, RN_WF_COLLECT };
static const char *const rn_win_fn_names[] = {"count", "sum", "min", "max", "avg", "collect", NULL};

#define RN_WIN_MAX_AGGS 16
#define RN_WIN_NAME_MAX 48
#define RN_WIN_KEY_MAX 496 /* key text kept per window, as window_count always did */
#define RN_WIN_COUNT_LEN 8
#define RN_WIN_V1_KEY_OFF 12  /* window_count version 1: count, key_len (uint32), key */
#define RN_WIN_SESSION_HDR 24 /* start, end, emitted, pad */

struct rn_win_agg {
    enum rn_win_fn fn;
    char name[RN_WIN_NAME_MAX];
    char field[RN_WIN_NAME_MAX];
    uint32_t n;    /* collect: values kept */
    uint32_t slot; /* byte offset of its double in the accumulators (sum/min/max/avg) */
};

struct rn_win_cfg {
    int64_t size, slide, gap, allowed_lateness;
    const struct rn_cfg_node *aggregates;
    /* filled by init */
    int counting; /* window_count: one result at end - 1 + lateness, type window_count */
    uint32_t n_aggs;
    uint32_t n_collect;
    uint32_t acc_size; /* bytes of accumulators */
    struct rn_win_agg aggs[RN_WIN_MAX_AGGS];
};

struct rn_window {
    struct rn_state *windows, *collect, *sessions;
    int key_field;
    int type_id;         /* input type the fields below were resolved for; -1: none */
    int dynamic;         /* that type lays out each record itself: resolve per record */
    struct rn_field key; /* the key field, for its text */
    struct rn_field f[RN_WIN_MAX_AGGS];
    struct rn_buf scratch, scratch2;
};

/* ---- the "window" record ----------------------------------------------------------- */

#define RN_WIN_JSON 4 /* value kind beside enum rn_field_kind: a JSON text (collect) */

struct rn_win_rec {
    int64_t start, end;
    uint64_t key_id;
    struct rn_str key;
    uint32_t n;      /* aggregates that follow */
    uint32_t update; /* 1: re-emitted after a late record updated it */
};

struct rn_win_val {
    struct rn_str name;
    uint32_t kind; /* RN_FIELD_I64, RN_FIELD_F64 or RN_WIN_JSON */
    uint32_t pad;
    union {
        int64_t i;
        double d;
        struct rn_str json;
    } v;
};

static const struct rn_win_val *rn_win_vals(const struct rn_win_rec *w)
{
    return (const struct rn_win_val *)(w + 1);
}

/* Opens the JSON of a result of either type: {"key":...,"start":...,"end":... */
static void rn_win_json_head(struct rn_buf *out, const void *payload, struct rn_str key,
                             int64_t start, int64_t end)
{
    RN_BUF_LIT(out, "{\"key\":");
    rn_json_str(out, rn_str_ptr(payload, key), key.len);
    RN_BUF_LIT(out, ",\"start\":");
    rn_json_i64(out, start);
    RN_BUF_LIT(out, ",\"end\":");
    rn_json_i64(out, end);
}

static void rn_win_json(const struct rn_record *r, struct rn_buf *out)
{
    const struct rn_win_rec *w = r->payload;
    rn_win_json_head(out, w, w->key, w->start, w->end);
    const struct rn_win_val *v = rn_win_vals(w);
    for (uint32_t i = 0; i < w->n; i++) {
        rn_buf_putc(out, ',');
        rn_json_str(out, rn_str_ptr(w, v[i].name), v[i].name.len);
        rn_buf_putc(out, ':');
        if (v[i].kind == RN_FIELD_I64)
            rn_json_i64(out, v[i].v.i);
        else if (v[i].kind == RN_FIELD_F64)
            rn_json_f64(out, v[i].v.d);
        else
            rn_buf_append(out, rn_str_ptr(w, v[i].v.json), v[i].v.json.len);
    }
    if (w->update) RN_BUF_LIT(out, ",\"update\":true");
    rn_buf_putc(out, '}');
}

static const char *const rn_win_key_fields[] = {"key", "end", NULL};

static uint64_t rn_win_key_of(const struct rn_record *r, int field)
{
    const struct rn_win_rec *w = r->payload;
    return field == 0 ? w->key_id : rn_hash64(&w->end, sizeof w->end);
}

static const struct rn_field rn_win_fields[] = {
    {"key", RN_FIELD_STR, offsetof(struct rn_win_rec, key), NULL, "The key's text."},
    {"start", RN_FIELD_I64, offsetof(struct rn_win_rec, start), NULL, "Window start, ms."},
    {"end", RN_FIELD_I64, offsetof(struct rn_win_rec, end), NULL, "Window end, ms."},
    {NULL, 0, 0, NULL, NULL},
};

/* The aggregates, by the names the job gave them. */
static int rn_win_field_lookup(const struct rn_record *r, const char *name, struct rn_field *f)
{
    const struct rn_win_rec *w = r->payload;
    const struct rn_win_val *v = rn_win_vals(w);
    size_t nl = strlen(name);
    for (uint32_t i = 0; i < w->n; i++) {
        if (v[i].name.len != nl || memcmp(rn_str_ptr(w, v[i].name), name, nl) != 0) continue;
        *f = (struct rn_field){
            name, v[i].kind == RN_WIN_JSON ? RN_FIELD_STR : (enum rn_field_kind)v[i].kind,
            (uint32_t)((const char *)&v[i].v - (const char *)w), NULL, NULL};
        return 0;
    }
    return RN_ENOENT;
}

static const struct rn_type rn_type_window = {
    .name = "window",
    .description = "the aggregates of one key's records in one event-time window",
    .write_json = rn_win_json,
    .key_fields = rn_win_key_fields,
    .key_of = rn_win_key_of,
    .fields = rn_win_fields,
    .field_lookup = rn_win_field_lookup,
};

/* ---- the "window_count" record ------------------------------------------------------ */

struct rn_wc_record {
    int64_t start, end, count;
    uint64_t key_id;
    struct rn_str key;
    uint32_t pad;
};

static void rn_wc_json(const struct rn_record *r, struct rn_buf *out)
{
    const struct rn_wc_record *w = r->payload;
    rn_win_json_head(out, w, w->key, w->start, w->end);
    RN_BUF_LIT(out, ",\"count\":");
    rn_json_i64(out, w->count);
    rn_buf_putc(out, '}');
}

static const char *const rn_wc_key_fields[] = {"key", NULL};

static uint64_t rn_wc_key_of(const struct rn_record *r, int field)
{
    (void)field;
    return ((const struct rn_wc_record *)r->payload)->key_id;
}

static const struct rn_field rn_wc_fields[] = {
    {"key", RN_FIELD_STR, offsetof(struct rn_wc_record, key), NULL, "The key's text."},
    {"start", RN_FIELD_I64, offsetof(struct rn_wc_record, start), NULL, "Window start, ms."},
    {"end", RN_FIELD_I64, offsetof(struct rn_wc_record, end), NULL, "Window end, ms."},
    {"count", RN_FIELD_I64, offsetof(struct rn_wc_record, count), NULL, "Events counted."},
    {NULL, 0, 0, NULL, NULL},
};

static const struct rn_type rn_type_window_count = {
    .name = "window_count",
    .description = "a count of events per key and event-time window",
    .write_json = rn_wc_json,
    .key_fields = rn_wc_key_fields,
    .key_of = rn_wc_key_of,
    .fields = rn_wc_fields,
};

static const struct rn_type *const rn_win_types[] = {&rn_type_window, NULL};
static const struct rn_type *const rn_wc_types[] = {&rn_type_window_count, NULL};

/* ---- configuration ------------------------------------------------------------------ */

static const struct rn_config_key rn_win_keys[] = {
    {"size", RN_CT_DURATION, NULL, "ms", offsetof(struct rn_win_cfg, size),
     "Window length (tumbling and sliding windows).", NULL, 0, 1, (int64_t)1 << 50},
    {"slide", RN_CT_DURATION, NULL, "ms", offsetof(struct rn_win_cfg, slide),
     "Distance between window starts; default: size (tumbling windows). Must divide size.", NULL, 0,
     0, (int64_t)1 << 50},
    {"session", RN_CT_DURATION, NULL, "ms", offsetof(struct rn_win_cfg, gap),
     "Session windows with this gap, instead of size/slide: a key's records less than "
     "gap apart form one window [first ts, last ts + gap).",
     NULL, 0, 0, (int64_t)1 << 50},
    {"allowed_lateness", RN_CT_DURATION, "0ms", "ms", offsetof(struct rn_win_cfg, allowed_lateness),
     "How long after a window's end - 1 (in event time) its state is kept: a record "
     "arriving in that time updates it and the result is emitted again, marked update.",
     NULL, 0, 0, (int64_t)1 << 50},
    {"aggregates", RN_CT_NODE, NULL, NULL, offsetof(struct rn_win_cfg, aggregates),
     "A map of output name to function: count, sum(field), min(field), max(field), "
     "avg(field), collect(field, n) (the last n values, default 10). Default: "
     "{count: count}.",
     NULL, 0, 0, 0},
    RN_CONFIG_END,
};

static const struct rn_config_key rn_wc_keys[] = {
    {"size", RN_CT_DURATION, NULL, "ms", offsetof(struct rn_win_cfg, size), "Window length.", NULL,
     RN_CK_REQUIRED, 1, (int64_t)1 << 50},
    {"slide", RN_CT_DURATION, NULL, "ms", offsetof(struct rn_win_cfg, slide),
     "Distance between window starts; default: size (tumbling windows). Must divide size.", NULL, 0,
     0, (int64_t)1 << 50},
    {"allowed_lateness", RN_CT_DURATION, "0ms", "ms", offsetof(struct rn_win_cfg, allowed_lateness),
     "How long after a window's end (in event time) events still count; the window is "
     "emitted once, when the watermark passes end - 1 + allowed_lateness.",
     NULL, 0, 0, (int64_t)1 << 50},
    RN_CONFIG_END,
};

static int rn_win_check_slide(struct rn_win_cfg *c, const struct rn_cfg_node *node, char *errbuf,
                              size_t errlen)
{
    if (c->slide == 0) c->slide = c->size;
    if (c->slide > c->size || c->size % c->slide != 0) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, "slide"),
                    "'slide' (%lld ms) must divide 'size' (%lld ms)", (long long)c->slide,
                    (long long)c->size);
        return RN_EINVAL;
    }
    if (c->size / c->slide > 1000) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, "slide"),
                    "an event would fall into %lld windows; at most 1000",
                    (long long)(c->size / c->slide));
        return RN_EINVAL;
    }
    return 0;
}

static int rn_wc_init(void *ctx, const struct rn_cfg_node *node, char *errbuf, size_t errlen)
{
    struct rn_win_cfg *c = ctx;
    c->counting = 1;
    c->acc_size = RN_WIN_COUNT_LEN;
    return rn_win_check_slide(c, node, errbuf, errlen);
}

static void rn_win_trim(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t'))
        (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
}

/* Parses one aggregate, `name: fn(arg, arg)`, into a. */
static int rn_win_parse_agg(const struct rn_cfg_node *n, struct rn_win_agg *a, char *errbuf,
                            size_t errlen)
{
    if (n->kind != RN_CFG_SCALAR) {
        rn_cfg_errf(errbuf, errlen, n, "aggregate '%s' must be a function such as max(price)",
                    n->key);
        return RN_EINVAL;
    }
    if (strlen(n->key) >= RN_WIN_NAME_MAX) {
        rn_cfg_key_errf(errbuf, errlen, n, "aggregate name '%s' is longer than %d bytes", n->key,
                        RN_WIN_NAME_MAX - 1);
        return RN_EINVAL;
    }
    static const char *const reserved[] = {"key", "start", "end", "update", NULL};
    for (int i = 0; reserved[i]; i++)
        if (strcmp(n->key, reserved[i]) == 0) {
            rn_cfg_key_errf(errbuf, errlen, n,
                            "'%s' names a field of every window result; "
                            "call the aggregate otherwise",
                            n->key);
            return RN_EINVAL;
        }
    snprintf(a->name, sizeof a->name, "%s", n->key);
    const char *s = n->value, *paren = strchr(s, '(');
    const char *fe = paren ? paren : s + strlen(s);
    const char *fs = s;
    rn_win_trim(&fs, &fe);
    int fn = -1;
    for (int i = 0; rn_win_fn_names[i]; i++)
        if ((size_t)(fe - fs) == strlen(rn_win_fn_names[i]) &&
            memcmp(fs, rn_win_fn_names[i], (size_t)(fe - fs)) == 0)
            fn = i;
    if (fn < 0) {
        char word[64];
        snprintf(word, sizeof word, "%.*s", (int)(fe - fs), fs);
        const char *sug = rn_suggest(word, rn_win_fn_names, 6);
        rn_cfg_errf(errbuf, errlen, n, "unknown aggregate function '%s'%s%s%s", word,
                    sug ? " (did you mean '" : " (count, sum, min, max, avg, collect)",
                    sug ? sug : "", sug ? "'?)" : "");
        return RN_EINVAL;
    }
    a->fn = (enum rn_win_fn)fn;
    /* arguments */
    char args[2][RN_WIN_NAME_MAX];
    int nargs = 0;
    if (paren) {
        const char *close = strrchr(paren, ')');
        const char *tail = close ? close + 1 : NULL;
        if (!close || (tail && strspn(tail, " \t") != strlen(tail))) {
            rn_cfg_errf(errbuf, errlen, n, "'%s': expected %s(...) with a closing ')'", n->value,
                        rn_win_fn_names[fn]);
            return RN_EINVAL;
        }
        const char *p = paren + 1;
        while (p < close) {
            const char *comma = memchr(p, ',', (size_t)(close - p));
            const char *ae = comma ? comma : close, *as = p;
            rn_win_trim(&as, &ae);
            if (nargs == 2 || ae == as || (size_t)(ae - as) >= RN_WIN_NAME_MAX) {
                rn_cfg_errf(errbuf, errlen, n, "'%s': bad arguments", n->value);
                return RN_EINVAL;
            }
            snprintf(args[nargs++], RN_WIN_NAME_MAX, "%.*s", (int)(ae - as), as);
            p = comma ? comma + 1 : close;
        }
    }
    int want_min = fn == RN_WF_COUNT ? 0 : 1, want_max = fn == RN_WF_COUNT     ? 0
                                                         : fn == RN_WF_COLLECT ? 2
                                                                               : 1;
    if (nargs < want_min || nargs > want_max) {
        rn_cfg_errf(errbuf, errlen, n, "'%s': %s takes %s", n->value, rn_win_fn_names[fn],
                    fn == RN_WF_COUNT     ? "no argument"
                    : fn == RN_WF_COLLECT ? "a field and, optionally, how many values to keep"
                                          : "one field");
        return RN_EINVAL;
    }
    if (nargs) snprintf(a->field, sizeof a->field, "%s", args[0]);
    a->n = 10;
    if (nargs == 2) {
        int64_t v;
        if (rn_parse_i64(args[1], &v) || v < 1 || v > 1000) {
            rn_cfg_errf(errbuf, errlen, n, "'%s': the number of values must be 1..1000", n->value);
            return RN_EINVAL;
        }
        a->n = (uint32_t)v;
    }
    return 0;
}

static int rn_win_init(void *ctx, const struct rn_cfg_node *node, char *errbuf, size_t errlen)
{
    struct rn_win_cfg *c = ctx;
    if ((c->size != 0) == (c->gap != 0)) {
        rn_cfg_errf(errbuf, errlen, node,
                    c->size ? "give either 'size' (tumbling, sliding) or 'session', not both"
                            : "'window' needs 'size' (tumbling or sliding windows) or 'session'");
        return RN_EINVAL;
    }
    if (c->gap && c->slide) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, "slide"),
                    "'slide' does not apply to session windows");
        return RN_EINVAL;
    }
    if (c->size && rn_win_check_slide(c, node, errbuf, errlen)) return RN_EINVAL;
    c->acc_size = RN_WIN_COUNT_LEN;
    const struct rn_cfg_node *ag = c->aggregates;
    if (!ag) {
        c->n_aggs = 1;
        c->aggs[0] = (struct rn_win_agg){.fn = RN_WF_COUNT, .name = "count"};
        return 0;
    }
    if (ag->kind != RN_CFG_MAP || !ag->child) {
        rn_cfg_errf(errbuf, errlen, ag,
                    "'aggregates' must be a map of name to function, such as {bids: count}");
        return RN_EINVAL;
    }
    for (const struct rn_cfg_node *n = ag->child; n; n = n->next) {
        if (c->n_aggs == RN_WIN_MAX_AGGS) {
            rn_cfg_errf(errbuf, errlen, n, "at most %d aggregates", RN_WIN_MAX_AGGS);
            return RN_EINVAL;
        }
        struct rn_win_agg *a = &c->aggs[c->n_aggs];
        if (rn_win_parse_agg(n, a, errbuf, errlen)) return RN_EINVAL;
        for (uint32_t i = 0; i < c->n_aggs; i++)
            if (strcmp(c->aggs[i].name, a->name) == 0) {
                rn_cfg_key_errf(errbuf, errlen, n, "aggregate '%s' is named twice", a->name);
                return RN_EINVAL;
            }
        if (a->fn == RN_WF_COLLECT && c->gap) {
            rn_cfg_errf(errbuf, errlen, n, "collect is not available with session windows");
            return RN_EINVAL;
        }
        if (a->fn == RN_WF_SUM || a->fn == RN_WF_MIN || a->fn == RN_WF_MAX || a->fn == RN_WF_AVG) {
            a->slot = c->acc_size;
            c->acc_size += 8;
        }
        if (a->fn == RN_WF_COLLECT) c->n_collect++;
        c->n_aggs++;
    }
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static int rn_win_open(struct rn_op *op)
{
    const struct rn_win_cfg *c = rn_op_ctx(op);
    struct rn_window *w = rn_xcalloc(1, sizeof *w);
    rn_op_set_local(op, w);
    w->type_id = -1;
    w->key_field = rn_op_key_field(op);
    if (c->counting) {
        w->windows = rn_state_value(op, "counts");
        if (!w->windows) goto fail;
    } else if (c->gap) {
        if (!(w->sessions = rn_state_value(op, "sessions"))) goto fail;
    } else {
        if (!(w->windows = rn_state_value(op, "windows"))) goto fail;
        if (c->n_collect && !(w->collect = rn_state_value(op, "collect"))) goto fail;
    }
    return 0;
fail:
    rn_op_errorf(op, "keyed state is not available");
    return RN_ESTATE;
}

static void rn_win_close(struct rn_op *op)
{
    struct rn_window *w = rn_op_local(op);
    if (w) {
        rn_buf_free(&w->scratch);
        rn_buf_free(&w->scratch2);
        free(w);
    }
    rn_op_set_local(op, NULL);
}

/* Finds the key field and the aggregates' fields in r's type. */
static int rn_win_resolve(struct rn_op *op, struct rn_window *w, const struct rn_record *r)
{
    const struct rn_win_cfg *c = rn_op_ctx(op);
    const struct rn_type *t = rn_types_get(rn_op_types(op), r->type);
    if (!t) return RN_EINVAL;
    const char *kname = t->key_fields && w->key_field >= 0 ? t->key_fields[w->key_field] : NULL;
    if (!kname || rn_record_field(t, r, kname, &w->key)) w->key.kind = 0; /* no text */
    for (uint32_t i = 0; i < c->n_aggs; i++) {
        const struct rn_win_agg *a = &c->aggs[i];
        if (a->fn == RN_WF_COUNT) continue;
        if (rn_record_field(t, r, a->field, &w->f[i])) {
            rn_op_errorf(op, "aggregate '%s': record type '%s' has no field '%s'", a->name, t->name,
                         a->field);
            return RN_EINVAL;
        }
        if (a->fn != RN_WF_COLLECT && w->f[i].kind == RN_FIELD_STR) {
            rn_op_errorf(op, "aggregate '%s': field '%s' of '%s' is text; %s needs a number",
                         a->name, a->field, t->name, rn_win_fn_names[a->fn]);
            return RN_EINVAL;
        }
    }
    w->type_id = r->type;
    w->dynamic = t->field_lookup != NULL;
    return 0;
}

static int64_t rn_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Adds record payload p to accumulators acc (count already at 0 when new). */
static void rn_win_acc_add(const struct rn_win_cfg *c, const struct rn_window *w, char *acc,
                           const void *p)
{
    int64_t count;
    memcpy(&count, acc, sizeof count);
    for (uint32_t i = 0; i < c->n_aggs; i++) {
        const struct rn_win_agg *a = &c->aggs[i];
        if (a->fn == RN_WF_COUNT || a->fn == RN_WF_COLLECT) continue;
        double x = rn_field_f64(&w->f[i], p), cur;
        memcpy(&cur, acc + a->slot, sizeof cur);
        if (a->fn == RN_WF_SUM || a->fn == RN_WF_AVG)
            cur = count ? cur + x : x;
        else if (a->fn == RN_WF_MIN)
            cur = count == 0 || x < cur ? x : cur;
        else
            cur = count == 0 || x > cur ? x : cur;
        memcpy(acc + a->slot, &cur, sizeof cur);
    }
    count++;
    memcpy(acc, &count, sizeof count);
}

/* Merges accumulators b into a (sessions that a record joined). */
static void rn_win_acc_merge(const struct rn_win_cfg *c, char *a, const char *b)
{
    int64_t ca, cb;
    memcpy(&ca, a, 8);
    memcpy(&cb, b, 8);
    for (uint32_t i = 0; i < c->n_aggs; i++) {
        const struct rn_win_agg *g = &c->aggs[i];
        if (g->fn == RN_WF_COUNT || g->fn == RN_WF_COLLECT) continue;
        double x, y;
        memcpy(&x, a + g->slot, 8);
        memcpy(&y, b + g->slot, 8);
        if (g->fn == RN_WF_SUM || g->fn == RN_WF_AVG)
            x += y;
        else if (g->fn == RN_WF_MIN)
            x = y < x ? y : x;
        else
            x = y > x ? y : x;
        memcpy(a + g->slot, &x, 8);
    }
    ca += cb;
    memcpy(a, &ca, 8);
}

/* The key's text of record payload p, into out (at most RN_WIN_KEY_MAX bytes). */
static void rn_win_key_text(const struct rn_window *w, const void *p, struct rn_buf *out)
{
    size_t at = out->len;
    if (w->key.kind) rn_field_write_text(&w->key, p, out);
    if (out->len - at > RN_WIN_KEY_MAX) out->len = at + RN_WIN_KEY_MAX;
}

/* Appends the value of a collected field, as JSON, to list state of window ns. */
static int rn_win_collect_add(struct rn_op *op, struct rn_window *w, uint64_t ns, const void *p)
{
    const struct rn_win_cfg *c = rn_op_ctx(op);
    const void *v;
    size_t len;
    int rc = rn_value_get(w->collect, ns, &v, &len);
    if (rc && rc != RN_ENOENT) return rc;
    if (rc == RN_ENOENT) len = 0;
    struct rn_buf *nb = &w->scratch2;
    nb->len = 0;
    const char *q = v, *qe = (const char *)v + len;
    for (uint32_t i = 0; i < c->n_aggs; i++) {
        const struct rn_win_agg *a = &c->aggs[i];
        if (a->fn != RN_WF_COLLECT) continue;
        uint32_t cnt = 0;
        if (len) {
            if (qe - q < 4) return RN_ECORRUPT;
            memcpy(&cnt, q, 4);
            q += 4;
        }
        uint32_t keep = cnt < a->n ? cnt : a->n - 1, drop = cnt - keep;
        uint32_t newcnt = keep + 1;
        rn_buf_append(nb, &newcnt, 4);
        for (uint32_t j = 0; j < cnt; j++) {
            uint32_t el;
            if (qe - q < 4) return RN_ECORRUPT;
            memcpy(&el, q, 4);
            if ((size_t)(qe - q - 4) < el) return RN_ECORRUPT;
            if (j >= drop) rn_buf_append(nb, q, 4 + (size_t)el);
            q += 4 + el;
        }
        size_t at = nb->len;
        uint32_t el = 0;
        rn_buf_append(nb, &el, 4);
        rn_field_write_json(&w->f[i], p, nb);
        el = (uint32_t)(nb->len - at - 4);
        memcpy(nb->data + at, &el, 4);
    }
    return rn_value_put(w->collect, ns, nb->data, nb->len);
}

/* Emits the result of one window: acc (accumulators), key text, collect lists. */
static int rn_win_emit(struct rn_op *op, struct rn_emitter *out, uint64_t key, int64_t start,
                       int64_t end, const char *acc, const char *ktext, uint32_t klen, int update)
{
    const struct rn_win_cfg *c = rn_op_ctx(op);
    struct rn_window *w = rn_op_local(op);
    int64_t count;
    memcpy(&count, acc, sizeof count);
    if (c->counting) {
        struct rn_wc_record *rec = rn_emit(out, 0, end - 1, key, (uint32_t)(sizeof *rec + klen));
        *rec = (struct rn_wc_record){start, end, count, key, {sizeof *rec, klen}, 0};
        memcpy(rec + 1, ktext, klen);
        rn_op_metric_add(op, 0, 1);
        return 0;
    }
    const void *cv = NULL;
    size_t clen = 0;
    if (c->n_collect) {
        int rc = rn_value_get(w->collect, (uint64_t)end, &cv, &clen);
        if (rc && rc != RN_ENOENT) return rc;
        if (rc == RN_ENOENT) clen = 0;
    }
    struct rn_buf *b = &w->scratch;
    b->len = 0;
    size_t fixed = sizeof(struct rn_win_rec) + c->n_aggs * sizeof(struct rn_win_val);
    rn_buf_reserve(b, fixed);
    memset(b->data, 0, fixed);
    b->len = fixed;
    struct rn_win_rec h = {start, end, key, {0, klen}, c->n_aggs, (uint32_t)update};
    h.key.off = (uint32_t)b->len;
    rn_buf_append(b, ktext, klen);
    const char *q = cv, *qe = (const char *)cv + clen;
    for (uint32_t i = 0; i < c->n_aggs; i++) {
        const struct rn_win_agg *a = &c->aggs[i];
        struct rn_win_val v = {{(uint32_t)b->len, (uint32_t)strlen(a->name)}, RN_FIELD_F64, 0, {0}};
        rn_buf_append(b, a->name, v.name.len);
        double x = 0;
        if (a->slot) memcpy(&x, acc + a->slot, sizeof x);
        switch (a->fn) {
        case RN_WF_COUNT:
            v.kind = RN_FIELD_I64;
            v.v.i = count;
            break;
        case RN_WF_AVG:
            v.v.d = count ? x / (double)count : NAN;
            break;
        case RN_WF_COLLECT: {
            v.kind = RN_WIN_JSON;
            size_t at = b->len;
            rn_buf_putc(b, '[');
            uint32_t cnt = 0;
            if (qe - q >= 4) {
                memcpy(&cnt, q, 4);
                q += 4;
            }
            for (uint32_t j = 0; j < cnt; j++) {
                uint32_t el;
                if (qe - q < 4) return RN_ECORRUPT;
                memcpy(&el, q, 4);
                if ((size_t)(qe - q - 4) < el) return RN_ECORRUPT;
                if (j) rn_buf_putc(b, ',');
                rn_buf_append(b, q + 4, el);
                q += 4 + el;
            }
            rn_buf_putc(b, ']');
            v.v.json = (struct rn_str){(uint32_t)at, (uint32_t)(b->len - at)};
            break;
        }
        default:
            v.v.d = x;
        }
        memcpy(b->data + sizeof h + i * sizeof v, &v, sizeof v);
    }
    memcpy(b->data, &h, sizeof h);
    void *rec = rn_emit(out, 0, end - 1, key, (uint32_t)b->len);
    memcpy(rec, b->data, b->len);
    rn_op_metric_add(op, update ? 1 : 0, 1);
    return 0;
}

/* ---- tumbling and sliding windows ---------------------------------------------------- */

static int rn_win_add_fixed(struct rn_op *op, struct rn_window *w, const struct rn_record *r,
                            struct rn_emitter *out, int64_t wm, int *counted)
{
    const struct rn_win_cfg *c = rn_op_ctx(op);
    char buf[RN_WIN_COUNT_LEN + RN_WIN_MAX_AGGS * 8 + RN_WIN_KEY_MAX];
    int64_t ts = r->ts;
    int64_t last_start = rn_floor_div(ts, c->slide) * c->slide;
    for (int64_t start = last_start; start > ts - c->size; start -= c->slide) {
        int64_t end = start + c->size;
        int64_t clean = end - 1 + c->allowed_lateness;
        if (clean <= wm) continue; /* this window is gone */
        const void *v;
        size_t len;
        int rc = rn_value_get(w->windows, (uint64_t)end, &v, &len);
        if (rc == 0) {
            if (len < c->acc_size || len > sizeof buf) return RN_ECORRUPT;
            memcpy(buf, v, len);
        } else if (rc != RN_ENOENT) {
            return rc;
        } else {
            memset(buf, 0, c->acc_size);
            w->scratch.len = 0;
            rn_win_key_text(w, r->payload, &w->scratch);
            memcpy(buf + c->acc_size, w->scratch.data, w->scratch.len);
            len = c->acc_size + w->scratch.len;
            /* a window first seen after it would have fired gets no result timer:
             * its late update is emitted below */
            int64_t fire = c->counting ? clean : end - 1;
            if (fire > wm && (rc = rn_timer_register(op, fire, (uint64_t)end))) return rc;
            if (!c->counting && c->allowed_lateness &&
                (rc = rn_timer_register(op, clean, (uint64_t)end)))
                return rc;
        }
        rn_win_acc_add(c, w, buf, r->payload);
        if ((rc = rn_value_put(w->windows, (uint64_t)end, buf, len))) return rc;
        if (c->n_collect && (rc = rn_win_collect_add(op, w, (uint64_t)end, r->payload))) return rc;
        if (!c->counting && end - 1 <= wm) { /* fired already: a late update */
            if ((rc = rn_win_emit(op, out, r->key, start, end, buf, buf + c->acc_size,
                                  (uint32_t)(len - c->acc_size), 1)))
                return rc;
        }
        *counted = 1;
    }
    return 0;
}

static int rn_win_timer_fixed(struct rn_op *op, const struct rn_timer *t, struct rn_emitter *out)
{
    const struct rn_win_cfg *c = rn_op_ctx(op);
    struct rn_window *w = rn_op_local(op);
    int64_t end = (int64_t)t->ns;
    int64_t clean = end - 1 + c->allowed_lateness;
    const void *v;
    size_t len;
    int rc = rn_value_get(w->windows, t->ns, &v, &len);
    if (rc == RN_ENOENT) return 0;
    if (rc) return rc;
    if (len < c->acc_size) return RN_ECORRUPT;
    if (c->counting || t->ts == end - 1) {
        char acc[RN_WIN_COUNT_LEN + RN_WIN_MAX_AGGS * 8];
        char key[RN_WIN_KEY_MAX];
        uint32_t kl = (uint32_t)RN_MIN(len - c->acc_size, sizeof key);
        memcpy(acc, v, c->acc_size);
        memcpy(key, (const char *)v + c->acc_size, kl);
        if ((rc = rn_win_emit(op, out, t->key, end - c->size, end, acc, key, kl, 0))) return rc;
    }
    if (t->ts >= clean) {
        if (c->n_collect && (rc = rn_value_clear(w->collect, t->ns))) return rc;
        return rn_value_clear(w->windows, t->ns);
    }
    return 0;
}

/* ---- session windows ----------------------------------------------------------------- */

static size_t rn_win_sess_size(const struct rn_win_cfg *c)
{
    return RN_WIN_SESSION_HDR + c->acc_size;
}

/* Checks the session list of a key; fills its count and where the sessions start. */
static int rn_win_sess_parse(const struct rn_win_cfg *c, const void *v, size_t len, uint32_t *n,
                             uint32_t *klen, size_t *first)
{
    if (len < 8) return RN_ECORRUPT;
    memcpy(n, v, 4);
    memcpy(klen, (const char *)v + 4, 4);
    if (*klen > RN_WIN_KEY_MAX) return RN_ECORRUPT;
    *first = 8 + (((size_t)*klen + 7) & ~(size_t)7);
    if (*first > len || (len - *first) != (size_t)*n * rn_win_sess_size(c)) return RN_ECORRUPT;
    return 0;
}

static int rn_win_add_session(struct rn_op *op, struct rn_window *w, const struct rn_record *r,
                              struct rn_emitter *out, int64_t wm, int *counted)
{
    const struct rn_win_cfg *c = rn_op_ctx(op);
    int64_t ts = r->ts, L = c->allowed_lateness;
    if (ts + c->gap - 1 + L <= wm) return 0; /* late */
    const void *v;
    size_t len;
    int rc = rn_value_get(w->sessions, 0, &v, &len);
    if (rc && rc != RN_ENOENT) return rc;
    struct rn_buf *b = &w->scratch2;
    b->len = 0;
    uint32_t n = 0, klen = 0;
    size_t first, ss = rn_win_sess_size(c);
    if (rc == RN_ENOENT) {
        w->scratch.len = 0;
        rn_win_key_text(w, r->payload, &w->scratch);
        klen = (uint32_t)w->scratch.len;
        rn_buf_append(b, &n, 4);
        rn_buf_append(b, &klen, 4);
        rn_buf_append(b, w->scratch.data, klen);
        while (b->len % 8)
            rn_buf_putc(b, 0);
        first = b->len;
    } else {
        if ((rc = rn_win_sess_parse(c, v, len, &n, &klen, &first))) return rc;
        rn_buf_append(b, v, len);
    }
    /* the new record's own session, then every stored one it overlaps merged into it */
    char merged[RN_WIN_SESSION_HDR + RN_WIN_COUNT_LEN + RN_WIN_MAX_AGGS * 8];
    memset(merged, 0, ss);
    int64_t start = ts, end = ts + c->gap;
    uint32_t emitted = 0;
    rn_win_acc_add(c, w, merged + RN_WIN_SESSION_HDR, r->payload);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        char *s = b->data + first + (size_t)i * ss;
        int64_t s0, s1;
        uint32_t se;
        memcpy(&s0, s, 8);
        memcpy(&s1, s + 8, 8);
        memcpy(&se, s + 16, 4);
        if (s0 < ts + c->gap && ts < s1) { /* overlaps: merge, drop from the list */
            start = RN_MIN(start, s0);
            end = s1 > end ? s1 : end;
            emitted |= se;
            rn_win_acc_merge(c, merged + RN_WIN_SESSION_HDR, s + RN_WIN_SESSION_HDR);
            continue;
        }
        if (kept != i) memmove(b->data + first + (size_t)kept * ss, s, ss);
        kept++;
    }
    /* sessions stay ordered by start */
    uint32_t at = 0;
    while (at < kept) {
        int64_t s0;
        memcpy(&s0, b->data + first + (size_t)at * ss, 8);
        if (s0 > start) break;
        at++;
    }
    b->len = first + (size_t)kept * ss;
    rn_buf_reserve(b, ss);
    char *slot = b->data + first + (size_t)at * ss;
    memmove(slot + ss, slot, (size_t)(kept - at) * ss);
    b->len += ss;
    int late_update = end - 1 <= wm;
    if (late_update) emitted = 1;
    memcpy(merged, &start, 8);
    memcpy(merged + 8, &end, 8);
    memcpy(merged + 16, &emitted, 4);
    memcpy(slot, merged, ss);
    n = kept + 1;
    memcpy(b->data, &n, 4);
    if (end - 1 > wm && (rc = rn_timer_register(op, end - 1, 0))) return rc;
    if (L && (rc = rn_timer_register(op, end - 1 + L, 0))) return rc;
    if ((rc = rn_value_put(w->sessions, 0, b->data, b->len))) return rc;
    *counted = 1;
    if (late_update) {
        /* b is not touched by emitting (it uses scratch) */
        return rn_win_emit(op, out, r->key, start, end, merged + RN_WIN_SESSION_HDR, b->data + 8,
                           klen, 1);
    }
    return 0;
}

static int rn_win_timer_session(struct rn_op *op, const struct rn_timer *t, struct rn_emitter *out)
{
    const struct rn_win_cfg *c = rn_op_ctx(op);
    struct rn_window *w = rn_op_local(op);
    const void *v;
    size_t len;
    int rc = rn_value_get(w->sessions, 0, &v, &len);
    if (rc == RN_ENOENT) return 0;
    if (rc) return rc;
    uint32_t n, klen;
    size_t first, ss = rn_win_sess_size(c);
    if ((rc = rn_win_sess_parse(c, v, len, &n, &klen, &first))) return rc;
    struct rn_buf *b = &w->scratch2;
    b->len = 0;
    rn_buf_append(b, v, len);
    uint32_t kept = 0;
    int changed = 0;
    for (uint32_t i = 0; i < n; i++) {
        char *s = b->data + first + (size_t)i * ss;
        int64_t s0, s1;
        uint32_t se;
        memcpy(&s0, s, 8);
        memcpy(&s1, s + 8, 8);
        memcpy(&se, s + 16, 4);
        if (!se && s1 - 1 <= t->ts) {
            if ((rc = rn_win_emit(op, out, t->key, s0, s1, s + RN_WIN_SESSION_HDR, b->data + 8,
                                  klen, 0)))
                return rc;
            se = 1;
            memcpy(s + 16, &se, 4);
            changed = 1;
        }
        if (s1 - 1 + c->allowed_lateness <= t->ts) {
            changed = 1;
            continue;
        }
        if (kept != i) memmove(b->data + first + (size_t)kept * ss, s, ss);
        kept++;
    }
    if (!changed) return 0;
    if (!kept) return rn_value_clear(w->sessions, 0);
    memcpy(b->data, &kept, 4);
    return rn_value_put(w->sessions, 0, b->data, first + (size_t)kept * ss);
}

/* ---- callbacks ------------------------------------------------------------------------ */

static int rn_win_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    const struct rn_win_cfg *c = rn_op_ctx(op);
    struct rn_window *w = rn_op_local(op);
    int64_t wm = rn_op_watermark(op);
    for (uint32_t i = 0; i < in->n; i++) {
        const struct rn_record *r = &in->recs[i];
        int rc;
        if ((r->type != w->type_id || w->dynamic) && (rc = rn_win_resolve(op, w, r))) return rc;
        rn_state_key(op, r->key);
        int counted = 0;
        rc = c->gap ? rn_win_add_session(op, w, r, out, wm, &counted)
                    : rn_win_add_fixed(op, w, r, out, wm, &counted);
        if (rc) return rc;
        if (!counted) {
            rn_op_count_late(op, 1);
            rn_emit_copy(out, 1, r);
        }
    }
    return 0;
}

static int rn_win_on_timer(struct rn_op *op, const struct rn_timer *t, struct rn_emitter *out)
{
    const struct rn_win_cfg *c = rn_op_ctx(op);
    return c->gap ? rn_win_timer_session(op, t, out) : rn_win_timer_fixed(op, t, out);
}

/* window_count: restore of version 1 state: {count, key_len, key, padding} -> {count, key}. */
static int rn_wc_migrate(struct rn_op *op, const char *state, uint32_t from, const void *val,
                         size_t len, struct rn_buf *out)
{
    (void)op;
    if (from != 1 || strcmp(state, "counts") != 0) return RN_EINVAL;
    uint32_t kl;
    if (len < RN_WIN_V1_KEY_OFF) return RN_ECORRUPT;
    memcpy(&kl, (const char *)val + RN_WIN_COUNT_LEN, sizeof kl);
    if (kl > len - RN_WIN_V1_KEY_OFF) return RN_ECORRUPT;
    rn_buf_append(out, val, RN_WIN_COUNT_LEN);
    rn_buf_append(out, (const char *)val + RN_WIN_V1_KEY_OFF, kl);
    return 0;
}

static const struct rn_port_decl rn_win_out[] = {
    {NULL, "window",
     "One record per key and window when the window fires, and again "
     "for each late record that updates it."},
    {"late", "*", "Records that came after all their windows were gone."},
};

static const char *const rn_win_metrics[] = {"windows_fired", "late_updates", NULL};

const struct rn_op_type rn_op_window = {
    RN_OP_TYPE_HEAD,
    .name = "window",
    .description = "Aggregates records per key in tumbling, sliding or session event-time "
                   "windows (count, sum, min, max, avg, collect).",
    .kind = RN_KIND_OPERATOR,
    .flags = RN_OP_KEYED | RN_OP_STATEFUL,
    .config = rn_win_keys,
    .ctx_size = sizeof(struct rn_win_cfg),
    .in_type = "*",
    .outputs = rn_win_out,
    .n_outputs = 2,
    .metrics = rn_win_metrics,
    .types = rn_win_types,
    .init = rn_win_init,
    .open = rn_win_open,
    .process = rn_win_process,
    .close = rn_win_close,
    .on_timer = rn_win_on_timer,
    .state_version = 1,
};

static const struct rn_port_decl rn_wc_out[] = {
    {NULL, "window_count", "One record per key and window, when the window fires."},
    {"late", "event", "Events that came after all their windows fired."},
};

static const char *const rn_wc_metrics[] = {"windows_fired", NULL};

const struct rn_op_type rn_op_window_count = {
    RN_OP_TYPE_HEAD,
    .name = "window_count",
    .description = "Counts events per key in tumbling or sliding event-time windows "
                   "(the counting case of `window`).",
    .kind = RN_KIND_OPERATOR,
    .flags = RN_OP_KEYED | RN_OP_STATEFUL,
    .config = rn_wc_keys,
    .ctx_size = sizeof(struct rn_win_cfg),
    .in_type = "event",
    .outputs = rn_wc_out,
    .n_outputs = 2,
    .metrics = rn_wc_metrics,
    .default_key = "user",
    .types = rn_wc_types,
    .init = rn_wc_init,
    .open = rn_win_open,
    .process = rn_win_process,
    .close = rn_win_close,
    .on_timer = rn_win_on_timer,
    .state_version = 2,
    .state_version_min = 1,
    .migrate_state = rn_wc_migrate,
};
