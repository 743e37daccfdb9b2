/*
 * rn_state.c — keyed state on RocksDB with a write-back cache, and
 * event-time timers. The one file that uses RocksDB's C API.
 *
 * One database per worker thread. It holds two column families:
 *
 *   default   [kg:2][sid:4][key:8][ns:8]            -> value bytes
 *   timers    [kg:2][sid:4][ts:8][key:8][ns:8]      -> (empty)
 *
 * all big-endian, so each key group's data is one contiguous key range: a
 * restore at another parallelism copies exactly the ranges it now owns.
 * `sid` names one state of one operator (a hash of "operator-id/name"); `ns`
 * is the namespace (a window, say); `ts` is biased so that it sorts as signed.
 *
 * Cache. Value and list state go through a write-back cache (an
 * open-addressing table) sized in bytes; what it evicts is chosen by
 * sampling (rn__victim), by idle time and, for state waiting for a timer,
 * by when that timer fires. Reads that miss go to
 * RocksDB and are cached, absent keys included; a key the written-keys
 * filter has never seen costs no RocksDB lookup at all. Writes only touch
 * the cache (rn_value_edit changes the cached bytes in place); a dirty entry
 * reaches RocksDB when it is evicted or at a checkpoint. An evicted entry's
 * value waits in a plain write batch and the entry stays in the table
 * (`pending`) until that batch is written, so a read never misses a write
 * not yet applied and never needs to search the batch. Map state, which
 * bypasses the cache, uses an indexed batch that its reads consult. RocksDB
 * itself runs without a WAL: durability comes from checkpoints, and after a
 * crash the working database is thrown away and rebuilt from the last
 * completed one. Cache entries, timer entries and values come from a pool of
 * size classes in mapped chunks (free lists, no malloc per request), and big
 * tables are mapped too; prefetch hints (rn_state_prefetch, and the timer
 * heap's own for the timers about to fire) load a key's table slot and entry
 * ahead of its use.
 *
 * Timers live in memory (a hash table for de-duplication, and sorted runs
 * with a 4-ary heap for the rest, in (ts, key, ns) order, per operator) and
 * are written to the timers column family at each checkpoint; fired timers
 * that were written are deleted by the next checkpoint, one range per key
 * group. On restore they are loaded back for the key groups the thread owns.
 *
 * Checkpoint, in two parts. On the worker thread, at the barrier: copy into a
 * delta batch every cache entry changed since the last checkpoint (and every
 * new timer) — the only pause the pipeline sees. On a background thread:
 * write the delta, then rocksdb_checkpoint_create(), which flushes the
 * memtable and hard-links the SST files into the checkpoint directory (cheap,
 * and incremental in disk use). Until that is done the worker keeps its own
 * write-backs in its indexed batch, so RocksDB holds exactly the state at the
 * barrier; the worker acks the checkpoint when the background part is done.
 */
#include "rn_state_int.h"

#include "rn_rand.h"

#include <assert.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#define XXH_INLINE_ALL
#include <xxhash.h>
/* Keys are 24-byte structs of integers: compare them as three words. */
static inline int rn__key24_cmp(const void *a, const void *b)
{
    uint64_t x[3], y[3]; /* memcpy: no aliasing of the key structs as words */
    memcpy(x, a, sizeof x);
    memcpy(y, b, sizeof y);
    return (x[0] != y[0]) | (x[1] != y[1]) | (x[2] != y[2]);
}
static inline int rn__key32_cmp(const void *a, const void *b)
{
    uint64_t x[4], y[4];
    memcpy(x, a, sizeof x);
    memcpy(y, b, sizeof y);
    return (x[0] != y[0]) | (x[1] != y[1]) | (x[2] != y[2]) | (x[3] != y[3]);
}

/* ---- big blocks ----------------------------------------------------------------------
 * The tables, the filter and the pool's chunks are mapped from the kernel
 * directly, zeroed: from a thread's malloc heap each new 4 KiB page of them
 * cost an mprotect() and a TLB shootdown on the other cores. (Huge pages,
 * madvise(MADV_HUGEPAGE) on 2 MiB-aligned blocks, were measured and made the
 * joiner slower: 448,000 against 673,000 events per CPU-second,
 * docs/performance.md.) */
#define RN__BIG_UNIT ((size_t)2 << 20)

static void *rn__big_map(size_t bytes, int populate)
{
    bytes = (bytes + RN__BIG_UNIT - 1) & ~(RN__BIG_UNIT - 1);
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1, 0);
    if (m == MAP_FAILED) {
        fprintf(stderr, "runnel: out of memory mapping %zu bytes of state\n", bytes);
        abort();
    }
    return m;
}

static void rn__big_unmap(void *p, size_t bytes)
{
    if (p) munmap(p, (bytes + RN__BIG_UNIT - 1) & ~(RN__BIG_UNIT - 1));
}

/* A zeroed table of `bytes`: small ones from calloc, big ones mapped, and
 * populated when every page of it is used at once (`populate`: a table that a
 * rehash fills, whose probes would otherwise read each fresh page first and
 * fault twice on it, the second time with a TLB shootdown). */
static void *rn__table_alloc(size_t bytes, int populate)
{
    return bytes < RN__BIG_UNIT ? rn_xcalloc(1, bytes) : rn__big_map(bytes, populate);
}

static void rn__table_free(void *p, size_t bytes)
{
    if (bytes < RN__BIG_UNIT) free(p);
    else rn__big_unmap(p, bytes);
}

/* ---- index: open addressing ------------------------------------------------------
 * The cache's and the timer set's table: slots of (64-bit hash, entry), linear
 * probing, at most 5/8 full, deletion by shifting back (no tombstones). An
 * entry starts with its key (24 or 32 bytes of integers); a lookup compares
 * the stored hash first and touches the entry only when it matches, so a hit
 * costs the slot and the entry, a miss usually the slot alone. */

struct rn__slot {
    uint64_t h;
    void *p; /* NULL: empty */
};

struct rn__index {
    struct rn__slot *slots;
    size_t mask; /* capacity - 1 (a power of two); slots NULL before the first add */
    size_t n;
};

static inline uint64_t rn__ix_hash(const void *key, size_t klen)
{
    return XXH3_64bits(key, klen);
}

static inline int rn__key_differs(const void *a, const void *b, size_t klen)
{
    return klen == 24 ? rn__key24_cmp(a, b) : rn__key32_cmp(a, b);
}

/* The entry of key (hash h), or NULL. */
static inline void *rn__ix_find(const struct rn__index *ix, uint64_t h, const void *key,
                                size_t klen)
{
    if (!ix->slots) return NULL;
    for (size_t i = h & ix->mask;; i = (i + 1) & ix->mask) {
        const struct rn__slot *sl = &ix->slots[i];
        if (!sl->p) return NULL;
        if (sl->h == h && !rn__key_differs(sl->p, key, klen)) return sl->p;
    }
}

static void rn__ix_put(struct rn__index *ix, uint64_t h, void *p)
{
    size_t i = h & ix->mask;
    while (ix->slots[i].p) i = (i + 1) & ix->mask;
    ix->slots[i].h = h;
    ix->slots[i].p = p;
}

/* Adds entry p (hash h; its key is not in the table). */
static void rn__ix_add(struct rn__index *ix, uint64_t h, void *p)
{
    if (!ix->slots || (ix->n + 1) * 8 > (ix->mask + 1) * 5) {
        size_t cap = ix->slots ? (ix->mask + 1) * 2 : 1024;
        struct rn__index big = {rn__table_alloc(cap * sizeof *big.slots, 1), cap - 1, ix->n};
        for (size_t i = 0; ix->slots && i <= ix->mask; i++)
            if (ix->slots[i].p) rn__ix_put(&big, ix->slots[i].h, ix->slots[i].p);
        if (ix->slots) rn__table_free(ix->slots, (ix->mask + 1) * sizeof *ix->slots);
        *ix = big;
    }
    rn__ix_put(ix, h, p);
    ix->n++;
}

/* Removes entry p (hash h), which is in the table. */
static void rn__ix_del(struct rn__index *ix, uint64_t h, const void *p)
{
    size_t i = h & ix->mask;
    while (ix->slots[i].p != p) i = (i + 1) & ix->mask;
    /* Move back each later entry of the run whose home is not between the
     * hole and it (cyclically), so that every entry stays reachable. */
    for (size_t j = (i + 1) & ix->mask; ix->slots[j].p; j = (j + 1) & ix->mask) {
        size_t home = ix->slots[j].h & ix->mask;
        if (((j - home) & ix->mask) >= ((j - i) & ix->mask)) {
            ix->slots[i] = ix->slots[j];
            i = j;
        }
    }
    ix->slots[i].p = NULL;
    ix->n--;
}

/* Prefetching (see rn__prefetch): the slot of hash h, and the entry of hash
 * h once its slot is in the cache (a few probes at most; nothing when the
 * key is not there). Hints only: they change nothing. */
#if defined(__GNUC__)
#define RN__PREFETCH(p) __builtin_prefetch(p)
#else
#define RN__PREFETCH(p) ((void)(p))
#endif

static inline void rn__ix_prefetch_slot(const struct rn__index *ix, uint64_t h)
{
    if (ix->slots) RN__PREFETCH(&ix->slots[h & ix->mask]);
}

static inline void rn__ix_prefetch_entry(const struct rn__index *ix, uint64_t h)
{
    if (!ix->slots) return;
    size_t i = h & ix->mask;
    for (int probes = 0; probes < 4; probes++, i = (i + 1) & ix->mask) {
        const struct rn__slot *sl = &ix->slots[i];
        if (!sl->p) return;
        if (sl->h == h) {
            RN__PREFETCH(sl->p);
            RN__PREFETCH((const char *)sl->p + 64); /* an entry spans two lines */
            return;
        }
    }
}

static void rn__ix_free(struct rn__index *ix)
{
    if (ix->slots) rn__table_free(ix->slots, (ix->mask + 1) * sizeof *ix->slots);
    memset(ix, 0, sizeof *ix);
}

/* ---- written-keys filter ------------------------------------------------------------
 * A Bloom-style bit set of every value/list key that may have been written to
 * this database: a cache miss whose key it does not hold skips RocksDB (the
 * key cannot be there), which is most misses of a pipeline (a new request id,
 * a new user). Bits are set when a key's value enters a batch bound for
 * RocksDB (an eviction's write-back, a checkpoint's delta), before RocksDB
 * can hold it, and are never cleared, so a "no" is always true; a key
 * deleted since, or another key's bits, only give a "maybe" (a RocksDB read,
 * as without the filter). Two bits per key in one 64-bit word (the entry's
 * hash), so a test costs one memory access. A database opened from a
 * checkpoint rebuilds it from the restored keys when they are few
 * (RN__FILTER_SCAN_MAX bytes of SST files), else runs without it. */

struct rn__filter {
    uint64_t *w; /* NULL: off (every key may exist) */
    uint64_t mask; /* words - 1 */
};

#define RN__FILTER_SCAN_MAX (64ULL << 20)

static inline uint64_t rn__filter_bits(uint64_t h)
{
    return (1ULL << ((h >> 40) & 63)) | (1ULL << ((h >> 46) & 63));
}

static inline void rn__filter_add(struct rn__filter *f, uint64_t h)
{
    if (f->w) f->w[h & f->mask] |= rn__filter_bits(h);
}

static inline int rn__filter_may(const struct rn__filter *f, uint64_t h)
{
    if (!f->w) return 1;
    uint64_t b = rn__filter_bits(h);
    return (f->w[h & f->mask] & b) == b;
}

/* A filter of about cache/64 bytes (1-16 MiB): a 64 MiB cache gets 8 M bits,
 * under 5 % false "maybe"s until a million keys have been written. */
static void rn__filter_init(struct rn__filter *f, size_t cache_cap)
{
    size_t bytes = 1u << 20;
    while (bytes < cache_cap / 64 && bytes < (16u << 20)) bytes <<= 1;
    f->w = rn__table_alloc(bytes, 0);
    f->mask = bytes / 8 - 1;
}

static void rn__filter_free(struct rn__filter *f)
{
    if (f->w) rn__table_free(f->w, (f->mask + 1) * sizeof *f->w);
    f->w = NULL;
}

#include "rn_fs_int.h"

/* Under ASan a freed block is poisoned until it is handed out again, so a use
 * after rn__vp_put is reported as it would be after free(). */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define RN__SLAB_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define RN__SLAB_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define RN__SLAB_POISON(p, n) ((void)(p), (void)(n))
