/*
 * rn_job.h — a job: loaded from YAML into a checked graph, then run.
 *
 *   rn_job_load()    YAML -> config tree (+ ${VAR}, --set) -> graph of sources,
 *                    operators and sinks; every reference, key and record type
 *                    is checked here, before anything runs.
 *   rn_job_run()     plans tasks (fused chains, exchanges), starts one thread per
 *                    subtask plus the HTTP server, and returns when the job ends.
 *   rn_job_stop()    asks a running job to stop (signal-safe: sets a flag).
 */
#ifndef RUNNEL_RN_JOB_H
#define RUNNEL_RN_JOB_H

#include <stdio.h>

#include "rn_common.h"

struct rn_job;

struct rn_job_options {
    const char *const *overrides; /* "key=value" strings (--set) */
    size_t n_overrides;
    int quiet; /* no progress lines on stderr */
    int hold;  /* keep the status page up after the job ends, until stopped */
    int fresh; /* start empty: ignore (and replace) earlier checkpoints */
    const char *from_checkpoint; /* restore this checkpoint directory */
    /* Bearer token of calls that change something when http.listen is not
     * loopback-only (default $RUNNEL_TOKEN_FILE, else var/token; made if
     * missing). Borrowed: must outlive the job. */
    const char *token_file;
};

struct rn_job *rn_job_load(const char *path, const struct rn_job_options *opt, char *errbuf,
                           size_t errlen);
void rn_job_destroy(struct rn_job *job);

/* Prints the resolved graph (validate's output). */
void rn_job_print(const struct rn_job *job, FILE *out);

/* Runs to completion (bounded sources) or until rn_job_stop(). Returns 0, or a
 * negative RN_E* code with a message in errbuf. */
int rn_job_run(struct rn_job *job, char *errbuf, size_t errlen);
void rn_job_stop(struct rn_job *job);

/* Renders the job's live figures; safe from any thread while the job runs. */
void rn_job_render_json(struct rn_job *job, struct rn_buf *out);
void rn_job_render_prometheus(struct rn_job *job, struct rn_buf *out);
void rn_job_render_html(struct rn_job *job, struct rn_buf *out);

/* The bound HTTP address once the server listens ("" before), e.g. after
 * `listen: 127.0.0.1:0`. */
const char *rn_job_http_address(struct rn_job *job);
/* The serving server's bound address (serve:), "" before the job runs or
 * without one. */
const char *rn_job_serve_address(struct rn_job *job);
/* The configured http.listen (NULL when none). */
const char *rn_job_http_listen(const struct rn_job *job);

#endif
