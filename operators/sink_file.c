/*
 * sink_file.c — the `file` sink (JSON lines) and the `discard` sink.
 *
 * `file` formats each record with its type's direct JSON writer into a large
 * buffer and writes it with one write(2) per buffer; the path "-" means
 * standard output. Parent directories are created. A failed write (a full
 * disk, say) fails the job with the path and the reason: output is never
 * dropped silently.
 *
 * `discard` counts what it receives and discards it (benchmarks, dry runs).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_checkpoint.h"
#include "rn_fs.h"
#include "rn_operator.h"

struct rn_file_sink_cfg {
    const char *path;
    int mode;
    int64_t buffer;
    int fsync;
    int64_t flush_interval;
};

/* A committed checkpoint and the length of the output file after it. */
struct rn_commit {
    uint64_t id;
    int64_t length;
};

struct rn_file_sink {
    int fd;
    struct rn_buf buf;
    int two_phase;
    /* Two-phase only. */
    char *inprogress, *log;
    int64_t inprogress_bytes;
    uint64_t *pending; /* checkpoint ids with a pending part file, ascending */
    size_t n_pending;
    struct rn_commit *commits; /* the commit log */
    size_t n_commits;
    int restored;
    uint64_t restored_id;
    int64_t written_ns; /* last write */
    size_t room;        /* the most room a record has needed (rn_buf_note_room) */
};

static const char *const rn_file_sink_modes[] = {"truncate", "append", NULL};

static const struct rn_config_key rn_file_sink_keys[] = {
    {"path", RN_CT_STRING, NULL, NULL, offsetof(struct rn_file_sink_cfg, path),
     "Output file (JSON lines); \"-\" writes to standard output. Parent directories are "
     "created.",
     NULL, RN_CK_REQUIRED, 0, 0},
    {"mode", RN_CT_ENUM, "truncate", NULL, offsetof(struct rn_file_sink_cfg, mode),
     "What to do with an existing file when the job starts fresh (not restored).",
     rn_file_sink_modes, 0, 0, 0},
    {"buffer", RN_CT_SIZE, "1MiB", "bytes", offsetof(struct rn_file_sink_cfg, buffer),
     "Output is written when this much is buffered, and at the end.", NULL, 0, 4096,
     (int64_t)1 << 30},
    {"flush_interval", RN_CT_DURATION, "1s", "ms", offsetof(struct rn_file_sink_cfg, flush_interval),
     "Buffered output is also written when records arrive this long after the last write "
     "(without checkpoints: how stale the file may be). 0: only by size and at the end.",
     NULL, 0, 0, (int64_t)1 << 40},
    {"fsync", RN_CT_BOOL, "false", NULL, offsetof(struct rn_file_sink_cfg, fsync),
     "fsync(2) the file when the stream ends (with checkpoints, every commit is fsync'ed "
     "anyway).",
     NULL, 0, 0, 0},
    RN_CONFIG_END,
};

static struct rn_file_sink *rn__sink_local(struct rn_op *op)
{
    struct rn_file_sink *s = rn_op_local(op);
    if (!s) {
        s = rn_xcalloc(1, sizeof *s);
        s->fd = -1;
        rn_op_set_local(op, s);
    }
    return s;
}

static char *rn__pathf(const char *base, const char *suffix, uint64_t id)
{
    size_t n = strlen(base) + strlen(suffix) + 32;
    char *p = rn_xmalloc(n);
    if (id)
        snprintf(p, n, "%s%s%llu", base, suffix, (unsigned long long)id);
    else
        snprintf(p, n, "%s%s", base, suffix);
    return p;
}

static int rn__write_all(int fd, const char *p, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, p + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        done += (size_t)n;
    }
    return 0;
}

/* ---- two-phase commit (with checkpoints) -------------------------------------------
 *
 * Records go to "<path>.inprogress". At checkpoint N that file is fsync'ed and
 * renamed to "<path>.pending-N". When N completes, pending parts up to N are
 * appended to <path> in order, <path> is fsync'ed, and "<path>.commits" (the
 * log of checkpoint id and file length after it) is replaced atomically;
 * then the part is deleted. After a crash, open() truncates <path> to the
 * length logged for the restored checkpoint, finishes commits of parts that
 * belong to completed checkpoints up to it, and deletes the rest: output is
 * visible once, and only once its checkpoint completed. */

