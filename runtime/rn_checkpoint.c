/*
 * rn_checkpoint.c — the checkpoint coordinator, snapshot files, manifests,
 * retention, and finding the checkpoint to restore. See docs/checkpoints.md.
 *
 *   trigger   the coordinator thread picks id N, creates chk-N/, and asks every
 *             source task for it; each source snapshots its position and sends
 *             a barrier N down every queue after the records before it.
 *   align     a task with several inputs stops reading an input once barrier N
 *             came on it, until N came on all; then it snapshots its chain
 *             (operators' own bytes, its RocksDB checkpoint) and passes N on.
 *   ack       every task acks N; when all have, the coordinator writes
 *             chk-N/_manifest.json atomically (write, fsync, rename, fsync dir)
 *             — the one step that makes N complete — then applies retention and
 *             tells the tasks, whose sinks then commit the output N covers.
 *
 * A directory without a manifest is an unfinished checkpoint: it is never
 * restored from, and it is deleted at the next start. At the end of a job
 * (bounded input, or a stop) every task snapshots once more into a final
 * checkpoint, so a restart resumes exactly where the job stopped.
 *
 * Layout: <checkpoint.dir>/<job>/chk-<N>/{_manifest.json, tasks/<head>-<subtask>/
 * {runtime.bin, ops/<operator>.bin, db/}}; savepoints are savepoint-<N>/ and
 * are kept until deleted by hand.
 */
#include <dirent.h>
#include <signal.h>
#include <unistd.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yajl/yajl_tree.h>

#include "rn_fs.h"
#include "rn_exec_int.h"

#define RN__SNAP_MAGIC "RNSNAP01"
#define RN__HISTORY 32

enum { RN__K_CHECKPOINT = 0, RN__K_SAVEPOINT = 1, RN__K_FINAL = 2 };
enum { RN__S_RUNNING = 0, RN__S_COMPLETED = 1, RN__S_FAILED = 2 };

struct rn_ckpt_record {
    uint64_t id;
    int kind, status;
    int64_t trigger_ms;  /* wall clock */
    int64_t start_ns;
    int64_t duration_ns; /* trigger to manifest */
    int64_t max_sync_ns, max_align_ns;
    uint64_t bytes;
    int acks, expected;
    char path[512];
    char error[200];
};

struct rn_ckpt_coord {
    /* Fault injection for crash tests: RUNNEL_FAULT=checkpoint:<id>:<point>
     * kills the process with SIGKILL at <point> of checkpoint <id>:
     * "task" (a task has written part of its snapshot) or "manifest" (every
     * task has acked, the manifest is not yet written). */
    uint64_t fault_id;
    int fault_point; /* 1 task, 2 manifest */
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    uint64_t next_id;
    struct rn_ckpt_record run;   /* the periodic / on-demand one in flight */
    int has_run;
    struct rn_ckpt_record final; /* the end-of-job one */
    int has_final;
    struct rn_ckpt_record history[RN__HISTORY];
    int n_history; /* total ever added; ring index = n % RN__HISTORY */
    uint64_t n_completed, n_failed;
    int request; /* 0 none, 1 checkpoint, 2 savepoint */
    int64_t due_ns;
    int n_tasks;
};

/* ---- snapshot files ----------------------------------------------------------- */

struct rn_snapshot_writer {
    struct rn_buf buf;
};

struct rn_snapshot_reader {
    char *data;
    size_t len, pos;
    uint64_t id;
    char **strs; /* strings handed out, owned until destroy */
    size_t n_strs;
};

struct rn_snapshot_writer *rn__snapshot_writer_create(void)
{
    return rn_xcalloc(1, sizeof(struct rn_snapshot_writer));
}

void rn__snapshot_writer_destroy(struct rn_snapshot_writer *w)
{
    if (!w) return;
    rn_buf_free(&w->buf);
    free(w);
}

void rn_snapshot_write(struct rn_snapshot_writer *w, const void *p, size_t n)
{
    rn_buf_append(&w->buf, p, n);
}

void rn_snapshot_write_i64(struct rn_snapshot_writer *w, int64_t v)
{
    rn_buf_append(&w->buf, &v, sizeof v);
}

