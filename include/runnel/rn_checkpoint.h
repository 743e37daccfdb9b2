/*
 * rn_checkpoint.h — what an operator sees of checkpoints: a writer for the
 * bytes it keeps in memory itself (its snapshot()), a reader for them on
 * restore (its restore()), and the id of the checkpoint. Keyed state kept
 * through rn_state.h is checkpointed by the runtime, not through these.
 * See docs/checkpoints.md.
 */
#ifndef RUNNEL_RN_CHECKPOINT_H
#define RUNNEL_RN_CHECKPOINT_H

#include "rn_common.h"

struct rn_snapshot_writer;
struct rn_snapshot_reader;

/* Appends bytes to the instance's snapshot. */
void rn_snapshot_write(struct rn_snapshot_writer *w, const void *p, size_t n);
void rn_snapshot_write_i64(struct rn_snapshot_writer *w, int64_t v);
void rn_snapshot_write_str(struct rn_snapshot_writer *w, const char *s);

/* Reads back in the same order; RN_ECORRUPT if the snapshot is shorter. */
int rn_snapshot_read(struct rn_snapshot_reader *r, void *p, size_t n);
int rn_snapshot_read_i64(struct rn_snapshot_reader *r, int64_t *v);
/* The string is borrowed from the reader (valid during restore()). */
int rn_snapshot_read_str(struct rn_snapshot_reader *r, const char **s);
/* The checkpoint being restored. */
uint64_t rn_snapshot_id(const struct rn_snapshot_reader *r);
/* The format version the snapshot was written with: the operator type's
 * state_version at the time (1 for snapshots written before versions). The
 * runtime calls restore() only with a version in [state_version_min,
 * state_version]; restore() reads older layouts accordingly. */
uint32_t rn_snapshot_version(const struct rn_snapshot_reader *r);
/* Bytes not yet read: a restore() checks a length it has read against this
 * before it allocates for what the length announces. */
size_t rn_snapshot_remaining(const struct rn_snapshot_reader *r);

#endif
