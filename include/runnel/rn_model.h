/*
 * rn_model.h — the learning half of runnel: item embeddings, state features,
 * the dueling Q model, its online TD learner, model files (safetensors) and the
 * model store of immutable versions.
 *
 * One model serves three places with the same code: the value_advantage_learner
 * operator trains it, the inference operator scores with it, and the user
 * simulator's `model` policy scores with it. docs/learning.md has the maths.
 *
 *   φ(s)       state features from the user's history (simple φ, below, or a
 *              pretrained state network, runtime/rn_statenet.h), F floats
 *   V(s)       = vᵀφ(s)
 *   A(s,i,p)   = e_iᵀ W φ(s) + wᵀe_i + b[i mod H] + c[p]   (bilinear, linear,
 *              hashed item bias, position p's term)
 *   Q(s,i,p)   = V(s) + A(s,i,p) − mean over the shown list of A
 *              (or V(s) + A(s,i,p) with RN_ADV_BASELINE_NONE: a list of one item,
 *              as in the Open Bandit Dataset, has A − mean A ≡ 0, so its
 *              advantage would never learn)
 *
 * Parameters live in one contiguous float array (v | W | w | b | c) so that a
 * copy, a snapshot or a file is one memcpy.
 */
#ifndef RUNNEL_RN_MODEL_H
#define RUNNEL_RN_MODEL_H

#include "rn_common.h"
#include "rn_config.h"
#include "rn_event.h"

/* ---- item embeddings ------------------------------------------------------ */

struct rn_embed;

/* Loads a table of `item_id v1 ... vD` lines ('#' starts a comment); errors
 * name file:line. Returns NULL with a message. The table is read-only after
 * load and may be shared between threads. */
struct rn_embed *rn_embed_load(const char *path, char *errbuf, size_t errlen);
void rn_embed_destroy(struct rn_embed *t);
uint32_t rn_embed_dim(const struct rn_embed *t);
size_t rn_embed_count(const struct rn_embed *t);
/* The vector of rn_hash64(item id), or NULL when the item is not in the table
 * (borrowed from the table). */
const float *rn_embed_get(const struct rn_embed *t, uint64_t item_id);
/* The i-th item (0 <= i < count) in the table's order (by id hash): its id
 * string (borrowed) and its hash. */
const char *rn_embed_name(const struct rn_embed *t, size_t i);
uint64_t rn_embed_id(const struct rn_embed *t, size_t i);
/* The process-wide table of `path`, loaded by the first caller and shared
 * (reference-counted) by every operator instance that names the same file;
 * thread-safe. Release each successful acquire once. */
struct rn_embed *rn_embed_acquire(const char *path, char *errbuf, size_t errlen);
void rn_embed_release(struct rn_embed *t);
/* Copies the vectors of n items into rows of E (n x D); a zero row for an
 * item not in the table. Returns how many were missing. */
uint32_t rn_embed_rows(const struct rn_embed *t, const uint64_t *ids, uint32_t n, float *E);

/* ---- state features ------------------------------------------------------- */

/* One item of a user's history: the item and the impression time of the list
 * it had feedback in. */
struct rn_hist {
    uint64_t item_id;
    int64_t ts;
};

/* The simple φ (no state network), F = 2D + 2 floats:
 *   [0, D)      mean embedding of the last `history` items found in the table
 *   [D, 2D)     time-decayed sum Σ 2^(-(now - ts)/half_life) e_i of the same items
 *   2D          1 (bias)
 *   2D + 1      the fraction of `history` slots filled
 * `h` holds n items, oldest first; only the last `history` count. */
#define RN_PHI_SIMPLE_DIM(d) (2u * (d) + 2u)
void rn_phi_simple(const struct rn_embed *emb, uint32_t history, double half_life_ms,
                   const struct rn_hist *h, uint32_t n, int64_t now, float *phi);

