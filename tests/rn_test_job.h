/*
 * rn_test_job.h — a job run on its own thread, for tests that talk to a
 * running job (serving, status, timers) and stop it with rn_job_stop.
 */
#ifndef RUNNEL_RN_TEST_JOB_H
#define RUNNEL_RN_TEST_JOB_H

#include <stdlib.h>
#include <string.h>

#include "rn_checkpoint.h"
#include "rn_job.h"
#include "rn_operator.h"
#include "rn_record.h"

/* A keyed test record type: its payload begins with the uint64_t key (the
 * field "key"), and it is written as "{}". RN_TEST_KEYED_TYPE(rec_type,
 * "rec") defines rec_type and rec_types, the list an rn_op_type's .types
 * takes. */
static inline uint64_t rn_test_key_of(const struct rn_record *r, int f)
{
    uint64_t k;
    (void)f;
    memcpy(&k, r->payload, sizeof k);
    return k;
}
static inline void rn_test_json_empty(const struct rn_record *r, struct rn_buf *out)
{
    (void)r;
    rn_buf_puts(out, "{}");
}
#define RN_TEST_KEYED_TYPE(var, type_name)                                                  \
    static const char *const var##_keys[] = {"key", NULL};                                  \
    static const struct rn_type var = {.name = type_name, .description = "test record",     \
                                       .write_json = rn_test_json_empty,                    \
                                       .key_fields = var##_keys, .key_of = rn_test_key_of}; \
    static const struct rn_type *const var##s[] = {&var, NULL}

/* A test source's position: its instance's own int64_t, allocated (zero) at
 * the first call; rn_test_source_close (the source's .close) frees it. */
static inline int64_t *rn_test_source_pos(struct rn_op *op)
{
    int64_t *pos = rn_op_local(op);
    if (!pos) {
        pos = calloc(1, sizeof *pos);
        rn_op_set_local(op, pos);
    }
    return pos;
}
static inline void rn_test_source_close(struct rn_op *op)
{
    free(rn_op_local(op));
}
/* The source's .snapshot and .restore: its position. A checkpoint may come
 * before the first poll (nothing read yet: 0). */
static inline int rn_test_source_snapshot(struct rn_op *op, uint64_t id,
                                          struct rn_snapshot_writer *w)
{
    (void)id;
    const int64_t *pos = rn_op_local(op);
    rn_snapshot_write_i64(w, pos ? *pos : 0);
    return 0;
}
static inline int rn_test_source_restore(struct rn_op *op, struct rn_snapshot_reader *r)
{
    return rn_snapshot_read_i64(r, rn_test_source_pos(op));
}

/* What pthread_create(run_thread, &runner) fills: the job's exit code and,
 * when it failed, its message. The job is borrowed. */
struct runner {
    struct rn_job *job;
    int rc;
    char err[512];
};

static inline void *run_thread(void *arg)
{
    struct runner *r = arg;
    r->rc = rn_job_run(r->job, r->err, sizeof r->err);
    return NULL;
}

/* A figure of operator `id` on the job's status JSON (e.g. "records_in"),
 * -1 when absent. Safe while the job runs. */
static inline long long rn_test_figure(struct rn_job *job, const char *id, const char *key)
{
    struct rn_buf js = RN_BUF_INIT;
    rn_job_render_json(job, &js);
    rn_buf_putc(&js, 0);
    char pat[64];
    snprintf(pat, sizeof pat, "{\"id\":\"%s\"", id);
    const char *p = strstr(js.data, pat);
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = p ? strstr(p, pat) : NULL;
    long long v = p ? atoll(p + strlen(pat)) : -1;
    rn_buf_free(&js);
    return v;
}

#endif
