/*
 * online_joiner.c — `online_joiner`: impressions joined with the feedback
 * (clicks, pays, extra types) that follows them, into one labelled list per
 * request: the Online Joiner of the near-line RL data flow.
 *
 * Keyed by user (so a user's whole traffic stays on one thread); per request,
 * keyed state (namespace = request id) holds the displayed items and the
 * feedback seen. The rules, precisely (docs/operators.md repeats them):
 *
 *   window      an impression at time I opens [I, I + window): feedback for
 *               the same request and a displayed item, with event time < I +
 *               window, is counted. When the watermark passes
 *               I + window - 1 + allowed_lateness, one `sample` is emitted
 *               (event time I + window - 1) and the request is closed.
 *   early       feedback that arrives before its impression is kept (up to
 *               256 per request) and counted when the impression comes; if no
 *               impression comes by feedback time + window + allowed_lateness,
 *               it is dropped as unmatched (counted).
 *   duplicates  the same feedback event (same type, item and time) counts once;
 *               two distinct clicks on one item count twice.
 *   pay         counted with or without a click.
 *   not shown   feedback for an item the impression did not display is
 *               unmatched (counted, not in the sample).
 *   late        feedback for a closed request, or with time >= I + window, goes
 *               to the `late` output and is counted; a closed request is
 *               remembered for another `window` so that late feedback is
 *               recognised (after that it looks early, and ends unmatched).
 *   reward      per item r = sum over types of rewards[type] * count; the
 *               sample's reward is the sum over items.
 *   context     only when the job names context_fields (log_collector): a
 *               request event's context values are kept (state `contexts`,
 *               namespace = request id) until request time + 2 window +
 *               allowed_lateness, and the request's sample carries them
 *               (NaN when the request event was not seen in that time).
 *               Without context fields, request events are ignored as before.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_operator.h"
#include "rn_sample.h"
#include "rn_state.h"

#define RN_JR_MAX_FB 256
#define RN_JR_HAS_IMP 0x1
#define RN_JR_CLOSED 0x2
#define RN_JR_PREFETCH 8 /* records ahead whose request state is prefetched */

struct rn_joiner_cfg {
    int64_t window, allowed_lateness, retain_closed;
    const struct rn_cfg_node *rewards;
    double weight[RN_FEEDBACK_MAX]; /* by feedback type: kind - RN_EV_CLICK */
    uint32_t n_types;
    char type_names[RN_FEEDBACK_MAX][16];
};

/* The state of one request: this header, then n_items items, n_fb feedback
 * entries, then the item names, user and request strings. Flat, so the bytes
 * in the state store are the struct. An item is its id, propensity, name
 * (offset, length into the names) and one count per feedback type the job
 * had when the impression came: flags bits 8-15 hold that number
 * (RN_JR_NCNT), so a restored request keeps its layout if the job's types
 * change. State format version 2; version 1 (every item with the counts of
 * RN_FEEDBACK_MAX types, before its name) is migrated on restore. */
struct rn_jr {
    int64_t imp_ts, close_ts, last_fb_ts, model_version;
    uint32_t flags, n_items, n_fb, names_len;
    uint32_t user_off, user_len, req_off, req_len; /* into names */
};
#define RN_JR_NCNT_SHIFT 8
#define RN_JR_NCNT(flags) (((flags) >> RN_JR_NCNT_SHIFT) & 0xff)
struct rn_jr_item {
    uint64_t id;
    double propensity;
    uint32_t name_off, name_len;
    uint32_t counts[]; /* RN_JR_NCNT(flags), padded to 8 bytes */
};
/* A version 1 item. */
struct rn_jr_item_v1 {
    uint64_t id;
    double propensity;
    uint32_t counts[RN_FEEDBACK_MAX];
    uint32_t name_off, name_len;
};
struct rn_jr_fb {
    uint64_t item_id;
    int64_t ts;
    uint32_t type; /* kind - RN_EV_CLICK */
    uint32_t counted;
};

/* A closed request, kept `retain_closed` to recognise late feedback and a
 * second impression: its close time and flags (RN_JR_HAS_IMP | RN_JR_CLOSED),
 * 16 bytes instead of the header's 64. (Checkpoints of earlier versions hold
 * a closed request as a whole header with no items: read the same.) */
struct rn_jr_tomb {
    int64_t close_ts;
    uint32_t flags, pad;
};

