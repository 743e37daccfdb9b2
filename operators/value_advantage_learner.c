/*
 * value_advantage_learner.c — `value_advantage_learner`: online TD learning of
 * a dueling Q = V(s) + A(s,a) − mean A on the experience stream, publishing
 * immutable model versions to a model store (docs/learning.md).
 *
 * One instance (RN_OP_SINGLETON: every upstream subtask gathers into it). Each
 * transition becomes φ(s), φ(s') (rn_phi_compute: the simple φ, or the
 * `state_network`'s), the shown items' embeddings, positions, rewards and
 * clicks (rn_model.h), and mini-batches of `batch_size` go through
 * rn_learner_update.
 *
 * Order. With `deterministic: true` (the default) transitions wait in a buffer
 * until the watermark passes them, then are learnt in (event time, user,
 * request, bytes) order: since no record at or before a watermark comes after
 * it, that order — and so every mini-batch and every model — is a function of
 * the log alone, whatever the parallelism upstream, the batch boundaries of
 * the exchanges or a crash and restore in between. Versions are then
 * published only at event-time boundaries b = k · publish_event_time (a
 * version at b has learnt exactly the transitions before b, the partial
 * mini-batch cut there) and at the end of a bounded input (not when the job
 * is stopped: what waits then stays in the final checkpoint). Without it,
 * transitions are learnt as they come and versions are published every
 * `publish_every` updates, every `publish_interval` of wall time and when a
 * checkpoint completes.
 *
 * Distillation (DRL-Rec, rn_distill.h). With `student_model_store`, the model
 * above is a teacher and a student of the same structure over a lower-
 * dimension item table (`student_embeddings`) learns beside it from every
 * mini-batch, before the teacher takes its step: its own TD loss plus the
 * confidence-weighted list-wise KL and hint losses on the items explore and
 * filter picks. The teacher learns exactly as without a student (the same
 * versions, byte for byte); the student's versions go to their own store with
 * the same ids at the same moments, for an inference operator to serve.
 *
 * The whole learner (online and target parameters, optimiser moments,
 * counters), the student's, the waiting transitions and the partial
 * mini-batch are operator state in the same checkpoint as the stream
 * (snapshot/restore).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_checkpoint.h"
#include "rn_distill.h"
#include "rn_model.h"
#include "rn_operator.h"
#include "rn_rand.h"
#include "rn_sample.h"

enum { RN_VAL_SGD, RN_VAL_ADAGRAD, RN_VAL_ADAM };
static const char *const rn_val_optimizers[] = {"sgd", "adagrad", "adam", NULL};
/* In the order of enum rn_adv_baseline. */
static const char *const rn_val_baselines[] = {"list_mean", "none", NULL};
/* In the order of enum rn_objective. */
static const char *const rn_val_objectives[] = {"td", "list_reward", NULL};

struct rn_val_cfg {
    const char *model_store;
    struct rn_model_topic_cfg mt; /* model_topic, model_brokers, model_key */
    struct rn_phi_cfg feat; /* embeddings, history, half_life, state_network, context */
    double gamma, learning_rate, l2, clip;
    int optimizer, advantage_baseline, objective;
    int64_t batch_size, target_every, item_buckets, positions;
    int deterministic;
    int64_t publish_event_time, publish_every, publish_interval;
    /* distillation */
    const char *student_store, *student_embeddings;
    int64_t distill_recall, distill_top, distill_half_life;
    double distill_temperature, distill_kl_weight, distill_hint_weight;
};

