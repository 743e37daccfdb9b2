/*
 * source_file.c — the `file` source: reads a file of lines (JSON lines) and
 * emits one `raw` record per line, with the line's byte offset as its
 * position.
 *
 * Bounded (follow: false): reads to the end and ends the stream; a last line
 * without a newline is still a line. Follow (follow: true): like `tail -F`,
 * waits at the end for more, and when the file is replaced (new inode) or
 * truncated it finishes the old file and starts the new one from offset 0.
 * A partial last line is held until its newline arrives.
 *
 * Lines longer than max_line are not split into garbage: the source keeps the
 * first bytes, skips to the newline, and emits one record flagged
 * with its full length in orig_len (> line.len), which log_collector dead-letters.
 */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_checkpoint.h"
#include "rn_operator.h"

#define RN_TRUNC_KEEP 4096 /* bytes of an overlong line kept for the dead letter */

struct rn_file_source_cfg {
    const char *path;
    int follow;
    int64_t max_line;
    int64_t read_buffer;
    int64_t poll_interval;
    int64_t start_offset;
    int64_t max_rate;
};

struct rn_file_source {
    int fd;
    ino_t ino;
    char *buf;
    size_t cap, start, end; /* unread bytes are buf[start, end) */
    int64_t buf_offset;     /* file offset of buf[0] */
    int eof;
    /* Skipping an overlong line. */
    int skipping;
    int64_t skip_offset;
    size_t skip_len;
    char *skip_keep;
    size_t skip_keep_len;
    size_t path_len;
    int64_t last_check_ns;
    int restored;           /* restore() ran: start at restored_offset */
    int64_t restored_offset;
    uint64_t restored_ino;
    struct rn_pacer pacer; /* max_rate */
};

static const struct rn_config_key rn_file_source_keys[] = {
    {"path", RN_CT_STRING, NULL, NULL, offsetof(struct rn_file_source_cfg, path),
     "File to read, one record per line.", NULL, RN_CK_REQUIRED, 0, 0},
    {"follow", RN_CT_BOOL, "false", NULL, offsetof(struct rn_file_source_cfg, follow),
     "Keep reading as the file grows, like `tail -F` (the job then runs until stopped).",
     NULL, 0, 0, 0},
    {"max_line", RN_CT_SIZE, "1MiB", "bytes", offsetof(struct rn_file_source_cfg, max_line),
     "Longest accepted line; longer lines are dead-lettered by log_collector.", NULL, 0, 16,
     (int64_t)1 << 30},
    {"read_buffer", RN_CT_SIZE, "1MiB", "bytes", offsetof(struct rn_file_source_cfg, read_buffer),
     "Bytes read per system call.", NULL, 0, 4096, (int64_t)1 << 30},
    {"poll_interval", RN_CT_DURATION, "100ms", "ms",
     offsetof(struct rn_file_source_cfg, poll_interval),
     "With follow: how often to look for new data and for a replaced file.", NULL, 0, 1,
     3600000},
    {"max_rate", RN_CT_INT, "0", "lines/s", offsetof(struct rn_file_source_cfg, max_rate),
     "Replay at most this many lines per second (0: as fast as possible).", NULL, 0, 0,
     (int64_t)1 << 40},
    {"start_offset", RN_CT_INT, "0", "bytes", offsetof(struct rn_file_source_cfg, start_offset),
     "Byte offset to start reading at (must be the start of a line).", NULL, 0, 0, INT64_MAX},
    RN_CONFIG_END,
};

static int rn_file_source_init(void *ctx, const struct rn_cfg_node *node, char *errbuf,
                               size_t errlen)
{
    struct rn_file_source_cfg *c = ctx;
    if (c->max_line >= c->read_buffer) c->read_buffer = c->max_line + 1;
    (void)node;
    (void)errbuf;
    (void)errlen;
    return 0;
}

