/*
 * rn_common.h — error codes, growable byte buffers, arenas and small helpers
 * shared by every runnel module.
 *
 * Conventions (see docs/architecture.md):
 *   - functions return 0 on success and a negative RN_E* code on failure;
 *   - constructors return NULL and write a human message into (errbuf, errlen);
 *   - messages about user input name the place: "job.yaml:12:7: ...".
 */
#ifndef RUNNEL_RN_COMMON_H
#define RUNNEL_RN_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define RN_VERSION "0.1.0"

enum rn_err {
    RN_OK = 0,
    RN_ENOMEM = -1,   /* allocation failed */
    RN_EINVAL = -2,   /* bad argument or bad user input */
    RN_EIO = -3,      /* read/write/fsync failed */
    RN_ENOENT = -4,   /* no such thing (file, key, operator) */
    RN_ETYPE = -5,    /* record type mismatch */
    RN_ESTOP = -6,    /* the job was asked to stop */
    RN_EFULL = -7,    /* a bounded resource is full */
    RN_ESTATE = -8,   /* the state backend failed */
    RN_ECORRUPT = -9, /* stored data failed a check */
};

const char *rn_strerror(int err);

#define RN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define RN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RN_MAX(a, b) ((a) > (b) ? (a) : (b))
#define RN_UNUSED(x) ((void)(x))

#if defined(__GNUC__)
#define RN_LIKELY(x) __builtin_expect(!!(x), 1)
#define RN_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define RN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RN_LIKELY(x) (x)
#define RN_UNLIKELY(x) (x)
#define RN_PRINTF(a, b)
#endif

/* snprintf into an error buffer; tolerates errbuf == NULL. */
void rn_errf(char *errbuf, size_t errlen, const char *fmt, ...) RN_PRINTF(3, 4);

/* Allocation that aborts with a message on failure: used where running out of
 * memory leaves no sensible way on (the hot path of a pipeline). */
void *rn_xmalloc(size_t n);
void *rn_xcalloc(size_t n, size_t size);
void *rn_xrealloc(void *p, size_t n);
char *rn_xstrdup(const char *s);
char *rn_xstrndup(const char *s, size_t n);

/* Monotonic and wall clocks. */
int64_t rn_now_ns(void);     /* CLOCK_MONOTONIC */

/* Paces a source at `rate` records per second (max_rate): rn_pacer_allow()
 * says how many it may emit now, at most `max`, or 0 when it is ahead (wait a
 * little and poll again); count what was emitted in `emitted`. */
struct rn_pacer {
    int64_t start_ns; /* when pacing began (0: not yet) */
    int64_t emitted;
};
int rn_pacer_allow(struct rn_pacer *p, int64_t rate, int max);
int64_t rn_wall_ms(void);    /* CLOCK_REALTIME, ms since the epoch */

/* ---- growable byte buffer ---------------------------------------------- */

struct rn_buf {
    char *data;
    size_t len;
    size_t cap;
};

#define RN_BUF_INIT {NULL, 0, 0}

void rn__buf_grow(struct rn_buf *b, size_t extra);
static inline void rn_buf_reserve(struct rn_buf *b, size_t extra)
{
    if (RN_UNLIKELY(b->len + extra > b->cap)) rn__buf_grow(b, extra);
}
static inline void rn_buf_append(struct rn_buf *b, const void *p, size_t n)
{
    if (!n) return;
    rn_buf_reserve(b, n);
    __builtin_memcpy(b->data + b->len, p, n);
    b->len += n;
}
static inline void rn_buf_putc(struct rn_buf *b, char c)
{
    rn_buf_reserve(b, 1);
    b->data[b->len++] = c;
}
/* For a buffer that is written out when it holds `limit` bytes (a sink's
 * output): true when the next record, if it needs as much room as the largest
 * so far (`room`, kept by rn_buf_note_room), could make the buffer grow past
 * `limit`, so that it should be written out first. Writing out between records
 * changes where the writes are cut, never the bytes. */
static inline int rn_buf_full_for(const struct rn_buf *b, size_t limit, size_t room)
{
    return b->len && b->len + room > limit;
}
/* After a record was appended from `start` on: keeps in *room the most room a
 * record has needed. The JSON writers reserve up to six bytes per input byte of
 * a string before they write it, so a record of n bytes may have needed 7n. */
static inline void rn_buf_note_room(const struct rn_buf *b, size_t start, size_t *room)
{
    size_t need = (b->len - start) * 7 + 8;
    if (need > *room) *room = need;
}
/* Appends a string literal without strlen. */
#define RN_BUF_LIT(b, lit) rn_buf_append((b), (lit), sizeof(lit) - 1)
void rn_buf_puts(struct rn_buf *b, const char *s);
void rn_buf_printf(struct rn_buf *b, const char *fmt, ...) RN_PRINTF(2, 3);
void rn_buf_free(struct rn_buf *b);
static inline void rn_buf_reset(struct rn_buf *b)
{
    b->len = 0;
}

/* Direct JSON writers (no library printer: they cost 10-25x more). */
void rn_json_str(struct rn_buf *b, const char *s, size_t n); /* quoted, escaped */
void rn_json_i64(struct rn_buf *b, int64_t v);
void rn_json_u64(struct rn_buf *b, uint64_t v);
void rn_json_f64(struct rn_buf *b, double v); /* round-trips; <= 17 digits; null if not finite */
/* Writes bytes as a JSON string if they are valid UTF-8, else as base64 under
 * key "<key>_base64"; writes the key too. */
void rn_json_kv_bytes(struct rn_buf *b, const char *key, const void *p, size_t n);
int rn_utf8_valid(const void *p, size_t n);
/* Offset of the first byte that is not strict UTF-8 (overlong forms and
 * surrogates included), or -1 when all of it is. */
long rn_utf8_check(const void *p, size_t n);
void rn_base64(struct rn_buf *b, const void *p, size_t n);

/* ---- arena: bump allocator with stable addresses ------------------------ */

struct rn_arena_chunk;
struct rn_arena {
    struct rn_arena_chunk *head; /* current chunk; older ones chained */
    size_t chunk_size;
    size_t used_total;
};

void rn_arena_init(struct rn_arena *a, size_t chunk_size);
void *rn_arena_alloc(struct rn_arena *a, size_t n); /* 8-byte aligned, never NULL */
void rn_arena_reset(struct rn_arena *a);            /* keeps the first chunk */
void rn_arena_destroy(struct rn_arena *a);

/* ---- hashing (xxHash) and key groups ------------------------------------ */

uint64_t rn_hash64(const void *p, size_t n);
static inline uint32_t rn_key_group(uint64_t key, uint32_t max_parallelism)
{
    return (uint32_t)(key % max_parallelism);
}
/* The subtask that owns a key group, as Flink assigns ranges of key groups. */
static inline uint32_t rn_key_group_owner(uint32_t kg, uint32_t max_parallelism,
                                          uint32_t parallelism)
{
    return (uint32_t)(((uint64_t)kg * parallelism) / max_parallelism);
}

/* Edit distance, for "did you mean" suggestions. */
int rn_edit_distance(const char *a, const char *b);
/* The candidate closest to `word` if it is close enough to suggest, else NULL. */
const char *rn_suggest(const char *word, const char *const *candidates, size_t n);

#endif
