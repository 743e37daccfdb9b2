/*
 * rn_coordinator.c — the cluster's coordinator: the job table, which worker
 * runs which task, cluster checkpoints and savepoints, failover, the REST job
 * API and the cluster view. See docs/cluster.md.
 *
 * Everything lives under one mutex and is changed from two threads: the HTTP
 * server's (REST calls, worker registrations and heartbeats) and the tick
 * thread's (every 50 ms: declares workers dead, assigns tasks, drives
 * savepoints, rescales and cancels, records cluster checkpoints). Neither
 * talks to a worker: commands are queued per worker and go out in the reply
 * to its next heartbeat, so a worker that is gone cannot block anything.
 *
 * A job is divided into tasks, one per partition of its Kafka input
 * (rn_cluster_kafka.c). A task's life on the coordinator:
 *
 *   UNASSIGNED ──(a worker is chosen, start queued)──> STARTING
 *   STARTING ──(heartbeat reports it running)──> RUNNING
 *   RUNNING ──(cancel or rescale: stop queued)──> STOPPING ──(gone from the
 *            worker's heartbeat: its final checkpoint is written)──> STOPPED
 *   RUNNING ──(its input ended)──> FINISHED
 *   STARTING, RUNNING ──(worker dead, task failed or lost)──> UNASSIGNED
 *
 * A task restarted anywhere restores its own latest complete checkpoint in
 * <checkpoint.dir>/<job>/tasks/p<p>/ — the engine's ordinary restart.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_assets_int.h"
#include "rn_cluster_int.h"
#include "rn_fs_int.h"
#include "rn_job_int.h"
#include "rn_validate_int.h"

enum rn__ct_state {
    RN__CT_UNASSIGNED,
    RN__CT_STARTING,
    RN__CT_RUNNING,
    RN__CT_STOPPING,
    RN__CT_STOPPED,
    RN__CT_FINISHED
};
static const char *const rn__ct_names[] = {"unassigned", "starting", "running",
                                           "stopping",   "stopped",  "finished"};

enum rn__cj_state { RN__CJ_RUNNING, RN__CJ_CANCELLING, RN__CJ_CANCELED, RN__CJ_FINISHED };
static const char *const rn__cj_names[] = {"running", "cancelling", "canceled", "finished"};

enum rn__op { RN__OP_NONE, RN__OP_SAVEPOINT, RN__OP_CANCEL, RN__OP_RESCALE };
static const char *const rn__op_names[] = {"", "savepoint", "cancel", "rescale"};

struct rn__ctask {
    int partition;
    int stage; /* 0: reads the job's input; k: stage k (docs/cluster.md) */
    char name[16];
    char *sets; /* JSON array of --set overrides that make the job this task */
    enum rn__ct_state state;
    int64_t worker; /* 0: none */
    int start_delivered;
    int64_t not_before_ns; /* restart back-off */
    int restarts;
    uint64_t completed; /* the task's latest complete checkpoint id */
    uint64_t records;
    uint64_t lag; /* consumer lag of its sources, messages */
    uint64_t rate_prev;
    int64_t rate_at_ns;
    double rate;
    char page[64];
    char error[512];
    int64_t req;
    int req_state; /* 0 pending, 1 done, 2 failed */
    char req_path[600];
    char req_error[256]; /* why the request failed (the worker's words) */
    int req_seen;          /* the worker's heartbeat has shown this request */
    int64_t req_sent_ns;   /* when its command was last queued */
};

struct rn__savepoint {
    int64_t id;
    int state; /* 0 pending, 1 completed, 2 failed */
    int64_t at_ms;
    char path[600];
    char error[512]; /* why it failed: each task's reason */
};

#define RN__SP_HISTORY 16

struct rn__cjob {
    char *name;
    char *yaml;
    char *file;
    enum rn__cj_state state;
    int n_workers; /* how many workers its tasks spread over */
    int64_t wait_workers_until_ns;
    int n_tasks;
    int n_stages;
    struct rn__ctask *tasks;
    int ckpt_enabled;
    char *ckpt_dir; /* <checkpoint.dir>/<job> */
    int64_t submitted_ms;
    /* The operation in progress (one at a time). */
    enum rn__op op;
    int op_stage; /* 0: savepoint pending, 1: stopping */
    int op_workers;
    int64_t op_deadline_ns;
    int64_t next_req;
    struct rn__savepoint sp[RN__SP_HISTORY];
    int n_sp;
    /* Cluster checkpoints: chk-N.json once every task has a newer one. */
    int64_t cluster_ckpt;
    int64_t retain; /* chk-N.json files kept (checkpoint.retain) */
    uint64_t *ckpt_seen;
    int64_t ckpt_due_ns;
    struct rn__cjob *next;
};

struct rn__cworker {
    int64_t id;
    int slot;
    int pid;
    char addr[64];
    int alive;
    int64_t last_ns;
    int64_t registered_ms;
    struct rn_buf cmds; /* queued commands, comma-separated JSON objects */
    struct rn__cworker *next;
};

struct rn_coord {
    struct rn_coord_opts o;
    char dir[512];
    char token[RN_TOKEN_MAX];
    int need_token;
    struct rn_http_server *http;
    pthread_mutex_t mu;
    pthread_t tick;
    int stop; /* under mu */
    struct rn__cjob *jobs;
    struct rn__cworker *workers;
    int64_t next_worker_id;
    int64_t submits;
    int submitting; /* a submit is being checked on the HTTP thread */
    int64_t started_ms;
    struct rn_buf saved; /* the table as last written to <dir>/state.json */
    int persist_failed;
};

static void rn__persist(struct rn_coord *c);

/* ---- small helpers (under mu) ------------------------------------------------------ */

static struct rn__cjob *rn__job_find(struct rn_coord *c, const char *name, size_t n)
{
    for (struct rn__cjob *j = c->jobs; j; j = j->next)
        if (strlen(j->name) == n && strncmp(j->name, name, n) == 0) return j;
    return NULL;
}

static struct rn__cworker *rn__worker_find(struct rn_coord *c, int64_t id)
{
    for (struct rn__cworker *w = c->workers; w; w = w->next)
        if (w->id == id) return w;
    return NULL;
}

static void rn__queue(struct rn__cworker *w, const char *op, struct rn__cjob *j,
                      struct rn__ctask *t, const char *extra)
{
    if (w->cmds.len) rn_buf_putc(&w->cmds, ',');
    rn_buf_printf(&w->cmds, "{\"op\":\"%s\",", op);
    rn_json_kv_str(&w->cmds, "job", j ? j->name : "");
    rn_json_kv_str(&w->cmds, "task", t ? t->name : "");
    rn_buf_printf(&w->cmds, "\"partition\":%d%s}", t ? t->partition : 0, extra ? extra : "");
}

static void rn__queue_named(struct rn__cworker *w, const char *op, const char *job,
                            const char *task)
{
    if (w->cmds.len) rn_buf_putc(&w->cmds, ',');
    rn_buf_printf(&w->cmds, "{\"op\":\"%s\",", op);
    rn_json_kv_str(&w->cmds, "job", job);
    rn_buf_puts(&w->cmds, "\"task\":");
    rn_json_str(&w->cmds, task, strlen(task));
    rn_buf_putc(&w->cmds, '}');
}

static void rn__free_job(struct rn__cjob *j)
{
    for (int i = 0; i < j->n_tasks; i++)
        free(j->tasks[i].sets);
    free(j->tasks);
    free(j->ckpt_seen);
    free(j->ckpt_dir);
    free(j->name);
    free(j->yaml);
    free(j->file);
    free(j);
}

/* Empties the job table and the worker list. */
static void rn__free_table(struct rn_coord *c)
{
    while (c->jobs) {
        struct rn__cjob *j = c->jobs;
        c->jobs = j->next;
        rn__free_job(j);
    }
    while (c->workers) {
        struct rn__cworker *w = c->workers;
        c->workers = w->next;
        rn_buf_free(&w->cmds);
        free(w);
    }
}

static int rn__alive_workers(struct rn_coord *c)
{
    int n = 0;
    for (struct rn__cworker *w = c->workers; w; w = w->next)
        n += w->alive;
    return n;
}

/* A task's worker went away: what it ran must run again elsewhere. */
static void rn__task_lost(struct rn__ctask *t, const char *why)
{
    if (t->state == RN__CT_STOPPING) {
        t->state = RN__CT_STOPPED;
    } else if (t->state == RN__CT_STARTING || t->state == RN__CT_RUNNING) {
        t->state = RN__CT_UNASSIGNED;
        t->restarts++;
        snprintf(t->error, sizeof t->error, "%s", why);
    }
    t->worker = 0;
    t->page[0] = 0;
    if (t->req_state == 0) {
        t->req_state = 2;
        snprintf(t->req_error, sizeof t->req_error, "%s", why);
    }
}

static void rn__worker_dead(struct rn_coord *c, struct rn__cworker *w, const char *why)
{
    if (!w->alive) return;
    w->alive = 0;
    rn_buf_free(&w->cmds);
    fprintf(stderr, "coordinator: worker %lld (slot %d) %s; its tasks move\n", (long long)w->id,
            w->slot, why);
    for (struct rn__cjob *j = c->jobs; j; j = j->next)
        for (int i = 0; i < j->n_tasks; i++)
            if (j->tasks[i].worker == w->id) rn__task_lost(&j->tasks[i], why);
}

/* ---- the tick (tick thread, under mu) --------------------------------------------------- */

static void rn__sp_add(struct rn__cjob *j, int64_t id)
{
    struct rn__savepoint *s = &j->sp[j->n_sp % RN__SP_HISTORY];
    memset(s, 0, sizeof *s);
    s->id = id;
    s->at_ms = rn_wall_ms();
    j->n_sp++;
}