/* The kept context of a request: this header, then n doubles. */
struct rn_jr_ctx {
    int64_t expire_ts;
    uint32_t n, pad;
};

struct rn_joiner {
    struct rn_state *req;
    struct rn_state *ctx; /* NULL when the job names no context fields */
    uint32_t n_context;
    struct rn_buf cur; /* the request being worked on */
};

enum { M_IMPRESSIONS, M_JOINED, M_LATE, M_UNMATCHED, M_DUPLICATES, M_SAMPLES, M_REWARD, M_OPEN };
static const char *const rn_joiner_metrics[] = {
    "impressions", "feedback_joined", "late_feedback", "unmatched_feedback", "duplicates",
    "samples",     "reward_sum_milli", "windows_opened", NULL};

static const struct rn_config_key rn_joiner_keys[] = {
    {"window", RN_CT_DURATION, "30m", "ms", offsetof(struct rn_joiner_cfg, window),
     "How long after an impression its feedback counts (event time).", NULL, 0, 1,
     (int64_t)1 << 50},
    {"allowed_lateness", RN_CT_DURATION, "0ms", "ms",
     offsetof(struct rn_joiner_cfg, allowed_lateness),
     "How long past the window's end (event time) to wait before emitting its sample.", NULL,
     0, 0, (int64_t)1 << 50},
    {"retain_closed", RN_CT_DURATION, NULL, "ms", offsetof(struct rn_joiner_cfg, retain_closed),
     "How long a closed request is remembered, to recognise late feedback; default: window.",
     NULL, 0, 0, (int64_t)1 << 50},
    {"rewards", RN_CT_NODE, NULL, NULL, offsetof(struct rn_joiner_cfg, rewards),
     "Reward weight per feedback type, e.g. { click: 1.0, pay: 5.0 }; types not listed weigh "
     "0. Default: click 1, pay 5.",
     NULL, 0, 0, 0},
    RN_CONFIG_END,
};

/* Load time: the feedback types are the job's event kinds from click on (a
 * log_collector before this operator declares extra ones). */
static int rn_joiner_init_types(void *ctx, struct rn_types *ts, const struct rn_cfg_node *node,
                                char *errbuf, size_t errlen)
{
    struct rn_joiner_cfg *c = ctx;
    if (!rn_cfg_get(node, "retain_closed")) c->retain_closed = c->window;
    int kinds = rn_event_kind_count(ts);
    c->n_types = (uint32_t)RN_MIN(kinds - RN_EV_CLICK, RN_FEEDBACK_MAX);
    for (uint32_t t = 0; t < c->n_types; t++)
        snprintf(c->type_names[t], sizeof c->type_names[t], "%s",
                 rn_event_kind_name(ts, (int)t + RN_EV_CLICK));
    if (!c->rewards) {
        c->weight[0] = 1.0;
        c->weight[1] = 5.0;
        return 0;
    }
    if (c->rewards->kind != RN_CFG_MAP) {
        rn_cfg_errf(errbuf, errlen, c->rewards, "'rewards' must be a map of type: weight");
        return RN_EINVAL;
    }
    for (const struct rn_cfg_node *r = c->rewards->child; r; r = r->next) {
        int k = rn_event_kind_find(ts, r->key, strlen(r->key));
        if (k < RN_EV_CLICK || k - RN_EV_CLICK >= (int)c->n_types) {
            rn_cfg_key_errf(errbuf, errlen, r,
                            "'%s' is not a feedback type (click, pay, or one listed in a "
                            "log_collector's feedback_types, defined before this operator)",
                            r->key);
            return RN_EINVAL;
        }
        double w;
        if (r->kind != RN_CFG_SCALAR || rn_parse_f64(r->value, &w)) {
            rn_cfg_errf(errbuf, errlen, r, "reward weight of '%s' must be a number", r->key);
            return RN_EINVAL;
        }
        c->weight[k - RN_EV_CLICK] = w;
    }
    return 0;
}

static int rn_joiner_open(struct rn_op *op)
{
    struct rn_joiner *j = rn_xcalloc(1, sizeof *j);
    rn_op_set_local(op, j);
    j->req = rn_state_value(op, "requests");
    if (!j->req) return RN_ESTATE;
    j->n_context = rn_context_field_count(rn_op_types(op));
    if (j->n_context) {
        j->ctx = rn_state_value(op, "contexts");
        if (!j->ctx) return RN_ESTATE;
    }
    return 0;
}

