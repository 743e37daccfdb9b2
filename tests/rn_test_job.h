/*
 * rn_test_job.h — a job run on its own thread, for tests that talk to a
 * running job (serving, status, timers) and stop it with rn_job_stop.
 */
#ifndef RUNNEL_RN_TEST_JOB_H
#define RUNNEL_RN_TEST_JOB_H

#include "rn_job.h"

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

#endif
