/*
 * rn_gen.h — the distributions runnel's standalone data generators draw from
 * (bench/rn_loggen.c, examples/simulator/rn_sim.c), on top of rn_rand.h:
 * exponential variates and the cumulative table of a Zipf distribution for
 * sampling by inversion.
 *
 * Static inline, libc and libm only. The sequences are part of the
 * generators' output (same options and seed, same bytes): changing what a
 * function draws, or how many numbers it consumes, changes every log they
 * write.
 */
#ifndef RUNNEL_RN_GEN_H
#define RUNNEL_RN_GEN_H

#include <math.h>
#include <stdint.h>

#include "rn_rand.h"

/* An exponential variate with the given mean. */
static inline double rn_rand_exp(struct rn_rand *r, double mean)
{
    return -log1p(-rn_rand_uniform(r)) * mean;
}

/* Fills cdf[0..n-1] (n >= 1) with the cumulative Zipf distribution over ranks 1..n,
 * P(rank k) proportional to k^-s (s >= 0; 0 is uniform): cdf[i] = P(rank <= i + 1), with
 * cdf[n - 1] exactly 1 so that no uniform in [0, 1) falls past the last rank.  A rank is
 * then drawn as 1 + the first index i with cdf[i] > rn_rand_uniform(). */
static inline void rn_rand_zipf_cdf(double *cdf, uint64_t n, double s)
{
    double sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        sum += pow((double)(i + 1), -s);
        cdf[i] = sum;
    }
    for (uint64_t i = 0; i < n; i++)
        cdf[i] /= sum;
    cdf[n - 1] = 1.0;
}

#endif