static int rn__log_save(struct rn_op *op, struct rn_file_sink *s)
{
    struct rn_buf b = RN_BUF_INIT;
    size_t from = s->n_commits > 1000 ? s->n_commits - 1000 : 0;
    for (size_t i = from; i < s->n_commits; i++)
        rn_buf_printf(&b, "%llu %lld\n", (unsigned long long)s->commits[i].id,
                      (long long)s->commits[i].length);
    char err[512];
    int rc = rn_fs_write_atomic(s->log, b.data ? b.data : "", b.len, err, sizeof err);
    rn_buf_free(&b);
    if (rc) rn_op_errorf(op, "%s", err);
    return rc;
}

static void rn__log_load(struct rn_file_sink *s)
{
    char *text = rn_fs_read_all(s->log, NULL);
    if (!text) return;
    for (char *p = text, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) break;
        unsigned long long id;
        long long len;
        if (sscanf(p, "%llu %lld", &id, &len) == 2) {
            s->commits = rn_xrealloc(s->commits, (s->n_commits + 1) * sizeof *s->commits);
            s->commits[s->n_commits++] = (struct rn_commit){id, len};
        }
    }
    free(text);
}

static int64_t rn__final_length(struct rn_op *op)
{
    const struct rn_file_sink_cfg *c = rn_op_ctx(op);
    struct stat st;
    return stat(c->path, &st) == 0 ? (int64_t)st.st_size : 0;
}

/* Appends part file `part` to the output and logs checkpoint id. */
static int rn__commit_part(struct rn_op *op, struct rn_file_sink *s, const char *part, uint64_t id)
{
    const struct rn_file_sink_cfg *c = rn_op_ctx(op);
    int in = open(part, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        rn_op_errorf(op, "cannot open '%s' to commit it: %s", part, strerror(errno));
        return RN_EIO;
    }
    int out = open(c->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0) {
        rn_op_errorf(op, "cannot open '%s': %s", c->path, strerror(errno));
        close(in);
        return RN_EIO;
    }
    char chunk[1 << 16];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, chunk, sizeof chunk)) > 0) {
        if (rn__write_all(out, chunk, (size_t)n)) {
            rc = -1;
            break;
        }
    }
    if (n < 0 || rc || fsync(out) != 0) {
        rn_op_errorf(op, "commit of '%s' into '%s' failed: %s", part, c->path, strerror(errno));
        close(in);
        close(out);
        return RN_EIO;
    }
    close(in);
    close(out);
    s->commits = rn_xrealloc(s->commits, (s->n_commits + 1) * sizeof *s->commits);
    s->commits[s->n_commits++] = (struct rn_commit){id, rn__final_length(op)};
    if (rn__log_save(op, s)) return RN_EIO;
    unlink(part);
    return 0;
}

static int rn__cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Brings the files back to the restored checkpoint (see above). */
static int rn__two_phase_recover(struct rn_op *op, struct rn_file_sink *s)
{
    const struct rn_file_sink_cfg *c = rn_op_ctx(op);
    char err[512];
    if (rn_fs_mkdirs_for(c->path, err, sizeof err)) {
        rn_op_errorf(op, "%s", err);
        return RN_EIO;
    }
    uint64_t r = s->restored ? s->restored_id : 0;
    rn__log_load(s);
    int64_t length = 0;
    uint64_t last = 0;
    if (!s->restored) {
        /* A fresh start: the output starts empty (or as it is, in append mode). */
        if (c->mode == 0 && truncate(c->path, 0) != 0 && errno != ENOENT) {
            rn_op_errorf(op, "cannot truncate '%s': %s", c->path, strerror(errno));
            return RN_EIO;
        }
        s->n_commits = 0;
        s->commits = rn_xrealloc(s->commits, sizeof *s->commits);
        s->commits[s->n_commits++] = (struct rn_commit){0, rn__final_length(op)};
    } else {
        size_t keep = 0;
        for (size_t i = 0; i < s->n_commits; i++) {
            if (s->commits[i].id > r) break;
            keep = i + 1;
            length = s->commits[i].length;
            last = s->commits[i].id;
        }
        s->n_commits = keep;
        if (truncate(c->path, length) != 0 && errno != ENOENT) {
            rn_op_errorf(op, "cannot truncate '%s' to %lld: %s", c->path, (long long)length,
                         strerror(errno));
            return RN_EIO;
        }
    }
    /* The output exists from the start, even if nothing is ever committed. */
    int fd = open(c->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        rn_op_errorf(op, "cannot create '%s': %s", c->path, strerror(errno));
        return RN_EIO;
    }
    close(fd);
    if (rn__log_save(op, s)) return RN_EIO;
    /* Pending parts: commit those of completed checkpoints up to r, drop the rest. */
    char *dir = rn_xstrdup(c->path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : c->path;
    if (slash) *slash = 0;
    DIR *d = opendir(slash ? dir : ".");
    size_t nb = strlen(base);
    uint64_t *ids = NULL;
    size_t n_ids = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, base, nb) != 0 || strncmp(e->d_name + nb, ".pending-", 9) != 0)
            continue;
        char *end;
        unsigned long long id = strtoull(e->d_name + nb + 9, &end, 10);
        if (*end || !id) continue;
        ids = rn_xrealloc(ids, (n_ids + 1) * sizeof *ids);
        ids[n_ids++] = id;
    }
    if (d) closedir(d);
    free(dir);
    if (n_ids) qsort(ids, n_ids, sizeof *ids, rn__cmp_u64);
    int rc = 0;
    for (size_t i = 0; i < n_ids && rc == 0; i++) {
        char *part = rn__pathf(c->path, ".pending-", ids[i]);
        if (s->restored && ids[i] <= r && ids[i] > last)
            rc = rn__commit_part(op, s, part, ids[i]);
        else
            unlink(part);
        free(part);
    }
    free(ids);
    unlink(s->inprogress);
    return rc;
}