/* φ as the learner, inference, the simulator's model policy and `runnel
 * evaluate` all compute it (runtime/rn_phi.c): the simple φ above, or, when
 * the spec names a state network (runtime/rn_statenet.h), that network's forward pass
 * over the last `history` items of h found in the table:
 *   H         the last k of them (k: the network's history)
 *   longterm  their time-decayed mean (the network's half-life, 24 h from
 *             `runnel pretrain`), decayed to `now`
 *   ctx       [sin 2πh/24, cos 2πh/24, filled]: h the hour (UTC) of `now`,
 *             filled the fraction of the k slots used
 * built by the same code that `runnel pretrain` trains the network on. */
struct rn_statenet;

struct rn_phi_spec {
    uint32_t history;              /* the latest items of a history that φ uses */
    double half_life_ms;           /* the simple φ's decayed sum */
    const struct rn_statenet *net; /* NULL: the simple φ; else borrowed (or owned
                                    * after rn_phi_spec_open) */
    int owned;                     /* rn_phi_spec_close destroys net */
    /* Appended: C, the request-context values appended to the simple φ
     * (rn_phi_spec_set_context; 0: none, φ as before). */
    uint32_t n_context;
};

/* Fills spec; when state_network is not NULL, loads that file (spec owns the
 * network: rn_phi_spec_close) and checks that it fits emb and history: its
 * dim is the table's, it takes the three context features above, its k is at
 * most `history`. Returns 0, or < 0 with a message naming the file. */
int rn_phi_spec_open(struct rn_phi_spec *spec, uint32_t history, double half_life_ms,
                     const char *state_network, const struct rn_embed *emb, char *errbuf,
                     size_t errlen);
void rn_phi_spec_close(struct rn_phi_spec *spec);
/* Appends C request-context values to φ (the job's context_fields): the
 * simple φ becomes [simple φ (2D+2) | c_1 .. c_C], a missing value (NaN)
 * entering as 0. A state network takes only its own context features
 * (RN_SN_CONTEXT), so with one, C > 0 is refused (< 0 and a message).
 * Call after rn_phi_spec_open. */
int rn_phi_spec_set_context(struct rn_phi_spec *spec, uint32_t n_context, char *errbuf,
                            size_t errlen);
/* The state-feature settings an operator that computes φ takes from YAML —
 * the learner and inference alike, so that the two cannot drift apart: embed
 * a struct rn_phi_cfg in the operator's config struct and list
 * RN_PHI_CONFIG_KEYS(its type, the member) in its key table. */
struct rn_phi_cfg {
    const char *embeddings, *state_network;
    int64_t history, half_life;
    const struct rn_cfg_node *context_node;
    char ctx_names[RN_CONTEXT_MAX][RN_CONTEXT_NAME_MAX]; /* filled by rn_phi_cfg_init */
    uint32_t n_ctx;
};

#define RN_PHI_CONFIG_KEYS(type, m)                                                              \
    {"embeddings", RN_CT_STRING, NULL, NULL, offsetof(type, m.embeddings),                         \
     "Item-embedding table (`item_id v1 ... vD` lines): the same file for the experience "         \
     "collector, the learner and inference. Required.",                                            \
     NULL, RN_CK_REQUIRED, 0, 0},                                                                  \
        {"history", RN_CT_INT, "10", "items", offsetof(type, m.history),                           \
         "How many of the user's latest feedback items the state features use (the same in the "   \
         "learner and inference).",                                                                \
         NULL, 0, 1, 1000},                                                                        \
        {"half_life", RN_CT_DURATION, "30m", "ms", offsetof(type, m.half_life),                    \
         "Half-life of the time-decayed history sum in the simple state features.", NULL, 0, 1,    \
         (int64_t)1 << 50},                                                                        \
        {"state_network", RN_CT_STRING, NULL, NULL, offsetof(type, m.state_network),               \
         "A pretrained state network (`runnel pretrain`'s FILE.safetensors) that computes the "    \
         "state features instead of the simple ones; the model's `phi` is then its output size. " \
         "The learner, inference, the simulator and `runnel evaluate` must name the same file.",   \
         NULL, 0, 0, 0},                                                                           \
    {                                                                                              \
        "context_fields", RN_CT_NODE, NULL, NULL, offsetof(type, m.context_node),                  \
            "Request-context fields appended to the simple state features (a list of names; "     \
            "default none): log_collector's `context_fields`, so phi is [simple phi | context "   \
            "values] (dimension 2D+2+C; a missing value counts as 0). Over HTTP, inference reads " \
            "them from the body's `context` object. Not with `state_network`.",                   \
            NULL, 0, 0, 0                                                                          \
    }

