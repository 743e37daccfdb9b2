/*
 * experience_collector.c — `experience_collector`: labelled lists into RL
 * transitions (s, a, r, s', done), per user, for the learner.
 *
 * Keyed by user. Keyed state holds the user's behaviour history (the last
 * `history` items the user clicked, paid for or gave other feedback on, with
 * the impression time) and the user's previous list, waiting for its
 * successor. For each `sample` (in impression-time order per user, as
 * online_joiner emits them):
 *
 *   s       the history before the list (and the mean embedding of its items)
 *   a       the displayed list: items, positions, logging propensities
 *   r       per-item rewards (and their sum) from the joiner
 *   s'      the history at the user's next list (it includes this list's
 *           feedback)
 *   done    1 when the next list came more than `session_gap` later, or when
 *           none came: the watermark passed impression + session_gap +
 *           label_delay (label_delay: how late the joiner emits a list, its
 *           window plus allowed lateness) without one.
 *
 * Context: when samples carry their request's context values (the job's
 * context_fields), s carries the list's and s' the next list's; a transition
 * that ends the session repeats s's values in s' (s' is not bootstrapped from).
 *
 * Item embeddings come from a table loaded at start (`embeddings`: lines of
 * `item_id v1 v2 ... vD`); an item not in the table is counted
 * (`missing_embeddings`) and left out of the mean, and each state says how
 * many of its items were missing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_model.h"
#include "rn_operator.h"
#include "rn_sample.h"
#include "rn_state.h"

struct rn_xc_cfg {
    int64_t history, session_gap, label_delay;
    const char *embeddings;
};

static const struct rn_config_key rn_xc_keys[] = {
    {"history", RN_CT_INT, "10", "items", offsetof(struct rn_xc_cfg, history),
     "How many of the user's most recent feedback items make up the state.", NULL, 0, 1, 1000},
    {"session_gap", RN_CT_DURATION, "30m", "ms", offsetof(struct rn_xc_cfg, session_gap),
     "A next list more than this much later (event time) ends the session: done = 1.", NULL, 0, 1,
     (int64_t)1 << 50},
    {"label_delay", RN_CT_DURATION, "30m", "ms", offsetof(struct rn_xc_cfg, label_delay),
     "How long after a list's impression its sample can still arrive (the joiner's window + "
     "allowed_lateness): waited for before deciding that no next list came.",
     NULL, 0, 0, (int64_t)1 << 50},
    {"embeddings", RN_CT_STRING, NULL, NULL, offsetof(struct rn_xc_cfg, embeddings),
     "Item-embedding table: one line per item, `item_id v1 ... vD`, whitespace separated "
     "('#' starts a comment). Without it, states carry no vector.",
     NULL, 0, 0, 0},
    RN_CONFIG_END,
};

static int rn_xc_init(void *ctx, const struct rn_cfg_node *node, char *errbuf, size_t errlen)
{
    (void)ctx;
    (void)node;
    (void)errbuf;
    (void)errlen;
    return 0;
}

/* ---- state --------------------------------------------------------------------------
 * history: n entries of struct rn_xc_hist, then their names.
 * pending: struct rn_xc_pending, the sample's bytes, the history before it. */

struct rn_xc_hist {
    uint64_t item_id;
    int64_t ts;
    uint32_t kind, name_len;
};

struct rn_xc_pending {
    int64_t impression_ts;
    uint32_t sample_len, hist_len;
};

struct rn_xc {
    struct rn_state *history, *pending;
    struct rn_embed *emb; /* the shared table (rn_embed_acquire); NULL: none */
    uint32_t dim;
    struct rn_buf hist, hist_new, pend;
    struct rn_payload pl;
};

enum { M_EXPERIENCES, M_TERMINAL, M_MISSING, M_OUT_OF_ORDER };
static const char *const rn_xc_metrics[] = {"experiences", "sessions_ended", "missing_embeddings",
                                            "out_of_order", NULL};
static const struct rn_metric_ratio rn_xc_ratios[] = {
    {"mean_session_length", M_EXPERIENCES, M_TERMINAL, 1.0},
    {NULL, 0, 0, 0},
};