static void rn_joiner_close(struct rn_op *op)
{
    struct rn_joiner *j = rn_op_local(op);
    if (!j) return;
    rn_buf_free(&j->cur);
    free(j);
    rn_op_set_local(op, NULL);
}

/* Views into a request's state: the working copy (j->cur.data) or the
 * state's own bytes, changed in place (rn_value_edit). */
static inline struct rn_jr *jr_hdr(char *p)
{
    return (struct rn_jr *)p;
}
/* The size of one item with n counts. */
static inline size_t jr_item_size_n(uint32_t n)
{
    return (sizeof(struct rn_jr_item) + 4 * (size_t)n + 7) & ~(size_t)7;
}
static inline struct rn_jr_item *jr_item(char *p, uint32_t i)
{
    return (struct rn_jr_item *)(p + sizeof(struct rn_jr) +
                                 i * jr_item_size_n(RN_JR_NCNT(jr_hdr(p)->flags)));
}
static inline struct rn_jr_fb *jr_fb(char *p)
{
    return (struct rn_jr_fb *)jr_item(p, jr_hdr(p)->n_items);
}
static inline char *jr_names(char *p)
{
    return (char *)(jr_fb(p) + jr_hdr(p)->n_fb);
}

/* The header of the request state v (len bytes): a whole one, or a
 * tombstone's fields in an otherwise empty header. 0 when the bytes are
 * neither (taken as no request). */
static int jr_read_hdr(const void *v, size_t len, struct rn_jr *h)
{
    if (len >= sizeof *h) {
        memcpy(h, v, sizeof *h);
        return 1;
    }
    if (len != sizeof(struct rn_jr_tomb)) return 0;
    struct rn_jr_tomb t;
    memcpy(&t, v, sizeof t);
    memset(h, 0, sizeof *h);
    h->imp_ts = RN_TS_MIN;
    h->model_version = -1;
    h->close_ts = t.close_ts;
    h->flags = t.flags | RN_JR_HAS_IMP | RN_JR_CLOSED;
    return 1;
}

static int jr_find_item(char *p, uint64_t item_id)
{
    for (uint32_t i = 0; i < jr_hdr(p)->n_items; i++)
        if (jr_item(p, i)->id == item_id) return (int)i;
    return -1;
}

/* Counts one feedback entry against the displayed items, if it falls in. */
static void jr_count(struct rn_op *op, char *p, struct rn_jr_fb *fb)
{
    int i = jr_find_item(p, fb->item_id);
    if (i < 0 || fb->type >= RN_JR_NCNT(jr_hdr(p)->flags)) {
        /* Not displayed (or a type the impression's state has no count for:
         * one added to the job after the request opened). */
        rn_op_metric_add(op, M_UNMATCHED, 1);
    } else {
        jr_item(p, (uint32_t)i)->counts[fb->type]++;
        rn_op_metric_add(op, M_JOINED, 1);
    }
    fb->counted = 1;
}