static const struct rn_config_key rn_val_keys[] = {
    RN_PHI_CONFIG_KEYS(struct rn_val_cfg, feat),
    {"model_store", RN_CT_STRING, NULL, NULL, offsetof(struct rn_val_cfg, model_store),
     "Directory of the model store the learner publishes versions to (created if missing). "
     "This, `model_topic`, or both (each version goes to both).",
     NULL, 0, 0, 0},
    RN_MODEL_TOPIC_CONFIG_KEYS(struct rn_val_cfg, mt),
    {"gamma", RN_CT_DOUBLE, "0.9", NULL, offsetof(struct rn_val_cfg, gamma),
     "Discount of the next list's value in the TD target, in [0, 1).", NULL, 0, 0, 0},
    {"learning_rate", RN_CT_DOUBLE, "0.01", NULL, offsetof(struct rn_val_cfg, learning_rate),
     "Step size of the optimiser.", NULL, 0, 0, 0},
    {"optimizer", RN_CT_ENUM, "adam", NULL, offsetof(struct rn_val_cfg, optimizer),
     "Optimiser: sgd, adagrad or adam.", rn_val_optimizers, 0, 0, 0},
    {"advantage_baseline", RN_CT_ENUM, "list_mean", NULL,
     offsetof(struct rn_val_cfg, advantage_baseline),
     "What Q subtracts from the advantage: `list_mean` (the dueling network's mean over the "
     "shown list; A learns only differences within a list, so lists of one item, as in the Open "
     "Bandit Dataset, teach it nothing) or `none` (Q = V + A: A learns from one-item lists too).",
     rn_val_baselines, 0, 0, 0},
    {"objective", RN_CT_ENUM, "td", NULL, offsetof(struct rn_val_cfg, objective),
     "What the model learns: `td` (the dueling Q by TD, served by inference) or `list_reward` "
     "(the same tensors as a list-wise reward model R(s, L) = v.phi + sum_p c[p] (e_p W phi + "
     "w.e_p + b[id_p]) fitted to each list's total reward: the evaluator that inference's "
     "`last_evaluator` names; gamma and advantage_baseline are then unused).",
     rn_val_objectives, 0, 0, 0},
    {"l2", RN_CT_DOUBLE, "0.000001", NULL, offsetof(struct rn_val_cfg, l2),
     "L2 penalty on v, W and w (not on the item and position biases).", NULL, 0, 0, 0},
    {"clip", RN_CT_DOUBLE, "10", NULL, offsetof(struct rn_val_cfg, clip),
     "Clip the gradient's global L2 norm to this; 0: no clipping.", NULL, 0, 0, 0},
    {"batch_size", RN_CT_INT, "32", "transitions", offsetof(struct rn_val_cfg, batch_size),
     "Transitions per mini-batch.", NULL, 0, 1, 65536},
    {"target_every", RN_CT_INT, "200", "updates", offsetof(struct rn_val_cfg, target_every),
     "Refresh the target copy (used for V̂(s') in the target) every this many updates.", NULL, 0, 1,
     (int64_t)1 << 40},
    {"item_buckets", RN_CT_INT, "65536", "buckets", offsetof(struct rn_val_cfg, item_buckets),
     "Hashed item-bias buckets (item id mod buckets).", NULL, 0, 1, 1 << 24},
    {"positions", RN_CT_INT, "16", "positions", offsetof(struct rn_val_cfg, positions),
     "Position terms of the advantage; deeper positions share the last.", NULL, 0, 1, 1024},
    {"deterministic", RN_CT_BOOL, "true", NULL, offsetof(struct rn_val_cfg, deterministic),
     "Learn in event-time order up to the watermark, so that the same log gives the same "
     "models at any parallelism and across crashes; versions at event-time boundaries.",
     NULL, 0, 0, 0},
    {"publish_event_time", RN_CT_DURATION, "10m", "ms",
     offsetof(struct rn_val_cfg, publish_event_time),
     "Deterministic mode: publish a version at every multiple of this much event time.", NULL, 0, 1,
     (int64_t)1 << 50},
    {"publish_every", RN_CT_INT, "1000", "updates", offsetof(struct rn_val_cfg, publish_every),
     "Otherwise: publish a version every this many updates.", NULL, 0, 1, (int64_t)1 << 40},
    {"publish_interval", RN_CT_DURATION, "10s", "ms", offsetof(struct rn_val_cfg, publish_interval),
     "Otherwise: publish a version at least this often (wall time) while learning.", NULL, 0, 1,
     (int64_t)1 << 40},
    {"student_model_store", RN_CT_STRING, NULL, NULL, offsetof(struct rn_val_cfg, student_store),
     "Distillation (DRL-Rec): the model store of a student that learns from this learner's "
     "model (the teacher) and is published beside it, same version ids, same moments. Default "
     "none: no student.",
     NULL, 0, 0, 0},
    {"student_embeddings", RN_CT_STRING, NULL, NULL,
     offsetof(struct rn_val_cfg, student_embeddings),
     "The student's item table: the same item ids as `embeddings` in fewer dimensions (e.g. "
     "`runnel embed-reduce`'s output); its dimension is the student's. Required with "
     "student_model_store.",
     NULL, 0, 0, 0},
    {"distill_recall", RN_CT_INT, "100", "items", offsetof(struct rn_val_cfg, distill_recall),
     "Explore: items drawn from the student's table per transition (seeded by the request), "
     "besides the shown ones, that both models score.",
     NULL, 0, 0, 100000},
    {"distill_top", RN_CT_INT, "3", "items", offsetof(struct rn_val_cfg, distill_top),
     "Filter: the teacher's and the student's top this many of the explored items are "
     "distilled (their union).",
     NULL, 0, 1, 10000},
    {"distill_temperature", RN_CT_DOUBLE, "1", NULL,
     offsetof(struct rn_val_cfg, distill_temperature),
     "Temperature of the softmaxes over advantages in the list-wise KL loss.", NULL, 0, 0, 0},
    {"distill_kl_weight", RN_CT_DOUBLE, "1", NULL, offsetof(struct rn_val_cfg, distill_kl_weight),
     "Weight of the confidence-weighted list-wise KL loss in the student's loss.", NULL, 0, 0, 0},
    {"distill_hint_weight", RN_CT_DOUBLE, "0.1", NULL,
     offsetof(struct rn_val_cfg, distill_hint_weight),
     "Weight of the hint loss (the student's user vector projected onto the teacher's), times "
     "the teacher's mean confidence.",
     NULL, 0, 0, 0},
    {"distill_confidence_half_life", RN_CT_INT, "10000", "items",
     offsetof(struct rn_val_cfg, distill_half_life),
     "Half-life of the teacher's running confidence, 1 / (1 + |Q − y|) over shown items.", NULL, 0,
     1, (int64_t)1 << 40},
    RN_CONFIG_END,
};

static int rn_val_init(void *ctx, const struct rn_cfg_node *node, char *errbuf, size_t errlen)
{
    struct rn_val_cfg *c = ctx;
    int rc = rn_phi_cfg_init(&c->feat, errbuf, errlen);
    if (rc) return rc;
    if (!(c->gamma >= 0 && c->gamma < 1)) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, "gamma"), "gamma must be in [0, 1)");
        return RN_EINVAL;
    }
    if (!(c->learning_rate > 0)) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, "learning_rate"), "learning_rate must be > 0");
        return RN_EINVAL;
    }
    if (!(c->l2 >= 0) || !(c->clip >= 0)) {
        rn_cfg_errf(errbuf, errlen, node, "l2 and clip must be >= 0");
        return RN_EINVAL;
    }
    if (!c->student_store != !c->student_embeddings) {
        rn_cfg_errf(
            errbuf, errlen,
            rn_cfg_get(node, c->student_store ? "student_model_store" : "student_embeddings"),
            "student_model_store and student_embeddings go together");
        return RN_EINVAL;
    }
    if (c->student_store && c->objective == RN_OBJ_LIST_REWARD) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, "student_model_store"),
                    "a student distils a learner with objective: td, not list_reward");
        return RN_EINVAL;
    }
    if (!(c->distill_temperature > 0)) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, "distill_temperature"),
                    "distill_temperature must be > 0");
        return RN_EINVAL;
    }
    if (!(c->distill_kl_weight >= 0) || !(c->distill_hint_weight >= 0)) {
        rn_cfg_errf(errbuf, errlen, node, "distill_kl_weight and distill_hint_weight must be >= 0");
        return RN_EINVAL;
    }
    return rn_model_topic_cfg_check(&c->mt, c->model_store, 1, node, errbuf, errlen);
}