static int rn__open_inprogress(struct rn_op *op, struct rn_file_sink *s)
{
    s->fd = open(s->inprogress, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        rn_op_errorf(op, "cannot open '%s': %s", s->inprogress, strerror(errno));
        return RN_EIO;
    }
    s->inprogress_bytes = 0;
    return 0;
}

static int rn_file_sink_open(struct rn_op *op)
{
    const struct rn_file_sink_cfg *c = rn_op_ctx(op);
    struct rn_file_sink *s = rn__sink_local(op);
    char err[512];
    if (strcmp(c->path, "-") == 0) {
        s->fd = STDOUT_FILENO;
        return 0;
    }
    if (rn_op_checkpointing(op)) {
        s->two_phase = 1;
        s->inprogress = rn__pathf(c->path, ".inprogress", 0);
        s->log = rn__pathf(c->path, ".commits", 0);
        int rc = rn__two_phase_recover(op, s);
        return rc ? rc : rn__open_inprogress(op, s);
    }
    if (rn_fs_mkdirs_for(c->path, err, sizeof err) != 0) {
        rn_op_errorf(op, "%s", err);
        return RN_EIO;
    }
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (c->mode == 1 ? O_APPEND : O_TRUNC);
    s->fd = open(c->path, flags, 0644);
    if (s->fd < 0) {
        rn_op_errorf(op, "cannot open '%s' for writing: %s", c->path, strerror(errno));
        return RN_EIO;
    }
    return 0;
}

static int rn__file_sink_write(struct rn_op *op, struct rn_file_sink *s)
{
    const struct rn_file_sink_cfg *c = rn_op_ctx(op);
    if (s->buf.len && rn__write_all(s->fd, s->buf.data, s->buf.len)) {
        rn_op_errorf(op, "write to '%s' failed: %s", s->two_phase ? s->inprogress : c->path,
                     strerror(errno));
        return RN_EIO;
    }
    s->inprogress_bytes += (int64_t)s->buf.len;
    rn_buf_reset(&s->buf);
    s->written_ns = rn_now_ns();
    return 0;
}

static int rn_file_sink_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    const struct rn_file_sink_cfg *c = rn_op_ctx(op);
    struct rn_file_sink *s = rn_op_local(op);
    const struct rn_types *ts = rn_op_types(op);
    for (uint32_t i = 0; i < in->n; i++) {
        const struct rn_record *r = &in->recs[i];
        /* Written out before the record rather than after the batch, so that
         * the buffer stays within `buffer` instead of doubling past it. */
        if (rn_buf_full_for(&s->buf, (size_t)c->buffer, s->room)) {
            int rc = rn__file_sink_write(op, s);
            if (rc) return rc;
        }
        size_t start = s->buf.len;
        rn_types_write_json(ts, r, &s->buf);
        rn_buf_putc(&s->buf, '\n');
        rn_buf_note_room(&s->buf, start, &s->room);
    }
    if ((int64_t)s->buf.len >= c->buffer ||
        (c->flush_interval > 0 && rn_now_ns() - s->written_ns >= c->flush_interval * 1000000))
        return rn__file_sink_write(op, s);
    (void)out;
    return 0;
}