void rn_snapshot_write_str(struct rn_snapshot_writer *w, const char *s)
{
    int64_t n = (int64_t)strlen(s);
    rn_snapshot_write_i64(w, n);
    rn_buf_append(&w->buf, s, (size_t)n);
}

int rn__snapshot_writer_save(struct rn_snapshot_writer *w, const char *path, char *errbuf,
                             size_t errlen)
{
    /* magic, payload length, xxHash of the payload, payload */
    struct rn_buf out = RN_BUF_INIT;
    uint64_t len = w->buf.len, sum = rn_hash64(w->buf.data ? w->buf.data : "", w->buf.len);
    rn_buf_append(&out, RN__SNAP_MAGIC, 8);
    rn_buf_append(&out, &len, 8);
    rn_buf_append(&out, &sum, 8);
    if (w->buf.len) rn_buf_append(&out, w->buf.data, w->buf.len);
    int rc = rn_fs_write_atomic(path, out.data, out.len, errbuf, errlen);
    rn_buf_free(&out);
    return rc;
}

struct rn_snapshot_reader *rn__snapshot_reader_open(const char *path, uint64_t id, char *errbuf,
                                                    size_t errlen)
{
    size_t len = 0;
    char *data = rn_fs_read_all(path, &len);
    if (!data) {
        rn_errf(errbuf, errlen, "cannot read snapshot '%s'", path);
        return NULL;
    }
    uint64_t plen, sum;
    if (len < 24 || memcmp(data, RN__SNAP_MAGIC, 8) != 0) goto corrupt;
    memcpy(&plen, data + 8, 8);
    memcpy(&sum, data + 16, 8);
    if (plen != len - 24 || rn_hash64(data + 24, plen) != sum) goto corrupt;
    struct rn_snapshot_reader *r = rn_xcalloc(1, sizeof *r);
    r->data = data;
    r->len = len;
    r->pos = 24;
    r->id = id;
    return r;
corrupt:
    rn_errf(errbuf, errlen, "snapshot '%s' is corrupt (bad header, length or checksum)", path);
    free(data);
    return NULL;
}

void rn__snapshot_reader_destroy(struct rn_snapshot_reader *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_strs; i++) free(r->strs[i]);
    free(r->strs);
    free(r->data);
    free(r);
}

int rn_snapshot_read(struct rn_snapshot_reader *r, void *p, size_t n)
{
    if (r->len - r->pos < n) return RN_ECORRUPT;
    memcpy(p, r->data + r->pos, n);
    r->pos += n;
    return 0;
}

int rn_snapshot_read_i64(struct rn_snapshot_reader *r, int64_t *v)
{
    return rn_snapshot_read(r, v, sizeof *v);
}

int rn_snapshot_read_str(struct rn_snapshot_reader *r, const char **s)
{
    int64_t n;
    if (rn_snapshot_read_i64(r, &n) || n < 0 || (size_t)n > r->len - r->pos) return RN_ECORRUPT;
    r->strs = rn_xrealloc(r->strs, (r->n_strs + 1) * sizeof *r->strs);
    r->strs[r->n_strs] = rn_xstrndup(r->data + r->pos, (size_t)n);
    *s = r->strs[r->n_strs++];
    r->pos += (size_t)n;
    return 0;
}

uint64_t rn_snapshot_id(const struct rn_snapshot_reader *r)
{
    return r->id;
}

size_t rn_snapshot_remaining(const struct rn_snapshot_reader *r)
{
    return r->len - r->pos;
}

/* ---- directories ---------------------------------------------------------------- */

static void rn__ckpt_path(struct rn_job *job, uint64_t id, int kind, char *out, size_t n)
{
    snprintf(out, n, "%s/%s-%llu", job->ckpt_dir, kind == RN__K_SAVEPOINT ? "savepoint" : "chk",
             (unsigned long long)id);
}

char *rn__ckpt_task_dir(struct rn_job *job, uint64_t id, struct rn_task *t)
{
    struct rn_ckpt_coord *c = job->coord;
    const char *base = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->has_run && c->run.id == id) base = c->run.path;
    if (c->has_final && c->final.id == id) base = c->final.path;
    char *dir = NULL;
    if (base) {
        size_t n = strlen(base) + 256;
        dir = rn_xmalloc(n);
        snprintf(dir, n, "%s/tasks/%s-%u", base,
                 job->nodes[job->groups[t->group].nodes[0]].id, t->subtask);
    }
    pthread_mutex_unlock(&c->mu);
    if (dir && rn_fs_mkdirs(dir, NULL, 0) != 0) {
        free(dir);
        return NULL;
    }
    return dir;
}