static struct rn__savepoint *rn__sp_last(struct rn__cjob *j)
{
    return j->n_sp ? &j->sp[(j->n_sp - 1) % RN__SP_HISTORY] : NULL;
}

/* Queues t's savepoint command (request t->req) to its worker. */
static void rn__req_send(struct rn_coord *c, struct rn__cjob *j, struct rn__ctask *t)
{
    struct rn__cworker *w = rn__worker_find(c, t->worker);
    char extra[64];
    snprintf(extra, sizeof extra, ",\"req\":%lld,\"savepoint\":1", (long long)t->req);
    if (w) rn__queue(w, "checkpoint", j, t, extra);
    t->req_sent_ns = rn_now_ns();
}

/* Starts a savepoint of every task (op already set). Returns 0, or < 0 when a
 * task is not running (nothing is sent then). */
static int rn__savepoint_begin(struct rn_coord *c, struct rn__cjob *j, char *err, size_t n)
{
    for (int i = 0; i < j->n_tasks; i++) {
        struct rn__ctask *t = &j->tasks[i];
        if (t->state != RN__CT_RUNNING && t->state != RN__CT_FINISHED) {
            rn_errf(err, n, "task %s is %s: a savepoint needs every task running", t->name,
                    rn__ct_names[t->state]);
            return RN_EINVAL;
        }
    }
    int64_t id = ++j->next_req;
    rn__sp_add(j, id);
    for (int i = 0; i < j->n_tasks; i++) {
        struct rn__ctask *t = &j->tasks[i];
        t->req = id;
        t->req_path[0] = 0;
        t->req_error[0] = 0;
        t->req_state = t->state == RN__CT_FINISHED ? 1 : 0;
        t->req_seen = 0;
        if (t->state != RN__CT_RUNNING) continue;
        rn__req_send(c, j, t);
    }
    j->op_stage = 0;
    j->op_deadline_ns = rn_now_ns() + 120LL * 1000000000;
    return 0;
}

/* Writes <job>/<kind>-N.json: which directory holds each task's part. */
static int rn__write_cluster_manifest(struct rn__cjob *j, const char *kind, int64_t id, int use_req,
                                      char *path, size_t pathlen)
{
    struct rn_buf b = RN_BUF_INIT;
    char err[512];
    rn_buf_printf(&b, "{\"id\":%lld,\"kind\":\"%s\",\"time_ms\":%lld,", (long long)id, kind,
                  (long long)rn_wall_ms());
    rn_json_kv_str(&b, "job", j->name);
    rn_buf_puts(&b, "\"tasks\":[");
    for (int i = 0; i < j->n_tasks; i++) {
        struct rn__ctask *t = &j->tasks[i];
        char dir[700];
        if (use_req)
            snprintf(dir, sizeof dir, "%s", t->req_path);
        else
            snprintf(dir, sizeof dir, "%s/tasks/%s/%s/chk-%llu", j->ckpt_dir, t->name, j->name,
                     (unsigned long long)t->completed);
        rn_buf_printf(&b, "%s{\"task\":\"%s\",\"partition\":%d,\"checkpoint\":%llu,", i ? "," : "",
                      t->name, t->partition, (unsigned long long)t->completed);
        rn_buf_puts(&b, "\"path\":");
        rn_json_str(&b, dir, strlen(dir));
        rn_buf_putc(&b, '}');
    }
    rn_buf_puts(&b, "]}\n");
    snprintf(path, pathlen, "%s/%s-%lld.json", j->ckpt_dir, kind, (long long)id);
    int rc = rn_fs_mkdirs(j->ckpt_dir, err, sizeof err);
    if (!rc) rc = rn_fs_write_atomic(path, b.data, b.len, err, sizeof err);
    if (rc) fprintf(stderr, "coordinator: %s\n", err);
    rn_buf_free(&b);
    return rc;
}

static void rn__tick_op(struct rn_coord *c, struct rn__cjob *j)
{
    int64_t now = rn_now_ns();
    if (j->op != RN__OP_NONE && j->op_stage == 0) {
        struct rn__savepoint *s = rn__sp_last(j);
        int pending = 0, failed = 0;
        for (int i = 0; i < j->n_tasks; i++) {
            pending += j->tasks[i].req_state == 0;
            failed += j->tasks[i].req_state == 2;
        }
        /* A command the worker's heartbeats have not shown within 5 s is
         * sent again (the worker takes a repeated request as the same one). */
        for (int i = 0; pending && !failed && i < j->n_tasks; i++) {
            struct rn__ctask *t = &j->tasks[i];
            if (t->req_state == 0 && !t->req_seen && t->state == RN__CT_RUNNING &&
                now - t->req_sent_ns > 5000000000LL) {
                fprintf(stderr, "coordinator: savepoint %lld of %s: task %s has not acknowledged it; "
                        "sent again\n", (long long)t->req, j->name, t->name);
                rn__req_send(c, j, t);
            }
        }
        if (pending && now < j->op_deadline_ns && !failed) return;
        if (!pending && !failed &&
            rn__write_cluster_manifest(j, "savepoint", s->id, 1, s->path, sizeof s->path) == 0) {
            s->state = 1;
            fprintf(stderr, "coordinator: savepoint %lld of %s completed: %s\n", (long long)s->id,
                    j->name, s->path);
        } else {
            s->state = 2;
            size_t o = 0;
            for (int i = 0; i < j->n_tasks && o < sizeof s->error; i++) {
                const struct rn__ctask *t = &j->tasks[i];
                if (t->req_state == 0 || t->req_state == 2)
                    o += (size_t)snprintf(s->error + o, sizeof s->error - o, "%stask %s: %s",
                                          o ? "; " : "", t->name,
                                          t->req_state == 2 ? t->req_error
                                          : failed ? "not done yet when the savepoint was given up"
                                                   : "no answer before the deadline");
            }
            if (!o) snprintf(s->error, sizeof s->error, "its cluster manifest could not be written");
            fprintf(stderr, "coordinator: savepoint %lld of %s failed: %s\n", (long long)s->id,
                    j->name, s->error);
            if (j->op == RN__OP_RESCALE) { /* no consistent cut to move: do not move */
                j->op = RN__OP_NONE;
                return;
            }
        }
        if (j->op == RN__OP_SAVEPOINT) {
            j->op = RN__OP_NONE;
            return;
        }
        j->op_stage = 1;
    }
    if (j->op == RN__OP_CANCEL || j->op == RN__OP_RESCALE) {
        /* Stop every task; each takes its final checkpoint on the way out. */
        int busy = 0;
        for (int i = 0; i < j->n_tasks; i++) {
            struct rn__ctask *t = &j->tasks[i];
            if (t->state == RN__CT_STARTING || t->state == RN__CT_RUNNING) {
                struct rn__cworker *w = rn__worker_find(c, t->worker);
                if (w && w->alive) {
                    rn__queue(w, "stop", j, t, NULL);
                    t->state = RN__CT_STOPPING;
                } else {
                    t->state = RN__CT_STOPPED;
                }
            }
            busy += t->state == RN__CT_STOPPING;
        }
        if (busy) return;
        if (j->op == RN__OP_CANCEL) {
            j->state = RN__CJ_CANCELED;
            fprintf(stderr, "coordinator: job %s canceled\n", j->name);
        } else {
            j->n_workers = j->op_workers;
            j->wait_workers_until_ns = now + 15LL * 1000000000;
            for (int i = 0; i < j->n_tasks; i++)
                if (j->tasks[i].state == RN__CT_STOPPED) j->tasks[i].state = RN__CT_UNASSIGNED;
            fprintf(stderr, "coordinator: job %s rescaled to %d workers\n", j->name, j->n_workers);
        }
        j->op = RN__OP_NONE;
    }
}