static int rn_xc_open(struct rn_op *op)
{
    /* The table is loaded when the job opens (the data may be written after
     * the job was validated), once per process: rn_embed_acquire shares it. */
    const struct rn_xc_cfg *c = rn_op_ctx(op);
    struct rn_xc *x = rn_xcalloc(1, sizeof *x);
    rn_op_set_local(op, x);
    if (c->embeddings && c->embeddings[0]) {
        char err[512];
        x->emb = rn_embed_acquire(c->embeddings, err, sizeof err);
        if (!x->emb) {
            rn_op_errorf(op, "%s", err);
            return RN_EIO;
        }
        x->dim = rn_embed_dim(x->emb);
    }
    x->history = rn_state_value(op, "history");
    x->pending = rn_state_value(op, "pending");
    return x->history && x->pending ? 0 : RN_ESTATE;
}

static void rn_xc_close(struct rn_op *op)
{
    struct rn_xc *x = rn_op_local(op);
    if (!x) return;
    rn_embed_release(x->emb);
    rn_buf_free(&x->hist);
    rn_buf_free(&x->hist_new);
    rn_buf_free(&x->pend);
    rn_buf_free(&x->pl.buf);
    free(x);
    rn_op_set_local(op, NULL);
}

/* The current key's value of st into `into` (empty when absent); 0, or the
 * state error. */
static int rn_xc_get(struct rn_state *st, struct rn_buf *into)
{
    const void *v;
    size_t len;
    rn_buf_reset(into);
    int rc = rn_value_get(st, 0, &v, &len);
    if (rc == 0) rn_buf_append(into, v, len);
    return rc == RN_ENOENT ? 0 : rc;
}

/* Number of entries in a history blob: entries come first, names after. */
static uint32_t rn_xc_hist_count(const char *h, size_t len)
{
    uint32_t n = 0;
    size_t names = 0;
    while ((n + 1) * sizeof(struct rn_xc_hist) + names <= len) {
        struct rn_xc_hist e;
        memcpy(&e, h + n * sizeof e, sizeof e);
        names += e.name_len;
        n++;
        if (n * sizeof e + names == len) return n;
    }
    return 0;
}

/* Writes a state (history + mean embedding) into the payload. */
static struct rn_state_vec rn_xc_state(struct rn_op *op, struct rn_payload *pl, const char *h,
                                       size_t hlen)
{
    struct rn_state_vec sv;
    memset(&sv, 0, sizeof sv);
    uint32_t n = rn_xc_hist_count(h, hlen);
    const char *names = h + n * sizeof(struct rn_xc_hist);
    struct rn_str *strs = rn_xmalloc((n ? n : 1) * sizeof *strs);
    size_t noff = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct rn_xc_hist e;
        memcpy(&e, h + i * sizeof e, sizeof e);
        strs[i] = rn_payload_str(pl, names + noff, e.name_len);
        noff += e.name_len;
    }
    sv.n_history = n;
    sv.history_off = rn_payload_reserve(pl, n * sizeof(struct rn_history_item));
    struct rn_xc *x = rn_op_local(op);
    sv.dim = x->dim;
    sv.vec_off = rn_payload_reserve(pl, x->dim * sizeof(float));
    struct rn_history_item *hi = (struct rn_history_item *)(pl->buf.data + sv.history_off);
    float *vec = (float *)(pl->buf.data + sv.vec_off);
    uint32_t found = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct rn_xc_hist e;
        memcpy(&e, h + i * sizeof e, sizeof e);
        hi[i].item_id = e.item_id;
        hi[i].ts = e.ts;
        hi[i].item = strs[i];
        hi[i].kind = e.kind;
        hi[i].pad = 0;
        if (!x->dim) continue;
        const float *v = rn_embed_get(x->emb, e.item_id);
        if (!v) {
            sv.n_missing++;
            rn_op_metric_add(op, M_MISSING, 1);
            continue;
        }
        for (uint32_t d = 0; d < x->dim; d++)
            vec[d] += v[d];
        found++;
    }
    if (found)
        for (uint32_t d = 0; d < x->dim; d++)
            vec[d] /= (float)found;
    free(strs);
    return sv;
}

/* Copies n context values into the payload; returns their offset. */
static uint32_t rn_xc_ctx(struct rn_payload *pl, const double *v, uint32_t n)
{
    if (!n) return 0;
    uint32_t off = rn_payload_reserve(pl, n * sizeof(double));
    memcpy(pl->buf.data + off, v, n * sizeof(double));
    return off;
}

/* Emits the transition of the pending list (x->pend), with s' = x->hist and
 * the context of `next` (borrowed; NULL: the pending list's own). */