#define RN__SLAB_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* ---- the memory pool: entries and values --------------------------------------------
 * Cache entries, timer entries and the cache's values come and go once per
 * request in a pipeline like the joiner's. Each is a block of one of
 * RN__VP_NCLASS size classes (16-byte steps up to 128 bytes, then four per
 * doubling up to RN__VP_MAX; a larger value is malloc'd), carved from 2 MiB
 * chunks mapped for the database (rn__big_map) and kept on a free list of its
 * class when freed. From malloc, a request's ~1 KiB value and its two entries
 * cost a malloc, a realloc and a free each, and every new page of a thread's
 * malloc heap an mprotect() with its TLB shootdown. The chunks are unmapped when the database closes (memory is not given back
 * before: what the cache held once, it may hold again). Owning thread only.
 *
 * Under ASan every buffer is followed by a poisoned red zone and a freed or
 * not yet carved one is poisoned, so overflows and uses after free are
 * reported as with malloc. */
#define RN__VP_MAX 65536
#define RN__VP_NCLASS 44 /* 8 classes to 128, then 4 per doubling: 128 < n <= 65536 */
#define RN__VP_CHUNK RN__BIG_UNIT
#if defined(__SANITIZE_ADDRESS__)
#define RN__VP_RZ 16
#else
#define RN__VP_RZ 0
#endif

struct rn__vpool {
    void *free[RN__VP_NCLASS]; /* first word of each free buffer: the next one */
    char *cur, *end;            /* the rest of the newest chunk */
    void *chunks;               /* first word of each chunk: the next one */
    size_t mapped;
};

/* The class of a buffer of at least n (1..RN__VP_MAX) bytes, and its size. */
static inline unsigned rn__vp_class(size_t n, size_t *size)
{
    if (n <= 128) {
        size_t c = (n + 15) >> 4;
        *size = c << 4;
        return (unsigned)c - 1;
    }
    unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)(n - 1)); /* >= 7 */
    size_t q = (n - 1) >> (b - 2);                                                /* 4..7 */
    *size = (q + 1) << (b - 2);
    return 8 + (b - 7) * 4 + (unsigned)(q - 4);
}

/* A fresh chunk. */
static void rn__vp_map(struct rn__vpool *vp)
{
    char *c = rn__big_map(RN__VP_CHUNK, 0);
    memcpy(c, &vp->chunks, sizeof vp->chunks);
    vp->chunks = c;
    vp->mapped += RN__VP_CHUNK;
    vp->cur = c + 64;
    vp->end = c + RN__VP_CHUNK;
    RN__SLAB_POISON(vp->cur, (size_t)(vp->end - vp->cur));
}

/* A buffer of at least n bytes (n > 0); *cap gets its size. */
static char *rn__vp_get(struct rn__vpool *vp, size_t n, uint32_t *cap)
{
    if (RN_UNLIKELY(n > RN__VP_MAX)) {
        *cap = (uint32_t)n;
        return rn_xmalloc(n);
    }
    size_t size;
    unsigned c = rn__vp_class(n, &size);
    char *p = vp->free[c];
    if (p) {
        RN__SLAB_UNPOISON(p, sizeof vp->free[c]);
        memcpy(&vp->free[c], p, sizeof vp->free[c]);
    } else {
        if (RN_UNLIKELY((size_t)(vp->end - vp->cur) < size + RN__VP_RZ)) rn__vp_map(vp);
        p = vp->cur;
        vp->cur += size + RN__VP_RZ;
    }
    RN__SLAB_UNPOISON(p, size);
    *cap = (uint32_t)size;
    return p;
}

static void rn__vp_put(struct rn__vpool *vp, char *p, uint32_t cap)
{
    if (!p) return;
    if (RN_UNLIKELY(cap > RN__VP_MAX)) {
        free(p);
        return;
    }
    size_t size;
    unsigned c = rn__vp_class(cap, &size);
    memcpy(p, &vp->free[c], sizeof vp->free[c]);
    vp->free[c] = p;
    RN__SLAB_POISON(p, size);
}

/* A zeroed block of n bytes (n <= RN__VP_MAX), for an entry. */
static void *rn__vp_zget(struct rn__vpool *vp, size_t n)
{
    uint32_t cap;
    void *p = rn__vp_get(vp, n, &cap);
    memset(p, 0, n);
    return p;
}

/* Unmaps every chunk; values over RN__VP_MAX are the caller's to free. */
static void rn__vp_destroy(struct rn__vpool *vp)
{
    for (char *c = vp->chunks, *next; c; c = next) {
        RN__SLAB_UNPOISON(c, sizeof next);
        memcpy(&next, c, sizeof next);
        RN__SLAB_UNPOISON(c, RN__VP_CHUNK);
        rn__big_unmap(c, RN__VP_CHUNK);
    }
    memset(vp, 0, sizeof *vp);
}

#define RN__ENTRY_OVERHEAD 96 /* bytes charged per cache entry besides its value */
#define RN__WB_MAX_OPS 4096
#define RN__RANGE_KGS 1024
#define RN__PF_LAG 4 /* prefetch: entries are fetched this many hints after their slots */

enum { RN__KIND_VALUE = 1, RN__KIND_LIST = 2, RN__KIND_MAP = 3 };

struct rn__ckey {
    uint32_t sid;
    uint32_t zero; /* keeps the key free of padding bytes for hashing */
    uint64_t key;
    uint64_t ns;
};

struct rn__centry {
    struct rn__ckey k; /* first: the index compares it there */
    uint64_t h;        /* hash of k */
    uint64_t touch;    /* the cache's access clock when last used */
    int64_t due;       /* the earliest timer of its key and namespace when one was
                        * registered while it was cached (an eviction hint), or 0 */
    uint32_t saved_gen; /* checkpoint generation that holds this value; 0: modified since */
    uint8_t dirty;
    uint8_t absent;
    uint8_t pending; /* evicted: the value waits in the plain batch, dprev/dnext link
                      * the pending list, and the entry stays findable until it is written */
    /* What choosing a victim reads (rn__victim) is above: the first 56 bytes. */
    struct rn__centry *dprev, *dnext; /* dirty list, or the pending list when pending */
    char *val;
    uint32_t len, cap;
};

struct rn__tkey {
    uint32_t sid;
    uint32_t zero;
    int64_t ts;
    uint64_t key;
    uint64_t ns;
};

struct rn__tentry {
    struct rn__tkey k; /* first, as in rn__centry */
    uint64_t h;
    uint8_t persisted;
    uint8_t dead; /* deleted (rn_timer_delete): out of the set, left in the heap until it
                   * reaches the top */
};

/* A heap slot: the timer's time beside its entry, so that sifting compares
 * within the heap's array and follows an entry only on a tie. */
struct rn__hslot {
    int64_t ts;
    struct rn__tentry *t;
};

/* A registration waiting for its look-up in the timer set. The set's slot
 * of a new timer is a cache miss (the set is as large as the timers that
 * wait); looking it up RN__DEFER registrations later, after a prefetch, lets
 * the miss overlap with the operator's work. The look-ups happen in
 * registration order, and before anything reads the timers (pop_timer when
 * one of them could fire, delete, a checkpoint, the end of each batch and of
 * each watermark's timers), so nothing can tell them from immediate ones. */
#define RN__DEFER 16
struct rn__tdefer {
    struct rn__tkey k;
    uint64_t h;
};

/* A sorted run of timers: a ring of cap (a power of two) slots, n of them
 * used from head on. */
#define RN__RUNS 4
struct rn__run {
    struct rn__hslot *a;
    size_t head, n, cap;
};

struct rn__restored_timer {
    struct rn__tkey k;
};

struct rn_state {
    struct rn_op_state *os;
    uint32_t sid;
    int kind;
    struct rn_state *next;
    int clears; /* has (or had) clears at a time (rn_value_clear_at): timers under its sid */
};

struct rn_op_state {
    struct rn_statedb *db;
    char *map_val; /* the last map value read (borrowed by the caller) */
    size_t map_val_len;
    char *op_id;
    uint32_t timer_sid;
    uint32_t max_parallelism;
    uint64_t cur_key;
    /* Every timer with ts < fired_below that was in the heap has fired: the
     * next checkpoint deletes them from RocksDB as one range per key group
     * (deleted_below: the bound of the last such range) instead of one
     * delete per fired timer (when the thread owns at most RN__RANGE_KGS key
     * groups; else fired timers are deleted one by one). */
    int64_t fired_below, deleted_below;
    int range_deletes;
    struct rn__index tset;    /* the timers, for de-duplication */
    /* The timers in (ts, key, ns) order: RN__RUNS sorted runs (a timer
     * registered no earlier than a run's last one is appended to it: most
     * timers, since operators register them as event time goes on) and a
     * 4-ary min-heap for the rest. The earliest timer is the least of the
     * runs' heads and the heap's top (top_src says which: a run's index,
     * RN__RUNS for the heap, -1 when there is none). Dead entries may be in
     * either, never at the top. The heap is inside heap_mem, placed so that
     * the four children of a slot share one 64-byte line. */
    struct rn__run runs[RN__RUNS];
    int top_src;
    struct rn__hslot *heap;
    void *heap_mem;
    size_t heap_n, heap_cap;
    size_t n_live; /* timers in the set (runs and heap less their dead entries) */
    /* Registrations not yet looked up in the set (rn_timer_register): a ring
     * of RN__DEFER in registration order, each one's set slot prefetched when
     * it came; defer_min is the earliest time among them. */
    struct rn__tdefer defer[RN__DEFER];
    unsigned defer_head, n_defer;
    int64_t defer_min;
    struct rn_state *states;
    _Atomic uint64_t n_timers;
    /* State format (rn_op_type.state_version): what the restored checkpoint
     * holds and what the operator writes; states declared while found <
     * version go through migrate once. */
    struct rn_op *op;
    uint32_t found_version, version;
    rn__migrate_fn migrate;
};

struct rn_statedb {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *bbto;
    rocksdb_cache_t *bcache;
    rocksdb_column_family_handle_t *cf[2]; /* default, timers */
    rocksdb_writeoptions_t *wo;
    rocksdb_readoptions_t *ro;
    rocksdb_writebatch_wi_t *wb; /* indexed, for map state: reads see what is not yet written */
    size_t wb_ops;
    /* Plain batch for evicted cache entries and deletes of fired timers: nothing
     * reads it (evicted entries stay in the cache's table, `pending`, until it
     * is written), so it costs an append where the indexed one costs a skip-list
     * insert. Written together with wb. */
    rocksdb_writebatch_t *pwb;
    size_t pwb_ops;
    struct rn__centry *pend_head;
    size_t n_pending;
    struct rn__pend_key *psort; /* the pending entries in key order, when written */
    size_t psort_cap;
    char *dir;
    uint32_t max_parallelism, kg_start, kg_end;

    struct rn__index cache;   /* the cache's entries */
    struct rn__vpool pool;    /* where entries (also timers') and values come from */
    struct rn__filter written; /* value/list keys that may be in RocksDB */
    /* Prefetch hints (rn__prefetch): the hashes of the last RN__PF_LAG keys
     * whose slots were fetched, oldest at pf_pos % RN__PF_LAG. */
    uint64_t pf_ring[RN__PF_LAG];
    unsigned pf_pos;
    struct rn__centry *last;  /* the entry found last: a get and then a put of one key
                               * look it up once */
    size_t cache_bytes, cache_cap;
    /* Eviction (rn__victim): the access clock, the watermark the operators
     * last saw, and how many accesses one millisecond of event time brings
     * (measured between wm0/clock0 and now), to weigh a timer's distance
     * against an entry's idle time; the sampling's random numbers. */
    uint64_t clock, clock0;
    int64_t wm, wm0;
    double acc_per_ms;
    struct rn_rand rng;

    struct rn_op_state **ops;
    size_t n_ops;
    struct rn__restored_timer *restored;
    size_t n_restored;

    _Atomic uint64_t f_entries, f_bytes, f_hits, f_misses, f_evictions, f_reads;
    /* The working database failed (a read or write error): every later call
     * fails too, and err says what happened first. Set on the owning thread
     * only; rn__statedb_error() reads it there. */
    int failed;
    char err[512];

    struct rn__centry *dirty_head; /* entries whose value RocksDB may not have */
    size_t n_dirty;

    /* Asynchronous checkpoints: the thread snapshots (copies what RocksDB
     * lacks into `delta`) and hands it to `bg`, which writes it and takes the
     * RocksDB checkpoint. Meanwhile the thread's own writes wait in `wb`
     * (held), so RocksDB stays exactly as it was at the barrier plus delta. */
    pthread_t bg;
    int bg_started;
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cv;
    int bg_state; /* 0 idle, 1 working, 2 done, 3 failed, 4 stop */
    char *bg_dir;
    rocksdb_writebatch_t *delta;
    char bg_err[512];
    int bg_db_err;     /* the failure was the working database's, not only the checkpoint's */
    int held;          /* a checkpoint is being written: keep wb to ourselves */
    uint32_t gen;      /* generation of the checkpoint in flight / last begun */
    uint32_t durable;  /* last generation fully written */
};