static int rn_val_init_types(void *ctx, struct rn_types *ts, const struct rn_cfg_node *node,
                             char *errbuf, size_t errlen)
{
    struct rn_val_cfg *c = ctx;
    (void)node;
    return rn_phi_cfg_init_types(&c->feat, ts, errbuf, errlen);
}

/* ---- the instance ---------------------------------------------------------------- */

/* A waiting transition: its record's bytes, with the header fields kept. */
struct rn_val_rec {
    int64_t ts;
    uint64_t user, request;
    uint32_t len, off; /* payload in rn_val.bytes */
};

struct rn_val_list {
    struct rn_val_rec *r;
    size_t n, cap;
    struct rn_buf bytes;
};

struct rn_val {
    struct rn_embed *emb;
    struct rn_phi_spec spec; /* φ: the simple one or the state network */
    void *phi_scratch;
    struct rn_learner *l;
    uint32_t dim, phi;
    struct rn_val_list wait;  /* deterministic: behind the watermark */
    struct rn_val_list batch; /* the partial mini-batch, in learning order */
    int64_t next_boundary;    /* deterministic: the next event-time boundary; RN_TS_MIN: none yet */
    int64_t max_ts;           /* the latest transition's event time */
    int64_t wm;               /* deterministic: the watermark learnt up to */
    int64_t next_version;
    uint64_t published_updates;
    int64_t last_publish_ns;
    struct rn_model_pub *pub; /* model_topic's producer; NULL without one */
    /* Scratch for one mini-batch. */
    struct rn_transition *tr;
    float *fl;
    uint64_t *ids;
    uint32_t *pos;
    uint8_t *clicked;
    size_t fl_cap, it_cap;
    struct rn_hist *hist;
    size_t hist_cap;
    /* Distillation: the student (NULL: none), its table, φ and scratch. */
    struct rn_distiller *dist;
    struct rn_embed *semb;
    struct rn_phi_spec sspec;
    uint32_t sdim, sphi;
    int64_t next_student_version;
    struct rn_transition *str;
    float *sfl;
    uint64_t *seeds;
    size_t sfl_cap;
};

enum {
    M_TRANSITIONS,
    M_UPDATES,
    M_VERSIONS,
    M_VERSION,
    M_LATE,
    M_MISSING,
    M_LOSS_MICRO,
    M_REWARD_MILLI,
    M_DONE,
    M_DIST_UPDATES,
    M_DIST_ITEMS,
    M_DIST_CONF_MILLI,
    M_DIST_KL_MICRO,
};
static const char *const rn_val_metrics[] = {"transitions",
                                             "updates",
                                             "versions",
                                             "model_version",
                                             "late_transitions",
                                             "missing_embeddings",
                                             "loss_micro_sum",
                                             "reward_milli_sum",
                                             "sessions_ended",
                                             "distill_updates",
                                             "distilled_items",
                                             "confidence_milli_sum",
                                             "distill_kl_micro_sum",
                                             NULL};
static const struct rn_metric_ratio rn_val_ratios[] = {
    {"mean_td_loss", M_LOSS_MICRO, M_UPDATES, 1e-6},
    {"reward_per_list", M_REWARD_MILLI, M_TRANSITIONS, 1e-3},
    {"reward_per_session", M_REWARD_MILLI, M_DONE, 1e-3},
    {"teacher_confidence", M_DIST_CONF_MILLI, M_DIST_UPDATES, 1e-3},
    {"mean_distill_kl", M_DIST_KL_MICRO, M_DIST_UPDATES, 1e-6},
    {NULL, 0, 0, 0},
};

static void rn_val_list_add(struct rn_val_list *L, int64_t ts, uint64_t user, uint64_t request,
                            const void *p, uint32_t len)
{
    if (L->n == L->cap) {
        L->cap = L->cap ? L->cap * 2 : 256;
        L->r = rn_xrealloc(L->r, L->cap * sizeof *L->r);
    }
    /* payloads stay 8-aligned in the buffer */
    size_t pad = (8 - (L->bytes.len & 7)) & 7;
    static const char zeros[8];
    rn_buf_append(&L->bytes, zeros, pad);
    L->r[L->n++] = (struct rn_val_rec){ts, user, request, len, (uint32_t)L->bytes.len};
    rn_buf_append(&L->bytes, p, len);
}

static void rn_val_list_clear(struct rn_val_list *L)
{
    L->n = 0;
    rn_buf_reset(&L->bytes);
}

static void rn_val_list_free(struct rn_val_list *L)
{
    free(L->r);
    rn_buf_free(&L->bytes);
    memset(L, 0, sizeof *L);
}

static const struct rn_experience *rn_val_payload(const struct rn_val_list *L, size_t i)
{
    return (const struct rn_experience *)(L->bytes.data + L->r[i].off);
}

/* ---- learning ------------------------------------------------------------------------- */

static void rn_val_hist(struct rn_val *v, const struct rn_experience *e,
                        const struct rn_state_vec *sv)
{
    if (sv->n_history > v->hist_cap) {
        v->hist_cap = sv->n_history;
        v->hist = rn_xrealloc(v->hist, v->hist_cap * sizeof *v->hist);
    }
    const struct rn_history_item *h =
        (const struct rn_history_item *)((const char *)e + sv->history_off);
    for (uint32_t i = 0; i < sv->n_history; i++) {
        v->hist[i].item_id = h[i].item_id;
        v->hist[i].ts = h[i].ts;
    }
}

/* The student's view of the mini-batch in v->tr (its φ over its own table,
 * the shown items' rows; rewards, positions and clicks shared), then one
 * distillation step from the teacher as it is before this batch's update. */