static void rn_xc_emit(struct rn_op *op, struct rn_xc *x, int64_t next_ts, int done, int64_t ts,
                       const struct rn_sample *next, struct rn_emitter *out)
{
    struct rn_xc_pending p;
    memcpy(&p, x->pend.data, sizeof p);
    /* Copy the sample to an aligned place before reading it. */
    char *sbytes = rn_xmalloc(p.sample_len);
    memcpy(sbytes, x->pend.data + sizeof p, p.sample_len);
    const struct rn_sample *s = (const struct rn_sample *)sbytes;
    const char *hist_before = x->pend.data + sizeof p + p.sample_len;
    struct rn_payload *pl = &x->pl;
    rn_payload_begin(pl, sizeof(struct rn_experience));
    struct rn_str user = rn_payload_str(pl, rn_str_ptr(s, s->user), s->user.len);
    struct rn_str req = rn_payload_str(pl, rn_str_ptr(s, s->request), s->request.len);
    struct rn_state_vec sv = rn_xc_state(op, pl, hist_before, p.hist_len);
    struct rn_state_vec sv2 = rn_xc_state(op, pl, x->hist.data, x->hist.len);
    if (s->n_context) {
        const struct rn_sample *ns = next && next->n_context == s->n_context ? next : s;
        sv.n_context = sv2.n_context = s->n_context;
        sv.ctx_off = rn_xc_ctx(pl, rn_sample_context(s), s->n_context);
        sv2.ctx_off = rn_xc_ctx(pl, rn_sample_context(ns), s->n_context);
    }
    const struct rn_sample_item *items = rn_sample_items(s);
    struct rn_str *inames = rn_xmalloc((s->n_items ? s->n_items : 1) * sizeof *inames);
    for (uint32_t i = 0; i < s->n_items; i++)
        inames[i] = rn_payload_str(pl, rn_str_ptr(s, items[i].item), items[i].item.len);
    uint32_t items_off = rn_payload_reserve(pl, s->n_items * sizeof(struct rn_sample_item));
    uint32_t types_off = rn_payload_reserve(pl, s->n_types * 16);
    struct rn_sample_item *xi = (struct rn_sample_item *)(pl->buf.data + items_off);
    for (uint32_t i = 0; i < s->n_items; i++) {
        xi[i] = items[i];
        xi[i].item = inames[i];
    }
    memcpy(pl->buf.data + types_off, (const char *)s + s->types_off, s->n_types * 16);
    struct rn_experience *e = rn_payload_fixed(pl);
    e->ts = s->impression_ts;
    e->next_ts = next_ts;
    e->user_id = s->user_id;
    e->request_id = s->request_id;
    e->reward = s->reward;
    e->done = (uint32_t)done;
    e->n_items = s->n_items;
    e->user = user;
    e->request = req;
    e->s = sv;
    e->s_next = sv2;
    e->items_off = items_off;
    e->n_types = s->n_types;
    e->types_off = types_off;
    rn_emit_payload(out, 0, ts, s->user_id, pl);
    rn_op_metric_add(op, M_EXPERIENCES, 1);
    if (done) rn_op_metric_add(op, M_TERMINAL, 1);
    free(inames);
    free(sbytes);
}

/* Adds the list's feedback items to the history, keeping the last `history`. */
static void rn_xc_update_history(const struct rn_xc_cfg *c, struct rn_xc *x,
                                 const struct rn_sample *s)
{
    const char *h = x->hist.data;
    uint32_t n = rn_xc_hist_count(h, x->hist.len);
    struct rn_xc_hist *ents = rn_xmalloc((n + s->n_items + 1) * sizeof *ents);
    const char **names = rn_xmalloc((n + s->n_items + 1) * sizeof *names);
    const char *nm = h + n * sizeof(struct rn_xc_hist);
    for (uint32_t i = 0; i < n; i++) {
        memcpy(&ents[i], h + i * sizeof *ents, sizeof *ents);
        names[i] = nm;
        nm += ents[i].name_len;
    }
    uint32_t total = n;
    const struct rn_sample_item *it = rn_sample_items(s);
    for (uint32_t i = 0; i < s->n_items; i++) {
        int kind = -1;
        for (uint32_t t = 0; t < s->n_types && kind < 0; t++)
            if (it[i].counts[t]) kind = (int)t;
        if (kind < 0) continue;
        ents[total].item_id = it[i].item_id;
        ents[total].ts = s->impression_ts;
        ents[total].kind = (uint32_t)kind;
        ents[total].name_len = it[i].item.len;
        names[total] = rn_str_ptr(s, it[i].item);
        total++;
    }
    uint32_t from = total > (uint32_t)c->history ? total - (uint32_t)c->history : 0;
    rn_buf_reset(&x->hist_new);
    for (uint32_t i = from; i < total; i++)
        rn_buf_append(&x->hist_new, &ents[i], sizeof ents[i]);
    for (uint32_t i = from; i < total; i++)
        rn_buf_append(&x->hist_new, names[i], ents[i].name_len);
    free(ents);
    free(names);
    struct rn_buf tmp = x->hist;
    x->hist = x->hist_new;
    x->hist_new = tmp;
}

