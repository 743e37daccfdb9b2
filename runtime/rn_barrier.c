/*
 * rn_barrier.c — the task side of checkpoints: barriers, alignment, snapshots
 * and restore.
 *
 * The coordinator (rn_checkpoint.c) asks every source task for checkpoint N.
 * A source task sends barrier N after everything it emitted so far and
 * snapshots itself. A consumer task stops reading an input once barrier N
 * arrived on it (alignment); when every input that has not ended delivered
 * N, it forwards the barrier and snapshots: the task's event time
 * (runtime.bin), each instance's snapshot() (ops/<id>.bin), and its keyed
 * state (a RocksDB checkpoint, written in the background and acked when
 * done). On start, rn__task_restore reads the same back: the key groups the
 * subtask owns now, from whichever old subtasks held them.
 *
 * Everything here runs on the task's own thread.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_exec_int.h"
#include "rn_fs_int.h"

/* Format version of runtime.bin (the task's event time). */
#define RN__RUNTIME_FORMAT 1

/* State format versions of an operator type: the one it writes, and the
 * oldest it reads. */
static uint32_t rn__ty_version(const struct rn_op_type *ty)
{
    return ty->state_version ? ty->state_version : 1;
}
static uint32_t rn__ty_version_min(const struct rn_op_type *ty)
{
    uint32_t v = rn__ty_version(ty);
    return ty->state_version_min && ty->state_version_min < v ? ty->state_version_min : v;
}

/* ---- checkpoints ------------------------------------------------------------------ */

void rn__task_notify(struct rn_task *t)
{
    uint64_t done = atomic_load_explicit(&t->job->completed_id, memory_order_acquire);
    if (done <= t->notified) return;
    t->notified = done;
    for (int i = 0; i < t->n_inst; i++) {
        struct rn_instance *in = t->inst[i];
        if (in->opened && in->node->type->notify_checkpoint_complete) {
            int rc = in->node->type->notify_checkpoint_complete(&in->op, done);
            rn__check_rc(in, rc, "notify_checkpoint_complete");
        }
    }
}

/* "chain 'x' subtask n" for messages. */
static void rn__task_name(const struct rn_task *t, char *out, size_t n)
{
    const struct rn_job *job = t->job;
    snprintf(out, n, "chain '%s' subtask %u", job->nodes[job->groups[t->group].nodes[0]].id,
             t->subtask);
}

/* A state backend that failed (not only a checkpoint that could not be
 * written) fails the job: its working data can no longer be trusted. */
static void rn__task_check_state(struct rn_task *t)
{
    const char *serr = rn__statedb_error(t->statedb);
    if (serr && !atomic_load(&t->job->aborting))
        rn__job_set_error(t->job, "chain '%s' subtask %u: %s",
                          t->job->nodes[t->job->groups[t->group].nodes[0]].id, t->subtask, serr);
}

/* Acks the task's checkpoint once its state's background part is written
 * (wait: block until it is). */
void rn__task_poll_state(struct rn_task *t, int wait)
{
    if (!t->ack_id) return;
    char err[512] = "";
    int rc = rn__statedb_checkpoint_poll(t->statedb, wait, err, sizeof err);
    if (rc == 0) return;
    rn__task_check_state(t);
    uint64_t id = t->ack_id;
    t->ack_id = 0;
    if (rc < 0) {
        char name[200], msg[800];
        rn__task_name(t, name, sizeof name);
        snprintf(msg, sizeof msg, "%s: %s", name, err);
        rn__ckpt_ack(t->job, id, &t->ack_stats, msg);
    } else {
        rn__ckpt_ack(t->job, id, &t->ack_stats, NULL);
    }
}

/* Snapshots the task into checkpoint `id` and acks it (at once, or when the
 * background part of its state checkpoint is done). Runs on the task's
 * thread between records, so everything before the barrier is in and nothing
 * after it. */