static int rn_val_distill(struct rn_op *op, struct rn_val *v)
{
    const struct rn_val_list *B = &v->batch;
    size_t nb = B->n, items = 0;
    for (size_t k = 0; k < nb; k++)
        items += v->tr[k].n;
    size_t fl = nb * 2 * v->sphi + items * v->sdim;
    if (fl > v->sfl_cap) {
        v->sfl_cap = fl;
        v->sfl = rn_xrealloc(v->sfl, fl * sizeof *v->sfl);
    }
    v->str = rn_xrealloc(v->str, nb * sizeof *v->str);
    v->seeds = rn_xrealloc(v->seeds, nb * sizeof *v->seeds);
    float *f = v->sfl;
    for (size_t k = 0; k < nb; k++) {
        const struct rn_experience *e = rn_val_payload(B, k);
        float *phi = f, *phin = f + v->sphi, *E = f + 2 * v->sphi;
        f += 2 * v->sphi + (size_t)v->tr[k].n * v->sdim;
        rn_val_hist(v, e, &e->s);
        rn_phi_compute_ctx(&v->sspec, v->semb, v->hist, e->s.n_history, e->ts,
                           (const double *)((const char *)e + e->s.ctx_off), e->s.n_context, phi,
                           NULL);
        rn_val_hist(v, e, &e->s_next);
        rn_phi_compute_ctx(
            &v->sspec, v->semb, v->hist, e->s_next.n_history, e->next_ts >= 0 ? e->next_ts : e->ts,
            (const double *)((const char *)e + e->s_next.ctx_off), e->s_next.n_context, phin, NULL);
        rn_embed_rows(v->semb, v->tr[k].items, v->tr[k].n, E);
        v->str[k] = v->tr[k];
        v->str[k].phi = phi;
        v->str[k].phi_next = phin;
        v->str[k].E = E;
        uint64_t x = e->request_id ^ (e->user_id * 0x9e3779b97f4a7c15ull);
        v->seeds[k] = rn_rand_splitmix64(&x);
    }
    uint64_t items_before = rn_distiller_stats(v->dist)->items;
    if (rn_distill_update(v->dist, v->l, v->tr, v->str, v->seeds, (uint32_t)nb)) {
        rn_op_errorf(op, "student update failed: the gradient is not finite (lower "
                         "learning_rate or the distill weights, or set clip)");
        return RN_EINVAL;
    }
    const struct rn_distill_stats *ds = rn_distiller_stats(v->dist);
    rn_op_metric_add(op, M_DIST_UPDATES, 1);
    rn_op_metric_add(op, M_DIST_ITEMS, ds->items - items_before);
    rn_op_metric_add(op, M_DIST_CONF_MILLI, (uint64_t)(ds->confidence * 1e3 + 0.5));
    rn_op_metric_add(op, M_DIST_KL_MICRO,
                     (uint64_t)(ds->last_kl > 0 ? ds->last_kl * 1e6 + 0.5 : 0));
    return 0;
}

/* Learns the partial mini-batch (any size > 0) and empties it. */
static int rn_val_learn_batch(struct rn_op *op, struct rn_val *v)
{
    struct rn_val_list *B = &v->batch;
    if (!B->n) return 0;
    size_t items = 0;
    for (size_t k = 0; k < B->n; k++)
        items += rn_val_payload(B, k)->n_items;
    size_t fl = B->n * 2 * v->phi + items * (v->dim + 1);
    if (fl > v->fl_cap) {
        v->fl_cap = fl;
        v->fl = rn_xrealloc(v->fl, fl * sizeof *v->fl);
    }
    if (items > v->it_cap) {
        v->it_cap = items;
        v->ids = rn_xrealloc(v->ids, items * sizeof *v->ids);
        v->pos = rn_xrealloc(v->pos, items * sizeof *v->pos);
        v->clicked = rn_xrealloc(v->clicked, items);
    }
    v->tr = rn_xrealloc(v->tr, B->n * sizeof *v->tr);
    float *f = v->fl;
    size_t at = 0;
    uint64_t reward_milli = 0, done = 0, missing = 0;
    for (size_t k = 0; k < B->n; k++) {
        const struct rn_experience *e = rn_val_payload(B, k);
        struct rn_transition *t = &v->tr[k];
        float *phi = f, *phin = f + v->phi;
        f += 2 * v->phi;
        rn_val_hist(v, e, &e->s);
        rn_phi_compute_ctx(&v->spec, v->emb, v->hist, e->s.n_history, e->ts,
                           (const double *)((const char *)e + e->s.ctx_off), e->s.n_context, phi,
                           v->phi_scratch);
        rn_val_hist(v, e, &e->s_next);
        rn_phi_compute_ctx(&v->spec, v->emb, v->hist, e->s_next.n_history,
                           e->next_ts >= 0 ? e->next_ts : e->ts,
                           (const double *)((const char *)e + e->s_next.ctx_off),
                           e->s_next.n_context, phin, v->phi_scratch);
        const struct rn_sample_item *it =
            (const struct rn_sample_item *)((const char *)e + e->items_off);
        float *E = f, *rw = f + (size_t)e->n_items * v->dim;
        f += (size_t)e->n_items * (v->dim + 1);
        for (uint32_t i = 0; i < e->n_items; i++) {
            v->ids[at + i] = it[i].item_id;
            v->pos[at + i] = it[i].position ? it[i].position - 1 : 0;
            rw[i] = (float)it[i].reward;
            uint8_t any = 0;
            for (uint32_t ty = 0; ty < RN_FEEDBACK_MAX; ty++)
                any |= it[i].counts[ty] != 0;
            v->clicked[at + i] = any;
        }
        missing += rn_embed_rows(v->emb, v->ids + at, e->n_items, E);
        *t = (struct rn_transition){
            phi, phin, E, v->ids + at, v->pos + at, rw, v->clicked + at, e->n_items, (int)e->done};
        at += e->n_items;
        reward_milli += (uint64_t)(e->reward > 0 ? e->reward * 1000.0 + 0.5 : 0);
        done += e->done != 0;
    }
    int rc = v->dist ? rn_val_distill(op, v) : 0;
    if (rc) return rc;
    rc = rn_learner_update(v->l, v->tr, (uint32_t)B->n);
    if (rc) {
        rn_op_errorf(op, "learner update failed: the gradient is not finite (lower "
                         "learning_rate or set clip)");
        return rc;
    }
    const struct rn_learn_stats *st = rn_learner_stats(v->l);
    rn_op_metric_add(op, M_TRANSITIONS, B->n);
    rn_op_metric_add(op, M_UPDATES, 1);
    rn_op_metric_add(op, M_LOSS_MICRO, (uint64_t)(st->last_loss * 1e6 + 0.5));
    rn_op_metric_add(op, M_REWARD_MILLI, reward_milli);
    rn_op_metric_add(op, M_DONE, done);
    if (missing) rn_op_metric_add(op, M_MISSING, missing);
    rn_val_list_clear(B);
    return 0;
}