/* The id in "chk-<id>" / "savepoint-<id>", or 0. */
static uint64_t rn__dir_id(const char *name, int *kind)
{
    const char *p = NULL;
    if (strncmp(name, "chk-", 4) == 0) {
        p = name + 4;
        *kind = RN__K_CHECKPOINT;
    } else if (strncmp(name, "savepoint-", 10) == 0) {
        p = name + 10;
        *kind = RN__K_SAVEPOINT;
    }
    if (!p || !*p) return 0;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    return *end ? 0 : v;
}

struct rn__dirent {
    uint64_t id;
    int kind, complete;
    char path[600];
};

static int rn__dirent_cmp(const void *a, const void *b)
{
    const struct rn__dirent *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Checkpoint directories of the job, sorted by id. */
static struct rn__dirent *rn__list(struct rn_job *job, size_t *n)
{
    *n = 0;
    DIR *d = opendir(job->ckpt_dir);
    if (!d) return NULL;
    size_t cap = 16;
    struct rn__dirent *v = rn_xmalloc(cap * sizeof *v);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int kind = 0;
        uint64_t id = rn__dir_id(e->d_name, &kind);
        if (!id) continue;
        if (*n == cap) v = rn_xrealloc(v, (cap *= 2) * sizeof *v);
        struct rn__dirent *x = &v[(*n)++];
        x->id = id;
        x->kind = kind;
        snprintf(x->path, sizeof x->path, "%s/%s", job->ckpt_dir, e->d_name);
        char mf[700];
        snprintf(mf, sizeof mf, "%s/_manifest.json", x->path);
        x->complete = rn_fs_exists(mf);
    }
    closedir(d);
    qsort(v, *n, sizeof *v, rn__dirent_cmp);
    return v;
}

static void rn__retain(struct rn_job *job)
{
    size_t n;
    struct rn__dirent *v = rn__list(job, &n);
    int64_t keep = job->ckpt_retain;
    for (size_t i = n; i-- > 0;) {
        if (v[i].kind != RN__K_CHECKPOINT || !v[i].complete) continue;
        if (keep > 0) {
            keep--;
            continue;
        }
        rn_fs_rmtree(v[i].path, NULL, 0);
    }
    free(v);
}

/* ---- manifests ------------------------------------------------------------------ */

static int rn__write_manifest(struct rn_job *job, const struct rn_ckpt_record *r, char *errbuf,
                              size_t errlen)
{
    static const char *const kinds[] = {"checkpoint", "savepoint", "final"};
    struct rn_buf b = RN_BUF_INIT;
    rn_buf_printf(&b, "{\"format\":1,\"id\":%llu,\"kind\":\"%s\",\"job\":", (unsigned long long)r->id,
                  kinds[r->kind]);
    rn_json_str(&b, job->name, strlen(job->name));
    rn_buf_printf(&b, ",\"time_ms\":%lld,\"max_parallelism\":%u,\"parallelism\":%u,\"tasks\":[",
                  (long long)r->trigger_ms, job->max_parallelism, job->parallelism);
    int first = 1;
    for (int g = 0; g < job->n_groups; g++) {
        const struct rn_group *gr = &job->groups[g];
        for (uint32_t s = 0; s < gr->parallelism; s++) {
            const struct rn_task *t = gr->tasks[s];
            rn_buf_printf(&b, "%s{\"head\":", first ? "" : ",");
            const char *head = job->nodes[gr->nodes[0]].id;
            rn_json_str(&b, head, strlen(head));
            rn_buf_printf(&b, ",\"subtask\":%u,\"parallelism\":%u,\"kg_start\":%u,\"kg_end\":%u,"
                              "\"state\":%s}",
                          s, gr->parallelism, t->kg_start, t->kg_end,
                          atomic_load_explicit(&t->statedb_pub, memory_order_acquire) ? "true"
                                                                                      : "false");
            first = 0;
        }
    }
    rn_buf_puts(&b, "]}\n");
    char path[700];
    snprintf(path, sizeof path, "%s/_manifest.json", r->path);
    int rc = rn_fs_write_atomic(path, b.data, b.len, errbuf, errlen);
    rn_buf_free(&b);
    return rc;
}

