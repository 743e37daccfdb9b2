/*
 * sink_partitioned.c — the `partitioned_file` sink: JSON lines into one
 * directory per hour (or day) of event time, for offline training data:
 *
 *   <dir>/2023-11-14/22/part-<subtask>-<n>.jsonl
 *
 * With checkpoints it is exactly-once the way Flink's FileSink is: records of
 * a bucket go to a hidden in-progress part; at checkpoint N every open part
 * is fsync'ed and renamed ".part-<subtask>-<N>.pending"; when N completes the
 * pending parts up to N are renamed to their final names (atomic, and
 * idempotent: a restore finishes the renames of completed checkpoints and
 * deletes parts of checkpoints that never completed). Without checkpoints a
 * bucket's records go straight to "part-<subtask>-0.jsonl" (appended).
 *
 * The bucket of a record is its event time (record.ts, UTC); records without
 * one go to "unknown/".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rn_checkpoint.h"
#include "rn_fs.h"
#include "rn_operator.h"

/* Each open part's output is written when this much is buffered. */
#define RN__PS_BUFFER ((size_t)1 << 20)
/* The buffers of all open parts together: past this, the least recently
 * written parts' buffers are written out and freed until they hold no more
 * than RN__PS_BUFFER. Event time moves through the buckets one after another,
 * so without it each bucket left behind kept up to RN__PS_BUFFER until the
 * next checkpoint closed it (tens of MiB at max_open 64). */
#define RN__PS_HELD (2 * RN__PS_BUFFER)

struct rn_ps_cfg {
    const char *dir;
    int granularity; /* 0 hour, 1 day */
    int64_t max_open;
};

static const char *const rn_ps_grans[] = {"hour", "day", NULL};

static const struct rn_config_key rn_ps_keys[] = {
    {"dir", RN_CT_STRING, NULL, NULL, offsetof(struct rn_ps_cfg, dir),
     "Directory of the buckets (created).", NULL, RN_CK_REQUIRED, 0, 0},
    {"partition", RN_CT_ENUM, "hour", NULL, offsetof(struct rn_ps_cfg, granularity),
     "Bucket by hour (<dir>/YYYY-MM-DD/HH/) or by day (<dir>/YYYY-MM-DD/) of event time, UTC.",
     rn_ps_grans, 0, 0, 0},
    {"max_open", RN_CT_INT, "64", "files", offsetof(struct rn_ps_cfg, max_open),
     "Buckets open at once; the least recently written is closed first (its part stays "
     "in progress until the next checkpoint).",
     NULL, 0, 1, 4096},
    RN_CONFIG_END,
};

struct rn_ps_bucket {
    char *path; /* bucket directory */
    int fd;
    int64_t bytes;
    uint64_t used; /* recency */
    uint64_t seq;  /* the part's number */
    struct rn_buf buf;
};

struct rn_ps {
    struct rn_ps_bucket *b;
    size_t n;
    uint64_t tick;
    char **pending; /* pending part paths, in checkpoint order */
    uint64_t *pending_id;
    size_t n_pending;
    int two_phase;
    int restored;
    uint64_t restored_id;
    uint32_t subtask;
    uint64_t seq; /* parts closed before a checkpoint */
    size_t room;  /* the most room a record has needed (rn_buf_note_room) */
    size_t held;  /* the open parts' buffers' capacity, in all */
};

static struct rn_ps *rn__ps_local(struct rn_op *op)
{
    struct rn_ps *p = rn_op_local(op);
    if (!p) {
        p = rn_xcalloc(1, sizeof *p);
        rn_op_set_local(op, p);
    }
    return p;
}

static void rn__bucket_name(const struct rn_ps_cfg *c, int64_t ts, char *out, size_t n)
{
    if (ts == RN_TS_MIN || ts == RN_TS_MAX) {
        snprintf(out, n, "%s/unknown", c->dir);
        return;
    }
    time_t secs = (time_t)(ts / 1000 - (ts % 1000 < 0));
    struct tm tm;
    gmtime_r(&secs, &tm);
    if (c->granularity == 0)
        snprintf(out, n, "%s/%04d-%02d-%02d/%02d", c->dir, tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour);
    else
        snprintf(out, n, "%s/%04d-%02d-%02d", c->dir, tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday);
}

