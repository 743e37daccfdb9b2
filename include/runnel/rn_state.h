/*
 * rn_state.h — keyed state and event-time timers for operators.
 *
 * Keyed operators (RN_OP_KEYED) keep state per key through this API; the
 * runtime stores it in RocksDB (one instance per worker thread), fronts it
 * with a write-back cache, checkpoints it, and redistributes it by key group
 * when a job is restored with another parallelism. See docs/state.md.
 *
 * Scope. Every call acts on the operator instance's *current key*: the
 * runtime sets it before on_timer(); in process() the operator sets it with
 * rn_state_key() for each record (usually to record->key). A namespace
 * (`ns`, e.g. a window's end) splits one key's value state further.
 *
 * Handles are created in open() and live until close(). Values returned by a
 * get are borrowed: valid until the next state call on the same instance.
 * All calls run on the instance's own thread; none may be called from
 * another.
 *
 * Errors. Every call returns 0 or a negative RN_E* code, and the caller
 * checks it: return it from the callback. RN_ESTATE means the state backend
 * failed (RocksDB could not read or write); a get that could not read says
 * so, never RN_ENOENT. After a failure every state call of the thread fails
 * too, and the job stops with a message naming the operator, the key and its
 * key group (even if a callback returned 0 regardless). See docs/state.md.
 */
#ifndef RUNNEL_RN_STATE_H
#define RUNNEL_RN_STATE_H

#include "rn_operator.h"

struct rn_state; /* one named state of one operator instance */

struct rn_timer {
    int64_t ts;   /* event time at which it fires (watermark >= ts) */
    uint64_t key; /* the key it was registered for (also the current key) */
    uint64_t ns;  /* the namespace given at registration */
};

/* Declares value state `name` (stable across restarts: it names the data in
 * checkpoints). Returns NULL if the instance is not keyed or on error. When
 * the restored checkpoint holds an older state format of the operator, the
 * state's stored entries are migrated here (rn_op_type.migrate_state): declare
 * every state in open(). */
struct rn_state *rn_state_value(struct rn_op *op, const char *name);
/* Declares append-only list state `name`. */
struct rn_state *rn_state_list(struct rn_op *op, const char *name);
/* Declares map state `name`: per key, a map of byte-string keys to values. */
struct rn_state *rn_state_map(struct rn_op *op, const char *name);

/* Sets the current key for the following state and timer calls. */
void rn_state_key(struct rn_op *op, uint64_t key);

/* Value state. get: 0 and the bytes, RN_ENOENT when the key has no value in
 * that namespace, RN_ESTATE when it could not be read. */
int rn_value_get(struct rn_state *s, uint64_t ns, const void **val, size_t *len);
int rn_value_put(struct rn_state *s, uint64_t ns, const void *val, size_t len);
int rn_value_clear(struct rn_state *s, uint64_t ns);
/* Clears the value of the current key and namespace ns (a list's: ns 0) once
 * the watermark reaches ts: a timer the runtime fires itself, without calling
 * on_timer and without reading the value, so a value evicted to RocksDB is
 * deleted there without being read back. It clears whatever the value holds
 * then; registered again for another time, the earlier one clears. Kept like
 * a timer: registering the same (ts, ns) again is a no-op, and it is
 * checkpointed, restored and counted with the operator's timers. Value and
 * list state only (RN_EINVAL for a map). */
int rn_value_clear_at(struct rn_state *s, uint64_t ns, int64_t ts);
/* Value state changed in place: makes the value of ns len bytes long (what
 * it held is kept up to len, added bytes are zero; an absent value becomes
 * len zero bytes) and sets *val to it, writable and valid until the next
 * state call on the instance. The value counts as changed (it is written
 * back and checkpointed). Saves the copy in and out of a get and a put for a
 * value changed by every event; RN_ESTATE when it could not be read. */
int rn_value_edit(struct rn_state *s, uint64_t ns, size_t len, void **val);

/* A hint, for an operator that knows which value (or list: ns 0) it will use
 * a few records ahead: starts loading the cache's memory for that key and
 * namespace, so that the access then waits less. Changes nothing and reads
 * no RocksDB; `key` is given here (it is not the current key yet). Gives the
 * most about 8 records ahead of the access, once per record. The runtime
 * does the same itself for the timers about to fire. */
void rn_state_prefetch(struct rn_state *s, uint64_t key, uint64_t ns);

/* List state (namespace 0): elements in append order. */
int rn_list_append(struct rn_state *s, const void *val, size_t len);
/* Calls fn for each element until it returns non-zero; returns that or 0
 * (also when the list is empty), RN_ESTATE when the list could not be read,
 * RN_ECORRUPT when its stored bytes are malformed. */
int rn_list_each(struct rn_state *s, int (*fn)(void *ud, const void *val, size_t len), void *ud);
int rn_list_clear(struct rn_state *s);

/* Map state of the current key. get: 0 and the value (borrowed until the
 * next state call), RN_ENOENT, or RN_ESTATE when it could not be read. each:
 * entries in map-key byte order, until fn returns non-zero (returned), or
 * RN_ESTATE when the iteration failed (it never ends early silently). */
int rn_map_get(struct rn_state *s, const void *mk, size_t mkl, const void **val, size_t *len);
int rn_map_put(struct rn_state *s, const void *mk, size_t mkl, const void *val, size_t len);
int rn_map_remove(struct rn_state *s, const void *mk, size_t mkl);
int rn_map_each(struct rn_state *s,
                int (*fn)(void *ud, const void *mk, size_t mkl, const void *val, size_t len),
                void *ud);
int rn_map_clear(struct rn_state *s);

/* Event-time timers for the current key: fire once the watermark reaches ts,
 * in (ts, key, ns) order, through the operator's on_timer(). Registering an
 * existing (ts, ns) again is a no-op. */
int rn_timer_register(struct rn_op *op, int64_t ts, uint64_t ns);
int rn_timer_delete(struct rn_op *op, int64_t ts, uint64_t ns);

/* The instance's current event-time watermark (RN_TS_MIN before the first). */
int64_t rn_op_watermark(const struct rn_op *op);

#endif