static int rn_joiner_impression(struct rn_op *op, struct rn_joiner *j, const struct rn_record *r,
                                const struct rn_event *e, struct rn_emitter *out)
{
    const struct rn_joiner_cfg *c = rn_op_ctx(op);
    const void *v;
    size_t len;
    int rc = rn_value_get(j->req, e->request_id, &v, &len);
    if (rc < 0 && rc != RN_ENOENT) return rc;
    struct rn_jr hdr;
    if (rc == 0 && jr_read_hdr(v, len, &hdr)) {
        if (hdr.flags & RN_JR_HAS_IMP) {
            /* A second impression of the same request: the first one stands. */
            rn_op_metric_add(op, M_DUPLICATES, 1);
            if (hdr.flags & RN_JR_CLOSED) rn_emit_copy(out, 1, r);
            return 0;
        }
    } else {
        /* A new request (or unreadable short bytes, taken as none). */
        memset(&hdr, 0, sizeof hdr);
        hdr.imp_ts = RN_TS_MIN;
        hdr.model_version = -1;
    }
    rn_op_metric_add(op, M_IMPRESSIONS, 1);
    /* Written in place: header, items, the feedback that came first (it is
     * all the state held so far, right after the header), names. */
    const struct rn_str *items = rn_event_items(e);
    const uint64_t *ids = rn_event_item_ids(e);
    const double *props = (e->flags & RN_EVENT_HAS_PROPENSITIES) ? rn_event_props(e) : NULL;
    uint32_t n_fb = hdr.n_fb, n_items = e->n_items;
    hdr.flags = (hdr.flags & ~(0xffu << RN_JR_NCNT_SHIFT)) | RN_JR_HAS_IMP |
                (RN_MAX(c->n_types, 1u) << RN_JR_NCNT_SHIFT);
    hdr.imp_ts = e->ts;
    hdr.close_ts = e->ts + c->window;
    hdr.model_version = (e->flags & RN_EVENT_HAS_MODEL_VERSION) ? e->model_version : -1;
    hdr.n_items = n_items;
    size_t isz = jr_item_size_n(RN_JR_NCNT(hdr.flags));
    uint32_t names_len = e->user.len + e->request.len;
    for (uint32_t i = 0; i < n_items; i++) names_len += items[i].len;
    hdr.names_len = names_len;
    size_t fb_at = sizeof hdr + n_items * isz;
    char *p;
    if ((rc = rn_value_edit(j->req, e->request_id, fb_at + n_fb * sizeof(struct rn_jr_fb) +
                                                       names_len, (void **)&p)))
        return rc;
    if (n_fb) memmove(p + fb_at, p + sizeof hdr, n_fb * sizeof(struct rn_jr_fb));
    char *names = p + fb_at + n_fb * sizeof(struct rn_jr_fb);
    uint32_t off = 0;
    for (uint32_t i = 0; i < n_items; i++) {
        struct rn_jr_item *it = (struct rn_jr_item *)(p + sizeof hdr + i * isz);
        memset(it, 0, isz);
        it->id = ids[i];
        it->propensity = props ? props[i] : -1.0;
        it->name_off = off;
        it->name_len = items[i].len;
        memcpy(names + off, rn_str_ptr(e, items[i]), items[i].len);
        off += items[i].len;
    }
    hdr.user_off = off;
    hdr.user_len = e->user.len;
    memcpy(names + off, rn_str_ptr(e, e->user), e->user.len);
    off += e->user.len;
    hdr.req_off = off;
    hdr.req_len = e->request.len;
    memcpy(names + off, rn_str_ptr(e, e->request), e->request.len);
    memcpy(p, &hdr, sizeof hdr);
    /* Feedback that came first counts now, if it is inside the window. */
    struct rn_jr_fb *fb = jr_fb(p);
    for (uint32_t k = 0; k < n_fb; k++) {
        if (fb[k].counted) continue;
        if (fb[k].ts >= hdr.close_ts) {
            rn_op_metric_add(op, M_LATE, 1);
            fb[k].counted = 1;
        } else {
            jr_count(op, p, &fb[k]);
        }
    }
    rn_op_metric_add(op, M_OPEN, 1);
    return rn_timer_register(op, hdr.close_ts - 1 + c->allowed_lateness, e->request_id);
}

/* Feedback after its request's window: counted, and to the `late` port. */
static int jr_late(struct rn_op *op, const struct rn_record *r, struct rn_emitter *out)
{
    rn_op_metric_add(op, M_LATE, 1);
    rn_op_count_late(op, 1);
    rn_emit_copy(out, 1, r);
    return 0;
}

