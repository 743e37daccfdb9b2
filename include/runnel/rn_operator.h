/*
 * rn_operator.h — the one interface behind every source, operator and sink.
 *
 * An operator type is a struct of callbacks in the spirit of Flink's operator
 * lifecycle, registered by name (`op:` / `type:` in YAML). The runtime creates
 * one instance per parallel subtask; the callbacks of one instance never run
 * concurrently, and always on that subtask's worker thread.
 *
 *   load time   config table -> ctx (shared, read-only), then init() checks it
 *   run time    restore() -> open() -> { poll() | process() | on_watermark()
 *               | on_timer() | snapshot() }* -> finish() -> close()
 *
 * Records come in as borrowed batches (valid for the call only) and go out
 * through an emitter, which copies them into runtime-owned batches. Ports:
 * output 0 is the main output; further outputs are side outputs (dead letters,
 * late records) that a job routes by naming them in YAML.
 *
 * ABI: abi_version and struct_size come first (write RN_OP_TYPE_HEAD, which
 * fills both) and callbacks are only ever appended. struct_size tells the
 * runtime how much of the struct the operator was compiled with: fields past
 * it read as NULL/0, so an operator built against an older header keeps
 * working, and one built against a newer header than the runtime's is
 * refused at registration instead of being half understood.
 */
#ifndef RUNNEL_RN_OPERATOR_H
#define RUNNEL_RN_OPERATOR_H

#include "rn_config.h"
#include "rn_http.h"
#include "rn_record.h"

/* Version 2 added struct_size; version 1 types (no struct_size) are refused. */
#define RN_OP_ABI_VERSION 2

/* The first two fields of every struct rn_op_type initializer:
 *   const struct rn_op_type my_op = { RN_OP_TYPE_HEAD, .name = "my_op", ... }; */
#define RN_OP_TYPE_HEAD .abi_version = RN_OP_ABI_VERSION, .struct_size = sizeof(struct rn_op_type)

enum rn_op_kind { RN_KIND_SOURCE = 0, RN_KIND_OPERATOR = 1, RN_KIND_SINK = 2 };

/* Flags of an operator type. */
#define RN_OP_KEYED 0x1    /* input is hash-partitioned by the `key` field */
#define RN_OP_STATEFUL 0x2 /* keeps keyed state (rn_state.h) that checkpoints cover */
#define RN_OP_EVENT_TIME 0x4 /* assigns event time (record.ts) to its output: the
                              * watermarks of its source split are derived from it */
#define RN_OP_KEEPS_KEY 0x8  /* keyed, and its main output is keyed the same way (the
                              * output type has the key field, with the same values):
                              * a keyed operator after it with that key and parallelism
                              * runs fused, without an exchange */
#define RN_OP_SINGLETON 0x10 /* runs as one instance, whatever the job's parallelism:
                              * every upstream subtask gathers into it (a learner
                              * that trains one model) */
#define RN_OP_UNION_RESTORE 0x20 /* restore() runs once per subtask of the
                                  * checkpoint, with each one's bytes, whatever the
                                  * parallelism was: the operator keeps what it owns
                                  * now (a Kafka source's partition offsets, which
                                  * move between subtasks on a rescale) */

/* Return codes of poll(). */
#define RN_POLL_MORE 0 /* emitted something; call again */
#define RN_POLL_IDLE 1 /* nothing available now (follow mode); call again later */
#define RN_POLL_END 2  /* the source is exhausted */

struct rn_op;
struct rn_emitter;
struct rn_timer;           /* event-time timers: rn_state.h */
struct rn_snapshot_writer; /* checkpoints: rn_checkpoint.h */
struct rn_snapshot_reader;

/* A figure derived from two of the operator's counters, shown on the status
 * page: scale * metrics[num] / metrics[den]. */
struct rn_metric_ratio {
    const char *name;
    int num, den;
    double scale;
};

struct rn_port_decl {
    const char *name;  /* YAML key that routes this side output; NULL for port 0 */
    const char *type;  /* record type name; "*": the type of the input */
    const char *description;
};

/* Flags of an input (struct rn_input_decl). */
#define RN_IN_BROADCAST 0x1 /* every subtask receives every record of this input */

/* One input of an operator with several inputs (rn_op_type.n_inputs > 1). */
struct rn_input_decl {
    const char *name;  /* for messages and docs ("events", "models") */
    const char *type;  /* record type name; "*": any */
    uint32_t flags;    /* RN_IN_* */
    const char *key;   /* keyed operators: this input's key field when YAML gives
                        * no `key:` (NULL: the type's default_key) */
    const char *description;
};

