/*
 * rn_worker.c — `runnel worker`: one process of a cluster, running the tasks
 * the coordinator gives it.
 *
 * The main thread registers with the coordinator, then heartbeats: every
 * interval it posts what it runs (each task's state, records, last completed
 * checkpoint, the answer to a checkpoint request) and the reply carries its
 * commands, which it carries out before the next heartbeat:
 *
 *   start       load the job (the coordinator's YAML plus its --set overrides
 *               that restrict it to one partition and give it its own
 *               checkpoint and state directories) and run it on a thread of
 *               its own, with the engine as `runnel run` does
 *   stop        ask the task to stop (it takes its final checkpoint), then
 *               forget it once its thread has ended
 *   checkpoint  ask the task for a checkpoint or savepoint now
 *
 * A reply saying that the coordinator does not know this worker (it was
 * declared dead, or the coordinator restarted) stops every task — another
 * worker may be running them now — and registers again.
 *
 * Its own HTTP page (loopback by default) lists the tasks with links to each
 * task's status page, as JSON at /api/v1/worker and in /metrics.
 *
 * Threads: the main thread owns the task list and changes it; the HTTP thread
 * reads it under `mu`; each task's thread only runs rn_job_run.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_cluster_int.h"
#include "rn_fs_int.h"
#include "rn_exec_int.h"
#include "rn_job_int.h"

enum rn__wt_state { RN__WT_RUNNING, RN__WT_FINISHED, RN__WT_STOPPED, RN__WT_FAILED };
static const char *const rn__wt_names[] = {"running", "finished", "stopped", "failed"};

struct rn__wtask {
    char job_name[128];
    char name[32]; /* "p3" */
    int partition;
    struct rn_job *job;
    pthread_t thread;
    int thread_started;
    _Atomic int state;  /* enum rn__wt_state */
    int stop_requested; /* a stop command came: forget once ended */
    int64_t started_ms;
    char error[1024]; /* written by the task thread before state leaves RUNNING */
    /* The last checkpoint request: cluster request id, the task's own id. */
    int64_t req;
    int64_t req_local;
    int req_savepoint;
    int req_state; /* 0 pending, 1 done, 2 failed */
    char req_path[600];
    char req_error[256]; /* why it failed, for the coordinator's log */
    int64_t req_deadline_ns;
    struct rn__wtask *next;
};

struct rn__worker {
    const char *coordinator;
    const char *dir;
    int slot;
    int64_t heartbeat_ms;
    char token[RN_TOKEN_MAX];
    int have_token;
    int64_t id; /* given by the coordinator at registration; 0: not registered */
    struct rn_http_server *http;
    pthread_mutex_t mu; /* guards the list for the HTTP thread */
    struct rn__wtask *tasks;
    int64_t started_ms;
};

static volatile sig_atomic_t rn__w_stop;

static void rn__w_on_signal(int sig)
{
    (void)sig;
    rn__w_stop = 1;
}

static void *rn__task_thread(void *arg)
{
    struct rn__wtask *t = arg;
    char err[512] = "";
    int rc = rn_job_run(t->job, err, sizeof err);
    if (rc) snprintf(t->error, sizeof t->error, "%s", err);
    atomic_store(&t->state, rc                               ? RN__WT_FAILED
                            : atomic_load(&t->job->stopping) ? RN__WT_STOPPED
                                                             : RN__WT_FINISHED);
    return NULL;
}

static struct rn__wtask *rn__find(struct rn__worker *w, const char *job, const char *name)
{
    for (struct rn__wtask *t = w->tasks; t; t = t->next)
        if (strcmp(t->job_name, job) == 0 && strcmp(t->name, name) == 0) return t;
    return NULL;
}

/* Records in the task's sources so far (0 before it is built). */
static uint64_t rn__task_records(struct rn__wtask *t)
{
    if (!t->job || !atomic_load_explicit(&t->job->built, memory_order_acquire)) return 0;
    uint64_t sum = 0;
    for (int i = 0; i < t->job->n_nodes; i++) {
        if (t->job->nodes[i].kind != RN_KIND_SOURCE) continue;
        uint64_t in, out, dropped;
        rn__instance_totals(t->job, i, &in, &out, &dropped);
        sum += out;
    }
    return sum;
}

/* Consumer lag of the task's sources (their metric `lag`: messages behind
 * the end of their partitions), 0 before it is built. */
