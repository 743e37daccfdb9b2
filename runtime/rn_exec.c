/*
 * rn_exec.c — running a job: the task loops on worker threads.
 *
 * A task is one subtask of a fused chain (see rn_plan.c), run by one thread.
 * Inside a task an operator's output batch is handed straight to the next
 * operator as a borrowed batch: no copy, no queue (rn__deliver,
 * rn__flush_ports); across tasks batches go through channels and exchanges
 * (rn_channel.c).
 *
 *   source task    restore, open; then poll() the head in a loop, cutting
 *                  watermarks into its output (rn_time.c) and emitting
 *                  barriers when a checkpoint is requested (rn_barrier.c)
 *   consumer task  restore, open; then read its input channels round robin:
 *                  batches to process(), watermarks and idleness to
 *                  rn_time.c, barriers to rn_barrier.c
 *
 * End. A bounded source returns RN_POLL_END (or the job is asked to stop): its
 * task calls finish() down its chain in order, flushes, and sends END on every
 * outgoing channel. A task whose inputs have all ended does the same. When
 * every thread has returned, the job is over.
 */
#include <assert.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rn_auth_int.h"
#include "rn_exec_int.h"
#include "rn_status_int.h"
#include "rn_http_int.h"
#include "rn_serve_int.h"

/* ---- job errors --------------------------------------------------------------- */