/* ---- key encoding ----------------------------------------------------------- */

static inline void rn__be16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}
static inline void rn__be32(unsigned char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8) p[i] = (unsigned char)v;
}
static inline void rn__be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (unsigned char)v;
}
static inline uint64_t rn__get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}
static inline uint32_t rn__get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#define RN__SKEY_LEN 22
#define RN__TKEY_LEN 30
#define RN__MAP_PREFIX 14 /* [kg:2][sid:4][key:8] before a map entry's own key */

static void rn__state_key(unsigned char out[RN__SKEY_LEN], const struct rn__ckey *k, uint32_t maxp)
{
    rn__be16(out, (uint16_t)rn_key_group(k->key, maxp));
    rn__be32(out + 2, k->sid);
    rn__be64(out + 6, k->key);
    rn__be64(out + 14, k->ns);
}

static void rn__timer_key(unsigned char out[RN__TKEY_LEN], const struct rn__tkey *k, uint32_t maxp)
{
    rn__be16(out, (uint16_t)rn_key_group(k->key, maxp));
    rn__be32(out + 2, k->sid);
    rn__be64(out + 6, (uint64_t)k->ts ^ (1ULL << 63));
    rn__be64(out + 14, k->key);
    rn__be64(out + 22, k->ns);
}

/* Deletes the timers under sid before `below`, one range per key group,
 * into the checkpoint's delta batch. */
static void rn__timer_ranges(struct rn_statedb *s, uint32_t sid, int64_t below)
{
    unsigned char lo[6], hi[14];
    for (uint32_t kg = s->kg_start; kg < s->kg_end; kg++) {
        rn__be16(lo, (uint16_t)kg);
        rn__be32(lo + 2, sid);
        memcpy(hi, lo, sizeof lo);
        rn__be64(hi + 6, (uint64_t)below ^ (1ULL << 63));
        rocksdb_writebatch_delete_range_cf(s->delta, s->cf[1], (const char *)lo, sizeof lo,
                                           (const char *)hi, sizeof hi);
    }
}

static uint32_t rn__sid(const char *op_id, const char *name, int kind)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s/%s/%d", op_id, name, kind);
    return (uint32_t)rn_hash64(buf, (size_t)(n < 0 ? 0 : RN_MIN((size_t)n, sizeof buf - 1)));
}

/* ---- opening ------------------------------------------------------------------ */

static int rn__rocks_err(char *err, char *errbuf, size_t errlen, const char *what)
{
    rn_errf(errbuf, errlen, "state: %s: %s", what, err ? err : "unknown RocksDB error");
    rocksdb_free(err);
    return RN_ESTATE;
}

/* Marks the working database failed (first message wins) and returns
 * RN_ESTATE. Takes RocksDB's message `rerr` (freed here; NULL when the
 * failure is not RocksDB's). */
static int rn__fail(struct rn_statedb *s, char *rerr, const char *fmt, ...) RN_PRINTF(3, 4);
static int rn__fail(struct rn_statedb *s, char *rerr, const char *fmt, ...)
{
    if (!s->failed) {
        char what[300];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        if (rerr)
            snprintf(s->err, sizeof s->err, "state: %s in %s: %s", what, s->dir, rerr);
        else
            snprintf(s->err, sizeof s->err, "state: %s in %s", what, s->dir);
        s->failed = 1;
    }
    rocksdb_free(rerr);
    return RN_ESTATE;
}

/* ---- fault injection (tests) --------------------------------------------------
 * RUNNEL_FAULT=state:read:<N> makes the N-th read of RocksDB in the process (a
 * cache miss, also one the written-keys filter answers; a map get or a map
 * iteration; counted from 1 over every worker thread) fail as a RocksDB error would; state:write:<N> does the same to the
 * N-th write of a batch to RocksDB. For tests of the failure path only. */

static _Atomic int64_t rn__fault_read_at = -1, rn__fault_write_at = -1;
static _Atomic int64_t rn__fault_reads, rn__fault_writes;
static pthread_once_t rn__fault_once = PTHREAD_ONCE_INIT;

static void rn__fault_init(void)
{
    const char *f = getenv("RUNNEL_FAULT");
    if (!f || strncmp(f, "state:", 6) != 0) return;
    f += 6;
    if (strncmp(f, "read:", 5) == 0) rn__fault_read_at = strtoll(f + 5, NULL, 10);
    else if (strncmp(f, "write:", 6) == 0) rn__fault_write_at = strtoll(f + 6, NULL, 10);
}

/* Counts one read (or write) and returns an injected RocksDB-style error
 * (malloc'd, for rocksdb_free) when it is the one to fail, else NULL. */
static char *rn__fault(int write)
{
    _Atomic int64_t *at = write ? &rn__fault_write_at : &rn__fault_read_at;
    if (atomic_load_explicit(at, memory_order_relaxed) < 0) return NULL;
    int64_t n = atomic_fetch_add(write ? &rn__fault_writes : &rn__fault_reads, 1) + 1;
    if (n != atomic_load_explicit(at, memory_order_relaxed)) return NULL;
    char *e = malloc(96);
    if (e) snprintf(e, 96, "IO error: injected fault (RUNNEL_FAULT=state:%s:%lld)",
                    write ? "write" : "read", (long long)n);
    return e;
}

static rocksdb_options_t *rn__options(struct rn_statedb *s, const struct rn_state_cfg *cfg)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    rocksdb_options_set_write_buffer_size(o, (size_t)cfg->write_buffer);
    /* One budget for the memtables of both column families (`default` and
     * `timers`): without it each may hold up to write_buffer, and a full one
     * stays while it is flushed. RocksDB flushes when the mutable memtables
     * reach 7/8 of this, or when all of them reach it. */
    rocksdb_options_set_db_write_buffer_size(o, (size_t)cfg->write_buffer);
    rocksdb_options_set_max_background_jobs(o, 2);
    rocksdb_options_set_compression(o, rocksdb_lz4_compression);
    /* A bloom filter on the memtable too: most reads of a pipeline are for keys
     * that are not there yet (a new request, a new user), and without it each
     * walks the memtable's skip list. */
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(o, 0.1);
    rocksdb_options_set_memtable_whole_key_filtering(o, 1);
    /* Fatal messages only: on a full disk RocksDB's own LOG file fails too,
     * and an error message appended to it after that aborts the process
     * (RocksDB 7.8 asserts in its logger). Errors reach us as statuses. */
    rocksdb_options_set_info_log_level(o, 4);
    rocksdb_options_set_keep_log_file_num(o, 2);
    s->bbto = rocksdb_block_based_options_create();
    s->bcache = rocksdb_cache_create_lru((size_t)cfg->block_cache);
    rocksdb_block_based_options_set_block_cache(s->bbto, s->bcache);
    rocksdb_block_based_options_set_filter_policy(s->bbto, rocksdb_filterpolicy_create_bloom(10));
    rocksdb_options_set_block_based_table_factory(o, s->bbto);
    return o;
}

static int rn__open_db(struct rn_statedb *s, const char *dir, char *errbuf, size_t errlen)
{
    const char *names[2] = {"default", "timers"};
    const rocksdb_options_t *cf_opts[2] = {s->opts, s->opts};
    char *err = NULL;
    s->db = rocksdb_open_column_families(s->opts, dir, 2, names, cf_opts, s->cf, &err);
    if (err) return rn__rocks_err(err, errbuf, errlen, "open");
    return 0;
}

/* Copies key groups [lo, hi) of both column families from checkpoint `from`. */
static int rn__copy_range(struct rn_statedb *s, const char *from, uint32_t lo, uint32_t hi,
                          char *errbuf, size_t errlen)
{
    const char *names[2] = {"default", "timers"};
    const rocksdb_options_t *cf_opts[2] = {s->opts, s->opts};
    rocksdb_column_family_handle_t *cfs[2];
    char *err = NULL;
    rocksdb_t *old = rocksdb_open_for_read_only_column_families(s->opts, from, 2, names, cf_opts,
                                                                cfs, 0, &err);
    if (err) return rn__rocks_err(err, errbuf, errlen, "open checkpoint for restore");
    unsigned char lo_key[2], hi_key[2];
    rn__be16(lo_key, (uint16_t)lo);
    rn__be16(hi_key, (uint16_t)hi);
    int rc = 0;
    for (int c = 0; c < 2 && rc == 0; c++) {
        rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
        /* hi may be 65536 (past every 2-byte prefix): no bound then. */
        if (hi <= 0xffff) rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi_key, 2);
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(old, ro, cfs[c]);
        rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
        size_t ops = 0;
        for (rocksdb_iter_seek(it, (const char *)lo_key, 2); rocksdb_iter_valid(it);
             rocksdb_iter_next(it)) {
            size_t kl, vl;
            const char *k = rocksdb_iter_key(it, &kl);
            const char *v = rocksdb_iter_value(it, &vl);
            rocksdb_writebatch_put_cf(wb, s->cf[c], k, kl, v, vl);
            if (++ops == RN__WB_MAX_OPS) {
                rocksdb_write(s->db, s->wo, wb, &err);
                rocksdb_writebatch_clear(wb);
                ops = 0;
                if (err) break;
            }
        }
        if (!err) rocksdb_iter_get_error(it, &err);
        if (!err && ops) rocksdb_write(s->db, s->wo, wb, &err);
        if (err) rc = rn__rocks_err(err, errbuf, errlen, "restore key groups");
        rocksdb_writebatch_destroy(wb);
        rocksdb_iter_destroy(it);
        rocksdb_readoptions_destroy(ro);
    }
    for (int c = 0; c < 2; c++) rocksdb_column_family_handle_destroy(cfs[c]);
    rocksdb_close(old);
    return rc;
}

/* Loads every timer of this database into s->restored. */
static int rn__load_timers(struct rn_statedb *s, char *errbuf, size_t errlen)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[1]);
    size_t cap = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl;
        const unsigned char *k = (const unsigned char *)rocksdb_iter_key(it, &kl);
        if (kl != RN__TKEY_LEN) continue;
        if (s->n_restored == cap) {
            cap = cap ? cap * 2 : 1024;
            s->restored = rn_xrealloc(s->restored, cap * sizeof *s->restored);
        }
        struct rn__tkey *t = &s->restored[s->n_restored++].k;
        t->sid = rn__get_be32(k + 2);
        t->zero = 0;
        t->ts = (int64_t)(rn__get_be64(k + 6) ^ (1ULL << 63));
        t->key = rn__get_be64(k + 14);
        t->ns = rn__get_be64(k + 22);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) return rn__rocks_err(err, errbuf, errlen, "load timers");
    return 0;
}

/* After a restore: the filter gets every restored value/list key, or is
 * turned off when reading them all would slow the restore (large state). */
static int rn__filter_restore(struct rn_statedb *s, char *errbuf, size_t errlen)
{
    char *v = rocksdb_property_value_cf(s->db, s->cf[0], "rocksdb.total-sst-files-size");
    uint64_t sst = v ? strtoull(v, NULL, 10) : UINT64_MAX;
    rocksdb_free(v);
    char *mv = rocksdb_property_value_cf(s->db, s->cf[0], "rocksdb.cur-size-all-mem-tables");
    sst += mv ? strtoull(mv, NULL, 10) : 0;
    rocksdb_free(mv);
    if (!v || sst > RN__FILTER_SCAN_MAX) {
        rn__filter_free(&s->written);
        return 0;
    }
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[0]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl;
        const unsigned char *k = (const unsigned char *)rocksdb_iter_key(it, &kl);
        if (kl != RN__SKEY_LEN) continue; /* a map entry: never read through the cache */
        struct rn__ckey ck = {rn__get_be32(k + 2), 0, rn__get_be64(k + 6), rn__get_be64(k + 14)};
        rn__filter_add(&s->written, rn__ix_hash(&ck, sizeof ck));
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) return rn__rocks_err(err, errbuf, errlen, "read the restored keys");
    return 0;
}