static int rn_xc_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    const struct rn_xc_cfg *c = rn_op_ctx(op);
    struct rn_xc *x = rn_op_local(op);
    for (uint32_t i = 0; i < in->n; i++) {
        const struct rn_record *r = &in->recs[i];
        const struct rn_sample *s = r->payload;
        rn_state_key(op, r->key);
        int rc;
        if ((rc = rn_xc_get(x->history, &x->hist)) || (rc = rn_xc_get(x->pending, &x->pend)))
            return rc;
        if (x->pend.len >= sizeof(struct rn_xc_pending)) {
            struct rn_xc_pending p;
            memcpy(&p, x->pend.data, sizeof p);
            if (s->impression_ts < p.impression_ts) rn_op_metric_add(op, M_OUT_OF_ORDER, 1);
            int done = s->impression_ts - p.impression_ts > c->session_gap;
            /* A list after the gap ends the session exactly as the timer would
             * have: the same time and the same record, whichever of the two
             * comes first (a sample may arrive ahead of the watermark), so
             * the output does not depend on arrival timing. */
            if (done)
                rn_xc_emit(op, x, -1, 1, p.impression_ts + c->session_gap + c->label_delay,
                           NULL, out);
            else
                rn_xc_emit(op, x, s->impression_ts, 0, r->ts, s, out);
        }
        /* This list waits for its successor, with the history before it. */
        struct rn_xc_pending p = {s->impression_ts, r->len, (uint32_t)x->hist.len};
        rn_buf_reset(&x->pend);
        rn_buf_append(&x->pend, &p, sizeof p);
        rn_buf_append(&x->pend, r->payload, r->len);
        rn_buf_append(&x->pend, x->hist.data, x->hist.len);
        if ((rc = rn_value_put(x->pending, 0, x->pend.data, x->pend.len))) return rc;
        rn_xc_update_history(c, x, s);
        if ((rc = rn_value_put(x->history, 0, x->hist.data, x->hist.len)) ||
            (rc = rn_timer_register(op, s->impression_ts + c->session_gap + c->label_delay, 0)))
            return rc;
    }
    return 0;
}

static int rn_xc_on_timer(struct rn_op *op, const struct rn_timer *t, struct rn_emitter *out)
{
    const struct rn_xc_cfg *c = rn_op_ctx(op);
    struct rn_xc *x = rn_op_local(op);
    int rc = rn_xc_get(x->pending, &x->pend);
    if (rc) return rc;
    if (x->pend.len < sizeof(struct rn_xc_pending)) return 0;
    struct rn_xc_pending p;
    memcpy(&p, x->pend.data, sizeof p);
    /* A timer of an earlier list: its successor came, nothing to do. */
    if (p.impression_ts + c->session_gap + c->label_delay != t->ts) return 0;
    if ((rc = rn_xc_get(x->history, &x->hist))) return rc;
    rn_xc_emit(op, x, -1, 1, t->ts, NULL, out);
    return rn_value_clear(x->pending, 0);
}

/* ---- the experience record type ------------------------------------------------------ */

static void rn_xc_json_float(struct rn_buf *out, float v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%.7g", (double)v);
    if (v != v)
        rn_buf_puts(out, "null");
    else
        rn_buf_append(out, tmp, (size_t)n);
}