static int rn__cmp_worker(const void *a, const void *b)
{
    const struct rn__cworker *x = *(struct rn__cworker *const *)a,
                             *y = *(struct rn__cworker *const *)b;
    if (x->slot != y->slot) return x->slot < y->slot ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Queues the command that starts task t of job j on worker w (the job's YAML
 * and the task's overrides); the task is STARTING there from now on. */
static void rn__queue_start(struct rn__cworker *w, struct rn__cjob *j, struct rn__ctask *t)
{
    struct rn_buf extra = RN_BUF_INIT;
    rn_buf_puts(&extra, ",\"yaml\":");
    rn_json_str(&extra, j->yaml, strlen(j->yaml));
    rn_buf_printf(&extra, ",\"sets\":%s", t->sets);
    rn_buf_putc(&extra, 0);
    rn__queue(w, "start", j, t, extra.data);
    rn_buf_free(&extra);
    t->state = RN__CT_STARTING;
    t->worker = w->id;
    t->start_delivered = 0;
    t->page[0] = 0;
}

static void rn__tick_assign(struct rn_coord *c, struct rn__cjob *j)
{
    if (j->state != RN__CJ_RUNNING) return;
    if (j->op == RN__OP_CANCEL || j->op == RN__OP_RESCALE) return;
    int64_t now = rn_now_ns();
    int want = 0;
    for (int i = 0; i < j->n_tasks; i++)
        want += j->tasks[i].state == RN__CT_UNASSIGNED && j->tasks[i].not_before_ns <= now;
    if (!want) return;
    struct rn__cworker *ws[256];
    int n = 0;
    for (struct rn__cworker *w = c->workers; w && n < 256; w = w->next)
        if (w->alive) ws[n++] = w;
    if (n == 0) return;
    if (n < j->n_workers && now < j->wait_workers_until_ns) return; /* more are coming */
    qsort(ws, (size_t)n, sizeof *ws, rn__cmp_worker);
    if (n > j->n_workers) n = j->n_workers;
    int load[256] = {0};
    for (int i = 0; i < j->n_tasks; i++)
        for (int k = 0; k < n; k++)
            if (j->tasks[i].worker == ws[k]->id) load[k]++;
    for (int i = 0; i < j->n_tasks; i++) {
        struct rn__ctask *t = &j->tasks[i];
        if (t->state != RN__CT_UNASSIGNED || t->not_before_ns > now) continue;
        int best = 0;
        for (int k = 1; k < n; k++)
            if (load[k] < load[best]) best = k;
        load[best]++;
        rn__queue_start(ws[best], j, t);
        fprintf(stderr, "coordinator: task %s/%s -> worker %lld (slot %d)\n", j->name, t->name,
                (long long)ws[best]->id, ws[best]->slot);
    }
}

/* chk-N.json: every task has completed a checkpoint newer than the last
 * recorded one; the list names each task's directory. */
static void rn__tick_ckpt(struct rn_coord *c, struct rn__cjob *j)
{
    if (!j->ckpt_enabled || j->state != RN__CJ_RUNNING) return;
    int64_t now = rn_now_ns();
    if (now < j->ckpt_due_ns) return;
    j->ckpt_due_ns = now + c->o.checkpoint_every_ms * 1000000;
    for (int i = 0; i < j->n_tasks; i++) {
        struct rn__ctask *t = &j->tasks[i];
        if (t->state != RN__CT_RUNNING && t->state != RN__CT_FINISHED) return;
        if (t->completed == 0 || t->completed <= j->ckpt_seen[i]) return;
    }
    char path[700];
    if (rn__write_cluster_manifest(j, "chk", j->cluster_ckpt + 1, 0, path, sizeof path)) return;
    j->cluster_ckpt++;
    for (int i = 0; i < j->n_tasks; i++)
        j->ckpt_seen[i] = j->tasks[i].completed;
    if (j->cluster_ckpt > j->retain) {
        snprintf(path, sizeof path, "%s/chk-%lld.json", j->ckpt_dir,
                 (long long)(j->cluster_ckpt - j->retain));
        unlink(path);
    }
}

static void *rn__tick_thread(void *arg)
{
    struct rn_coord *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        int64_t now = rn_now_ns();
        /* While a submit is checked (it may wait for Kafka's metadata) the HTTP
         * thread answers no heartbeat: that silence is the coordinator's. */
        for (struct rn__cworker *w = c->submitting ? NULL : c->workers; w; w = w->next)
            if (w->alive && now - w->last_ns > c->o.heartbeat_timeout_ms * 1000000)
                rn__worker_dead(c, w, "sent no heartbeat within the timeout");
        for (struct rn__cjob *j = c->jobs; j; j = j->next) {
            rn__tick_op(c, j);
            rn__tick_assign(c, j);
            rn__tick_ckpt(c, j);
            int fin = j->state == RN__CJ_RUNNING && j->n_tasks > 0;
            for (int i = 0; i < j->n_tasks; i++)
                fin &= j->tasks[i].state == RN__CT_FINISHED;
            if (fin) {
                j->state = RN__CJ_FINISHED;
                fprintf(stderr, "coordinator: job %s finished\n", j->name);
            }
        }
        rn__persist(c);
        pthread_mutex_unlock(&c->mu);
        usleep(50000);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- workers' calls (HTTP thread, under mu) ---------------------------------------- */

static void rn__on_register(struct rn_coord *c, yajl_val v, struct rn_http_response *res)
{
    const char *addr = rn_jstr(v, "address");
    struct rn__cworker *w = rn_xcalloc(1, sizeof *w);
    w->id = ++c->next_worker_id;
    w->slot = (int)rn_jint(v, "slot", 0);
    w->pid = (int)rn_jint(v, "pid", 0);
    snprintf(w->addr, sizeof w->addr, "%s", addr ? addr : "");
    w->alive = 1;
    w->last_ns = rn_now_ns();
    w->registered_ms = rn_wall_ms();
    /* A worker of the same slot registering again means the old one is gone. */
    for (struct rn__cworker *o = c->workers; o; o = o->next)
        if (o->alive && o->slot == w->slot && o->pid != w->pid)
            rn__worker_dead(c, o, "was replaced by a new process in its slot");
    struct rn__cworker **tail = &c->workers;
    while (*tail)
        tail = &(*tail)->next;
    *tail = w;
    fprintf(stderr, "coordinator: worker %lld registered (slot %d, pid %d, page %s)\n",
            (long long)w->id, w->slot, w->pid, w->addr);
    res->content_type = "application/json";
    rn_buf_printf(&res->body, "{\"worker\":%lld}\n", (long long)w->id);
}

static void rn__on_heartbeat(struct rn_coord *c, yajl_val v, struct rn_http_response *res)
{
    struct rn__cworker *w = rn__worker_find(c, rn_jint(v, "worker", 0));
    res->content_type = "application/json";
    if (!w || !w->alive) {
        res->status = 410;
        rn_buf_puts(&res->body, "{\"error\":\"unknown or dead worker: register again\"}\n");
        return;
    }
    int64_t now = rn_now_ns();
    w->last_ns = now;
    yajl_val tasks = rn_jarr(v, "tasks");
    /* Tasks assigned here that the report should list. */
    for (struct rn__cjob *j = c->jobs; j; j = j->next) {
        for (int i = 0; i < j->n_tasks; i++) {
            struct rn__ctask *t = &j->tasks[i];
            if (t->worker != w->id) continue;
            int listed = 0;
            for (size_t k = 0; tasks && k < tasks->u.array.len; k++) {
                yajl_val r = tasks->u.array.values[k];
                const char *jn = rn_jstr(r, "job"), *tn = rn_jstr(r, "task");
                if (jn && tn && strcmp(jn, j->name) == 0 && strcmp(tn, t->name) == 0) listed = 1;
            }
            if (listed) continue;
            if (t->state == RN__CT_STOPPING)
                rn__task_lost(t, "");
            else if (t->state == RN__CT_RUNNING ||
                     (t->state == RN__CT_STARTING && t->start_delivered))
                rn__task_lost(t, "the worker no longer runs it");
        }
    }
    for (size_t k = 0; tasks && k < tasks->u.array.len; k++) {
        yajl_val r = tasks->u.array.values[k];
        const char *jn = rn_jstr(r, "job"), *tn = rn_jstr(r, "task"), *st = rn_jstr(r, "state");
        if (!jn || !tn || !st) continue;
        struct rn__cjob *j = rn__job_find(c, jn, strlen(jn));
        struct rn__ctask *t = NULL;
        for (int i = 0; j && i < j->n_tasks; i++)
            if (strcmp(j->tasks[i].name, tn) == 0) t = &j->tasks[i];
        if (!t || t->worker != w->id ||
            (t->state != RN__CT_STARTING && t->state != RN__CT_RUNNING)) {
            /* Not this worker's (any more): it must not run it. One that is
             * stopping already stays STOPPING until the worker no longer
             * lists it (its final checkpoint written and committed). */
            if (strcmp(st, "stopping") != 0) rn__queue_named(w, "stop", jn, tn);
            continue;
        }
        uint64_t rec = (uint64_t)rn_jint(r, "records", 0);
        if (t->rate_at_ns && now > t->rate_at_ns && rec >= t->rate_prev)
            t->rate = (double)(rec - t->rate_prev) * 1e9 / (double)(now - t->rate_at_ns);
        t->rate_prev = rec;
        t->rate_at_ns = now;
        t->records = rec;
        t->lag = (uint64_t)rn_jint(r, "lag", 0);
        t->completed = (uint64_t)rn_jint(r, "completed", 0);
        const char *page = rn_jstr(r, "page");
        snprintf(t->page, sizeof t->page, "%s", page ? page : "");
        if (t->req && rn_jint(r, "req", 0) == t->req) t->req_seen = 1;
        if (t->req && rn_jint(r, "req", 0) == t->req && t->req_state == 0) {
            const char *rs = rn_jstr(r, "req_state"), *rp = rn_jstr(r, "req_path");
            if (rs && strcmp(rs, "done") == 0) {
                t->req_state = 1;
                snprintf(t->req_path, sizeof t->req_path, "%s", rp ? rp : "");
            } else if (rs && strcmp(rs, "failed") == 0) {
                const char *re = rn_jstr(r, "req_error");
                t->req_state = 2;
                snprintf(t->req_error, sizeof t->req_error, "%s", re && *re ? re : "no reason given");
            }
        }
        if (strcmp(st, "running") == 0) {
            t->state = RN__CT_RUNNING;
        } else if (strcmp(st, "finished") == 0) {
            t->state = RN__CT_FINISHED;
            rn__queue(w, "stop", j, t, NULL); /* forget it */
        } else {
            const char *e = rn_jstr(r, "error");
            fprintf(stderr, "coordinator: task %s/%s %s on worker %lld: %s\n", j->name, t->name, st,
                    (long long)w->id, e ? e : "");
            rn__queue(w, "stop", j, t, NULL);
            rn__task_lost(t, e && e[0] ? e : "the task stopped");
            t->not_before_ns = now + 1000000000LL * RN_MIN(t->restarts, 10);
        }
    }
    for (struct rn__cjob *j = c->jobs; j; j = j->next)
        for (int i = 0; i < j->n_tasks; i++)
            if (j->tasks[i].worker == w->id && j->tasks[i].state == RN__CT_STARTING)
                j->tasks[i].start_delivered = 1;
    rn_buf_puts(&res->body, "{\"commands\":[");
    rn_buf_append(&res->body, w->cmds.data, w->cmds.len);
    rn_buf_puts(&res->body, "]}\n");
    rn_buf_reset(&w->cmds);
}

/* ---- the REST job API (HTTP thread) --------------------------------------------------- */

static void rn__json_error(struct rn_http_response *res, int status, const char *msg)
{
    res->status = status;
    res->content_type = "application/json";
    rn_buf_puts(&res->body, "{\"error\":");
    rn_json_str(&res->body, msg, strlen(msg));
    rn_buf_puts(&res->body, "}\n");
}

/* The value of `name` in a query string, percent-decoded into out. */
static int rn__query(const char *q, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, nl) != 0 || p[nl] != '=') continue;
        const char *v = p + nl + 1;
        size_t o = 0;
        while (*v && *v != '&' && o + 1 < n) {
            if (*v == '%' && v[1] && v[2]) {
                char hex[3] = {v[1], v[2], 0};
                out[o++] = (char)strtol(hex, NULL, 16);
                v += 3;
            } else {
                out[o++] = *v == '+' ? ' ' : *v;
                v++;
            }
        }
        out[o] = 0;
        return 1;
    }
    return 0;
}