void rn__task_snapshot(struct rn_task *t, uint64_t id, int64_t align_ns)
{
    struct rn_job *job = t->job;
    rn__task_poll_state(t, 1);
    int64_t t0 = rn_now_ns();
    int ok = 1;
    char err[512] = "";
    char *dir = rn__ckpt_task_dir(job, id, t, err, sizeof err);
    if (!dir) {
        /* The coordinator gave this id up (the barrier still passes on), or
         * the directory could not be made. */
        t->last_ckpt = id;
        if (err[0]) {
            char name[200], msg[800];
            rn__task_name(t, name, sizeof name);
            snprintf(msg, sizeof msg, "%s: %s", name, err);
            struct rn_ckpt_stats st = {rn_now_ns() - t0, align_ns, 0};
            rn__ckpt_ack(job, id, &st, msg);
        }
        return;
    }
    struct rn_snapshot_writer *w = rn__snapshot_writer_create();
    rn__snapshot_writer_set_version(w, RN__RUNTIME_FORMAT);
    rn_snapshot_write_i64(w, t->max_ts);
    rn_snapshot_write_i64(w, t->wm);
    rn_snapshot_write_i64(w, (int64_t)t->assigned);
    size_t pl = strlen(dir) + 512;
    char *path = rn_xmalloc(pl);
    snprintf(path, pl, "%s/runtime.bin", dir);
    if (rn__snapshot_writer_save(w, path, err, sizeof err)) ok = 0;
    rn__snapshot_writer_destroy(w);
    rn__ckpt_fault_task(job, id);
    for (int i = 0; i < t->n_inst && ok; i++) {
        struct rn_instance *in = t->inst[i];
        const struct rn_op_type *ty = in->node->type;
        /* Operators with keyed state get a file even when they keep nothing
         * in memory: its header records their state's format version. */
        if (!ty->snapshot && !in->keyed) continue;
        w = rn__snapshot_writer_create();
        rn__snapshot_writer_set_version(w, rn__ty_version(ty));
        int rc = ty->snapshot ? ty->snapshot(&in->op, id, w) : 0;
        snprintf(path, pl, "%s/ops", dir);
        if (rc >= 0 && rn_fs_mkdirs(path, err, sizeof err)) {
            ok = 0;
            rn__snapshot_writer_destroy(w);
            break;
        }
        snprintf(path, pl, "%s/ops/%s.bin", dir, in->node->id);
        if (rc < 0) {
            snprintf(err, sizeof err, "'%s' snapshot failed: %s", in->node->id, rn_strerror(rc));
            ok = 0;
        } else if (rn__snapshot_writer_save(w, path, err, sizeof err)) {
            ok = 0;
        }
        rn__snapshot_writer_destroy(w);
    }
    int deferred = 0;
    if (ok && t->statedb) {
        snprintf(path, pl, "%s/db", dir);
        if (rn__statedb_checkpoint_begin(t->statedb, path, err, sizeof err)) ok = 0;
        else deferred = 1;
    }
    rn__task_check_state(t);
    free(path);
    free(dir);
    t->last_ckpt = id;
    struct rn_ckpt_stats st = {rn_now_ns() - t0, align_ns, 0};
    if (deferred) {
        t->ack_id = id;
        t->ack_stats = st;
    } else if (ok) {
        rn__ckpt_ack(job, id, &st, NULL);
    } else {
        char name[200], msg[800];
        rn__task_name(t, name, sizeof name);
        snprintf(msg, sizeof msg, "%s: %s", name, err);
        rn__ckpt_ack(job, id, &st, msg);
    }
}

/* Source tasks: a checkpoint was requested; the barrier follows everything
 * this task emitted so far. */
void rn__source_checkpoint(struct rn_task *t)
{
    uint64_t id = atomic_load_explicit(&t->trigger, memory_order_acquire);
    if (id <= t->last_ckpt) return;
    rn__task_broadcast(t, RN_MSG_BARRIER, (int64_t)id);
    rn__task_snapshot(t, id, 0);
}

