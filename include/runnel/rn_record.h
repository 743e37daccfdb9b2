/*
 * rn_record.h — typed records, record types and batches.
 *
 * A record is a small fixed header (event time, key, type tag) plus a payload.
 * Payloads are position-independent: a fixed struct followed by variable data
 * that the struct reaches through offsets (struct rn_str), never pointers. So a
 * record can be copied with one memcpy — into another batch at an exchange,
 * into RocksDB as state — and read back as it was.
 *
 * Records travel in batches. A batch owns an array of headers and an arena
 * holding their payloads; handing a batch to a queue hands over all of it.
 * Text is parsed once, at the edge (log_collector); inside the pipeline only
 * typed payloads move.
 */
#ifndef RUNNEL_RN_RECORD_H
#define RUNNEL_RN_RECORD_H

#include <string.h>

#include "rn_common.h"

#define RN_TS_MIN INT64_MIN
#define RN_TS_MAX INT64_MAX

struct rn_record {
    int64_t ts;          /* event time, ms since the epoch (or RN_TS_MIN: none yet) */
    uint64_t key;        /* partitioning key (a 64-bit hash); 0 when not keyed */
    uint16_t type;       /* index into the record type registry */
    uint16_t flags;      /* type-specific */
    uint32_t len;        /* payload bytes */
    const void *payload; /* into the owning batch's arena; 8-byte aligned */
};

/* A string inside a payload: `off` bytes from the payload start. */
struct rn_str {
    uint32_t off;
    uint32_t len;
};

static inline const char *rn_str_ptr(const void *payload, struct rn_str s)
{
    return (const char *)payload + s.off;
}

/* ---- record types ---------------------------------------------------------
 * Each stream carries records of one type. Operators declare the types they
 * take and give by name; the job graph checks them at load time. A record
 * type is defined by the operator type that owns it (rn_op_type.types in
 * rn_operator.h); the runtime defines only "raw" and "dead_letter". */

struct rn_types;

struct rn_type {
    const char *name;
    const char *description;
    /* Appends the record as one JSON object (no newline). */
    void (*write_json)(const struct rn_record *r, struct rn_buf *out);
    /* Field names that can key a stream (key_by, keyed operators), NULL-ended. */
    const char *const *key_fields;
    /* Computes the key for field index `field` (into key_fields). */
    uint64_t (*key_of)(const struct rn_record *r, int field);
    /* Appended (optional): like write_json, for a type whose JSON needs names
     * its job keeps (an event's kind, context field names: see
     * rn_types_names); used instead of write_json when set. */
    void (*write_json_job)(const struct rn_types *types, const struct rn_record *r,
                           struct rn_buf *out);
    /* Appended (optional): the fields that generic operators (window, map)
     * may read by name, ended by an entry with a NULL name. Each lies at a
     * fixed offset of every payload of the type. */
    const struct rn_field *fields;
    /* Appended (optional): for a type whose payloads describe their own
     * fields (a window result names its aggregates): fills *f for field
     * `name` of this record's payload; 0, or RN_ENOENT. Asked for every
     * record, since two records of the type may be laid out differently. */
    int (*field_lookup)(const struct rn_record *r, const char *name, struct rn_field *f);
};

/* ---- fields readable by name ------------------------------------------------
 * A record type may describe some of its payload's fields (rn_type.fields),
 * so that generic operators can aggregate, compare and compute with them
 * without knowing the type. */

enum rn_field_kind {
    RN_FIELD_I64 = 1, /* int64_t at off */
    RN_FIELD_F64 = 2, /* double at off */
    RN_FIELD_STR = 3, /* struct rn_str at off */
};

struct rn_field {
    const char *name;
    enum rn_field_kind kind;
    uint32_t off; /* from the payload's start */
    /* RN_FIELD_I64 only, optional: names of the values 0, 1, ... (NULL-ended),
     * which a job may write instead of the numbers ("kind == bid"). */
    const char *const *symbols;
    const char *description;
};

/* The field called `name` of type t (borrowed from t), or NULL. */
const struct rn_field *rn_type_field_find(const struct rn_type *t, const char *name);
/* Looks up field `name` for record r of type t: the static table first, then
 * t->field_lookup. Fills *f; 0 or RN_ENOENT. */
int rn_record_field(const struct rn_type *t, const struct rn_record *r, const char *name,
                    struct rn_field *f);
/* The value of a numeric field of payload p (I64 converted to double). */
static inline double rn_field_f64(const struct rn_field *f, const void *p)
{
    if (f->kind == RN_FIELD_F64) {
        double d;
        memcpy(&d, (const char *)p + f->off, sizeof d);
        return d;
    }
    int64_t v;
    memcpy(&v, (const char *)p + f->off, sizeof v);
    return (double)v;
}
static inline int64_t rn_field_i64(const struct rn_field *f, const void *p)
{
    if (f->kind == RN_FIELD_F64) return (int64_t)rn_field_f64(f, p);
    int64_t v;
    memcpy(&v, (const char *)p + f->off, sizeof v);
    return v;
}
static inline struct rn_str rn_field_str(const struct rn_field *f, const void *p)
{
    struct rn_str s;
    memcpy(&s, (const char *)p + f->off, sizeof s);
    return s;
}
/* Appends the field's value as JSON (a number or a string) to out. */
void rn_field_write_json(const struct rn_field *f, const void *p, struct rn_buf *out);
/* Appends the field's value as text (a string's bytes unquoted) to out. */
void rn_field_write_text(const struct rn_field *f, const void *p, struct rn_buf *out);

