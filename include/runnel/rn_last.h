/*
 * rn_last.h — LAST, learning at serving time: per request, a search over
 * throw-away parameter offsets Δθ of the serving policy, scored by a list-wise
 * evaluator (docs/learning.md, "LAST").
 *
 * The policy θ is the dueling-Q model (rn_model.h) that ranks the candidates
 * by A(s, i) = e_iᵀ W φ + wᵀ e_i + b[id_i mod H]; its greedy list L₀ is the top
 * l. Gradient exploration: for the Plackett–Luce distribution
 * P(L | θ) ∝ Π_j exp(A_{L_j} / T) / Σ_{i not above j} exp(A_i / T), the
 * gradient ∇ = ∇_θ log P(L₀ | θ) (over W, w and b; v and c do not change the
 * ranking) raises the probability of L₀, −∇ lowers it. Candidate j is
 * Δθ_j = ±η_j ∇ / ‖∇‖ with η_j = step_size · 2^⌊j/2⌋ (signs alternating, +
 * first); with steps > 1 each candidate takes further steps of the same sign
 * and length from where it is, along the gradient of the list it then
 * generates, and every list on the way is a candidate. Each list is scored by
 * the evaluator (an RN_OBJ_LIST_REWARD model: R̂(s, L)); the best of L₀ and all
 * candidates wins (ties keep the earlier: L₀ first).
 *
 * Δθ lives only in the caller's scratch (ΔW, Δw and one Δb per candidate's
 * bucket); the policy is only read, so any number of threads may search with
 * the same model at once, each with its own scratch.
 */
#ifndef RUNNEL_RN_LAST_H
#define RUNNEL_RN_LAST_H

#include "rn_model.h"

struct rn_last_cfg {
    uint32_t candidates; /* Δθ directions per request */
    uint32_t steps;      /* gradient steps each one takes (>= 1) */
    double step_size;    /* η₀: L2 length in parameter space of the smallest step */
    double temperature;  /* T of the Plackett–Luce distribution differentiated */
    int64_t budget_ns;   /* the search stops when this much time has passed; the
                          * best list so far is served (0: L₀ alone) */
};

struct rn_last_stats {
    uint32_t tried;     /* θ + Δθ lists scored by the evaluator (L₀ not counted) */
    int32_t best;       /* which of them won (in the order tried); −1: L₀ */
    int changed;        /* the winning list differs from L₀ (items or order) */
    int out_of_time;    /* the budget stopped the search before its end */
    double base_reward; /* R̂(s, L₀) */
    double best_reward; /* R̂ of the winner */
};

/* Per-thread scratch, grown as needed; owned by the caller. */
struct rn_last_scratch;
struct rn_last_scratch *rn_last_scratch_create(void);
void rn_last_scratch_destroy(struct rn_last_scratch *x);

/* Searches for the request whose state features are phi (F floats) and whose
 * k candidates have ids `ids` and embeddings the rows of E (k x D), for a
 * list of l. `scores` holds θ's A(s, i) of the candidates
 * (rn_model_advantages) on entry and the winner's A under θ + Δθ on return
 * (θ's unchanged when L₀ wins), so that the caller picks and explores over
 * them as without LAST. `policy` and `evaluator` are borrowed and only read.
 * Returns 0, or RN_EINVAL (nothing changed) when l is 0 or more than k, k is
 * over 65536, the evaluator's dim or phi differ from the policy's, or either
 * is not a dueling Q (an actor has no list-wise gradient here). */
int rn_last_search(const struct rn_model *policy, const struct rn_model *evaluator,
                   const float *phi, const float *E, const uint64_t *ids, uint32_t k, uint32_t l,
                   const struct rn_last_cfg *cfg, struct rn_last_scratch *x, float *scores,
                   struct rn_last_stats *st);

#endif
