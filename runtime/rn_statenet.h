/*
 * rn_statenet.h — the pretrained state network: φ(s) from a user's real-time
 * history, as in Meituan's "guess you like" (docs/learning.md, "The state
 * network"):
 *
 *   H (k x D, oldest first) --conv width w1, C filters, ReLU--> max over time --> p1 (C)
 *                           --conv width w2, C filters, ReLU--> max over time --> p2 (C)
 *   z = [p1 | p2 | ctx (n_ctx) | longterm (D)]
 *   φ = tanh(Wd z + bd)                                                        (S)
 *
 * The network is read from a safetensors file (rn_model.h) and is read-only
 * after loading: one instance may be shared by any number of threads. Jobs,
 * the simulator and `runnel evaluate` use it through rn_phi_compute
 * (rn_model.h), which builds H, ctx and longterm from a user's history as
 * `runnel pretrain` does.
 */
#ifndef RUNNEL_RN_STATENET_H
#define RUNNEL_RN_STATENET_H

#include "rn_common.h"

struct rn_statenet;

/* Loads a network from a safetensors file with tensors conv1.weight [C, w1, D],
 * conv1.bias [C], conv2.weight [C, w2, D], conv2.bias [C], dense.weight
 * [S, 2C + n_ctx + D], dense.bias [S] and metadata history=k, dim=D,
 * context=n_ctx (other tensors, such as pretrain's proj.weight, are ignored).
 * Returns NULL with a message naming the file and the tensor that is wrong.
 * The caller owns the result (rn_statenet_destroy). */
struct rn_statenet *rn_statenet_load(const char *path, char *errbuf, size_t errlen);
void rn_statenet_destroy(struct rn_statenet *n);

/* S, the size of φ. */
uint32_t rn_statenet_out_dim(const struct rn_statenet *n);
/* k, D and n_ctx: what forward expects. */
uint32_t rn_statenet_history(const struct rn_statenet *n);
uint32_t rn_statenet_dim(const struct rn_statenet *n);
uint32_t rn_statenet_context(const struct rn_statenet *n);
/* The half-life of the long-term interest vector the network was trained
 * with (metadata half_life_ms; 24 h when the file does not say). */
double rn_statenet_half_life_ms(const struct rn_statenet *n);

/* φ into out (S floats). H holds n_hist item embeddings (n_hist x D,
 * row-major, oldest first); only the last k are used, and when there are
 * fewer than k the missing oldest rows are zeros. longterm is D floats, ctx is
 * n_ctx floats (may be NULL when n_ctx is 0). All pointers are borrowed.
 * Thread-safe: scratch lives on the caller's stack. */
void rn_statenet_forward(const struct rn_statenet *n, const float *H, uint32_t n_hist,
                         const float *longterm, const float *ctx, float *out);

#endif