static uint64_t rn__task_lag(struct rn__wtask *t)
{
    if (!t->job || !atomic_load_explicit(&t->job->built, memory_order_acquire)) return 0;
    struct rn_job *job = t->job;
    uint64_t sum = 0;
    for (int i = 0; i < job->n_nodes; i++) {
        const struct rn_node *n = &job->nodes[i];
        if (n->kind != RN_KIND_SOURCE || !n->type->metrics) continue;
        int m = 0;
        while (n->type->metrics[m] && strcmp(n->type->metrics[m], "lag") != 0)
            m++;
        if (!n->type->metrics[m]) continue;
        const struct rn_group *g = &job->groups[n->group];
        int pos = 0;
        while (g->nodes[pos] != i)
            pos++;
        for (uint32_t s = 0; g->tasks && s < g->parallelism; s++) {
            struct rn_instance *in = g->tasks[s]->inst[pos];
            if (m < in->n_metrics)
                sum += atomic_load_explicit(&in->metrics[m], memory_order_relaxed);
        }
    }
    return sum;
}

/* Main thread: starts a task from a "start" command. A task that cannot be
 * loaded is kept as failed with its message, for the coordinator to see. */
static void rn__cmd_start(struct rn__worker *w, yajl_val cmd)
{
    const char *job = rn_jstr(cmd, "job"), *name = rn_jstr(cmd, "task"),
               *yaml = rn_jstr(cmd, "yaml");
    if (!job || !name || !yaml) return;
    if (rn__w_stop) return; /* shutting down: the coordinator places it elsewhere */
    if (rn__find(w, job, name)) return; /* already here (a repeated command) */
    struct rn__wtask *t = rn_xcalloc(1, sizeof *t);
    snprintf(t->job_name, sizeof t->job_name, "%s", job);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->partition = (int)rn_jint(cmd, "partition", 0);
    t->started_ms = rn_wall_ms();
    atomic_store(&t->state, RN__WT_RUNNING);

    char path[1024], err[1024] = "";
    snprintf(path, sizeof path, "%s/jobs/%s.yaml", w->dir, job);
    yajl_val sets = rn_jarr(cmd, "sets");
    size_t ns = sets ? sets->u.array.len : 0;
    const char **ov = rn_xcalloc(ns + 1, sizeof *ov);
    size_t n = 0;
    for (size_t i = 0; i < ns; i++)
        if (YAJL_IS_STRING(sets->u.array.values[i])) ov[n++] = sets->u.array.values[i]->u.string;
    struct rn_job_options opt = {.overrides = ov,
                                 .n_overrides = n,
                                 .quiet = 1,
                                 .fresh = (int)rn_jint(cmd, "fresh", 0),
                                 .from_checkpoint = rn_jstr(cmd, "from")};
    if (rn_fs_mkdirs_for(path, err, sizeof err) == 0 &&
        rn_fs_write_atomic(path, yaml, strlen(yaml), err, sizeof err) == 0)
        t->job = rn_job_load(path, &opt, err, sizeof err);
    free(ov);
    if (t->job && pthread_create(&t->thread, NULL, rn__task_thread, t) == 0) {
        t->thread_started = 1;
        fprintf(stderr, "worker %d: task %s/%s started\n", w->slot, job, name);
    } else {
        if (t->job) snprintf(err, sizeof err, "cannot start a thread");
        snprintf(t->error, sizeof t->error, "%s", err);
        atomic_store(&t->state, RN__WT_FAILED);
        fprintf(stderr, "worker %d: task %s/%s failed to start: %s\n", w->slot, job, name, err);
    }
    pthread_mutex_lock(&w->mu);
    t->next = w->tasks;
    w->tasks = t;
    pthread_mutex_unlock(&w->mu);
}

/* Asks t's job for the checkpoint of t's pending request. A task still
 * restoring cannot take one yet: the request fails with that reason (a
 * rescale then moves nothing, and may be asked for again). */
static void rn__req_issue(struct rn__wtask *t)
{
    if (!t->job || atomic_load(&t->state) != RN__WT_RUNNING) {
        t->req_state = 2;
        snprintf(t->req_error, sizeof t->req_error, "the task is not running (%s)",
                 rn__wt_names[atomic_load(&t->state)]);
        return;
    }
    if (!t->job->ckpt_enabled) {
        t->req_state = 2;
        snprintf(t->req_error, sizeof t->req_error, "the job has no checkpoint.dir");
        return;
    }
    if (!atomic_load(&t->job->running)) {
        t->req_state = 2;
        snprintf(t->req_error, sizeof t->req_error,
                 "the task is still starting (restoring its state): try again");
        return;
    }
    int64_t id = rn__ckpt_request(t->job, t->req_savepoint);
    if (id <= 0) {
        t->req_state = 2;
        snprintf(t->req_error, sizeof t->req_error, "the task is stopping (%s)", rn_strerror((int)id));
        return;
    }
    t->req_local = id;
    snprintf(t->req_path, sizeof t->req_path, "%s/%s-%lld", t->job->ckpt_dir,
             t->req_savepoint ? "savepoint" : "chk", (long long)id);
}

