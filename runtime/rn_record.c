/*
 * rn_record.c — the record type registry, batches, payload building, and the
 * built-in record types (raw, dead_letter, event) with their JSON writers.
 *
 * The registry is filled once at start (rn_types_init, operators' own types
 * in rn_operators_init) before any job thread exists, and is read-only after;
 * no lock is needed to read it.
 */
#include "rn_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_event.h"
#include "rn_sample.h"
#include "rn_config.h"

#define RN_MAX_TYPES 64

static const struct rn_type *rn__types[RN_MAX_TYPES];
static int rn__n_types;

int rn_type_register(const struct rn_type *t)
{
    for (int i = 0; i < rn__n_types; i++)
        if (rn__types[i] == t || strcmp(rn__types[i]->name, t->name) == 0) return i;
    if (rn__n_types == RN_MAX_TYPES) return RN_EFULL;
    rn__types[rn__n_types] = t;
    return rn__n_types++;
}

int rn_type_find(const char *name)
{
    for (int i = 0; i < rn__n_types; i++)
        if (strcmp(rn__types[i]->name, name) == 0) return i;
    return RN_ENOENT;
}

const struct rn_type *rn_type_get(int id)
{
    return id >= 0 && id < rn__n_types ? rn__types[id] : NULL;
}

int rn_type_field(const struct rn_type *t, const char *field)
{
    if (!t->key_fields) return -1;
    for (int i = 0; t->key_fields[i]; i++)
        if (strcmp(t->key_fields[i], field) == 0) return i;
    return -1;
}

/* ---- batches --------------------------------------------------------------- */

struct rn_batch *rn_batch_create(uint32_t cap)
{
    struct rn_batch *b = rn_xcalloc(1, sizeof *b);
    b->cap = cap ? cap : RN_BATCH_RECORDS;
    b->recs = rn_xmalloc(sizeof *b->recs * b->cap);
    rn_arena_init(&b->arena, RN_BATCH_ARENA + 4096);
    return b;
}

void rn_batch_destroy(struct rn_batch *b)
{
    if (!b) return;
    rn_arena_destroy(&b->arena);
    free(b->recs);
    free(b);
}

void rn_batch_clear(struct rn_batch *b)
{
    b->n = 0;
    rn_arena_reset(&b->arena);
}

void *rn_batch_add(struct rn_batch *b, uint16_t type, int64_t ts, uint64_t key, uint32_t len)
{
    if (RN_UNLIKELY(b->n == b->cap)) {
        b->cap *= 2;
        b->recs = rn_xrealloc(b->recs, sizeof *b->recs * b->cap);
    }
    void *p = rn_arena_alloc(&b->arena, len);
    struct rn_record *r = &b->recs[b->n++];
    r->ts = ts;
    r->key = key;
    r->type = type;
    r->flags = 0;
    r->len = len;
    r->payload = p;
    return p;
}

void rn_batch_copy(struct rn_batch *b, const struct rn_record *r)
{
    void *p = rn_batch_add(b, r->type, r->ts, r->key, r->len);
    memcpy(p, r->payload, r->len);
    b->recs[b->n - 1].flags = r->flags;
}

/* ---- payload builder ------------------------------------------------------- */

void rn_payload_begin(struct rn_payload *p, size_t fixed_size)
{
    fixed_size = (fixed_size + 7) & ~(size_t)7;
    rn_buf_reset(&p->buf);
    rn_buf_reserve(&p->buf, fixed_size + 256);
    memset(p->buf.data, 0, fixed_size);
    p->buf.len = fixed_size;
    p->fixed = fixed_size;
}

struct rn_str rn_payload_str(struct rn_payload *p, const char *s, size_t n)
{
    struct rn_str r = {(uint32_t)p->buf.len, (uint32_t)n};
    rn_buf_append(&p->buf, s, n);
    return r;
}

uint32_t rn_payload_reserve(struct rn_payload *p, size_t n)
{
    size_t pad = (8 - (p->buf.len & 7)) & 7;
    rn_buf_reserve(&p->buf, pad + n);
    memset(p->buf.data + p->buf.len, 0, pad + n);
    p->buf.len += pad;
    uint32_t off = (uint32_t)p->buf.len;
    p->buf.len += n;
    return off;
}

/* ---- built-in types -------------------------------------------------------- */

static void rn__raw_json(const struct rn_record *r, struct rn_buf *out)
{
    const struct rn_raw *raw = r->payload;
    RN_BUF_LIT(out, "{\"offset\":");
    rn_json_i64(out, raw->offset);
    RN_BUF_LIT(out, ",\"split\":");
    rn_json_str(out, rn_str_ptr(raw, raw->split), raw->split.len);
    rn_buf_putc(out, ',');
    rn_json_kv_bytes(out, "line", rn_str_ptr(raw, raw->line), raw->line.len);
    rn_buf_putc(out, '}');
}