static int rn_joiner_feedback(struct rn_op *op, struct rn_joiner *j, const struct rn_record *r,
                              const struct rn_event *e, struct rn_emitter *out)
{
    const struct rn_joiner_cfg *c = rn_op_ctx(op);
    uint32_t type = (uint32_t)(e->kind - RN_EV_CLICK);
    if (type >= c->n_types) return 0;
    /* Checked on the stored bytes, then changed in place: no copy of the
     * request's state in and out per event. */
    const void *v;
    size_t len;
    int rc = rn_value_get(j->req, e->request_id, &v, &len);
    if (rc < 0 && rc != RN_ENOENT) return rc;
    if (rc == 0 && len == sizeof(struct rn_jr_tomb)) return jr_late(op, r, out); /* closed */
    if (rc == RN_ENOENT || len < sizeof(struct rn_jr)) len = 0;
    struct rn_jr_fb fb = {e->item_id, e->ts, type, 0};
    size_t at = sizeof(struct rn_jr); /* where the new entry goes: before the names */
    if (len) {
        char *old = (char *)v;
        const struct rn_jr *h = jr_hdr(old);
        const struct rn_jr_fb *all = jr_fb(old);
        for (uint32_t k = 0; k < h->n_fb; k++) {
            if (all[k].item_id == fb.item_id && all[k].ts == fb.ts && all[k].type == fb.type) {
                rn_op_metric_add(op, M_DUPLICATES, 1);
                return 0;
            }
        }
        if ((h->flags & RN_JR_CLOSED) || ((h->flags & RN_JR_HAS_IMP) && e->ts >= h->close_ts))
            return jr_late(op, r, out);
        if (h->n_fb >= RN_JR_MAX_FB) {
            rn_op_metric_add(op, M_UNMATCHED, 1);
            return 0;
        }
        at = (size_t)(jr_names(old) - old);
    }
    size_t old_len = len ? len : sizeof(struct rn_jr);
    char *p;
    if ((rc = rn_value_edit(j->req, e->request_id, old_len + sizeof fb, (void **)&p))) return rc;
    struct rn_jr *h = jr_hdr(p);
    if (!len) {
        /* A new request (or unreadable short bytes, taken as none). */
        memset(h, 0, sizeof *h);
        h->imp_ts = RN_TS_MIN;
        h->model_version = -1;
    }
    memmove(p + at + sizeof fb, p + at, old_len - at);
    memcpy(p + at, &fb, sizeof fb);
    h->n_fb++;
    if (h->flags & RN_JR_HAS_IMP) {
        jr_count(op, p, &jr_fb(p)[h->n_fb - 1]);
    } else {
        /* Early: wait for the impression, but not forever. */
        if (e->ts > h->last_fb_ts || h->n_fb == 1) h->last_fb_ts = e->ts;
        if ((rc = rn_timer_register(op, h->last_fb_ts + c->window - 1 + c->allowed_lateness,
                                    e->request_id)))
            return rc;
    }
    return 0;
}

/* A request event: keeps its context values for its sample. */
static int rn_joiner_request(struct rn_op *op, struct rn_joiner *j, const struct rn_event *e)
{
    const struct rn_joiner_cfg *c = rn_op_ctx(op);
    if (!j->ctx || e->n_context == 0) return 0;
    uint32_t n = RN_MIN(e->n_context, (uint32_t)RN_CONTEXT_MAX);
    char buf[sizeof(struct rn_jr_ctx) + RN_CONTEXT_MAX * sizeof(double)];
    struct rn_jr_ctx hdr = {e->ts + 2 * c->window + c->allowed_lateness, n, 0};
    memcpy(buf, &hdr, sizeof hdr);
    memcpy(buf + sizeof hdr, rn_event_context(e), n * sizeof(double));
    int rc = rn_value_put(j->ctx, e->request_id, buf, sizeof hdr + n * sizeof(double));
    return rc ? rc : rn_timer_register(op, hdr.expire_ts, e->request_id);
}

static int rn_joiner_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    struct rn_joiner *j = rn_op_local(op);
    for (uint32_t i = 0; i < in->n; i++) {
        const struct rn_record *r = &in->recs[i];
        const struct rn_event *e = r->payload;
        if (i + RN_JR_PREFETCH < in->n) {
            /* The request a later record works on: its cache memory loads meanwhile. */
            const struct rn_record *ahead = &in->recs[i + RN_JR_PREFETCH];
            const struct rn_event *ae = ahead->payload;
            if (ae->kind == RN_EV_IMPRESSION || ae->kind >= RN_EV_CLICK)
                rn_state_prefetch(j->req, ahead->key, ae->request_id);
        }
        rn_state_key(op, r->key);
        int rc = 0;
        if (e->kind == RN_EV_IMPRESSION)
            rc = rn_joiner_impression(op, j, r, e, out);
        else if (e->kind == RN_EV_REQUEST)
            rc = rn_joiner_request(op, j, e);
        else if (e->kind >= RN_EV_CLICK)
            rc = rn_joiner_feedback(op, j, r, e, out);
        if (rc) return rc;
    }
    return 0;
}

/* Emits the sample of the request whose state is at p (borrowed; a copy
 * when reading the context could move it); 0, or a state error (then nothing
 * is emitted). The sample is written straight into the output batch: its
 * size is known from the request, and the request's strings (item names,
 * user, request, contiguous in the state) are copied in one piece. */
