/*
 * rn_record.c — a job's table of record types and lists of names, batches,
 * payload building, and the runtime's own record types (raw, dead_letter)
 * with their JSON writers.
 *
 * Each job has its own table (struct rn_types), filled at load time
 * (rn_job.c) before any of its threads exists and read-only after; no lock
 * is needed to read it. Record types beyond raw and dead_letter belong to the
 * operators that define them (rn_op_type.types).
 */
#include "rn_record.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_types_int.h"

/* A job's lists of names: each name a NUL-terminated copy, with its length. */
struct rn_names {
    char *list; /* the list's name */
    char **names;
    size_t *lens;
    int n, cap;
};

struct rn_types {
    const struct rn_type **types;
    int n_types, cap_types;
    struct rn_names **lists;
    int n_lists;
};

struct rn_types *rn__types_create(void)
{
    struct rn_types *ts = rn_xcalloc(1, sizeof *ts);
    rn__types_add(ts, &rn_type_raw);
    rn__types_add(ts, &rn_type_dead_letter);
    return ts;
}

void rn__types_destroy(struct rn_types *ts)
{
    if (!ts) return;
    for (int i = 0; i < ts->n_lists; i++) {
        struct rn_names *l = ts->lists[i];
        for (int k = 0; k < l->n; k++)
            free(l->names[k]);
        free(l->names);
        free(l->lens);
        free(l->list);
        free(l);
    }
    free(ts->lists);
    free(ts->types);
    free(ts);
}

int rn__types_add(struct rn_types *ts, const struct rn_type *t)
{
    for (int i = 0; i < ts->n_types; i++) {
        if (ts->types[i] == t) return i;
        if (strcmp(ts->types[i]->name, t->name) == 0) return RN_EINVAL;
    }
    if (ts->n_types > UINT16_MAX) return RN_EFULL; /* struct rn_record.type is 16 bits */
    if (ts->n_types == ts->cap_types) {
        ts->cap_types = ts->cap_types ? 2 * ts->cap_types : 16;
        ts->types = rn_xrealloc(ts->types, sizeof *ts->types * (size_t)ts->cap_types);
    }
    ts->types[ts->n_types] = t;
    return ts->n_types++;
}

int rn_types_find(const struct rn_types *ts, const char *name)
{
    for (int i = 0; i < ts->n_types; i++)
        if (strcmp(ts->types[i]->name, name) == 0) return i;
    return RN_ENOENT;
}

const struct rn_type *rn_types_get(const struct rn_types *ts, int id)
{
    return id >= 0 && id < ts->n_types ? ts->types[id] : NULL;
}

void rn_types_write_json(const struct rn_types *ts, const struct rn_record *r, struct rn_buf *out)
{
    assert(r->type < ts->n_types);
    const struct rn_type *t = ts->types[r->type];
    if (t->write_json_job)
        t->write_json_job(ts, r, out);
    else
        t->write_json(r, out);
}

const struct rn_names *rn_types_names_find(const struct rn_types *ts, const char *list)
{
    for (int i = 0; i < ts->n_lists; i++)
        if (strcmp(ts->lists[i]->list, list) == 0) return ts->lists[i];
    return NULL;
}

struct rn_names *rn_types_names(struct rn_types *ts, const char *list)
{
    struct rn_names *l = (struct rn_names *)rn_types_names_find(ts, list);
    if (l) return l;
    l = rn_xcalloc(1, sizeof *l);
    l->list = rn_xstrdup(list);
    ts->lists = rn_xrealloc(ts->lists, sizeof *ts->lists * (size_t)(ts->n_lists + 1));
    ts->lists[ts->n_lists++] = l;
    return l;
}

int rn_names_add(struct rn_names *l, const char *name)
{
    int i = rn_names_find(l, name, strlen(name));
    if (i >= 0) return i;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->names = rn_xrealloc(l->names, sizeof *l->names * (size_t)l->cap);
        l->lens = rn_xrealloc(l->lens, sizeof *l->lens * (size_t)l->cap);
    }
    l->names[l->n] = rn_xstrdup(name);
    l->lens[l->n] = strlen(name);
    return l->n++;
}

int rn_names_find(const struct rn_names *l, const char *s, size_t n)
{
    for (int i = 0; l && i < l->n; i++)
        if (l->lens[i] == n && memcmp(l->names[i], s, n) == 0) return i;
    return -1;
}

const char *rn_names_get(const struct rn_names *l, int i)
{
    return l && i >= 0 && i < l->n ? l->names[i] : NULL;
}

int rn_names_count(const struct rn_names *l)
{
    return l ? l->n : 0;
}

int rn_type_field(const struct rn_type *t, const char *field)
{
    if (!t->key_fields) return -1;
    for (int i = 0; t->key_fields[i]; i++)
        if (strcmp(t->key_fields[i], field) == 0) return i;
    return -1;
}

const struct rn_field *rn_type_field_find(const struct rn_type *t, const char *name)
{
    if (!t->fields) return NULL;
    for (const struct rn_field *f = t->fields; f->name; f++)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}

int rn_record_field(const struct rn_type *t, const struct rn_record *r, const char *name,
                    struct rn_field *f)
{
    const struct rn_field *s = rn_type_field_find(t, name);
    if (s) {
        *f = *s;
        return 0;
    }
    return t->field_lookup ? t->field_lookup(r, name, f) : RN_ENOENT;
}

void rn_field_write_json(const struct rn_field *f, const void *p, struct rn_buf *out)
{
    if (f->kind == RN_FIELD_STR) {
        struct rn_str s = rn_field_str(f, p);
        rn_json_str(out, rn_str_ptr(p, s), s.len);
    } else if (f->kind == RN_FIELD_F64) {
        rn_json_f64(out, rn_field_f64(f, p));
    } else {
        rn_json_i64(out, rn_field_i64(f, p));
    }
}

void rn_field_write_text(const struct rn_field *f, const void *p, struct rn_buf *out)
{
    if (f->kind == RN_FIELD_STR) {
        struct rn_str s = rn_field_str(f, p);
        rn_buf_append(out, rn_str_ptr(p, s), s.len);
    } else {
        rn_field_write_json(f, p, out);
    }
}

/* ---- batches --------------------------------------------------------------- */

struct rn_batch *rn_batch_create(uint32_t cap)
{
    struct rn_batch *b = rn_xcalloc(1, sizeof *b);
    b->cap = cap ? cap : RN_BATCH_RECORDS;
    b->recs = rn_xmalloc(sizeof *b->recs * b->cap);
    rn_arena_init(&b->arena, RN_BATCH_ARENA + RN_BATCH_CHUNK_SLACK);
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