struct rn_statedb *rn__statedb_open(const struct rn_state_cfg *cfg, const char *dir,
                                    uint32_t kg_start, uint32_t kg_end, uint32_t max_parallelism,
                                    const struct rn_state_source *src, size_t n_src, char *errbuf,
                                    size_t errlen)
{
    pthread_once(&rn__fault_once, rn__fault_init);
    struct rn_statedb *s = rn_xcalloc(1, sizeof *s);
    s->dir = rn_xstrdup(dir);
    s->max_parallelism = max_parallelism;
    s->kg_start = kg_start;
    s->kg_end = kg_end;
    s->cache_cap = (size_t)cfg->cache_size;
    if (rn_fs_rmtree(dir, errbuf, errlen)) goto fail;
    s->opts = rn__options(s, cfg);
    s->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_disable_WAL(s->wo, 1);
    s->ro = rocksdb_readoptions_create();
    s->wb = rocksdb_writebatch_wi_create(0, 1);
    s->pwb = rocksdb_writebatch_create();
    rn_rand_seed(&s->rng, 0x5eed, kg_start);
    int whole = n_src == 1 && src[0].kg_start == kg_start && src[0].kg_end == kg_end;
    if (whole) {
        /* Same key groups as the checkpoint: link its SST files, copy the rest. */
        if (rn_fs_clone_dir(src[0].dir, dir, ".sst", errbuf, errlen)) goto fail;
        if (rn__open_db(s, dir, errbuf, errlen)) goto fail;
    } else {
        if (rn_fs_mkdirs(dir, errbuf, errlen)) goto fail;
        if (rn__open_db(s, dir, errbuf, errlen)) goto fail;
        for (size_t i = 0; i < n_src; i++) {
            uint32_t lo = RN_MAX(kg_start, src[i].kg_start), hi = RN_MIN(kg_end, src[i].kg_end);
            if (lo >= hi) continue;
            if (rn__copy_range(s, src[i].dir, lo, hi, errbuf, errlen)) goto fail;
        }
    }
    if (n_src && rn__load_timers(s, errbuf, errlen)) goto fail;
    rn__filter_init(&s->written, s->cache_cap);
    if (n_src && rn__filter_restore(s, errbuf, errlen)) goto fail;
    return s;
fail:
    rn__statedb_close(s);
    return NULL;
}

static void rn__cache_free_all(struct rn_statedb *s)
{
    for (size_t i = 0; s->cache.slots && i <= s->cache.mask; i++) {
        struct rn__centry *e = s->cache.slots[i].p;
        if (e && e->cap > RN__VP_MAX) free(e->val);
    }
    rn__ix_free(&s->cache);
    rn__vp_destroy(&s->pool);
    s->pend_head = NULL;
    s->n_pending = 0;
    s->last = NULL;
    s->cache_bytes = 0;
}

void rn__statedb_close(struct rn_statedb *s)
{
    if (!s) return;
    if (s->bg_started) {
        pthread_mutex_lock(&s->bg_mu);
        while (s->bg_state == 1) pthread_cond_wait(&s->bg_cv, &s->bg_mu);
        s->bg_state = 4;
        pthread_cond_broadcast(&s->bg_cv);
        pthread_mutex_unlock(&s->bg_mu);
        pthread_join(s->bg, NULL);
        pthread_mutex_destroy(&s->bg_mu);
        pthread_cond_destroy(&s->bg_cv);
        rocksdb_writebatch_destroy(s->delta);
    }
    free(s->bg_dir);
    free(s->psort);
    rn__cache_free_all(s);
    if (s->db) {
        for (int c = 0; c < 2; c++)
            if (s->cf[c]) rocksdb_column_family_handle_destroy(s->cf[c]);
        rocksdb_close(s->db);
    }
    if (s->wb) rocksdb_writebatch_wi_destroy(s->wb);
    if (s->pwb) rocksdb_writebatch_destroy(s->pwb);
    if (s->wo) rocksdb_writeoptions_destroy(s->wo);
    if (s->ro) rocksdb_readoptions_destroy(s->ro);
    if (s->opts) rocksdb_options_destroy(s->opts);
    if (s->bbto) rocksdb_block_based_options_destroy(s->bbto);
    if (s->bcache) rocksdb_cache_destroy(s->bcache);
    rn__filter_free(&s->written);
    free(s->ops);
    free(s->restored);
    free(s->dir);
    free(s);
}

/* ---- dirty list -------------------------------------------------------------------- */

/* An entry is clean when RocksDB (or a checkpoint being written) has its
 * value: either never dirtied, or saved by a checkpoint that completed. */
static inline int rn__effectively_clean(const struct rn_statedb *s, const struct rn__centry *e)
{
    return !e->dirty || (e->saved_gen && e->saved_gen <= s->durable);
}

static void rn__dirty_unlink(struct rn_statedb *s, struct rn__centry *e)
{
    if (!e->dirty) return;
    if (e->dprev) e->dprev->dnext = e->dnext;
    else s->dirty_head = e->dnext;
    if (e->dnext) e->dnext->dprev = e->dprev;
    e->dprev = e->dnext = NULL;
    e->dirty = 0;
    s->n_dirty--;
}

/* The entry's value changed. */
static void rn__mark_dirty(struct rn_statedb *s, struct rn__centry *e)
{
    e->saved_gen = 0;
    if (e->dirty) return;
    e->dirty = 1;
    e->dprev = NULL;
    e->dnext = s->dirty_head;
    if (s->dirty_head) s->dirty_head->dprev = e;
    s->dirty_head = e;
    s->n_dirty++;
}

/* ---- write batch ---------------------------------------------------------------- */

static void rn__pending_unlink(struct rn_statedb *s, struct rn__centry *e)
{
    if (e->dprev) e->dprev->dnext = e->dnext;
    else s->pend_head = e->dnext;
    if (e->dnext) e->dnext->dprev = e->dprev;
    e->dprev = e->dnext = NULL;
    e->pending = 0;
    s->n_pending--;
}

/* Removes e (off the dirty and pending lists) from the table and frees it. */
static void rn__drop(struct rn_statedb *s, struct rn__centry *e)
{
    rn__ix_del(&s->cache, e->h, e);
    if (s->last == e) s->last = NULL;
    rn__vp_put(&s->pool, e->val, e->cap);
    rn__vp_put(&s->pool, (char *)e, sizeof *e);
}

/* The pending entries' values are in RocksDB now (or the database failed):
 * they leave the cache. */
static void rn__pending_free(struct rn_statedb *s)
{
    for (struct rn__centry *e = s->pend_head, *next; e; e = next) {
        next = e->dnext;
        rn__drop(s, e);
    }
    s->pend_head = NULL;
    s->n_pending = 0;
}

struct rn__pend_key {
    unsigned char k[RN__SKEY_LEN];
    struct rn__centry *e;
};

static int rn__pend_cmp(const void *a, const void *b)
{
    return memcmp(a, b, RN__SKEY_LEN);
}

/* Puts the pending entries' values (or deletes) into the plain batch in key
 * order: RocksDB's memtable inserts each key starting from where the one
 * before it went, so a sorted batch walks the skip list's lower levels only. */
static void rn__pending_batch(struct rn_statedb *s)
{
    if (s->n_pending > s->psort_cap) {
        s->psort_cap = RN_MAX(s->n_pending, (size_t)RN__WB_MAX_OPS);
        free(s->psort);
        s->psort = rn_xmalloc(s->psort_cap * sizeof *s->psort);
    }
    size_t n = 0;
    for (struct rn__centry *e = s->pend_head; e; e = e->dnext) {
        rn__state_key(s->psort[n].k, &e->k, s->max_parallelism);
        s->psort[n++].e = e;
    }
    qsort(s->psort, n, sizeof *s->psort, rn__pend_cmp);
    for (size_t i = 0; i < n; i++) {
        struct rn__centry *e = s->psort[i].e;
        const char *k = (const char *)s->psort[i].k;
        if (e->absent) {
            rocksdb_writebatch_delete_cf(s->pwb, s->cf[0], k, RN__SKEY_LEN);
        } else {
            rn__filter_add(&s->written, e->h);
            rocksdb_writebatch_put_cf(s->pwb, s->cf[0], k, RN__SKEY_LEN, e->val, e->len);
        }
    }
}

/* Writes both batches to RocksDB, unless a checkpoint holds them. */
static int rn__wb_write(struct rn_statedb *s)
{
    if ((!s->wb_ops && !s->pwb_ops) || s->held) return 0;
    size_t n = s->wb_ops + s->pwb_ops;
    if (s->n_pending) rn__pending_batch(s);
    char *err = rn__fault(1);
    if (!err && s->wb_ops) rocksdb_write_writebatch_wi(s->db, s->wo, s->wb, &err);
    if (!err && s->pwb_ops) rocksdb_write(s->db, s->wo, s->pwb, &err);
    rocksdb_writebatch_wi_clear(s->wb);
    rocksdb_writebatch_clear(s->pwb);
    s->wb_ops = s->pwb_ops = 0;
    rn__pending_free(s);
    if (err) return rn__fail(s, err, "writing a batch of %zu changes", n);
    return 0;
}

static inline void rn__batch_grew(struct rn_statedb *s)
{
    if (s->wb_ops + s->pwb_ops >= RN__WB_MAX_OPS) rn__wb_write(s);
}

/* An evicted entry that RocksDB lacks: it waits on the pending list (still in
 * the table, so reads find it) until the plain batch is written, which takes
 * its value (or its delete) then (rn__pending_batch). */
static void rn__entry_write_back(struct rn_statedb *s, struct rn__centry *e)
{
    rn__dirty_unlink(s, e);
    e->pending = 1;
    e->dprev = NULL;
    e->dnext = s->pend_head;
    if (s->pend_head) s->pend_head->dprev = e;
    s->pend_head = e;
    s->n_pending++;
    s->pwb_ops++;
}

/* ---- cache ---------------------------------------------------------------------- */

/* Removes a cached, not pending entry at once. */
static void rn__forget(struct rn_statedb *s, struct rn__centry *e)
{
    rn__dirty_unlink(s, e);
    s->cache_bytes -= e->cap + RN__ENTRY_OVERHEAD;
    rn__drop(s, e);
    atomic_store_explicit(&s->f_bytes, s->cache_bytes, memory_order_relaxed);
    atomic_store_explicit(&s->f_entries, s->cache.n - s->n_pending, memory_order_relaxed);
}

/* How long until e is likely used again, in accesses of the cache (larger:
 * evicted first). Without a known timer, its idle time (what LRU goes by).
 * With one, the distance to that timer (converted from event time at the
 * measured rate) once the entry has been idle for an eighth of it
 * (RN__IDLE_WEIGHT): state that waits for its timer is evicted in the order
 * its timer fires last, and the entries whose timers fire soonest stay.
 * Least-recently-used alone evicts exactly those (the oldest open requests
 * are the next to close), so when the open requests outgrow the cache by
 * little, nearly every one was written out and read back to be closed; this
 * way the part that does not fit is, and the rest closes from memory. */
#define RN__IDLE_WEIGHT 8
#define RN__EVICT_SAMPLES 8

static inline uint64_t rn__idle_score(const struct rn_statedb *s, const struct rn__centry *e)
{
    uint64_t idle = (s->clock - e->touch) * RN__IDLE_WEIGHT;
    if (e->due > s->wm && s->acc_per_ms > 0) {
        double eta = (double)(e->due - s->wm) * s->acc_per_ms;
        if (eta < (double)idle) idle = (uint64_t)eta;
    }
    return idle;
}

/* The entry to evict: of RN__EVICT_SAMPLES entries at random places of the
 * table (not pending, not keep), the one with the highest rn__idle_score
 * times the bytes it holds (a miss costs one read whatever the size, and a
 * large value makes room for several small ones), as
 * Redis approximates LRU: no list to keep in order on every access, and a
 * choice close to the exact one (the best of 8 is in the top 11 % of the
 * cache on average). NULL when no such entry exists. */
static struct rn__centry *rn__victim(struct rn_statedb *s, const struct rn__centry *keep)
{
    size_t candidates = s->cache.n - s->n_pending;
    if (keep && !keep->pending) candidates--;
    if (!candidates || !s->cache.slots) return NULL;
    /* The samples' slots, then their entries, are loaded together: two
     * waits for memory instead of one per slot and one per entry. */
    size_t at[RN__EVICT_SAMPLES];
    struct rn__centry *e[RN__EVICT_SAMPLES];
    size_t n = RN_MIN(candidates, (size_t)RN__EVICT_SAMPLES);
    for (size_t j = 0; j < n; j++) {
        at[j] = rn_rand_next(&s->rng) & s->cache.mask;
        RN__PREFETCH(&s->cache.slots[at[j]]);
    }
    for (size_t j = 0; j < n; j++) {
        /* The first entry at or after the place (most tables are over a
         * third full: a few slots of one line). */
        size_t i = at[j];
        while (!s->cache.slots[i].p) i = (i + 1) & s->cache.mask;
        at[j] = i;
        e[j] = s->cache.slots[i].p;
        RN__PREFETCH(e[j]);
        RN__PREFETCH((const char *)e[j] + 55);
        RN__PREFETCH((const char *)e[j] + sizeof *e[j] - 1);
    }
    struct rn__centry *best = NULL;
    double best_score = 0;
    for (size_t j = 0; j < n; j++) {
        /* A pending entry or keep: the next candidate after it (there is one). */
        for (size_t i = at[j]; e[j]->pending || e[j] == keep;) {
            i = (i + 1) & s->cache.mask;
            if (s->cache.slots[i].p) e[j] = s->cache.slots[i].p;
        }
        double score = (double)rn__idle_score(s, e[j]) * (e[j]->cap + RN__ENTRY_OVERHEAD);
        if (!best || score > best_score) best = e[j], best_score = score;
    }
    return best;
}