static int rn__ps_write(struct rn_op *op, struct rn_ps_bucket *b)
{
    size_t done = 0;
    while (done < b->buf.len) {
        ssize_t n = write(b->fd, b->buf.data + done, b->buf.len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rn_op_errorf(op, "write into '%s' failed: %s", b->path, strerror(errno));
            return RN_EIO;
        }
        done += (size_t)n;
    }
    b->bytes += (int64_t)b->buf.len;
    rn_buf_reset(&b->buf);
    return 0;
}

static void rn__ps_part(const struct rn_ps *p, const struct rn_ps_bucket *b, const char *kind,
                        uint64_t id, char *out, size_t n)
{
    if (!strcmp(kind, "inprogress"))
        snprintf(out, n, "%s/.part-%u-%llu.inprogress", b->path, p->subtask,
                 (unsigned long long)b->seq);
    else if (!strcmp(kind, "pending"))
        snprintf(out, n, "%s/.part-%u-%llu-%llu.pending", b->path, p->subtask,
                 (unsigned long long)id, (unsigned long long)b->seq);
    else
        snprintf(out, n, "%s/part-%u-0.jsonl", b->path, p->subtask);
}

/* Closes a bucket's part; with checkpoints it becomes pending for `id`. */
static int rn__ps_close_bucket(struct rn_op *op, struct rn_ps *p, size_t i, uint64_t id)
{
    struct rn_ps_bucket *b = &p->b[i];
    int rc = rn__ps_write(op, b);
    if (rc == 0 && p->two_phase && fsync(b->fd) != 0) {
        rn_op_errorf(op, "fsync in '%s' failed: %s", b->path, strerror(errno));
        rc = RN_EIO;
    }
    close(b->fd);
    if (rc == 0 && p->two_phase && b->bytes > 0) {
        char from[4096], to[4096];
        rn__ps_part(p, b, "inprogress", 0, from, sizeof from);
        rn__ps_part(p, b, "pending", id, to, sizeof to);
        if (rename(from, to) != 0) {
            rn_op_errorf(op, "cannot rename '%s': %s", from, strerror(errno));
            rc = RN_EIO;
        } else {
            p->pending = rn_xrealloc(p->pending, (p->n_pending + 1) * sizeof *p->pending);
            p->pending_id = rn_xrealloc(p->pending_id, (p->n_pending + 1) * sizeof *p->pending_id);
            p->pending[p->n_pending] = rn_xstrdup(to);
            p->pending_id[p->n_pending++] = id;
        }
    } else if (p->two_phase) {
        char from[4096];
        rn__ps_part(p, b, "inprogress", 0, from, sizeof from);
        unlink(from);
    }
    p->held -= b->buf.cap;
    rn_buf_free(&b->buf);
    free(b->path);
    p->b[i] = p->b[--p->n];
    return rc;
}

static struct rn_ps_bucket *rn__ps_bucket(struct rn_op *op, struct rn_ps *p, const char *path)
{
    const struct rn_ps_cfg *c = rn_op_ctx(op);
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->b[i].path, path) == 0) {
            p->b[i].used = ++p->tick;
            return &p->b[i];
        }
    if ((int64_t)p->n >= c->max_open) {
        size_t lru = 0;
        for (size_t i = 1; i < p->n; i++)
            if (p->b[i].used < p->b[lru].used) lru = i;
        /* Closed before its checkpoint: it is pending for the next one. */
        if (rn__ps_close_bucket(op, p, lru, UINT64_MAX)) return NULL;
    }
    char err[512];
    if (rn_fs_mkdirs(path, err, sizeof err)) {
        rn_op_errorf(op, "%s", err);
        return NULL;
    }
    p->b = rn_xrealloc(p->b, (p->n + 1) * sizeof *p->b);
    struct rn_ps_bucket *b = &p->b[p->n];
    memset(b, 0, sizeof *b);
    b->path = rn_xstrdup(path);
    b->used = ++p->tick;
    char part[4096];
    b->seq = ++p->seq;
    rn__ps_part(p, b, p->two_phase ? "inprogress" : "final", 0, part, sizeof part);
    b->fd = open(part, O_WRONLY | O_CREAT | O_CLOEXEC | (p->two_phase ? O_TRUNC : O_APPEND), 0644);
    if (b->fd < 0) {
        rn_op_errorf(op, "cannot open '%s': %s", part, strerror(errno));
        free(b->path);
        return NULL;
    }
    p->n++;
    return b;
}