/* Replaces every occurrence of `from` in s by `to`. */
static void rn__replace(char *s, size_t cap, const char *from, const char *to)
{
    struct rn_buf b = RN_BUF_INIT;
    size_t fl = strlen(from);
    for (const char *p = s;;) {
        const char *hit = strstr(p, from);
        if (!hit) {
            rn_buf_puts(&b, p);
            break;
        }
        rn_buf_append(&b, p, (size_t)(hit - p));
        rn_buf_puts(&b, to);
        p = hit + fl;
    }
    rn_buf_putc(&b, 0);
    snprintf(s, cap, "%s", b.data);
    rn_buf_free(&b);
}

/* POST /api/v1/jobs: checks the job as `runnel validate` does (the coordinator
 * process runs no job, so loading one here disturbs nothing), asks Kafka for
 * its partitions, and adds it to the table. Called without mu held. */
static void rn__submit_checked(struct rn_coord *c, const struct rn_http_request *req,
                               struct rn_http_response *res);

/* Checks and adds a job; the workers' heartbeat clocks restart afterwards,
 * since none could be answered meanwhile. */
static void rn__submit(struct rn_coord *c, const struct rn_http_request *req,
                       struct rn_http_response *res)
{
    rn__submit_checked(c, req, res);
    pthread_mutex_lock(&c->mu);
    c->submitting = 0;
    int64_t now = rn_now_ns();
    for (struct rn__cworker *w = c->workers; w; w = w->next)
        if (w->alive) w->last_ns = now;
    pthread_mutex_unlock(&c->mu);
}

static void rn__submit_checked(struct rn_coord *c, const struct rn_http_request *req,
                               struct rn_http_response *res)
{
    char file[256] = "job.yaml", tmp[700], err[2048] = "", q[32];
    rn__query(req->query, "file", file, sizeof file);
    pthread_mutex_lock(&c->mu);
    long long n = ++c->submits;
    c->submitting = 1;
    pthread_mutex_unlock(&c->mu);
    snprintf(tmp, sizeof tmp, "%s/submit-%lld-%d.yaml", c->dir, n, (int)getpid());
    if (rn_fs_write_atomic(tmp, req->body, req->body_len, err, sizeof err)) {
        rn__json_error(res, 500, err);
        return;
    }
    struct rn_job_options opt = {.quiet = 1};
    struct rn_job *job = rn_job_load(tmp, &opt, err, sizeof err);
    struct rn_cfg_doc *doc = job ? rn_cfg_load_file(tmp, err, sizeof err) : NULL;
    int parts = 1;
    int kafka = 0;
    if (doc) {
        const struct rn_cfg_node *sources = rn_cfg_get(doc->root, "sources");
        for (const struct rn_cfg_node *s = sources ? sources->child : NULL; s; s = s->next) {
            const struct rn_cfg_node *type = rn_cfg_get(s, "type");
            kafka |= type && type->kind == RN_CFG_SCALAR && strcmp(type->value, "kafka") == 0;
        }
    }
    int ok = doc && rn_cluster_partitions(doc, &parts, err, sizeof err) == 0;
    if (!ok) {
        rn__replace(err, sizeof err, tmp, file);
        unlink(tmp);
        if (doc) rn_cfg_free(doc);
        if (job) rn_job_destroy(job);
        rn__json_error(res, 400, err);
        return;
    }
    struct rn_stages *stages = rn_xcalloc(1, sizeof *stages);
    ok = rn_cluster_stages_plan(job, doc, stages, err, sizeof err) == 0 &&
         rn_cluster_stages_topics(stages, parts, err, sizeof err) == 0;
    int n_tasks = 0;
    for (int k = 0; ok && k < stages->n; k++)
        n_tasks += stages->st[k].n_tasks;
    /* Every stage but the first is a job of its own: check it now, with its
     * first task's overrides, rather than on a worker. */
    for (int k = 1; ok && k < stages->n; k++) {
        char *sets = rn_cluster_task_sets(job, doc, stages, k, 0, kafka);
        yajl_val arr = yajl_tree_parse(sets, NULL, 0);
        const char *ov[512];
        size_t nov = 0;
        for (size_t i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len && nov < 512; i++)
            ov[nov++] = arr->u.array.values[i]->u.string;
        struct rn_job_options so = {.quiet = 1, .overrides = ov, .n_overrides = nov};
        char e2[1500];
        struct rn_job *sj = rn_job_load(tmp, &so, e2, sizeof e2);
        if (!sj) {
            snprintf(err, sizeof err, "stage %d of the cluster job (from '%s'): %s", k,
                     job->nodes[stages->st[k].head].id, e2);
            ok = 0;
        }
        if (sj) rn_job_destroy(sj);
        if (arr) yajl_tree_free(arr);
        free(sets);
    }
    if (!ok) {
        rn__replace(err, sizeof err, tmp, file);
        unlink(tmp);
        free(stages);
        rn_cfg_free(doc);
        rn_job_destroy(job);
        rn__json_error(res, 400, err);
        return;
    }
    struct rn__cjob *j = rn_xcalloc(1, sizeof *j);
    j->name = rn_xstrdup(job->name);
    j->n_stages = stages->n;
    j->yaml = rn_xstrndup(req->body, req->body_len);
    j->file = rn_xstrdup(file);
    j->ckpt_enabled = job->ckpt_enabled;
    j->ckpt_dir = rn_xstrdup(job->ckpt_dir);
    j->retain = job->ckpt_retain > 0 ? job->ckpt_retain : 1;
    j->submitted_ms = rn_wall_ms();
    j->n_tasks = n_tasks;
    j->tasks = rn_xcalloc((size_t)n_tasks, sizeof *j->tasks);
    j->ckpt_seen = rn_xcalloc((size_t)n_tasks, sizeof *j->ckpt_seen);
    for (int k = 0, i = 0; k < stages->n; k++)
        for (int p = 0; p < stages->st[k].n_tasks; p++, i++) {
            j->tasks[i].partition = p;
            j->tasks[i].stage = k;
            rn_cluster_task_name(k, p, j->tasks[i].name, sizeof j->tasks[i].name);
            j->tasks[i].sets = rn_cluster_task_sets(job, doc, stages, k, p, kafka);
        }
    free(stages);
    rn_cfg_free(doc);
    rn_job_destroy(job);
    unlink(tmp);

    pthread_mutex_lock(&c->mu);
    struct rn__cjob **pp = &c->jobs;
    while (*pp && strcmp((*pp)->name, j->name) != 0)
        pp = &(*pp)->next;
    if (*pp && ((*pp)->state == RN__CJ_RUNNING || (*pp)->state == RN__CJ_CANCELLING)) {
        pthread_mutex_unlock(&c->mu);
        snprintf(err, sizeof err, "%s: job '%s' is already running (cancel it first)", file,
                 j->name);
        rn__free_job(j);
        rn__json_error(res, 409, err);
        return;
    }
    if (*pp) { /* a canceled or finished job of the same name: replaced */
        struct rn__cjob *old = *pp;
        *pp = old->next;
        j->next_req = old->next_req;
        j->cluster_ckpt = old->cluster_ckpt;
        rn__free_job(old);
    }
    int alive = rn__alive_workers(c);
    j->n_workers = alive > 0 ? alive : 1;
    if (rn__query(req->query, "workers", q, sizeof q) && atoi(q) > 0) j->n_workers = atoi(q);
    j->wait_workers_until_ns = rn_now_ns() + 10LL * 1000000000;
    j->ckpt_due_ns = rn_now_ns() + c->o.checkpoint_every_ms * 1000000;
    j->next = c->jobs;
    c->jobs = j;
    res->status = 201;
    res->content_type = "application/json";
    rn_buf_puts(&res->body, "{");
    rn_json_kv_str(&res->body, "id", j->name);
    rn_buf_printf(&res->body, "\"tasks\":%d,\"stages\":%d,\"workers\":%d}\n", j->n_tasks,
                  j->n_stages, j->n_workers);
    fprintf(stderr, "coordinator: job %s submitted (%d tasks in %d stages over %d workers)\n",
            j->name, j->n_tasks, j->n_stages, j->n_workers);
    rn__persist(c);
    pthread_mutex_unlock(&c->mu);
}