const struct rn_type rn_type_raw = {
    .name = "raw",
    .description = "one line of input with its source split and byte offset",
    .write_json = rn__raw_json,
};

static void rn__dead_letter_json(const struct rn_record *r, struct rn_buf *out)
{
    const struct rn_dead_letter *d = r->payload;
    RN_BUF_LIT(out, "{\"where\":");
    rn_json_str(out, rn_str_ptr(d, d->where), d->where.len);
    RN_BUF_LIT(out, ",\"offset\":");
    rn_json_i64(out, d->offset);
    RN_BUF_LIT(out, ",\"operator\":");
    rn_json_str(out, rn_str_ptr(d, d->op), d->op.len);
    RN_BUF_LIT(out, ",\"reason\":");
    rn_json_str(out, rn_str_ptr(d, d->reason), d->reason.len);
    RN_BUF_LIT(out, ",\"length\":");
    rn_json_u64(out, d->orig_len);
    rn_buf_putc(out, ',');
    rn_json_kv_bytes(out, "data", rn_str_ptr(d, d->data), d->data.len);
    rn_buf_putc(out, '}');
}

const struct rn_type rn_type_dead_letter = {
    .name = "dead_letter",
    .description = "a rejected record: where it came from, why, and its bytes",
    .write_json = rn__dead_letter_json,
};

/* Event kinds: the four of product.md, then extra feedback types a job
 * declares (log_collector's `feedback_types`), registered at load time,
 * before any thread runs, and read-only after. */
#define RN__MAX_KINDS 16
static char rn__kind_names[RN__MAX_KINDS][24] = {"request", "impression", "click", "pay"};
static int rn__n_kinds = RN_EV_KIND_MAX;

const char *rn_event_kind_name(int kind)
{
    return kind >= 0 && kind < rn__n_kinds ? rn__kind_names[kind] : "?";
}

int rn_event_kind_find(const char *s, size_t n)
{
    for (int i = 0; i < rn__n_kinds; i++)
        if (strlen(rn__kind_names[i]) == n && memcmp(rn__kind_names[i], s, n) == 0) return i;
    return -1;
}

int rn_event_kind_parse(const char *s, size_t n)
{
    return rn_event_kind_find(s, n);
}

int rn_event_kind_register(const char *name)
{
    int k = rn_event_kind_find(name, strlen(name));
    if (k >= 0) return k;
    if (rn__n_kinds == RN__MAX_KINDS || strlen(name) >= sizeof rn__kind_names[0]) return -1;
    snprintf(rn__kind_names[rn__n_kinds], sizeof rn__kind_names[0], "%s", name);
    return rn__n_kinds++;
}

int rn_event_kind_count(void)
{
    return rn__n_kinds;
}

static char rn__ctx_names[RN_CONTEXT_MAX][RN_CONTEXT_NAME_MAX];
static uint32_t rn__n_ctx;

int rn_context_fields_set(char names[][RN_CONTEXT_NAME_MAX], uint32_t n)
{
    if (n == 0) return 0;
    if (rn__n_ctx) {
        if (rn__n_ctx != n) return RN_EINVAL;
        for (uint32_t i = 0; i < n; i++)
            if (strcmp(rn__ctx_names[i], names[i]) != 0) return RN_EINVAL;
        return 0;
    }
    if (n > RN_CONTEXT_MAX) return RN_EINVAL;
    for (uint32_t i = 0; i < n; i++) memcpy(rn__ctx_names[i], names[i], RN_CONTEXT_NAME_MAX);
    rn__n_ctx = n;
    return 0;
}

void rn_context_fields_reset(void)
{
    rn__n_ctx = 0;
}

uint32_t rn_context_field_count(void)
{
    return rn__n_ctx;
}

const char *rn_context_field_name(uint32_t i)
{
    return i < rn__n_ctx ? rn__ctx_names[i] : "";
}

void rn_context_json(struct rn_buf *out, const double *v, uint32_t n)
{
    RN_BUF_LIT(out, ",\"context\":{");
    for (uint32_t i = 0; i < n; i++) {
        if (i) rn_buf_putc(out, ',');
        if (i < rn__n_ctx) {
            rn_json_str(out, rn__ctx_names[i], strlen(rn__ctx_names[i]));
        } else {
            char nm[16];
            snprintf(nm, sizeof nm, "c%u", i);
            rn_json_str(out, nm, strlen(nm));
        }
        rn_buf_putc(out, ':');
        rn_json_f64(out, v[i]);
    }
    rn_buf_putc(out, '}');
}