struct rn_op_type {
    uint32_t abi_version; /* RN_OP_ABI_VERSION the operator was built against */
    uint32_t struct_size; /* sizeof(struct rn_op_type) as the operator saw it */
    const char *name;
    const char *description;
    enum rn_op_kind kind;
    uint32_t flags;                     /* RN_OP_* */
    const struct rn_config_key *config; /* keys accepted besides id/op/from */
    size_t ctx_size;                    /* config context, filled by the table */
    const char *in_type;                /* input record type; "*": any; NULL: source */
    const struct rn_port_decl *outputs; /* n_outputs entries; sinks: none */
    uint32_t n_outputs;
    const char *const *metrics; /* names of the operator's own counters, NULL-ended */
    const char *default_key;    /* RN_OP_KEYED: key field when YAML gives no `key:` */

    /* Load time: checks and completes ctx (already filled from the table).
     * `node` is the operator's YAML map, for error positions. */
    int (*init)(void *ctx, const struct rn_cfg_node *node, char *errbuf, size_t errlen);
    /* Frees what init() allocated in ctx. */
    void (*fini)(void *ctx);

    int (*open)(struct rn_op *op);
    /* Sources: emit up to about one batch. Returns RN_POLL_* or < 0. */
    int (*poll)(struct rn_op *op, struct rn_emitter *out);
    /* Operators and sinks: one input batch (borrowed). */
    int (*process)(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out);
    /* Event time advanced to wm on every input. */
    int (*on_watermark)(struct rn_op *op, int64_t wm, struct rn_emitter *out);
    /* Every input ended (bounded job): emit what is left, flush. */
    int (*finish)(struct rn_op *op, struct rn_emitter *out);
    /* Always called once open() or restore() was attempted, even if it failed
     * or the other never ran (a task stopped between restore and open): it
     * frees whatever either left, and must accept a restored, unopened
     * instance. */
    void (*close)(struct rn_op *op);
    /* A timer the instance registered fired (the watermark passed it). */
    int (*on_timer)(struct rn_op *op, const struct rn_timer *t, struct rn_emitter *out);
    /* Checkpoint: write what the instance keeps in memory itself (keyed state
     * kept through the state API is covered by the runtime). */
    int (*snapshot)(struct rn_op *op, uint64_t checkpoint_id, struct rn_snapshot_writer *w);
    /* Before open(): read back what snapshot() wrote. */
    int (*restore)(struct rn_op *op, struct rn_snapshot_reader *r);
    /* Checkpoint `id` (and every one before it) is complete: make the output
     * it covers visible (sinks commit here). */
    int (*notify_checkpoint_complete)(struct rn_op *op, uint64_t id);
    /* Derived figures for the status page, NULL-name-ended (optional). */
    const struct rn_metric_ratio *ratios;

    /* ---- appended in ABI 2 (optional: NULL when struct_size ends before) ---- */

    /* A processing-time timer set with rn_op_timer_after() is due: the
     * monotonic clock passed it. now_ms is the wall clock (ms since the
     * epoch). Runs on the instance's worker thread, like every callback. */
    int (*on_processing_time)(struct rn_op *op, int64_t now_ms, struct rn_emitter *out);

    /* Several typed inputs (optional: 0 or 1 means the one input of in_type).
     * With n_inputs > 1 (at most RN_MAX_INPUTS) the operator has n_inputs
     * inputs described by inputs[] and in_type is not used; YAML names them
     * in order, `from: [first, second]`, each checked against its type at
     * load time. process() learns which input a batch came from with
     * rn_op_input(). The operator's watermark is the minimum over all its
     * inputs; finish() runs once every input has ended. */
    const struct rn_input_decl *inputs;
    uint32_t n_inputs;

    /* State format version (optional: 0 reads as 1). One number for
     * everything the operator stores: the bytes its snapshot() writes and the
     * values it keeps in keyed state. Raise it whenever either changes; the
     * runtime writes it into every checkpoint (the header of ops/<id>.bin) and
     * on restore hands the version it found to restore()
     * (rn_snapshot_version) and to migrate_state(). */
    uint32_t state_version;
    /* The oldest version restore() and migrate_state() can read (0: only
     * state_version). A checkpoint outside [state_version_min,
     * state_version] is refused before restore(), with a message naming the
     * operator and both versions. */
    uint32_t state_version_min;
    /* Keyed-state migration (optional). When a checkpoint of an older
     * version is restored, each stored entry of each state the operator
     * declares (value and list state: the value of a key and namespace; map
     * state: one entry) passes through it once, when the state is declared in
     * open(): `val` (borrowed) is the old value of state `state`, written by
     * version `from`; write the new value into `out` (empty on entry) and
     * return 0, or return RN_ENOENT to drop the entry, or < 0 to fail the
     * restore. The current key (rn_state_key) is the entry's key during the
     * call. Without it, values of older versions are kept as they are. */
    int (*migrate_state)(struct rn_op *op, const char *state, uint32_t from, const void *val,
                         size_t len, struct rn_buf *out);

