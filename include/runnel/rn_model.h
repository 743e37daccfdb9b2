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

struct rn_model_shape {
    uint32_t dim;       /* D: item embedding dimension */
    uint32_t phi;       /* F: state feature dimension */
    uint32_t buckets;   /* H: hashed item-bias buckets */
    uint32_t positions; /* P: position terms (positions beyond P - 1 share the last) */
};

/* Offsets of each tensor in the parameter array, in floats. */
struct rn_model_layout {
    size_t v, W, w, b, c, n; /* n: total */
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

/* V(s). */
float rn_model_value(const struct rn_model *m, const float *phi);
/* A(s, i) without the position term for n candidates whose embeddings are the
 * rows of E (n x D, row-major; a zero row for an item without one): one
 * gemv for u = Wφ + w, one for E u, then the biases. */
void rn_model_advantages(const struct rn_model *m, const float *phi, const float *E,
                         const uint64_t *item_ids, uint32_t n, float *out);

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
struct rn_st_file *rn_st_read(const char *path, char *errbuf, size_t errlen);
struct rn_st_file *rn_st_parse(const void *p, size_t n, char *errbuf, size_t errlen);
const struct rn_tensor *rn_st_find(const struct rn_st_file *f, const char *name);
const char *rn_st_meta(const struct rn_st_file *f, const char *key);
void rn_st_free(struct rn_st_file *f);

/* A model as tensors "v" [F], "W" [D, F], "w" [D], "b" [H], "c" [P]. */
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
/* Loads now (synchronously) if the store has something newer; for tests and
 * for a job's start. Returns the current version. */
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

#endif