void rn__job_set_error(struct rn_job *job, const char *fmt, ...)
{
    pthread_mutex_lock(&job->err_mu);
    if (!job->error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(job->error, sizeof job->error, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&job->err_mu);
    atomic_store(&job->aborting, 1);
}

void rn__send_batch(struct rn_instance *in, struct rn_port_out *po, const struct rn_batch *b)
{
    for (int t = 0; t < po->n_targets; t++) {
        if (po->targets[t].local)
            rn__deliver(po->targets[t].local, po->targets[t].input, b);
        else
            rn__exchange_send(po->targets[t].xchg, b);
    }
}

/* Hands every pending output of `in` to its targets, then clears it. */
void rn__flush_ports(struct rn_instance *in)
{
    for (int p = 0; p < in->n_ports; p++) {
        struct rn_port_out *po = &in->ports[p];
        struct rn_batch *b = po->batch;
        if (b->n == 0) continue;
        atomic_fetch_add_explicit(&po->records, b->n, memory_order_relaxed);
        if (po->n_targets == 0) {
            atomic_fetch_add_explicit(&po->dropped, b->n, memory_order_relaxed);
        }
        if (p == 0 && (in->node->type->flags & RN_OP_EVENT_TIME) && in->task->is_source)
            rn__send_with_watermarks(in, po, b);
        else
            rn__send_batch(in, po, b);
        rn_batch_clear(b);
    }
}

void rn__check_rc(struct rn_instance *in, int rc, const char *what)
{
    /* A failed state backend fails the job even if the callback went on as
     * if nothing happened; its message says what failed and where. */
    const char *serr = in->keyed ? rn__op_state_error(in->keyed) : NULL;
    if ((rc < 0 || serr) && !atomic_load(&in->job->aborting)) {
        if (serr)
            rn__job_set_error(in->job, "'%s' (subtask %u) failed in %s: %s", in->node->id,
                              in->task->subtask, what, serr);
        else
            rn__job_set_error(in->job, "'%s' failed in %s: %s", in->node->id, what,
                              rn_strerror(rc));
    }
}

void rn__deliver(struct rn_instance *in, int input, const struct rn_batch *b)
{
    if (RN_UNLIKELY(atomic_load_explicit(&in->job->aborting, memory_order_relaxed))) return;
    atomic_fetch_add_explicit(&in->records_in, b->n, memory_order_relaxed);
    atomic_fetch_add_explicit(&in->batches_in, 1, memory_order_relaxed);
    /* A fused chain may call process() of a downstream instance from inside
     * this one's; each call restores what it found. */
    int outer = in->cur_input;
    in->cur_input = input;
    int rc = in->node->type->process(&in->op, b, &in->em);
    if (in->keyed) rn__op_state_flush(in->keyed);
    in->cur_input = outer;
    rn__check_rc(in, rc, "process");
    rn__flush_ports(in);
}

/* ---- the end of a task ---------------------------------------------------------- */

/* The end of the task: when its input was drained (bounded sources ran out),
 * event time goes to +inf so every timer fires; when the job was stopped it
 * does not, so that state and timers carry over to the restart. Then
 * finish() down the chain in order, and — with checkpoints — the final
 * snapshot; then END (saying which of the two) on every outgoing channel, and
 * (checkpoints) a wait for the final checkpoint to complete, so that sinks
 * commit on this thread. */
static void rn__task_finish(struct rn_task *t, int drained)
{
    struct rn_job *job = t->job;
    if (!atomic_load(&job->aborting) && drained) rn__task_advance(t, RN_TS_MAX);
    for (int i = 0; i < t->n_inst; i++) {
        struct rn_instance *in = t->inst[i];
        if (in->node->type->finish && !atomic_load(&job->aborting)) {
            int rc = in->node->type->finish(&in->op, &in->em);
            rn__check_rc(in, rc, "finish");
        }
        rn__flush_ports(in);
        in->finished = 1;
    }
    uint64_t final_id = 0;
    if (job->ckpt_enabled && !atomic_load(&job->aborting)) {
        final_id = rn__ckpt_final_id(job);
        rn__task_snapshot(t, final_id, 0);
        rn__task_poll_state(t, 1);
    }
    rn__task_flush_exchanges(t);
    for (int i = 0; i < t->n_xchgs; i++) {
        struct rn_exchange *x = t->xchgs[i];
        for (uint32_t d = 0; d < x->n_dest; d++) {
            struct rn_msg m = {RN_MSG_END, NULL, drained};
            rn__channel_push(x->ch[d], &m);
        }
    }
    if (final_id) {
        /* A failed final checkpoint is taken again under a new id (the
         * coordinator decides; see rn_checkpoint.c): this task has finished,
         * so it snapshots the same state into it. */
        for (;;) {
            uint32_t seen = atomic_load(&t->sig.seq);
            if (atomic_load(&job->aborting)) break;
            uint64_t cur = atomic_load(&job->final_id);
            if (atomic_load_explicit(&job->completed_id, memory_order_acquire) >= cur) break;
            if (cur != final_id) {
                final_id = cur;
                rn__task_snapshot(t, final_id, 0);
                rn__task_poll_state(t, 1);
                continue;
            }
            rn__signal_wait(&t->sig, seen, RN_WAIT_NS);
        }
        rn__task_notify(t);
    }
    t->finished_ok = !atomic_load(&job->aborting);
}

static void rn__task_run_source(struct rn_task *t)
{
    struct rn_instance *head = t->inst[0];
    const struct rn_op_type *ty = head->node->type;
    struct rn_job *job = t->job;
    int drained = 0;
    t->last_data_ns = rn_now_ns();
    /* A restored split resumes its event time before any record. */
    if (t->max_ts != RN_TS_MIN && t->wm > RN_TS_MIN) rn__task_broadcast(t, RN_MSG_WATERMARK, t->wm);
    for (;;) {
        if (atomic_load_explicit(&job->aborting, memory_order_relaxed)) return;
        if (job->ckpt_enabled) {
            rn__source_checkpoint(t);
            rn__task_poll_state(t, 0);
            rn__task_notify(t);
        }
        if (atomic_load_explicit(&job->stopping, memory_order_relaxed)) break;
        rn__task_fire_timers(t);
        int64_t t0 = rn_now_ns();
        uint32_t seen = atomic_load(&t->sig.seq);
        int rc = ty->poll(&head->op, &head->em);
        atomic_fetch_add_explicit(&head->busy_ns, (uint64_t)(rn_now_ns() - t0),
                                  memory_order_relaxed);
        if (rc < 0) {
            rn__check_rc(head, rc, "poll");
            return;
        }
        rn__flush_ports(head);
        rn__source_watermark(t, rc == RN_POLL_IDLE);
        if (rc == RN_POLL_END) {
            drained = 1;
            break;
        }
        if (rc == RN_POLL_IDLE) {
            rn__task_flush_exchanges(t);
            long wait = rn__task_wait_ns(t, RN_WAIT_NS);
            if (wait > 0) rn__signal_wait(&t->sig, seen, wait);
        } else {
            rn__task_maybe_flush(t);
        }
    }
    /* A checkpoint requested just before the end still gets its barrier. */
    if (job->ckpt_enabled) rn__source_checkpoint(t);
    rn__task_finish(t, drained);
}

static void rn__task_run_consumer(struct rn_task *t)
{
    int next = 0;
    struct rn_job *job = t->job;
    while (t->n_ended < t->n_inputs) {
        if (atomic_load_explicit(&job->aborting, memory_order_relaxed)) return;
        if (job->ckpt_enabled) {
            rn__task_poll_state(t, 0);
            rn__task_notify(t);
        }
        rn__task_fire_timers(t);
        uint32_t seen = atomic_load(&t->sig.seq);
        int got = 0;
        for (int k = 0; k < t->n_inputs; k++) {
            struct rn_channel *ch = t->inputs[(next + k) % t->n_inputs];
            if (ch->ended) continue;
            struct rn_msg m;
            /* Drain a few messages per channel per round for fairness; an
             * input that delivered a barrier waits for the others. */
            for (int burst = 0; burst < 4 && !ch->blocked && rn__channel_pop(ch, &m); burst++) {
                got = 1;
                switch (m.kind) {
                case RN_MSG_DATA: {
                    struct rn_instance *in = t->inst[ch->target];
                    int64_t t0 = rn_now_ns();
                    rn__deliver(in, ch->input, m.batch);
                    atomic_fetch_add_explicit(&in->busy_ns, (uint64_t)(rn_now_ns() - t0),
                                              memory_order_relaxed);
                    rn__channel_recycle(ch, m.batch);
                    break;
                }
                case RN_MSG_WATERMARK:
                    if (m.value > ch->wm) ch->wm = m.value;
                    rn__consumer_watermark(t);
                    break;
                case RN_MSG_IDLE:
                    ch->idle = (int)m.value;
                    rn__consumer_watermark(t);
                    break;
                case RN_MSG_BARRIER: rn__consumer_barrier(t, ch, (uint64_t)m.value); break;
                case RN_MSG_END:
                    ch->ended = 1;
                    t->n_ended++;
                    if (!m.value) t->stopped_input = 1;
                    rn__consumer_input_ended(t);
                    rn__consumer_watermark(t);
                    break;
                }
                if (ch->ended) break;
            }
        }
        next = (next + 1) % (t->n_inputs ? t->n_inputs : 1);
        if (!got) {
            rn__task_flush_exchanges(t);
            /* Pushing may have taken time in which input came. */
            long wait = rn__task_wait_ns(t, RN_WAIT_NS);
            if (wait > 0 && atomic_load(&t->sig.seq) == seen) rn__signal_wait(&t->sig, seen, wait);
        } else {
            rn__task_maybe_flush(t);
        }
    }
    rn__task_finish(t, !t->stopped_input);
}

static void *rn__task_main(void *arg)
{
    struct rn_task *t = arg;
    /* Named after its chain's head and subtask, as top -H and perf show it
     * (the kernel keeps 15 bytes). */
    char name[16];
    snprintf(name, sizeof name, "rn:%s/%u", t->inst[0]->node->id, t->subtask);
    pthread_setname_np(pthread_self(), name);
    int ok = rn__task_restore(t) == 0;
    for (int i = 0; i < t->n_inst && ok; i++) {
        struct rn_instance *in = t->inst[i];
        in->opened = 1;
        in->needs_close = 1;
        if (in->node->type->open) {
            int rc = in->node->type->open(&in->op);
            if (rc < 0) {
                rn__check_rc(in, rc, "open");
                ok = 0;
                break;
            }
        }
    }
    if (ok) {
        if (t->inst[0]->node->kind == RN_KIND_SOURCE)
            rn__task_run_source(t);
        else
            rn__task_run_consumer(t);
    }
    for (int i = 0; i < t->n_inst; i++) {
        struct rn_instance *in = t->inst[i];
        /* No handler of the instance runs once close() begins. */
        rn__serve_remove(t->job->serve, in);
        if (in->needs_close && in->node->type->close) in->node->type->close(&in->op);
    }
    struct timespec cpu;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0)
        atomic_store(&t->cpu_ns, (int64_t)cpu.tv_sec * 1000000000 + cpu.tv_nsec);
    /* Wake everyone: a producer may wait for room we will never make. */
    for (int c = 0; c < t->job->n_channels; c++) {
        rn__signal_notify(&t->job->channels[c]->producer->sig);
        rn__signal_notify(&t->job->channels[c]->consumer->sig);
    }
    return NULL;
}