    /* Record types this type defines (NULL-ended; NULL: none), such as
     * log_collector's "event". Each job numbers the types of its own
     * operators, then those of every other registered type (rn_record.h). */
    const struct rn_type *const *types;
    /* Load time, right after init() (optional): what the instance adds to or
     * reads from its job's record types — lists of names that a type keeps
     * per job, such as the event kinds and context fields of rn_event.h.
     * Nodes are visited in the order the job lists them, so an operator sees
     * what those before it declared. `types` belongs to the job and outlives
     * ctx: the operator may keep it (or a list from it) in ctx. */
    int (*init_types)(void *ctx, struct rn_types *types, const struct rn_cfg_node *node,
                      char *errbuf, size_t errlen);
    /* Load time, after init() (optional): the record type of output `port`
     * when it depends on the configuration (a source that reads runnel's
     * own records declares which type it emits); NULL keeps the port's
     * declared type. The name must be a type of the job. */
    const char *(*out_type)(const void *ctx, uint32_t port);

    /* Names of the operator's latency histograms, NULL-ended (optional; at
     * most RN_OP_MAX_LATENCIES). The runtime keeps one histogram per name
     * for the whole node (every subtask and any thread the operator serves
     * from adds to it): rn_op_latency() hands it out, the status side reads
     * it for each operator's latency_us in /api/v1/job, the history's
     * p50/p99 series and the runnel_operator_latency_seconds histogram of
     * /metrics (docs/status.md). */
    const char *const *latencies;
};

#define RN_OP_MAX_LATENCIES 8

/* A latency histogram of a node (struct rn_op_type.latencies): buckets of
 * powers of two from 1/16 µs, counted with relaxed atomics, so any thread
 * may record into it while the status side reads it. */
struct rn_latency;

#define RN_MAX_INPUTS 8

/* ---- registry ------------------------------------------------------------- */

/* Registers t (borrowed: it must outlive the process's jobs, as a static
 * const does). Refuses, with RN_EINVAL and a message on stderr, a type whose
 * abi_version is newer than RN_OP_ABI_VERSION or older than 2, whose
 * struct_size is smaller than its abi_version requires or larger than this
 * runtime's struct, or whose name is taken for its kind; RN_EFULL when the
 * table is full. Not thread-safe: call before any job is loaded. */
int rn_op_register(const struct rn_op_type *t);
/* The same, with the message in errbuf instead of on stderr. */
int rn_op_register_err(const struct rn_op_type *t, char *errbuf, size_t errlen);
const struct rn_op_type *rn_op_find(const char *name, enum rn_op_kind kind);
/* All registered types of a kind, for suggestions and docs; returns the count. */
size_t rn_op_list(enum rn_op_kind kind, const struct rn_op_type **out, size_t max);
/* Registers everything in operators/; idempotent. */
void rn_operators_init(void);

/* ---- what an instance can ask the runtime --------------------------------- */

const void *rn_op_ctx(const struct rn_op *op); /* the parsed config (read-only) */
void *rn_op_local(const struct rn_op *op);     /* the instance's own pointer */
void rn_op_set_local(struct rn_op *op, void *p);
const char *rn_op_id(const struct rn_op *op);
const char *rn_op_job_name(const struct rn_op *op); /* `job:` in YAML */
/* The record types of the instance's job (rn_record.h): to name a record's
 * type, write it as JSON (rn_types_write_json), or read the job's names. */
const struct rn_types *rn_op_types(const struct rn_op *op);
uint32_t rn_op_subtask(const struct rn_op *op);
uint32_t rn_op_parallelism(const struct rn_op *op);
int rn_op_source_index(const struct rn_op *op); /* sources: index in the job */
/* Keyed operators: the index of the key field in the input type's key_fields
 * (during process(): of the input the batch came from; elsewhere input 0's). */
int rn_op_key_field(const struct rn_op *op);
/* During process(): the index of the input the batch came from (0 for an
 * operator with one input; 0..n_inputs-1 otherwise). Outside process(): -1.
 * Records of a broadcast input reach every subtask, whatever their key: do
 * not use keyed state under such a record's key (the subtask may not own
 * its key group). */
