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

/* The context features that rn__sn_inputs builds (sin hour, cos hour,
 * history fill), and the long-term vector's half-life when a file does not
 * say (metadata half_life_ms). */
#define RN_SN_CONTEXT 3
#define RN_SN_HALF_LIFE_MS 86400000.0

struct rn_statenet {
    uint32_t k, D, C, w1, w2, n_ctx, S;
    uint32_t Z;          /* 2C + n_ctx + D: the dense layer's input */
    double half_life_ms; /* of the long-term vector its inputs were built with */
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

/* ---- the inputs from a history ------------------------------------------------------
 * `runnel pretrain` (for every training example) and rn_phi_compute (online,
 * rn_phi.c) build the network's inputs from a user's clicked items with the
 * same two pieces, so that the network sees online what it was trained on:
 *
 *   longterm  the time-decayed mean Σ wᵢ eᵢ / Σ wᵢ of the items so far, with
 *             wᵢ = 2^(−(t − tsᵢ)/half_life), kept incrementally: decay(t)
 *             moves both sums to time t, add(e) adds an item at weight 1;
 *   H, ctx    rn__sn_inputs: the last (at most k) items' rows, and
 *             [sin 2πh/24, cos 2πh/24, filled] with h the hour of day (UTC)
 *             of `now` and filled the fraction of the k slots used. */
struct rn__sn_longterm {
    double *sum; /* D, the caller's memory */
    double weight;
    double half_life_ms;
    int64_t last_ts;
    uint32_t D;
    int started; /* decay() has set last_ts */
};

/* Empties lt; sum (D doubles, borrowed for lt's life) is zeroed. */
void rn__sn_longterm_init(struct rn__sn_longterm *lt, uint32_t D, double half_life_ms, double *sum);
/* Decays the sums from the last decay's time to ts (the first call only
 * sets the time). */
void rn__sn_longterm_decay(struct rn__sn_longterm *lt, int64_t ts);
/* Adds the item e (D floats) at weight 1, at the time of the last decay. */
void rn__sn_longterm_add(struct rn__sn_longterm *lt, const float *e);

/* The network's inputs at time `now` for a history whose last n_last (<= k)
 * items' embeddings are last[0..n_last), oldest first, and whose long-term
 * sums are lt: H (the first n_last of its k x D rows), longterm (D floats:
 * zeros when lt is empty) and ctx (RN_SN_CONTEXT floats). All borrowed. */
void rn__sn_inputs(const struct rn__sn_longterm *lt, uint32_t k, const float *const *last,
                   uint32_t n_last, int64_t now, float *H, float *longterm, float *ctx);

#endif