static int rn_val_publish(struct rn_op *op, struct rn_val *v, int64_t event_time)
{
    const struct rn_val_cfg *c = rn_op_ctx(op);
    const struct rn_learn_stats *st = rn_learner_stats(v->l);
    struct rn_model_version mv = {v->next_version, rn_wall_ms(),  event_time, st->updates,
                                  st->transitions, st->last_loss, st->last_q};
    if (c->deterministic) mv.created_ms = 0; /* the same log gives the same bytes */
    char err[512];
    int rc = 0;
    if (c->model_store)
        rc = rn_store_publish(c->model_store, rn_learner_model(v->l), &mv, err, sizeof err);
    if (!rc && v->pub) rc = rn_model_pub_publish(v->pub, rn_learner_model(v->l), &mv, err, sizeof err);
    if (rc) {
        rn_op_errorf(op, "cannot publish model version %" PRId64 ": %s", mv.id, err);
        return rc;
    }
    if (v->dist) {
        /* the student's version beside the teacher's: same id, same event time */
        struct rn_learner *sl = rn_distiller_student(v->dist);
        const struct rn_learn_stats *ss = rn_learner_stats(sl);
        struct rn_model_version sv = mv;
        sv.updates = ss->updates;
        sv.transitions = ss->transitions;
        sv.loss = ss->last_loss;
        sv.mean_q = ss->last_q;
        rc = rn_store_publish(c->student_store, rn_learner_model(sl), &sv, err, sizeof err);
        if (rc) {
            rn_op_errorf(op, "cannot publish student version %" PRId64 ": %s", sv.id, err);
            return rc;
        }
    }
    rn_op_metric_add(op, M_VERSIONS, 1);
    rn_op_metric_add(op, M_VERSION, 1); /* ids are consecutive: the counter is the id */
    v->next_version++;
    v->published_updates = st->updates;
    v->last_publish_ns = rn_now_ns();
    return 0;
}

/* Adds one transition to the mini-batch in learning order; learns when full. */
static int rn_val_take(struct rn_op *op, struct rn_val *v, const struct rn_val_rec *r,
                       const void *payload)
{
    const struct rn_val_cfg *c = rn_op_ctx(op);
    int rc;
    if (c->deterministic) {
        /* The first version is due at the boundary after the first transition
         * (a function of the log, unlike the first watermark). */
        if (v->next_boundary == RN_TS_MIN) {
            int64_t p = c->publish_event_time;
            int64_t fl = r->ts >= 0 ? r->ts / p * p : -((-r->ts + p - 1) / p) * p;
            v->next_boundary = fl + p;
        }
        /* boundaries before this transition come first */
        while (v->next_boundary != RN_TS_MIN && r->ts >= v->next_boundary) {
            if ((rc = rn_val_learn_batch(op, v))) return rc;
            if ((rc = rn_val_publish(op, v, v->next_boundary))) return rc;
            v->next_boundary += c->publish_event_time;
        }
    }
    rn_val_list_add(&v->batch, r->ts, r->user, r->request, payload, r->len);
    if (r->ts > v->max_ts) v->max_ts = r->ts;
    if (v->batch.n >= (size_t)c->batch_size && (rc = rn_val_learn_batch(op, v))) return rc;
    if (!c->deterministic) {
        const struct rn_learn_stats *st = rn_learner_stats(v->l);
        if (st->updates - v->published_updates >= (uint64_t)c->publish_every ||
            (st->updates > v->published_updates &&
             rn_now_ns() - v->last_publish_ns >= c->publish_interval * 1000000))
            return rn_val_publish(op, v, v->max_ts);
    }
    return 0;
}

static const struct rn_val_list *rn_val_sort_list;