static int rn__fs_open_file(struct rn_op *op, struct rn_file_source *s, int64_t offset)
{
    const struct rn_file_source_cfg *c = rn_op_ctx(op);
    s->fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0) {
        if (c->follow && errno == ENOENT) return 0; /* appears later */
        rn_op_errorf(op, "cannot open '%s': %s", c->path, strerror(errno));
        return RN_EIO;
    }
    struct stat st;
    if (fstat(s->fd, &st) == 0) s->ino = st.st_ino;
    if (offset > 0 && lseek(s->fd, offset, SEEK_SET) < 0) {
        rn_op_errorf(op, "cannot seek '%s' to %lld: %s", c->path, (long long)offset,
                     strerror(errno));
        return RN_EIO;
    }
    s->buf_offset = offset;
    s->start = s->end = 0;
    s->eof = 0;
    return 0;
}

static struct rn_file_source *rn__fs_local(struct rn_op *op)
{
    struct rn_file_source *s = rn_op_local(op);
    if (!s) {
        s = rn_xcalloc(1, sizeof *s);
        s->fd = -1;
        rn_op_set_local(op, s);
    }
    return s;
}

static int rn_file_source_open(struct rn_op *op)
{
    const struct rn_file_source_cfg *c = rn_op_ctx(op);
    struct rn_file_source *s = rn__fs_local(op);
    s->cap = (size_t)c->read_buffer;
    s->buf = rn_xmalloc(s->cap);
    s->skip_keep = rn_xmalloc(RN_TRUNC_KEEP);
    s->path_len = strlen(c->path);
    int64_t offset = c->start_offset;
    if (s->restored) {
        offset = s->restored_offset;
        struct stat st;
        if (stat(c->path, &st) == 0 && s->restored_ino && (uint64_t)st.st_ino != s->restored_ino) {
            /* The file was replaced since the checkpoint: start the new one. */
            fprintf(stderr, "runnel: source '%s': '%s' was replaced since the checkpoint; "
                            "reading the new file from its start\n", rn_op_id(op), c->path);
            offset = 0;
        } else if (stat(c->path, &st) == 0 && st.st_size < offset) {
            /* Truncated since the checkpoint: what is there now is new. */
            fprintf(stderr,
                    "runnel: source '%s': '%s' is shorter (%lld bytes) than the "
                    "checkpoint's position %lld: it was truncated; reading it from its "
                    "start\n",
                    rn_op_id(op), c->path, (long long)st.st_size, (long long)offset);
            offset = 0;
        }
    }
    return rn__fs_open_file(op, s, offset);
}

/* Position: the byte offset of the first line not yet emitted (the start of
 * an overlong line being skipped, so it is skipped again after a restore). */
static int rn_file_source_snapshot(struct rn_op *op, uint64_t id, struct rn_snapshot_writer *w)
{
    struct rn_file_source *s = rn_op_local(op);
    int64_t pos = s->skipping ? s->skip_offset : s->buf_offset + (int64_t)s->start;
    rn_snapshot_write_i64(w, pos);
    rn_snapshot_write_i64(w, (int64_t)s->ino);
    (void)id;
    return 0;
}

static int rn_file_source_restore(struct rn_op *op, struct rn_snapshot_reader *r)
{
    struct rn_file_source *s = rn__fs_local(op);
    int64_t pos, ino;
    if (rn_snapshot_read_i64(r, &pos) || rn_snapshot_read_i64(r, &ino) || pos < 0)
        return RN_ECORRUPT;
    s->restored = 1;
    s->restored_offset = pos;
    s->restored_ino = (uint64_t)ino;
    return 0;
}

/* Emits one line at file offset `off`. */
static void rn__fs_emit(struct rn_op *op, struct rn_emitter *out, const char *line, size_t len,
                        int64_t off, uint32_t orig_len, int truncated)
{
    const struct rn_file_source_cfg *c = rn_op_ctx(op);
    struct rn_file_source *s = rn_op_local(op);
    if (!truncated) {
        if (len && line[len - 1] == '\r') len--;
        orig_len = (uint32_t)len;
    }
    uint32_t total = (uint32_t)(sizeof(struct rn_raw) + len + s->path_len);
    struct rn_raw *r = rn_emit(out, 0, RN_TS_MIN, 0, total);
    r->offset = off;
    r->source = (uint32_t)rn_op_source_index(op);
    r->orig_len = orig_len;
    r->line = (struct rn_str){sizeof *r, (uint32_t)len};
    r->split = (struct rn_str){(uint32_t)(sizeof *r + len), (uint32_t)s->path_len};
    memcpy((char *)(r + 1), line, len);
    memcpy((char *)(r + 1) + len, c->path, s->path_len);
}