static int rn_joiner_emit(struct rn_op *op, struct rn_joiner *j, char *p, struct rn_emitter *out)
{
    const struct rn_joiner_cfg *c = rn_op_ctx(op);
    const struct rn_jr *h = jr_hdr(p);
    /* The request's context, when the job carries one: NaN if never seen. */
    uint32_t n_ctx = j->n_context;
    double cv[RN_CONTEXT_MAX];
    if (n_ctx) {
        for (uint32_t k = 0; k < n_ctx; k++) cv[k] = NAN;
        const char *names = jr_names(p);
        const void *v;
        size_t len;
        struct rn_jr_ctx ch;
        int rc = rn_value_get(j->ctx, rn_hash64(names + h->req_off, h->req_len), &v, &len);
        if (rc < 0 && rc != RN_ENOENT) return rc;
        if (rc == 0 && len >= sizeof ch) {
            memcpy(&ch, v, sizeof ch);
            uint32_t m = RN_MIN(ch.n, n_ctx);
            if (len >= sizeof ch + m * sizeof(double))
                memcpy(cv, (const char *)v + sizeof ch, m * sizeof(double));
        }
    }
    const char *names = jr_names(p);
    uint32_t n = h->n_items, nc = RN_JR_NCNT(h->flags);
    uint32_t names_at = (uint32_t)((sizeof(struct rn_sample) + 7) & ~(size_t)7);
    uint32_t items_off = (names_at + h->names_len + 7) & ~7u;
    uint32_t types_off = items_off + n * (uint32_t)sizeof(struct rn_sample_item);
    uint32_t ctx_off = types_off + 16 * c->n_types;
    uint32_t total = ctx_off + n_ctx * (uint32_t)sizeof(double);
    uint64_t user_id = rn_hash64(names + h->user_off, h->user_len);
    char *d = rn_emit(out, 0, h->close_ts - 1, user_id, total);
    memcpy(d + names_at, names, h->names_len);
    memset(d + names_at + h->names_len, 0, items_off - names_at - h->names_len);
    struct rn_sample_item *si = (struct rn_sample_item *)(void *)(d + items_off);
    double total_reward = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct rn_jr_item *it = jr_item(p, i);
        struct rn_sample_item s = {.item_id = it->id,
                                   .item = {names_at + it->name_off, it->name_len},
                                   .position = i + 1,
                                   .propensity = it->propensity};
        double r = 0;
        for (uint32_t t = 0; t < c->n_types; t++) {
            s.counts[t] = t < nc ? it->counts[t] : 0;
            r += c->weight[t] * s.counts[t];
        }
        s.reward = r;
        total_reward += r;
        memcpy(&si[i], &s, sizeof s);
    }
    memcpy(d + types_off, c->type_names, 16 * (size_t)c->n_types);
    if (n_ctx) memcpy(d + ctx_off, cv, n_ctx * sizeof(double));
    struct rn_sample s = {.impression_ts = h->imp_ts,
                          .window_end = h->close_ts,
                          .user_id = user_id,
                          .request_id = rn_hash64(names + h->req_off, h->req_len),
                          .model_version = h->model_version,
                          .reward = total_reward,
                          .user = {names_at + h->user_off, h->user_len},
                          .request = {names_at + h->req_off, h->req_len},
                          .n_items = n,
                          .n_types = c->n_types,
                          .items_off = items_off,
                          .types_off = types_off,
                          .n_context = n_ctx,
                          .context_off = n_ctx ? ctx_off : 0};
    memset(d, 0, names_at);
    memcpy(d, &s, sizeof s);
    rn_op_metric_add(op, M_SAMPLES, 1);
    rn_op_metric_add(op, M_REWARD, (uint64_t)(total_reward * 1000.0 + 0.5));
    return 0;
}