static void rn__job_json(struct rn__cjob *j, int full, struct rn_buf *b)
{
    rn_buf_putc(b, '{');
    rn_json_kv_str(b, "id", j->name);
    rn_json_kv_str(b, "state", rn__cj_names[j->state]);
    rn_json_kv_str(b, "operation", rn__op_names[j->op]);
    rn_json_kv_str(b, "file", j->file);
    uint64_t records = 0;
    double rate = 0;
    int running = 0, finished = 0;
    uint64_t lag = 0;
    for (int i = 0; i < j->n_tasks; i++) {
        records += j->tasks[i].records;
        lag += j->tasks[i].lag;
        rate += j->tasks[i].rate;
        running += j->tasks[i].state == RN__CT_RUNNING;
        finished += j->tasks[i].state == RN__CT_FINISHED;
    }
    rn_buf_printf(b,
                  "\"workers\":%d,\"stages\":%d,\"tasks_total\":%d,\"tasks_running\":%d,"
                  "\"tasks_finished\":%d,\"records\":%llu,\"rate\":",
                  j->n_workers, j->n_stages, j->n_tasks, running, finished,
                  (unsigned long long)records);
    rn_json_f64(b, rate);
    rn_buf_printf(b, ",\"lag\":%llu,\"cluster_checkpoint\":%lld,\"submitted_ms\":%lld",
                  (unsigned long long)lag, (long long)j->cluster_ckpt, (long long)j->submitted_ms);
    if (full) {
        rn_buf_puts(b, ",\"tasks\":[");
        for (int i = 0; i < j->n_tasks; i++) {
            struct rn__ctask *t = &j->tasks[i];
            rn_buf_puts(b, i ? ",{" : "{");
            rn_json_kv_str(b, "task", t->name);
            rn_buf_printf(b, "\"stage\":%d,", t->stage);
            rn_json_kv_str(b, "state", rn__ct_names[t->state]);
            rn_json_kv_str(b, "page", t->page);
            rn_json_kv_str(b, "error", t->error);
            rn_buf_printf(b,
                          "\"partition\":%d,\"worker\":%lld,\"records\":%llu,\"lag\":%llu,"
                          "\"checkpoint\":%llu,\"restarts\":%d,\"rate\":",
                          t->partition, (long long)t->worker, (unsigned long long)t->records,
                          (unsigned long long)t->lag, (unsigned long long)t->completed,
                          t->restarts);
            rn_json_f64(b, t->rate);
            rn_buf_putc(b, '}');
        }
        rn_buf_puts(b, "],\"savepoints\":[");
        int n = RN_MIN(j->n_sp, RN__SP_HISTORY);
        for (int i = 0; i < n; i++) {
            struct rn__savepoint *s = &j->sp[(j->n_sp - 1 - i) % RN__SP_HISTORY];
            rn_buf_printf(b, "%s{\"id\":%lld,\"status\":\"%s\",\"time_ms\":%lld,\"path\":",
                          i ? "," : "", (long long)s->id,
                          s->state == 0   ? "pending"
                          : s->state == 1 ? "completed"
                                          : "failed",
                          (long long)s->at_ms);
            rn_json_str(b, s->path, strlen(s->path));
            if (s->state == 2) {
                rn_buf_puts(b, ",\"error\":");
                rn_json_str(b, s->error, strlen(s->error));
            }
            rn_buf_putc(b, '}');
        }
        rn_buf_putc(b, ']');
    }
    rn_buf_putc(b, '}');
}

static void rn__worker_json(struct rn_coord *c, struct rn__cworker *w, struct rn_buf *b)
{
    int tasks = 0;
    uint64_t records = 0, lag = 0;
    double rate = 0;
    uint64_t ckpt = 0;
    struct rn_buf names = RN_BUF_INIT;
    for (struct rn__cjob *j = c->jobs; j; j = j->next)
        for (int i = 0; i < j->n_tasks; i++) {
            struct rn__ctask *t = &j->tasks[i];
            if (t->worker != w->id) continue;
            tasks++;
            records += t->records;
            lag += t->lag;
            rate += t->rate;
            ckpt = RN_MAX(ckpt, t->completed);
            if (names.len) rn_buf_putc(&names, ',');
            char tn[300];
            snprintf(tn, sizeof tn, "%s/%s", j->name, t->name);
            rn_json_str(&names, tn, strlen(tn));
        }
    rn_buf_printf(b, "{\"id\":%lld,\"slot\":%d,\"pid\":%d,\"alive\":%s,", (long long)w->id, w->slot,
                  w->pid, w->alive ? "true" : "false");
    rn_json_kv_str(b, "page", w->addr);
    rn_buf_printf(b, "\"last_heartbeat_ms_ago\":%lld,\"registered_ms\":%lld,\"tasks\":[",
                  (long long)((rn_now_ns() - w->last_ns) / 1000000), (long long)w->registered_ms);
    rn_buf_append(b, names.data, names.len);
    rn_buf_printf(b, "],\"records\":%llu,\"lag\":%llu,\"last_checkpoint\":%llu,\"rate\":",
                  (unsigned long long)records, (unsigned long long)lag, (unsigned long long)ckpt);
    rn_json_f64(b, rate);
    rn_buf_printf(b, ",\"n_tasks\":%d}", tasks);
    rn_buf_free(&names);
}

static void rn__render_html(struct rn_coord *c, struct rn_buf *b)
{
    rn_buf_printf(b,
                  "<!doctype html><html><head><meta charset=utf-8>"
                  "<meta http-equiv=refresh content=2><title>runnel cluster</title>"
                  "<style>body{font-family:sans-serif}td,th{padding:2px 8px}</style></head>"
                  "<body><h1>runnel cluster</h1><p>coordinator %s · JSON: "
                  "<a href=\"/api/v1/jobs\">jobs</a>, <a href=\"/api/v1/workers\">workers</a> · "
                  "<a href=\"/metrics\">metrics</a></p><h2>Workers</h2><table border=1>"
                  "<tr><th>id</th><th>slot</th><th>pid</th><th>alive</th><th>tasks</th>"
                  "<th>records</th><th>records/s</th><th>last checkpoint</th><th>page</th></tr>",
                  rn_http_address(c->http));
    for (struct rn__cworker *w = c->workers; w; w = w->next) {
        int n = 0;
        uint64_t rec = 0, ck = 0;
        double rate = 0;
        for (struct rn__cjob *j = c->jobs; j; j = j->next)
            for (int i = 0; i < j->n_tasks; i++)
                if (j->tasks[i].worker == w->id) {
                    n++;
                    rec += j->tasks[i].records;
                    rate += j->tasks[i].rate;
                    ck = RN_MAX(ck, j->tasks[i].completed);
                }
        rn_buf_printf(b,
                      "<tr><td>%lld</td><td>%d</td><td>%d</td><td>%s</td><td>%d</td><td>%llu</td>"
                      "<td>%.0f</td><td>%llu</td><td><a href=\"http://%s/\">%s</a></td></tr>",
                      (long long)w->id, w->slot, w->pid, w->alive ? "yes" : "no", n,
                      (unsigned long long)rec, rate, (unsigned long long)ck, w->addr, w->addr);
    }
    rn_buf_puts(b, "</table><h2>Jobs</h2>");
    for (struct rn__cjob *j = c->jobs; j; j = j->next) {
        rn_buf_printf(b,
                      "<h3>%s — %s%s%s</h3><p>%d workers, cluster checkpoint %lld</p>"
                      "<table border=1><tr><th>task</th><th>state</th><th>worker</th>"
                      "<th>records</th><th>records/s</th><th>lag</th><th>checkpoint</th>"
                      "<th>restarts</th><th>page</th></tr>",
                      j->name, rn__cj_names[j->state], j->op ? " · " : "", rn__op_names[j->op],
                      j->n_workers, (long long)j->cluster_ckpt);
        for (int i = 0; i < j->n_tasks; i++) {
            struct rn__ctask *t = &j->tasks[i];
            rn_buf_printf(b,
                          "<tr><td>%s</td><td>%s</td><td>%lld</td><td>%llu</td><td>%.0f</td>"
                          "<td>%llu</td><td>%llu</td><td>%d</td>"
                          "<td><a href=\"http://%s/\">%s</a></td></tr>",
                          t->name, rn__ct_names[t->state], (long long)t->worker,
                          (unsigned long long)t->records, t->rate, (unsigned long long)t->lag,
                          (unsigned long long)t->completed, t->restarts, t->page, t->page);
        }
        rn_buf_puts(b, "</table>");
    }
    rn_buf_puts(b, "</body></html>\n");
}

