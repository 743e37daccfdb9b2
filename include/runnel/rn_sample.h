/*
 * rn_sample.h — the record types of the recommendation dataflow:
 *
 *   "sample"      one labelled list, from online_joiner: a request's displayed
 *                 items with positions and logging propensities, per-item
 *                 feedback counts and rewards r = sum over types of w * count.
 *   "experience"  one transition (s, a, r, s', done), from experience_collector.
 *
 * Both are position-independent payloads (see rn_record.h): a fixed struct,
 * then variable parts reached by offsets.
 */
#ifndef RUNNEL_RN_SAMPLE_H
#define RUNNEL_RN_SAMPLE_H

#include "rn_event.h"

/* Feedback types a sample counts: click, pay, then the job's extra types. */
#define RN_FEEDBACK_MAX 8

struct rn_sample_item {
    uint64_t item_id;
    struct rn_str item;
    uint32_t position; /* 1-based, in display order */
    uint32_t pad;
    double propensity; /* logging propensity; -1 when the impression had none */
    double reward;
    uint32_t counts[RN_FEEDBACK_MAX]; /* per feedback type, see rn_sample.types */
};

struct rn_sample {
    int64_t impression_ts;
    int64_t window_end; /* impression_ts + window: feedback before it counted */
    uint64_t user_id;
    uint64_t request_id;
    int64_t model_version; /* -1: none */
    double reward;         /* sum over items */
    struct rn_str user;
    struct rn_str request;
    uint32_t n_items;
    uint32_t n_types;
    uint32_t items_off; /* n_items struct rn_sample_item */
    uint32_t types_off; /* n_types NUL-terminated names, each padded to 16 bytes */
    /* Appended: the request's context values (log_collector's context_fields,
     * in order; NaN: missing). 0 when the job names none or the request event
     * was not seen. */
    uint32_t n_context;
    uint32_t context_off; /* n_context double */
};

static inline const struct rn_sample_item *rn_sample_items(const struct rn_sample *s)
{
    return (const struct rn_sample_item *)((const char *)s + s->items_off);
}
static inline const double *rn_sample_context(const struct rn_sample *s)
{
    return (const double *)((const char *)s + s->context_off);
}
static inline const char *rn_sample_type(const struct rn_sample *s, uint32_t k)
{
    return (const char *)s + s->types_off + 16 * k;
}

/* One item of a user's history, for states. */
struct rn_history_item {
    uint64_t item_id;
    int64_t ts;
    struct rn_str item;
    uint32_t kind; /* the feedback type that put it there (0 click, 1 pay, ...) */
    uint32_t pad;
};

/* A state: the user's history (most recent last) and its embedding. */
struct rn_state_vec {
    uint32_t n_history;
    uint32_t history_off; /* n_history struct rn_history_item */
    uint32_t dim;
    uint32_t vec_off;     /* dim floats: mean embedding of the history items found */
    uint32_t n_missing;   /* history items without an embedding */
    uint32_t pad;
    /* Appended: the list's request context (s: this list's, s': the next
     * list's; at the end of a session s' repeats s's). 0 without context. */
    uint32_t n_context;
    uint32_t ctx_off; /* n_context double, from the experience payload start */
};

struct rn_experience {
    int64_t ts;     /* impression time of the list */
    int64_t next_ts; /* impression time of the next list, or -1 */
    uint64_t user_id;
    uint64_t request_id;
    double reward;
    uint32_t done;
    uint32_t n_items;
    struct rn_str user;
    struct rn_str request;
    struct rn_state_vec s, s_next;
    uint32_t items_off; /* n_items struct rn_sample_item (a and r) */
    uint32_t n_types;
    uint32_t types_off;
    uint32_t pad;
};

#endif
