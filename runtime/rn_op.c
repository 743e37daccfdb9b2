/*
 * rn_op.c — what an operator instance can ask of the runtime
 * (rn_operator.h): its context, identity and counters, error reports, and
 * emitting records.
 *
 * Emitting appends to the instance's pending output batch of that port
 * (runtime-owned, reused); rn__flush_ports (rn_exec.c) hands it on after the
 * callback returns. Everything here is called from the instance's callbacks,
 * on its task's thread.
 */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rn_exec_int.h"

const void *rn_op_ctx(const struct rn_op *op)
{
    return op->inst->node->ctx;
}
void *rn_op_local(const struct rn_op *op)
{
    return op->inst->local;
}
void rn_op_set_local(struct rn_op *op, void *p)
{
    op->inst->local = p;
}
const struct rn_types *rn_op_types(const struct rn_op *op)
{
    return op->inst->job->types;
}
const char *rn_op_id(const struct rn_op *op)
{
    return op->inst->node->id;
}
const char *rn_op_job_name(const struct rn_op *op)
{
    return op->inst->job->name;
}
uint32_t rn_op_subtask(const struct rn_op *op)
{
    return op->inst->task->subtask;
}
uint32_t rn_op_parallelism(const struct rn_op *op)
{
    return op->inst->node->parallelism;
}
int rn_op_source_index(const struct rn_op *op)
{
    return op->inst->node->source_index;
}
int rn_op_key_field(const struct rn_op *op)
{
    int i = op->inst->cur_input;
    return i > 0 ? op->inst->node->key_fields[i] : op->inst->node->key_field;
}

int rn_op_input(const struct rn_op *op)
{
    return op->inst->cur_input;
}

int rn_op_checkpointing(const struct rn_op *op)
{
    return op->inst->job->ckpt_enabled;
}

int rn_op_stopping(const struct rn_op *op)
{
    return atomic_load_explicit(&op->inst->job->stopping, memory_order_relaxed) ||
           atomic_load_explicit(&op->inst->job->aborting, memory_order_relaxed);
}
void rn_op_metric_add(struct rn_op *op, int idx, uint64_t delta)
{
    struct rn_instance *in = op->inst;
    assert(idx >= 0 && idx < in->n_metrics);
    atomic_fetch_add_explicit(&in->metrics[idx], delta, memory_order_relaxed);
}

struct rn_latency *rn_op_latency(struct rn_op *op, int idx)
{
    struct rn_node *n = op->inst->node;
    assert(idx >= 0 && idx < n->n_lat);
    return &n->lat[idx];
}

void rn_latency_record(struct rn_latency *l, int64_t ns)
{
    uint64_t u16 = ns > 0 ? (uint64_t)ns * 16 / 1000 : 0; /* sixteenths of a µs */
    int b = 0;
    while (u16 > 1 && b < RN_LATENCY_BUCKETS - 1) {
        u16 >>= 1;
        b++;
    }
    atomic_fetch_add_explicit(&l->b[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->sum_ns, ns > 0 ? (uint64_t)ns : 0, memory_order_relaxed);
}

double rn__latency_quantile(const uint64_t *n, double p)
{
    uint64_t total = 0;
    for (int b = 0; b < RN_LATENCY_BUCKETS; b++)
        total += n[b];
    if (!total) return 0;
    uint64_t want = (uint64_t)ceil(p * (double)total), acc = 0;
    if (!want) want = 1;
    for (int b = 0; b < RN_LATENCY_BUCKETS; b++) {
        acc += n[b];
        if (acc >= want) return RN__LATENCY_BOUND_US(b);
    }
    return RN__LATENCY_BOUND_US(RN_LATENCY_BUCKETS - 1);
}

double rn_latency_quantile(const struct rn_latency *l, double p)
{
    uint64_t n[RN_LATENCY_BUCKETS];
    for (int b = 0; b < RN_LATENCY_BUCKETS; b++)
        n[b] = atomic_load_explicit(&l->b[b], memory_order_relaxed);
    return rn__latency_quantile(n, p);
}

void rn_op_errorf(struct rn_op *op, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rn__job_set_error(op->inst->job, "%s '%s' (subtask %u): %s",
                      op->inst->node->kind == RN_KIND_SOURCE ? "source"
                      : op->inst->node->kind == RN_KIND_SINK ? "sink"
                                                             : "operator",
                      op->inst->node->id, op->inst->task->subtask, msg);
}

void *rn_emit(struct rn_emitter *e, int port, int64_t ts, uint64_t key, uint32_t len)
{
    struct rn_port_out *po = &e->inst->ports[port];
    return rn_batch_add(po->batch, (uint16_t)po->type, ts, key, len);
}

void rn_emit_copy(struct rn_emitter *e, int port, const struct rn_record *r)
{
    struct rn_port_out *po = &e->inst->ports[port];
    void *p = rn_batch_add(po->batch, (uint16_t)po->type, r->ts, r->key, r->len);
    memcpy(p, r->payload, r->len);
    po->batch->recs[po->batch->n - 1].flags = r->flags;
}

void rn_emit_payload(struct rn_emitter *e, int port, int64_t ts, uint64_t key,
                     const struct rn_payload *p)
{
    void *dst = rn_emit(e, port, ts, key, (uint32_t)p->buf.len);
    memcpy(dst, p->buf.data, p->buf.len);
}

int rn_emit_connected(const struct rn_emitter *e, int port)
{
    return e->inst->ports[port].n_targets > 0;
}

void rn_emit_dead_letter(struct rn_emitter *e, int port, const struct rn_op *op, const char *where,
                         size_t where_len, int64_t offset, const char *reason, const void *data,
                         size_t len, uint32_t orig_len)
{
    size_t id_len = strlen(rn_op_id(op)), reason_len = strlen(reason);
    size_t total = sizeof(struct rn_dead_letter) + where_len + id_len + reason_len + len;
    struct rn_dead_letter *d = rn_emit(e, port, RN_TS_MIN, 0, (uint32_t)total);
    char *p = (char *)(d + 1);
    uint32_t off = sizeof *d;
    d->offset = offset;
    d->orig_len = orig_len;
    d->pad = 0;
    d->where = (struct rn_str){off, (uint32_t)where_len};
    memcpy(p, where, where_len);
    p += where_len, off += (uint32_t)where_len;
    d->op = (struct rn_str){off, (uint32_t)id_len};
    memcpy(p, rn_op_id(op), id_len);
    p += id_len, off += (uint32_t)id_len;
    d->reason = (struct rn_str){off, (uint32_t)reason_len};
    memcpy(p, reason, reason_len);
    p += reason_len, off += (uint32_t)reason_len;
    d->data = (struct rn_str){off, (uint32_t)len};
    if (len) memcpy(p, data, len);
}
