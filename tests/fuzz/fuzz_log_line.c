/*
 * fuzz_log_line.c — log_collector's line path: raw log lines through its
 * process() callback, each to a typed event or to the dead-letter output.
 *
 * A fixed job (file source -> three collectors, one per `ts_unit`, each with
 * context fields and an extra feedback type, dead letters to a sink) is loaded
 * and planned once; the collectors' instances are opened directly, without
 * starting the job's threads. Each input is split into lines (at most 64),
 * given as one batch of `raw` records to the collector the first byte picks
 * (bit 2 of it marks the first line as truncated, as the file source does
 * with overlong lines). Besides the sanitizers, the harness checks the
 * promise "nothing dropped silently": every line comes out exactly once, as
 * an event or a dead letter, and every string of an event lies inside its
 * payload.
 */
#include <stdint.h>

#include "fuzz_util.h"
#include "rn_event.h"
#include "rn_exec_int.h"
#include "rn_job.h"

static const char rn_fuzz_job[] =
    "job: fuzz_lines\n"
    "sources:\n"
    "  logs: { type: file, path: /nonexistent/logs.jsonl }\n"
    "operators:\n"
    "  - { id: c_ms, op: log_collector, from: logs, dead_letter: rejected,\n"
    "      context_fields: [hour, page], feedback_types: [dwell, like] }\n"
    "  - { id: c_s, op: log_collector, from: logs, dead_letter: rejected, ts_unit: s,\n"
    "      context_fields: [hour, page], feedback_types: [dwell, like], max_items: 8,\n"
    "      max_id_length: 16 }\n"
    "  - { id: c_rfc, op: log_collector, from: logs, dead_letter: rejected, ts_unit: rfc3339,\n"
    "      context_fields: [hour, page], feedback_types: [dwell, like] }\n"
    "sinks:\n"
    "  out: { type: file, path: /nonexistent/out.jsonl, from: [c_ms, c_s, c_rfc] }\n"
    "  rejected: { type: file, path: /nonexistent/rejected.jsonl }\n";

static struct rn_job *job;
static struct rn_instance *coll[3];
static struct rn_batch *in_batch;
static uint16_t raw_type;

static void rn_fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz_log_line: %s\n", what);
    abort();
}

static struct rn_instance *rn_fuzz_instance(const char *id)
{
    for (int i = 0; i < job->n_nodes; i++) {
        struct rn_node *n = &job->nodes[i];
        if (strcmp(n->id, id)) continue;
        struct rn_group *g = &job->groups[n->group];
        return g->tasks[0]->inst[rn__group_pos(g, i)];
    }
    rn_fuzz_fail("no such node");
    return NULL;
}

static void rn_fuzz_teardown(void)
{
    for (int c = 0; c < 3; c++)
        coll[c]->node->type->close(&coll[c]->op);
    rn_batch_destroy(in_batch);
    rn_job_destroy(job);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char err[1024];
    const char *path = rn_fuzz_file("job.yaml", rn_fuzz_job, sizeof rn_fuzz_job - 1);
    struct rn_job_options opt = {.quiet = 1};
    job = rn_job_load(path, &opt, err, sizeof err);
    if (!job) {
        fprintf(stderr, "%s\n", err);
        rn_fuzz_fail("the harness's job does not load");
    }
    rn__job_build(job);
    static const char *const ids[3] = {"c_ms", "c_s", "c_rfc"};
    for (int c = 0; c < 3; c++) {
        coll[c] = rn_fuzz_instance(ids[c]);
        if (coll[c]->node->type->open(&coll[c]->op)) rn_fuzz_fail("open failed");
    }
    raw_type = (uint16_t)rn_types_find(job->types, "raw");
    in_batch = rn_batch_create(RN_BATCH_RECORDS);
    atexit(rn_fuzz_teardown);
    return 0;
}