/* Consumers: is every input either at barrier `id` or ended? */
static int rn__aligned(struct rn_task *t, uint64_t id)
{
    for (int k = 0; k < t->n_inputs; k++)
        if (!t->inputs[k]->ended && t->inputs[k]->blocked != id) return 0;
    return 1;
}

static void rn__consumer_complete_alignment(struct rn_task *t)
{
    uint64_t id = t->align_id;
    int64_t align_ns = rn_now_ns() - t->align_start_ns;
    rn__task_broadcast(t, RN_MSG_BARRIER, (int64_t)id);
    rn__task_snapshot(t, id, align_ns);
    for (int k = 0; k < t->n_inputs; k++) t->inputs[k]->blocked = 0;
    t->align_id = 0;
}

void rn__consumer_barrier(struct rn_task *t, struct rn_channel *ch, uint64_t id)
{
    if (id <= t->last_ckpt) return; /* a stale barrier of a checkpoint given up */
    if (t->align_id == 0 || id > t->align_id) {
        for (int k = 0; k < t->n_inputs; k++) t->inputs[k]->blocked = 0;
        t->align_id = id;
        t->align_start_ns = rn_now_ns();
    }
    ch->blocked = id;
    if (rn__aligned(t, id)) rn__consumer_complete_alignment(t);
}


void rn__consumer_input_ended(struct rn_task *t)
{
    if (t->align_id && rn__aligned(t, t->align_id)) rn__consumer_complete_alignment(t);
}

/* ---- restore ----------------------------------------------------------------------- */

/* Fault injection for the fault tests: RUNNEL_FAULT=restore:kill kills the
 * process with SIGKILL once a task has restored its keyed state, and
 * restore:stall hangs that task there, like a disk that stopped answering. */
static void rn__restore_fault(void)
{
    const char *f = getenv("RUNNEL_FAULT");
    if (!f || strncmp(f, "restore:", 8) != 0) return;
    fprintf(stderr, "runnel: RUNNEL_FAULT: %s\n", f);
    if (strcmp(f + 8, "kill") == 0) kill(getpid(), SIGKILL);
    if (strcmp(f + 8, "stall") == 0)
        for (;;)
            pause();
}

/* Opens the task's state and gives each instance its snapshot back. */
/* RN_OP_UNION_RESTORE: restore() once with the bytes of every subtask of
 * the checkpoint (whatever the parallelism then and now), in the order of the
 * checkpoint's task list; the operator keeps what it owns now. */
/* A snapshot's format version against the range the operator reads; on a
 * mismatch the job fails naming the operator and both versions. */
static int rn__check_version(struct rn_instance *in, struct rn_snapshot_reader *rd)
{
    const struct rn_op_type *ty = in->node->type;
    uint32_t found = rn_snapshot_version(rd);
    uint32_t lo = rn__ty_version_min(ty), hi = rn__ty_version(ty);
    if (found <= hi && found >= lo) return 0;
    char range[48];
    if (lo < hi)
        snprintf(range, sizeof range, "versions %u to %u", lo, hi);
    else
        snprintf(range, sizeof range, "version %u", hi);
    rn__job_set_error(in->job,
                      "restore of operator '%s' (%s): the checkpoint holds state format "
                      "version %u; this runnel's %s reads %s (%s)",
                      in->node->id, ty->name, found, ty->name, range,
                      found > hi ? "written by a newer runnel: restore it with that one"
                                 : "too old: restore it with a runnel that reads both, "
                                   "take a savepoint, and restore that");
    return RN_ECORRUPT;
}

