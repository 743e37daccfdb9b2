/*
 * window_count.c — `window_count`: a keyed, event-time windowed count.
 *
 * Each event falls into the windows [start, start + size) with start a
 * multiple of `slide` (tumbling when slide = size, sliding when smaller).
 * Per key and window the count lives in keyed state (namespace = window end)
 * and an event-time timer is registered at end - 1 + allowed_lateness; when
 * the watermark passes it, the window is emitted once, as a `window_count`
 * record, and its state cleared.
 *
 * An event is late when every window it falls into has already fired (the
 * watermark is past end - 1 + allowed_lateness for each): it is counted and
 * sent to the `late` side output unchanged. Output is deterministic for a
 * given input order, so a job restored from a checkpoint emits exactly what
 * an uninterrupted run emits.
 *
 * State format (state_version). Version 2: a window's value is its count
 * (8 bytes) followed by the key's text, its length being the rest of the
 * value. Version 1 stored a raw struct {int64 count; uint32 key_len; key}
 * whose 4 bytes of tail padding went to disk uninitialised; rn_wc_migrate
 * turns a version 1 value into a version 2 one on restore.
 */
#include <stdlib.h>
#include <string.h>

#include "rn_event.h"
#include "rn_operator.h"
#include "rn_state.h"

struct rn_wc_cfg {
    int64_t size, slide, allowed_lateness;
};

struct rn_window_count {
    const struct rn_type *out_type;
    struct rn_state *counts;
    int key_field;
};

#define RN_WC_STATE_VERSION 2
#define RN_WC_COUNT_LEN 8   /* a value: count (int64), then the key as text */
#define RN_WC_V1_KEY_OFF 12 /* version 1: count (int64), key_len (uint32), key */

/* The `window_count` record. */
struct rn_wc_record {
    int64_t start, end, count;
    uint64_t key_id;
    struct rn_str key;
    uint32_t pad;
};