static void rn__evict(struct rn_statedb *s, struct rn__centry *keep)
{
    struct rn__centry *e;
    while (s->cache_bytes > s->cache_cap && (e = rn__victim(s, keep))) {
        s->cache_bytes -= e->cap + RN__ENTRY_OVERHEAD;
        atomic_fetch_add_explicit(&s->f_evictions, 1, memory_order_relaxed);
        /* An absent key RocksDB never had needs no delete. */
        if (!rn__effectively_clean(s, e) && !(e->absent && !rn__filter_may(&s->written, e->h))) {
            rn__entry_write_back(s, e);
            rn__batch_grew(s);
            continue;
        }
        rn__dirty_unlink(s, e);
        rn__drop(s, e);
    }
    atomic_store_explicit(&s->f_bytes, s->cache_bytes, memory_order_relaxed);
    atomic_store_explicit(&s->f_entries, s->cache.n - s->n_pending,
                          memory_order_relaxed);
}

/* Gives e room for len bytes (at least `grow` when it must grow), or gives
 * back most of a buffer that a value shrank to a quarter of (a closed request
 * kept as a small tombstone should not be charged its old size). */
static void rn__entry_room(struct rn_statedb *s, struct rn__centry *e, size_t len, size_t grow)
{
    size_t cap = e->cap;
    if (len > cap) cap = RN_MAX(len, grow);
    else if (cap > 256 && len < cap / 4) cap = RN_MAX(len, (size_t)16);
    else return;
    uint32_t got = 0;
    char *v = cap ? rn__vp_get(&s->pool, cap, &got) : NULL;
    if (e->len) memcpy(v, e->val, RN_MIN((size_t)e->len, (size_t)got));
    rn__vp_put(&s->pool, e->val, e->cap);
    s->cache_bytes = s->cache_bytes - e->cap + got;
    e->val = v;
    e->cap = got;
}

static void rn__entry_set(struct rn_statedb *s, struct rn__centry *e, const void *v, size_t len)
{
    rn__entry_room(s, e, len, len);
    if (len) memcpy(e->val, v, len);
    e->len = (uint32_t)len;
}

/* Finds the entry of k, reading RocksDB on a miss (load) or not (for a blind
 * write). NULL only when that read failed: the database is then failed, with
 * a message naming the operator `op_id`, the key and its key group, and
 * nothing is cached (an unreadable value is never taken for an absent one). */
static struct rn__centry *rn__cache_get(struct rn_statedb *s, const struct rn__ckey *k, int load,
                                        const char *op_id)
{
    struct rn__centry *e = s->last;
    uint64_t h = 0;
    if (!e || rn__key24_cmp(&e->k, k)) {
        h = rn__ix_hash(k, sizeof *k);
        e = rn__ix_find(&s->cache, h, k, sizeof *k);
    }
    if (e) {
        s->last = e;
        if (RN_UNLIKELY(e->pending)) {
            /* Back before the plain batch took it: RocksDB still lacks its
             * value, so the entry is dirty again. */
            rn__pending_unlink(s, e);
            s->pwb_ops--;
            rn__mark_dirty(s, e);
            s->cache_bytes += e->cap + RN__ENTRY_OVERHEAD;
            e->touch = ++s->clock;
            rn__evict(s, e);
        } else {
            e->touch = ++s->clock;
        }
        atomic_fetch_add_explicit(&s->f_hits, 1, memory_order_relaxed);
        return e;
    }
    char *v = NULL;
    size_t vl = 0;
    if (load) {
        atomic_fetch_add_explicit(&s->f_misses, 1, memory_order_relaxed);
        unsigned char key[RN__SKEY_LEN];
        rn__state_key(key, k, s->max_parallelism);
        /* A miss counts as a read for fault injection even when the filter
         * answers it. */
        char *err = rn__fault(0);
        /* Value and list entries never go through the indexed batch (only
         * map state does): what RocksDB lacks of them is in the table. */
        if (!err && rn__filter_may(&s->written, h)) {
            atomic_fetch_add_explicit(&s->f_reads, 1, memory_order_relaxed);
            v = rocksdb_get_cf(s->db, s->ro, s->cf[0], (const char *)key, sizeof key, &vl, &err);
        }
        if (err) {
            rocksdb_free(v);
            rn__fail(s, err, "operator '%s': reading key %llu (key group %u, namespace %llu)",
                     op_id, (unsigned long long)k->key, rn_key_group(k->key, s->max_parallelism),
                     (unsigned long long)k->ns);
            return NULL;
        }
    }
    e = rn__vp_zget(&s->pool, sizeof *e);
    e->k = *k;
    e->absent = 1;
    if (load) {
        if (v) {
            e->absent = 0;
            if (vl) {
                e->val = rn__vp_get(&s->pool, vl, &e->cap);
                memcpy(e->val, v, vl);
            }
            e->len = (uint32_t)vl;
            rocksdb_free(v);
        }
    }
    e->h = h;
    e->touch = ++s->clock;
    rn__ix_add(&s->cache, h, e);
    s->cache_bytes += e->cap + RN__ENTRY_OVERHEAD;
    rn__evict(s, e);
    s->last = e;
    return e;
}

/* ---- prefetching -------------------------------------------------------------------
 * A lookup of a key not touched for a while waits for memory twice: for the
 * table's slot, then for the entry it points to. A hint given some records
 * ahead (rn_state_prefetch) starts the slot's load now and the entry's load
 * of the key hinted RN__PF_LAG hints earlier, whose slot has arrived by then;
 * the timer heap gives the same hints for the timers about to fire. */

static void rn__prefetch(struct rn_statedb *s, const struct rn__ckey *k)
{
    uint64_t h = rn__ix_hash(k, sizeof *k);
    rn__ix_prefetch_slot(&s->cache, h);
    unsigned i = s->pf_pos++ % RN__PF_LAG;
    uint64_t old = s->pf_ring[i];
    s->pf_ring[i] = h;
    if (old) rn__ix_prefetch_entry(&s->cache, old);
}

void rn_state_prefetch(struct rn_state *st, uint64_t key, uint64_t ns)
{
    if (st->kind == RN__KIND_MAP) return;
    struct rn__ckey k = {st->sid, 0, key, ns};
    rn__prefetch(st->os->db, &k);
}

/* The timers about to fire usually read state of their own (key, ns). After
 * a pop, for each value and list state of the operator: the entry of the next
 * timer (whose slot the previous pop fetched) and the slot of the one after
 * it (the smallest child of the top). */
/* ---- operator state ---------------------------------------------------------------- */

static inline int rn__heap_less(const struct rn__hslot *a, const struct rn__hslot *b)
{
    if (a->ts != b->ts) return a->ts < b->ts;
    if (a->t->k.key != b->t->k.key) return a->t->k.key < b->t->k.key;
    return a->t->k.ns < b->t->k.ns;
}

static void rn__heap_push(struct rn_op_state *os, struct rn__tentry *t)
{
    if (os->heap_n == os->heap_cap) {
        /* Children of slot i are 4i+1..4i+4: slot 0 goes 48 bytes into a line
         * (malloc gives 16-byte alignment; 3 slots of slack place it). */
        size_t cap = os->heap_cap ? os->heap_cap * 2 : 256;
        char *mem = rn_xmalloc((cap + 3) * sizeof *os->heap);
        size_t off = ((48 - (uintptr_t)mem % 64) % 64) / sizeof *os->heap;
        struct rn__hslot *heap = (struct rn__hslot *)(void *)mem + off;
        if (os->heap_n) memcpy(heap, os->heap, os->heap_n * sizeof *heap);
        free(os->heap_mem);
        os->heap_mem = mem;
        os->heap = heap;
        os->heap_cap = cap;
    }
    struct rn__hslot x = {t->k.ts, t};
    size_t i = os->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 4;
        if (!rn__heap_less(&x, &os->heap[p])) break;
        os->heap[i] = os->heap[p];
        i = p;
    }
    os->heap[i] = x;
}

/* ---- the timer queue: sorted runs and a heap ------------------------------------- */

static inline const struct rn__hslot *rn__src_head(const struct rn_op_state *os, int src)
{
    if (src == RN__RUNS) return os->heap_n ? &os->heap[0] : NULL;
    const struct rn__run *r = &os->runs[src];
    return r->n ? &r->a[r->head & (r->cap - 1)] : NULL;
}

/* The slot after the head of source src, or NULL (for the heap: the least of
 * the top's children). */
static inline const struct rn__hslot *rn__src_second(const struct rn_op_state *os, int src)
{
    if (src == RN__RUNS) {
        if (os->heap_n < 2) return NULL;
        size_t m = 1;
        for (size_t c = 2; c < RN_MIN(os->heap_n, (size_t)5); c++)
            if (rn__heap_less(&os->heap[c], &os->heap[m])) m = c;
        return &os->heap[m];
    }
    const struct rn__run *r = &os->runs[src];
    return r->n > 1 ? &r->a[(r->head + 1) & (r->cap - 1)] : NULL;
}

static void rn__tq_find_top(struct rn_op_state *os)
{
    const struct rn__hslot *b = NULL;
    os->top_src = -1;
    for (int i = 0; i <= RN__RUNS; i++) {
        const struct rn__hslot *h = rn__src_head(os, i);
        if (h && (!b || rn__heap_less(h, b))) b = h, os->top_src = i;
    }
}

/* The earliest timer's slot, or NULL. */
static inline const struct rn__hslot *rn__tq_top(const struct rn_op_state *os)
{
    return os->top_src < 0 ? NULL : rn__src_head(os, os->top_src);
}

static size_t rn__tq_size(const struct rn_op_state *os)
{
    size_t n = os->heap_n;
    for (int i = 0; i < RN__RUNS; i++) n += os->runs[i].n;
    return n;
}

/* The i-th slot of the queue in no particular order (i < rn__tq_size). */
static const struct rn__hslot *rn__tq_at(const struct rn_op_state *os, size_t i)
{
    for (int r = 0; r < RN__RUNS; r++) {
        const struct rn__run *run = &os->runs[r];
        if (i < run->n) return &run->a[(run->head + i) & (run->cap - 1)];
        i -= run->n;
    }
    return &os->heap[i];
}

static void rn__run_append(struct rn__run *r, struct rn__hslot x)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        struct rn__hslot *a = rn_xmalloc(cap * sizeof *a);
        for (size_t i = 0; i < r->n; i++) a[i] = r->a[(r->head + i) & (r->cap - 1)];
        free(r->a);
        r->a = a;
        r->head = 0;
        r->cap = cap;
    }
    r->a[(r->head + r->n++) & (r->cap - 1)] = x;
}

/* Takes the top off the heap (its entry stays where it is). */
static void rn__heap_pop(struct rn_op_state *os)
{
    assert(os->heap_n > 0);
    struct rn__hslot x = os->heap[--os->heap_n];
    size_t n = os->heap_n, i = 0;
    if (!n) return;
    for (;;) {
        size_t c = 4 * i + 1, m = c, end = RN_MIN(c + 4, n);
        if (c >= n) break;
        for (size_t k = c + 1; k < end; k++)
            if (rn__heap_less(&os->heap[k], &os->heap[m])) m = k;
        if (!rn__heap_less(&os->heap[m], &x)) break;
        os->heap[i] = os->heap[m];
        i = m;
    }
    os->heap[i] = x;
}

/* Adds t: to the run whose last timer is the latest one not after t, else
 * to an empty run, else to the heap. */
static void rn__tq_push(struct rn_op_state *os, struct rn__tentry *t)
{
    struct rn__hslot x = {t->k.ts, t};
    const struct rn__hslot *pl = NULL;
    int pick = -1, empty = -1;
    for (int i = 0; i < RN__RUNS; i++) {
        const struct rn__run *r = &os->runs[i];
        if (!r->n) {
            if (empty < 0) empty = i;
            continue;
        }
        const struct rn__hslot *last = &r->a[(r->head + r->n - 1) & (r->cap - 1)];
        if (!rn__heap_less(&x, last) && (!pl || rn__heap_less(pl, last))) pick = i, pl = last;
    }
    if (pick < 0) pick = empty;
    if (pick < 0) rn__heap_push(os, t);
    else rn__run_append(&os->runs[pick], x);
    const struct rn__hslot *top = rn__tq_top(os);
    if (!top || rn__heap_less(&x, top)) rn__tq_find_top(os);
}

/* Takes the top off (its entry stays where it is). */
static void rn__tq_pop(struct rn_op_state *os)
{
    assert(os->top_src >= 0);
    if (os->top_src == RN__RUNS) {
        rn__heap_pop(os);
    } else {
        struct rn__run *r = &os->runs[os->top_src];
        r->head++;
        if (!--r->n) r->head = 0;
    }
    rn__tq_find_top(os);
}