/* Checkpoint N: what was written since the last one becomes part N. */
static int rn_file_sink_snapshot(struct rn_op *op, uint64_t id, struct rn_snapshot_writer *w)
{
    struct rn_file_sink *s = rn_op_local(op);
    (void)w;
    if (!s->two_phase) return 0;
    int rc = rn__file_sink_write(op, s);
    if (rc) return rc;
    if (s->inprogress_bytes == 0) return 0;
    if (fsync(s->fd) != 0) {
        rn_op_errorf(op, "fsync '%s' failed: %s", s->inprogress, strerror(errno));
        return RN_EIO;
    }
    close(s->fd);
    s->fd = -1;
    char *part = rn__pathf(((const struct rn_file_sink_cfg *)rn_op_ctx(op))->path, ".pending-", id);
    if (rename(s->inprogress, part) != 0) {
        rn_op_errorf(op, "cannot rename '%s' to '%s': %s", s->inprogress, part, strerror(errno));
        free(part);
        return RN_EIO;
    }
    free(part);
    s->pending = rn_xrealloc(s->pending, (s->n_pending + 1) * sizeof *s->pending);
    s->pending[s->n_pending++] = id;
    return rn__open_inprogress(op, s);
}

static int rn_file_sink_restore(struct rn_op *op, struct rn_snapshot_reader *r)
{
    struct rn_file_sink *s = rn__sink_local(op);
    s->restored = 1;
    s->restored_id = rn_snapshot_id(r);
    return 0;
}

static int rn_file_sink_notify(struct rn_op *op, uint64_t id)
{
    struct rn_file_sink *s = rn_op_local(op);
    if (!s || !s->two_phase) return 0;
    const struct rn_file_sink_cfg *c = rn_op_ctx(op);
    size_t done = 0;
    int rc = 0;
    for (; done < s->n_pending && s->pending[done] <= id && rc == 0; done++) {
        char *part = rn__pathf(c->path, ".pending-", s->pending[done]);
        rc = rn__commit_part(op, s, part, s->pending[done]);
        free(part);
    }
    if (done) memmove(s->pending, s->pending + done, (s->n_pending - done) * sizeof *s->pending);
    s->n_pending -= done;
    return rc;
}

static int rn_file_sink_finish(struct rn_op *op, struct rn_emitter *out)
{
    const struct rn_file_sink_cfg *c = rn_op_ctx(op);
    struct rn_file_sink *s = rn_op_local(op);
    int rc = rn__file_sink_write(op, s);
    if (rc == 0 && c->fsync && !s->two_phase && s->fd != STDOUT_FILENO && fsync(s->fd) != 0) {
        rn_op_errorf(op, "fsync '%s' failed: %s", c->path, strerror(errno));
        rc = RN_EIO;
    }
    (void)out;
    return rc;
}

static void rn_file_sink_close(struct rn_op *op)
{
    struct rn_file_sink *s = rn_op_local(op);
    if (!s) return;
    if (s->fd >= 0 && s->fd != STDOUT_FILENO) close(s->fd);
    /* An empty in-progress part is removed; one with data (the job failed) is
     * discarded at the next start. */
    if (s->two_phase && s->inprogress_bytes == 0 && s->buf.len == 0) unlink(s->inprogress);
    rn_buf_free(&s->buf);
    free(s->inprogress);
    free(s->log);
    free(s->pending);
    free(s->commits);
    free(s);
    rn_op_set_local(op, NULL);
}

const struct rn_op_type rn_sink_file = {
    RN_OP_TYPE_HEAD,
    .name = "file",
    .description = "Writes records as JSON lines, one per line, in arrival order. With "
                   "checkpoints it is exactly-once: output becomes visible when the checkpoint "
                   "that covers it completes.",
    .kind = RN_KIND_SINK,
    .config = rn_file_sink_keys,
    .ctx_size = sizeof(struct rn_file_sink_cfg),
    .in_type = "*",
    .open = rn_file_sink_open,
    .process = rn_file_sink_process,
    .finish = rn_file_sink_finish,
    .close = rn_file_sink_close,
    .snapshot = rn_file_sink_snapshot,
    .restore = rn_file_sink_restore,
    .notify_checkpoint_complete = rn_file_sink_notify,
};

static int rn_null_sink_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    (void)op;
    (void)in;
    (void)out;
    return 0;
}

static const struct rn_config_key rn_null_sink_keys[] = {RN_CONFIG_END};

const struct rn_op_type rn_sink_null = {
    RN_OP_TYPE_HEAD,
    .name = "discard",
    .description = "Counts records and discards them.",
    .kind = RN_KIND_SINK,
    .config = rn_null_sink_keys,
    .ctx_size = 1,
    .in_type = "*",
    .process = rn_null_sink_process,
};
