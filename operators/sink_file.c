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
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_operator.h"

struct rn_file_sink_cfg {
    const char *path;
    int mode;
    int64_t buffer;
    int fsync;
};

struct rn_file_sink {
    int fd;
    struct rn_buf buf;
    const struct rn_type *type;
};

static const char *const rn_file_sink_modes[] = {"truncate", "append", NULL};

static const struct rn_config_key rn_file_sink_keys[] = {
    {"path", RN_CT_STRING, NULL, NULL, offsetof(struct rn_file_sink_cfg, path),
     "Output file (JSON lines); \"-\" writes to standard output. Parent directories are "
     "created.",
     NULL, RN_CK_REQUIRED, 0, 0},
    {"mode", RN_CT_ENUM, "truncate", NULL, offsetof(struct rn_file_sink_cfg, mode),
     "What to do with an existing file.", rn_file_sink_modes, 0, 0, 0},
    {"buffer", RN_CT_SIZE, "1MiB", "bytes", offsetof(struct rn_file_sink_cfg, buffer),
     "Output is written when this much is buffered, and at the end.", NULL, 0, 4096,
     (int64_t)1 << 30},
    {"fsync", RN_CT_BOOL, "false", NULL, offsetof(struct rn_file_sink_cfg, fsync),
     "fsync(2) the file when the stream ends.", NULL, 0, 0, 0},
    RN_CONFIG_END,
};

/* mkdir -p of the directory part of path. */
static int rn__mkdirs_for(const char *path)
{
    char *tmp = rn_xstrdup(path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
            free(tmp);
            return -1;
        }
        *p = '/';
    }
    free(tmp);
    return 0;
}

static int rn_file_sink_open(struct rn_op *op)
{
    const struct rn_file_sink_cfg *c = rn_op_ctx(op);
    struct rn_file_sink *s = rn_xcalloc(1, sizeof *s);
    rn_op_set_local(op, s);
    s->fd = -1;
    if (strcmp(c->path, "-") == 0) {
        s->fd = STDOUT_FILENO;
        return 0;
    }
    if (rn__mkdirs_for(c->path) != 0) {
        rn_op_errorf(op, "cannot create the directory of '%s': %s", c->path, strerror(errno));
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
    size_t done = 0;
    while (done < s->buf.len) {
        ssize_t n = write(s->fd, s->buf.data + done, s->buf.len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rn_op_errorf(op, "write to '%s' failed: %s", c->path, strerror(errno));
            return RN_EIO;
        }
        done += (size_t)n;
    }
    rn_buf_reset(&s->buf);
    return 0;
}

static int rn_file_sink_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    const struct rn_file_sink_cfg *c = rn_op_ctx(op);
    struct rn_file_sink *s = rn_op_local(op);
    for (uint32_t i = 0; i < in->n; i++) {
        const struct rn_record *r = &in->recs[i];
        const struct rn_type *t = rn_type_get(r->type);
        t->write_json(r, &s->buf);
        rn_buf_putc(&s->buf, '\n');
    }
    if ((int64_t)s->buf.len >= c->buffer) return rn__file_sink_write(op, s);
    (void)out;
    return 0;
}

static int rn_file_sink_finish(struct rn_op *op, struct rn_emitter *out)
{
    const struct rn_file_sink_cfg *c = rn_op_ctx(op);
    struct rn_file_sink *s = rn_op_local(op);
    int rc = rn__file_sink_write(op, s);
    if (rc == 0 && c->fsync && s->fd != STDOUT_FILENO && fsync(s->fd) != 0) {
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
    rn_buf_free(&s->buf);
    free(s);
    rn_op_set_local(op, NULL);
}

const struct rn_op_type rn_sink_file = {
    .abi_version = RN_OP_ABI_VERSION,
    .name = "file",
    .description = "Writes records as JSON lines, one per line, in arrival order.",
    .kind = RN_KIND_SINK,
    .config = rn_file_sink_keys,
    .ctx_size = sizeof(struct rn_file_sink_cfg),
    .in_type = "*",
    .open = rn_file_sink_open,
    .process = rn_file_sink_process,
    .finish = rn_file_sink_finish,
    .close = rn_file_sink_close,
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
    .abi_version = RN_OP_ABI_VERSION,
    .name = "discard",
    .description = "Counts records and discards them.",
    .kind = RN_KIND_SINK,
    .config = rn_null_sink_keys,
    .ctx_size = 1,
    .in_type = "*",
    .process = rn_null_sink_process,
};
