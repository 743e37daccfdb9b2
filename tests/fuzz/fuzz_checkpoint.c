/*
 * fuzz_checkpoint.c — the readers a restore runs over files of a checkpoint
 * directory: the manifest (_manifest.json, rn__restore_find), the snapshot
 * file format (magic, length, checksum: rn__snapshot_reader_open and the
 * rn_snapshot_read_* calls), and every operator's restore() of its own bytes.
 *
 * The first byte picks the reader:
 *   0      the rest is a chk-N/_manifest.json restored with --from-checkpoint;
 *   1      the rest is a snapshot file, read back as i64s and strings in the
 *          order its own bytes say;
 *   2..    the rest is the payload of an operator's snapshot, wrapped in a valid
 *          header and checksum (a flipped byte in a real file stops at the
 *          checksum; this reaches the decoder behind it), handed to the
 *          restore() of operator (byte - 2) % n of a fixed job, on a fresh
 *          instance that is closed afterwards, as the runtime does.
 *
 * With RN_FUZZ_WRITE_SEEDS=DIR set, the harness instead writes each operator's
 * real snapshot into DIR as a seed and exits.
 */
#include <stdint.h>
#include <sys/stat.h>

#include "fuzz_util.h"
#include "rn_checkpoint_int.h"
#include "rn_exec_int.h"
#include "rn_job.h"

static const char rn_fuzz_job[] =
    "job: fuzz_ckpt\n"
    "max_parallelism: 128\n"
    "sources:\n"
    "  logs: { type: file, path: /nonexistent/logs.jsonl }\n"
    "operators:\n"
    "  - { id: collect, op: log_collector, from: logs }\n"
    "  - { id: join, op: online_joiner, from: collect, window: 30m }\n"
    "  - { id: experience, op: experience_collector, from: join, history: 4,\n"
    "      embeddings: EMB }\n"
    "  - { id: learn, op: value_advantage_learner, from: experience, embeddings: EMB,\n"
    "      model_store: STORE, item_buckets: 8, positions: 2, history: 4 }\n"
    "sinks:\n"
    "  samples: { type: file, path: OUT/samples.jsonl, from: join }\n"
    "  training: { type: partitioned_file, dir: OUT/training, partition: hour, from: join }\n";

static struct rn_job *job;
static struct rn_instance *ops[8];
static int n_ops;

static void rn_fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz_checkpoint: %s\n", what);
    abort();
}

static void rn_fuzz_teardown(void)
{
    rn_job_destroy(job);
}

/* The job text with EMB, STORE and OUT replaced by paths in the scratch dir. */
static char *rn_fuzz_job_text(void)
{
    struct rn_buf b = RN_BUF_INIT;
    const char *d = rn_fuzz_dir();
    for (const char *p = rn_fuzz_job; *p;) {
        if (!strncmp(p, "EMB", 3)) {
            rn_buf_printf(&b, "%s/emb.txt", d);
            p += 3;
        } else if (!strncmp(p, "STORE", 5)) {
            rn_buf_printf(&b, "%s/models", d);
            p += 5;
        } else if (!strncmp(p, "OUT", 3)) {
            rn_buf_printf(&b, "%s/out", d);
            p += 3;
        } else {
            rn_buf_putc(&b, *p++);
        }
    }
    rn_buf_putc(&b, '\0');
    return b.data;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    static const char emb[] = "a 0.1 0.2 0.3 0.4\nb -0.5 0.25 0 1\nc 1 1 1 1\n";
    rn_fuzz_file("emb.txt", emb, sizeof emb - 1);
    char *text = rn_fuzz_job_text();
    const char *path = rn_fuzz_file("job.yaml", text, strlen(text)); /* NUL-ended above */
    free(text);
    char err[1024];
    struct rn_job_options opt = {.quiet = 1};
    job = rn_job_load(path, &opt, err, sizeof err);
    if (!job) {
        fprintf(stderr, "%s\n", err);
        rn_fuzz_fail("the harness's job does not load");
    }
    rn__job_build(job);
    for (int i = 0; i < job->n_nodes; i++) {
        struct rn_node *n = &job->nodes[i];
        if (!n->type->restore) continue;
        struct rn_group *g = &job->groups[n->group];
        ops[n_ops++] = g->tasks[0]->inst[rn__group_pos(g, i)];
    }
    atexit(rn_fuzz_teardown);

    const char *seeds = getenv("RN_FUZZ_WRITE_SEEDS");
    if (seeds) {
        for (int k = 0; k < n_ops; k++) {
            struct rn_instance *in = ops[k];
            struct rn_snapshot_writer *w = rn__snapshot_writer_create();
            if (in->node->type->open(&in->op)) { /* the file source: no such file */
                fprintf(stderr, "no seed for '%s': it does not open here\n", in->node->id);
                in->node->type->close(&in->op);
                rn__snapshot_writer_destroy(w);
                continue;
            }
            char sp[600];
            snprintf(sp, sizeof sp, "%s/snapshot-%s", seeds, in->node->id);
            if (in->node->type->snapshot(&in->op, 7, w) == 0) {
                /* the payload only, behind the byte that picks this operator */
                char file[600];
                snprintf(file, sizeof file, "%s/tmp.bin", rn_fuzz_dir());
                rn__snapshot_writer_save(w, file, err, sizeof err);
                size_t len;
                char *all = rn_fs_read_all(file, &len);
                FILE *f = fopen(sp, "wb");
                fputc(2 + k, f);
                fwrite(all + 24, 1, len - 24, f);
                fclose(f);
                /* and the whole file, header and checksum included */
                snprintf(sp, sizeof sp, "%s/file-%s", seeds, in->node->id);
                f = fopen(sp, "wb");
                fputc(1, f);
                fwrite(all, 1, len, f);
                fclose(f);
                free(all);
            }
            rn__snapshot_writer_destroy(w);
            in->node->type->close(&in->op);
        }
        exit(0);
    }
    return 0;
}