static const char *rn__yget_str(yajl_val v, const char *k)
{
    const char *path[] = {k, NULL};
    yajl_val x = yajl_tree_get(v, path, yajl_t_string);
    return x ? YAJL_GET_STRING(x) : NULL;
}

static int rn__yget_u64(yajl_val v, const char *k, uint64_t *out)
{
    const char *path[] = {k, NULL};
    yajl_val x = yajl_tree_get(v, path, yajl_t_number);
    if (!x || !YAJL_IS_INTEGER(x) || YAJL_GET_INTEGER(x) < 0) return -1;
    *out = (uint64_t)YAJL_GET_INTEGER(x);
    return 0;
}

static struct rn_restore *rn__read_manifest(const char *dir, char *errbuf, size_t errlen)
{
    char path[700];
    snprintf(path, sizeof path, "%s/_manifest.json", dir);
    char *text = rn_fs_read_all(path, NULL);
    if (!text) {
        rn_errf(errbuf, errlen, "'%s' is not a completed checkpoint (no _manifest.json)", dir);
        return NULL;
    }
    char err[256];
    yajl_val v = yajl_tree_parse(text, err, sizeof err);
    free(text);
    struct rn_restore *r = NULL;
    uint64_t id, maxp;
    const char *tp[] = {"tasks", NULL};
    yajl_val tasks = v ? yajl_tree_get(v, tp, yajl_t_array) : NULL;
    if (!v || rn__yget_u64(v, "id", &id) || rn__yget_u64(v, "max_parallelism", &maxp) || !tasks) {
        rn_errf(errbuf, errlen, "%s: unreadable manifest%s%s", path, v ? "" : ": ", v ? "" : err);
        goto out;
    }
    r = rn_xcalloc(1, sizeof *r);
    r->dir = rn_xstrdup(dir);
    r->id = id;
    r->max_parallelism = (uint32_t)maxp;
    r->n_tasks = YAJL_GET_ARRAY(tasks)->len;
    r->tasks = rn_xcalloc(r->n_tasks ? r->n_tasks : 1, sizeof *r->tasks);
    for (size_t i = 0; i < r->n_tasks; i++) {
        yajl_val t = YAJL_GET_ARRAY(tasks)->values[i];
        const char *head = rn__yget_str(t, "head");
        uint64_t sub, ks, ke;
        const char *sp[] = {"state", NULL};
        yajl_val st = yajl_tree_get(t, sp, yajl_t_any);
        if (!head || rn__yget_u64(t, "subtask", &sub) || rn__yget_u64(t, "kg_start", &ks) ||
            rn__yget_u64(t, "kg_end", &ke)) {
            rn_errf(errbuf, errlen, "%s: task %zu of the manifest is incomplete", path, i);
            rn__restore_free(r);
            r = NULL;
            goto out;
        }
        r->tasks[i].head = rn_xstrdup(head);
        r->tasks[i].subtask = (uint32_t)sub;
        r->tasks[i].kg_start = (uint32_t)ks;
        r->tasks[i].kg_end = (uint32_t)ke;
        r->tasks[i].has_state = st && YAJL_IS_TRUE(st);
    }
out:
    yajl_tree_free(v);
    return r;
}

void rn__restore_free(struct rn_restore *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_tasks; i++) free(r->tasks[i].head);
    free(r->tasks);
    free(r->dir);
    free(r);
}

int rn__restore_find(struct rn_job *job, struct rn_restore **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    const char *dir = job->from_checkpoint;
    struct rn__dirent *v = NULL;
    size_t n = 0;
    if (!dir) {
        if (job->fresh) return 0;
        v = rn__list(job, &n);
        for (size_t i = n; i-- > 0;) {
            if (v[i].kind == RN__K_CHECKPOINT && v[i].complete) {
                dir = v[i].path;
                break;
            }
        }
        if (!dir) {
            free(v);
            return 0;
        }
    }
    struct rn_restore *r = rn__read_manifest(dir, errbuf, errlen);
    free(v);
    if (!r) return RN_ECORRUPT;
    if (r->max_parallelism != job->max_parallelism) {
        rn_errf(errbuf, errlen,
                "checkpoint %s has max_parallelism %u but the job has %u: key groups cannot be "
                "redistributed across a different max_parallelism",
                r->dir, r->max_parallelism, job->max_parallelism);
        rn__restore_free(r);
        return RN_EINVAL;
    }
    *out = r;
    return 0;
}