static void rn_wc_json(const struct rn_record *r, struct rn_buf *out)
{
    const struct rn_wc_record *w = r->payload;
    RN_BUF_LIT(out, "{\"key\":");
    rn_json_str(out, rn_str_ptr(w, w->key), w->key.len);
    RN_BUF_LIT(out, ",\"start\":");
    rn_json_i64(out, w->start);
    RN_BUF_LIT(out, ",\"end\":");
    rn_json_i64(out, w->end);
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

const struct rn_type rn_type_window_count = {
    .name = "window_count",
    .description = "a count of events per key and event-time window",
    .write_json = rn_wc_json,
    .key_fields = rn_wc_key_fields,
    .key_of = rn_wc_key_of,
};

static const struct rn_config_key rn_wc_keys[] = {
    {"size", RN_CT_DURATION, NULL, "ms", offsetof(struct rn_wc_cfg, size),
     "Window length.", NULL, RN_CK_REQUIRED, 1, (int64_t)1 << 50},
    {"slide", RN_CT_DURATION, NULL, "ms", offsetof(struct rn_wc_cfg, slide),
     "Distance between window starts; default: size (tumbling windows). Must divide size.",
     NULL, 0, 0, (int64_t)1 << 50},
    {"allowed_lateness", RN_CT_DURATION, "0ms", "ms", offsetof(struct rn_wc_cfg, allowed_lateness),
     "How long after a window's end (in event time) events still count; the window is "
     "emitted once, when the watermark passes end - 1 + allowed_lateness.",
     NULL, 0, 0, (int64_t)1 << 50},
    RN_CONFIG_END,
};

static int rn_wc_init(void *ctx, const struct rn_cfg_node *node, char *errbuf, size_t errlen)
{
    struct rn_wc_cfg *c = ctx;
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

static int rn_wc_open(struct rn_op *op)
{
    struct rn_window_count *w = rn_xcalloc(1, sizeof *w);
    rn_op_set_local(op, w);
    w->counts = rn_state_value(op, "counts");
    w->key_field = rn_op_key_field(op);
    if (!w->counts) {
        rn_op_errorf(op, "keyed state is not available");
        return RN_ESTATE;
    }
    return 0;
}

static void rn_wc_close(struct rn_op *op)
{
    free(rn_op_local(op));
    rn_op_set_local(op, NULL);
}

static int64_t rn_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int rn_wc_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    const struct rn_wc_cfg *c = rn_op_ctx(op);
    struct rn_window_count *w = rn_op_local(op);
    int64_t wm = rn_op_watermark(op);
    char buf[512];
    for (uint32_t i = 0; i < in->n; i++) {
        const struct rn_record *r = &in->recs[i];
        const struct rn_event *e = r->payload;
        int64_t ts = r->ts;
        rn_state_key(op, r->key);
        int64_t last_start = rn_floor_div(ts, c->slide) * c->slide;
        int counted = 0;
        for (int64_t start = last_start; start > ts - c->size; start -= c->slide) {
            int64_t end = start + c->size;
            int64_t fire = end - 1 + c->allowed_lateness;
            if (fire <= wm) continue; /* this window has fired already */
            const void *v;
            size_t len;
            int64_t count = 1;
            int rc = rn_value_get(w->counts, (uint64_t)end, &v, &len);
            if (rc == 0) {
                if (len < RN_WC_COUNT_LEN || len > sizeof buf) return RN_ECORRUPT;
                memcpy(buf, v, len);
                memcpy(&count, buf, sizeof count);
                count++;
                memcpy(buf, &count, sizeof count);
                rc = rn_value_put(w->counts, (uint64_t)end, buf, len);
                if (rc) return rc;
            } else if (rc != RN_ENOENT) {
                return rc;
            } else {
                struct rn_str ks = w->key_field == RN_EVENT_KEY_USER      ? e->user
                                   : w->key_field == RN_EVENT_KEY_REQUEST ? e->request
                                                                          : e->item;
                uint32_t kl = RN_MIN(ks.len, (uint32_t)(sizeof buf - RN_WC_COUNT_LEN));
                memcpy(buf, &count, sizeof count);
                memcpy(buf + RN_WC_COUNT_LEN, rn_str_ptr(e, ks), kl);
                if ((rc = rn_value_put(w->counts, (uint64_t)end, buf, RN_WC_COUNT_LEN + kl)) ||
                    (rc = rn_timer_register(op, fire, (uint64_t)end)))
                    return rc;
            }
            counted = 1;
        }
        if (!counted) {
            rn_op_count_late(op, 1);
            rn_emit_copy(out, 1, r);
        }
    }
    return 0;
}

static int rn_wc_on_timer(struct rn_op *op, const struct rn_timer *t, struct rn_emitter *out)
{
    const struct rn_wc_cfg *c = rn_op_ctx(op);
    struct rn_window_count *w = rn_op_local(op);
    const void *v;
    size_t len;
    int rc = rn_value_get(w->counts, t->ns, &v, &len);
    if (rc == RN_ENOENT) return 0;
    if (rc) return rc;
    if (len < RN_WC_COUNT_LEN) return RN_ECORRUPT;
    uint32_t kl = (uint32_t)(len - RN_WC_COUNT_LEN);
    int64_t end = (int64_t)t->ns;
    struct rn_wc_record *rec = rn_emit(out, 0, end - 1, t->key, (uint32_t)(sizeof *rec + kl));
    rec->start = end - c->size;
    rec->end = end;
    memcpy(&rec->count, v, sizeof rec->count);
    rec->key_id = t->key;
    rec->key = (struct rn_str){sizeof *rec, kl};
    rec->pad = 0;
    memcpy(rec + 1, (const char *)v + RN_WC_COUNT_LEN, kl);
    rn_op_metric_add(op, 0, 1);
    return rn_value_clear(w->counts, t->ns);
}

/* Restore of version 1 state: {count, key_len, key, padding} -> {count, key}. */
static int rn_wc_migrate(struct rn_op *op, const char *state, uint32_t from, const void *val,
                         size_t len, struct rn_buf *out)
{
    (void)op;
    if (from != 1 || strcmp(state, "counts") != 0) return RN_EINVAL;
    uint32_t kl;
    if (len < RN_WC_V1_KEY_OFF) return RN_ECORRUPT;
    memcpy(&kl, (const char *)val + RN_WC_COUNT_LEN, sizeof kl);
    if (kl > len - RN_WC_V1_KEY_OFF) return RN_ECORRUPT;
    rn_buf_append(out, val, RN_WC_COUNT_LEN);
    rn_buf_append(out, (const char *)val + RN_WC_V1_KEY_OFF, kl);
    return 0;
}

static const struct rn_port_decl rn_wc_out[] = {
    {NULL, "window_count", "One record per key and window, when the window fires."},
    {"late", "event", "Events that came after all their windows fired."},
};

static const char *const rn_wc_metrics[] = {"windows_fired", NULL};

const struct rn_op_type rn_op_window_count = {
    RN_OP_TYPE_HEAD,
    .name = "window_count",
    .description = "Counts events per key in tumbling or sliding event-time windows.",
    .kind = RN_KIND_OPERATOR,
    .flags = RN_OP_KEYED | RN_OP_STATEFUL,
    .config = rn_wc_keys,
    .ctx_size = sizeof(struct rn_wc_cfg),
    .in_type = "event",
    .outputs = rn_wc_out,
    .n_outputs = 2,
    .metrics = rn_wc_metrics,
    .default_key = "user",
    .init = rn_wc_init,
    .open = rn_wc_open,
    .process = rn_wc_process,
    .close = rn_wc_close,
    .on_timer = rn_wc_on_timer,
    .state_version = RN_WC_STATE_VERSION,
    .state_version_min = 1,
    .migrate_state = rn_wc_migrate,
};