static int rn_joiner_on_timer(struct rn_op *op, const struct rn_timer *t, struct rn_emitter *out)
{
    const struct rn_joiner_cfg *c = rn_op_ctx(op);
    struct rn_joiner *j = rn_op_local(op);
    if (j->ctx) {
        /* A kept context expires (the same timer may also close the request). */
        const void *v;
        size_t len;
        struct rn_jr_ctx ch;
        int rc = rn_value_get(j->ctx, t->ns, &v, &len);
        if (rc < 0 && rc != RN_ENOENT) return rc;
        if (rc == 0 && len >= sizeof ch) {
            memcpy(&ch, v, sizeof ch);
            if (t->ts >= ch.expire_ts && (rc = rn_value_clear(j->ctx, t->ns))) return rc;
        }
    }
    const void *v;
    size_t len;
    int rc = rn_value_get(j->req, t->ns, &v, &len);
    if (rc == RN_ENOENT) return 0;
    if (rc) return rc;
    struct rn_jr h;
    if (!jr_read_hdr(v, len, &h)) return 0; /* bytes too short to be a request: as if absent */
    if ((h.flags & RN_JR_HAS_IMP) && !(h.flags & RN_JR_CLOSED)) {
        if (t->ts != h.close_ts - 1 + c->allowed_lateness) return 0; /* an early-feedback timer */
        char *p = (char *)v;
        if (j->ctx) {
            /* Reading the context is a state call: work on a copy. */
            rn_buf_reset(&j->cur);
            rn_buf_append(&j->cur, v, len);
            p = j->cur.data;
        }
        if ((rc = rn_joiner_emit(op, j, p, out))) return rc;
        /* Keep a small tombstone to recognise late feedback, then forget
         * it: cleared by the runtime, unread (nothing changes a closed
         * request's state before). */
        struct rn_jr_tomb tomb = {h.close_ts, RN_JR_HAS_IMP | RN_JR_CLOSED, 0};
        if ((rc = rn_value_put(j->req, t->ns, &tomb, sizeof tomb))) return rc;
        return rn_value_clear_at(j->req, t->ns, t->ts + c->retain_closed);
    }
    if (h.flags & RN_JR_CLOSED) {
        /* A tombstone's timer of a checkpoint taken before its clear was
         * left to the runtime. */
        if (t->ts >= h.close_ts - 1 + c->allowed_lateness + c->retain_closed)
            return rn_value_clear(j->req, t->ns);
        return 0;
    }
    /* Only early feedback, and its impression never came. */
    if (t->ts >= h.last_fb_ts + c->window - 1 + c->allowed_lateness) {
        rn_op_metric_add(op, M_UNMATCHED, h.n_fb);
        return rn_value_clear(j->req, t->ns);
    }
    return 0;
}

/* Restore of version 1 state: requests' items get the version 2 layout (the
 * counts of the job's feedback types, after the name); contexts are as they
 * were. */
static int rn_joiner_migrate(struct rn_op *op, const char *state, uint32_t from, const void *val,
                             size_t len, struct rn_buf *out)
{
    if (from != 1) return RN_EINVAL;
    if (strcmp(state, "requests") != 0 || len < sizeof(struct rn_jr)) {
        rn_buf_append(out, val, len);
        return 0;
    }
    const struct rn_joiner_cfg *c = rn_op_ctx(op);
    struct rn_jr h;
    memcpy(&h, val, sizeof h);
    size_t old_items = (size_t)h.n_items * sizeof(struct rn_jr_item_v1);
    if (old_items > len - sizeof h) return RN_ECORRUPT;
    uint32_t ncnt = RN_MAX(RN_MIN(c->n_types, (uint32_t)RN_FEEDBACK_MAX), 1u);
    h.flags = (h.flags & ~(0xffu << RN_JR_NCNT_SHIFT)) | (ncnt << RN_JR_NCNT_SHIFT);
    rn_buf_append(out, &h, sizeof h);
    size_t isz = jr_item_size_n(ncnt);
    char item[sizeof(struct rn_jr_item) + 4 * RN_FEEDBACK_MAX];
    for (uint32_t i = 0; i < h.n_items; i++) {
        struct rn_jr_item_v1 v1;
        memcpy(&v1, (const char *)val + sizeof h + i * sizeof v1, sizeof v1);
        struct rn_jr_item *it = (struct rn_jr_item *)(void *)item;
        memset(item, 0, sizeof item);
        it->id = v1.id;
        it->propensity = v1.propensity;
        it->name_off = v1.name_off;
        it->name_len = v1.name_len;
        memcpy(it->counts, v1.counts, 4 * ncnt);
        rn_buf_append(out, item, isz);
    }
    /* Feedback entries and names follow unchanged. */
    rn_buf_append(out, (const char *)val + sizeof h + old_items, len - sizeof h - old_items);
    return 0;
}