/* Final name of a pending part: "part-<subtask>-<id>-<seq>.jsonl". */
static void rn__ps_final_of(const char *pending, char *out, size_t n)
{
    const char *slash = strrchr(pending, '/');
    size_t dl = (size_t)(slash - pending);
    const char *name = slash + 2; /* past "/." */
    size_t nl = strlen(name) - strlen(".pending");
    snprintf(out, n, "%.*s/%.*s.jsonl", (int)dl, pending, (int)nl, name);
}

/* Restore: finish renames of parts of completed checkpoints (<= r), delete
 * the rest of this subtask's hidden parts. Walks <dir> two levels down. */
static void rn__ps_recover_dir(struct rn_ps *p, const char *dir, uint64_t r, int depth)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char prefix[64];
    snprintf(prefix, sizeof prefix, ".part-%u-", p->subtask);
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < 3) rn__ps_recover_dir(p, path, r, depth + 1);
            continue;
        }
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        size_t nl = strlen(e->d_name);
        if (nl > 8 && !strcmp(e->d_name + nl - 8, ".pending")) {
            unsigned long long id = strtoull(e->d_name + strlen(prefix), NULL, 10);
            if (p->restored && id <= r) {
                char fin[4096];
                rn__ps_final_of(path, fin, sizeof fin);
                if (rename(path, fin) != 0) unlink(path);
                continue;
            }
        }
        unlink(path);
    }
    closedir(d);
}

static int rn_ps_open(struct rn_op *op)
{
    const struct rn_ps_cfg *c = rn_op_ctx(op);
    struct rn_ps *p = rn__ps_local(op);
    p->two_phase = rn_op_checkpointing(op);
    p->subtask = rn_op_subtask(op);
    char err[512];
    if (rn_fs_mkdirs(c->dir, err, sizeof err)) {
        rn_op_errorf(op, "%s", err);
        return RN_EIO;
    }
    if (p->two_phase) rn__ps_recover_dir(p, c->dir, p->restored_id, 0);
    return 0;
}

/* Writes out and frees the buffers of the least recently written parts other
 * than `keep` until the open parts' buffers hold RN__PS_BUFFER or less. */
static int rn__ps_release(struct rn_op *op, struct rn_ps *p, const struct rn_ps_bucket *keep)
{
    while (p->held > RN__PS_BUFFER) {
        struct rn_ps_bucket *lru = NULL;
        for (size_t i = 0; i < p->n; i++)
            if (&p->b[i] != keep && p->b[i].buf.cap && (!lru || p->b[i].used < lru->used))
                lru = &p->b[i];
        if (!lru) return 0;
        if (rn__ps_write(op, lru)) return RN_EIO;
        p->held -= lru->buf.cap;
        rn_buf_free(&lru->buf);
    }
    return 0;
}

static int rn_ps_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    const struct rn_ps_cfg *c = rn_op_ctx(op);
    struct rn_ps *p = rn_op_local(op);
    const struct rn_types *ts = rn_op_types(op);
    char path[4096];
    for (uint32_t i = 0; i < in->n; i++) {
        const struct rn_record *r = &in->recs[i];
        rn__bucket_name(c, r->ts, path, sizeof path);
        struct rn_ps_bucket *b = rn__ps_bucket(op, p, path);
        if (!b) return RN_EIO;
        if (rn_buf_full_for(&b->buf, RN__PS_BUFFER, p->room) && rn__ps_write(op, b)) return RN_EIO;
        size_t start = b->buf.len, cap = b->buf.cap;
        rn_types_write_json(ts, r, &b->buf);
        rn_buf_putc(&b->buf, '\n');
        rn_buf_note_room(&b->buf, start, &p->room);
        if (b->buf.len >= RN__PS_BUFFER && rn__ps_write(op, b)) return RN_EIO;
        if (b->buf.cap != cap) {
            p->held += b->buf.cap - cap;
            if (p->held > RN__PS_HELD && rn__ps_release(op, p, b)) return RN_EIO;
        }
    }
    (void)out;
    return 0;
}