int rn_op_input(const struct rn_op *op);
/* True once the job was asked to stop (SIGINT/SIGTERM, REST). */
int rn_op_stopping(const struct rn_op *op);
/* Sources that read several splits in one subtask (a Kafka source's
 * partitions): the records emitted by this poll() come from split `split`
 * of n_splits (0 <= split < n_splits; n_splits may grow between calls).
 * Emit one split's records per poll(). The runtime then keeps event time
 * per split and the subtask's watermark is the least over the splits that
 * are not idle (watermark.idle_timeout), so an idle split does not hold the
 * others back. A source that never calls it is one split. */
void rn_op_source_split(struct rn_op *op, int split, int n_splits);
/* Counts records that came behind the instance's watermark (status page). */
void rn_op_count_late(struct rn_op *op, uint64_t n);
/* Whether the job takes checkpoints (sinks then write two-phase). */
int rn_op_checkpointing(const struct rn_op *op);
/* Adds to the operator's own counter `idx` (into its type's metrics). */
void rn_op_metric_add(struct rn_op *op, int idx, uint64_t delta);
/* The node's latency histogram `idx` (into its type's latencies). Borrowed:
 * it lives as long as the job, longer than any instance, so the operator may
 * keep it and record from threads of its own (HTTP handlers). */
struct rn_latency *rn_op_latency(struct rn_op *op, int idx);
/* Counts one duration of ns nanoseconds (any thread; lock-free). */
void rn_latency_record(struct rn_latency *l, int64_t ns);
/* The p-th quantile (0..1) of what was recorded, in µs: the upper bound of
 * the bucket that holds it (0 when nothing was recorded). */
double rn_latency_quantile(const struct rn_latency *l, double p);

/* Error report from inside a callback; shown on the status page and stderr. */
void rn_op_errorf(struct rn_op *op, const char *fmt, ...) RN_PRINTF(2, 3);

/* Processing-time timer: asks for on_processing_time() once delay_ms (>= 0)
 * of wall-clock time has passed (measured on the monotonic clock). One-shot:
 * re-arm from the callback for a period. Each call is its own timer; due
 * timers fire in deadline order, each with one call. Works for sources and
 * in idle streams (the task wakes for the earliest timer). Call from the
 * instance's own callbacks (open() on) only: the timers are the instance's
 * thread's, not locked. Not checkpointed (re-arm in open()); timers still
 * pending when the task finishes do not fire. Returns 0, or RN_EINVAL when
 * the type has no on_processing_time callback. */
int rn_op_timer_after(struct rn_op *op, int64_t delay_ms);

/* Serves HTTP requests whose path starts with path_prefix (at a '/'
 * boundary: "/score" takes "/score" and "/score/x", not "/scores") and whose
 * method is `method` (NULL or "*": any) on the job's serving server
 * (`serve:` in YAML), the longest matching prefix winning. Call from open()
 * on; method and path_prefix are copied, ud is borrowed until close().
 * Subtasks that register the same route share its requests round robin.
 *
 * Threads: the handler runs on a serving thread, NOT the instance's worker
 * thread, and on several serving threads at once: it must be thread-safe
 * against the instance's own callbacks and against itself. It must answer
 * in the call (fill res) and must not wait for the worker thread. The
 * runtime removes the instance's routes, waiting for handlers in flight,
 * before close() runs. Unknown paths get a JSON 404. Returns 0, or
 * RN_EINVAL (the job has no serve: section, or bad arguments). */
int rn_op_route(struct rn_op *op, const char *method, const char *path_prefix,
                rn_http_handler handler, void *ud);
/* Whether the job has a serving server (`serve:`), so rn_op_route can work. */
int rn_op_serving(const struct rn_op *op);

/* ---- emitting ------------------------------------------------------------- */

/* Appends a record of the port's type to output `port`; the caller fills the
 * returned payload (len bytes, 8-aligned, owned by the runtime). */
void *rn_emit(struct rn_emitter *e, int port, int64_t ts, uint64_t key, uint32_t len);
/* Appends a copy of r (header and payload) to output `port`. */
void rn_emit_copy(struct rn_emitter *e, int port, const struct rn_record *r);
/* Emits a payload built with rn_payload_*. */
void rn_emit_payload(struct rn_emitter *e, int port, int64_t ts, uint64_t key,
                     const struct rn_payload *p);
/* Whether output `port` goes anywhere (unrouted side outputs are dropped and
 * counted; an operator may skip building them). */
int rn_emit_connected(const struct rn_emitter *e, int port);
/* Emits a dead letter on `port` (which must be of type dead_letter). */
void rn_emit_dead_letter(struct rn_emitter *e, int port, const struct rn_op *op,
                         const char *where, size_t where_len, int64_t offset, const char *reason,
                         const void *data, size_t len, uint32_t orig_len);

#endif