/* Load time (init): reads context_fields and refuses context with a state
 * network. Returns 0 or < 0 with a message naming the YAML position. */
int rn_phi_cfg_init(struct rn_phi_cfg *c, char *errbuf, size_t errlen);
/* Load time (init_types): checks that the list is the one every other
 * operator of the job names, and sets it for the job (rn_event.h). */
int rn_phi_cfg_init_types(struct rn_phi_cfg *c, struct rn_types *ts, char *errbuf, size_t errlen);
/* Open time: acquires the embedding table into *emb (release it with
 * rn_embed_release, also on failure) and opens spec for it. Returns 0, RN_EIO
 * (the table) or RN_EINVAL (the network or the context), with a message. */
int rn_phi_cfg_open(const struct rn_phi_cfg *c, struct rn_embed **emb, struct rn_phi_spec *spec,
                    char *errbuf, size_t errlen);
/* F: the network's output size, else RN_PHI_SIMPLE_DIM(D) + n_context. */
uint32_t rn_phi_dim(const struct rn_phi_spec *spec, const struct rn_embed *emb);
/* Bytes of scratch rn_phi_compute needs (0 for the simple φ). */
size_t rn_phi_scratch_size(const struct rn_phi_spec *spec, const struct rn_embed *emb);
/* φ(s) (rn_phi_dim floats) of the history h (n items, oldest first) at time
 * `now`. `scratch` holds rn_phi_scratch_size bytes (any alignment malloc
 * gives) and is the caller's, one per thread: the spec, the table and the
 * network are only read, so threads may share them. */
void rn_phi_compute(const struct rn_phi_spec *spec, const struct rn_embed *emb,
                    const struct rn_hist *h, uint32_t n, int64_t now, float *phi, void *scratch);
/* The same with the request's context: ctx holds n_ctx values in the spec's
 * order (borrowed; NULL or fewer than spec->n_context: the rest are 0). */
void rn_phi_compute_ctx(const struct rn_phi_spec *spec, const struct rn_embed *emb,
                        const struct rn_hist *h, uint32_t n, int64_t now, const double *ctx,
                        uint32_t n_ctx, float *phi, void *scratch);

/* ---- the model -------------------------------------------------------------- */

/* What a model file holds and how it scores (its `format` metadata):
 *   RN_MODEL_DUELING_Q  `runnel-dueling-q/1`: the dueling Q above, learnt
 *                       online by value_advantage_learner;
 *   RN_MODEL_ACTOR      `runnel-actor/1`: a policy that maps the state to an
 *                       action vector in item-embedding space and scores an
 *                       item by its dot product with it (`runnel
 *                       train-offline`, or any trainer that writes the layout
 *                       of docs/learning.md, "Offline RL"):
 *                         a0(s)     = scale · g(W φ(s) + w)      g: identity or tanh
 *                         a(s)      = a0 + pscale · tanh(P [φ(s); a0] + p)
 *                                     (the perturbation, only with `perturb`)
 *                         score(i)  = e_iᵀ a(s) + b[id_i mod H]
 *                       A softmax actor (REINFORCE) is π(i | s) ∝ exp(score(i)).
 * Scoring (rn_model_advantages) dispatches on the kind, so inference, the
 * simulator and `runnel evaluate` serve every kind the same way. */
enum rn_model_kind { RN_MODEL_DUELING_Q = 0, RN_MODEL_ACTOR = 1 };
enum rn_actor_act { RN_ACTOR_LINEAR = 0, RN_ACTOR_TANH = 1 };

struct rn_model_shape {
    uint32_t dim;       /* D: item embedding dimension */
    uint32_t phi;       /* F: state feature dimension */
    uint32_t buckets;   /* H: hashed item-bias buckets */
    uint32_t positions; /* P: position terms (positions beyond P - 1 share the last);
                         * an actor has none (0) */
    /* Appended; zero is the dueling Q as before. */
    uint32_t kind;       /* enum rn_model_kind */
    uint32_t activation; /* actor: enum rn_actor_act (g above) */
    uint32_t perturb;    /* actor: 1 when it has the perturbation layer P, p */
    float scale;         /* actor: scale above (0 is read as 1) */
    float pscale;        /* actor: pscale above */
};