/* ---- the coordinator ------------------------------------------------------------- */

static void rn__history_add(struct rn_ckpt_coord *c, const struct rn_ckpt_record *r)
{
    c->history[c->n_history % RN__HISTORY] = *r;
    c->n_history++;
}

/* Called with c->mu held. */
static void rn__record_fail(struct rn_job *job, struct rn_ckpt_record *r, const char *why)
{
    struct rn_ckpt_coord *c = job->coord;
    r->status = RN__S_FAILED;
    r->duration_ns = rn_now_ns() - r->start_ns;
    snprintf(r->error, sizeof r->error, "%s", why);
    rn_fs_rmtree(r->path, NULL, 0);
    rn__history_add(c, r);
    c->n_failed++;
    if (!job->quiet)
        fprintf(stderr, "runnel: checkpoint %llu failed: %s\n", (unsigned long long)r->id, why);
}

/* Called with c->mu held. */
static void rn__fault(struct rn_ckpt_coord *c, uint64_t id, int point)
{
    if (c->fault_id == id && c->fault_point == point) {
        fprintf(stderr, "runnel: RUNNEL_FAULT: killing the process in checkpoint %llu\n",
                (unsigned long long)id);
        kill(getpid(), SIGKILL);
    }
}

void rn__ckpt_fault_task(struct rn_job *job, uint64_t id)
{
    if (job->coord) rn__fault(job->coord, id, 1);
}

static void rn__record_complete(struct rn_job *job, struct rn_ckpt_record *r)
{
    struct rn_ckpt_coord *c = job->coord;
    char err[512] = "";
    rn__fault(c, r->id, 2);
    if (rn__write_manifest(job, r, err, sizeof err) != 0) {
        rn__record_fail(job, r, err);
        return;
    }
    r->status = RN__S_COMPLETED;
    r->duration_ns = rn_now_ns() - r->start_ns;
    r->bytes = rn_fs_du(r->path);
    rn__history_add(c, r);
    c->n_completed++;
    atomic_store(&job->completed_id, r->id);
    if (r->kind != RN__K_SAVEPOINT) rn__retain(job);
    /* Tasks run their sinks' commit on their own threads: wake them. */
    for (int g = 0; g < job->n_groups; g++)
        for (uint32_t s = 0; s < job->groups[g].parallelism; s++) {
            rn__signal_notify(&job->groups[g].tasks[s]->sig);
        }
}

static void rn__begin(struct rn_job *job, struct rn_ckpt_record *r, uint64_t id, int kind)
{
    memset(r, 0, sizeof *r);
    r->id = id;
    r->kind = kind;
    r->status = RN__S_RUNNING;
    r->trigger_ms = rn_wall_ms();
    r->start_ns = rn_now_ns();
    r->expected = job->coord->n_tasks;
    rn__ckpt_path(job, id, kind, r->path, sizeof r->path);
    rn_fs_mkdirs(r->path, NULL, 0);
}

/* Called with c->mu held. */
static void rn__trigger(struct rn_job *job, int kind)
{
    struct rn_ckpt_coord *c = job->coord;
    rn__begin(job, &c->run, c->next_id++, kind);
    c->has_run = 1;
    for (int g = 0; g < job->n_groups; g++) {
        struct rn_group *gr = &job->groups[g];
        if (job->nodes[gr->nodes[0]].kind != RN_KIND_SOURCE) continue;
        for (uint32_t s = 0; s < gr->parallelism; s++) {
            struct rn_task *t = gr->tasks[s];
            atomic_store(&t->trigger, c->run.id);
            rn__signal_notify(&t->sig);
        }
    }
}

