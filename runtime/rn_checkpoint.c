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
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yajl/yajl_tree.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "rn_fs_int.h"
#include "rn_exec_int.h"

/* Snapshot files: RNSNAP02 (magic, length, xxHash, format version, payload);
 * RNSNAP01 files, written before format versions, read as version 1. */
#define RN__SNAP_MAGIC "RNSNAP02"
#define RN__SNAP_MAGIC_V1 "RNSNAP01"
#define RN__HISTORY 32
#define RN__DEAD 16              /* failed checkpoints waiting for late acks */
#define RN__STOP_GRACE_MS 3000LL /* a stop waits this long for the final checkpoint */

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
    int handed;  /* task directories handed out: acks owed */
    int writing; /* the coordinator is writing its manifest (lock released) */
    char path[512];
    char error[400];
};

/* A failed checkpoint whose directory waits until no task writes into it. */
struct rn__dead {
    uint64_t id;
    int owed; /* acks still to come */
    char path[512];
};

/* A file's hash, remembered by inode (hard-linked SST files recur). */
struct rn__hcache {
    dev_t dev;
    ino_t ino;
    uint64_t size;
    int64_t mtime_ns;
    uint64_t hash;
    uint64_t used; /* hcache_gen of the last manifest that listed it */
};

struct rn_ckpt_coord {
    /* Fault injection for crash tests: RUNNEL_FAULT=checkpoint:<id>:<point>
     * kills the process with SIGKILL at <point> of checkpoint <id> (or
     * "final"):
     * "task" (a task has written part of its snapshot) or "manifest" (every
     * task has acked, the manifest is not yet written); "stall" makes the
     * task's snapshot hang instead, like a disk that stopped answering. */
    uint64_t fault_id;
    int fault_final; /* <id> is "final": the end-of-job checkpoint, whatever its id */
    int fault_point; /* 1 task, 2 manifest, 3 stall (a task's snapshot never returns) */
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
    int streak;            /* checkpoints failed in a row (savepoints do not count) */
    char first_error[400]; /* why the first of them failed */
    struct rn__dead dead[RN__DEAD];
    int n_dead;
    struct rn__hcache *hcache; /* coordinator thread only */
    size_t n_hcache, cap_hcache;
    uint64_t hcache_gen;
    int request; /* 0 none, 1 checkpoint, 2 savepoint */
    int64_t due_ns;
    int n_tasks;
};

/* ---- snapshot files ----------------------------------------------------------- */

/* The file is built in place: buf begins with the header's 32 bytes (filled
 * in by save), so the payload is never copied again before it is written. */
#define RN__SNAP_HEADER 32

struct rn_snapshot_writer {
    struct rn_buf buf; /* header, then the payload */
    uint32_t version;
};

struct rn_snapshot_reader {
    char *data;
    size_t len, pos;
    uint64_t id;
    uint32_t version; /* the format version of the payload, from the header */
    char **strs; /* strings handed out, owned until destroy */
    size_t n_strs;
};

struct rn_snapshot_writer *rn__snapshot_writer_create(void)
{
    struct rn_snapshot_writer *w = rn_xcalloc(1, sizeof *w);
    static const char zero[RN__SNAP_HEADER];
    w->version = 1;
    rn_buf_append(&w->buf, zero, sizeof zero);
    return w;
}

