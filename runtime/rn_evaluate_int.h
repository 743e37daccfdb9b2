/*
 * rn_evaluate_int.h — runtime-private interface of `runnel evaluate`, the
 * off-policy evaluation of a target policy from logged labelled lists
 * (runtime/rn_evaluate.c; docs/evaluation.md, "Off-policy evaluation").
 *
 * Two layers, so that tests can reach each:
 *   rn_ope_estimate   the estimators (IPS, SNIPS, DR) and their bootstrap
 *                     intervals over a plain array of logged observations;
 *   rn_ope_load/run   samples files -> observations for a named policy.
 */
#ifndef RUNNEL_RN_EVALUATE_INT_H
#define RUNNEL_RN_EVALUATE_INT_H

#include <stdio.h>

#include "rn_common.h"

/* One logged action (a list's item at its position) as the estimators see it. */
struct rn_ope_obs {
    double r;    /* the logged reward of the item */
    double w;    /* importance weight pi_e(a | x, p) / pi_0(a | x, p) */
    double q_a;  /* q^(x, a, p): the reward model at the logged item */
    double q_pi; /* sum over candidates c of pi_e(c | x, p) q^(x, c, p) */
};

struct rn_ope_ci {
    double est, lo, hi; /* point estimate and the 95% percentile interval */
};

struct rn_ope_result {
    size_t n;       /* observations (slots) */
    size_t groups;  /* resampling units (lists) */
    size_t matched; /* observations with w > 0 */
    double mean_r;  /* on-policy mean of the logged rewards */
    struct rn_ope_ci ips, snips, dr;
    double ess; /* effective sample size (sum w)^2 / sum w^2 */
    double max_w;
    int snips_defined; /* 0 when sum w == 0 (no logged action the target takes) */
};

/* Estimates from n observations grouped into n_groups resampling units:
 * group g is obs[start[g] .. start[g + 1]) (start has n_groups + 1 entries;
 * NULL: every observation is its own group). The bootstrap draws n_groups
 * groups with replacement, n_boot times, from a xoshiro256** stream seeded
 * with `seed`; the same draws serve all three estimators. n_boot == 0: no
 * intervals (lo = hi = est). Arrays are borrowed. Returns 0 or RN_EINVAL. */
int rn_ope_estimate(const struct rn_ope_obs *obs, size_t n, const size_t *start, size_t n_groups,
                    uint32_t n_boot, uint64_t seed, struct rn_ope_result *out);

/* ---- logged data ---------------------------------------------------------- */

/* Labelled lists, sorted by (ts, request); `runnel train-offline`
 * (rn_offline.c) reads them through the same loader. */
struct rn_ope_slot {
    uint32_t item; /* index into the item table */
    uint32_t pos;  /* as logged */
    double prop;
    double reward;
};

struct rn_ope_list {
    int64_t ts;
    uint32_t user;
    uint32_t first, n; /* slots[first .. first + n) */
    char *request;
    uint32_t ctx_first, n_ctx; /* ctx[ctx_first .. + n_ctx): the sample's numeric context */
};

/* One numeric field of a sample's context: name (index into ctx_names) and value. */
struct rn_ope_ctxval {
    uint32_t name;
    double v;
};

/* A string -> dense index table (open addressing on rn_hash64). */
struct rn_ope_intern {
    char **names;
    uint64_t *hashes;
    size_t n, cap_names;
    uint32_t *slots; /* index + 1, 0 empty */
    size_t cap;      /* power of two */
};

struct rn_ope_data {
    struct rn_ope_list *lists;
    size_t n_lists, cap_lists;
    struct rn_ope_slot *slots;
    size_t n_slots, cap_slots;
    struct rn_ope_intern items, users, ctx_names;
    struct rn_ope_ctxval *ctx;
    size_t n_ctx, cap_ctx;
    uint32_t min_pos, max_pos, max_list;
    /* The catalogue of position p: cat[p - min_pos] holds n_cat[..] item indices. */
    uint32_t **cat;
    uint32_t *n_cat;
};

/* Reads samples (JSON lines as the online_joiner writes them) from a file or,
 * recursively, from a directory's *.jsonl / *.json files. NULL with a message
 * ("FILE:LINE: reason") on bad input. */
struct rn_ope_data *rn_ope_load(const char *path, char *errbuf, size_t errlen);
void rn_ope_data_free(struct rn_ope_data *d);
size_t rn_ope_data_lists(const struct rn_ope_data *d);
size_t rn_ope_data_slots(const struct rn_ope_data *d);

enum rn_ope_cands { RN_OPE_CANDS_AUTO = 0, RN_OPE_CANDS_CATALOGUE = 1, RN_OPE_CANDS_LIST = 2 };

struct rn_ope_opts {
    double train_fraction; /* 0: evaluate on all, q^ cross-fitted; else the first part fits q^ */
    uint32_t bootstrap;
    uint64_t seed;
    double epsilon;            /* for greedy policies (popularity, model) */
    int candidates;            /* enum rn_ope_cands */
    const char *embeddings;    /* item-embedding table for model: policies */
    uint32_t history;          /* phi: items of history */
    double half_life_ms;       /* phi: decay half life */
    const char *state_network; /* phi: the learner's state network; NULL: the simple phi */
    const char *context;       /* phi: comma-separated request-context fields (the learner's
                                * context_fields), read from each sample's "context"; NULL: none */
};

/* The policy named by `spec` (logging, random, popularity, model:DIR[@N])
 * evaluated on d. *policy_desc (may be NULL) receives a malloc'd one-line
 * description (caller frees). Returns 0 or a negative RN_E* with a message. */
int rn_ope_evaluate(const struct rn_ope_data *d, const char *spec, const struct rn_ope_opts *o,
                    struct rn_ope_result *out, char **policy_desc, char *errbuf, size_t errlen);

/* `runnel evaluate ...` (argv[0] is "evaluate"). Exit status 0, 1 or 2. */
int rn_evaluate_main(int argc, char **argv);

#endif