static void rn__render_metrics(struct rn_coord *c, struct rn_buf *b)
{
    rn_buf_printf(b, "# TYPE runnel_cluster_workers_alive gauge\nrunnel_cluster_workers_alive %d\n",
                  rn__alive_workers(c));
    rn_buf_puts(b, "# TYPE runnel_cluster_worker_tasks gauge\n");
    for (struct rn__cworker *w = c->workers; w; w = w->next) {
        if (!w->alive) continue;
        int n = 0;
        for (struct rn__cjob *j = c->jobs; j; j = j->next)
            for (int i = 0; i < j->n_tasks; i++)
                n += j->tasks[i].worker == w->id;
        rn_buf_printf(b, "runnel_cluster_worker_tasks{worker=\"%lld\",slot=\"%d\"} %d\n",
                      (long long)w->id, w->slot, n);
    }
    rn_buf_puts(b, "# TYPE runnel_cluster_task_records counter\n");
    for (struct rn__cjob *j = c->jobs; j; j = j->next)
        for (int i = 0; i < j->n_tasks; i++)
            rn_buf_printf(b, "runnel_cluster_task_records{job=\"%s\",task=\"%s\"} %llu\n", j->name,
                          j->tasks[i].name, (unsigned long long)j->tasks[i].records);
    rn_buf_puts(b, "# TYPE runnel_cluster_task_rate gauge\n");
    for (struct rn__cjob *j = c->jobs; j; j = j->next)
        for (int i = 0; i < j->n_tasks; i++)
            rn_buf_printf(b, "runnel_cluster_task_rate{job=\"%s\",task=\"%s\"} %.1f\n", j->name,
                          j->tasks[i].name, j->tasks[i].rate);
    rn_buf_puts(b, "# TYPE runnel_cluster_task_lag gauge\n");
    for (struct rn__cjob *j = c->jobs; j; j = j->next)
        for (int i = 0; i < j->n_tasks; i++)
            rn_buf_printf(b, "runnel_cluster_task_lag{job=\"%s\",task=\"%s\"} %llu\n", j->name,
                          j->tasks[i].name, (unsigned long long)j->tasks[i].lag);
    rn_buf_puts(b, "# TYPE runnel_cluster_task_checkpoint gauge\n");
    for (struct rn__cjob *j = c->jobs; j; j = j->next)
        for (int i = 0; i < j->n_tasks; i++)
            rn_buf_printf(b, "runnel_cluster_task_checkpoint{job=\"%s\",task=\"%s\"} %llu\n",
                          j->name, j->tasks[i].name, (unsigned long long)j->tasks[i].completed);
    rn_buf_puts(b, "# TYPE runnel_cluster_task_restarts counter\n");
    for (struct rn__cjob *j = c->jobs; j; j = j->next)
        for (int i = 0; i < j->n_tasks; i++)
            rn_buf_printf(b, "runnel_cluster_task_restarts{job=\"%s\",task=\"%s\"} %d\n", j->name,
                          j->tasks[i].name, j->tasks[i].restarts);
    rn_buf_puts(b, "# TYPE runnel_cluster_checkpoints_total counter\n");
    for (struct rn__cjob *j = c->jobs; j; j = j->next)
        rn_buf_printf(b, "runnel_cluster_checkpoints_total{job=\"%s\"} %lld\n", j->name,
                      (long long)j->cluster_ckpt);
}

/* Job calls that change something: savepoint, cancel, rescale (under mu). */
static void rn__job_op(struct rn_coord *c, struct rn__cjob *j, enum rn__op op,
                       const struct rn_http_request *req, struct rn_http_response *res)
{
    char err[600], q[32];
    if (j->state != RN__CJ_RUNNING) {
        snprintf(err, sizeof err, "job '%s' is %s", j->name, rn__cj_names[j->state]);
        rn__json_error(res, 409, err);
        return;
    }
    if (j->op != RN__OP_NONE) {
        snprintf(err, sizeof err, "job '%s' is busy with a %s; try again when it is done", j->name,
                 rn__op_names[j->op]);
        rn__json_error(res, 409, err);
        return;
    }
    int workers = 0;
    if (op == RN__OP_RESCALE) {
        workers = rn__query(req->query, "workers", q, sizeof q) ? atoi(q) : 0;
        if (workers < 1 || workers > 256) {
            rn__json_error(res, 400, "rescale needs ?workers=N (1 to 256)");
            return;
        }
        if (!c->o.can_spawn && rn__alive_workers(c) < workers) {
            snprintf(err, sizeof err,
                     "only %d workers are alive; start more before rescaling to %d",
                     rn__alive_workers(c), workers);
            rn__json_error(res, 409, err);
            return;
        }
    }
    int with_sp = op == RN__OP_SAVEPOINT || op == RN__OP_RESCALE ||
                  (op == RN__OP_CANCEL && rn__query(req->query, "savepoint", q, sizeof q) &&
                   strcmp(q, "0") != 0 && strcmp(q, "false") != 0);
    if (with_sp && !j->ckpt_enabled) {
        if (op == RN__OP_SAVEPOINT || op == RN__OP_CANCEL) {
            snprintf(err, sizeof err, "job '%s' has no checkpoint: section, so no savepoints",
                     j->name);
            rn__json_error(res, 409, err);
            return;
        }
        with_sp = 0;
    }
    j->op = op;
    j->op_workers = workers;
    j->op_stage = 1;
    if (with_sp && rn__savepoint_begin(c, j, err, sizeof err)) {
        j->op = RN__OP_NONE;
        rn__json_error(res, 409, err);
        return;
    }
    if (op == RN__OP_CANCEL) j->state = RN__CJ_CANCELLING;
    res->status = 202;
    res->content_type = "application/json";
    rn_buf_puts(&res->body, "{");
    rn_json_kv_str(&res->body, "id", j->name);
    rn_json_kv_str(&res->body, "operation", rn__op_names[op]);
    rn_buf_printf(&res->body, "\"savepoint\":%lld}\n", with_sp ? (long long)j->next_req : 0LL);
}

static void rn__handler(void *ud, const struct rn_http_request *req, struct rn_http_response *res)
{
    struct rn_coord *c = ud;
    int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    if (!get && c->need_token && !rn_token_check(req, c->token)) {
        res->status = 401;
        rn_buf_puts(&res->body, "401: this listener is not loopback-only: calls that change "
                                "something need 'Authorization: Bearer <token>' (--token-file)\n");
        return;
    }
    if (strcmp(req->method, "POST") == 0 && strcmp(req->path, "/api/v1/jobs") == 0) {
        rn__submit(c, req, res);
        return;
    }
    if (strcmp(req->method, "POST") == 0 && strcmp(req->path, "/api/v1/validate") == 0) {
        rn__validate_http(c->dir, req, res); /* the web UI's submit form */
        return;
    }
    pthread_mutex_lock(&c->mu);
    const char *p = req->path;
    if (!get && (strcmp(p, "/api/v1/cluster/register") == 0 ||
                 strcmp(p, "/api/v1/cluster/heartbeat") == 0)) {
        yajl_val v = yajl_tree_parse(req->body, NULL, 0);
        if (!v || !YAJL_IS_OBJECT(v))
            rn__json_error(res, 400, "expected a JSON object");
        else if (p[16] == 'r')
            rn__on_register(c, v, res);
        else
            rn__on_heartbeat(c, v, res);
        if (v) yajl_tree_free(v);
    } else if (get && strcmp(p, "/api/v1/jobs") == 0) {
        res->content_type = "application/json";
        rn_buf_puts(&res->body, "{\"jobs\":[");
        for (struct rn__cjob *j = c->jobs; j; j = j->next) {
            rn__job_json(j, 0, &res->body);
            if (j->next) rn_buf_putc(&res->body, ',');
        }
        rn_buf_puts(&res->body, "]}\n");
    } else if (get && strcmp(p, "/api/v1/workers") == 0) {
        res->content_type = "application/json";
        rn_buf_puts(&res->body, "{\"workers\":[");
        for (struct rn__cworker *w = c->workers; w; w = w->next) {
            rn__worker_json(c, w, &res->body);
            if (w->next) rn_buf_putc(&res->body, ',');
        }
        rn_buf_puts(&res->body, "]}\n");
    } else if (strncmp(p, "/api/v1/jobs/", 13) == 0) {
        const char *id = p + 13, *slash = strchr(id, '/');
        size_t idlen = slash ? (size_t)(slash - id) : strlen(id);
        struct rn__cjob *j = rn__job_find(c, id, idlen);
        if (!j) {
            char err[400];
            snprintf(err, sizeof err, "no job '%.*s'", (int)RN_MIN(idlen, 200), id);
            rn__json_error(res, 404, err);
        } else if (get && !slash) {
            res->content_type = "application/json";
            rn__job_json(j, 1, &res->body);
            rn_buf_putc(&res->body, '\n');
        } else if (strcmp(req->method, "DELETE") == 0 && !slash) {
            rn__job_op(c, j, RN__OP_CANCEL, req, res);
        } else if (strcmp(req->method, "POST") == 0 && slash && strcmp(slash, "/savepoints") == 0) {
            rn__job_op(c, j, RN__OP_SAVEPOINT, req, res);
        } else if (strcmp(req->method, "POST") == 0 && slash && strcmp(slash, "/rescale") == 0) {
            rn__job_op(c, j, RN__OP_RESCALE, req, res);
        } else {
            rn__json_error(res, 405, "not a call of /api/v1/jobs/{id}");
        }
    } else if (get && strcmp(p, "/metrics") == 0) {
        res->content_type = "text/plain; version=0.0.4";
        rn__render_metrics(c, &res->body);
    } else if (get && strcmp(p, "/healthz") == 0) {
        rn_buf_puts(&res->body, "ok\n");
    } else if (get && strcmp(p, "/") == 0) {
        rn__asset_serve("ui/cluster.html", res); /* the web UI (runtime/ui/) */
    } else if (get && strncmp(p, "/ui/", 4) == 0) {
        rn__asset_serve(p + 1, res);
    } else if (get && strcmp(p, "/plain") == 0) {
        res->content_type = "text/html; charset=utf-8";
        rn__render_html(c, &res->body);
    } else {
        rn__json_error(res, 404, "no such call; see docs/cluster.md");
    }
    if (!get) rn__persist(c); /* before the answer: what it acknowledges is on disk */
    pthread_mutex_unlock(&c->mu);
}

/* ---- the job table on disk --------------------------------------------------------------
 *
 * <dir>/state.json holds what a restarted coordinator needs to carry on: every
 * job (its YAML, state, the operation in progress, worker count, cluster
 * checkpoint and savepoint ids and history), every task (state, worker,
 * overrides, restarts) and the workers it knew. It is one small document
 * replaced whole (rn_fs_write_atomic: temp file, fsync, rename, fsync of the
 * directory), so after a crash it is the old table or the new one. It is
 * rewritten whenever what it would say changed (rn__persist compares the
 * text); what heartbeats report again within a second (records, rates, lag,
 * pages, each task's latest checkpoint) is left out, so that a running job
 * costs about one write per cluster checkpoint. */