/* Offsets of each tensor in the parameter array, in floats. A dueling Q is
 * v | W | w | b | c; an actor is W | w | b [| P | p] (v and c empty). */
struct rn_model_layout {
    size_t v, W, w, b, c, n; /* n: total */
    size_t P, p;             /* appended: the actor's perturbation layer */
};

struct rn_model {
    struct rn_model_shape shape;
    struct rn_model_layout at;
    float *params; /* at.n floats, owned */
};

void rn_model_layout(const struct rn_model_shape *s, struct rn_model_layout *out);
/* All parameters zero. Returns NULL on a bad shape. */
struct rn_model *rn_model_create(const struct rn_model_shape *s);
struct rn_model *rn_model_clone(const struct rn_model *m);
void rn_model_destroy(struct rn_model *m);

/* V(s); 0 for an actor (it has no value head). */
float rn_model_value(const struct rn_model *m, const float *phi);
/* The ranking score of n candidates whose embeddings are the rows of E
 * (n x D, row-major; a zero row for an item without one). Dueling Q: A(s, i)
 * without the position term — one gemv for u = Wφ + w, one for E u, then the
 * biases. Actor: score(i) of the kind's comment above, through the same two
 * gemvs (and one more for the perturbation). */
void rn_model_advantages(const struct rn_model *m, const float *phi, const float *E,
                         const uint64_t *item_ids, uint32_t n, float *out);
/* The two halves of rn_model_advantages: the user vector (D floats into u:
 * the state's representation that every item is scored against; u = Wφ + w
 * for a dueling Q, a(s) for an actor), then the item terms for n items
 * (A(s, i) = e_iᵀu + b[i mod H] for a dueling Q). */
void rn_model_user_vector(const struct rn_model *m, const float *phi, float *u);
void rn_model_item_scores(const struct rn_model *m, const float *u, const float *E,
                          const uint64_t *item_ids, uint32_t n, float *out);

/* The vector items are scored against (D floats into a): the same as
 * rn_model_user_vector, under the name the actor trainers use. */
void rn_model_action(const struct rn_model *m, const float *phi, float *a);

/* ---- slates and exploration -------------------------------------------------------- */

enum rn_explore { RN_EXPLORE_NONE = 0, RN_EXPLORE_EPSILON = 1, RN_EXPLORE_SOFTMAX = 2 };

struct rn_explore_cfg {
    int mode;           /* enum rn_explore */
    double epsilon;     /* RN_EXPLORE_EPSILON */
    double temperature; /* RN_EXPLORE_SOFTMAX */
};

/* Picks a slate of L of the K candidates from their scores (K <= 65536):
 *   none     the top L by score (ties: the earlier candidate), propensity 1;
 *   epsilon  the top L, then each slot independently with probability ε shows
 *            a candidate drawn uniformly, without replacement, from the K − L
 *            outside the top L. prop[j] is the marginal probability that the
 *            item shown in slot j is put there: 1 − ε for the slot's greedy
 *            item, ε / (K − L) for an explored one (the simulator's greedy
 *            policies explore the same way). When K − L < L the pool can run
 *            out: slot j then explores with q_j = ε · P(Binomial(j, ε) <
 *            K − L), and its marginals are 1 − q_j and q_j / (K − L);
 *   softmax  Plackett–Luce: slot by slot, a candidate not yet shown with
 *            probability ∝ exp(score / T). prop[j] is the probability of the
 *            item in slot j given the items above it (prop[0] is also its
 *            marginal).
 * *slate_prop is the probability of the whole ordered slate. `u` draws
 * uniform numbers in [0, 1) from the caller's stream. Writes slate[L] (indices into the candidates)
 * and prop[L]; `scratch` holds at least 2K doubles. Returns L, or < 0 when L > K. */
int rn_slate_pick(const float *scores, uint32_t k, uint32_t l, const struct rn_explore_cfg *x,
                  double (*u)(void *), void *uctx, uint32_t *slate, double *prop,
                  double *slate_prop, double *scratch);

