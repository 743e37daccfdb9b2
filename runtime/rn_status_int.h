/*
 * rn_status_int.h — what the status page's files share: one node's figures
 * summed over its subtasks, the keyed-state rows, and the history of every
 * series the web UI charts (rn_history.c).
 *
 * The history is kept by a sampler thread that reads the same atomic counters
 * the status server reads, once a second, into a bounded ring per series
 * (RN_HISTORY_SAMPLES samples, ten minutes at 1 s), so a page opened at any time
 * shows the last minutes at once. GET /api/v1/history serves it.
 */
#ifndef RUNNEL_RN_STATUS_INT_H
#define RUNNEL_RN_STATUS_INT_H

#include "rn_exec_int.h"

#define RN_HISTORY_SAMPLES 600
#define RN_HISTORY_INTERVAL_MS 1000

/* One node's figures, summed (watermark: the smallest) over its subtasks. */
struct rn__node_figs {
    uint64_t in, out, dropped;
    uint64_t late, timers;
    int64_t wm; /* smallest over subtasks */
    uint64_t ports[16];
    uint64_t metrics[16];
    uint64_t busy_ns;
};
/* Fills *f for node `node`; any thread once the job is built. */
void rn__node_figures(struct rn_job *job, int node, struct rn__node_figs *f);

/* The process's memory and CPU (all its jobs and threads together): resident
 * set now (/proc/self/statm), its peak (getrusage's ru_maxrss) and user +
 * system CPU seconds. Zeros where the system does not say. Any thread. */
struct rn__proc_figs {
    uint64_t rss_bytes, peak_rss_bytes;
    double cpu_s;
};
void rn__proc_figures(struct rn__proc_figs *p);

/* Records emitted on every side output of type dead_letter, routed or not. */
uint64_t rn__dead_letters(struct rn_job *job);

/* The keyed state of one worker thread. */
struct rn__state_row {
    const char *chain;
    uint32_t subtask, kg_start, kg_end;
    struct rn_state_figures f;
};
/* Rows for every task that has a state backend (malloc'd, the caller frees;
 * *n of them). */
struct rn__state_row *rn__state_rows(struct rn_job *job, size_t *n);

/* ---- a bounded history of named series (rn_history.c) ------------------------ */

struct rn_history;

/* A ring of `capacity` samples of n series. names: n strings, taken (freed with
 * the history). */
struct rn_history *rn__history_create(size_t capacity, size_t n, char **names);
void rn__history_destroy(struct rn_history *h);
/* Appends one sample at wall time t_ms: v holds n values, NAN for "none" (shown as
 * null). Copies v. Any thread (the history has its own lock). */
void rn__history_push(struct rn_history *h, int64_t t_ms, const double *v);
/* Writes {"interval_ms":..,"capacity":..,"t":[..],"series":{name:[..],..}} with the
 * samples taken after since_ms (all of them for since_ms <= 0), oldest first. */
void rn__history_json(struct rn_history *h, int64_t since_ms, struct rn_buf *b);

/* The job's sampler: started with the status server (rn_job_run), stopped once
 * the worker threads have ended, after a last sample; the history stays readable
 * (under --hold) until rn__status_sampler_free. */
int rn__status_sampler_start(struct rn_job *job, char *errbuf, size_t errlen);
void rn__status_sampler_stop(struct rn_job *job);
void rn__status_sampler_free(struct rn_job *job);
/* GET /api/v1/history?since=MS for the job (an empty history before the start). */
void rn__status_history_json(struct rn_job *job, const char *query, struct rn_buf *b);

#endif
