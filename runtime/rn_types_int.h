/*
 * rn_types_int.h — the runtime's side of a job's record types (rn_record.h):
 * creating the table, numbering types, freeing it. rn_job.c fills one per job
 * at load time; everything else only reads it.
 */
#ifndef RUNNEL_RN_TYPES_INT_H
#define RUNNEL_RN_TYPES_INT_H

#include "rn_record.h"

/* A table holding raw (id 0) and dead_letter (id 1). The caller owns it. */
struct rn_types *rn__types_create(void);
void rn__types_destroy(struct rn_types *ts);
/* Numbers t (borrowed: it must outlive the job) in ts: its id (the one it has
 * when it is there already), RN_EINVAL when another type of that name is, or
 * RN_EFULL. */
int rn__types_add(struct rn_types *ts, const struct rn_type *t);

#endif