/* ---- online TD learning ----------------------------------------------------- */

enum rn_optimizer { RN_OPT_SGD = 0, RN_OPT_ADAGRAD = 1, RN_OPT_ADAM = 2 };

struct rn_learn_cfg {
    int optimizer; /* enum rn_optimizer */
    double learning_rate;
    double l2;             /* on W, w, v (not on biases) */
    double clip;           /* global gradient-norm clip; 0: none */
    double gamma;          /* discount */
    uint32_t target_every; /* refresh the target copy every this many updates */
    double adam_beta1, adam_beta2, eps;
    int advantage_baseline; /* enum rn_adv_baseline; appended, 0 keeps the old meaning */
    int objective;          /* enum rn_objective; appended, 0 keeps the old meaning */
};

/* What the learner fits. RN_OBJ_TD: the dueling Q by TD (above).
 * RN_OBJ_LIST_REWARD: the same tensors as a list-wise reward model, the
 * evaluator of LAST (docs/learning.md, "LAST"): for a list L of n items in
 * order, of user state φ,
 *   R̂(s, L) = vᵀφ + Σ_p c[p] · (e_{L_p}ᵀ W φ + wᵀ e_{L_p} + b[id mod H])
 * fitted by ½ (R̂ − Σ_i r_i)² per list (the list's total reward); c starts at
 * 1 (a zero c would be a saddle point of the product). */
enum rn_objective { RN_OBJ_TD = 0, RN_OBJ_LIST_REWARD = 1 };

/* R̂(s, L) of the list whose n items (ids, embeddings the rows of E, n x D) are
 * shown in this order, under an RN_OBJ_LIST_REWARD model. u holds D floats of
 * the caller's scratch: pass the same u with u_ready = 1 to score another list
 * of the same φ without recomputing Wφ + w. */
double rn_model_list_reward(const struct rn_model *m, const float *phi, const float *E,
                            const uint64_t *ids, uint32_t n, float *u, int u_ready);

/* What Q subtracts from A(s, i, p). RN_ADV_BASELINE_LIST_MEAN (the dueling
 * network's identifiability term) makes A learn only differences between the
 * items of one list; RN_ADV_BASELINE_NONE lets A learn from one-item lists
 * too, leaving V and A's biases to share the level of Q. */
enum rn_adv_baseline { RN_ADV_BASELINE_LIST_MEAN = 0, RN_ADV_BASELINE_NONE = 1 };

/* One transition (s, a, r, s', done) as the learner sees it. Pointers are
 * borrowed for the call. */
struct rn_transition {
    const float *phi;       /* F */
    const float *phi_next;  /* F (ignored when done) */
    const float *E;         /* n x D embeddings of the shown items */
    const uint64_t *items;  /* n item ids */
    const uint32_t *pos;    /* n positions, 0-based */
    const float *reward;    /* n per-item rewards */
    const uint8_t *clicked; /* n: 1 when the item had any feedback */
    uint32_t n;
    int done;
};

/* The per-item TD target (docs/learning.md, "The target"):
 *   y_i = r_i + γ (1 − done) · n · share_i · V̂(s')
 * with V̂ the target copy's state value and share_i = clicked_i / (number
 * clicked), or 1/n when nothing was clicked: the list's continuation value
 * n·V̂(s') is credited to the items that led to it. */

struct rn_learn_stats {
    uint64_t updates;     /* mini-batches applied, in all */
    uint64_t transitions; /* transitions learned from, in all */
    double last_loss;     /* mean squared TD error of the last mini-batch, per item */
    double last_q;        /* mean Q of the last mini-batch */
    double last_grad_norm;
};

struct rn_learner;

/* Takes ownership of `m` (the online model); makes the target copy and the
 * optimiser state. Returns NULL on a bad configuration. */
struct rn_learner *rn_learner_create(struct rn_model *m, const struct rn_learn_cfg *cfg,
                                     char *errbuf, size_t errlen);
void rn_learner_destroy(struct rn_learner *l);
const struct rn_model *rn_learner_model(const struct rn_learner *l);
const struct rn_learn_stats *rn_learner_stats(const struct rn_learner *l);