static int rn_val_off_cmp(const void *a, const void *b)
{
    const struct rn_val_rec *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Drops the first k records and moves the payloads of the rest down in
 * place, in the order they lie in the buffer (each moves down or stays), so
 * that what waits is never held twice. The records' order does not matter:
 * rn_val_advance sorts them by content. */
static void rn_val_list_drop_front(struct rn_val_list *L, size_t k)
{
    memmove(L->r, L->r + k, (L->n - k) * sizeof *L->r);
    L->n -= k;
    qsort(L->r, L->n, sizeof *L->r, rn_val_off_cmp);
    size_t at = 0;
    for (size_t i = 0; i < L->n; i++) {
        at = (at + 7) & ~(size_t)7; /* payloads stay 8-aligned */
        if (at != L->r[i].off) memmove(L->bytes.data + at, L->bytes.data + L->r[i].off, L->r[i].len);
        L->r[i].off = (uint32_t)at;
        at += L->r[i].len;
    }
    L->bytes.len = at;
}

static int rn_val_cmp(const void *a, const void *b)
{
    const struct rn_val_rec *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    if (x->request != y->request) return x->request < y->request ? -1 : 1;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    const char *base = rn_val_sort_list->bytes.data;
    return memcmp(base + x->off, base + y->off, x->len);
}

/* Deterministic mode: learns every waiting transition at or before wm, in
 * order, then publishes the boundaries wm passed. */
static int rn_val_advance(struct rn_op *op, struct rn_val *v, int64_t wm)
{
    const struct rn_val_cfg *c = rn_op_ctx(op);
    struct rn_val_list *W = &v->wait;
    int rc = 0;
    if (wm > v->wm) v->wm = wm;
    rn_val_sort_list = W;
    if (W->n) qsort(W->r, W->n, sizeof *W->r, rn_val_cmp);
    size_t k = 0;
    for (; k < W->n && W->r[k].ts <= wm; k++)
        if ((rc = rn_val_take(op, v, &W->r[k], W->bytes.data + W->r[k].off))) return rc;
    if (k) rn_val_list_drop_front(W, k); /* keep the rest */
    /* boundaries the watermark passed; at the end of input (wm = +inf) up to
     * the last transition only */
    int64_t upto = wm == RN_TS_MAX ? v->max_ts : wm;
    while (v->next_boundary != RN_TS_MIN && v->next_boundary <= upto) {
        if ((rc = rn_val_learn_batch(op, v))) return rc;
        if ((rc = rn_val_publish(op, v, v->next_boundary))) return rc;
        v->next_boundary += c->publish_event_time;
    }
    return 0;
}

/* ---- callbacks ------------------------------------------------------------------------- */

/* The student: its table (the teacher's item ids, fewer dimensions), the
 * simple φ over it with the teacher's history, half-life and context, a
 * learner with the teacher's settings, and the distiller that owns it. */
static int rn_val_open_student(struct rn_op *op, struct rn_val *v, const struct rn_learn_cfg *lc)
{
    const struct rn_val_cfg *c = rn_op_ctx(op);
    char err[512];
    v->semb = rn_embed_acquire(c->student_embeddings, err, sizeof err);
    if (!v->semb) {
        rn_op_errorf(op, "student_embeddings: %s", err);
        return RN_EIO;
    }
    v->sdim = rn_embed_dim(v->semb);
    if (rn_phi_spec_open(&v->sspec, (uint32_t)c->feat.history, (double)c->feat.half_life, NULL,
                         v->semb, err, sizeof err) ||
        rn_phi_spec_set_context(&v->sspec, c->feat.n_ctx, err, sizeof err)) {
        rn_op_errorf(op, "student: %s", err);
        return RN_EINVAL;
    }
    v->sphi = rn_phi_dim(&v->sspec, v->semb);
    struct rn_model_shape sh = {.dim = v->sdim,
                                .phi = v->sphi,
                                .buckets = (uint32_t)c->item_buckets,
                                .positions = (uint32_t)c->positions};
    struct rn_learner *sl = rn_learner_create(rn_model_create(&sh), lc, err, sizeof err);
    if (!sl) {
        rn_op_errorf(op, "student: %s", err);
        return RN_EINVAL;
    }
    struct rn_distill_cfg dc = {(uint32_t)c->distill_recall,
                                (uint32_t)c->distill_top,
                                c->distill_temperature,
                                c->distill_kl_weight,
                                c->distill_hint_weight,
                                (double)c->distill_half_life,
                                c->learning_rate};
    v->dist = rn_distiller_create(sl, v->emb, v->semb, &dc, err, sizeof err);
    if (!v->dist) {
        rn_learner_destroy(sl);
        rn_op_errorf(op, "student: %s", err);
        return RN_EINVAL;
    }
    return 0;
}

static int rn_val_open(struct rn_op *op)
{
    const struct rn_val_cfg *c = rn_op_ctx(op);
    struct rn_val *v = rn_op_local(op);
    if (!v) {
        v = rn_xcalloc(1, sizeof *v);
        rn_op_set_local(op, v);
    }
    char err[512];
    if (c->mt.topic && !v->pub) {
        v->pub = rn_model_pub_open(c->mt.brokers, c->mt.topic,
                                   c->mt.key ? c->mt.key : rn_op_job_name(op), err, sizeof err);
        if (!v->pub) {
            rn_op_errorf(op, "%s", err);
            return RN_EIO;
        }
    }
    if (v->l) return 0; /* restored */
    int rc = rn_phi_cfg_open(&c->feat, &v->emb, &v->spec, err, sizeof err);
    if (rc) {
        rn_op_errorf(op, "%s", err);
        return rc;
    }
    v->dim = rn_embed_dim(v->emb);
    v->phi = rn_phi_dim(&v->spec, v->emb);
    v->phi_scratch = rn_xmalloc(rn_phi_scratch_size(&v->spec, v->emb) + 1);
    struct rn_model_shape sh = {.dim = v->dim,
                                .phi = v->phi,
                                .buckets = (uint32_t)c->item_buckets,
                                .positions = (uint32_t)c->positions};
    struct rn_learn_cfg lc = {c->optimizer, c->learning_rate,          c->l2,       c->clip,
                              c->gamma,     (uint32_t)c->target_every, 0.9,         0.999,
                              1e-8,         c->advantage_baseline,     c->objective};
    v->l = rn_learner_create(rn_model_create(&sh), &lc, err, sizeof err);
    if (!v->l) {
        rn_op_errorf(op, "%s", err);
        return RN_EINVAL;
    }
    if (c->student_store && (rc = rn_val_open_student(op, v, &lc))) return rc;
    v->next_boundary = RN_TS_MIN;
    v->max_ts = RN_TS_MIN;
    v->wm = RN_TS_MIN;
    v->next_version = 1;
    v->last_publish_ns = rn_now_ns();
    return 0;
}

static int rn_val_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    (void)out;
    const struct rn_val_cfg *c = rn_op_ctx(op);
    struct rn_val *v = rn_op_local(op);
    for (uint32_t i = 0; i < in->n; i++) {
        const struct rn_record *r = &in->recs[i];
        const struct rn_experience *e = r->payload;
        struct rn_val_rec rec = {r->ts, e->user_id, e->request_id, r->len, 0};
        if (c->deterministic) {
            if (v->wm != RN_TS_MIN && r->ts <= v->wm) {
                /* behind the watermark (an upstream broke event time): learnt at the
                 * next watermark, out of order; counted */
                rn_op_metric_add(op, M_LATE, 1);
            }
            rn_val_list_add(&v->wait, rec.ts, rec.user, rec.request, r->payload, r->len);
        } else {
            int rc = rn_val_take(op, v, &rec, r->payload);
            if (rc) return rc;
        }
    }
    return 0;
}