static void rn__cmd_checkpoint(struct rn__worker *w, yajl_val cmd)
{
    const char *job = rn_jstr(cmd, "job"), *name = rn_jstr(cmd, "task");
    struct rn__wtask *t = job && name ? rn__find(w, job, name) : NULL;
    if (!t) {
        fprintf(stderr, "worker %d: checkpoint request for a task it does not run: %s/%s\n",
                w->slot, job ? job : "?", name ? name : "?");
        return;
    }
    if (t->req == rn_jint(cmd, "req", 0) && t->req_state != 2) return; /* sent again */
    t->req = rn_jint(cmd, "req", 0);
    t->req_savepoint = (int)rn_jint(cmd, "savepoint", 0);
    t->req_path[0] = 0;
    t->req_error[0] = 0;
    t->req_local = -1;
    t->req_state = 0;
    t->req_deadline_ns = rn_now_ns() + 120LL * 1000000000;
    rn__req_issue(t);
}

static void rn__cmd_stop(struct rn__worker *w, yajl_val cmd)
{
    const char *job = rn_jstr(cmd, "job"), *name = rn_jstr(cmd, "task");
    struct rn__wtask *t = job && name ? rn__find(w, job, name) : NULL;
    if (!t) return;
    t->stop_requested = 1;
    if (t->job && atomic_load(&t->state) == RN__WT_RUNNING) rn_job_stop(t->job);
}

/* Main thread: joins tasks whose thread ended, forgets those the coordinator
 * stopped, and settles checkpoint requests. */
static void rn__reap(struct rn__worker *w)
{
    for (struct rn__wtask **pp = &w->tasks; *pp;) {
        struct rn__wtask *t = *pp;
        if (t->req_state == 0) {
            int got = 0;
            /* Only an issued request (req_local > 0) reads the job's
             * coordinator: issuing it saw the job running, after the
             * coordinator was made. */
            if (t->req && t->req_local > 0 && t->job)
                got = rn__ckpt_outcome(t->job, t->req_local, t->req_savepoint, t->req_path,
                                       sizeof t->req_path, t->req_error, sizeof t->req_error);
            if (got != 0) {
                t->req_state = got > 0 ? 1 : 2;
            } else if (rn_now_ns() > t->req_deadline_ns) {
                t->req_state = 2;
                snprintf(t->req_error, sizeof t->req_error, "%s",
                         t->req_local < 0 ? "the task did not start running within 120 s"
                                          : "not complete within 120 s");
            } else if (atomic_load(&t->state) != RN__WT_RUNNING) {
                t->req_state = 2;
                snprintf(t->req_error, sizeof t->req_error, "the task ended (%s)",
                         rn__wt_names[atomic_load(&t->state)]);
            }
        }
        int ended = atomic_load(&t->state) != RN__WT_RUNNING;
        if (ended && t->thread_started) {
            pthread_join(t->thread, NULL);
            t->thread_started = 0;
            fprintf(stderr, "worker %d: task %s/%s %s%s%s\n", w->slot, t->job_name, t->name,
                    rn__wt_names[atomic_load(&t->state)], t->error[0] ? ": " : "", t->error);
        }
        if (ended && t->stop_requested) {
            pthread_mutex_lock(&w->mu);
            *pp = t->next;
            pthread_mutex_unlock(&w->mu);
            if (t->job) rn_job_destroy(t->job);
            free(t);
            continue;
        }
        pp = &t->next;
    }
}

