/*
 * rn_offline_int.h — runtime-private interface of `runnel train-offline`
 * (runtime/rn_offline.c; docs/learning.md, "Offline RL"): batch RL of an actor
 * from the joiner's logged labelled lists and their logging propensities.
 *
 * The losses and their gradients are exposed so that tests can check each
 * against finite differences. Every gradient function ADDS its gradient to
 * `grad` (the caller zeroes it), so that a mini-batch is a sum of calls.
 * Shapes: D the item-embedding dimension, F the state features (the simple φ,
 * 2D + 2), Z the VAE's latent dimension.
 */
#ifndef RUNNEL_RN_OFFLINE_INT_H
#define RUNNEL_RN_OFFLINE_INT_H

#include "rn_model.h"

/* The top-K off-policy corrected REINFORCE weight of one logged item
 * (Chen et al. 2019): the importance weight π(a|s) / β(a|s), capped at `cap`
 * (cap <= 0: no cap), times the top-K multiplier λ_K = K (1 − π(a|s))^(K−1). */
double rn_off_topk_weight(double pi, double beta, uint32_t k, double cap);

/* REINFORCE with the top-K off-policy correction, for one rewarded logged
 * item a: the softmax policy of the actor `m` over the n items whose
 * embeddings are the rows of E (n x D) and whose item-bias buckets are
 * bucket[i] = id_i mod H, π(i | s) ∝ exp(e_iᵀ a(s) + b[bucket_i]) (the
 * scores rn_model_advantages serves), and the surrogate loss
 * −c · log π(a | s) with c = rn_off_topk_weight(π(a|s), beta, k, cap) · ret
 * held constant (the weight is not differentiated: Chen et al.'s estimator).
 * *pi_a and *w receive π(a | s) and the weight; scratch holds n + D floats.
 * Adds the gradient (m->at.n floats) to grad when it is not NULL. Needs a
 * linear actor without perturbation. */
double rn_off_reinforce_loss(const struct rn_model *m, const float *phi, const float *E,
                             const uint32_t *bucket, uint32_t n, uint32_t a, double ret,
                             double beta, uint32_t k, double cap, float *grad, double *pi_a,
                             double *w, float *scratch);

/* The critic of DDPG and BCQ: Q(s, a) = vᵀφ + aᵀ(Mφ + m), parameters
 * v [F] | M [D, F] | m [D] in one array of rn_off_critic_size floats. */
size_t rn_off_critic_size(uint32_t d, uint32_t f);
double rn_off_critic_q(const float *c, uint32_t d, uint32_t f, const float *phi, const float *a);
/* ½ (Q(s, a) − y)²; adds its gradient to grad (may be NULL). */
double rn_off_critic_loss(const float *c, uint32_t d, uint32_t f, const float *phi, const float *a,
                          double y, float *grad);

/* The actor's loss −Q(s, a(s)) under the critic c (DDPG's policy loss, and
 * BCQ's perturbation loss). With a0 == NULL, a(s) is the actor's whole action
 * (rn_model_action) and the gradient reaches every parameter; with a0 given
 * (BCQ: an action drawn from the generative model), the action is
 * a0 + pscale · tanh(P [φ; a0] + p) and only the perturbation layer gets a
 * gradient. Adds the gradient to grad (m->at.n floats; may be NULL). */
double rn_off_actor_loss(const struct rn_model *m, const float *c, const float *phi,
                         const float *a0, float *grad);

/* BCQ's generative model of logged actions, a conditional VAE:
 *   encoder   [μ; log σ] = We [φ; a] + be          We [2Z, F + D], be [2Z]
 *   latent    z = μ + σ ⊙ ε                          ε ~ N(0, I), given
 *   decoder   â = scale · tanh(Wd [φ; z] + bd)      Wd [D, F + Z], bd [D]
 * in one array We | be | Wd | bd of rn_off_vae_size floats. Loss:
 * ‖â − a‖² + kl · KL(N(μ, σ²) ‖ N(0, I)). */
size_t rn_off_vae_size(uint32_t d, uint32_t f, uint32_t z);
double rn_off_vae_loss(const float *v, uint32_t d, uint32_t f, uint32_t z, float scale,
                       const float *phi, const float *a, const float *eps, double kl, float *grad);
/* â = scale · tanh(Wd [φ; zv] + bd) into out (D floats). */
void rn_off_vae_decode(const float *v, uint32_t d, uint32_t f, uint32_t z, float scale,
                       const float *phi, const float *zv, float *out);

/* `runnel train-offline ...` (argv[0] is "train-offline"). Exit status 0, 1 or 2. */
int rn_offline_main(int argc, char **argv);

#endif