#define RN__STATE_FORMAT 1

static const char *rn__sp_state_names[] = {"pending", "completed", "failed"};
static const char *rn__req_state_names[] = {"pending", "done", "failed"};

static void rn__state_render(struct rn_coord *c, struct rn_buf *b)
{
    rn_buf_printf(b, "{\"format\":%d,\"next_worker_id\":%lld,\"submits\":%lld,\"workers\":[",
                  RN__STATE_FORMAT, (long long)c->next_worker_id, (long long)c->submits);
    for (struct rn__cworker *w = c->workers; w; w = w->next) {
        rn_buf_printf(b, "%s{\"id\":%lld,\"slot\":%d,\"pid\":%d,\"alive\":%s,",
                      w == c->workers ? "" : ",", (long long)w->id, w->slot, w->pid,
                      w->alive ? "true" : "false");
        rn_json_kv_str(b, "address", w->addr);
        rn_buf_printf(b, "\"registered_ms\":%lld}", (long long)w->registered_ms);
    }
    rn_buf_puts(b, "],\"jobs\":[");
    for (struct rn__cjob *j = c->jobs; j; j = j->next) {
        rn_buf_puts(b, j == c->jobs ? "{" : ",{");
        rn_json_kv_str(b, "name", j->name);
        rn_json_kv_str(b, "file", j->file);
        rn_json_kv_str(b, "state", rn__cj_names[j->state]);
        rn_json_kv_str(b, "operation", rn__op_names[j->op]);
        rn_json_kv_str(b, "checkpoint_dir", j->ckpt_dir);
        rn_buf_printf(b,
                      "\"operation_stage\":%d,\"operation_workers\":%d,\"workers\":%d,\"stages\":%d,"
                      "\"checkpoints\":%d,\"retain\":%lld,\"submitted_ms\":%lld,\"next_req\":%lld,"
                      "\"cluster_checkpoint\":%lld,\"savepoints_taken\":%d,\"savepoints\":[",
                      j->op_stage, j->op_workers, j->n_workers, j->n_stages, j->ckpt_enabled,
                      (long long)j->retain, (long long)j->submitted_ms, (long long)j->next_req,
                      (long long)j->cluster_ckpt, j->n_sp);
        int n = RN_MIN(j->n_sp, RN__SP_HISTORY);
        for (int i = 0; i < n; i++) { /* oldest first */
            const struct rn__savepoint *s = &j->sp[(j->n_sp - n + i) % RN__SP_HISTORY];
            rn_buf_printf(b, "%s{\"id\":%lld,\"state\":\"%s\",\"time_ms\":%lld,", i ? "," : "",
                          (long long)s->id, rn__sp_state_names[s->state], (long long)s->at_ms);
            rn_buf_puts(b, "\"path\":");
            rn_json_str(b, s->path, strlen(s->path));
            rn_buf_putc(b, '}');
        }
        rn_buf_puts(b, "],\"tasks\":[");
        for (int i = 0; i < j->n_tasks; i++) {
            const struct rn__ctask *t = &j->tasks[i];
            rn_buf_puts(b, i ? ",{" : "{");
            rn_json_kv_str(b, "task", t->name);
            rn_json_kv_str(b, "state", rn__ct_names[t->state]);
            rn_json_kv_str(b, "error", t->error);
            rn_json_kv_str(b, "req_state", rn__req_state_names[t->req_state]);
            rn_json_kv_str(b, "req_path", t->req_path);
            rn_buf_printf(b,
                          "\"partition\":%d,\"stage\":%d,\"worker\":%lld,\"restarts\":%d,"
                          "\"seen\":%llu,\"req\":%lld,\"sets\":%s}",
                          t->partition, t->stage, (long long)t->worker, t->restarts,
                          (unsigned long long)j->ckpt_seen[i], (long long)t->req, t->sets);
        }
        rn_buf_puts(b, "],\"yaml\":");
        rn_json_str(b, j->yaml, strlen(j->yaml));
        rn_buf_putc(b, '}');
    }
    rn_buf_puts(b, "]}\n");
}

/* Writes the table when it says something new (under mu; any thread). A
 * failed write is reported once until one succeeds again, and retried at the
 * next call. */
static void rn__persist(struct rn_coord *c)
{
    struct rn_buf b = RN_BUF_INIT;
    char path[600], err[700];
    rn__state_render(c, &b);
    if (b.len == c->saved.len && memcmp(b.data, c->saved.data, b.len) == 0) {
        rn_buf_free(&b);
        return;
    }
    snprintf(path, sizeof path, "%s/state.json", c->dir);
    if (rn_fs_write_atomic(path, b.data, b.len, err, sizeof err) != 0) {
        if (!c->persist_failed)
            fprintf(stderr, "coordinator: cannot save the job table: %s (will retry)\n", err);
        c->persist_failed = 1;
        rn_buf_free(&b);
        return;
    }
    c->persist_failed = 0;
    rn_buf_free(&c->saved);
    c->saved = b;
}

static int rn__name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(names[i], s) == 0) return i;
    return -1;
}

/* A copy of a JSON array of strings, as JSON text (the caller frees it). */
static char *rn__str_array_json(yajl_val a)
{
    struct rn_buf b = RN_BUF_INIT;
    rn_buf_putc(&b, '[');
    for (size_t i = 0; i < a->u.array.len; i++) {
        const char *s = YAJL_GET_STRING(a->u.array.values[i]);
        if (i) rn_buf_putc(&b, ',');
        rn_json_str(&b, s ? s : "", s ? strlen(s) : 0);
    }
    rn_buf_putc(&b, ']');
    rn_buf_putc(&b, 0);
    return b.data;
}

/* One job of the saved table; NULL with a message naming what is wrong. */
static struct rn__cjob *rn__state_job(yajl_val v, char *err, size_t errlen)
{
    const char *name = rn_jstr(v, "name"), *yaml = rn_jstr(v, "yaml"),
               *dir = rn_jstr(v, "checkpoint_dir");
    yajl_val tasks = rn_jarr(v, "tasks"), sps = rn_jarr(v, "savepoints");
    int st = rn__name_index(rn__cj_names, 4, rn_jstr(v, "state"));
    int op = rn__name_index(rn__op_names, 4, rn_jstr(v, "operation"));
    if (!name || !yaml || !dir || !tasks || !sps || st < 0 || op < 0 || tasks->u.array.len == 0) {
        rn_errf(err, errlen,
                "job '%s': a member is missing or wrong (name, yaml, checkpoint_dir, "
                "state, operation, tasks, savepoints)",
                name ? name : "?");
        return NULL;
    }
    struct rn__cjob *j = rn_xcalloc(1, sizeof *j);
    const char *file = rn_jstr(v, "file");
    j->name = rn_xstrdup(name);
    j->yaml = rn_xstrdup(yaml);
    j->file = rn_xstrdup(file ? file : "job.yaml");
    j->ckpt_dir = rn_xstrdup(dir);
    j->state = (enum rn__cj_state)st;
    j->op = (enum rn__op)op;
    j->op_stage = (int)rn_jint(v, "operation_stage", 1);
    j->op_workers = (int)rn_jint(v, "operation_workers", 0);
    j->n_workers = (int)rn_jint(v, "workers", 1);
    j->n_stages = (int)rn_jint(v, "stages", 1);
    j->ckpt_enabled = (int)rn_jint(v, "checkpoints", 0);
    j->retain = rn_jint(v, "retain", 1);
    j->submitted_ms = rn_jint(v, "submitted_ms", 0);
    j->next_req = rn_jint(v, "next_req", 0);
    j->cluster_ckpt = rn_jint(v, "cluster_checkpoint", 0);
    int n_sp = (int)rn_jint(v, "savepoints_taken", 0);
    int have = (int)sps->u.array.len;
    j->n_sp = n_sp > have ? n_sp - have : 0; /* rn__sp_add counts the kept ones back in */
    for (int i = 0; i < have; i++) {
        yajl_val s = sps->u.array.values[i];
        rn__sp_add(j, rn_jint(s, "id", 0));
        struct rn__savepoint *sp = rn__sp_last(j);
        int ss = rn__name_index(rn__sp_state_names, 3, rn_jstr(s, "state"));
        const char *p = rn_jstr(s, "path");
        sp->state = ss < 0 ? 2 : ss;
        sp->at_ms = rn_jint(s, "time_ms", 0);
        snprintf(sp->path, sizeof sp->path, "%s", p ? p : "");
    }
    j->n_tasks = (int)tasks->u.array.len;
    j->tasks = rn_xcalloc((size_t)j->n_tasks, sizeof *j->tasks);
    j->ckpt_seen = rn_xcalloc((size_t)j->n_tasks, sizeof *j->ckpt_seen);
    for (int i = 0; i < j->n_tasks; i++) {
        yajl_val r = tasks->u.array.values[i];
        struct rn__ctask *t = &j->tasks[i];
        const char *tn = rn_jstr(r, "task"), *e = rn_jstr(r, "error"), *rp = rn_jstr(r, "req_path");
        yajl_val sets = rn_jarr(r, "sets");
        int ts = rn__name_index(rn__ct_names, 6, rn_jstr(r, "state"));
        int rs = rn__name_index(rn__req_state_names, 3, rn_jstr(r, "req_state"));
        if (!tn || !sets || ts < 0 || rs < 0) {
            rn_errf(err, errlen,
                    "job '%s': task %d: a member is missing or wrong (task, state, "
                    "req_state, sets)",
                    name, i);
            rn__free_job(j);
            return NULL;
        }
        snprintf(t->name, sizeof t->name, "%s", tn);
        t->sets = rn__str_array_json(sets);
        t->state = (enum rn__ct_state)ts;
        t->req_state = rs;
        t->partition = (int)rn_jint(r, "partition", i);
        t->stage = (int)rn_jint(r, "stage", 0);
        t->worker = rn_jint(r, "worker", 0);
        t->restarts = (int)rn_jint(r, "restarts", 0);
        t->req = rn_jint(r, "req", 0);
        j->ckpt_seen[i] = (uint64_t)rn_jint(r, "seen", 0);
        t->completed = j->ckpt_seen[i]; /* the heartbeats say more */
        snprintf(t->error, sizeof t->error, "%s", e ? e : "");
        snprintf(t->req_path, sizeof t->req_path, "%s", rp ? rp : "");
    }
    return j;
}