/* ---- running ------------------------------------------------------------------- */

static void rn__print_summary(struct rn_job *job)
{
    double secs = (double)(job->end_ns - job->start_ns) / 1e9;
    fprintf(stderr, "runnel: job '%s' %s in %.3f s\n", job->name,
            job->error[0] ? "failed" : "finished", secs);
    for (int i = 0; i < job->n_nodes; i++) {
        const struct rn_node *n = &job->nodes[i];
        struct rn_group *g = &job->groups[n->group];
        int pos = rn__group_pos(g, i);
        uint64_t in, out, dropped;
        rn__instance_totals(job, i, &in, &out, &dropped);
        fprintf(stderr, "  %-16s in %10llu  out %10llu", n->id, (unsigned long long)in,
                (unsigned long long)out);
        for (int p = 1; p < (int)n->type->n_outputs; p++) {
            uint64_t v = 0;
            for (uint32_t s = 0; s < g->parallelism; s++)
                v += atomic_load(&g->tasks[s]->inst[pos]->ports[p].records);
            fprintf(stderr, "  %s %llu", n->type->outputs[p].name, (unsigned long long)v);
        }
        for (int m = 0; n->type->metrics && n->type->metrics[m]; m++) {
            uint64_t v = 0;
            for (uint32_t s = 0; s < g->parallelism; s++)
                v += atomic_load(&g->tasks[s]->inst[pos]->metrics[m]);
            fprintf(stderr, "  %s %llu", n->type->metrics[m], (unsigned long long)v);
        }
        if (dropped) fprintf(stderr, "  unrouted %llu", (unsigned long long)dropped);
        fputc('\n', stderr);
    }
    /* Per thread: records into its chain per CPU-second of that thread. */
    for (int gi = 0; gi < job->n_groups; gi++) {
        struct rn_group *g = &job->groups[gi];
        const struct rn_node *head = &job->nodes[g->nodes[0]];
        for (uint32_t s = 0; s < g->parallelism; s++) {
            struct rn_task *t = g->tasks[s];
            struct rn_instance *hi = t->inst[0];
            uint64_t recs = head->kind == RN_KIND_SOURCE ? atomic_load(&hi->ports[0].records)
                                                         : atomic_load(&hi->records_in);
            double cpu = (double)atomic_load(&t->cpu_ns) / 1e9;
            fprintf(stderr, "  thread chain=%d subtask=%u head=%s records=%llu cpu_s=%.3f "
                            "records_per_cpu_s=%.0f\n",
                    gi, s, head->id, (unsigned long long)recs, cpu, cpu > 0 ? (double)recs / cpu : 0);
            if (t->statedb) {
                struct rn_state_figures f;
                rn__statedb_figures(t->statedb, &f);
                fprintf(stderr, "  state chain=%d subtask=%u cache_hits=%llu cache_misses=%llu "
                                "db_reads=%llu cache_evictions=%llu cache_bytes=%llu\n",
                        gi, s, (unsigned long long)f.cache_hits, (unsigned long long)f.cache_misses,
                        (unsigned long long)f.db_reads, (unsigned long long)f.cache_evictions,
                        (unsigned long long)f.cache_bytes);
            }
        }
    }
    struct rn__proc_figs pf;
    rn__proc_figures(&pf);
    fprintf(stderr, "  process cpu_s=%.3f peak_rss_kib=%llu\n", pf.cpu_s,
            (unsigned long long)(pf.peak_rss_bytes / 1024));
}

