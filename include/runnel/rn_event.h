/*
 * rn_event.h — the typed recommendation event ("event" record type).
 *
 * log_collector turns each good JSON line into one of these; every operator
 * downstream reads the struct, never the text. String ids are kept (for
 * output and debugging) and interned to 64-bit ids with xxHash so that joins
 * and keys compare integers.
 */
#ifndef RUNNEL_RN_EVENT_H
#define RUNNEL_RN_EVENT_H

#include "rn_record.h"

enum rn_event_kind {
    RN_EV_REQUEST = 0,
    RN_EV_IMPRESSION = 1,
    RN_EV_CLICK = 2,
    RN_EV_PAY = 3,
    RN_EV_KIND_MAX = 4,
};

/* The event type, defined by log_collector (its rn_op_type.types). */
extern const struct rn_type rn_type_event;

/* ---- event kinds ---------------------------------------------------------------
 * A job's event kinds are the four above, then the extra feedback types its
 * log_collector declares (`feedback_types`), numbered from RN_EV_KIND_MAX in
 * the order they are declared. They live in the job's record types
 * (rn_record.h, list "event.kind"), so two jobs in one process each have
 * their own. */
#define RN_EVENT_KINDS_MAX 16
#define RN_EVENT_KIND_NAME_MAX 24

/* The job's kinds, created with the four built-in ones on first use (load
 * time: init_types). Keep it to look kinds up on the hot path with
 * rn_names_find; it stays valid while the job exists. */
struct rn_names *rn_event_kinds(struct rn_types *ts);
/* Registers kind `name` in the job (load time): the kind, the one it has when
 * it is there already, or -1 past RN_EVENT_KINDS_MAX kinds or for a name of
 * RN_EVENT_KIND_NAME_MAX bytes or more. */
int rn_event_kind_register(struct rn_types *ts, const char *name);
/* The name of `kind` in the job ("?" when it has none). */
const char *rn_event_kind_name(const struct rn_types *ts, int kind);
/* The kind called by the n bytes at s, or -1. */
int rn_event_kind_find(const struct rn_types *ts, const char *s, size_t n);
/* How many kinds the job has (RN_EV_KIND_MAX and its feedback types). */
int rn_event_kind_count(const struct rn_types *ts);

#define RN_EVENT_HAS_AMOUNT 0x1
#define RN_EVENT_HAS_MODEL_VERSION 0x2
#define RN_EVENT_HAS_PROPENSITIES 0x4
#define RN_EVENT_HAS_ID 0x8

struct rn_event {
    int64_t ts;            /* event time, ms since the epoch */
    int64_t offset;        /* byte offset of the source line */
    uint64_t user_id;      /* rn_hash64(user) */
    uint64_t request_id;   /* rn_hash64(request) */
    uint64_t item_id;      /* rn_hash64(item); click and pay */
    double amount;         /* pay */
    int64_t model_version; /* impression */
    uint8_t kind;          /* enum rn_event_kind */
    uint8_t flags;         /* RN_EVENT_HAS_* */
    uint16_t pad;
    uint32_t n_items;      /* impression items / request candidates */
    struct rn_str user;
    struct rn_str request;
    struct rn_str item;
    uint32_t items_off;    /* n_items struct rn_str */
    uint32_t ids_off;      /* n_items uint64_t: rn_hash64 of each item */
    uint32_t props_off;    /* n_items double, when RN_EVENT_HAS_PROPENSITIES */
    uint32_t pad2;
    uint64_t event_id_hash; /* rn_hash64(event_id), when RN_EVENT_HAS_ID */
    struct rn_str event_id; /* the producer's id of this event (for de-duplication) */
    /* Appended (older code never reads past event_id): a request's context
     * values, from log_collector's `context_fields`, in that order. 0 unless
     * the job names context fields. */
    uint32_t n_context;
    uint32_t context_off; /* n_context double; NaN: the field was missing */
};

static inline const struct rn_str *rn_event_items(const struct rn_event *e)
{
    return (const struct rn_str *)((const char *)e + e->items_off);
}
static inline const uint64_t *rn_event_item_ids(const struct rn_event *e)
{
    return (const uint64_t *)((const char *)e + e->ids_off);
}
static inline const double *rn_event_props(const struct rn_event *e)
{
    return (const double *)((const char *)e + e->props_off);
}

static inline const double *rn_event_context(const struct rn_event *e)
{
    return (const double *)((const char *)e + e->context_off);
}

/* ---- context fields ----------------------------------------------------------
 * The names of a job's numeric request-context fields (log_collector's
 * `context_fields`). Records carry only the values, in this order; the JSON
 * writers of event, sample and experience name them from the job's list
 * ("event.context" in its record types, like the event kinds). */
#define RN_CONTEXT_MAX 16
#define RN_CONTEXT_NAME_MAX 32

/* Sets the job's list (load time: init_types); 0, or RN_EINVAL when a
 * different non-empty list is already set (one job, one list). */
int rn_context_fields_set(struct rn_types *ts, char names[][RN_CONTEXT_NAME_MAX], uint32_t n);
uint32_t rn_context_field_count(const struct rn_types *ts);
/* "" when out of range. */
const char *rn_context_field_name(const struct rn_types *ts, uint32_t i);
/* Appends `"context":{name:value,...}` (NaN as null); names past the job's
 * list are written as c<i>. */
void rn_context_json(const struct rn_types *ts, struct rn_buf *out, const double *v, uint32_t n);

struct rn_cfg_node;
/* Parses a `context_fields` node (a list of names, NULL: none) into names;
 * fills errbuf naming the place on failure. Used by every operator with the key. */
int rn_context_fields_parse(const struct rn_cfg_node *node, char names[][RN_CONTEXT_NAME_MAX],
                            uint32_t *n, char *errbuf, size_t errlen);

/* Key fields of the "event" type, in rn_type_event.key_fields order. */
enum { RN_EVENT_KEY_USER = 0, RN_EVENT_KEY_REQUEST = 1, RN_EVENT_KEY_ITEM = 2,
       RN_EVENT_KEY_EVENT_ID = 3 };

#endif