/* Loss (½ Σ over items of (Q − y)², divided by the number of items) of a
 * mini-batch and, when grad != NULL, its gradient with respect to the online
 * parameters (at.n floats, overwritten). Targets come from the target copy.
 * Exposed for tests (finite differences). */
double rn_learner_loss(struct rn_learner *l, const struct rn_transition *t, uint32_t n,
                       float *grad);
/* One optimiser step on a mini-batch of n transitions (L2, clipping,
 * target refresh included). Deterministic for the same inputs. */
int rn_learner_update(struct rn_learner *l, const struct rn_transition *t, uint32_t n);
/* The same step with `extra` (at.n floats, borrowed; NULL: none) added to the
 * TD gradient before L2 and clipping: how another loss on the same parameters
 * (distillation, rn_distill.h) joins the step. */
int rn_learner_update_extra(struct rn_learner *l, const struct rn_transition *t, uint32_t n,
                            const float *extra);
/* Q(s, i, p) and the TD target y_i (above) of each of t's t->n items, as the
 * loss sees them (q and y: t->n floats each); changes nothing. */
void rn_learner_predict(struct rn_learner *l, const struct rn_transition *t, float *q, float *y);

/* The learner's whole state (online and target parameters, optimiser moments,
 * counters) as bytes, for checkpoints; and back. rn_learner_load checks the
 * shape and returns RN_ECORRUPT on a mismatch. */
void rn_learner_save(const struct rn_learner *l, struct rn_buf *out);
int rn_learner_load(struct rn_learner *l, const void *p, size_t n);

/* ---- safetensors ------------------------------------------------------------- */

/* The safetensors layout: an 8-byte little-endian header length N, N bytes of
 * JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
 * "__metadata__": {"key": "string", ...}}, then the data (little-endian,
 * row-major). runnel reads F32, F64, F16, BF16, I64 and I32 (converted to
 * float) and writes F32. */
struct rn_tensor {
    const char *name;
    uint32_t ndim;
    uint64_t shape[4];
    float *data; /* product(shape) floats */
};

struct rn_st_file {
    struct rn_tensor *tensors;
    size_t n;
    char **meta_keys, **meta_vals; /* __metadata__ */
    size_t n_meta;
};

/* Writes tensors and metadata (n_meta key/value pairs) atomically (temporary
 * file, fsync, rename). Tensors are written in the order given. */
int rn_st_write(const char *path, const struct rn_tensor *t, size_t n, const char *const *meta_keys,
                const char *const *meta_vals, size_t n_meta, char *errbuf, size_t errlen);
/* Reads a whole file, checking the header (JSON, offsets inside the data,
 * contiguous, shapes matching sizes). Returns NULL with a message naming the
 * file and what is wrong. */
/* The same bytes as rn_st_write, appended to `out` (the caller's); `where`
 * names the destination in messages. */
int rn_st_encode(const struct rn_tensor *t, size_t n, const char *const *meta_keys,
                 const char *const *meta_vals, size_t n_meta, const char *where,
                 struct rn_buf *out, char *errbuf, size_t errlen);
struct rn_st_file *rn_st_read(const char *path, char *errbuf, size_t errlen);
struct rn_st_file *rn_st_parse(const void *p, size_t n, char *errbuf, size_t errlen);
const struct rn_tensor *rn_st_find(const struct rn_st_file *f, const char *name);
const char *rn_st_meta(const struct rn_st_file *f, const char *key);
void rn_st_free(struct rn_st_file *f);

/* A model file. A dueling Q is tensors "v" [F], "W" [D, F], "w" [D], "b" [H],
 * "c" [P] with `format` runnel-dueling-q/1 (or no `format`); an actor is
 * "actor.weight" [D, F], "actor.bias" [D], optionally "item_bias" [H] and
 * "perturb.weight" [D, F + D] with "perturb.bias" [D], with `format`
 * runnel-actor/1 and `activation` (linear or tanh), `scale` and
 * `perturb_scale` (decimal; default 1 and 0). rn_model_from_st dispatches on
 * `format` and refuses one it does not know, naming it. */