/* Built-in types of the runtime, first in every job (ids 0 and 1). */
extern const struct rn_type rn_type_raw;         /* "raw": one input line */
extern const struct rn_type rn_type_dead_letter; /* "dead_letter" */

int rn_type_field(const struct rn_type *t, const char *field); /* index or -1 */

/* ---- a job's record types -------------------------------------------------
 * Every job numbers its record types itself, in one struct rn_types: first
 * raw and dead_letter, then the types its operator types define, in the order
 * the job names them, then those of every other registered operator type (so
 * that a type mismatch can name what an input takes). A record's `type` is an
 * index into its job's table; two jobs in one process share nothing.
 *
 * A type may also keep lists of names per job (an event's kinds, the names of
 * its context fields: rn_event.h), filled at load time by the operators that
 * own them (rn_op_type.init_types) and read by every operator of the job.
 * Everything is filled before any thread of the job runs and read-only after,
 * so reading takes no lock. An operator reaches its job's table with
 * rn_op_types(). */

struct rn_names;

/* The id of the type called `name`, or RN_ENOENT. */
int rn_types_find(const struct rn_types *ts, const char *name);
/* The type with id `id` (borrowed), or NULL. */
const struct rn_type *rn_types_get(const struct rn_types *ts, int id);
/* Appends r as one JSON object (no newline) through its type. */
void rn_types_write_json(const struct rn_types *ts, const struct rn_record *r, struct rn_buf *out);

/* The job's list of names called `list` (by convention "<type>.<what>", such
 * as "event.kind"), created empty on first use. Owned by ts; the pointer stays
 * valid for the job's lifetime. Load time only (init_types). */
struct rn_names *rn_types_names(struct rn_types *ts, const char *list);
/* The same, or NULL when no operator of the job created it. Any time. */
const struct rn_names *rn_types_names_find(const struct rn_types *ts, const char *list);
/* Appends a copy of name; returns its index (the one it has when it is there
 * already). Load time only. */
int rn_names_add(struct rn_names *l, const char *name);
/* The index of the n bytes at s, or -1 (also when l is NULL). */
int rn_names_find(const struct rn_names *l, const char *s, size_t n);
/* The name at index i (borrowed), or NULL when out of range. */
const char *rn_names_get(const struct rn_names *l, int i);
/* How many names l holds (0 when l is NULL). */
int rn_names_count(const struct rn_names *l);

/* "raw": a line of input and where it came from. */
struct rn_raw {
    int64_t offset;      /* byte offset of the line in its source split */
    uint32_t source;     /* index of the source in the job */
    uint32_t orig_len;   /* the line's length; > line.len when it was truncated */
    struct rn_str line;  /* without its newline */
    struct rn_str split; /* source split name (file path) */
};

static inline int rn_raw_truncated(const struct rn_raw *r)
{
    return r->orig_len > r->line.len;
}

/* "dead_letter": a rejected record, with why and where. */
struct rn_dead_letter {
    int64_t offset;
    struct rn_str where;  /* "<source>:<split>" */
    struct rn_str op;     /* operator that rejected it */
    struct rn_str reason;
    struct rn_str data; /* the raw bytes, as received (possibly truncated) */
    uint32_t orig_len;
    uint32_t pad;
};

/* ---- batches -------------------------------------------------------------- */

struct rn_batch {
    struct rn_record *recs;
    uint32_t n;
    uint32_t cap;
    struct rn_arena arena;
    struct rn_batch *next; /* free lists */
};

#define RN_BATCH_RECORDS 1024
#define RN_BATCH_ARENA (256 * 1024)
/* A batch's arena chunk is RN_BATCH_ARENA plus this, so that the record that
 * crosses RN_BATCH_ARENA usually still fits in the one chunk. */
#define RN_BATCH_CHUNK_SLACK 4096

struct rn_batch *rn_batch_create(uint32_t cap);
void rn_batch_destroy(struct rn_batch *b);
void rn_batch_clear(struct rn_batch *b);
/* Appends a record whose payload of `len` bytes the caller fills through the
 * returned pointer (owned by the batch). Never fails; grows as needed. */
void *rn_batch_add(struct rn_batch *b, uint16_t type, int64_t ts, uint64_t key, uint32_t len);
/* Appends a copy of `r` (payload copied into the batch). */
void rn_batch_copy(struct rn_batch *b, const struct rn_record *r);
static inline int rn_batch_full(const struct rn_batch *b)
{
    return b->n >= b->cap || b->arena.used_total >= RN_BATCH_ARENA;
}

/* ---- payload builder ------------------------------------------------------
 * Builds a payload of a fixed struct and variable data in a scratch buffer,
 * then copies it into a batch in one go. */
struct rn_payload {
    struct rn_buf buf;
    size_t fixed;
};

void rn_payload_begin(struct rn_payload *p, size_t fixed_size); /* zeroed fixed part */
static inline void *rn_payload_fixed(struct rn_payload *p)
{
    return p->buf.data;
}
struct rn_str rn_payload_str(struct rn_payload *p, const char *s, size_t n);
/* Reserves n bytes (8-aligned start) and returns their offset. */
uint32_t rn_payload_reserve(struct rn_payload *p, size_t n);

#endif