static int rn_fuzz_str_ok(const struct rn_str *s, uint32_t len)
{
    return (uint64_t)s->off + s->len <= len;
}

/* Checks that every string and array of event record r lies inside it. */
static void rn_fuzz_check_event(const struct rn_record *r)
{
    const struct rn_event *e = r->payload;
    if (r->len < sizeof *e) rn_fuzz_fail("event shorter than struct rn_event");
    if (!rn_fuzz_str_ok(&e->user, r->len) || !rn_fuzz_str_ok(&e->request, r->len) ||
        !rn_fuzz_str_ok(&e->item, r->len) || !rn_fuzz_str_ok(&e->event_id, r->len))
        rn_fuzz_fail("event string outside its payload");
    uint64_t n = e->n_items;
    if (n && ((uint64_t)e->items_off + n * sizeof(struct rn_str) > r->len ||
              (uint64_t)e->ids_off + n * sizeof(uint64_t) > r->len))
        rn_fuzz_fail("event items outside its payload");
    for (uint64_t i = 0; i < n; i++)
        if (!rn_fuzz_str_ok(&rn_event_items(e)[i], r->len)) rn_fuzz_fail("item outside payload");
    if ((e->flags & RN_EVENT_HAS_PROPENSITIES) &&
        (uint64_t)e->props_off + n * sizeof(double) > r->len)
        rn_fuzz_fail("propensities outside payload");
    if (e->n_context && (uint64_t)e->context_off + e->n_context * sizeof(double) > r->len)
        rn_fuzz_fail("context outside payload");
    if (e->kind > RN_EV_KIND_MAX + 8) rn_fuzz_fail("event kind out of range");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    struct rn_instance *in = coll[data[0] % 3];
    int truncate_first = (data[0] & 4) != 0;
    static const char split[] = "/nonexistent/logs.jsonl";
    rn_batch_clear(in_batch);
    size_t at = 1;
    int64_t offset = 0;
    while (at <= size && in_batch->n < 64) {
        const uint8_t *nl = memchr(data + at, '\n', size - at);
        size_t len = nl ? (size_t)(nl - (data + at)) : size - at;
        uint32_t total = (uint32_t)(sizeof(struct rn_raw) + len + sizeof split - 1);
        struct rn_raw *raw = rn_batch_add(in_batch, raw_type, RN_TS_MIN, 0, total);
        raw->offset = offset;
        raw->source = 0;
        raw->orig_len = (uint32_t)len + (truncate_first && in_batch->n == 1 ? 100 : 0);
        raw->line = (struct rn_str){sizeof *raw, (uint32_t)len};
        raw->split = (struct rn_str){(uint32_t)(sizeof *raw + len), sizeof split - 1};
        memcpy(raw + 1, data + at, len);
        memcpy((char *)(raw + 1) + len, split, sizeof split - 1);
        offset += (int64_t)len + 1;
        at += len + 1;
        if (!nl) break;
    }
    in->cur_input = 0;
    int rc = in->node->type->process(&in->op, in_batch, &in->em);
    in->cur_input = -1;
    if (rc) rn_fuzz_fail("process failed");
    struct rn_batch *events = in->ports[0].batch, *dead = in->ports[1].batch;
    if (events->n + dead->n != in_batch->n) rn_fuzz_fail("a line was lost or doubled");
    for (uint32_t i = 0; i < events->n; i++)
        rn_fuzz_check_event(&events->recs[i]);
    struct rn_buf json = RN_BUF_INIT;
    for (uint32_t i = 0; i < events->n; i++) {
        rn_types_write_json(job->types, &events->recs[i], &json);
        rn_buf_reset(&json);
    }
    for (uint32_t i = 0; i < dead->n; i++) {
        rn_types_write_json(job->types, &dead->recs[i], &json);
        rn_buf_reset(&json);
    }
    rn_buf_free(&json);
    rn_batch_clear(events);
    rn_batch_clear(dead);
    return 0;
}