int rn_model_write(const char *path, const struct rn_model *m, const char *const *meta_keys,
                   const char *const *meta_vals, size_t n_meta, char *errbuf, size_t errlen);
struct rn_model *rn_model_read(const char *path, char *errbuf, size_t errlen);
struct rn_model *rn_model_from_st(const struct rn_st_file *f, const char *path, char *errbuf,
                                  size_t errlen);

/* ---- following a model store ----------------------------------------------------------
 * A feed follows one store directory for every reader in the process: a
 * loader thread polls it, loads a new current version (rn_store_current:
 * newest, or pinned), warms it up with a scoring pass and swaps it in with
 * one atomic store. Readers never lock: each holds a slot (a hazard pointer);
 * enter() publishes the model it reads in its slot, exit() clears it, and the
 * loader frees a replaced version only once no slot holds it. */

struct rn_model_feed;

struct rn_model_feed_stats {
    int64_t version;   /* current; 0: none yet */
    uint64_t loads;    /* versions loaded */
    uint64_t failures; /* failed loads (the previous version keeps serving) */
    double last_load_ms;
    char last_error[512];
    /* Appended: replaced versions freed, and those still held by a reader. */
    uint64_t freed, held;
};

/* The feed of `dir` (shared; started on the first acquire); poll_ms: how
 * often the loader looks. Release each acquire once. */
struct rn_model_feed *rn_model_feed_acquire(const char *dir, int64_t poll_ms, char *errbuf,
                                            size_t errlen);
void rn_model_feed_release(struct rn_model_feed *f);
/* A reader slot for one thread (RN_EFULL when all 256 are taken); keep it for
 * the thread's life. */
int rn_model_feed_slot(struct rn_model_feed *f);
void rn_model_feed_slot_free(struct rn_model_feed *f, int slot);
/* The current model (NULL: none yet) and its version; valid until exit(). */
const struct rn_model *rn_model_feed_enter(struct rn_model_feed *f, int slot, int64_t *version);
void rn_model_feed_exit(struct rn_model_feed *f, int slot);
/* The feed of a model topic (below): versions published under `key` on
 * `topic` of the Kafka cluster `brokers`, the latest one served. Shared like
 * the directory feed (one loader thread per brokers/topic/key in the
 * process); the loader reads every partition from the beginning and, once it
 * has caught up, loads the last version it saw, so a restarted reader starts
 * with the newest version the topic still holds. Pinning is the directory
 * store's (PINNED): a topic feed always serves the latest. */
struct rn_model_feed *rn_model_feed_acquire_topic(const char *brokers, const char *topic,
                                                  const char *key, int64_t poll_ms,
                                                  char *errbuf, size_t errlen);
/* Loads now (synchronously) if the store has something newer; for tests and
 * for a job's start (a topic feed first reads up to the end of every
 * partition, for at most 5 s). Returns the current version. */
int64_t rn_model_feed_poll(struct rn_model_feed *f);
void rn_model_feed_stats(struct rn_model_feed *f, struct rn_model_feed_stats *out);

/* ---- the model store ------------------------------------------------------------
 * A directory of immutable versions:
 *   DIR/v000000000042.safetensors   the model (metadata: version, created, ...)
 *   DIR/v000000000042.json          its manifest: id, created (ms), updates,
 *                                   transitions, event_time (the learner's
 *                                   event time when published), loss, mean_q
 *   DIR/PINNED                      optional: the version to serve instead of
 *                                   the newest (runnel models pin / rollback)
 * A version is published by writing both files under temporary names and
 * renaming the model first, the manifest last: a version exists once its
 * manifest does. */

struct rn_model_version {
    int64_t id;
    int64_t created_ms;
    int64_t event_time;
    uint64_t updates, transitions;
    double loss, mean_q;
};

int rn_store_publish(const char *dir, const struct rn_model *m, const struct rn_model_version *v,
                     char *errbuf, size_t errlen);
/* The versions in the store, ascending; *out is malloc'd (caller frees). */
int rn_store_list(const char *dir, struct rn_model_version **out, size_t *n, char *errbuf,
                  size_t errlen);
/* The version to serve: the pinned one if any, else the newest; RN_ENOENT
 * when the store is empty. */