/* Gives back the dead entries at the top, so that the top is a live timer. */
static void rn__heap_settle(struct rn_op_state *os)
{
    const struct rn__hslot *top;
    while ((top = rn__tq_top(os)) && top->t->dead) {
        struct rn__tentry *t = top->t;
        rn__tq_pop(os);
        rn__vp_put(&os->db->pool, (char *)t, sizeof *t);
    }
}

/* Prefetching for the timers about to fire: the entries of the next one's
 * state (it fires next) and the slots of the one after it, and the latter's
 * timer-set slot (for its removal). */
static void rn__timer_prefetch(struct rn_op_state *os)
{
    const struct rn__hslot *top = rn__tq_top(os);
    if (!top) return;
    const struct rn__tentry *next = top->t, *after = NULL;
    const struct rn__hslot *a = rn__src_second(os, os->top_src);
    for (int i = 0; i <= RN__RUNS; i++) {
        const struct rn__hslot *h = i == os->top_src ? NULL : rn__src_head(os, i);
        if (h && (!a || rn__heap_less(h, a))) a = h;
    }
    if (a) after = a->t;
    if (after) RN__PREFETCH(&os->tset.slots[after->h & os->tset.mask]);
    for (const struct rn_state *st = os->states; st; st = st->next) {
        if (st->kind == RN__KIND_MAP) continue;
        struct rn__ckey k = {st->sid, 0, next->k.key, next->k.ns};
        rn__ix_prefetch_entry(&os->db->cache, rn__ix_hash(&k, sizeof k));
        if (after) {
            k.key = after->k.key;
            k.ns = after->k.ns;
            rn__ix_prefetch_slot(&os->db->cache, rn__ix_hash(&k, sizeof k));
        }
    }
}

/* The timer that fires now: its values' entries were prefetched when it was
 * the next one, so they are found at once; now the values' first bytes load
 * while rn__timer_prefetch waits for the timer after the next. The entry of
 * the first state is left as the cache's last one, so that the operator's
 * first read finds it without a look-up. */
static void rn__timer_prefetch_values(struct rn_op_state *os, uint64_t key, uint64_t ns)
{
    struct rn_statedb *s = os->db;
    struct rn__centry *first = NULL;
    for (const struct rn_state *st = os->states; st; st = st->next) {
        if (st->kind == RN__KIND_MAP) continue;
        struct rn__ckey k = {st->sid, 0, key, ns};
        struct rn__centry *e = rn__ix_find(&s->cache, rn__ix_hash(&k, sizeof k), &k, sizeof k);
        if (!e) continue;
        if (!first) first = e;
        for (uint32_t off = 0; e->val && off < e->len && off < 256; off += 64)
            RN__PREFETCH(e->val + off);
    }
    if (first) s->last = first;
}

/* Adds timer k (hash h), which is not in the set. */
static void rn__timer_insert(struct rn_op_state *os, const struct rn__tkey *k, uint64_t h,
                             int persisted)
{
    struct rn__tentry *t = rn__vp_zget(&os->db->pool, sizeof *t);
    t->k = *k;
    t->persisted = (uint8_t)persisted;
    t->h = h;
    rn__ix_add(&os->tset, t->h, t);
    rn__tq_push(os, t);
    os->n_live++;
    atomic_store_explicit(&os->n_timers, os->n_live, memory_order_relaxed);
}

/* Deletes timer k from RocksDB (through the plain batch). */
static void rn__timer_unsave(struct rn_statedb *s, const struct rn__tkey *tk)
{
    unsigned char k[RN__TKEY_LEN];
    rn__timer_key(k, tk, s->max_parallelism);
    rocksdb_writebatch_delete_cf(s->pwb, s->cf[1], (const char *)k, sizeof k);
    s->pwb_ops++;
    rn__batch_grew(s);
}

/* Removes timer t from the set (and from RocksDB when saved there). The top
 * of the heap leaves it now; another entry is marked dead and leaves when it
 * reaches the top (no position to keep per entry, so sifting never touches
 * the entries it moves). */
static void rn__timer_drop(struct rn_op_state *os, struct rn__tentry *t)
{
    if (t->persisted) rn__timer_unsave(os->db, &t->k);
    rn__ix_del(&os->tset, t->h, t);
    t->dead = 1;
    os->n_live--;
    if (rn__tq_top(os)->t == t) rn__heap_settle(os);
    atomic_store_explicit(&os->n_timers, os->n_live, memory_order_relaxed);
}

struct rn_op_state *rn__op_state_create(struct rn_statedb *db, const char *op_id,
                                        uint32_t max_parallelism)
{
    struct rn_op_state *os = rn_xcalloc(1, sizeof *os);
    os->db = db;
    os->op_id = rn_xstrdup(op_id);
    os->max_parallelism = max_parallelism;
    os->timer_sid = rn__sid(op_id, "#timers", 0);
    os->fired_below = os->deleted_below = INT64_MIN;
    os->range_deletes = db->kg_end - db->kg_start <= RN__RANGE_KGS;
    os->found_version = os->version = 1;
    os->top_src = -1;
    db->ops = rn_xrealloc(db->ops, (db->n_ops + 1) * sizeof *db->ops);
    db->ops[db->n_ops++] = os;
    /* Claim this operator's restored timers. */
    for (size_t i = 0; i < db->n_restored; i++)
        if (db->restored[i].k.sid == os->timer_sid)
            rn__timer_insert(os, &db->restored[i].k,
                             rn__ix_hash(&db->restored[i].k, sizeof db->restored[i].k), 1);
    return os;
}

void rn__op_state_destroy(struct rn_op_state *os)
{
    if (!os) return;
    /* Its timer entries are in the database's pool, freed with it. */
    rn__ix_free(&os->tset);
    free(os->heap_mem);
    for (int i = 0; i < RN__RUNS; i++) free(os->runs[i].a);
    free(os->map_val);
    for (struct rn_state *st = os->states, *n; st; st = n) {
        n = st->next;
        free(st);
    }
    free(os->op_id);
    free(os);
}

void rn__op_state_set_key(struct rn_op_state *os, uint64_t key)
{
    os->cur_key = key;
}

int64_t rn__op_state_next_timer(struct rn_op_state *os)
{
    rn__op_state_flush(os);
    const struct rn__hslot *top = rn__tq_top(os);
    return top ? top->ts : RN_TS_MAX;
}

/* The operators' watermark moved to wm: every 4,096 accesses and a second
 * of event time or more, the access rate per event-time millisecond is
 * measured again (smoothed), for rn__idle_score. */
static void rn__clock_watermark(struct rn_statedb *s, int64_t wm)
{
    if (wm <= s->wm || wm == RN_TS_MAX) return; /* RN_TS_MAX: the end of input */
    s->wm = wm;
    if (!s->wm0) {
        s->wm0 = wm;
        s->clock0 = s->clock;
        return;
    }
    if (wm - s->wm0 < 1000 || s->clock - s->clock0 < 4096) return;
    double rate = (double)(s->clock - s->clock0) / (double)(wm - s->wm0);
    s->acc_per_ms = s->acc_per_ms > 0 ? 0.75 * s->acc_per_ms + 0.25 * rate : rate;
    s->wm0 = wm;
    s->clock0 = s->clock;
}

/* A state's clear at a time fires: its value of the timer's key and
 * namespace is cleared, unread. The state need not be declared (a restored
 * clear of a state the operator no longer has clears nothing anyone reads). */
static int rn__fire_clear(struct rn_op_state *os, const struct rn__tkey *k)
{
    struct rn_state st = {os, k->sid, RN__KIND_VALUE, NULL, 1};
    os->cur_key = k->key;
    return rn_value_clear(&st, k->ns);
}

/* Takes the next timer at or before wm off the queue into *out; 1 when one
 * is there for the operator. Clears at a time fire here, in the same order,
 * and are not handed out. */
int rn__op_state_pop_timer(struct rn_op_state *os, int64_t wm, struct rn_timer *out)
{
    rn__clock_watermark(os->db, wm);
    /* A waiting registration that could fire now goes in first. One that
     * cannot (later than wm) changes neither which timer fires now nor, being
     * later than it, whether that one is a duplicate. */
again:
    if (os->n_defer && os->defer_min <= wm) rn__op_state_flush(os);
    const struct rn__hslot *top = rn__tq_top(os);
    if (!top || top->ts > wm) return 0;
    struct rn__tentry *t = top->t;
    int is_clear = t->k.sid != os->timer_sid;
    struct rn__tkey fired = t->k;
    out->ts = t->k.ts;
    out->key = t->k.key;
    out->ns = t->k.ns;
    os->cur_key = t->k.key;
    if (!is_clear) rn__timer_prefetch_values(os, t->k.key, t->k.ns);
    if (!os->range_deletes) {
        rn__timer_drop(os, t);
        if ((top = rn__tq_top(os)) && top->ts <= wm) rn__timer_prefetch(os);
        if (!is_clear) return 1;
        if (rn__fire_clear(os, &fired)) return 0;
        goto again;
    }
    /* No RocksDB delete for it: the next checkpoint's range covers it. */
    const struct rn__tkey k = fired;
    int saved = t->persisted;
    t->persisted = 0;
    rn__timer_drop(os, t);
    /* Every timer before ts has fired, and ts itself too unless another timer
     * at ts waits (a timer registered later in the past is written after the
     * range, so the range cannot delete it). When one waits, the range stops
     * before ts and this timer is deleted on its own. */
    top = rn__tq_top(os);
    int64_t below = (top && top->ts <= k.ts) || k.ts == INT64_MAX ? k.ts : k.ts + 1;
    if (below <= k.ts && saved) rn__timer_unsave(os->db, &k);
    if (below > os->fired_below) os->fired_below = below;
    if (top && top->ts <= wm) rn__timer_prefetch(os);
    if (!is_clear) return 1;
    if (rn__fire_clear(os, &fired)) return 0;
    goto again;
}

uint64_t rn__op_state_timers(struct rn_op_state *os)
{
    return atomic_load_explicit(&os->n_timers, memory_order_relaxed);
}

void rn__op_state_set_format(struct rn_op_state *os, struct rn_op *op, uint32_t found,
                             uint32_t version, rn__migrate_fn migrate)
{
    os->op = op;
    os->found_version = found;
    os->version = version;
    os->migrate = migrate;
}

/* Passes every stored entry of state st (in the key groups this database
 * owns) through the operator's migrate_state, from the restored format
 * version to the current one. Runs in open(), when the state is declared:
 * before the operator can read it, and with nothing of it in the cache. */
static int rn__migrate(struct rn_op_state *os, struct rn_state *st, const char *name)
{
    struct rn_statedb *s = os->db;
    if (rn__wb_write(s)) return RN_ESTATE;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[0]);
    struct rn_buf out = RN_BUF_INIT;
    uint64_t saved_key = os->cur_key, n = 0;
    int rc = 0;
    for (uint32_t kg = s->kg_start; kg < s->kg_end && rc == 0; kg++) {
        unsigned char prefix[6];
        rn__be16(prefix, (uint16_t)kg);
        rn__be32(prefix + 2, st->sid);
        for (rocksdb_iter_seek(it, (const char *)prefix, sizeof prefix); rocksdb_iter_valid(it);
             rocksdb_iter_next(it)) {
            size_t kl, vl;
            const char *k = rocksdb_iter_key(it, &kl);
            if (kl < RN__MAP_PREFIX || memcmp(k, prefix, sizeof prefix) != 0) break;
            const char *v = rocksdb_iter_value(it, &vl);
            os->cur_key = rn__get_be64((const unsigned char *)k + 6);
            rn_buf_reset(&out);
            rc = os->migrate(os->op, name, os->found_version, v, vl, &out);
            if (rc == RN_ENOENT) {
                rocksdb_writebatch_wi_delete_cf(s->wb, s->cf[0], k, kl);
                rc = 0;
            } else if (rc < 0) {
                rn__fail(s, NULL,
                         "operator '%s': migrating state '%s' of key %llu (key group %u) from "
                         "format version %u to %u: %s",
                         os->op_id, name, (unsigned long long)os->cur_key, kg, os->found_version,
                         os->version, rn_strerror(rc));
                break;
            } else {
                rocksdb_writebatch_wi_put_cf(s->wb, s->cf[0], k, kl, out.data ? out.data : "",
                                             out.len);
            }
            n++;
            /* The iterator reads a snapshot: writing under it is safe. */
            if (++s->wb_ops >= RN__WB_MAX_OPS && rn__wb_write(s)) rc = RN_ESTATE;
            if (rc) break;
        }
        if (rc == 0) {
            char *err = NULL;
            rocksdb_iter_get_error(it, &err);
            if (err)
                rc = rn__fail(s, err, "operator '%s': reading state '%s' to migrate it", os->op_id,
                              name);
        }
    }
    rocksdb_iter_destroy(it);
    rn_buf_free(&out);
    os->cur_key = saved_key;
    if (rc == 0) rc = rn__wb_write(s);
    if (rc == 0)
        fprintf(stderr,
                "runnel: operator '%s': state '%s' migrated from format version %u to %u "
                "(%llu entries)\n",
                os->op_id, name, os->found_version, os->version, (unsigned long long)n);
    return rc ? RN_ESTATE : 0;
}

