/*
 * rn_statenet_int.h — the state network's insides, for its trainer
 * (rn_pretrain.c) and its tests: the struct, a constructor from a shape, the
 * file writer, and the next-click loss with its hand-written gradient.
 */
#ifndef RUNNEL_RN_STATENET_INT_H
#define RUNNEL_RN_STATENET_INT_H

#include "rn_statenet.h"

/* Forward scratch (C + Z + S floats) lives on the stack; load refuses
 * networks that need more. */
#define RN_SN_MAX_SCRATCH 8192u

struct rn_statenet {
    uint32_t k, D, C, w1, w2, n_ctx, S;
    uint32_t Z; /* 2C + n_ctx + D: the dense layer's input */
    struct {
        size_t W1, b1, W2, b2, Wd, bd, n; /* offsets in params, in floats; n: total */
    } at;
    float *params; /* at.n floats, owned */
};

/* A network of this shape with every parameter zero, or NULL (with a
 * message) when the shape is unusable: a zero size, k < max(w1, w2), or
 * scratch beyond RN_SN_MAX_SCRATCH. */
struct rn_statenet *rn__statenet_create(uint32_t k, uint32_t D, uint32_t C, uint32_t w1,
                                        uint32_t w2, uint32_t n_ctx, uint32_t S, char *errbuf,
                                        size_t errlen);

/* Writes n (and, when P != NULL, the projection "proj.weight" [S, D]) as
 * safetensors with metadata history, dim, context and then the caller's
 * n_meta extra pairs (borrowed). Deterministic bytes for the same input. */
int rn__statenet_write(const char *path, const struct rn_statenet *n, const float *P,
                       const char *const *meta_keys, const char *const *meta_vals, size_t n_meta,
                       char *errbuf, size_t errlen);

/* One training example for the next-click objective: the user's state
 * inputs and the m items shown, with target weights y (summing to 1 over
 * the clicked items). All pointers borrowed. */
struct rn__sn_example {
    const float *H; /* n_hist x D, oldest first */
    uint32_t n_hist;
    const float *longterm; /* D */
    const float *ctx;      /* n_ctx */
    const float *E;        /* m x D: the shown items' embeddings */
    const float *y;        /* m */
    uint32_t m;
};

/* Softmax cross-entropy  −Σ_i y_i log softmax(s)_i  of the scores
 * s_i = φ(s)ᵀ P e_i (P is S x D, row-major). When grad != NULL, adds the
 * gradient with respect to n->params (at.n floats) into grad and with respect
 * to P (S x D) into grad_P. When scores != NULL, writes the m scores there.
 * Returns the loss. Thread-safe; allocates its scratch. */
double rn__statenet_loss(const struct rn_statenet *n, const float *P,
                         const struct rn__sn_example *ex, float *grad, float *grad_P,
                         float *scores);

#endif