static void *rn__coord_main(void *arg)
{
    struct rn_job *job = arg;
    struct rn_ckpt_coord *c = job->coord;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        int64_t now = rn_now_ns();
        int64_t wake = now + 1000000000LL;
        if (c->has_run) {
            int64_t deadline = c->run.start_ns + job->ckpt_timeout_ms * 1000000;
            if (now >= deadline) {
                rn__record_fail(job, &c->run, "timed out");
                c->has_run = 0;
                continue;
            }
            wake = RN_MIN(wake, deadline);
        } else if (!atomic_load(&job->final_id) && !atomic_load(&job->stopping)) {
            if (c->request) {
                rn__trigger(job, c->request == 2 ? RN__K_SAVEPOINT : RN__K_CHECKPOINT);
                c->request = 0;
                continue;
            }
            if (job->ckpt_interval_ms > 0) {
                if (now >= c->due_ns) {
                    c->due_ns = now + job->ckpt_interval_ms * 1000000;
                    rn__trigger(job, RN__K_CHECKPOINT);
                    continue;
                }
                wake = RN_MIN(wake, c->due_ns);
            }
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t dt = wake - now;
        if (dt < 1000000) dt = 1000000;
        ts.tv_sec += dt / 1000000000;
        ts.tv_nsec += dt % 1000000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int rn__ckpt_start(struct rn_job *job, char *errbuf, size_t errlen)
{
    struct rn_ckpt_coord *c = rn_xcalloc(1, sizeof *c);
    job->coord = c;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &a);
    pthread_condattr_destroy(&a);
    for (int g = 0; g < job->n_groups; g++) c->n_tasks += (int)job->groups[g].parallelism;
    const char *fault = getenv("RUNNEL_FAULT");
    if (fault && strncmp(fault, "checkpoint:", 11) == 0) {
        char *end;
        c->fault_id = strtoull(fault + 11, &end, 10);
        if (*end == ':') c->fault_point = strcmp(end + 1, "task") == 0 ? 1 : 2;
    }
    if (rn_fs_mkdirs(job->ckpt_dir, errbuf, errlen)) return RN_EIO;
    /* Ids only grow; unfinished directories from a crash are removed. */
    size_t n;
    struct rn__dirent *v = rn__list(job, &n);
    uint64_t max = job->restore ? job->restore->id : 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].id > max) max = v[i].id;
        if (!v[i].complete && (!job->restore || strcmp(v[i].path, job->restore->dir) != 0))
            rn_fs_rmtree(v[i].path, NULL, 0);
    }
    free(v);
    c->next_id = max + 1;
    c->due_ns = rn_now_ns() + job->ckpt_interval_ms * 1000000;
    if (job->restore) atomic_store(&job->completed_id, job->restore->id);
    if (pthread_create(&c->thread, NULL, rn__coord_main, job) != 0) {
        rn_errf(errbuf, errlen, "cannot start the checkpoint coordinator");
        return RN_EIO;
    }
    c->started = 1;
    return 0;
}

void rn__ckpt_stop(struct rn_job *job)
{
    struct rn_ckpt_coord *c = job->coord;
    if (!c || c->stop) return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->started) pthread_join(c->thread, NULL);
    pthread_mutex_lock(&c->mu);
    if (c->has_run) rn__record_fail(job, &c->run, "the job ended first");
    if (c->has_final && c->final.status == RN__S_RUNNING)
        rn__record_fail(job, &c->final, "the job failed before it completed");
    c->has_run = c->has_final = 0;
    c->started = 0;
    pthread_mutex_unlock(&c->mu);
}

void rn__ckpt_free(struct rn_job *job)
{
    struct rn_ckpt_coord *c = job->coord;
    if (!c) return;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
    job->coord = NULL;
}