/* Emits the kept prefix of an overlong line; orig_len > line.len marks it. */
static void rn__fs_emit_truncated(struct rn_op *op, struct rn_emitter *out)
{
    struct rn_file_source *s = rn_op_local(op);
    rn__fs_emit(op, out, s->skip_keep, s->skip_keep_len, s->skip_offset,
                (uint32_t)RN_MIN(s->skip_len, UINT32_MAX), 1);
    s->skipping = 0;
}

/* Re-opens the path if the file was replaced or truncated (follow mode).
 * Returns 1 when it switched files. */
static int rn__fs_check_rotation(struct rn_op *op, struct rn_file_source *s)
{
    const struct rn_file_source_cfg *c = rn_op_ctx(op);
    struct stat st;
    if (stat(c->path, &st) != 0) return 0;
    int64_t pos = s->buf_offset + (int64_t)s->end;
    if (s->fd >= 0 && st.st_ino == s->ino && st.st_size >= pos) return 0;
    if (s->fd >= 0 && st.st_ino == s->ino && st.st_size < pos) {
        /* Truncated in place: start over. */
        fprintf(stderr,
                "runnel: source '%s': '%s' was truncated (%lld bytes, read up to %lld); "
                "reading it from its start\n",
                rn_op_id(op), c->path, (long long)st.st_size, (long long)pos);
        lseek(s->fd, 0, SEEK_SET);
        s->buf_offset = 0;
        s->start = s->end = 0;
        s->eof = 0;
        return 1;
    }
    if (s->fd >= 0) {
        fprintf(stderr,
                "runnel: source '%s': '%s' was replaced; the old file was read to its "
                "end, reading the new one from its start\n",
                rn_op_id(op), c->path);
        close(s->fd);
    }
    s->fd = -1;
    return rn__fs_open_file(op, s, 0) == 0 && s->fd >= 0;
}

/* Before leaving a file that was replaced: its last line, if it had no
 * newline, is still a line (as at the end of a bounded file). */
static int rn__fs_emit_tail(struct rn_op *op, struct rn_file_source *s, struct rn_emitter *out)
{
    size_t avail = s->end - s->start;
    if (s->skipping) {
        rn__fs_emit_truncated(op, out);
        s->start = s->end;
        return 1;
    }
    if (!avail) return 0;
    rn__fs_emit(op, out, s->buf + s->start, avail, s->buf_offset + (int64_t)s->start,
                (uint32_t)avail, 0);
    s->start = s->end;
    return 1;
}

