/*
 * rn_checkpoint_int.h — private to the engine: the interface between the
 * checkpoint coordinator (rn_checkpoint.c) and the tasks that take part in a
 * checkpoint (rn_barrier.c), plus snapshot files and what a restore reads.
 */
#ifndef RUNNEL_RN_CHECKPOINT_INT_H
#define RUNNEL_RN_CHECKPOINT_INT_H

#include "rn_checkpoint.h"
#include "rn_job_int.h"

struct rn_task;

struct rn_ckpt_stats {
    int64_t sync_ns;  /* time the task spent snapshotting */
    int64_t align_ns; /* time from the first barrier to the last (consumers) */
    uint64_t bytes;   /* bytes the task's snapshot added */
};

/* Task side: the directory for task t's part of checkpoint id (created;
 * the caller frees it). NULL with errbuf empty when the coordinator gave the
 * id up (no ack is owed); NULL with errbuf set when it could not be created
 * (the task acks the failure). */
char *rn__ckpt_task_dir(struct rn_job *job, uint64_t id, struct rn_task *t, char *errbuf,
                        size_t errlen);
/* Any task thread: task's part of checkpoint id is written (error NULL) or
 * failed (error says why, naming the task and the file; copied). */
void rn__ckpt_ack(struct rn_job *job, uint64_t id, const struct rn_ckpt_stats *st,
                  const char *error);
/* Reserves (once) the id of the end-of-job checkpoint. */
uint64_t rn__ckpt_final_id(struct rn_job *job);
void rn__ckpt_fault_task(struct rn_job *job, uint64_t id);

/* Restore: the checkpoint this run starts from. */
struct rn_restore_task {
    char *head;
    uint32_t subtask;
    uint32_t kg_start, kg_end;
    int has_state;
};
struct rn_restore {
    char *dir; /* the checkpoint directory */
    uint64_t id;
    uint32_t max_parallelism;
    struct rn_restore_task *tasks;
    size_t n_tasks;
};

/* Snapshot files. */
/* A writer of format version 1 until set_version() says otherwise (0 means
 * 1); the version goes into the file's header, and the reader gives it back
 * (rn_snapshot_version). */
struct rn_snapshot_writer *rn__snapshot_writer_create(void);
void rn__snapshot_writer_set_version(struct rn_snapshot_writer *w, uint32_t version);
int rn__snapshot_writer_save(struct rn_snapshot_writer *w, const char *path, char *errbuf,
                             size_t errlen);
void rn__snapshot_writer_destroy(struct rn_snapshot_writer *w);
struct rn_snapshot_reader *rn__snapshot_reader_open(const char *path, uint64_t id, char *errbuf,
                                                    size_t errlen);
void rn__snapshot_reader_destroy(struct rn_snapshot_reader *r);

#endif