int64_t rn__ckpt_request(struct rn_job *job, int savepoint)
{
    struct rn_ckpt_coord *c = job->coord;
    if (!c) return RN_EINVAL;
    pthread_mutex_lock(&c->mu);
    int64_t id = (int64_t)c->next_id;
    if (atomic_load(&job->final_id) || atomic_load(&job->stopping)) id = RN_ESTOP;
    else {
        /* The next id: the coordinator starts it once none is in flight. */
        c->request = savepoint ? 2 : 1;
        pthread_cond_signal(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return id;
}

uint64_t rn__ckpt_final_id(struct rn_job *job)
{
    struct rn_ckpt_coord *c = job->coord;
    pthread_mutex_lock(&c->mu);
    uint64_t id = atomic_load(&job->final_id);
    if (!id) {
        rn__begin(job, &c->final, c->next_id++, RN__K_FINAL);
        c->has_final = 1;
        id = c->final.id;
        atomic_store(&job->final_id, id);
    }
    pthread_mutex_unlock(&c->mu);
    return id;
}

void rn__ckpt_ack(struct rn_job *job, uint64_t id, const struct rn_ckpt_stats *st, int ok)
{
    struct rn_ckpt_coord *c = job->coord;
    pthread_mutex_lock(&c->mu);
    struct rn_ckpt_record *r = NULL;
    if (c->has_run && c->run.id == id) r = &c->run;
    if (c->has_final && c->final.id == id && c->final.status == RN__S_RUNNING) r = &c->final;
    if (r) {
        r->acks++;
        if (st) {
            r->max_sync_ns = RN_MAX(r->max_sync_ns, st->sync_ns);
            r->max_align_ns = RN_MAX(r->max_align_ns, st->align_ns);
        }
        if (!ok) {
            rn__record_fail(job, r, "a task could not write its snapshot");
            if (r == &c->run) c->has_run = 0;
        } else if (r->acks == r->expected) {
            rn__record_complete(job, r);
            if (r == &c->run) {
                c->has_run = 0;
            } else if (c->has_run && c->run.id < r->id) {
                /* Some task ended before it saw that barrier: it cannot complete. */
                rn__record_fail(job, &c->run, "superseded by the final checkpoint");
                c->has_run = 0;
            }
        }
    }
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* ---- figures ---------------------------------------------------------------------- */

static const char *rn__kind_name(int k)
{
    return k == RN__K_SAVEPOINT ? "savepoint" : k == RN__K_FINAL ? "final" : "checkpoint";
}

static const char *rn__status_name(int s)
{
    return s == RN__S_COMPLETED ? "completed" : s == RN__S_FAILED ? "failed" : "in_progress";
}

static void rn__record_json(struct rn_buf *b, const struct rn_ckpt_record *r)
{
    rn_buf_printf(b,
                  "{\"id\":%llu,\"kind\":\"%s\",\"status\":\"%s\",\"trigger_time_ms\":%lld,"
                  "\"duration_ms\":%.3f,\"max_sync_ms\":%.3f,\"max_alignment_ms\":%.3f,"
                  "\"size_bytes\":%llu,\"acks\":%d,\"tasks\":%d,\"path\":",
                  (unsigned long long)r->id, rn__kind_name(r->kind), rn__status_name(r->status),
                  (long long)r->trigger_ms,
                  (double)(r->status == RN__S_RUNNING ? rn_now_ns() - r->start_ns : r->duration_ns) /
                      1e6,
                  (double)r->max_sync_ns / 1e6, (double)r->max_align_ns / 1e6,
                  (unsigned long long)r->bytes, r->acks, r->expected);
    rn_json_str(b, r->path, strlen(r->path));
    rn_buf_puts(b, ",\"error\":");
    rn_json_str(b, r->error, strlen(r->error));
    rn_buf_putc(b, '}');
}

void rn__ckpt_render_json(struct rn_job *job, struct rn_buf *b)
{
    struct rn_ckpt_coord *c = job->coord;
    if (!c) {
        rn_buf_printf(b, "{\"enabled\":%s}", job->ckpt_enabled ? "true" : "false");
        return;
    }
    pthread_mutex_lock(&c->mu);
    rn_buf_printf(b, "{\"enabled\":true,\"interval_ms\":%lld,\"completed\":%llu,\"failed\":%llu,"
                     "\"restored_from\":",
                  (long long)job->ckpt_interval_ms, (unsigned long long)c->n_completed,
                  (unsigned long long)c->n_failed);
    if (job->restore) rn_json_str(b, job->restore->dir, strlen(job->restore->dir));
    else rn_buf_puts(b, "null");
    rn_buf_puts(b, ",\"in_progress\":[");
    int first = 1;
    if (c->has_run) {
        rn__record_json(b, &c->run);
        first = 0;
    }
    if (c->has_final && c->final.status == RN__S_RUNNING) {
        if (!first) rn_buf_putc(b, ',');
        rn__record_json(b, &c->final);
    }
    rn_buf_puts(b, "],\"history\":[");
    int n = RN_MIN(c->n_history, RN__HISTORY);
    for (int i = 0; i < n; i++) {
        if (i) rn_buf_putc(b, ',');
        rn__record_json(b, &c->history[(c->n_history - 1 - i) % RN__HISTORY]);
    }
    rn_buf_puts(b, "]}");
    pthread_mutex_unlock(&c->mu);
}

void rn__ckpt_render_prometheus(struct rn_job *job, struct rn_buf *b)
{
    struct rn_ckpt_coord *c = job->coord;
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    rn_buf_puts(b, "# HELP runnel_checkpoints_total Checkpoints by outcome.\n"
                   "# TYPE runnel_checkpoints_total counter\n");
    rn_buf_printf(b, "runnel_checkpoints_total{job=\"%s\",status=\"completed\"} %llu\n", job->name,
                  (unsigned long long)c->n_completed);
    rn_buf_printf(b, "runnel_checkpoints_total{job=\"%s\",status=\"failed\"} %llu\n", job->name,
                  (unsigned long long)c->n_failed);
    if (c->n_history) {
        const struct rn_ckpt_record *r = &c->history[(c->n_history - 1) % RN__HISTORY];
        rn_buf_puts(b, "# HELP runnel_checkpoint_last_duration_seconds Trigger to manifest, last "
                       "checkpoint.\n# TYPE runnel_checkpoint_last_duration_seconds gauge\n");
        rn_buf_printf(b, "runnel_checkpoint_last_duration_seconds{job=\"%s\"} %.6f\n", job->name,
                      (double)r->duration_ns / 1e9);
        rn_buf_puts(b, "# HELP runnel_checkpoint_last_sync_seconds Longest pipeline stall of a "
                       "task in the last checkpoint.\n"
                       "# TYPE runnel_checkpoint_last_sync_seconds gauge\n");
        rn_buf_printf(b, "runnel_checkpoint_last_sync_seconds{job=\"%s\"} %.6f\n", job->name,
                      (double)r->max_sync_ns / 1e9);
        rn_buf_puts(b, "# HELP runnel_checkpoint_last_size_bytes Size of the last checkpoint.\n"
                       "# TYPE runnel_checkpoint_last_size_bytes gauge\n");
        rn_buf_printf(b, "runnel_checkpoint_last_size_bytes{job=\"%s\"} %llu\n", job->name,
                      (unsigned long long)r->bytes);
    }
    pthread_mutex_unlock(&c->mu);
}

void rn__ckpt_render_html(struct rn_job *job, struct rn_buf *b)
{
    struct rn_ckpt_coord *c = job->coord;
    rn_buf_puts(b, "<h2>Checkpoints</h2>");
    if (!c) {
        rn_buf_puts(b, "<p>Off (no <code>checkpoint:</code> in the job).</p>");
        return;
    }
    pthread_mutex_lock(&c->mu);
    rn_buf_printf(b, "<p>every %lld ms &middot; completed %llu &middot; failed %llu</p>",
                  (long long)job->ckpt_interval_ms, (unsigned long long)c->n_completed,
                  (unsigned long long)c->n_failed);
    rn_buf_puts(b, "<table><tr><th>id</th><th class=l>kind</th><th class=l>status</th>"
                   "<th>duration ms</th><th>stall ms</th><th>alignment ms</th><th>size</th>"
                   "<th class=l>error</th></tr>");
    int n = RN_MIN(c->n_history, 10);
    for (int i = -1; i < n; i++) {
        const struct rn_ckpt_record *r;
        if (i < 0) {
            if (!c->has_run) continue;
            r = &c->run;
        } else {
            r = &c->history[(c->n_history - 1 - i) % RN__HISTORY];
        }
        rn_buf_printf(b, "<tr><td>%llu</td><td class=l>%s</td><td class=l>%s</td><td>%.1f</td>"
                         "<td>%.1f</td><td>%.1f</td><td>%.1f MB</td><td class=l>%s</td></tr>",
                      (unsigned long long)r->id, rn__kind_name(r->kind),
                      rn__status_name(r->status), (double)r->duration_ns / 1e6,
                      (double)r->max_sync_ns / 1e6, (double)r->max_align_ns / 1e6,
                      (double)r->bytes / 1e6, r->error);
    }
    rn_buf_puts(b, "</table>");
    pthread_mutex_unlock(&c->mu);
}