static int rn_val_on_watermark(struct rn_op *op, int64_t wm, struct rn_emitter *out)
{
    (void)out;
    const struct rn_val_cfg *c = rn_op_ctx(op);
    struct rn_val *v = rn_op_local(op);
    if (!c->deterministic) return 0;
    return rn_val_advance(op, v, wm);
}

static int rn_val_finish(struct rn_op *op, struct rn_emitter *out)
{
    (void)out;
    const struct rn_val_cfg *c = rn_op_ctx(op);
    struct rn_val *v = rn_op_local(op);
    int rc;
    /* Stopped (SIGTERM) rather than drained: event time did not reach +inf
     * (a drained input has sent it through on_watermark already). Learning the
     * waiting transitions or the partial mini-batch now, or publishing, would
     * depend on how far the job got; they stay in the final checkpoint and the
     * restarted job goes on as if it had not been stopped. */
    if (c->deterministic && v->wm != RN_TS_MAX) return 0;
    if (c->deterministic && (rc = rn_val_advance(op, v, RN_TS_MAX))) return rc;
    if ((rc = rn_val_learn_batch(op, v))) return rc;
    if (rn_learner_stats(v->l)->updates > v->published_updates || v->next_version == 1)
        return rn_val_publish(op, v, v->max_ts);
    return 0;
}

static int rn_val_checkpoint_complete(struct rn_op *op, uint64_t id)
{
    (void)id;
    const struct rn_val_cfg *c = rn_op_ctx(op);
    struct rn_val *v = rn_op_local(op);
    if (c->deterministic || !v || !v->l) return 0;
    if (rn_learner_stats(v->l)->updates > v->published_updates)
        return rn_val_publish(op, v, v->max_ts);
    return 0;
}

/* Snapshot: format, the learner's bytes, the boundary and version counters,
 * then the waiting transitions and the partial mini-batch. */
#define RN_VAL_SNAP_FORMAT 1
/* The same followed by the distiller's bytes: a learner with a student. */
#define RN_VAL_SNAP_FORMAT_STUDENT 2
/* The same layout holding a list-reward learner (objective: list_reward), so that neither
 * kind of learner restores the other's state as its own. */
#define RN_VAL_SNAP_FORMAT_LIST_REWARD 101

static int64_t rn_val_snap_format(const struct rn_val_cfg *c, const struct rn_val *v)
{
    if (c->objective == RN_OBJ_LIST_REWARD) return RN_VAL_SNAP_FORMAT_LIST_REWARD;
    return v->dist ? RN_VAL_SNAP_FORMAT_STUDENT : RN_VAL_SNAP_FORMAT;
}

static const char *rn_val_snap_format_name(int64_t fmt)
{
    switch (fmt) {
    case RN_VAL_SNAP_FORMAT: return "objective td";
    case RN_VAL_SNAP_FORMAT_STUDENT: return "objective td with a student";
    case RN_VAL_SNAP_FORMAT_LIST_REWARD: return "objective list_reward";
    default: return NULL;
    }
}

static void rn_val_snap_list(struct rn_snapshot_writer *w, const struct rn_val_list *L)
{
    rn_snapshot_write_i64(w, (int64_t)L->n);
    for (size_t i = 0; i < L->n; i++) {
        rn_snapshot_write(w, &L->r[i], sizeof L->r[i]);
        rn_snapshot_write(w, L->bytes.data + L->r[i].off, L->r[i].len);
    }
}

static int rn_val_snapshot(struct rn_op *op, uint64_t checkpoint_id, struct rn_snapshot_writer *w)
{
    (void)checkpoint_id;
    struct rn_val *v = rn_op_local(op);
    struct rn_buf b = RN_BUF_INIT;
    rn_learner_save(v->l, &b);
    rn_snapshot_write_i64(w, rn_val_snap_format(rn_op_ctx(op), v));
    rn_snapshot_write_i64(w, (int64_t)b.len);
    rn_snapshot_write(w, b.data, b.len);
    rn_buf_free(&b);
    rn_snapshot_write_i64(w, v->next_boundary);
    rn_snapshot_write_i64(w, v->max_ts);
    rn_snapshot_write_i64(w, v->wm);
    rn_snapshot_write_i64(w, v->next_version);
    rn_snapshot_write_i64(w, (int64_t)v->published_updates);
    rn_val_snap_list(w, &v->wait);
    rn_val_snap_list(w, &v->batch);
    if (v->dist) {
        rn_distiller_save(v->dist, &b);
        rn_snapshot_write_i64(w, (int64_t)b.len);
        rn_snapshot_write(w, b.data, b.len);
        rn_buf_free(&b);
    }
    return 0;
}

static int rn_val_restore_list(struct rn_snapshot_reader *r, struct rn_val_list *L)
{
    int64_t n;
    int rc = rn_snapshot_read_i64(r, &n);
    if (rc) return rc;
    if (n < 0 || (uint64_t)n > rn_snapshot_remaining(r) / sizeof(struct rn_val_rec))
        return RN_ECORRUPT;
    char *tmp = NULL;
    for (int64_t i = 0; i < n; i++) {
        struct rn_val_rec rec;
        if ((rc = rn_snapshot_read(r, &rec, sizeof rec))) break;
        if (rec.len > rn_snapshot_remaining(r)) {
            rc = RN_ECORRUPT;
            break;
        }
        tmp = rn_xrealloc(tmp, rec.len ? rec.len : 1);
        if ((rc = rn_snapshot_read(r, tmp, rec.len))) break;
        rn_val_list_add(L, rec.ts, rec.user, rec.request, tmp, rec.len);
    }
    free(tmp);
    return rc;
}