static void rn_xc_state_json(struct rn_buf *out, const struct rn_experience *e,
                             const struct rn_state_vec *sv)
{
    RN_BUF_LIT(out, "{\"history\":[");
    const struct rn_history_item *h =
        (const struct rn_history_item *)((const char *)e + sv->history_off);
    for (uint32_t i = 0; i < sv->n_history; i++) {
        if (i) rn_buf_putc(out, ',');
        RN_BUF_LIT(out, "{\"item\":");
        rn_json_str(out, rn_str_ptr(e, h[i].item), h[i].item.len);
        RN_BUF_LIT(out, ",\"ts\":");
        rn_json_i64(out, h[i].ts);
        rn_buf_putc(out, '}');
    }
    rn_buf_putc(out, ']');
    if (sv->dim) {
        RN_BUF_LIT(out, ",\"vec\":[");
        const float *v = (const float *)((const char *)e + sv->vec_off);
        for (uint32_t d = 0; d < sv->dim; d++) {
            if (d) rn_buf_putc(out, ',');
            rn_xc_json_float(out, v[d]);
        }
        rn_buf_putc(out, ']');
        RN_BUF_LIT(out, ",\"missing\":");
        rn_json_u64(out, sv->n_missing);
    }
    if (sv->n_context)
        rn_context_json(out, (const double *)((const char *)e + sv->ctx_off), sv->n_context);
    rn_buf_putc(out, '}');
}

static void rn_experience_json(const struct rn_record *r, struct rn_buf *out)
{
    const struct rn_experience *e = r->payload;
    RN_BUF_LIT(out, "{\"user\":");
    rn_json_str(out, rn_str_ptr(e, e->user), e->user.len);
    RN_BUF_LIT(out, ",\"request\":");
    rn_json_str(out, rn_str_ptr(e, e->request), e->request.len);
    RN_BUF_LIT(out, ",\"ts\":");
    rn_json_i64(out, e->ts);
    RN_BUF_LIT(out, ",\"next_ts\":");
    if (e->next_ts >= 0)
        rn_json_i64(out, e->next_ts);
    else
        RN_BUF_LIT(out, "null");
    RN_BUF_LIT(out, ",\"done\":");
    rn_json_u64(out, e->done);
    RN_BUF_LIT(out, ",\"reward\":");
    rn_json_f64(out, e->reward);
    RN_BUF_LIT(out, ",\"s\":");
    rn_xc_state_json(out, e, &e->s);
    RN_BUF_LIT(out, ",\"a\":[");
    const struct rn_sample_item *it =
        (const struct rn_sample_item *)((const char *)e + e->items_off);
    for (uint32_t i = 0; i < e->n_items; i++) {
        if (i) rn_buf_putc(out, ',');
        RN_BUF_LIT(out, "{\"item\":");
        rn_json_str(out, rn_str_ptr(e, it[i].item), it[i].item.len);
        RN_BUF_LIT(out, ",\"position\":");
        rn_json_u64(out, it[i].position);
        if (it[i].propensity >= 0) {
            RN_BUF_LIT(out, ",\"propensity\":");
            rn_json_f64(out, it[i].propensity);
        }
        RN_BUF_LIT(out, ",\"reward\":");
        rn_json_f64(out, it[i].reward);
        rn_buf_putc(out, '}');
    }
    RN_BUF_LIT(out, "],\"s_next\":");
    rn_xc_state_json(out, e, &e->s_next);
    rn_buf_putc(out, '}');
}

static const char *const rn_experience_keys[] = {"user", NULL};

static uint64_t rn_experience_key_of(const struct rn_record *r, int field)
{
    (void)field;
    return ((const struct rn_experience *)r->payload)->user_id;
}

const struct rn_type rn_type_experience = {
    .name = "experience",
    .description = "a transition (s, a, r, s', done) of one user",
    .write_json = rn_experience_json,
    .key_fields = rn_experience_keys,
    .key_of = rn_experience_key_of,
};

static const struct rn_port_decl rn_xc_out[] = {
    {NULL, "experience",
     "One transition per labelled list, once its successor (or the end of "
     "the session) is known."},
};

const struct rn_op_type rn_op_experience_collector = {
    RN_OP_TYPE_HEAD,
    .name = "experience_collector",
    .description = "Turns each user's labelled lists into transitions (s, a, r, s', done) with "
                   "a behaviour-history state and item embeddings.",
    .kind = RN_KIND_OPERATOR,
    .flags = RN_OP_KEYED | RN_OP_STATEFUL | RN_OP_KEEPS_KEY,
    .config = rn_xc_keys,
    .ctx_size = sizeof(struct rn_xc_cfg),
    .in_type = "sample",
    .outputs = rn_xc_out,
    .n_outputs = 1,
    .metrics = rn_xc_metrics,
    .default_key = "user",
    .init = rn_xc_init,
    .open = rn_xc_open,
    .process = rn_xc_process,
    .close = rn_xc_close,
    .on_timer = rn_xc_on_timer,
    .ratios = rn_xc_ratios,
};