int rn_context_fields_parse(const struct rn_cfg_node *node, char names[][RN_CONTEXT_NAME_MAX],
                            uint32_t *n, char *errbuf, size_t errlen)
{
    *n = 0;
    if (!node) return 0;
    if (node->kind != RN_CFG_SEQ) {
        rn_cfg_errf(errbuf, errlen, node, "'context_fields' must be a list of names");
        return RN_EINVAL;
    }
    for (const struct rn_cfg_node *c = node->child; c; c = c->next) {
        if (c->kind != RN_CFG_SCALAR || !c->value[0] || strlen(c->value) >= RN_CONTEXT_NAME_MAX) {
            rn_cfg_errf(errbuf, errlen, c, "a context field is a name of 1 to %d bytes",
                        RN_CONTEXT_NAME_MAX - 1);
            return RN_EINVAL;
        }
        if (*n == RN_CONTEXT_MAX) {
            rn_cfg_errf(errbuf, errlen, c, "at most %d context fields", RN_CONTEXT_MAX);
            return RN_EINVAL;
        }
        for (uint32_t j = 0; j < *n; j++) {
            if (strcmp(names[j], c->value) == 0) {
                rn_cfg_errf(errbuf, errlen, c, "context field '%s' is listed twice", c->value);
                return RN_EINVAL;
            }
        }
        snprintf(names[(*n)++], RN_CONTEXT_NAME_MAX, "%s", c->value);
    }
    return 0;
}

static void rn__event_json(const struct rn_record *r, struct rn_buf *out)
{
    const struct rn_event *e = r->payload;
    rn_buf_reserve(out, 256);
    RN_BUF_LIT(out, "{\"type\":\"");
    rn_buf_puts(out, rn_event_kind_name(e->kind));
    RN_BUF_LIT(out, "\",\"ts\":");
    rn_json_i64(out, e->ts);
    RN_BUF_LIT(out, ",\"request\":");
    rn_json_str(out, rn_str_ptr(e, e->request), e->request.len);
    RN_BUF_LIT(out, ",\"user\":");
    rn_json_str(out, rn_str_ptr(e, e->user), e->user.len);
    if (e->kind == RN_EV_REQUEST || e->kind == RN_EV_IMPRESSION) {
        rn_buf_puts(out, e->kind == RN_EV_REQUEST ? ",\"candidates\":[" : ",\"items\":[");
        const struct rn_str *items = rn_event_items(e);
        for (uint32_t i = 0; i < e->n_items; i++) {
            if (i) rn_buf_putc(out, ',');
            rn_json_str(out, rn_str_ptr(e, items[i]), items[i].len);
        }
        rn_buf_putc(out, ']');
        if (e->flags & RN_EVENT_HAS_PROPENSITIES) {
            RN_BUF_LIT(out, ",\"propensities\":[");
            const double *p = rn_event_props(e);
            for (uint32_t i = 0; i < e->n_items; i++) {
                if (i) rn_buf_putc(out, ',');
                rn_json_f64(out, p[i]);
            }
            rn_buf_putc(out, ']');
        }
    } else {
        RN_BUF_LIT(out, ",\"item\":");
        rn_json_str(out, rn_str_ptr(e, e->item), e->item.len);
    }
    if (e->flags & RN_EVENT_HAS_MODEL_VERSION) {
        RN_BUF_LIT(out, ",\"model_version\":");
        rn_json_i64(out, e->model_version);
    }
    if (e->flags & RN_EVENT_HAS_AMOUNT) {
        RN_BUF_LIT(out, ",\"amount\":");
        rn_json_f64(out, e->amount);
    }
    if (e->flags & RN_EVENT_HAS_ID) {
        RN_BUF_LIT(out, ",\"event_id\":");
        rn_json_str(out, rn_str_ptr(e, e->event_id), e->event_id.len);
    }
    if (e->n_context) rn_context_json(out, rn_event_context(e), e->n_context);
    rn_buf_putc(out, '}');
}

static const char *const rn__event_keys[] = {"user", "request", "item", "event_id", NULL};

static uint64_t rn__event_key(const struct rn_record *r, int field)
{
    const struct rn_event *e = r->payload;
    switch (field) {
    case RN_EVENT_KEY_USER: return e->user_id;
    case RN_EVENT_KEY_REQUEST: return e->request_id;
    case RN_EVENT_KEY_EVENT_ID: return e->event_id_hash;
    default: return e->item_id;
    }
}

const struct rn_type rn_type_event = {
    .name = "event",
    .description = "a parsed recommendation event: request, impression, click or pay",
    .write_json = rn__event_json,
    .key_fields = rn__event_keys,
    .key_of = rn__event_key,
};

void rn_types_init(void)
{
    rn_type_register(&rn_type_raw);
    rn_type_register(&rn_type_dead_letter);
    rn_type_register(&rn_type_event);
}