static void rn__task_json(struct rn__wtask *t, struct rn_buf *b)
{
    rn_buf_putc(b, '{');
    rn_json_kv_str(b, "job", t->job_name);
    rn_json_kv_str(b, "task", t->name);
    int st = atomic_load(&t->state);
    /* Asked to stop and not ended yet: it is still taking its final
     * checkpoint and committing. */
    rn_json_kv_str(b, "state",
                   st == RN__WT_RUNNING && t->stop_requested ? "stopping" : rn__wt_names[st]);
    rn_json_kv_str(b, "error", st == RN__WT_FAILED ? t->error : "");
    const char *page = t->job && st == RN__WT_RUNNING ? rn_job_http_address(t->job) : "";
    rn_json_kv_str(b, "page", page);
    rn_buf_printf(
        b, "\"partition\":%d,\"records\":%llu,\"lag\":%llu,\"completed\":%llu,\"req\":%lld,",
        t->partition, (unsigned long long)rn__task_records(t), (unsigned long long)rn__task_lag(t),
        t->job ? (unsigned long long)atomic_load(&t->job->completed_id) : 0ULL, (long long)t->req);
    rn_json_kv_str(b, "req_state",
                   t->req_state == 0   ? "pending"
                   : t->req_state == 1 ? "done"
                                       : "failed");
    rn_json_kv_str(b, "req_error", t->req_state == 2 ? t->req_error : "");
    rn_buf_puts(b, "\"req_path\":");
    rn_json_str(b, t->req_path, strlen(t->req_path));
    rn_buf_putc(b, '}');
}

/* ---- the worker's own page (HTTP thread) ------------------------------------------ */

static void rn__w_handler(void *ud, const struct rn_http_request *req, struct rn_http_response *res)
{
    struct rn__worker *w = ud;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        res->status = 405;
        rn_buf_puts(&res->body, "405: the worker's page is read-only\n");
        return;
    }
    pthread_mutex_lock(&w->mu);
    if (strcmp(req->path, "/api/v1/worker") == 0) {
        res->content_type = "application/json";
        rn_buf_printf(&res->body, "{\"id\":%lld,\"slot\":%d,\"pid\":%d,", (long long)w->id, w->slot,
                      (int)getpid());
        rn_json_kv_str(&res->body, "coordinator", w->coordinator);
        rn_buf_puts(&res->body, "\"tasks\":[");
        for (struct rn__wtask *t = w->tasks; t; t = t->next) {
            rn__task_json(t, &res->body);
            if (t->next) rn_buf_putc(&res->body, ',');
        }
        rn_buf_puts(&res->body, "]}\n");
    } else if (strcmp(req->path, "/metrics") == 0) {
        res->content_type = "text/plain; version=0.0.4";
        rn_buf_puts(&res->body, "# TYPE runnel_worker_task_records counter\n");
        for (struct rn__wtask *t = w->tasks; t; t = t->next)
            rn_buf_printf(&res->body, "runnel_worker_task_records{job=\"%s\",task=\"%s\"} %llu\n",
                          t->job_name, t->name, (unsigned long long)rn__task_records(t));
        rn_buf_puts(&res->body, "# TYPE runnel_worker_task_checkpoint gauge\n");
        for (struct rn__wtask *t = w->tasks; t; t = t->next)
            rn_buf_printf(&res->body,
                          "runnel_worker_task_checkpoint{job=\"%s\",task=\"%s\"} %llu\n",
                          t->job_name, t->name,
                          t->job ? (unsigned long long)atomic_load(&t->job->completed_id) : 0ULL);
    } else if (strcmp(req->path, "/") == 0) {
        res->content_type = "text/html; charset=utf-8";
        rn_buf_printf(&res->body,
                      "<!doctype html><html><head><meta charset=utf-8>"
                      "<meta http-equiv=refresh content=2><title>runnel worker %d</title></head>"
                      "<body><h1>runnel worker %d</h1><p>coordinator: <a href=\"http://%s/\">%s</a>"
                      "</p><table border=1><tr><th>job</th><th>task</th><th>state</th>"
                      "<th>records</th><th>checkpoint</th><th>page</th></tr>",
                      w->slot, w->slot, w->coordinator, w->coordinator);
        for (struct rn__wtask *t = w->tasks; t; t = t->next) {
            const char *page = t->job && atomic_load(&t->state) == RN__WT_RUNNING
                                   ? rn_job_http_address(t->job)
                                   : "";
            rn_buf_printf(&res->body,
                          "<tr><td>%s</td><td>%s</td><td>%s</td><td>%llu</td><td>%llu</td>"
                          "<td><a href=\"http://%s/\">%s</a></td></tr>",
                          t->job_name, t->name, rn__wt_names[atomic_load(&t->state)],
                          (unsigned long long)rn__task_records(t),
                          t->job ? (unsigned long long)atomic_load(&t->job->completed_id) : 0ULL,
                          page, page);
        }
        rn_buf_puts(&res->body, "</table></body></html>\n");
    } else {
        res->status = 404;
        rn_buf_puts(&res->body, "404: try /, /api/v1/worker or /metrics\n");
    }
    pthread_mutex_unlock(&w->mu);
}