static int rn_file_source_poll(struct rn_op *op, struct rn_emitter *out)
{
    const struct rn_file_source_cfg *c = rn_op_ctx(op);
    struct rn_file_source *s = rn_op_local(op);
    if (s->fd < 0) {
        /* follow: the file does not exist yet. */
        if (rn__fs_check_rotation(op, s)) return RN_POLL_MORE;
        usleep((useconds_t)RN_MIN(c->poll_interval, 50) * 1000);
        return RN_POLL_IDLE;
    }
    int emitted = 0;
    int limit = RN_BATCH_RECORDS;
    if (c->max_rate > 0) {
        limit = rn_pacer_allow(&s->pacer, c->max_rate, RN_BATCH_RECORDS);
        if (limit == 0) {
            usleep(1000);
            return RN_POLL_MORE;
        }
        s->pacer.emitted += limit; /* an upper bound; the rest is not reclaimed */
    }
    while (emitted < limit) {
        char *p = s->buf + s->start;
        size_t avail = s->end - s->start;
        char *nl = avail ? memchr(p, '\n', avail) : NULL;
        if (nl) {
            size_t len = (size_t)(nl - p);
            int64_t off = s->buf_offset + (int64_t)s->start;
            if (s->skipping) {
                s->skip_len += len;
                rn__fs_emit_truncated(op, out);
            } else if ((int64_t)len > c->max_line) {
                s->skip_offset = off;
                s->skip_keep_len = RN_MIN(RN_MIN(len, (size_t)RN_TRUNC_KEEP), (size_t)c->max_line);
                memcpy(s->skip_keep, p, s->skip_keep_len);
                s->skip_len = len;
                rn__fs_emit_truncated(op, out);
            } else {
                rn__fs_emit(op, out, p, len, off, (uint32_t)len, 0);
            }
            s->start += len + 1;
            emitted++;
            continue;
        }
        /* No complete line buffered. */
        if (s->skipping || (int64_t)avail > c->max_line) {
            if (!s->skipping) {
                s->skipping = 1;
                s->skip_offset = s->buf_offset + (int64_t)s->start;
                s->skip_keep_len = RN_MIN(RN_MIN(avail, (size_t)RN_TRUNC_KEEP), (size_t)c->max_line);
                memcpy(s->skip_keep, p, s->skip_keep_len);
                s->skip_len = 0;
            }
            s->skip_len += avail;
            s->start = s->end;
            avail = 0;
        }
        if (s->eof && !c->follow) {
            if (s->skipping) {
                rn__fs_emit_truncated(op, out);
                emitted++;
            } else if (avail) {
                rn__fs_emit(op, out, p, avail, s->buf_offset + (int64_t)s->start,
                            (uint32_t)avail, 0);
                emitted++;
            }
            s->start = s->end;
            return emitted ? RN_POLL_MORE : RN_POLL_END;
        }
        /* Compact and read more. */
        if (s->start > 0) {
            memmove(s->buf, s->buf + s->start, avail);
            s->buf_offset += (int64_t)s->start;
            s->end = avail;
            s->start = 0;
        }
        ssize_t n;
        do {
            n = read(s->fd, s->buf + s->end, s->cap - s->end);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            rn_op_errorf(op, "read '%s' at offset %lld: %s", c->path,
                         (long long)(s->buf_offset + (int64_t)s->end), strerror(errno));
            return RN_EIO;
        }
        if (n == 0) {
            s->eof = 1;
            if (!c->follow) continue;
            if (emitted) return RN_POLL_MORE;
            int64_t now = rn_now_ns();
            if (now - s->last_check_ns >= c->poll_interval * 1000000) {
                s->last_check_ns = now;
                /* Only switch once the old file's complete lines are out. */
                struct stat st;
                if (stat(c->path, &st) == 0 && s->fd >= 0 && st.st_ino != s->ino &&
                    rn__fs_emit_tail(op, s, out))
                    return RN_POLL_MORE;
                if (rn__fs_check_rotation(op, s)) return RN_POLL_MORE;
            }
            usleep((useconds_t)RN_MIN(c->poll_interval, 20) * 1000);
            return RN_POLL_IDLE;
        }
        s->eof = 0;
        s->end += (size_t)n;
    }
    return RN_POLL_MORE;
}

static void rn_file_source_close(struct rn_op *op)
{
    struct rn_file_source *s = rn_op_local(op);
    if (!s) return;
    if (s->fd >= 0) close(s->fd);
    free(s->buf);
    free(s->skip_keep);
    free(s);
    rn_op_set_local(op, NULL);
}

static const struct rn_port_decl rn_file_source_out[] = {
    {NULL, "raw", "One record per line."},
};

const struct rn_op_type rn_source_file = {
    RN_OP_TYPE_HEAD,
    .name = "file",
    .description = "Reads a file of lines; bounded, or following it like `tail -F`. Position: "
                   "the byte offset of the next line.",
    .kind = RN_KIND_SOURCE,
    .config = rn_file_source_keys,
    .ctx_size = sizeof(struct rn_file_source_cfg),
    .outputs = rn_file_source_out,
    .n_outputs = 1,
    .init = rn_file_source_init,
    .open = rn_file_source_open,
    .poll = rn_file_source_poll,
    .close = rn_file_source_close,
    .snapshot = rn_file_source_snapshot,
    .restore = rn_file_source_restore,
};