void rn__snapshot_writer_set_version(struct rn_snapshot_writer *w, uint32_t version)
{
    w->version = version ? version : 1;
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
    /* magic, length and xxHash of what follows them, then the format version
     * (4 bytes and 4 reserved zeros) and the payload */
    char *h = w->buf.data;
    uint32_t ver[2] = {w->version, 0};
    uint64_t len = w->buf.len - 24, sum;
    assert(w->buf.len >= RN__SNAP_HEADER && sizeof ver == RN__SNAP_HEADER - 24);
    memcpy(h, RN__SNAP_MAGIC, 8);
    memcpy(h + 8, &len, 8);
    memcpy(h + 24, ver, sizeof ver);
    sum = rn_hash64(h + 24, len);
    memcpy(h + 16, &sum, 8);
    return rn_fs_write_atomic(path, h, w->buf.len, errbuf, errlen);
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
    int v1 = len >= 8 && memcmp(data, RN__SNAP_MAGIC_V1, 8) == 0;
    if (len < 24 || (!v1 && memcmp(data, RN__SNAP_MAGIC, 8) != 0)) goto corrupt;
    memcpy(&plen, data + 8, 8);
    memcpy(&sum, data + 16, 8);
    if (plen != len - 24 || rn_hash64(data + 24, plen) != sum) goto corrupt;
    uint32_t ver[2] = {1, 0};
    if (!v1) {
        if (plen < sizeof ver) goto corrupt;
        memcpy(ver, data + 24, sizeof ver);
        if (ver[0] == 0) goto corrupt;
    }
    struct rn_snapshot_reader *r = rn_xcalloc(1, sizeof *r);
    r->data = data;
    r->len = len;
    r->pos = v1 ? 24 : 24 + sizeof ver;
    r->id = id;
    r->version = ver[0];
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

uint32_t rn_snapshot_version(const struct rn_snapshot_reader *r)
{
    return r->version;
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

char *rn__ckpt_task_dir(struct rn_job *job, uint64_t id, struct rn_task *t, char *errbuf,
                        size_t errlen)
{
    struct rn_ckpt_coord *c = job->coord;
    struct rn_ckpt_record *r = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->has_run && c->run.id == id && !c->run.writing) r = &c->run;
    if (c->has_final && c->final.id == id && c->final.status == RN__S_RUNNING) r = &c->final;
    char *dir = NULL;
    if (r) {
        size_t n = strlen(r->path) + 256;
        dir = rn_xmalloc(n);
        snprintf(dir, n, "%s/tasks/%s-%u", r->path, job->nodes[job->groups[t->group].nodes[0]].id,
                 t->subtask);
        /* The task now owes an ack: until it comes, a failed checkpoint's
         * directory stays (deleting it under a task that is writing there is
         * what made RocksDB miss files it was linking). */
        r->handed++;
    }
    pthread_mutex_unlock(&c->mu);
    if (dir && rn_fs_mkdirs(dir, errbuf, errlen) != 0) {
        free(dir);
        return NULL;
    }
    if (!dir) errbuf[0] = 0;
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

/* Coordinator thread, no lock held: deletes completed checkpoints beyond
 * `retain` (never the one this run restored from while it may still be
 * read, never savepoints). */
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
        char err[512];
        if (rn_fs_rmtree(v[i].path, err, sizeof err) && !job->quiet)
            fprintf(stderr, "runnel: retention: %s\n", err);
    }
    free(v);
}

/* ---- file checksums --------------------------------------------------------------- */

/* XXH3 of a whole file, read in chunks. 0 or RN_EIO (errbuf says why). */
static int rn__hash_file(const char *path, uint64_t *hash, uint64_t *size, char *errbuf,
                         size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rn_errf(errbuf, errlen, "cannot read '%s': %s", path, strerror(errno));
        return RN_EIO;
    }
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    char buf[1 << 16];
    ssize_t n;
    uint64_t total = 0;
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        XXH3_64bits_update(st, buf, (size_t)n);
        total += (uint64_t)n;
    }
    int rc = 0;
    if (n < 0) {
        rn_errf(errbuf, errlen, "cannot read '%s': %s", path, strerror(errno));
        rc = RN_EIO;
    }
    *hash = XXH3_64bits_digest(st);
    *size = total;
    XXH3_freeState(st);
    close(fd);
    return rc;
}

/* Hard-linked SST files are the same inode from one checkpoint to the next:
 * their hash is remembered instead of read again. Coordinator thread only. */