int rn_job_run(struct rn_job *job, char *errbuf, size_t errlen)
{
    if (atomic_load(&job->running) || job->start_ns) {
        rn_errf(errbuf, errlen, "job '%s' was already run", job->name);
        return RN_EINVAL;
    }
    rn__job_build(job);
    if (job->ckpt_enabled) {
        if (rn__restore_find(job, &job->restore, errbuf, errlen)) return RN_EINVAL;
        if (job->restore && !job->quiet)
            fprintf(stderr, "runnel: restoring from %s (checkpoint %llu)\n", job->restore->dir,
                    (unsigned long long)job->restore->id);
    }
    job->rate_prev = rn_xcalloc((size_t)job->n_nodes, sizeof *job->rate_prev);
    job->rate = rn_xcalloc((size_t)job->n_nodes, sizeof *job->rate);
    job->start_ns = rn_now_ns();
    if (job->ckpt_enabled && rn__ckpt_start(job, errbuf, errlen)) return RN_EIO;
    if (job->serve_listen) {
        rn__serve_free(job->serve); /* a previous run's, if the job runs again */
        job->serve = rn__serve_start(job->serve_listen, job->serve_threads, &job->serve_http,
                                     errbuf, errlen);
        if (!job->serve) {
            rn__ckpt_stop(job);
            return RN_EINVAL;
        }
        if (!job->quiet)
            fprintf(stderr, "runnel: serving at http://%s/ (%d threads)\n",
                    rn__serve_address(job->serve), job->serve_threads);
    }
    /* From here on the status renderers may read the run's structures. */
    atomic_store_explicit(&job->built, 1, memory_order_release);
    atomic_store(&job->running, 1);
    if (job->http_listen) {
        /* Beyond loopback, calls that change something need the token
         * (docs/operations.md); it is read before the first request. */
        job->need_token = !rn_addr_is_loopback(job->http_listen);
        const char *tf = job->token_file ? job->token_file : getenv("RUNNEL_TOKEN_FILE");
        if (job->need_token && rn_token_load(tf && tf[0] ? tf : "var/token", 1, job->token,
                                             sizeof job->token, errbuf, errlen))
            job->http = NULL;
        else if (rn__status_sampler_start(job, errbuf, errlen))
            job->http = NULL;
        else
            job->http = rn_http_start(job->http_listen, rn__status_handler, job, errbuf, errlen);
        if (!job->http) {
            rn__status_sampler_stop(job);
            rn__ckpt_stop(job);
            atomic_store(&job->running, 0);
            rn__serve_stop(job->serve); /* freed with the job */
            return RN_EINVAL;
        }
        snprintf(job->http_addr, sizeof job->http_addr, "%s", rn_http_address(job->http));
        atomic_store_explicit(&job->http_ready, 1, memory_order_release);
        if (!job->quiet)
            fprintf(stderr, "runnel: status page at http://%s/\n", job->http_addr);
    }
    /* Worker threads must not take SIGINT/SIGTERM: the caller handles them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int started = 0, failed = 0;
    for (int gi = 0; gi < job->n_groups && !failed; gi++) {
        struct rn_group *g = &job->groups[gi];
        for (uint32_t s = 0; s < g->parallelism; s++) {
            struct rn_task *t = g->tasks[s];
            if (pthread_create(&t->thread, NULL, rn__task_main, t) != 0) {
                rn__job_set_error(job, "cannot start a worker thread");
                failed = 1;
                break;
            }
            t->started = 1;
            started++;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    for (int gi = 0; gi < job->n_groups; gi++) {
        struct rn_group *g = &job->groups[gi];
        for (uint32_t s = 0; s < g->parallelism; s++)
            if (g->tasks[s]->started) pthread_join(g->tasks[s]->thread, NULL);
    }
    job->end_ns = rn_now_ns();
    rn__status_sampler_stop(job); /* after a last sample; the history stays for --hold */
    rn__ckpt_stop(job);
    atomic_store(&job->running, 0);
    if (!job->quiet) rn__print_summary(job);
    if (job->http && job->hold) {
        if (!job->quiet)
            fprintf(stderr, "runnel: job ended; status page stays up at http://%s/ until "
                            "SIGINT/SIGTERM\n", job->http_addr);
        while (!atomic_load(&job->stopping)) usleep(50000);
    }
    if (job->http) {
        rn_http_stop(job->http);
        job->http = NULL;
    }
    rn__serve_stop(job->serve); /* freed with the job: the status page may still read it */
    (void)started;
    if (job->error[0]) {
        rn_errf(errbuf, errlen, "%s", job->error);
        return RN_EIO;
    }
    return 0;
}

void rn_job_stop(struct rn_job *job)
{
    atomic_store(&job->stopping, 1);
}

const char *rn_job_http_address(struct rn_job *job)
{
    return atomic_load_explicit(&job->http_ready, memory_order_acquire) ? job->http_addr : "";
}