int rn_store_current(const char *dir, int64_t *id, char *errbuf, size_t errlen);
int rn_store_pin(const char *dir, int64_t id, char *errbuf, size_t errlen); /* id < 0: unpin */
/* Path of a version's file ("DIR/vNNN.safetensors" or ".json") into buf. */
void rn_store_path(const char *dir, int64_t id, const char *ext, char *buf, size_t len);
struct rn_model *rn_store_load(const char *dir, int64_t id, char *errbuf, size_t errlen);

/* ---- the model topic ------------------------------------------------------------
 * Versions on a Kafka topic, for processes that share no directory (a
 * cluster's learner stage and its inference tasks): one message per version,
 * the key the store's name (so that a topic with cleanup.policy=compact keeps
 * the latest version of every store), the value the version's safetensors
 * bytes (rn_model_encode: the model file's tensors and metadata, whatever the
 * model's kind, plus version, created_ms, event_time, updates, transitions,
 * loss, mean_q). A version of a
 * few MB is one message: the producer's message.max.bytes and the reader's
 * fetch sizes are raised to RN_MODEL_TOPIC_MAX_BYTES. */

#define RN_MODEL_TOPIC_MAX_BYTES (64 << 20)

/* The safetensors bytes of a version (its manifest in the metadata),
 * appended to out; and back: the model (owned by the caller) and *v filled
 * from the metadata. `where` names the bytes in messages. */
int rn_model_encode(const struct rn_model *m, const struct rn_model_version *v,
                    struct rn_buf *out, char *errbuf, size_t errlen);
struct rn_model *rn_model_decode(const void *p, size_t n, const char *where,
                                 struct rn_model_version *v, char *errbuf, size_t errlen);

/* The model-topic settings an operator takes from YAML (the learner publishes
 * to it, inference follows it): embed a struct rn_model_topic_cfg in the
 * operator's config struct and list RN_MODEL_TOPIC_CONFIG_KEYS(its type, the
 * member) in its key table. */
struct rn_model_topic_cfg {
    const char *topic, *brokers, *key;
};

#define RN_MODEL_TOPIC_CONFIG_KEYS(type, m)                                                      \
    {"model_topic", RN_CT_STRING, NULL, NULL, offsetof(type, m.topic),                           \
     "Kafka topic of model versions (one message per version, keyed by `model_key`; created "     \
     "compacted when missing). With `model_brokers`.",                                            \
     NULL, 0, 0, 0},                                                                              \
        {"model_brokers", RN_CT_STRING, NULL, NULL, offsetof(type, m.brokers),                    \
         "Bootstrap servers of the Kafka cluster holding `model_topic`.", NULL, 0, 0, 0},         \
    {                                                                                             \
        "model_key", RN_CT_STRING, NULL, NULL, offsetof(type, m.key),                             \
            "The store's name on `model_topic`: the message key of its versions (default: the "   \
            "job's name), so that one topic can carry several stores.",                           \
            NULL, 0, 0, 0                                                                         \
    }

/* Load time: model_topic and model_brokers go together; with need_one, the
 * operator needs a store or a topic (store: its model_store, NULL if none).
 * Returns 0 or RN_EINVAL with a message naming the YAML position. */
int rn_model_topic_cfg_check(const struct rn_model_topic_cfg *c, const char *store, int need_one,
                             const struct rn_cfg_node *node, char *errbuf, size_t errlen);

struct rn_model_pub;

/* A producer of versions to `topic` under `key`. The topic is created when
 * missing (partitions 1, cleanup.policy=compact); an existing topic is used
 * as it is. Returns NULL with a message naming the brokers and topic. */
struct rn_model_pub *rn_model_pub_open(const char *brokers, const char *topic, const char *key,
                                       char *errbuf, size_t errlen);
/* Sends one version and waits (at most 30 s) until the brokers acknowledged
 * it. Returns 0, or RN_EIO with the broker's reason. Not thread-safe. */
int rn_model_pub_publish(struct rn_model_pub *p, const struct rn_model *m,
                         const struct rn_model_version *v, char *errbuf, size_t errlen);
void rn_model_pub_close(struct rn_model_pub *p);

#endif