/* ---- talking to the coordinator (main thread) ------------------------------------- */

/* Posts body to path; returns the parsed reply (the caller frees it) or NULL,
 * with *status (0 when unreachable). */
static yajl_val rn__w_post(struct rn__worker *w, const char *path, const char *body, int *status)
{
    struct rn_buf out = RN_BUF_INIT;
    char err[512];
    *status = 0;
    yajl_val v = NULL;
    if (rn_http_call_auth(w->coordinator, "POST", path, body, w->have_token ? w->token : NULL, 5000,
                          status, &out, err, sizeof err) == 0) {
        rn_buf_putc(&out, 0);
        v = yajl_tree_parse(out.data, NULL, 0);
    }
    rn_buf_free(&out);
    return v;
}

static int rn__register(struct rn__worker *w)
{
    struct rn_buf b = RN_BUF_INIT;
    rn_buf_printf(&b, "{\"slot\":%d,\"pid\":%d,", w->slot, (int)getpid());
    rn_buf_puts(&b, "\"address\":");
    const char *a = rn_http_address(w->http);
    rn_json_str(&b, a, strlen(a));
    rn_buf_puts(&b, "}");
    rn_buf_putc(&b, 0);
    int status;
    yajl_val v = rn__w_post(w, "/api/v1/cluster/register", b.data, &status);
    rn_buf_free(&b);
    if (status == 401) {
        fprintf(stderr, "worker %d: the coordinator refused the token (give --token-file)\n",
                w->slot);
    }
    w->id = status == 200 ? rn_jint(v, "worker", 0) : 0;
    if (v) yajl_tree_free(v);
    if (w->id) fprintf(stderr, "worker %d: registered as %lld\n", w->slot, (long long)w->id);
    return w->id ? 0 : -1;
}

static void rn__stop_all(struct rn__worker *w)
{
    for (struct rn__wtask *t = w->tasks; t; t = t->next) {
        t->stop_requested = 1;
        if (t->job && atomic_load(&t->state) == RN__WT_RUNNING) rn_job_stop(t->job);
    }
}

/* Ends every task at once, failed with `why`: no final checkpoint, no commit. */
static void rn__abort_all(struct rn__worker *w, const char *why)
{
    for (struct rn__wtask *t = w->tasks; t; t = t->next) {
        t->stop_requested = 1;
        if (t->job && atomic_load(&t->state) == RN__WT_RUNNING)
            rn__job_set_error(t->job, "%s", why);
    }
}

static void rn__heartbeat(struct rn__worker *w)
{
    struct rn_buf b = RN_BUF_INIT;
    rn_buf_printf(&b, "{\"worker\":%lld,\"tasks\":[", (long long)w->id);
    /* Every task this process still has, also those asked to stop: until its
     * thread has ended (final checkpoint written, output committed) the
     * coordinator must not start it anywhere else. */
    for (struct rn__wtask *t = w->tasks; t; t = t->next) {
        if (b.data[b.len - 1] == '}') rn_buf_putc(&b, ',');
        rn__task_json(t, &b);
    }
    rn_buf_puts(&b, "]}");
    rn_buf_putc(&b, 0);
    int status;
    yajl_val v = rn__w_post(w, "/api/v1/cluster/heartbeat", b.data, &status);
    rn_buf_free(&b);
    if (status == 404 || status == 410) {
        /* Declared dead or unknown: whatever we run may run elsewhere now, from
         * its last checkpoint. Fenced: the tasks end without a final
         * checkpoint or a commit, so they cannot write over a newer run. */
        fprintf(stderr,
                "worker %d: the coordinator does not know this worker; aborting its "
                "tasks (no final checkpoint) and registering again\n",
                w->slot);
        rn__abort_all(w, "fenced: the coordinator declared this worker dead; the task "
                         "runs elsewhere from its last checkpoint");
        w->id = 0;
    }
    yajl_val cmds = status == 200 ? rn_jarr(v, "commands") : NULL;
    for (size_t i = 0; cmds && i < cmds->u.array.len; i++) {
        yajl_val c = cmds->u.array.values[i];
        const char *op = rn_jstr(c, "op");
        if (!op) continue;
        if (strcmp(op, "start") == 0)
            rn__cmd_start(w, c);
        else if (strcmp(op, "stop") == 0)
            rn__cmd_stop(w, c);
        else if (strcmp(op, "checkpoint") == 0)
            rn__cmd_checkpoint(w, c);
    }
    if (v) yajl_tree_free(v);
}