/* Reads <dir>/state.json into the (empty) table. A missing file is a first
 * start. A file that cannot be read back is moved aside and the start fails
 * with its reason: starting with an empty table would silently drop the jobs. */
static int rn__state_load(struct rn_coord *c, char *errbuf, size_t errlen)
{
    char path[600], aside[700], perr[512] = "", why[1024] = "";
    snprintf(path, sizeof path, "%s/state.json", c->dir);
    size_t len = 0;
    char *text = rn_fs_read_all(path, &len);
    if (!text) {
        if (!rn_fs_exists(path)) return 0;
        rn_errf(errbuf, errlen, "%s: cannot read it: %s", path, strerror(errno));
        return RN_EIO;
    }
    yajl_val v = yajl_tree_parse(text, perr, sizeof perr);
    free(text);
    yajl_val workers = rn_jarr(v, "workers"), jobs = rn_jarr(v, "jobs");
    if (!v) {
        /* yajl's message spans lines; one line reads better in a log. */
        size_t o = 0;
        for (const char *q = perr; *q; q++) {
            char ch = *q == '\n' ? ' ' : *q;
            if (ch != ' ' || (o && perr[o - 1] != ' ')) perr[o++] = ch;
        }
        perr[o] = 0;
        snprintf(why, sizeof why, "not JSON: %s", perr);
    } else if (rn_jint(v, "format", 0) != RN__STATE_FORMAT)
        snprintf(why, sizeof why, "format %lld, this coordinator reads format %d",
                 (long long)rn_jint(v, "format", 0), RN__STATE_FORMAT);
    else if (!workers || !jobs)
        snprintf(why, sizeof why, "no 'workers' or 'jobs' list");
    struct rn__cjob **tail = &c->jobs;
    for (size_t i = 0; !why[0] && i < jobs->u.array.len; i++) {
        struct rn__cjob *j = rn__state_job(jobs->u.array.values[i], why, sizeof why);
        if (!j) break;
        *tail = j;
        tail = &j->next;
    }
    struct rn__cworker **wtail = &c->workers;
    for (size_t i = 0; !why[0] && i < workers->u.array.len; i++) {
        yajl_val r = workers->u.array.values[i];
        const char *addr = rn_jstr(r, "address");
        struct rn__cworker *w = rn_xcalloc(1, sizeof *w);
        w->id = rn_jint(r, "id", 0);
        w->slot = (int)rn_jint(r, "slot", 0);
        w->pid = (int)rn_jint(r, "pid", 0);
        yajl_val alive = yajl_tree_get(r, (const char *[]){"alive", NULL}, yajl_t_any);
        w->alive = alive && YAJL_IS_TRUE(alive);
        w->registered_ms = rn_jint(r, "registered_ms", 0);
        snprintf(w->addr, sizeof w->addr, "%s", addr ? addr : "");
        *wtail = w;
        wtail = &w->next;
    }
    if (v) {
        c->next_worker_id = rn_jint(v, "next_worker_id", 0);
        c->submits = rn_jint(v, "submits", 0);
        yajl_tree_free(v);
    }
    if (why[0]) {
        rn__free_table(c);
        snprintf(aside, sizeof aside, "%s.corrupt-%lld", path, (long long)rn_wall_ms());
        int moved = rename(path, aside) == 0;
        rn_errf(errbuf, errlen,
                "%s: the saved job table cannot be read back (%s); %s%s. Nothing was started: "
                "start again for an empty table, or mend the file and put it back",
                path, why, moved ? "it was moved aside to " : "it cannot be moved aside: ",
                moved ? aside : strerror(errno));
        return RN_EINVAL;
    }
    return 0;
}

/* After a restart (before the threads start): the monotonic deadlines begin
 * again, and whatever commands the old process had queued but maybe not
 * delivered are queued again. Workers the table lists as alive get one
 * heartbeat timeout to speak up; those that do keep their tasks running
 * (re-adopted), the others are declared dead then and their tasks restart
 * from their checkpoints, as after any worker failure. */
static void rn__state_resume(struct rn_coord *c)
{
    int64_t now = rn_now_ns();
    int n_jobs = 0, n_workers = 0;
    for (struct rn__cworker *w = c->workers; w; w = w->next) {
        w->last_ns = now;
        n_workers += w->alive;
    }
    for (struct rn__cjob *j = c->jobs; j; j = j->next) {
        n_jobs++;
        /* By one heartbeat timeout every live worker has spoken; waiting
         * longer for a lost one would only delay its tasks' restart. */
        j->wait_workers_until_ns = now + c->o.heartbeat_timeout_ms * 1000000;
        j->ckpt_due_ns = now + c->o.checkpoint_every_ms * 1000000;
        j->op_deadline_ns = now + 120LL * 1000000000;
        if (j->op != RN__OP_NONE && j->op_stage == 0) {
            /* Which tasks had their savepoint command delivered is not known:
             * the savepoint fails (a cancel still goes ahead, a rescale does
             * not), and may be asked for again. */
            for (int i = 0; i < j->n_tasks; i++)
                if (j->tasks[i].req_state == 0) j->tasks[i].req_state = 2;
        }
        for (int i = 0; i < j->n_tasks; i++) {
            struct rn__ctask *t = &j->tasks[i];
            struct rn__cworker *w = rn__worker_find(c, t->worker);
            if (t->state == RN__CT_STARTING || t->state == RN__CT_STOPPING) {
                if (!w || !w->alive)
                    rn__task_lost(t, "its worker was gone when the coordinator restarted");
                else if (t->state == RN__CT_STARTING) /* a repeated start is ignored */
                    rn__queue_start(w, j, t);
                else
                    rn__queue(w, "stop", j, t, NULL);
            } else if (t->state == RN__CT_RUNNING && (!w || !w->alive)) {
                rn__task_lost(t, "its worker was gone when the coordinator restarted");
            }
        }
    }
    if (n_jobs || n_workers)
        fprintf(stderr,
                "coordinator: restored %d jobs and %d workers from %s/state.json; waiting "
                "for their heartbeats\n",
                n_jobs, n_workers, c->dir);
}

/* ---- life cycle ------------------------------------------------------------------------ */

struct rn_coord *rn_coord_create(const struct rn_coord_opts *o, char *errbuf, size_t errlen)
{
    struct rn_coord *c = rn_xcalloc(1, sizeof *c);
    c->o = *o;
    snprintf(c->dir, sizeof c->dir, "%s", o->dir);
    c->started_ms = rn_wall_ms();
    if (rn_fs_mkdirs(c->dir, errbuf, errlen)) goto fail_dir;
    char tf[600];
    snprintf(tf, sizeof tf, "%s/token", c->dir);
    const char *token_file = o->token_file ? o->token_file : tf;
    if (rn__state_load(c, errbuf, errlen)) goto fail_dir;
    rn__state_resume(c);
    pthread_mutex_init(&c->mu, NULL);
    c->http = rn_http_start(o->listen, rn__handler, c, errbuf, errlen);
    if (!c->http) goto fail_http;
    /* Tokens matter only beyond loopback; then the file is made if missing. */
    c->need_token = !rn_addr_is_loopback(rn_http_address(c->http));
    if ((c->need_token || o->token_file) &&
        rn_token_load(token_file, 1, c->token, sizeof c->token, errbuf, errlen))
        goto fail_token;
    if (pthread_create(&c->tick, NULL, rn__tick_thread, c) != 0) {
        rn_errf(errbuf, errlen, "coordinator: cannot start a thread");
        goto fail_token;
    }
    return c;

fail_token:
    rn_http_stop(c->http);
fail_http:
    pthread_mutex_destroy(&c->mu);
    rn__free_table(c);
fail_dir:
    free(c);
    return NULL;
}

const char *rn_coord_address(struct rn_coord *c)
{
    return rn_http_address(c->http);
}

void rn_coord_slot_exited(struct rn_coord *c, int slot)
{
    pthread_mutex_lock(&c->mu);
    for (struct rn__cworker *w = c->workers; w; w = w->next)
        if (w->alive && w->slot == slot) rn__worker_dead(c, w, "exited");
    rn__persist(c);
    pthread_mutex_unlock(&c->mu);
}

int rn_coord_wanted_workers(struct rn_coord *c)
{
    int n = 0;
    pthread_mutex_lock(&c->mu);
    for (struct rn__cjob *j = c->jobs; j; j = j->next)
        if (j->state == RN__CJ_RUNNING)
            n = RN_MAX(n, j->op == RN__OP_RESCALE ? RN_MAX(j->op_workers, j->n_workers)
                                                  : j->n_workers);
    pthread_mutex_unlock(&c->mu);
    return n;
}

void rn_coord_destroy(struct rn_coord *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->tick, NULL);
    rn_http_stop(c->http);
    rn__persist(c);
    rn__free_table(c);
    rn_buf_free(&c->saved);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