static int rn_val_restore_into(struct rn_op *op, struct rn_snapshot_reader *r)
{
    struct rn_val *v = rn_op_local(op);
    if (!v) {
        v = rn_xcalloc(1, sizeof *v);
        rn_op_set_local(op, v);
    }
    /* Build the learner as open() would, then load its bytes. */
    int rc = rn_val_open(op);
    if (rc) return rc;
    int64_t fmt, len;
    if ((rc = rn_snapshot_read_i64(r, &fmt))) return rc;
    int64_t want = rn_val_snap_format(rn_op_ctx(op), v);
    if (fmt != want) {
        const char *have_name = rn_val_snap_format_name(fmt);
        if (have_name)
            rn_op_errorf(op,
                         "checkpoint holds the state of a learner with %s; this job's has %s "
                         "(objective or student_model_store changed: start fresh)",
                         have_name, rn_val_snap_format_name(want));
        else
            rn_op_errorf(op,
                         "checkpoint holds learner state of format %" PRId64 ", expected %" PRId64,
                         fmt, want);
        return RN_ECORRUPT;
    }
    if ((rc = rn_snapshot_read_i64(r, &len))) return rc;
    if (len < 0 || (uint64_t)len > rn_snapshot_remaining(r)) return RN_ECORRUPT;
    char *bytes = rn_xmalloc(len ? (size_t)len : 1);
    rc = rn_snapshot_read(r, bytes, (size_t)len);
    if (!rc) rc = rn_learner_load(v->l, bytes, (size_t)len);
    free(bytes);
    if (rc) {
        rn_op_errorf(op, "learner state in the checkpoint does not fit this job's model "
                         "(embedding dimension, state_network, item_buckets or positions "
                         "changed?)");
        return rc;
    }
    int64_t pub;
    if ((rc = rn_snapshot_read_i64(r, &v->next_boundary)) ||
        (rc = rn_snapshot_read_i64(r, &v->max_ts)) || (rc = rn_snapshot_read_i64(r, &v->wm)) ||
        (rc = rn_snapshot_read_i64(r, &v->next_version)) || (rc = rn_snapshot_read_i64(r, &pub)))
        return rc;
    /* Versions count from 1; anything else is not a snapshot this learner wrote. */
    if (v->next_version < 1 || pub < 0) {
        rn_op_errorf(op,
                     "learner state in the checkpoint is corrupt (next version %" PRId64
                     ", published updates %" PRId64 ")",
                     v->next_version, pub);
        return RN_ECORRUPT;
    }
    v->published_updates = (uint64_t)pub;
    if ((rc = rn_val_restore_list(r, &v->wait)) || (rc = rn_val_restore_list(r, &v->batch)))
        return rc;
    if (v->dist) {
        if ((rc = rn_snapshot_read_i64(r, &len))) return rc;
        if (len < 0 || (uint64_t)len > rn_snapshot_remaining(r)) return RN_ECORRUPT;
        bytes = rn_xmalloc(len ? (size_t)len : 1);
        rc = rn_snapshot_read(r, bytes, (size_t)len);
        if (!rc) rc = rn_distiller_load(v->dist, bytes, (size_t)len);
        free(bytes);
        if (rc) {
            rn_op_errorf(op, "student state in the checkpoint does not fit this job's student "
                             "(student_embeddings' dimension changed?)");
            return rc;
        }
        /* the distillation counters count from this start, so that their ratios
         * (teacher_confidence, mean_distill_kl) stay averages of what they sum */
    }
    const struct rn_learn_stats *st = rn_learner_stats(v->l);
    rn_op_metric_add(op, M_UPDATES, st->updates);
    rn_op_metric_add(op, M_TRANSITIONS, st->transitions);
    rn_op_metric_add(op, M_VERSIONS, (uint64_t)(v->next_version - 1));
    rn_op_metric_add(op, M_VERSION, (uint64_t)(v->next_version - 1));
    return 0;
}


static void rn_val_close(struct rn_op *op)
{
    struct rn_val *v = rn_op_local(op);
    if (!v) return;
    rn_model_pub_close(v->pub);
    rn_learner_destroy(v->l);
    rn_distiller_destroy(v->dist);
    if (v->semb) {
        rn_phi_spec_close(&v->sspec);
        rn_embed_release(v->semb);
    }
    free(v->str);
    free(v->sfl);
    free(v->seeds);
    rn_phi_spec_close(&v->spec);
    free(v->phi_scratch);
    rn_embed_release(v->emb);
    rn_val_list_free(&v->wait);
    rn_val_list_free(&v->batch);
    free(v->tr);
    free(v->fl);
    free(v->ids);
    free(v->pos);
    free(v->clicked);
    free(v->hist);
    free(v);
    rn_op_set_local(op, NULL);
}

const struct rn_op_type rn_op_value_advantage_learner = {
    RN_OP_TYPE_HEAD,
    .name = "value_advantage_learner",
    .description = "Learns a dueling Q = V(s) + A(s,a) − mean A online from transitions (TD "
                   "learning, mini-batches through BLAS) and publishes immutable model versions "
                   "to a model store.",
    .kind = RN_KIND_OPERATOR,
    .flags = RN_OP_SINGLETON,
    .config = rn_val_keys,
    .ctx_size = sizeof(struct rn_val_cfg),
    .in_type = "experience",
    .outputs = NULL,
    .n_outputs = 0,
    .metrics = rn_val_metrics,
    .init = rn_val_init,
    .init_types = rn_val_init_types,
    .open = rn_val_open,
    .process = rn_val_process,
    .on_watermark = rn_val_on_watermark,
    .finish = rn_val_finish,
    .close = rn_val_close,
    .snapshot = rn_val_snapshot,
    .restore = rn_val_restore_into,
    .notify_checkpoint_complete = rn_val_checkpoint_complete,
    .ratios = rn_val_ratios,
};