static int rn__hash_cached(struct rn_ckpt_coord *c, const char *path, const struct stat *st,
                           uint64_t *hash, char *errbuf, size_t errlen)
{
    for (size_t i = 0; i < c->n_hcache; i++) {
        struct rn__hcache *h = &c->hcache[i];
        if (h->dev == st->st_dev && h->ino == st->st_ino && h->size == (uint64_t)st->st_size &&
            h->mtime_ns == (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec) {
            h->used = c->hcache_gen;
            *hash = h->hash;
            return 0;
        }
    }
    uint64_t size;
    if (rn__hash_file(path, hash, &size, errbuf, errlen)) return RN_EIO;
    if (size != (uint64_t)st->st_size) {
        rn_errf(errbuf, errlen, "'%s' changed while it was read", path);
        return RN_EIO;
    }
    if (c->n_hcache == c->cap_hcache) {
        c->cap_hcache = c->cap_hcache ? c->cap_hcache * 2 : 64;
        c->hcache = rn_xrealloc(c->hcache, c->cap_hcache * sizeof *c->hcache);
    }
    c->hcache[c->n_hcache++] = (struct rn__hcache){
        st->st_dev, st->st_ino,
        size,       (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
        *hash,      c->hcache_gen};
    return 0;
}

/* Appends {"path":..,"size":..,"xxh3":".."} for every file under dir/rel,
 * sorted by name. */
static int rn__list_files(struct rn_ckpt_coord *c, const char *root, const char *rel,
                          struct rn_buf *b, int *first, uint64_t *bytes, char *errbuf,
                          size_t errlen)
{
    char dir[1400];
    snprintf(dir, sizeof dir, "%s%s%s", root, rel[0] ? "/" : "", rel);
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        rn_errf(errbuf, errlen, "cannot read directory '%s': %s", dir, strerror(errno));
        return RN_EIO;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        if (rc || strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0 ||
            (!rel[0] && strncmp(nm, "_manifest.json", 14) == 0))
            continue;
        char sub[1400], path[2900];
        snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", nm);
        snprintf(path, sizeof path, "%s/%s", root, sub);
        struct stat st;
        if (lstat(path, &st) != 0) {
            rn_errf(errbuf, errlen, "cannot stat '%s': %s", path, strerror(errno));
            rc = RN_EIO;
        } else if (S_ISDIR(st.st_mode)) {
            rc = rn__list_files(c, root, sub, b, first, bytes, errbuf, errlen);
        } else {
            uint64_t h;
            rc = rn__hash_cached(c, path, &st, &h, errbuf, errlen);
            if (!rc) {
                rn_buf_puts(b, *first ? "\n  {\"path\":" : ",\n  {\"path\":");
                rn_json_str(b, sub, strlen(sub));
                rn_buf_printf(b, ",\"size\":%llu,\"xxh3\":\"%016llx\"}",
                              (unsigned long long)st.st_size, (unsigned long long)h);
                *first = 0;
                *bytes += (uint64_t)st.st_size;
            }
        }
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* ---- manifests ------------------------------------------------------------------ */

/* The manifest ends with ,"checksum":"<xxh3 of every byte before it>"}: a
 * truncated or altered manifest is refused, and so is a checkpoint one of
 * whose files (listed with size and xxh3) differs. */
#define RN__SUM_KEY ",\"checksum\":\""

/* Coordinator thread, no lock held: `r` is a copy taken under the lock.
 * Lists and hashes the checkpoint's files, writes the manifest atomically. */
static int rn__write_manifest(struct rn_job *job, const struct rn_ckpt_record *r, uint64_t *bytes,
                              char *errbuf, size_t errlen)
{
    static const char *const kinds[] = {"checkpoint", "savepoint", "final"};
    struct rn_ckpt_coord *c = job->coord;
    struct rn_buf b = RN_BUF_INIT;
    rn_buf_printf(&b,
                  "{\"format\":2,\"id\":%llu,\"kind\":\"%s\",\"job\":", (unsigned long long)r->id,
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
    rn_buf_puts(&b, "],\"files\":[");
    first = 1;
    *bytes = 0;
    c->hcache_gen++;
    int rc = rn__list_files(c, r->path, "", &b, &first, bytes, errbuf, errlen);
    /* Forget files that no checkpoint lists any more. */
    size_t k = 0;
    for (size_t i = 0; i < c->n_hcache; i++)
        if (c->hcache_gen - c->hcache[i].used <= (uint64_t)job->ckpt_retain + 1)
            c->hcache[k++] = c->hcache[i];
    c->n_hcache = k;
    if (rc) {
        rn_buf_free(&b);
        return rc;
    }
    rn_buf_puts(&b, "]");
    uint64_t sum = rn_hash64(b.data, b.len);
    rn_buf_printf(&b, RN__SUM_KEY "%016llx\"}\n", (unsigned long long)sum);
    char path[700];
    snprintf(path, sizeof path, "%s/_manifest.json", r->path);
    rc = rn_fs_write_atomic(path, b.data, b.len, errbuf, errlen);
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

/* Every file the manifest lists is there with its size and hash. */
static int rn__verify_files(const char *dir, yajl_val files, char *errbuf, size_t errlen)
{
    for (size_t i = 0; i < YAJL_GET_ARRAY(files)->len; i++) {
        yajl_val f = YAJL_GET_ARRAY(files)->values[i];
        const char *rel = rn__yget_str(f, "path"), *want = rn__yget_str(f, "xxh3");
        uint64_t size, h, got_size;
        if (!rel || !want || rn__yget_u64(f, "size", &size) || strstr(rel, "..")) {
            rn_errf(errbuf, errlen, "%s/_manifest.json: file %zu of the manifest is incomplete",
                    dir, i);
            return RN_ECORRUPT;
        }
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        if (rn__hash_file(path, &h, &got_size, errbuf, errlen)) return RN_ECORRUPT;
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
        if (got_size != size || strcmp(hex, want) != 0) {
            rn_errf(errbuf, errlen, "'%s' is corrupt: %s (the manifest has %llu bytes, xxh3 %s)",
                    path, got_size != size ? "its size differs" : "its checksum differs",
                    (unsigned long long)size, want);
            return RN_ECORRUPT;
        }
    }
    return 0;
}

static struct rn_restore *rn__read_manifest(const char *dir, char *errbuf, size_t errlen)
{
    char path[700];
    snprintf(path, sizeof path, "%s/_manifest.json", dir);
    size_t len = 0;
    char *text = rn_fs_read_all(path, &len);
    if (!text) {
        rn_errf(errbuf, errlen, "'%s' is not a completed checkpoint (no _manifest.json)", dir);
        return NULL;
    }
    /* format 2 and later: the checksum over everything before it. */
    char *sum = NULL;
    for (char *p = strstr(text, RN__SUM_KEY); p; p = strstr(p + 1, RN__SUM_KEY))
        sum = p;
    if (sum || strncmp(text, "{\"format\":1,", 12) != 0) {
        char want[17];
        snprintf(want, sizeof want, "%016llx",
                 (unsigned long long)(sum ? rn_hash64(text, (size_t)(sum - text)) : 0));
        if (!sum || strncmp(sum + strlen(RN__SUM_KEY), want, 16) != 0) {
            rn_errf(errbuf, errlen, "%s: the manifest is %s", path,
                    sum ? "corrupt (its checksum differs)" : "truncated (no checksum)");
            free(text);
            return NULL;
        }
    }
    char err[256];
    yajl_val v = yajl_tree_parse(text, err, sizeof err);
    free(text);
    struct rn_restore *r = NULL;
    uint64_t id, maxp;
    const char *tp[] = {"tasks", NULL}, *fp[] = {"files", NULL};
    yajl_val tasks = v ? yajl_tree_get(v, tp, yajl_t_array) : NULL;
    yajl_val files = v ? yajl_tree_get(v, fp, yajl_t_array) : NULL;
    if (!v || rn__yget_u64(v, "id", &id) || rn__yget_u64(v, "max_parallelism", &maxp) || !tasks) {
        rn_errf(errbuf, errlen, "%s: unreadable manifest%s%s", path, v ? "" : ": ", v ? "" : err);
        goto out;
    }
    if (files && rn__verify_files(dir, files, errbuf, errlen)) goto out;
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

/* The checkpoint to restore: --from-checkpoint, or the completed checkpoint
 * with the highest id whose manifest and files check out. A damaged one is
 * reported and the one before it is used; when every completed checkpoint is
 * damaged the run fails rather than start empty. */
int rn__restore_find(struct rn_job *job, struct rn_restore **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    struct rn_restore *r = NULL;
    if (job->from_checkpoint) {
        r = rn__read_manifest(job->from_checkpoint, errbuf, errlen);
        if (!r) return RN_ECORRUPT;
    } else {
        if (job->fresh) return 0;
        size_t n = 0;
        struct rn__dirent *v = rn__list(job, &n);
        int damaged = 0;
        for (size_t i = n; i-- > 0 && !r;) {
            if (v[i].kind != RN__K_CHECKPOINT || !v[i].complete) continue;
            char err[1024];
            r = rn__read_manifest(v[i].path, err, sizeof err);
            if (!r) {
                fprintf(stderr, "runnel: checkpoint %llu cannot be restored: %s\n",
                        (unsigned long long)v[i].id, err);
                if (!damaged) rn_errf(errbuf, errlen, "%s", err);
                damaged++;
            }
        }
        free(v);
        if (!r && damaged) {
            size_t l = strlen(errbuf);
            rn_errf(errbuf + l, errlen - l,
                    "; no completed checkpoint of job '%s' can be restored (run with --fresh to "
                    "start over, or --from-checkpoint DIR)",
                    job->name);
            return RN_ECORRUPT;
        }
        if (!r) return 0;
        if (damaged)
            fprintf(stderr, "runnel: using checkpoint %llu, the latest intact one\n",
                    (unsigned long long)r->id);
    }
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

/* ---- the coordinator -------------------------------------------------------------
 *
 * Workers and the status page only ever hold c->mu for bookkeeping: an ack
 * counts itself and wakes the coordinator thread, which does every piece of
 * file work (manifest, sizing, retention, deleting failed checkpoints) with
 * the lock released. A failed checkpoint counts towards
 * checkpoint.tolerable_failures; one failure more than that fails the job. A
 * failed final checkpoint is taken again under a new id (every task has
 * finished, so each snapshots the same state once more) until it completes
 * or the failures run out. */

static void rn__history_add(struct rn_ckpt_coord *c, const struct rn_ckpt_record *r)
{
    c->history[c->n_history % RN__HISTORY] = *r;
    c->n_history++;
}

static void rn__notify_tasks(struct rn_job *job)
{
    for (int g = 0; g < job->n_groups; g++)
        for (uint32_t s = 0; s < job->groups[g].parallelism; s++)
            rn__signal_notify(&job->groups[g].tasks[s]->sig);
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
}

/* Called with c->mu held. Marks r failed; its directory is deleted by the
 * coordinator thread once every task that was given it has acked. `counts`:
 * the failure counts towards checkpoint.tolerable_failures. */
static void rn__record_fail(struct rn_job *job, struct rn_ckpt_record *r, const char *why,
                            int counts)
{
    struct rn_ckpt_coord *c = job->coord;
    r->status = RN__S_FAILED;
    r->duration_ns = rn_now_ns() - r->start_ns;
    snprintf(r->error, sizeof r->error, "%s", why);
    rn__history_add(c, r);
    c->n_failed++;
    if (c->n_dead == RN__DEAD) {
        /* Too many at once: the oldest is left for the next start to delete. */
        memmove(&c->dead[0], &c->dead[1], (RN__DEAD - 1) * sizeof c->dead[0]);
        c->n_dead--;
    }
    struct rn__dead *d = &c->dead[c->n_dead++];
    d->id = r->id;
    d->owed = r->handed - r->acks;
    snprintf(d->path, sizeof d->path, "%s", r->path);
    if (!job->quiet || counts)
        fprintf(stderr, "runnel: checkpoint %llu failed: %s\n", (unsigned long long)r->id, why);
    if (!counts) return;
    if (c->streak++ == 0) snprintf(c->first_error, sizeof c->first_error, "%s", why);
    if (c->streak > job->ckpt_tolerable) {
        int same = strcmp(c->first_error, why) == 0 || c->streak == 1;
        rn__job_set_error(job,
                          "checkpoint %llu failed: %s (%d checkpoints in a row failed; "
                          "checkpoint.tolerable_failures is %lld)%s%s",
                          (unsigned long long)r->id, why, c->streak, (long long)job->ckpt_tolerable,
                          same ? "" : "; the first failed: ", same ? "" : c->first_error);
        rn__notify_tasks(job);
    }
}

/* Called with c->mu held: the final checkpoint failed. Takes it again while
 * failures are tolerated and the job is not stopping. */
static void rn__final_fail(struct rn_job *job, const char *why, int stopping)
{
    struct rn_ckpt_coord *c = job->coord;
    rn__record_fail(job, &c->final, why, 1);
    if (atomic_load(&job->aborting)) return;
    if (stopping) {
        rn__job_set_error(job,
                          "the job was stopped before its final checkpoint %llu completed "
                          "(%s); a restart resumes from checkpoint %llu",
                          (unsigned long long)c->final.id, why,
                          (unsigned long long)atomic_load(&job->completed_id));
        rn__notify_tasks(job);
        return;
    }
    rn__begin(job, &c->final, c->next_id++, RN__K_FINAL);
    atomic_store(&job->final_id, c->final.id);
    fprintf(stderr, "runnel: taking the final checkpoint again as %llu\n",
            (unsigned long long)c->final.id);
    rn__notify_tasks(job);
}

/* Called with c->mu held. */
static void rn__fault(struct rn_ckpt_coord *c, uint64_t id, int point)
{
    if ((c->fault_id == id || (c->fault_final && c->has_final && c->final.id == id)) &&
        c->fault_point == point) {
        fprintf(stderr, "runnel: RUNNEL_FAULT: killing the process in checkpoint %llu\n",
                (unsigned long long)id);
        kill(getpid(), SIGKILL);
    }
}

void rn__ckpt_fault_task(struct rn_job *job, uint64_t id)
{
    struct rn_ckpt_coord *c = job->coord;
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    int stall = (c->fault_id == id || (c->fault_final && c->has_final && c->final.id == id)) &&
                c->fault_point == 3;
    rn__fault(c, id, 1);
    pthread_mutex_unlock(&c->mu);
    if (stall) {
        /* A disk that stopped answering: this thread never comes back. */
        fprintf(stderr, "runnel: RUNNEL_FAULT: checkpoint %llu stalls\n", (unsigned long long)id);
        for (;;)
            pause();
    }
}

/* Called with c->mu held, on the coordinator thread: writes the manifest of
 * a checkpoint every task acked, with the lock released meanwhile. */
static void rn__complete(struct rn_job *job, struct rn_ckpt_record *r)
{
    struct rn_ckpt_coord *c = job->coord;
    r->writing = 1;
    struct rn_ckpt_record copy = *r;
    rn__fault(c, copy.id, 2);
    pthread_mutex_unlock(&c->mu);
    char err[512] = "";
    uint64_t bytes = 0;
    int rc = rn__write_manifest(job, &copy, &bytes, err, sizeof err);
    if (rc == 0 && copy.kind != RN__K_SAVEPOINT) rn__retain(job);
    pthread_mutex_lock(&c->mu);
    r->writing = 0;
    if (r->status != RN__S_RUNNING || r->id != copy.id) return; /* given up meanwhile */
    if (rc) {
        if (r == &c->final)
            rn__final_fail(job, err, atomic_load(&job->stopping));
        else {
            rn__record_fail(job, r, err, r->kind != RN__K_SAVEPOINT);
            c->has_run = 0;
        }
        return;
    }
    r->status = RN__S_COMPLETED;
    r->duration_ns = rn_now_ns() - r->start_ns;
    r->bytes = bytes;
    rn__history_add(c, r);
    c->n_completed++;
    c->streak = 0;
    atomic_store(&job->completed_id, r->id);
    if (r == &c->run) {
        c->has_run = 0;
    } else if (c->has_run && c->run.id < r->id) {
        /* Some task ended before it saw that barrier: it cannot complete. */
        rn__record_fail(job, &c->run, "superseded by the final checkpoint", 0);
        c->has_run = 0;
    }
    /* Tasks run their sinks' commit on their own threads: wake them. */
    rn__notify_tasks(job);
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

/* Called with c->mu held: deletes (lock released) the directories of failed
 * checkpoints that no task is writing into any more. `all`: every one (the
 * tasks have stopped). */
static void rn__reap(struct rn_job *job, int all)
{
    struct rn_ckpt_coord *c = job->coord;
    for (int i = 0; i < c->n_dead;) {
        if (c->dead[i].owed > 0 && !all) {
            i++;
            continue;
        }
        char path[512];
        snprintf(path, sizeof path, "%s", c->dead[i].path);
        memmove(&c->dead[i], &c->dead[i + 1], (size_t)(c->n_dead - i - 1) * sizeof c->dead[0]);
        c->n_dead--;
        pthread_mutex_unlock(&c->mu);
        rn_fs_rmtree(path, NULL, 0);
        pthread_mutex_lock(&c->mu);
    }
}

static void *rn__coord_main(void *arg)
{
    struct rn_job *job = arg;
    struct rn_ckpt_coord *c = job->coord;
    int64_t stop_ns = 0;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        int64_t now = rn_now_ns();
        int64_t wake = now + 1000000000LL;
        int stopping = atomic_load(&job->stopping);
        if (stopping && !stop_ns) stop_ns = now;
        rn__reap(job, 0);
        if (c->has_run && !c->run.writing && c->run.acks == c->run.expected) {
            rn__complete(job, &c->run);
            continue;
        }
        if (c->has_final && c->final.status == RN__S_RUNNING && !c->final.writing &&
            c->final.acks == c->final.expected) {
            rn__complete(job, &c->final);
            continue;
        }
        if (c->has_run && !c->run.writing) {
            int64_t deadline = c->run.start_ns + job->ckpt_timeout_ms * 1000000;
            if (now >= deadline) {
                char why[128];
                snprintf(why, sizeof why, "timed out after %lld ms (checkpoint.timeout)",
                         (long long)job->ckpt_timeout_ms);
                rn__record_fail(job, &c->run, why, c->run.kind != RN__K_SAVEPOINT);
                c->has_run = 0;
                continue;
            }
            wake = RN_MIN(wake, deadline);
        }
        if (c->has_final && c->final.status == RN__S_RUNNING && !c->final.writing) {
            /* A stop gives the final checkpoint RN__STOP_GRACE_MS to finish. */
            int64_t deadline = c->final.start_ns + job->ckpt_timeout_ms * 1000000;
            int64_t stop_deadline = stop_ns ? stop_ns + RN__STOP_GRACE_MS * 1000000 : INT64_MAX;
            if (now >= deadline || now >= stop_deadline) {
                char why[128];
                if (now >= deadline)
                    snprintf(why, sizeof why, "timed out after %lld ms (checkpoint.timeout)",
                             (long long)job->ckpt_timeout_ms);
                else
                    snprintf(why, sizeof why, "not complete %lld ms after the stop",
                             RN__STOP_GRACE_MS);
                rn__final_fail(job, why, now >= stop_deadline);
                continue;
            }
            wake = RN_MIN(wake, RN_MIN(deadline, stop_deadline));
        }
        if (!c->has_run && !atomic_load(&job->final_id) && !stopping &&
            !atomic_load(&job->aborting)) {
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
        if (strncmp(fault + 11, "final", 5) == 0) {
            c->fault_final = 1;
            end = (char *)fault + 16;
        }
        if (*end == ':')
            c->fault_point = strcmp(end + 1, "task") == 0    ? 1
                             : strcmp(end + 1, "stall") == 0 ? 3
                                                             : 2;
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
    if (c->has_run) rn__record_fail(job, &c->run, "the job ended first", 0);
    if (c->has_final && c->final.status == RN__S_RUNNING)
        rn__record_fail(job, &c->final, "the job failed before it completed", 0);
    c->has_run = c->has_final = 0;
    c->started = 0;
    /* The task threads have ended: nobody writes into a checkpoint any more. */
    rn__reap(job, 1);
    pthread_mutex_unlock(&c->mu);
}

void rn__ckpt_free(struct rn_job *job)
{
    struct rn_ckpt_coord *c = job->coord;
    if (!c) return;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->hcache);
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
        /* The next id: the coordinator starts it once none is in flight. A
         * savepoint also answers a checkpoint request, never the reverse. */
        if (savepoint || !c->request) c->request = savepoint ? 2 : 1;
        pthread_cond_signal(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return id;
}

int rn__ckpt_outcome(struct rn_job *job, int64_t id, int savepoint, char *path, size_t pathlen,
                     char *why, size_t whylen)
{
    if (id <= 0) {
        snprintf(why, whylen, "no checkpoint was requested");
        return -1;
    }
    struct rn_ckpt_coord *c = job->coord;
    if (!c) {
        snprintf(why, whylen, "the job takes no checkpoints");
        return -1;
    }
    pthread_mutex_lock(&c->mu);
    const struct rn_ckpt_record *r = NULL;
    if (c->has_run && c->run.id == (uint64_t)id) r = &c->run;
    if (c->has_final && c->final.id == (uint64_t)id) r = &c->final;
    for (int i = 0; !r && i < RN__HISTORY && i < c->n_history; i++) {
        const struct rn_ckpt_record *h = &c->history[(c->n_history - 1 - i) % RN__HISTORY];
        if (h->id == (uint64_t)id) r = h;
    }
    int rc = 0;
    if (!r) {
        /* Not begun: pending while the request waits its turn. */
        if ((uint64_t)id < c->next_id) {
            snprintf(why, whylen, "checkpoint %lld is no longer known", (long long)id);
            rc = -1;
        } else if (!c->request) {
            snprintf(why, whylen, "the job is ending: checkpoint %lld will not be taken",
                     (long long)id);
            rc = -1;
        }
    } else if (savepoint && r->kind != RN__K_SAVEPOINT) {
        snprintf(why, whylen, "the job is ending: its final checkpoint %lld took the savepoint's "
                 "place", (long long)id);
        rc = -1;
    } else if (r->status == RN__S_FAILED) {
        snprintf(why, whylen, "checkpoint %lld failed: %s", (long long)id, r->error);
        rc = -1;
    } else if (r->status == RN__S_COMPLETED) {
        snprintf(path, pathlen, "%s", r->path);
        rc = 1;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
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
        pthread_cond_signal(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return id;
}

void rn__ckpt_ack(struct rn_job *job, uint64_t id, const struct rn_ckpt_stats *st,
                  const char *error)
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
        if (error) {
            if (r == &c->final) {
                rn__final_fail(job, error, atomic_load(&job->stopping));
            } else {
                rn__record_fail(job, r, error, r->kind != RN__K_SAVEPOINT);
                c->has_run = 0;
            }
        }
    } else {
        /* A late ack of a checkpoint given up: its directory may go now. */
        for (int i = 0; i < c->n_dead; i++)
            if (c->dead[i].id == id) c->dead[i].owed--;
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
        rn_buf_puts(b, "# HELP runnel_checkpoint_last_alignment_seconds Longest barrier alignment "
                       "of a task in the last checkpoint.\n"
                       "# TYPE runnel_checkpoint_last_alignment_seconds gauge\n");
        rn_buf_printf(b, "runnel_checkpoint_last_alignment_seconds{job=\"%s\"} %.6f\n", job->name,
                      (double)r->max_align_ns / 1e9);
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