/* ---- the sample record type -------------------------------------------------------- */

static void rn_sample_json(const struct rn_types *ts, const struct rn_record *r, struct rn_buf *out)
{
    const struct rn_sample *s = r->payload;
    RN_BUF_LIT(out, "{\"user\":");
    rn_json_str(out, rn_str_ptr(s, s->user), s->user.len);
    RN_BUF_LIT(out, ",\"request\":");
    rn_json_str(out, rn_str_ptr(s, s->request), s->request.len);
    RN_BUF_LIT(out, ",\"ts\":");
    rn_json_i64(out, s->impression_ts);
    RN_BUF_LIT(out, ",\"window_end\":");
    rn_json_i64(out, s->window_end);
    if (s->model_version >= 0) {
        RN_BUF_LIT(out, ",\"model_version\":");
        rn_json_i64(out, s->model_version);
    }
    RN_BUF_LIT(out, ",\"reward\":");
    rn_json_f64(out, s->reward);
    if (s->n_context) rn_context_json(ts, out, rn_sample_context(s), s->n_context);
    RN_BUF_LIT(out, ",\"items\":[");
    const struct rn_sample_item *it = rn_sample_items(s);
    for (uint32_t i = 0; i < s->n_items; i++) {
        if (i) rn_buf_putc(out, ',');
        RN_BUF_LIT(out, "{\"item\":");
        rn_json_str(out, rn_str_ptr(s, it[i].item), it[i].item.len);
        RN_BUF_LIT(out, ",\"position\":");
        rn_json_u64(out, it[i].position);
        if (it[i].propensity >= 0) {
            RN_BUF_LIT(out, ",\"propensity\":");
            rn_json_f64(out, it[i].propensity);
        }
        for (uint32_t t = 0; t < s->n_types; t++) {
            rn_buf_printf(out, ",\"%s\":", rn_sample_type(s, t));
            rn_json_u64(out, it[i].counts[t]);
        }
        RN_BUF_LIT(out, ",\"reward\":");
        rn_json_f64(out, it[i].reward);
        rn_buf_putc(out, '}');
    }
    RN_BUF_LIT(out, "]}");
}

static const char *const rn_sample_keys[] = {"user", "request", NULL};

static uint64_t rn_sample_key_of(const struct rn_record *r, int field)
{
    const struct rn_sample *s = r->payload;
    return field == 0 ? s->user_id : s->request_id;
}

static const struct rn_type rn_type_sample = {
    .name = "sample",
    .description = "a labelled list: one request's displayed items with their feedback and rewards",
    .key_fields = rn_sample_keys,
    .key_of = rn_sample_key_of,
    .write_json_job = rn_sample_json,
};

static const struct rn_type *const rn_joiner_types[] = {&rn_type_sample, NULL};

static const struct rn_port_decl rn_joiner_out[] = {
    {NULL, "sample", "One labelled list per request, when its window closes."},
    {"late", "event", "Feedback (and repeated impressions) after the request's window closed."},
};

static const struct rn_metric_ratio rn_joiner_ratios[] = {
    {"mean_reward_per_list", M_REWARD, M_SAMPLES, 0.001},
    {"feedback_per_list", M_JOINED, M_SAMPLES, 1.0},
    {NULL, 0, 0, 0},
};

const struct rn_op_type rn_op_online_joiner = {
    RN_OP_TYPE_HEAD,
    .name = "online_joiner",
    .description = "Joins each impression with its feedback within an event-time window into "
                   "one labelled list (`sample`) per request.",
    .kind = RN_KIND_OPERATOR,
    .flags = RN_OP_KEYED | RN_OP_STATEFUL | RN_OP_KEEPS_KEY,
    .config = rn_joiner_keys,
    .ctx_size = sizeof(struct rn_joiner_cfg),
    .in_type = "event",
    .outputs = rn_joiner_out,
    .n_outputs = 2,
    .metrics = rn_joiner_metrics,
    .default_key = "user",
    .types = rn_joiner_types,
    .init_types = rn_joiner_init_types,
    .open = rn_joiner_open,
    .process = rn_joiner_process,
    .close = rn_joiner_close,
    .on_timer = rn_joiner_on_timer,
    .ratios = rn_joiner_ratios,
    .state_version = 2,
    .state_version_min = 1,
    .migrate_state = rn_joiner_migrate,
};
