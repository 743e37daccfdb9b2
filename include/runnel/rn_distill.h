/*
 * rn_distill.h — online teacher → student distillation of the dueling Q model
 * (DRL-Rec; docs/learning.md, "Distillation").
 *
 * A teacher (the value_advantage_learner's model, wide: D-dimensional items,
 * F-dimensional state) keeps learning by TD as always; a student of the same
 * structure and lower dimension (d < D, its own item table, f = 2d + 2 state
 * features) learns from its own TD loss plus two distillation losses, on every
 * mini-batch the teacher sees:
 *
 *   explore   the shown items and `recall` items drawn from the student's
 *             table (a seeded draw per transition), scored by both models;
 *   filter    the teacher's top `top` of them ∪ the student's top `top`;
 *   KL        Σ_i c_i p_T(i) log(p_T(i) / p_S(i)) over the filtered items,
 *             p = softmax(A / τ) of each model's advantages, c_i the
 *             teacher's confidence on item i: its own on a shown item (one with
 *             real feedback), the running mean on an item never shown;
 *   hint      c̄ · ½ ‖P u_S − u_T‖² / D: the student's user vector u_S = W_S φ_S
 *             + w_S through a learned projection P (D x d) onto the teacher's.
 *
 * The teacher's confidence on a shown item is 1 / (1 + |Q_T − y|), y its TD
 * target (rn_learner_predict); c̄ is its exponentially weighted mean over the
 * shown items seen so far (half-life in items). The teacher is never changed
 * here: its gradient is blocked.
 */
#ifndef RUNNEL_RN_DISTILL_H
#define RUNNEL_RN_DISTILL_H

#include "rn_model.h"

/* ---- the pieces (exposed for tests) ---------------------------------------------- */

/* Filter: the indices (ascending) of the union of the `top` highest of a_t
 * and the `top` highest of a_s over k candidates (ties: the earlier one); an
 * index whose id (ids, k) repeats an id already picked is skipped. `seen`
 * holds k bytes of scratch. Writes at most 2·top indices to out; returns how
 * many. */
uint32_t rn_distill_filter(const float *a_t, const float *a_s, const uint64_t *ids, uint32_t k,
                           uint32_t top, uint32_t *out, uint8_t *seen);

/* The confidence-weighted list-wise KL over n items at temperature tau:
 * L = Σ_i w_i p_T(i) (log p_T(i) − log p_S(i)) (w NULL: every w_i = 1, the
 * plain KL(p_T ‖ p_S)); writes ∂L/∂a_s (n floats) to g_s when not NULL. */
double rn_distill_kl(const float *a_t, const float *a_s, const float *w, uint32_t n, double tau,
                     float *g_s);

/* The hint loss L = ½ ‖P h_s − h_t‖² / dt for P dt x ds (row-major), h_s ds
 * and h_t dt floats; adds scale · ∂L/∂P to g_P and scale · ∂L/∂h_s to g_hs
 * when they are not NULL. */
double rn_distill_hint(const float *P, const float *h_s, const float *h_t, uint32_t ds, uint32_t dt,
                       double scale, float *g_P, float *g_hs);

/* The teacher's running confidence. */
struct rn_confidence {
    double num, den, decay;
};

/* decay = 2^(−1 / half_life_items); the mean starts empty (0). */
void rn_confidence_init(struct rn_confidence *c, double half_life_items);
/* One item's confidence from the teacher's Q and the TD target: 1 / (1 + |q − y|). */
double rn_confidence_item(double q, double y);
/* Folds one item's confidence into the mean: num ← decay·num + x, den ← decay·den + 1. */
void rn_confidence_add(struct rn_confidence *c, double x);
/* num / den, or 0 before the first item. */
double rn_confidence_mean(const struct rn_confidence *c);

/* ---- the distiller ---------------------------------------------------------------- */

struct rn_distill_cfg {
    uint32_t recall;             /* candidates drawn per transition besides the shown items */
    uint32_t top;                /* each model's top this many are distilled */
    double temperature;          /* τ of both softmaxes, > 0 */
    double kl_weight;            /* λ_KL >= 0 */
    double hint_weight;          /* λ_hint >= 0 */
    double confidence_half_life; /* items, > 0 */
    double learning_rate;        /* of the projection P (Adam), > 0 */
};

struct rn_distill_stats {
    uint64_t updates;  /* distillation steps */
    uint64_t items;    /* filtered items distilled, in all */
    double confidence; /* c̄ after the last step */
    double last_kl;    /* the last step's weighted KL, per transition */
    double last_hint;  /* the last step's weighted hint loss, per transition */
};

struct rn_distiller;

/* Takes ownership of `student` (its model's dim must be s_emb's; on failure
 * the caller keeps it); borrows the
 * two item tables (same item ids, dims D and d), which must outlive the
 * distiller. teacher_dim is D. Returns NULL with a message on a bad
 * configuration. */
struct rn_distiller *rn_distiller_create(struct rn_learner *student, const struct rn_embed *t_emb,
                                         const struct rn_embed *s_emb,
                                         const struct rn_distill_cfg *cfg, char *errbuf,
                                         size_t errlen);
void rn_distiller_destroy(struct rn_distiller *d);
/* The student's learner (borrowed: the distiller keeps it). */
struct rn_learner *rn_distiller_student(struct rn_distiller *d);
const struct rn_distill_stats *rn_distiller_stats(const struct rn_distiller *d);

/* The distillation loss of a mini-batch of nb transitions, averaged over
 * them, at the current confidence (λ_KL · KL + λ_hint · c̄ · hint), and when
 * g_student (the student's at.n floats) and g_P (D·d floats) are not NULL its
 * gradient (overwritten). tt[k] is transition k as the teacher sees it (its
 * φ and the shown items' D-dim rows), st[k] as the student does (its φ and
 * d-dim rows; the same items); seeds[k] seeds transition k's recall draw.
 * Changes nothing but scratch. */
double rn_distill_loss(struct rn_distiller *d, struct rn_learner *teacher,
                       const struct rn_transition *tt, const struct rn_transition *st,
                       const uint64_t *seeds, uint32_t nb, float *g_student, float *g_P);

/* One step: folds the teacher's confidence on the shown items into c̄, then
 * moves the student by its TD gradient plus the distillation gradient
 * (rn_learner_update_extra) and P by Adam. Deterministic for the same inputs.
 * Returns 0, or RN_EINVAL when a gradient is not finite. */
int rn_distill_update(struct rn_distiller *d, struct rn_learner *teacher,
                      const struct rn_transition *tt, const struct rn_transition *st,
                      const uint64_t *seeds, uint32_t nb);

/* The projection P (D x d, row-major; borrowed) — for tests. */
float *rn_distiller_projection(struct rn_distiller *d);

/* The distiller's whole state (the student's learner bytes, P and its
 * moments, the confidence, the counters) for checkpoints; and back
 * (RN_ECORRUPT when it does not fit). */
void rn_distiller_save(const struct rn_distiller *d, struct rn_buf *out);
int rn_distiller_load(struct rn_distiller *d, const void *p, size_t n);

#endif
