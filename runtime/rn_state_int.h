/*
 * rn_state_int.h — the state backend of one worker thread: a RocksDB
 * instance holding the keyed state and timers of every keyed operator in the
 * thread's chain, with a write-back cache in front. The only file that
 * touches RocksDB's C API is rn_state.c; its errors become RN_E* codes and
 * messages here.
 */
#ifndef RUNNEL_RN_STATE_INT_H
#define RUNNEL_RN_STATE_INT_H

#include <stdatomic.h>

#include "rn_state.h"

struct rn_statedb;

struct rn_state_cfg {
    const char *dir;      /* working state of this run: <dir>/<job>/<chain>-<subtask> */
    int64_t cache_size;   /* bytes of write-back cache per thread */
    int64_t block_cache;  /* RocksDB block cache per thread */
    int64_t write_buffer; /* RocksDB memtable size */
};

/* Where a restore takes key groups from: an old checkpoint of one subtask. */
struct rn_state_source {
    const char *dir; /* RocksDB checkpoint directory */
    uint32_t kg_start, kg_end;
};

/* Opens (creating, after wiping whatever a previous run left) the working
 * database in `dir` for key groups [kg_start, kg_end). When sources are given,
 * their key groups in that range are restored first: linked whole when one
 * source covers exactly the range, copied range by range otherwise. */
struct rn_statedb *rn__statedb_open(const struct rn_state_cfg *cfg, const char *dir,
                                    uint32_t kg_start, uint32_t kg_end, uint32_t max_parallelism,
                                    const struct rn_state_source *src, size_t n_src, char *errbuf,
                                    size_t errlen);
void rn__statedb_close(struct rn_statedb *db);

/* Checkpoints the state into `dir` (a RocksDB checkpoint: SST files
 * hard-linked). begin() takes the consistent cut on the owning thread and
 * returns quickly; the files are written in the background; poll() returns 1
 * once they are (wait: block until then), 0 while not yet, < 0 on failure.
 * A begin() first waits for the previous checkpoint. checkpoint() does both. */
int rn__statedb_checkpoint_begin(struct rn_statedb *db, const char *dir, char *errbuf,
                                 size_t errlen);
int rn__statedb_checkpoint_poll(struct rn_statedb *db, int wait, char *errbuf, size_t errlen);
int rn__statedb_checkpoint(struct rn_statedb *db, const char *dir, char *errbuf, size_t errlen);

/* The working database's failure, or NULL while it works. After a failure
 * (a RocksDB read or write error; never reported as "absent") every state
 * call fails with RN_ESTATE; the message names what failed first: the
 * operator, the key and its key group when known, and RocksDB's text. A
 * checkpoint that could not be written is not such a failure. Owning thread. */
const char *rn__statedb_error(const struct rn_statedb *db);

/* Figures for the status page; safe from any thread. */
struct rn_state_figures {
    uint64_t cache_entries, cache_bytes, cache_hits, cache_misses, cache_evictions;
    uint64_t db_reads; /* misses that read RocksDB (the others the written-keys filter answered) */
    uint64_t timers;
    uint64_t memtable_bytes, sst_bytes, live_data_bytes, block_cache_bytes, keys_estimate;
};
void rn__statedb_figures(struct rn_statedb *db, struct rn_state_figures *f);

/* ---- per operator instance ---------------------------------------------------- */

struct rn_op_state; /* keyed context of one operator instance */

struct rn_op_state *rn__op_state_create(struct rn_statedb *db, const char *op_id,
                                        uint32_t max_parallelism);
void rn__op_state_destroy(struct rn_op_state *os);
void rn__op_state_set_key(struct rn_op_state *os, uint64_t key);
/* The earliest pending timer's time, or RN_TS_MAX when none. */
int64_t rn__op_state_next_timer(struct rn_op_state *os);
/* Pops the earliest timer if its ts <= wm; sets it as the current key. */
int rn__op_state_pop_timer(struct rn_op_state *os, int64_t wm, struct rn_timer *out);
/* Looks up the registrations rn_timer_register keeps waiting (a few, for
 * prefetching) in the timer set now. The runtime calls it after each batch
 * and after each watermark's timers, so that no figure or checkpoint lags. */
void rn__op_state_flush(struct rn_op_state *os);
uint64_t rn__op_state_timers(struct rn_op_state *os);
/* The instance's state format: `found` is the version of the restored
 * checkpoint's data (= version when nothing older was restored), `version`
 * the operator type's. While found < version, each state the operator
 * declares has its stored entries passed through migrate (when not NULL)
 * once, at declaration; a failure fails the database (rn__statedb_error). */
typedef int (*rn__migrate_fn)(struct rn_op *op, const char *state, uint32_t from, const void *val,
                              size_t len, struct rn_buf *out);
void rn__op_state_set_format(struct rn_op_state *os, struct rn_op *op, uint32_t found,
                             uint32_t version, rn__migrate_fn migrate);
/* rn__statedb_error() of the instance's database. */
const char *rn__op_state_error(const struct rn_op_state *os);

/* rn_time.c: the keyed context of an operator (NULL when not keyed). */
struct rn_op_state *rn__op_keyed(const struct rn_op *op);

#endif