static int rn__restore_union(struct rn_instance *in, const struct rn_restore *r, char *path,
                             size_t pl)
{
    char err[1024] = "";
    for (size_t k = 0; k < r->n_tasks; k++) {
        snprintf(path, pl, "%s/tasks/%s-%u/ops/%s.bin", r->dir, r->tasks[k].head,
                 r->tasks[k].subtask, in->node->id);
        if (!rn_fs_exists(path)) continue;
        struct rn_snapshot_reader *rd = rn__snapshot_reader_open(path, r->id, err, sizeof err);
        if (!rd) {
            rn__job_set_error(in->job, "restore of '%s': %s", in->node->id, err);
            return RN_ECORRUPT;
        }
        if (rn__check_version(in, rd) < 0) {
            rn__snapshot_reader_destroy(rd);
            return RN_ECORRUPT;
        }
        in->needs_close = 1;
        int rc = in->node->type->restore(&in->op, rd);
        rn__snapshot_reader_destroy(rd);
        if (rc < 0) {
            rn__check_rc(in, rc, "restore");
            return rc;
        }
        in->restored = 1;
    }
    return 0;
}

int rn__task_restore(struct rn_task *t)
{
    struct rn_job *job = t->job;
    struct rn_group *g = &job->groups[t->group];
    const char *head = job->nodes[g->nodes[0]].id;
    struct rn_restore *r = job->restore;
    char err[1024] = "";
    int need_state = 0, state_restored = 0;
    for (int i = 0; i < t->n_inst; i++) {
        const struct rn_op_type *ty = t->inst[i]->node->type;
        if ((ty->flags & RN_OP_KEYED) && (ty->flags & RN_OP_STATEFUL)) need_state = 1;
    }
    const struct rn_restore_task *mine = NULL;
    for (size_t i = 0; r && i < r->n_tasks; i++)
        if (strcmp(r->tasks[i].head, head) == 0 && r->tasks[i].subtask == t->subtask)
            mine = &r->tasks[i];
    if (need_state) {
        struct rn_state_source *src = rn_xcalloc(r ? r->n_tasks + 1 : 1, sizeof *src);
        char **dirs = rn_xcalloc(r ? r->n_tasks + 1 : 1, sizeof *dirs);
        size_t n = 0;
        for (size_t i = 0; r && i < r->n_tasks; i++) {
            const struct rn_restore_task *rt = &r->tasks[i];
            if (strcmp(rt->head, head) != 0 || !rt->has_state) continue;
            if (rt->kg_end <= t->kg_start || rt->kg_start >= t->kg_end) continue;
            size_t dl = strlen(r->dir) + strlen(head) + 64;
            dirs[n] = rn_xmalloc(dl);
            snprintf(dirs[n], dl, "%s/tasks/%s-%u/db", r->dir, head, rt->subtask);
            src[n].dir = dirs[n];
            src[n].kg_start = rt->kg_start;
            src[n].kg_end = rt->kg_end;
            n++;
        }
        t->statedb = rn__statedb_open(&job->state, t->state_dir, t->kg_start, t->kg_end,
                                      job->max_parallelism, src, n, err, sizeof err);
        for (size_t i = 0; i < n; i++) free(dirs[i]);
        free(dirs);
        free(src);
        state_restored = n > 0;
        if (!t->statedb) {
            rn__job_set_error(job, "chain '%s' subtask %u: %s", head, t->subtask, err);
            return RN_ESTATE;
        }
        for (int i = 0; i < t->n_inst; i++) {
            struct rn_instance *in = t->inst[i];
            const struct rn_op_type *ty = in->node->type;
            if ((ty->flags & RN_OP_KEYED) && (ty->flags & RN_OP_STATEFUL)) {
                in->keyed = rn__op_state_create(t->statedb, in->node->id, job->max_parallelism);
                atomic_store_explicit(&in->keyed_pub, in->keyed, memory_order_release);
            }
        }
        atomic_store_explicit(&t->statedb_pub, t->statedb, memory_order_release);
    }
    if (!r) return 0;
    rn__restore_fault();
    size_t pl = strlen(r->dir) + strlen(head) + 512;
    char *path = rn_xmalloc(pl);
    snprintf(path, pl, "%s/tasks/%s-%u/runtime.bin", r->dir, head, t->subtask);
    struct rn_snapshot_reader *rd =
        mine ? rn__snapshot_reader_open(path, r->id, err, sizeof err) : NULL;
    int rc = 0;
    if (rd && rn_snapshot_version(rd) > RN__RUNTIME_FORMAT) {
        rn__job_set_error(job,
                          "restore of chain '%s' subtask %u: %s has format version %u; this "
                          "runnel reads version %u",
                          head, t->subtask, path, rn_snapshot_version(rd), RN__RUNTIME_FORMAT);
        rn__snapshot_reader_destroy(rd);
        free(path);
        return RN_ECORRUPT;
    }
    if (rd) {
        int64_t max_ts, wm, assigned;
        if (rn_snapshot_read_i64(rd, &max_ts) == 0 && rn_snapshot_read_i64(rd, &wm) == 0 &&
            rn_snapshot_read_i64(rd, &assigned) == 0 && t->is_source) {
            t->max_ts = max_ts;
            t->wm = wm;
            t->assigned = (uint64_t)assigned;
        }
        rn__snapshot_reader_destroy(rd);
    }
    for (int i = 0; i < t->n_inst && rc == 0; i++) {
        struct rn_instance *in = t->inst[i];
        const struct rn_op_type *ty = in->node->type;
        if (!ty->restore && !in->keyed) continue;
        if (ty->flags & RN_OP_UNION_RESTORE) {
            rc = rn__restore_union(in, r, path, pl);
            continue;
        }
        /* The operator's bytes, wherever its chain was cut last time: its own
         * chain first, then any chain of the same subtask. */
        snprintf(path, pl, "%s/tasks/%s-%u/ops/%s.bin", r->dir, head, t->subtask, in->node->id);
        for (size_t k = 0; k < r->n_tasks && !rn_fs_exists(path); k++)
            if (r->tasks[k].subtask == t->subtask)
                snprintf(path, pl, "%s/tasks/%s-%u/ops/%s.bin", r->dir, r->tasks[k].head,
                         t->subtask, in->node->id);
        int own = rn_fs_exists(path);
        /* Keyed state moves between subtasks: its format version is that of
         * any old subtask's file (all were written by one runnel). */
        for (size_t k = 0; k < r->n_tasks && !own && in->keyed && !rn_fs_exists(path); k++)
            snprintf(path, pl, "%s/tasks/%s-%u/ops/%s.bin", r->dir, r->tasks[k].head,
                     r->tasks[k].subtask, in->node->id);
        if (!rn_fs_exists(path)) {
            /* Keyed state from a checkpoint older than format versions. */
            if (in->keyed && state_restored)
                rn__op_state_set_format(in->keyed, &in->op, 1, rn__ty_version(ty),
                                        ty->migrate_state);
            continue;
        }
        rd = rn__snapshot_reader_open(path, r->id, err, sizeof err);
        if (!rd) {
            rn__job_set_error(job, "restore of '%s': %s", in->node->id, err);
            rc = RN_ECORRUPT;
            break;
        }
        uint32_t found = rn_snapshot_version(rd);
        if (rn__check_version(in, rd) < 0) {
            rn__snapshot_reader_destroy(rd);
            rc = RN_ECORRUPT;
            break;
        }
        if (in->keyed)
            rn__op_state_set_format(in->keyed, &in->op, state_restored ? found : rn__ty_version(ty),
                                    rn__ty_version(ty), ty->migrate_state);
        if (!own || !ty->restore) {
            rn__snapshot_reader_destroy(rd);
            continue;
        }
        in->needs_close = 1;
        rc = ty->restore(&in->op, rd);
        rn__snapshot_reader_destroy(rd);
        if (rc < 0) {
            rn__check_rc(in, rc, "restore");
            break;
        }
        in->restored = 1;
    }
    free(path);
    return rc;
}

