/*
 * rn_rand.h — header-only random numbers: xoshiro256** seeded through
 * splitmix64, one state per independent stream; uniform doubles in [0, 1) and
 * unbiased bounded integers (by rejection). Operators that draw (inference),
 * `runnel evaluate` and `runnel pretrain` use it; the data
 * generators add their distributions on top (examples/simulator/rn_gen.h).
 *
 * Everything is static inline and needs only libc. The sequences are part of
 * the output of whatever draws from them (same seed, same numbers): changing
 * what a function draws, or how many numbers it consumes, changes them.
 */
#ifndef RUNNEL_RN_RAND_H
#define RUNNEL_RN_RAND_H

#include <assert.h>
#include <stdint.h>

/* One xoshiro256** state. */
struct rn_rand {
    uint64_t s[4];
};

/* splitmix64: advances *x and returns the next output (used to expand a seed). */
static inline uint64_t rn_rand_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Seeds r for stream number `stream` of `seed`: different streams are independent. */
static inline void rn_rand_seed(struct rn_rand *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull);
    for (int i = 0; i < 4; i++)
        r->s[i] = rn_rand_splitmix64(&x);
}

static inline uint64_t rn_rand_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* The next 64 random bits (xoshiro256**). */
static inline uint64_t rn_rand_next(struct rn_rand *r)
{
    uint64_t *s = r->s;
    uint64_t result = rn_rand_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rn_rand_rotl(s[3], 45);
    return result;
}

/* A uniform double in [0, 1). */
static inline double rn_rand_uniform(struct rn_rand *r)
{
    return (double)(rn_rand_next(r) >> 11) * 0x1.0p-53;
}

/* A uniform integer in [0, n) for n >= 1, by rejection, so exactly unbiased. */
static inline uint64_t rn_rand_below(struct rn_rand *r, uint64_t n)
{
    assert(n >= 1);
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = rn_rand_next(r);
    } while (x >= limit);
    return x % n;
}

#endif