static int rn_ps_snapshot(struct rn_op *op, uint64_t id, struct rn_snapshot_writer *w)
{
    struct rn_ps *p = rn_op_local(op);
    (void)w;
    if (!p->two_phase) {
        for (size_t i = 0; i < p->n; i++)
            if (rn__ps_write(op, &p->b[i])) return RN_EIO;
        return 0;
    }
    /* Parts closed early (max_open) belong to this checkpoint too. */
    for (size_t k = 0; k < p->n_pending; k++)
        if (p->pending_id[k] == UINT64_MAX) {
            char *old = p->pending[k];
            char fixed[4096];
            const char *dash = strstr(strrchr(old, '/'), "-18446744073709551615-");
            snprintf(fixed, sizeof fixed, "%.*s-%llu-%s", (int)(dash - old), old,
                     (unsigned long long)id, dash + 22);
            if (rename(old, fixed) == 0) {
                free(old);
                p->pending[k] = rn_xstrdup(fixed);
            }
            p->pending_id[k] = id;
        }
    while (p->n)
        if (rn__ps_close_bucket(op, p, p->n - 1, id)) return RN_EIO;
    return 0;
}

static int rn_ps_restore(struct rn_op *op, struct rn_snapshot_reader *r)
{
    struct rn_ps *p = rn__ps_local(op);
    p->restored = 1;
    p->restored_id = rn_snapshot_id(r);
    return 0;
}

static int rn_ps_notify(struct rn_op *op, uint64_t id)
{
    struct rn_ps *p = rn_op_local(op);
    size_t keep = 0;
    for (size_t k = 0; k < p->n_pending; k++) {
        if (p->pending_id[k] <= id) {
            char fin[4096];
            rn__ps_final_of(p->pending[k], fin, sizeof fin);
            if (rename(p->pending[k], fin) != 0) {
                rn_op_errorf(op, "cannot commit '%s': %s", p->pending[k], strerror(errno));
                return RN_EIO;
            }
            free(p->pending[k]);
        } else {
            p->pending[keep] = p->pending[k];
            p->pending_id[keep++] = p->pending_id[k];
        }
    }
    p->n_pending = keep;
    return 0;
}

static int rn_ps_finish(struct rn_op *op, struct rn_emitter *out)
{
    struct rn_ps *p = rn_op_local(op);
    (void)out;
    for (size_t i = 0; i < p->n; i++)
        if (rn__ps_write(op, &p->b[i])) return RN_EIO;
    return 0;
}

static void rn_ps_close(struct rn_op *op)
{
    struct rn_ps *p = rn_op_local(op);
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        close(p->b[i].fd);
        rn_buf_free(&p->b[i].buf);
        free(p->b[i].path);
    }
    for (size_t k = 0; k < p->n_pending; k++) free(p->pending[k]);
    free(p->pending);
    free(p->pending_id);
    free(p->b);
    free(p);
    rn_op_set_local(op, NULL);
}

const struct rn_op_type rn_sink_partitioned_file = {
    RN_OP_TYPE_HEAD,
    .name = "partitioned_file",
    .description = "Writes JSON lines into one directory per hour (or day) of event time, as "
                   "part files; with checkpoints, exactly-once (parts appear when their "
                   "checkpoint completes).",
    .kind = RN_KIND_SINK,
    .config = rn_ps_keys,
    .ctx_size = sizeof(struct rn_ps_cfg),
    .in_type = "*",
    .open = rn_ps_open,
    .process = rn_ps_process,
    .finish = rn_ps_finish,
    .close = rn_ps_close,
    .snapshot = rn_ps_snapshot,
    .restore = rn_ps_restore,
    .notify_checkpoint_complete = rn_ps_notify,
};