static struct rn_state *rn__state_declare(struct rn_op *op, const char *name, int kind)
{
    struct rn_op_state *os = rn__op_keyed(op);
    if (!os) return NULL;
    uint32_t sid = rn__sid(os->op_id, name, kind);
    int seen = 0;
    for (struct rn_state *o = os->states; o; o = o->next)
        seen |= o->sid == sid;
    /* Older data is migrated once per state, at its first declaration. */
    if (!seen && os->found_version < os->version && os->migrate) {
        struct rn_state tmp = {os, sid, kind, NULL, 0};
        if (rn__migrate(os, &tmp, name)) return NULL;
    }
    struct rn_state *st = rn_xcalloc(1, sizeof *st);
    st->os = os;
    st->kind = kind;
    st->sid = sid;
    st->next = os->states;
    os->states = st;
    /* Its restored clears at a time (timers under its sid). */
    struct rn_statedb *db = os->db;
    for (size_t i = 0; !seen && kind != RN__KIND_MAP && i < db->n_restored; i++) {
        if (db->restored[i].k.sid != sid) continue;
        st->clears = 1;
        rn__timer_insert(os, &db->restored[i].k,
                         rn__ix_hash(&db->restored[i].k, sizeof db->restored[i].k), 1);
    }
    return st;
}

struct rn_state *rn_state_value(struct rn_op *op, const char *name)
{
    return rn__state_declare(op, name, RN__KIND_VALUE);
}

struct rn_state *rn_state_list(struct rn_op *op, const char *name)
{
    return rn__state_declare(op, name, RN__KIND_LIST);
}

struct rn_state *rn_state_map(struct rn_op *op, const char *name)
{
    return rn__state_declare(op, name, RN__KIND_MAP);
}

void rn_state_key(struct rn_op *op, uint64_t key)
{
    struct rn_op_state *os = rn__op_keyed(op);
    if (os) os->cur_key = key;
}

int rn_value_get(struct rn_state *st, uint64_t ns, const void **val, size_t *len)
{
    struct rn_statedb *s = st->os->db;
    if (RN_UNLIKELY(s->failed)) return RN_ESTATE;
    struct rn__ckey k = {st->sid, 0, st->os->cur_key, ns};
    struct rn__centry *e = rn__cache_get(s, &k, 1, st->os->op_id);
    if (!e) return RN_ESTATE;
    if (e->absent) return RN_ENOENT;
    *val = e->val;
    *len = e->len;
    return 0;
}

int rn_value_put(struct rn_state *st, uint64_t ns, const void *val, size_t len)
{
    struct rn_statedb *s = st->os->db;
    if (RN_UNLIKELY(s->failed)) return RN_ESTATE;
    struct rn__ckey k = {st->sid, 0, st->os->cur_key, ns};
    struct rn__centry *e = rn__cache_get(s, &k, 0, st->os->op_id);
    rn__entry_set(s, e, val, len);
    e->absent = 0;
    rn__mark_dirty(s, e);
    rn__evict(s, e);
    return s->failed ? RN_ESTATE : 0;
}

int rn_value_edit(struct rn_state *st, uint64_t ns, size_t len, void **val)
{
    struct rn_statedb *s = st->os->db;
    if (RN_UNLIKELY(s->failed)) return RN_ESTATE;
    if (len > UINT32_MAX / 2) return RN_EINVAL;
    struct rn__ckey k = {st->sid, 0, st->os->cur_key, ns};
    struct rn__centry *e = rn__cache_get(s, &k, 1, st->os->op_id);
    if (!e) return RN_ESTATE;
    if (e->absent) e->len = 0;
    /* Grown by an eighth at least: a value that gains a small element per
     * event (the joiner's feedback) is not reallocated every time, and the
     * slack stays small (it is memory of every entry edited). */
    rn__entry_room(s, e, len, (size_t)e->cap + e->cap / 8);
    if (len > e->len) memset(e->val + e->len, 0, len - e->len);
    e->len = (uint32_t)len;
    e->absent = 0;
    rn__mark_dirty(s, e);
    rn__evict(s, e);
    *val = e->val;
    return s->failed ? RN_ESTATE : 0;
}

int rn_value_clear(struct rn_state *st, uint64_t ns)
{
    struct rn_statedb *s = st->os->db;
    if (RN_UNLIKELY(s->failed)) return RN_ESTATE;
    struct rn__ckey k = {st->sid, 0, st->os->cur_key, ns};
    struct rn__centry *e = rn__cache_get(s, &k, 0, st->os->op_id);
    if (!e->pending && !rn__filter_may(&s->written, e->h)) {
        /* Neither RocksDB nor any checkpoint ever had this key (the filter
         * would hold it): forgetting the entry is the same as keeping it
         * absent, and frees its memory now. */
        rn__forget(s, e);
        return 0;
    }
    /* Absent: its bytes are freed now, not when it is evicted (a cleared
     * request would hold its whole value until then). */
    rn__vp_put(&s->pool, e->val, e->cap);
    s->cache_bytes -= e->cap;
    e->val = NULL;
    e->cap = 0;
    e->absent = 1;
    e->len = 0;
    rn__mark_dirty(s, e);
    return 0;
}

int rn_list_append(struct rn_state *st, const void *val, size_t len)
{
    struct rn_statedb *s = st->os->db;
    if (RN_UNLIKELY(s->failed)) return RN_ESTATE;
    struct rn__ckey k = {st->sid, 0, st->os->cur_key, 0};
    struct rn__centry *e = rn__cache_get(s, &k, 1, st->os->op_id);
    if (!e) return RN_ESTATE;
    if (e->absent) e->len = 0;
    size_t need = e->len + 4 + len;
    if (need > e->cap) rn__entry_room(s, e, need, (size_t)e->cap * 2);
    uint32_t l32 = (uint32_t)len;
    memcpy(e->val + e->len, &l32, 4);
    if (len) memcpy(e->val + e->len + 4, val, len);
    e->len = (uint32_t)need;
    e->absent = 0;
    rn__mark_dirty(s, e);
    rn__evict(s, e);
    return s->failed ? RN_ESTATE : 0;
}

int rn_list_each(struct rn_state *st, int (*fn)(void *ud, const void *val, size_t len), void *ud)
{
    const void *v;
    size_t len;
    int rc = rn_value_get(st, 0, &v, &len);
    if (rc == RN_ENOENT) return 0;
    if (rc) return rc;
    const char *p = v, *e = p + len;
    while (p + 4 <= e) {
        uint32_t l;
        memcpy(&l, p, 4);
        if (p + 4 + l > e) return RN_ECORRUPT;
        rc = fn(ud, p + 4, l);
        if (rc) return rc;
        p += 4 + l;
    }
    return p == e ? 0 : RN_ECORRUPT;
}

int rn_list_clear(struct rn_state *st)
{
    return rn_value_clear(st, 0);
}

/* A timer at ts for the current key and ns: the operator's cached values of
 * that key and namespace learn when they will be needed next (rn__idle_score).
 * Usually the operator has just used one of them (s->last). */
static void rn__note_due(struct rn_op_state *os, int64_t ts, uint64_t ns)
{
    struct rn_statedb *s = os->db;
    for (const struct rn_state *st = os->states; st; st = st->next) {
        if (st->kind == RN__KIND_MAP) continue;
        struct rn__ckey k = {st->sid, 0, os->cur_key, ns};
        struct rn__centry *e = s->last;
        if (!e || rn__key24_cmp(&e->k, &k)) e = rn__ix_find(&s->cache, rn__ix_hash(&k, sizeof k), &k, sizeof k);
        if (e && (!e->due || e->due <= s->wm || ts < e->due)) e->due = ts;
    }
}

/* The oldest waiting registration: into the set unless it is there. */
static void rn__defer_one(struct rn_op_state *os)
{
    const struct rn__tdefer *d = &os->defer[os->defer_head];
    os->defer_head = (os->defer_head + 1) & (RN__DEFER - 1);
    os->n_defer--;
    if (!rn__ix_find(&os->tset, d->h, &d->k, sizeof d->k)) rn__timer_insert(os, &d->k, d->h, 0);
}

void rn__op_state_flush(struct rn_op_state *os)
{
    while (os->n_defer) rn__defer_one(os);
}

/* Queues the registration of timer (sid, ts, current key, ns): the
 * operator's own timers are under os->timer_sid, a state's clears at a time
 * under the state's sid. */
static void rn__timer_add(struct rn_op_state *os, uint32_t sid, int64_t ts, uint64_t ns)
{
    if (os->n_defer == RN__DEFER) rn__defer_one(os);
    struct rn__tdefer *d = &os->defer[(os->defer_head + os->n_defer++) & (RN__DEFER - 1)];
    d->k = (struct rn__tkey){sid, 0, ts, os->cur_key, ns};
    d->h = rn__ix_hash(&d->k, sizeof d->k);
    rn__ix_prefetch_slot(&os->tset, d->h);
    if (os->n_defer == 1 || ts < os->defer_min) os->defer_min = ts;
}

int rn_timer_register(struct rn_op *op, int64_t ts, uint64_t ns)
{
    struct rn_op_state *os = rn__op_keyed(op);
    if (!os) return RN_EINVAL;
    if (RN_UNLIKELY(os->db->failed)) return RN_ESTATE;
    rn__timer_add(os, os->timer_sid, ts, ns);
    rn__note_due(os, ts, ns);
    return 0;
}

/* Its time is noted on the value like a timer's (rn__note_due): the clear
 * is the value's next use, and one kept until then costs no write. */
int rn_value_clear_at(struct rn_state *st, uint64_t ns, int64_t ts)
{
    struct rn_op_state *os = st->os;
    if (st->kind == RN__KIND_MAP) return RN_EINVAL;
    if (RN_UNLIKELY(os->db->failed)) return RN_ESTATE;
    st->clears = 1;
    rn__timer_add(os, st->sid, ts, ns);
    rn__note_due(os, ts, ns);
    return 0;
}

int rn_timer_delete(struct rn_op *op, int64_t ts, uint64_t ns)
{
    struct rn_op_state *os = rn__op_keyed(op);
    if (!os) return RN_EINVAL;
    if (RN_UNLIKELY(os->db->failed)) return RN_ESTATE;
    rn__op_state_flush(os);
    struct rn__tkey k = {os->timer_sid, 0, ts, os->cur_key, ns};
    struct rn__tentry *t = rn__ix_find(&os->tset, rn__ix_hash(&k, sizeof k), &k, sizeof k);
    if (t) rn__timer_drop(os, t);
    return os->db->failed ? RN_ESTATE : 0;
}

/* ---- map state --------------------------------------------------------------------
 * One RocksDB entry per map entry: [kg:2][sid:4][key:8][map key]. Map state
 * bypasses the cache: reads and writes go through the indexed write batch
 * (so they see each other at memtable speed, and a checkpoint's cut covers
 * them) and iteration merges that batch with RocksDB. */

static char *rn__map_key(const struct rn_state *st, const void *mk, size_t mkl, size_t *len)
{
    char *k = rn_xmalloc(RN__MAP_PREFIX + mkl);
    uint64_t key = st->os->cur_key;
    rn__be16((unsigned char *)k, (uint16_t)rn_key_group(key, st->os->max_parallelism));
    rn__be32((unsigned char *)k + 2, st->sid);
    rn__be64((unsigned char *)k + 6, key);
    if (mkl) memcpy(k + RN__MAP_PREFIX, mk, mkl);
    *len = RN__MAP_PREFIX + mkl;
    return k;
}

int rn_map_get(struct rn_state *st, const void *mk, size_t mkl, const void **val, size_t *len)
{
    struct rn_statedb *s = st->os->db;
    if (RN_UNLIKELY(s->failed)) return RN_ESTATE;
    size_t kl, vl = 0;
    char *k = rn__map_key(st, mk, mkl, &kl);
    char *err = rn__fault(0), *v = NULL;
    if (!err)
        v = rocksdb_writebatch_wi_get_from_batch_and_db_cf(s->wb, s->db, s->ro, s->cf[0], k, kl,
                                                           &vl, &err);
    free(k);
    if (err) {
        rocksdb_free(v);
        uint64_t key = st->os->cur_key;
        return rn__fail(s, err, "operator '%s': reading a map entry of key %llu (key group %u)",
                        st->os->op_id, (unsigned long long)key,
                        rn_key_group(key, s->max_parallelism));
    }
    if (!v) return RN_ENOENT;
    free(st->os->map_val);
    st->os->map_val = rn_xmalloc(vl ? vl : 1);
    memcpy(st->os->map_val, v, vl);
    st->os->map_val_len = vl;
    rocksdb_free(v);
    *val = st->os->map_val;
    *len = vl;
    return 0;
}