static int rn__w_usage(FILE *out)
{
    fprintf(out,
            "usage: runnel worker [--coordinator HOST:PORT] [--listen HOST:PORT] [--dir DIR]\n"
            "                     [--slot N] [--heartbeat DURATION] [--token-file PATH]\n"
            "\n"
            "Runs the tasks a coordinator gives it. --coordinator defaults to %s;\n"
            "--listen (the worker's own page) to 127.0.0.1:0; --dir (copies of the jobs'\n"
            "YAML) to var/worker-N; --heartbeat to 1s. --token-file is needed when the\n"
            "coordinator listens beyond loopback.\n",
            RN_CLUSTER_DEFAULT_ADDR);
    return out == stdout ? 0 : 2;
}

int rn_worker_main(int argc, char **argv)
{
    struct rn__worker w;
    memset(&w, 0, sizeof w);
    w.coordinator = RN_CLUSTER_DEFAULT_ADDR;
    w.heartbeat_ms = 1000;
    const char *listen = "127.0.0.1:0", *token_file = NULL, *dir = NULL;
    char dirbuf[512], err[1024];
    for (int i = 1; i < argc; i += 2) { /* --key value pairs */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return rn__w_usage(stdout);
        if (!v) {
            fprintf(stderr, "runnel worker: '%s' needs a value or is unknown\n", a);
            return rn__w_usage(stderr);
        }
        if (strcmp(a, "--coordinator") == 0) {
            w.coordinator = v;
        } else if (strcmp(a, "--listen") == 0) {
            listen = v;
        } else if (strcmp(a, "--dir") == 0) {
            dir = v;
        } else if (strcmp(a, "--slot") == 0) {
            w.slot = atoi(v);
        } else if (strcmp(a, "--token-file") == 0) {
            token_file = v;
        } else if (strcmp(a, "--heartbeat") == 0) {
            if (rn_parse_duration_ms(v, &w.heartbeat_ms) || w.heartbeat_ms <= 0) {
                fprintf(stderr, "runnel worker: --heartbeat %s: expected a duration such as 1s\n",
                        v);
                return 2;
            }
        } else {
            fprintf(stderr, "runnel worker: unknown option '%s'\n", a);
            return rn__w_usage(stderr);
        }
    }
    if (!dir) {
        snprintf(dirbuf, sizeof dirbuf, "var/worker-%d", w.slot);
        dir = dirbuf;
    }
    w.dir = dir;
    if (token_file) {
        if (rn_token_load(token_file, 0, w.token, sizeof w.token, err, sizeof err)) {
            fprintf(stderr, "runnel worker: %s\n", err);
            return 1;
        }
        w.have_token = 1;
    }
    pthread_mutex_init(&w.mu, NULL);
    w.started_ms = rn_wall_ms();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = rn__w_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    w.http = rn_http_start(listen, rn__w_handler, &w, err, sizeof err);
    if (!w.http) {
        fprintf(stderr, "runnel worker: %s\n", err);
        return 1;
    }
    fprintf(stderr, "worker %d: page on http://%s/, coordinator %s\n", w.slot,
            rn_http_address(w.http), w.coordinator);
    int64_t next = rn_now_ns();
    while (!rn__w_stop) {
        rn__reap(&w);
        if (rn_now_ns() >= next) {
            next = rn_now_ns() + w.heartbeat_ms * 1000000;
            if (!w.id) rn__register(&w);
            if (w.id) rn__heartbeat(&w);
        }
        usleep(20000);
    }
    /* Stopping: every task takes its final checkpoint, then the process ends.
     * Heartbeats go on meanwhile, listing the tasks as stopping, so the
     * coordinator moves none of them before its final checkpoint is done. */
    rn__stop_all(&w);
    while (w.tasks) {
        rn__reap(&w);
        if (w.id && rn_now_ns() >= next) {
            next = rn_now_ns() + w.heartbeat_ms * 1000000;
            rn__heartbeat(&w);
        }
        if (w.tasks) usleep(20000);
    }
    if (w.id) rn__heartbeat(&w); /* none left: the coordinator may move them now */
    rn_http_stop(w.http);
    pthread_mutex_destroy(&w.mu);
    return 0;
}