/* Reads a snapshot back the way its own bytes steer: a tag byte says whether
 * an i64, a string or a raw run comes next. */
static void rn_fuzz_read_all(struct rn_snapshot_reader *r)
{
    for (int i = 0; i < 256; i++) {
        uint8_t tag;
        if (rn_snapshot_read(r, &tag, 1)) return;
        int64_t v;
        const char *s;
        char buf[64];
        int rc = tag % 3 == 0   ? rn_snapshot_read_i64(r, &v)
                 : tag % 3 == 1 ? rn_snapshot_read_str(r, &s)
                                : rn_snapshot_read(r, buf, tag % sizeof buf);
        if (rc) return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char err[1024] = "";
    if (data[0] == 0) {
        char dir[300];
        snprintf(dir, sizeof dir, "%s/chk-7", rn_fuzz_dir());
        mkdir(dir, 0777);
        rn_fuzz_file("chk-7/_manifest.json", data + 1, size - 1);
        job->from_checkpoint = dir;
        struct rn_restore *r = NULL;
        int rc = rn__restore_find(job, &r, err, sizeof err);
        job->from_checkpoint = NULL;
        if (rc && !err[0]) rn_fuzz_fail("manifest rejected without a message");
        if (!rc && !r) rn_fuzz_fail("no manifest and no error");
        rn__restore_free(r);
        return 0;
    }
    if (data[0] == 1) {
        const char *path = rn_fuzz_file("snap.bin", data + 1, size - 1);
        struct rn_snapshot_reader *r = rn__snapshot_reader_open(path, 7, err, sizeof err);
        if (!r) {
            if (!err[0]) rn_fuzz_fail("snapshot rejected without a message");
            return 0;
        }
        rn_fuzz_read_all(r);
        rn__snapshot_reader_destroy(r);
        return 0;
    }
    struct rn_instance *in = ops[(data[0] - 2) % n_ops];
    struct rn_snapshot_writer *w = rn__snapshot_writer_create();
    rn_snapshot_write(w, data + 1, size - 1);
    char path[300];
    snprintf(path, sizeof path, "%s/op.bin", rn_fuzz_dir());
    if (rn__snapshot_writer_save(w, path, err, sizeof err)) rn_fuzz_fail(err);
    rn__snapshot_writer_destroy(w);
    struct rn_snapshot_reader *r = rn__snapshot_reader_open(path, 7, err, sizeof err);
    if (!r) rn_fuzz_fail("a valid snapshot file does not open");
    in->node->type->restore(&in->op, r);
    rn__snapshot_reader_destroy(r);
    in->node->type->close(&in->op);
    in->local = NULL;
    return 0;
}