int rn_map_put(struct rn_state *st, const void *mk, size_t mkl, const void *val, size_t len)
{
    struct rn_statedb *s = st->os->db;
    if (RN_UNLIKELY(s->failed)) return RN_ESTATE;
    size_t kl;
    char *k = rn__map_key(st, mk, mkl, &kl);
    rocksdb_writebatch_wi_put_cf(s->wb, s->cf[0], k, kl, val, len);
    free(k);
    if (++s->wb_ops >= RN__WB_MAX_OPS) rn__wb_write(s);
    return s->failed ? RN_ESTATE : 0;
}

int rn_map_remove(struct rn_state *st, const void *mk, size_t mkl)
{
    struct rn_statedb *s = st->os->db;
    if (RN_UNLIKELY(s->failed)) return RN_ESTATE;
    size_t kl;
    char *k = rn__map_key(st, mk, mkl, &kl);
    rocksdb_writebatch_wi_delete_cf(s->wb, s->cf[0], k, kl);
    free(k);
    if (++s->wb_ops >= RN__WB_MAX_OPS) rn__wb_write(s);
    return s->failed ? RN_ESTATE : 0;
}

int rn_map_each(struct rn_state *st,
                int (*fn)(void *ud, const void *mk, size_t mkl, const void *val, size_t len),
                void *ud)
{
    struct rn_statedb *s = st->os->db;
    if (RN_UNLIKELY(s->failed)) return RN_ESTATE;
    char *err = rn__fault(0);
    if (err)
        return rn__fail(s, err, "operator '%s': iterating the map of key %llu (key group %u)",
                        st->os->op_id, (unsigned long long)st->os->cur_key,
                        rn_key_group(st->os->cur_key, s->max_parallelism));
    size_t pl;
    char *prefix = rn__map_key(st, NULL, 0, &pl);
    rocksdb_iterator_t *base = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[0]);
    rocksdb_iterator_t *it = rocksdb_writebatch_wi_create_iterator_with_base_cf(s->wb, base, s->cf[0]);
    int rc = 0;
    for (rocksdb_iter_seek(it, prefix, pl); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl < pl || memcmp(k, prefix, pl) != 0) break;
        const char *v = rocksdb_iter_value(it, &vl);
        rc = fn(ud, k + pl, kl - pl, v, vl);
        if (rc) break;
    }
    /* An iterator that stops early because of an error looks like the end of
     * the map: ask it (the merged iterator reports its base's errors). */
    if (rc == 0) {
        rocksdb_iter_get_error(it, &err);
        if (err)
            rc = rn__fail(s, err, "operator '%s': iterating the map of key %llu (key group %u)",
                          st->os->op_id, (unsigned long long)st->os->cur_key,
                          rn_key_group(st->os->cur_key, s->max_parallelism));
    }
    rocksdb_iter_destroy(it);
    free(prefix);
    return rc;
}

static int rn__map_collect(void *ud, const void *mk, size_t mkl, const void *val, size_t len)
{
    struct rn_buf *b = ud;
    uint32_t l = (uint32_t)mkl;
    rn_buf_append(b, &l, 4);
    rn_buf_append(b, mk, mkl);
    (void)val;
    (void)len;
    return 0;
}

int rn_map_clear(struct rn_state *st)
{
    struct rn_buf keys = RN_BUF_INIT;
    int rc = rn_map_each(st, rn__map_collect, &keys);
    for (size_t off = 0; rc == 0 && off + 4 <= keys.len;) {
        uint32_t l;
        memcpy(&l, keys.data + off, 4);
        rc = rn_map_remove(st, keys.data + off + 4, l);
        off += 4 + l;
    }
    rn_buf_free(&keys);
    return rc;
}

/* ---- checkpoints and figures ------------------------------------------------------ */

static void *rn__bg_main(void *arg)
{
    struct rn_statedb *s = arg;
    pthread_mutex_lock(&s->bg_mu);
    for (;;) {
        while (s->bg_state != 1 && s->bg_state != 4) pthread_cond_wait(&s->bg_cv, &s->bg_mu);
        if (s->bg_state == 4) break;
        pthread_mutex_unlock(&s->bg_mu);
        char *err = rn__fault(1);
        char msg[512] = "";
        int db_err = 0;
        if (!err) rocksdb_write(s->db, s->wo, s->delta, &err);
        if (err) {
            /* The working database could not take the delta: a state failure,
             * not only a failed checkpoint. */
            snprintf(msg, sizeof msg, "state: writing the checkpoint's changes in %s: %s", s->dir,
                     err);
            rocksdb_free(err);
            err = NULL;
            db_err = 1;
        } else {
            rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(s->db, &err);
            if (!err) {
                rocksdb_checkpoint_create(cp, s->bg_dir, 0, &err);
                rocksdb_checkpoint_object_destroy(cp);
            }
        }
        if (err) {
            snprintf(msg, sizeof msg, "state: checkpoint into %s: %s", s->bg_dir, err);
            rocksdb_free(err);
        }
        rocksdb_writebatch_clear(s->delta);
        pthread_mutex_lock(&s->bg_mu);
        snprintf(s->bg_err, sizeof s->bg_err, "%s", msg);
        s->bg_db_err = db_err;
        s->bg_state = msg[0] ? 3 : 2;
        pthread_cond_broadcast(&s->bg_cv);
    }
    pthread_mutex_unlock(&s->bg_mu);
    return NULL;
}

/* Ends a finished background checkpoint: releases the held writes. Returns
 * 1 done, 0 still working (only when !wait), < 0 failed. */
static int rn__bg_collect(struct rn_statedb *s, int wait, char *errbuf, size_t errlen)
{
    if (!s->held) return 1;
    pthread_mutex_lock(&s->bg_mu);
    while (wait && s->bg_state == 1) pthread_cond_wait(&s->bg_cv, &s->bg_mu);
    int st = s->bg_state;
    if (st == 2 || st == 3) s->bg_state = 0;
    char err[512];
    snprintf(err, sizeof err, "%s", s->bg_err);
    int db_err = s->bg_db_err;
    pthread_mutex_unlock(&s->bg_mu);
    if (st == 1) return 0;
    s->held = 0;
    if (st == 3) {
        /* A checkpoint that could not be written (its directory full, say)
         * leaves the working database as it was: the entries it would have
         * saved stay dirty for the next one. A delta RocksDB refused means the
         * database itself failed. */
        rn_errf(errbuf, errlen, "%s", err);
        if (db_err && !s->failed) {
            snprintf(s->err, sizeof s->err, "%s", err);
            s->failed = 1;
        }
        return RN_ESTATE;
    }
    s->durable = s->gen;
    rn__wb_write(s);
    return 1;
}

int rn__statedb_checkpoint_begin(struct rn_statedb *s, const char *dir, char *errbuf,
                                 size_t errlen)
{
    /* One at a time: the previous one must have finished. */
    if (rn__bg_collect(s, 1, errbuf, errlen) < 0) return RN_ESTATE;
    if (!s->bg_started) {
        pthread_mutex_init(&s->bg_mu, NULL);
        pthread_cond_init(&s->bg_cv, NULL);
        s->delta = rocksdb_writebatch_create();
        if (pthread_create(&s->bg, NULL, rn__bg_main, s) != 0) {
            rn_errf(errbuf, errlen, "state: cannot start the checkpoint thread");
            return RN_ESTATE;
        }
        s->bg_started = 1;
    }
    /* What RocksDB lacks: the pending batch (applied now) and every entry
     * changed since the last checkpoint (copied into the delta). */
    if (rn__wb_write(s) || s->failed) {
        rn_errf(errbuf, errlen, "%s", s->err);
        return RN_ESTATE;
    }
    s->gen++;
    unsigned char k[RN__TKEY_LEN];
    for (struct rn__centry *e = s->dirty_head, *next; e; e = next) {
        next = e->dnext;
        if (rn__effectively_clean(s, e)) {
            rn__dirty_unlink(s, e);
            continue;
        }
        e->saved_gen = s->gen;
        int may = rn__filter_may(&s->written, e->h);
        if (e->absent && !may) continue; /* never in RocksDB: nothing to delete */
        rn__state_key(k, &e->k, s->max_parallelism);
        if (e->absent) {
            rocksdb_writebatch_delete_cf(s->delta, s->cf[0], (const char *)k, RN__SKEY_LEN);
        } else {
            rn__filter_add(&s->written, e->h);
            rocksdb_writebatch_put_cf(s->delta, s->cf[0], (const char *)k, RN__SKEY_LEN, e->val,
                                      e->len);
        }
    }
    for (size_t i = 0; i < s->n_ops; i++) {
        struct rn_op_state *os = s->ops[i];
        /* Fired timers: one range delete per key group, before this
         * checkpoint's new timers (a batch applies in order). */
        if (os->range_deletes && os->fired_below > os->deleted_below) {
            /* The operator's timers, then each state's clears at a time:
             * the same queue, so fired_below holds for all of them. */
            rn__timer_ranges(s, os->timer_sid, os->fired_below);
            for (const struct rn_state *st = os->states; st; st = st->next)
                if (st->clears) rn__timer_ranges(s, st->sid, os->fired_below);
            os->deleted_below = os->fired_below;
        }
        rn__op_state_flush(os);
        for (size_t h = 0, n = rn__tq_size(os); h < n; h++) {
            struct rn__tentry *t = rn__tq_at(os, h)->t;
            if (t->persisted || t->dead) continue;
            rn__timer_key(k, &t->k, s->max_parallelism);
            rocksdb_writebatch_put_cf(s->delta, s->cf[1], (const char *)k, sizeof k, "", 0);
            t->persisted = 1;
        }
    }
    free(s->bg_dir);
    s->bg_dir = rn_xstrdup(dir);
    s->held = 1;
    pthread_mutex_lock(&s->bg_mu);
    s->bg_state = 1;
    pthread_cond_broadcast(&s->bg_cv);
    pthread_mutex_unlock(&s->bg_mu);
    return 0;
}

int rn__statedb_checkpoint_poll(struct rn_statedb *s, int wait, char *errbuf, size_t errlen)
{
    return rn__bg_collect(s, wait, errbuf, errlen);
}

int rn__statedb_checkpoint(struct rn_statedb *s, const char *dir, char *errbuf, size_t errlen)
{
    int rc = rn__statedb_checkpoint_begin(s, dir, errbuf, errlen);
    if (rc) return rc;
    return rn__statedb_checkpoint_poll(s, 1, errbuf, errlen) == 1 ? 0 : RN_ESTATE;
}

const char *rn__statedb_error(const struct rn_statedb *s)
{
    return s && s->failed ? s->err : NULL;
}

const char *rn__op_state_error(const struct rn_op_state *os)
{
    return os && os->db->failed ? os->db->err : NULL;
}

static uint64_t rn__prop(struct rn_statedb *s, const char *name)
{
    uint64_t total = 0;
    for (int c = 0; c < 2; c++) {
        char *v = rocksdb_property_value_cf(s->db, s->cf[c], name);
        if (v) {
            total += strtoull(v, NULL, 10);
            rocksdb_free(v);
        }
    }
    return total;
}

void rn__statedb_figures(struct rn_statedb *s, struct rn_state_figures *f)
{
    memset(f, 0, sizeof *f);
    if (!s || !s->db) return;
    f->cache_entries = atomic_load_explicit(&s->f_entries, memory_order_relaxed);
    f->cache_bytes = atomic_load_explicit(&s->f_bytes, memory_order_relaxed);
    f->cache_hits = atomic_load_explicit(&s->f_hits, memory_order_relaxed);
    f->cache_misses = atomic_load_explicit(&s->f_misses, memory_order_relaxed);
    f->cache_evictions = atomic_load_explicit(&s->f_evictions, memory_order_relaxed);
    f->db_reads = atomic_load_explicit(&s->f_reads, memory_order_relaxed);
    f->memtable_bytes = rn__prop(s, "rocksdb.cur-size-all-mem-tables");
    f->sst_bytes = rn__prop(s, "rocksdb.total-sst-files-size");
    f->live_data_bytes = rn__prop(s, "rocksdb.estimate-live-data-size");
    f->keys_estimate = rn__prop(s, "rocksdb.estimate-num-keys");
    f->block_cache_bytes = rocksdb_cache_get_usage(s->bcache);
}
