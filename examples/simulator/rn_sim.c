/*
 * rn_sim.c — a closed-loop user simulator for runnel's recommendation pipelines.
 *
 * It plays the users of a recommender so that a pipeline can run, learn and be compared with
 * baselines without live traffic.  A policy (behind a small interface, below) ranks the items
 * of each request; the simulated users react to what they are shown; their reactions move
 * their interests and decide whether they page on.  Everything is written as the event log of
 * product.md ("Event formats"), one JSON object per line in non-decreasing event time:
 *
 *   {"type":"request","ts":...,"request":"r1","user":"u7","candidates":["i1",...],
 *    "context":{"hour":22,"page":0}}
 *   {"type":"impression","ts":...,"request":"r1","user":"u7","items":["i9",...],
 *    "propensities":[0.95,...],"model_version":0}
 *   {"type":"click","ts":...,"request":"r1","user":"u7","item":"i9"}
 *   {"type":"pay","ts":...,"request":"r1","user":"u7","item":"i9","amount":23.5}
 *
 * plus, with --embeddings, an item-embedding table ("i17 0.01230 -0.44120 ...", one line per
 * item) holding noisy copies of the true item vectors, as if pre-trained elsewhere.
 *
 * The world.  T topic centres are random unit vectors in R^D.  Each of the N items belongs
 * to a uniformly chosen topic; its vector is the centre plus gaussian noise (0.6 / sqrt(D)
 * per component), renormalised.  A regular item has a quality q, triangular on [0, 1], and
 * an appeal a = 0.1 + 0.5 q + 0.2 U(0, 1).  A fraction --clickbait of the items is clickbait:
 * quality U(0, 0.15), appeal U(0.6, 0.8) (higher than all but the best regular items) and a
 * tenth of the pay probability (below).  Every item has a price (log-normal, median 20.00)
 * and an exposure rank: items are ordered by 1.5 q + 0.5 a + N(0, 1), and the candidates of
 * a request are K distinct items drawn with P(rank k) proportional to k^-s (s = --item-zipf),
 * so that widely seen items are partly, not wholly, the good ones.  Each of the U users has
 * an interest vector near a uniformly chosen topic centre (noise 0.5 / sqrt(D) per
 * component, renormalised) and an activity weight (Zipf over a random permutation, exponent
 * --user-zipf).
 *
 * The user model (the constants are in struct rn_sim_model; docs/simulator.md has a table).
 * With affinity x = <user, item> in [-1, 1]:
 *
 *   examined(pos)      = (1 + pos)^-decay           pos = 0 for the top slot; decay 0.7
 *   P(click | exam)    = sigmoid(-3.5 + 4.0 x + 3.0 a)
 *   P(pay | click)     = sigmoid(-3.0 + 3.0 q + 1.5 x)   (times 0.1 for clickbait)
 *   satisfaction       = sum over the page of +0.5 per click on a regular item,
 *                        -1.0 per click on clickbait, +1.0 per pay
 *   P(next page)       = min(0.95, sigmoid(-1.0 + 1.5 satisfaction)), up to --max-pages
 *   drift              u <- normalise((1 - d) u + d v) for each click and again for each pay
 *                      on item v (d = --drift), applied after the page in slot order
 *   reward of a page   r = w_click clicks + w_pay pays; session return = sum over its pages
 *
 * Examinations, clicks and pays are independent draws (the position-based model).  A pay is
 * decided while the user browses the page, so it counts towards that page's satisfaction even
 * though its event is written later, possibly after the next page's request.
 *
 * Time.  Sessions arrive as a Poisson process (--rate per second of event time) from
 * --start-ts on; each goes to a user drawn by activity weight among the users who are not in
 * a session and whose last session ended at least --min-gap seconds (default 1800) before.
 * When nobody is free, the arrival waits for the next user to become free.  A page: the
 * request at t, its impression 20-120 ms later, a click on slot j about 0.8 (j + 1) s after
 * the impression, its pay 3 s to 5 min after the click, and the next page's request 2-60 s
 * after the user has browsed the page.  Every future event waits in a min-heap ordered by
 * (ts, sequence), and the simulation runs in that order, so the log comes out sorted and a
 * policy sees (through its observe callback) exactly the events that happened before the
 * request it ranks.
 *
 * Policies (--policy), all behind struct rn_sim_policy_type:
 *   random           a uniform random slate of L of the K candidates.
 *   popularity       the L candidates with the most clicks in the log so far (ties go to
 *                    the earlier candidate, so it starts out as the exposure order).
 *   myopic           the L candidates with the highest true P(click | examined): the best
 *                    possible click-through policy, which favours clickbait.
 *   oracle-longterm  the L candidates with the highest true
 *                    P(click | exam) (w_click + w_pay P(pay | click) - [clickbait] (w_click +
 *                    w_pay)): immediate reward minus what a clickbait click costs later.
 * The last three are greedy on a score and explore alike: each slot j independently, with
 * probability --epsilon, shows an item drawn uniformly (without replacement) from the K - L
 * candidates outside the greedy top L instead of the j-th greedy item.  Greedy slates sort by
 * score, which maximises the sum of examination times score over the slots.
 *
 * Propensities.  The propensity logged for slot j is the marginal probability that the policy
 * puts the item shown there in slot j, given the request (its candidates) and the policy's
 * state: random 1/K; greedy with exploration 1 - epsilon for the greedy item of that slot and
 * epsilon / (K - L) for an explored one (the K - L items outside the top L are exchangeable,
 * so an explored slot holds any one of them with probability 1 / (K - L)); 1 when K = L,
 * where there is nothing to explore.  They are written with six significant digits.  These
 * are per-slot marginals (as in the Open Bandit Dataset); their product is not the slate's
 * probability.  model_version is 0 for the fixed policies.
 *
 * Two policies close the loop through a runnel job (docs/simulator.md has the details):
 *   model:DIR         greedy (with the same exploration) on the advantages of the model a job
 *                     learns from this log and publishes into the model store DIR, scored with
 *                     the library's rn_model on the users' click histories; in deterministic
 *                     mode a request at t uses the version of event time floor((t - lag) /
 *                     period) period, waiting for the learner to publish it.
 *   http://HOST:PORT  asks the job's serving endpoint (POST /api/v1/recommend) for each slate,
 *                     over one keep-alive connection (rn_sim_http.c).
 *
 * The same options and seed give byte-identical output: the world, the arrivals, the
 * candidates, the users' behaviour, the embedding noise and the policy each draw from their
 * own xoshiro256** stream.  At the end a summary goes to stderr (and to --summary-json):
 * sessions, pages per session, clicks, pays, the mean session return with a 95% confidence
 * interval (normal approximation, 1.96 standard errors), and the clickbait share of clicks.
 * Exit status 0 on success, 1 on an I/O or policy error, 2 on a usage error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include <yajl/yajl_tree.h>

#include "rn_last.h"
#include "rn_model.h"
#include "rn_gen.h"
#include "rn_sim_http.h"

#define RN_SIM_MAX_IDS 100000000u
#define RN_SIM_MAX_DIM 4096u
#define RN_SIM_MAX_CAND 100000u
#define RN_SIM_OUTBUF (1u << 20)

/* ---------------------------------------------------------------------------------------
 * Random numbers: rn_rand.h (xoshiro256** seeded through splitmix64), one state per
 * independent stream.
 */

enum rn_sim_stream {
    RN_SIM_S_WORLD = 1, /* topics, items, users */
    RN_SIM_S_ARRIVAL,   /* session arrivals and which user */
    RN_SIM_S_CAND,      /* candidate samples */
    RN_SIM_S_USER,      /* examinations, clicks, pays, paging, delays */
    RN_SIM_S_EMBED,     /* noise of the embedding table */
    RN_SIM_S_POLICY,    /* the policy's own randomness */
    RN_SIM_S_SETUP,     /* item popularity and user activity ranks */
};

/* A standard normal variate (Box-Muller, one of the pair; the other is thrown away so that
 * the stream's consumption per call is fixed). */
static double rn_sim_gauss(struct rn_rand *r)
{
    double u1 = 1.0 - rn_rand_uniform(r); /* (0, 1]: log is finite */
    double u2 = rn_rand_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static inline double rn_sim_sigmoid(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

/* ---------------------------------------------------------------------------------------
 * Small helpers.
 */

static void *rn_sim_xmalloc(size_t n, size_t size)
{
    if (n && size > SIZE_MAX / n) {
        fprintf(stderr, "sim: out of memory (%zu x %zu bytes)\n", n, size);
        exit(1);
    }
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "sim: out of memory (%zu x %zu bytes)\n", n, size);
        exit(1);
    }
    return p;
}

static void *rn_sim_xrealloc(void *p, size_t n, size_t size)
{
    if (n && size > SIZE_MAX / n) {
        fprintf(stderr, "sim: out of memory (%zu x %zu bytes)\n", n, size);
        exit(1);
    }
    void *q = realloc(p, n * size);
    if (!q) {
        fprintf(stderr, "sim: out of memory (%zu x %zu bytes)\n", n, size);
        exit(1);
    }
    return q;
}

static double rn_sim_dot(const double *a, const double *b, uint32_t d)
{
    double s = 0;
    for (uint32_t i = 0; i < d; i++)
        s += a[i] * b[i];
    return s;
}

/* Scales v to unit length; a zero vector (never drawn in practice) becomes e_0. */
static void rn_sim_normalise(double *v, uint32_t d)
{
    double n = sqrt(rn_sim_dot(v, v, d));
    if (n == 0.0) {
        v[0] = 1.0;
        return;
    }
    for (uint32_t i = 0; i < d; i++)
        v[i] /= n;
}

/* Fills v with a unit vector near centre (noise sigma / sqrt(d) per component), or with a
 * uniformly random direction when centre is NULL. */
static void rn_sim_draw_unit(struct rn_rand *r, double *v, const double *centre, double sigma,
                             uint32_t d)
{
    double scale = centre ? sigma / sqrt((double)d) : 1.0;
    for (uint32_t i = 0; i < d; i++)
        v[i] = (centre ? centre[i] : 0.0) + scale * rn_sim_gauss(r);
    rn_sim_normalise(v, d);
}

/* Zipf weights over ranks: P(rank k) proportional to k^-s; a cumulative table (n entries). */
static double *rn_sim_zipf_cdf(uint32_t n, double s)
{
    double *cdf = rn_sim_xmalloc(n, sizeof(*cdf));
    rn_rand_zipf_cdf(cdf, n, s);
    return cdf;
}

/* A rank drawn from a cumulative table (0-based): binary search for the first cdf > u. */
static uint32_t rn_sim_zipf_draw(const double *cdf, uint32_t n, struct rn_rand *r)
{
    double u = rn_rand_uniform(r);
    uint32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* A uniformly random permutation of 0..n-1 (Fisher-Yates). */
static uint32_t *rn_sim_permutation(uint32_t n, struct rn_rand *r)
{
    uint32_t *p = rn_sim_xmalloc(n, sizeof(*p));
    for (uint32_t i = 0; i < n; i++)
        p[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)rn_rand_below(r, i);
        uint32_t t = p[i - 1];
        p[i - 1] = p[j];
        p[j] = t;
    }
    return p;
}

/* Items ordered by descending key (ties by index): the exposure ranks.  keys is borrowed. */
static const double *rn_sim_sort_keys;
static int rn_sim_by_key_desc(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    double kx = rn_sim_sort_keys[x], ky = rn_sim_sort_keys[y];
    if (kx != ky) return kx > ky ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* ---------------------------------------------------------------------------------------
 * Options.
 */

struct rn_sim_opts {
    uint32_t items, dim, topics, users, candidates, slate, max_pages;
    uint64_t sessions, seed, min_gap_s;
    int64_t start_ts;
    double clickbait, drift, epsilon, w_click, w_pay, embedding_noise, rate, item_zipf, user_zipf,
        exam_decay;
    const char *policy, *out, *embeddings, *summary_json, *returns;
    /* The model policy: lag and period of the learner's versions (s), how long to wait for
     * one (s), the state features' history length and half-life (s), and the state network
     * (NULL: the simple state features). */
    const char *model_state_network;
    /* --model-embeddings: the table model:DIR scores with (NULL: --embeddings, the world's) */
    const char *model_embeddings;
    uint64_t model_lag_s, model_period_s;
    double model_wait_s, model_half_life_s;
    uint32_t model_history;
    /* --model-context: the request-context values appended to φ, in the job's
     * context_fields order; each 0 (hour of the day) or 1 (page number). */
    uint32_t model_n_ctx;
    uint8_t model_ctx[16];
    double http_timeout_s; /* the http policy: per request */
    /* The model policy's LAST (opt-in): the evaluator's store (NULL: off) and the search's
     * budget; a time budget of 0 means none, so that runs stay reproducible. */
    const char *model_last;
    uint32_t model_last_candidates, model_last_steps;
    double model_last_step, model_last_temperature, model_last_budget_us;
};

/* ---------------------------------------------------------------------------------------
 * The world: ground truth about items and users.  Policies get a read-only pointer to it
 * in each query; only the oracle baselines (myopic, oracle-longterm) are meant to look.
 */

/* The constants of the user model; the opening comment gives the formulas. */
struct rn_sim_model {
    double item_sigma, user_sigma; /* spread around the topic centres */
    /* Regular items: quality triangular on [0, 1], appeal = base + quality_w q + noise U. */
    double appeal_base, appeal_quality, appeal_noise;
    /* Clickbait: quality uniform on [0, cb_quality], appeal uniform on [lo, lo + span]. */
    double cb_quality, cb_appeal_lo, cb_appeal_span;
    /* Exposure rank (candidate sampling): by exposure_q q + exposure_a a + N(0, 1). */
    double exposure_q, exposure_a;
    double click_bias, click_aff, click_appeal;
    double pay_bias, pay_quality, pay_aff, pay_clickbait_factor;
    double sat_click, sat_clickbait, sat_pay;
    double next_bias, next_sat, next_max;
};

static const struct rn_sim_model rn_sim_model = {
    .item_sigma = 0.6,
    .user_sigma = 0.5,
    .appeal_base = 0.1,
    .appeal_quality = 0.5,
    .appeal_noise = 0.2,
    .cb_quality = 0.15,
    .cb_appeal_lo = 0.6,
    .cb_appeal_span = 0.2,
    .exposure_q = 1.5,
    .exposure_a = 0.5,
    .click_bias = -3.5,
    .click_aff = 4.0,
    .click_appeal = 3.0,
    .pay_bias = -3.0,
    .pay_quality = 3.0,
    .pay_aff = 1.5,
    .pay_clickbait_factor = 0.1,
    .sat_click = 0.5,
    .sat_clickbait = -1.0,
    .sat_pay = 1.0,
    .next_bias = -1.0,
    .next_sat = 1.5,
    .next_max = 0.95,
};

struct rn_sim_world {
    uint32_t n_items, n_users, dim;
    double *item_vec;   /* n_items * dim, unit length */
    double *quality;    /* n_items, in [0, 1] */
    double *appeal;     /* n_items, in [0, 1] */
    uint32_t *price;    /* n_items, in cents */
    uint8_t *clickbait; /* n_items, 0 or 1 */
    double *user_vec;   /* n_users * dim, unit length; drifts as users consume */
    double *exam;       /* slate entries: examination probability of each position */
    const struct rn_sim_model *m;
};

static double rn_sim_affinity(const struct rn_sim_world *w, uint32_t user, uint32_t item)
{
    return rn_sim_dot(w->user_vec + (size_t)user * w->dim, w->item_vec + (size_t)item * w->dim,
                      w->dim);
}

/* P(click | examined) of item for user as the user is now. */
static double rn_sim_click_prob(const struct rn_sim_world *w, uint32_t user, uint32_t item)
{
    const struct rn_sim_model *m = w->m;
    return rn_sim_sigmoid(m->click_bias + m->click_aff * rn_sim_affinity(w, user, item) +
                          m->click_appeal * w->appeal[item]);
}

/* P(pay | click) of item for user as the user is now. */
static double rn_sim_pay_prob(const struct rn_sim_world *w, uint32_t user, uint32_t item)
{
    const struct rn_sim_model *m = w->m;
    double p = rn_sim_sigmoid(m->pay_bias + m->pay_quality * w->quality[item] +
                              m->pay_aff * rn_sim_affinity(w, user, item));
    return w->clickbait[item] ? p * m->pay_clickbait_factor : p;
}

/* Builds the world from the options; the arrays are owned by w until rn_sim_world_destroy. */
static void rn_sim_world_create(struct rn_sim_world *w, const struct rn_sim_opts *o)
{
    const struct rn_sim_model *m = &rn_sim_model;
    uint32_t d = o->dim;
    struct rn_rand r;
    rn_rand_seed(&r, o->seed, RN_SIM_S_WORLD);

    memset(w, 0, sizeof(*w));
    w->m = m;
    w->n_items = o->items;
    w->n_users = o->users;
    w->dim = d;
    double *centres = rn_sim_xmalloc((size_t)o->topics * d, sizeof(double));
    for (uint32_t t = 0; t < o->topics; t++)
        rn_sim_draw_unit(&r, centres + (size_t)t * d, NULL, 0, d);

    w->item_vec = rn_sim_xmalloc((size_t)o->items * d, sizeof(double));
    w->quality = rn_sim_xmalloc(o->items, sizeof(double));
    w->appeal = rn_sim_xmalloc(o->items, sizeof(double));
    w->price = rn_sim_xmalloc(o->items, sizeof(uint32_t));
    w->clickbait = rn_sim_xmalloc(o->items, 1);
    for (uint32_t i = 0; i < o->items; i++) {
        uint32_t t = (uint32_t)rn_rand_below(&r, o->topics);
        rn_sim_draw_unit(&r, w->item_vec + (size_t)i * d, centres + (size_t)t * d, m->item_sigma,
                         d);
        int cb = rn_rand_uniform(&r) < o->clickbait;
        double u1 = rn_rand_uniform(&r), u2 = rn_rand_uniform(&r), u3 = rn_rand_uniform(&r);
        w->clickbait[i] = (uint8_t)cb;
        if (cb) {
            w->quality[i] = m->cb_quality * u1;
            w->appeal[i] = m->cb_appeal_lo + m->cb_appeal_span * u2;
        } else {
            /* Appeal follows quality loosely, so that what attracts clicks among regular
             * items is mostly what is worth buying. */
            w->quality[i] = 0.5 * (u1 + u2);
            w->appeal[i] =
                m->appeal_base + m->appeal_quality * w->quality[i] + m->appeal_noise * u3;
        }
        double price = 20.0 * exp(0.8 * rn_sim_gauss(&r));
        if (price < 1.0) price = 1.0;
        if (price > 10000.0) price = 10000.0;
        w->price[i] = (uint32_t)lround(price * 100.0);
    }

    w->user_vec = rn_sim_xmalloc((size_t)o->users * d, sizeof(double));
    for (uint32_t u = 0; u < o->users; u++) {
        uint32_t t = (uint32_t)rn_rand_below(&r, o->topics);
        rn_sim_draw_unit(&r, w->user_vec + (size_t)u * d, centres + (size_t)t * d, m->user_sigma,
                         d);
    }

    w->exam = rn_sim_xmalloc(o->slate, sizeof(double));
    for (uint32_t j = 0; j < o->slate; j++)
        w->exam[j] = pow(1.0 + j, -o->exam_decay);
    free(centres);
}

static void rn_sim_world_destroy(struct rn_sim_world *w)
{
    free(w->item_vec);
    free(w->quality);
    free(w->appeal);
    free(w->price);
    free(w->clickbait);
    free(w->user_vec);
    free(w->exam);
}

/* Moves the user's interest a step d towards item's vector and renormalises. */
static void rn_sim_drift(struct rn_sim_world *w, uint32_t user, uint32_t item, double d)
{
    double *u = w->user_vec + (size_t)user * w->dim;
    const double *v = w->item_vec + (size_t)item * w->dim;
    for (uint32_t i = 0; i < w->dim; i++)
        u[i] = (1.0 - d) * u[i] + d * v[i];
    rn_sim_normalise(u, w->dim);
}

/* ---------------------------------------------------------------------------------------
 * The policy interface.  A policy type is a table of callbacks; an instance is its ctx.
 * Callbacks run on the simulator's one thread, in event-time order.  A later policy can rank
 * by asking an external model server: rank is the only callback it needs, and it may fail.
 */

enum rn_sim_type { RN_SIM_REQUEST = 0, RN_SIM_IMPRESSION, RN_SIM_CLICK, RN_SIM_PAY };

/* One event as written to the log; items and props are borrowed for the call. */
struct rn_sim_event {
    int type; /* enum rn_sim_type */
    int64_t ts;
    uint64_t request;     /* "r<request>" */
    uint32_t user;        /* index: "u<user + 1>" */
    uint32_t item;        /* click, pay: index, "i<item + 1>" */
    uint32_t cents;       /* pay: amount */
    uint32_t page;        /* request: page number within its session, from 0 */
    uint32_t n;           /* request: candidates; impression: items */
    const uint32_t *list; /* item indices */
    const double *props;  /* impression: one propensity per item */
    uint64_t model_version;
};

/* What a policy is asked to rank for. */
struct rn_sim_query {
    uint64_t request;                 /* "r<request>" */
    uint32_t user;                    /* index: "u<user + 1>" */
    uint32_t page;                    /* 0 for a session's first request */
    int64_t ts;                       /* event time of the request, ms */
    uint32_t slate;                   /* L: how many items to return */
    const struct rn_sim_world *world; /* ground truth: for oracle baselines only */
    FILE *log; /* the event log, written up to this request; a policy whose model reads it
                * (a runnel job following the file) flushes it before it asks or waits */
};

struct rn_sim_policy_type {
    const char *name;
    const char *description;
    /* Makes an instance for these options (borrowed for the call); returns NULL and fills
     * err on failure.  The instance is owned by the caller and freed with destroy.  A policy
     * that draws random numbers seeds its own stream (RN_SIM_S_POLICY) from o->seed. */
    void *(*create)(const struct rn_sim_opts *o, char *err, size_t errlen);
    /* Ranks: writes into slate_out L distinct indices into candidates (not item ids) and
     * into propensities_out the propensity of each slot (see the opening comment).
     * candidates (k item indices) is borrowed for the call.  Returns 0, or a negative code
     * after writing a reason into err; the simulator then stops. */
    int (*rank)(void *ctx, const struct rn_sim_query *user, const uint32_t *candidates, uint32_t k,
                uint32_t *slate_out, double *propensities_out, char *err, size_t errlen);
    /* Sees each event as it is written, in log order (may be NULL); e is borrowed. */
    void (*observe)(void *ctx, const struct rn_sim_event *e);
    /* The model version to log with the impression of the slate just ranked (may be NULL:
     * 0, a fixed policy). */
    uint64_t (*model_version)(void *ctx);
    void (*destroy)(void *ctx);
    /* Non-NULL: name is a prefix and the rest of --policy is the policy's argument, named
     * so in the help ("model:" "DIR", "http://" "HOST:PORT"). */
    const char *arg;
};

static int rn_sim_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/* ---- the built-in policies' state, and the greedy slate with epsilon exploration -------- */

struct rn_sim_greedy {
    struct rn_rand rng;
    double epsilon, w_click, w_pay;
    uint32_t slate;
    uint32_t *order;  /* scratch: candidate positions by score */
    uint32_t *pool;   /* scratch: non-greedy candidate positions */
    double *score;    /* scratch: one per candidate */
    uint64_t *clicks; /* popularity: clicks per item so far */
};

static void *rn_sim_greedy_create(const struct rn_sim_opts *o, char *err, size_t errlen)
{
    struct rn_sim_greedy *g = rn_sim_xmalloc(1, sizeof(*g));
    rn_rand_seed(&g->rng, o->seed, RN_SIM_S_POLICY);
    g->epsilon = o->epsilon;
    g->w_click = o->w_click;
    g->w_pay = o->w_pay;
    g->slate = o->slate;
    g->order = rn_sim_xmalloc(o->candidates, sizeof(*g->order));
    g->pool = rn_sim_xmalloc(o->candidates, sizeof(*g->pool));
    g->score = rn_sim_xmalloc(o->candidates, sizeof(*g->score));
    g->clicks = rn_sim_xmalloc(o->items, sizeof(*g->clicks));
    (void)err;
    (void)errlen;
    return g;
}

static void rn_sim_greedy_destroy(void *ctx)
{
    struct rn_sim_greedy *g = ctx;
    free(g->order);
    free(g->pool);
    free(g->score);
    free(g->clicks);
    free(g);
}

/* Candidates by descending score, ties by candidate position: a stable insertion sort of the
 * top L only (L is small), the rest kept in candidate order. */
static void rn_sim_greedy_order(struct rn_sim_greedy *g, uint32_t k)
{
    uint32_t top = 0, rest = 0;
    for (uint32_t c = 0; c < k; c++) {
        /* Does c enter the top L (strictly better than the last, or room left)? */
        if (top < g->slate || g->score[c] > g->score[g->order[top - 1]]) {
            uint32_t evicted = UINT32_MAX;
            if (top == g->slate) evicted = g->order[--top];
            uint32_t m = top++;
            while (m > 0 && g->score[g->order[m - 1]] < g->score[c]) {
                g->order[m] = g->order[m - 1];
                m--;
            }
            g->order[m] = c;
            if (evicted != UINT32_MAX) g->pool[rest++] = evicted;
        } else {
            g->pool[rest++] = c;
        }
    }
    assert(top == g->slate && top + rest == k);
    /* Evictions append out of candidate order; the pool only needs to be a set, but keep it
     * sorted so that exploration depends on nothing but the candidates and the scores. */
    for (uint32_t i = 1; i < rest; i++) {
        uint32_t v = g->pool[i], m = i;
        while (m > 0 && g->pool[m - 1] > v) {
            g->pool[m] = g->pool[m - 1];
            m--;
        }
        g->pool[m] = v;
    }
}

/* Builds the slate from g->score: slot j shows the j-th best candidate with probability
 * 1 - epsilon, or else one drawn uniformly, without replacement, from the candidates outside
 * the top L.  The marginal propensity is 1 - epsilon, resp. epsilon / (K - L). */
static void rn_sim_greedy_slate(struct rn_sim_greedy *g, uint32_t k, uint32_t *slate, double *props)
{
    rn_sim_greedy_order(g, k);
    uint32_t npool = k - g->slate;
    double explore_prop = npool ? g->epsilon / (double)npool : 0.0;
    for (uint32_t j = 0; j < g->slate; j++) {
        if (npool == 0) {
            slate[j] = g->order[j];
            props[j] = 1.0;
            continue;
        }
        if (rn_rand_uniform(&g->rng) < g->epsilon) {
            uint32_t pick = (uint32_t)rn_rand_below(&g->rng, npool);
            slate[j] = g->pool[pick];
            g->pool[pick] = g->pool[--npool];
            props[j] = explore_prop;
        } else {
            slate[j] = g->order[j];
            props[j] = 1.0 - g->epsilon;
        }
    }
}

/* ---- random -------------------------------------------------------------------------- */

static int rn_sim_random_rank(void *ctx, const struct rn_sim_query *q, const uint32_t *cand,
                              uint32_t k, uint32_t *slate, double *props, char *err, size_t errlen)
{
    struct rn_sim_greedy *g = ctx;
    (void)cand;
    (void)err;
    (void)errlen;
    /* A partial Fisher-Yates shuffle of the candidate positions. */
    for (uint32_t c = 0; c < k; c++)
        g->order[c] = c;
    for (uint32_t j = 0; j < q->slate; j++) {
        uint32_t pick = j + (uint32_t)rn_rand_below(&g->rng, k - j);
        uint32_t t = g->order[j];
        g->order[j] = g->order[pick];
        g->order[pick] = t;
        slate[j] = g->order[j];
        props[j] = 1.0 / (double)k;
    }
    return 0;
}

/* ---- popularity ---------------------------------------------------------------------- */

static int rn_sim_popularity_rank(void *ctx, const struct rn_sim_query *q, const uint32_t *cand,
                                  uint32_t k, uint32_t *slate, double *props, char *err,
                                  size_t errlen)
{
    struct rn_sim_greedy *g = ctx;
    (void)q;
    (void)err;
    (void)errlen;
    for (uint32_t c = 0; c < k; c++)
        g->score[c] = (double)g->clicks[cand[c]];
    rn_sim_greedy_slate(g, k, slate, props);
    return 0;
}

static void rn_sim_popularity_observe(void *ctx, const struct rn_sim_event *e)
{
    struct rn_sim_greedy *g = ctx;
    if (e->type == RN_SIM_CLICK) g->clicks[e->item]++;
}

/* ---- myopic -------------------------------------------------------------------------- */

static int rn_sim_myopic_rank(void *ctx, const struct rn_sim_query *q, const uint32_t *cand,
                              uint32_t k, uint32_t *slate, double *props, char *err, size_t errlen)
{
    struct rn_sim_greedy *g = ctx;
    (void)err;
    (void)errlen;
    for (uint32_t c = 0; c < k; c++)
        g->score[c] = rn_sim_click_prob(q->world, q->user, cand[c]);
    rn_sim_greedy_slate(g, k, slate, props);
    return 0;
}

/* ---- oracle-longterm ----------------------------------------------------------------- */

static int rn_sim_oracle_rank(void *ctx, const struct rn_sim_query *q, const uint32_t *cand,
                              uint32_t k, uint32_t *slate, double *props, char *err, size_t errlen)
{
    struct rn_sim_greedy *g = ctx;
    const struct rn_sim_world *w = q->world;
    (void)err;
    (void)errlen;
    for (uint32_t c = 0; c < k; c++) {
        uint32_t i = cand[c];
        double pc = rn_sim_click_prob(w, q->user, i);
        double value = g->w_click + g->w_pay * rn_sim_pay_prob(w, q->user, i);
        /* A clickbait click sours the page: the session will likely lose about a click and a
         * pay's worth of later reward. */
        if (w->clickbait[i]) value -= g->w_click + g->w_pay;
        g->score[c] = pc * value;
    }
    rn_sim_greedy_slate(g, k, slate, props);
    return 0;
}

/* ---- model: the learnt model from a runnel model store ---------------------------------
 *
 * Ranks by the advantages A(s, i) of a model that a runnel job learns from this very log and
 * publishes into a model store (rn_model.h).  The state s is what the job's
 * experience_collector holds for the user: the items the user clicked in earlier lists, each
 * with its list's impression time, oldest first (a pay adds nothing: the item is already
 * there), of which φ uses the last --model-history.  This policy rebuilds that history from
 * the log it sees (observe), and scores with the same code the job uses (rn_phi_compute:
 * the simple φ, or the --model-state-network the job's learner names; rn_model_advantages)
 * on the embedding table the simulator wrote and read back.
 *
 * Which version.  Deterministic mode (--model-lag L > 0): the learner publishes a version at
 * every event-time boundary k·P whose manifest's event_time is that boundary and which learnt
 * from exactly the transitions before it.  A request at t uses the newest version with
 * event_time <= b = floor((t - L) / P)·P, after waiting (the log flushed, so that the job can
 * get there) until the store holds a version with event_time >= b; before the first such b
 * at or after the start of the simulation it ranks at random.  So a run depends only on the
 * seed and on what the learner publishes, not on how fast it is.  Live mode (--model-lag 0):
 * the store's current version (pins honoured), looked up at most every 100 ms of wall time,
 * never waited for; not reproducible.
 */

struct rn_sim_mpol {
    struct rn_sim_greedy *g; /* rng, epsilon, scratch; random ranking before the first model */
    const char *dir;         /* borrowed from the options */
    int64_t lag_ms, period_ms, start_ts, wait_ms;
    uint32_t hist_cap, slate, dim;
    struct rn_embed *emb;
    struct rn_phi_spec spec; /* φ: the simple one or the state network */
    uint32_t phi_dim;
    void *phi_scratch;
    const struct rn_sim_opts *opts; /* borrowed: --model-context */
    uint64_t *item_id;              /* per item index: rn_hash64("i<n>") */
    const float **item_e;           /* per item index: its embedding row, NULL if none */
    float *E, *phi, *adv;           /* scratch: K x D, F, K */
    uint64_t *cand_id;              /* scratch: K */
    /* Per user: the history (hist_cap entries, oldest first) and the last list, whose clicked
     * items join the history at the user's next request. */
    struct rn_hist *hist;
    uint32_t *hist_n;
    uint64_t *pend_req; /* 0: none */
    int64_t *pend_ts;
    uint32_t *pend_items; /* users x L */
    uint8_t *pend_click;  /* users x L */
    /* The store as last listed, and the model in use. */
    struct rn_model_version *vers;
    size_t nvers;
    struct rn_model *model;
    int64_t model_id;      /* -1: none loaded */
    uint64_t used;         /* the version of the slate just ranked; 0: random */
    int64_t last_check_ms; /* live mode */
    int checked, warned_gap;
    /* LAST (--model-last): the evaluator (the store's current version, loaded once), the
     * search's scratch, and what it cost: the search time of every ranked page (µs). */
    struct rn_model *ev;
    struct rn_last_scratch *last;
    uint64_t last_searches, last_changed, last_tried;
    double last_gain; /* Σ over searches of the evaluator's R̂(winner) − R̂(L₀) */
    double *last_us;
    size_t last_n, last_cap;
};

static int rn_sim_dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* LAST's account at the end of a run, on stderr: searches, how many changed the list, lists
 * tried, the added time per ranked page (p50, p99, mean) and the reward per page the
 * evaluator expected LAST to add (its R̂ of the served list minus that of the model's own). */
static void rn_sim_last_report(struct rn_sim_mpol *mp)
{
    if (!mp->ev) return;
    double p50 = 0, p99 = 0, sum = 0;
    if (mp->last_n) {
        qsort(mp->last_us, mp->last_n, sizeof(*mp->last_us), rn_sim_dbl_cmp);
        p50 = mp->last_us[(mp->last_n - 1) / 2];
        p99 = mp->last_us[(size_t)((double)(mp->last_n - 1) * 0.99)];
        for (size_t i = 0; i < mp->last_n; i++)
            sum += mp->last_us[i];
    }
    fprintf(stderr,
            "sim: last: searches=%llu changed=%llu (%.1f%%) lists_tried=%llu added_us_p50=%.1f "
            "added_us_p99=%.1f added_us_mean=%.1f predicted_gain_per_page=%.4f\n",
            (unsigned long long)mp->last_searches, (unsigned long long)mp->last_changed,
            mp->last_searches ? 100.0 * (double)mp->last_changed / (double)mp->last_searches : 0.0,
            (unsigned long long)mp->last_tried, p50, p99,
            mp->last_n ? sum / (double)mp->last_n : 0.0,
            mp->last_searches ? mp->last_gain / (double)mp->last_searches : 0.0);
}

static int64_t rn_sim_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rn_sim_model_destroy(void *ctx)
{
    struct rn_sim_mpol *mp = ctx;
    if (!mp) return;
    rn_sim_last_report(mp);
    rn_model_destroy(mp->ev);
    rn_last_scratch_destroy(mp->last);
    free(mp->last_us);
    if (mp->g) rn_sim_greedy_destroy(mp->g);
    rn_phi_spec_close(&mp->spec);
    free(mp->phi_scratch);
    rn_embed_destroy(mp->emb);
    rn_model_destroy(mp->model);
    free(mp->item_id);
    free(mp->item_e);
    free(mp->E);
    free(mp->phi);
    free(mp->adv);
    free(mp->cand_id);
    free(mp->hist);
    free(mp->hist_n);
    free(mp->pend_req);
    free(mp->pend_ts);
    free(mp->pend_items);
    free(mp->pend_click);
    free(mp->vers);
    free(mp);
}

/* Needs the embedding table written already (main writes it before creating the policy). */
static void *rn_sim_model_create(const struct rn_sim_opts *o, char *err, size_t errlen)
{
    struct rn_sim_mpol *mp = rn_sim_xmalloc(1, sizeof(*mp));
    mp->dir = o->policy + strlen("model:");
    mp->lag_ms = (int64_t)o->model_lag_s * 1000;
    mp->period_ms = (int64_t)o->model_period_s * 1000;
    mp->start_ts = o->start_ts;
    mp->wait_ms = (int64_t)(o->model_wait_s * 1000.0);
    mp->hist_cap = o->model_history;
    mp->slate = o->slate;
    mp->model_id = -1;
    mp->g = rn_sim_greedy_create(o, err, errlen);
    if (!o->embeddings) {
        snprintf(err, errlen, "needs --embeddings");
        goto fail;
    }
    char eerr[512];
    const char *table = o->model_embeddings ? o->model_embeddings : o->embeddings;
    mp->emb = rn_embed_load(table, eerr, sizeof(eerr));
    if (!mp->emb) {
        snprintf(err, errlen, "reading back the embedding table: %s", eerr);
        goto fail;
    }
    mp->dim = rn_embed_dim(mp->emb);
    /* the world's own table has the world's dimension; --model-embeddings any */
    if ((!o->model_embeddings && mp->dim != o->dim) || rn_embed_count(mp->emb) != o->items) {
        snprintf(err, errlen, "%s holds %zu items of dimension %u, want %u of dimension %u", table,
                 rn_embed_count(mp->emb), mp->dim, o->items,
                 o->model_embeddings ? mp->dim : o->dim);
        goto fail;
    }
    mp->item_id = rn_sim_xmalloc(o->items, sizeof(*mp->item_id));
    mp->item_e = rn_sim_xmalloc(o->items, sizeof(*mp->item_e));
    for (uint32_t i = 0; i < o->items; i++) {
        char name[16];
        int n = snprintf(name, sizeof(name), "i%u", i + 1);
        mp->item_id[i] = rn_hash64(name, (size_t)n);
        mp->item_e[i] = rn_embed_get(mp->emb, mp->item_id[i]);
    }
    mp->opts = o;
    if (rn_phi_spec_open(&mp->spec, mp->hist_cap, o->model_half_life_s * 1000.0,
                         o->model_state_network, mp->emb, eerr, sizeof(eerr)) ||
        rn_phi_spec_set_context(&mp->spec, o->model_n_ctx, eerr, sizeof(eerr))) {
        snprintf(err, errlen, "%s", eerr);
        goto fail;
    }
    mp->phi_dim = rn_phi_dim(&mp->spec, mp->emb);
    mp->phi_scratch = rn_sim_xmalloc(rn_phi_scratch_size(&mp->spec, mp->emb) + 1, 1);
    mp->E = rn_sim_xmalloc((size_t)o->candidates * mp->dim, sizeof(*mp->E));
    mp->phi = rn_sim_xmalloc(mp->phi_dim, sizeof(*mp->phi));
    mp->adv = rn_sim_xmalloc(o->candidates, sizeof(*mp->adv));
    mp->cand_id = rn_sim_xmalloc(o->candidates, sizeof(*mp->cand_id));
    mp->hist = rn_sim_xmalloc((size_t)o->users * mp->hist_cap, sizeof(*mp->hist));
    mp->hist_n = rn_sim_xmalloc(o->users, sizeof(*mp->hist_n));
    mp->pend_req = rn_sim_xmalloc(o->users, sizeof(*mp->pend_req));
    mp->pend_ts = rn_sim_xmalloc(o->users, sizeof(*mp->pend_ts));
    mp->pend_items = rn_sim_xmalloc((size_t)o->users * o->slate, sizeof(*mp->pend_items));
    mp->pend_click = rn_sim_xmalloc((size_t)o->users * o->slate, sizeof(*mp->pend_click));
    if (o->model_last) {
        int64_t id;
        if (rn_store_current(o->model_last, &id, eerr, sizeof(eerr)) < 0 ||
            !(mp->ev = rn_store_load(o->model_last, id, eerr, sizeof(eerr)))) {
            snprintf(err, errlen, "--model-last %s: %s", o->model_last, eerr);
            goto fail;
        }
        if (mp->ev->shape.dim != mp->dim || mp->ev->shape.phi != mp->phi_dim) {
            snprintf(err, errlen,
                     "--model-last %s: the evaluator has dim %u and phi %u; the state features "
                     "want %u and %u",
                     o->model_last, mp->ev->shape.dim, mp->ev->shape.phi, mp->dim, mp->phi_dim);
            goto fail;
        }
        mp->last = rn_last_scratch_create();
    }
    return mp;

fail:
    rn_sim_model_destroy(mp);
    return NULL;
}

/* The user's last list's clicked items join the history, in slot order, with its impression
 * time; only the last hist_cap are kept. */
static void rn_sim_model_fold(struct rn_sim_mpol *mp, uint32_t user)
{
    if (!mp->pend_req[user]) return;
    struct rn_hist *h = mp->hist + (size_t)user * mp->hist_cap;
    const uint32_t *items = mp->pend_items + (size_t)user * mp->slate;
    const uint8_t *click = mp->pend_click + (size_t)user * mp->slate;
    for (uint32_t j = 0; j < mp->slate; j++) {
        if (!click[j] || mp->hist_cap == 0) continue;
        if (mp->hist_n[user] == mp->hist_cap)
            memmove(h, h + 1, (mp->hist_cap - 1) * sizeof(*h));
        else
            mp->hist_n[user]++;
        h[mp->hist_n[user] - 1] = (struct rn_hist){mp->item_id[items[j]], mp->pend_ts[user]};
    }
    mp->pend_req[user] = 0;
}

static void rn_sim_model_observe(void *ctx, const struct rn_sim_event *e)
{
    struct rn_sim_mpol *mp = ctx;
    uint32_t u = e->user;
    switch (e->type) {
    case RN_SIM_REQUEST:
        rn_sim_model_fold(mp, u); /* all of the last list's clicks are in by now */
        break;
    case RN_SIM_IMPRESSION:
        assert(e->n == mp->slate);
        rn_sim_model_fold(mp, u);
        mp->pend_req[u] = e->request;
        mp->pend_ts[u] = e->ts;
        memcpy(mp->pend_items + (size_t)u * mp->slate, e->list, mp->slate * sizeof(*e->list));
        memset(mp->pend_click + (size_t)u * mp->slate, 0, mp->slate);
        break;
    case RN_SIM_CLICK:
        if (mp->pend_req[u] != e->request) break;
        for (uint32_t j = 0; j < mp->slate; j++)
            if (mp->pend_items[(size_t)u * mp->slate + j] == e->item)
                mp->pend_click[(size_t)u * mp->slate + j] = 1;
        break;
    default:
        break;
    }
}

/* Makes version id the model in use (loading it unless it is already).  Returns 0 or -1. */
static int rn_sim_model_use(struct rn_sim_mpol *mp, int64_t id, char *err, size_t errlen)
{
    if (id == mp->model_id) return 0;
    char lerr[512];
    struct rn_model *m = rn_store_load(mp->dir, id, lerr, sizeof(lerr));
    if (!m) {
        snprintf(err, errlen, "model store %s: version %lld: %s", mp->dir, (long long)id, lerr);
        return -1;
    }
    if (m->shape.dim != mp->dim || m->shape.phi != mp->phi_dim) {
        snprintf(err, errlen,
                 "model store %s: version %lld has dim %u and phi %u; the embeddings want dim "
                 "%u and phi %u (%s)",
                 mp->dir, (long long)id, m->shape.dim, m->shape.phi, mp->dim, mp->phi_dim,
                 mp->spec.net ? "the output size of --model-state-network"
                              : "the simple state features; does the job name a state_network?");
        rn_model_destroy(m);
        return -1;
    }
    rn_model_destroy(mp->model);
    mp->model = m;
    mp->model_id = id;
    return 0;
}

/* Deterministic mode: picks the version for a request at t into mp->used (0: none yet),
 * waiting for the learner when needed.  Returns 0 or -1. */
static int rn_sim_model_pick(struct rn_sim_mpol *mp, const struct rn_sim_query *q, char *err,
                             size_t errlen)
{
    int64_t x = q->ts - mp->lag_ms, P = mp->period_ms;
    int64_t b = (x >= 0 ? x / P : -((-x + P - 1) / P)) * P; /* floor(x / P) P */
    mp->used = 0;
    if (b < mp->start_ts) return 0;

    /* The learner publishes in event-time order, so once the list reaches b it holds every
     * version at or before b: list again only when it does not. */
    int64_t newest = INT64_MIN;
    for (size_t i = 0; i < mp->nvers; i++)
        if (mp->vers[i].event_time > newest) newest = mp->vers[i].event_time;
    if (newest < b) {
        if (fflush(q->log) != 0) {
            snprintf(err, errlen, "flushing the event log: %s", strerror(errno));
            return -1;
        }
        int64_t deadline = rn_sim_mono_ms() + mp->wait_ms;
        char lerr[512] = "";
        for (;;) {
            free(mp->vers);
            mp->vers = NULL;
            mp->nvers = 0;
            lerr[0] = '\0';
            if (rn_store_list(mp->dir, &mp->vers, &mp->nvers, lerr, sizeof(lerr)) < 0) {
                free(mp->vers);
                mp->vers = NULL;
                mp->nvers = 0;
            }
            newest = INT64_MIN;
            for (size_t i = 0; i < mp->nvers; i++)
                if (mp->vers[i].event_time > newest) newest = mp->vers[i].event_time;
            if (newest >= b) break;
            if (rn_sim_mono_ms() >= deadline) {
                char nb[64] = "none";
                if (mp->nvers) snprintf(nb, sizeof(nb), "%lld", (long long)newest);
                snprintf(err, errlen,
                         "model store %s has no version with event_time >= %lld (the request "
                         "at %lld minus --model-lag %llds, rounded down to --model-period %llds) "
                         "after waiting %gs (--model-wait); its newest event_time: %s%s%s",
                         mp->dir, (long long)b, (long long)q->ts, (long long)(mp->lag_ms / 1000),
                         (long long)(P / 1000), mp->wait_ms / 1000.0, nb, lerr[0] ? "; " : "",
                         lerr);
                return -1;
            }
            struct timespec pause = {0, 2000000};
            nanosleep(&pause, NULL);
        }
    }
    const struct rn_model_version *best = NULL;
    for (size_t i = 0; i < mp->nvers; i++) {
        const struct rn_model_version *v = &mp->vers[i];
        if (v->event_time <= b && (!best || v->event_time > best->event_time ||
                                   (v->event_time == best->event_time && v->id > best->id)))
            best = v;
    }
    if (!best) {
        /* Only versions from after b: the learner skipped boundaries.  Using a later one would
         * peek at the future; rank at random as before the first model. */
        if (!mp->warned_gap++)
            fprintf(stderr,
                    "sim: warning: model store %s has no version at or before event time %lld; "
                    "ranking at random until it has\n",
                    mp->dir, (long long)b);
        return 0;
    }
    if (rn_sim_model_use(mp, best->id, err, errlen) < 0) return -1;
    mp->used = (uint64_t)best->id;
    return 0;
}

/* Live mode: the store's current version, looked up at most every 100 ms. */
static int rn_sim_model_current(struct rn_sim_mpol *mp, const struct rn_sim_query *q, char *err,
                                size_t errlen)
{
    int64_t now = rn_sim_mono_ms();
    if (mp->checked && now - mp->last_check_ms < 100) return 0;
    mp->checked = 1;
    mp->last_check_ms = now;
    if (fflush(q->log) != 0) {
        snprintf(err, errlen, "flushing the event log: %s", strerror(errno));
        return -1;
    }
    int64_t id;
    char lerr[512];
    int rc = rn_store_current(mp->dir, &id, lerr, sizeof(lerr));
    if (rc == RN_ENOENT) {
        mp->used = 0;
        return 0;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s", lerr);
        return -1;
    }
    if (rn_sim_model_use(mp, id, err, errlen) < 0) return -1;
    mp->used = (uint64_t)id;
    return 0;
}

static int rn_sim_model_rank(void *ctx, const struct rn_sim_query *q, const uint32_t *cand,
                             uint32_t k, uint32_t *slate, double *props, char *err, size_t errlen)
{
    struct rn_sim_mpol *mp = ctx;
    int rc = mp->lag_ms ? rn_sim_model_pick(mp, q, err, errlen)
                        : rn_sim_model_current(mp, q, err, errlen);
    if (rc < 0) return rc;
    if (!mp->used) return rn_sim_random_rank(mp->g, q, cand, k, slate, props, err, errlen);

    uint32_t d = mp->dim;
    /* The request's context as the log carries it (the values written there). */
    double cv[16];
    for (uint32_t i = 0; i < mp->opts->model_n_ctx; i++)
        cv[i] = mp->opts->model_ctx[i] == 0 ? (double)(q->ts / 3600000 % 24) : (double)q->page;
    rn_phi_compute_ctx(&mp->spec, mp->emb, mp->hist + (size_t)q->user * mp->hist_cap,
                       mp->hist_n[q->user], q->ts, cv, mp->opts->model_n_ctx, mp->phi,
                       mp->phi_scratch);
    for (uint32_t c = 0; c < k; c++) {
        mp->cand_id[c] = mp->item_id[cand[c]];
        if (mp->item_e[cand[c]])
            memcpy(mp->E + (size_t)c * d, mp->item_e[cand[c]], d * sizeof(float));
        else
            memset(mp->E + (size_t)c * d, 0, d * sizeof(float));
    }
    rn_model_advantages(mp->model, mp->phi, mp->E, mp->cand_id, k, mp->adv);
    if (mp->ev) {
        const struct rn_sim_opts *o = mp->opts;
        struct rn_last_cfg lc = {
            o->model_last_candidates, o->model_last_steps, o->model_last_step,
            o->model_last_temperature,
            o->model_last_budget_us > 0 ? (int64_t)(o->model_last_budget_us * 1000.0) : INT64_MAX};
        struct rn_last_stats st;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int lr = rn_last_search(mp->model, mp->ev, mp->phi, mp->E, mp->cand_id, k,
                                mp->slate < k ? mp->slate : k, &lc, mp->last, mp->adv, &st);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (lr == 0) {
            mp->last_searches++;
            mp->last_changed += st.changed != 0;
            mp->last_tried += st.tried;
            mp->last_gain += st.best_reward - st.base_reward;
            if (mp->last_n == mp->last_cap) {
                mp->last_cap = mp->last_cap ? 2 * mp->last_cap : 4096;
                mp->last_us = realloc(mp->last_us, mp->last_cap * sizeof(*mp->last_us));
                if (!mp->last_us) {
                    snprintf(err, errlen, "out of memory");
                    return -1;
                }
            }
            mp->last_us[mp->last_n++] =
                (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
        }
    }
    for (uint32_t c = 0; c < k; c++)
        mp->g->score[c] = (double)mp->adv[c];
    rn_sim_greedy_slate(mp->g, k, slate, props);
    return 0;
}

static uint64_t rn_sim_model_version(void *ctx)
{
    return ((struct rn_sim_mpol *)ctx)->used;
}

/* ---- http: a remote policy, the serving endpoint of a runnel job ------------------------
 *
 * Each page is a POST /api/v1/recommend to the job, as an app would send it:
 *   {"user":"u7","request":"r12","candidates":["i1",...],"context":{"hour":22,"page":0},
 *    "k":5,"ts":1700000000000}
 * and the answer must be 200 with {"items":[k distinct candidates],"propensities":[k numbers
 * in [0, 1]],"model_version":N,...}.  The log is flushed before each request: the job follows
 * the file, and may want this very request line before it answers.
 */

struct rn_sim_hpol {
    struct rn_sim_http *http;
    const char *url; /* borrowed from the options */
    struct rn_buf body, resp;
    uint32_t *pos_of;  /* per item index: its candidate position in the current request */
    uint64_t *mark_of; /* per item index: the request that set pos_of */
    uint64_t used;
};

static void rn_sim_http_pol_destroy(void *ctx)
{
    struct rn_sim_hpol *hp = ctx;
    if (!hp) return;
    rn_sim_http_destroy(hp->http);
    rn_buf_free(&hp->body);
    rn_buf_free(&hp->resp);
    free(hp->pos_of);
    free(hp->mark_of);
    free(hp);
}

static void *rn_sim_http_pol_create(const struct rn_sim_opts *o, char *err, size_t errlen)
{
    struct rn_sim_hpol *hp = rn_sim_xmalloc(1, sizeof(*hp));
    hp->url = o->policy;
    hp->http = rn_sim_http_create(o->policy, (int)(o->http_timeout_s * 1000.0), err, errlen);
    if (!hp->http) {
        rn_sim_http_pol_destroy(hp);
        return NULL;
    }
    hp->pos_of = rn_sim_xmalloc(o->items, sizeof(*hp->pos_of));
    hp->mark_of = rn_sim_xmalloc(o->items, sizeof(*hp->mark_of));
    return hp;
}

/* The candidate position of an item id "i<n>" in the request, or -1. */
static int64_t rn_sim_http_pol_find(const struct rn_sim_hpol *hp, uint64_t req, uint32_t n_items,
                                    const char *id)
{
    if (id[0] != 'i' || id[1] < '1' || id[1] > '9') return -1;
    uint64_t n;
    if (rn_sim_parse_u64(id + 1, 1, n_items, &n)) return -1;
    return hp->mark_of[n - 1] == req ? (int64_t)hp->pos_of[n - 1] : -1;
}

static int rn_sim_http_pol_rank(void *ctx, const struct rn_sim_query *q, const uint32_t *cand,
                                uint32_t k, uint32_t *slate, double *props, char *err,
                                size_t errlen)
{
    struct rn_sim_hpol *hp = ctx;
    static const char path[] = "/api/v1/recommend";
    uint32_t n_items = q->world->n_items;
    struct rn_buf *b = &hp->body;
    rn_buf_reset(b);
    rn_buf_printf(b, "{\"user\":\"u%u\",\"request\":\"r%llu\",\"candidates\":[", q->user + 1,
                  (unsigned long long)q->request);
    for (uint32_t c = 0; c < k; c++) {
        rn_buf_printf(b, c ? ",\"i%u\"" : "\"i%u\"", cand[c] + 1);
        hp->pos_of[cand[c]] = c;
        hp->mark_of[cand[c]] = q->request;
    }
    rn_buf_printf(b, "],\"context\":{\"hour\":%d,\"page\":%u},\"k\":%u,\"ts\":%lld}",
                  (int)(q->ts / 3600000 % 24), q->page, q->slate, (long long)q->ts);

    if (fflush(q->log) != 0) {
        snprintf(err, errlen, "flushing the event log: %s", strerror(errno));
        return -1;
    }
    int status = 0;
    char herr[512];
    if (rn_sim_http_post(hp->http, path, b->data, b->len, &status, &hp->resp, herr, sizeof(herr)) <
        0) {
        snprintf(err, errlen, "%s", herr);
        return -1;
    }
    rn_buf_putc(&hp->resp, '\0');
    const char *text = hp->resp.data;
    if (status != 200) {
        snprintf(err, errlen, "%s%s answered %d: %.200s", hp->url, path, status, text);
        return -1;
    }
    char jerr[256];
    yajl_val root = yajl_tree_parse(text, jerr, sizeof(jerr));
    int rc = -1;
    const char *items_path[] = {"items", NULL}, *props_path[] = {"propensities", NULL},
               *ver_path[] = {"model_version", NULL};
    yajl_val items = root ? yajl_tree_get(root, items_path, yajl_t_array) : NULL;
    yajl_val pv = root ? yajl_tree_get(root, props_path, yajl_t_array) : NULL;
    yajl_val ver = root ? yajl_tree_get(root, ver_path, yajl_t_any) : NULL;
    if (!root || !YAJL_IS_OBJECT(root)) {
        snprintf(err, errlen, "%s%s: the answer is not a JSON object (%s): %.200s", hp->url, path,
                 root ? "not an object" : jerr, text);
        goto done;
    }
    if (!items || items->u.array.len != q->slate) {
        snprintf(err, errlen, "%s%s: \"items\" must be an array of %u (k) candidates, got %s%zu",
                 hp->url, path, q->slate, items ? "" : "no array; ",
                 items ? items->u.array.len : 0);
        goto done;
    }
    if (!pv || pv->u.array.len != q->slate) {
        snprintf(err, errlen,
                 "%s%s: \"propensities\" must be an array of %u (k) numbers, got %s%zu", hp->url,
                 path, q->slate, pv ? "" : "no array; ", pv ? pv->u.array.len : 0);
        goto done;
    }
    if (!ver || !YAJL_IS_INTEGER(ver) || YAJL_GET_INTEGER(ver) < 0) {
        snprintf(err, errlen, "%s%s: \"model_version\" must be an integer >= 0", hp->url, path);
        goto done;
    }
    for (uint32_t j = 0; j < q->slate; j++) {
        yajl_val it = items->u.array.values[j], p = pv->u.array.values[j];
        const char *id = YAJL_IS_STRING(it) ? YAJL_GET_STRING(it) : NULL;
        int64_t c = id ? rn_sim_http_pol_find(hp, q->request, n_items, id) : -1;
        if (c < 0) {
            snprintf(err, errlen, "%s%s: items[%u] (%.40s) is not one of r%llu's candidates",
                     hp->url, path, j, id ? id : "not a string", (unsigned long long)q->request);
            goto done;
        }
        for (uint32_t m = 0; m < j; m++)
            if (slate[m] == (uint32_t)c) {
                snprintf(err, errlen, "%s%s: items[%u] and items[%u] are both %s", hp->url, path, m,
                         j, id);
                goto done;
            }
        if (!YAJL_IS_NUMBER(p) || !(YAJL_GET_DOUBLE(p) >= 0.0 && YAJL_GET_DOUBLE(p) <= 1.0)) {
            snprintf(err, errlen, "%s%s: propensities[%u] is not a number in [0, 1]", hp->url, path,
                     j);
            goto done;
        }
        slate[j] = (uint32_t)c;
        props[j] = YAJL_GET_DOUBLE(p);
    }
    hp->used = (uint64_t)YAJL_GET_INTEGER(ver);
    rc = 0;
done:
    yajl_tree_free(root);
    return rc;
}

static uint64_t rn_sim_http_pol_version(void *ctx)
{
    return ((struct rn_sim_hpol *)ctx)->used;
}

static const struct rn_sim_policy_type rn_sim_policies[] = {
    {"random", "a uniform random slate; propensity 1/K per slot", rn_sim_greedy_create,
     rn_sim_random_rank, NULL, NULL, rn_sim_greedy_destroy, NULL},
    {"popularity", "top-L candidates by clicks so far, epsilon-greedy", rn_sim_greedy_create,
     rn_sim_popularity_rank, rn_sim_popularity_observe, NULL, rn_sim_greedy_destroy, NULL},
    {"myopic", "top-L by true click probability (favours clickbait), epsilon-greedy",
     rn_sim_greedy_create, rn_sim_myopic_rank, NULL, NULL, rn_sim_greedy_destroy, NULL},
    {"oracle-longterm",
     "top-L by true click value incl. pays, minus a clickbait penalty, epsilon-greedy",
     rn_sim_greedy_create, rn_sim_oracle_rank, NULL, NULL, rn_sim_greedy_destroy, NULL},
    {"model:", "top-L by a learnt model's advantages from a runnel model store, epsilon-greedy",
     rn_sim_model_create, rn_sim_model_rank, rn_sim_model_observe, rn_sim_model_version,
     rn_sim_model_destroy, "DIR"},
    {"http://", "asks a runnel job's serving endpoint (POST /api/v1/recommend) per page",
     rn_sim_http_pol_create, rn_sim_http_pol_rank, NULL, rn_sim_http_pol_version,
     rn_sim_http_pol_destroy, "HOST:PORT"},
};
#define RN_SIM_NPOLICIES (sizeof(rn_sim_policies) / sizeof(rn_sim_policies[0]))

static const struct rn_sim_policy_type *rn_sim_policy_find(const char *name)
{
    for (size_t i = 0; i < RN_SIM_NPOLICIES; i++) {
        const struct rn_sim_policy_type *t = &rn_sim_policies[i];
        size_t n = strlen(t->name);
        if (t->arg ? strncmp(t->name, name, n) == 0 && name[n] != '\0' : strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Options: parsing.
 */

static void rn_sim_usage(FILE *f)
{
    fputs("usage: rn_sim [options]\n"
          "Simulates the users of a recommender in closed loop with a policy and writes the\n"
          "event log (JSON lines: request, impression, click, pay) in event-time order.\n"
          "\n"
          "  --policy NAME          random | popularity | myopic | oracle-longterm |\n"
          "                         model:DIR | http://HOST:PORT (default random)\n"
          "  --sessions S           sessions to simulate (default 2000)\n"
          "  --users U              users u1..uU (default 5000)\n"
          "  --items N              items i1..iN (default 2000)\n"
          "  --dim D                dimension of the item and interest vectors (default 16)\n"
          "  --topics T             topic centres (default 8)\n"
          "  --clickbait F          fraction of clickbait items (default 0.1)\n"
          "  --drift D              interest step towards a clicked or paid item (default 0.05)\n"
          "  --candidates K         candidates per request (default 50)\n"
          "  --slate L              items shown per request (default 5)\n"
          "  --epsilon E            exploration of the greedy policies (default 0.05)\n"
          "  --w-click W            reward per click (default 1)\n"
          "  --w-pay W              reward per pay (default 5)\n"
          "  --max-pages P          pages per session at most (default 10)\n"
          "  --exam-decay X         examination probability (1 + pos)^-X (default 0.7)\n"
          "  --rate R               session arrivals per second of event time (default 0.5)\n"
          "  --min-gap SEC          least time between a user's sessions (default 1800)\n"
          "  --item-zipf S          skew of item popularity in candidate samples (default 0.8)\n"
          "  --user-zipf S          skew of user activity, 0 = uniform (default 0.5)\n"
          "  --start-ts MS          event time of the first session (default 1700000000000)\n"
          "  --seed S               random seed; same seed, same bytes (default 1)\n"
          "  --out PATH             event log (default stdout)\n"
          "  --embeddings PATH      item-embedding table: \"i<n>\" then D floats per line\n"
          "  --embedding-noise S    gaussian noise per embedding component (default 0.1)\n"
          "  --summary-json PATH    write the summary figures as JSON\n"
          "  --returns PATH         write each session's return, one line per session in\n"
          "                         arrival order: index pages return (learning curves)\n"
          "  --model-lag SEC        model:DIR uses the version of event time t - SEC, rounded\n"
          "                         down to --model-period; 0: the current one (default 3600)\n"
          "  --model-period SEC     the learner's publishing period (default 600)\n"
          "  --model-wait SEC       longest wait for that version (default 120)\n"
          "  --model-history N      clicked items in the state (default 10)\n"
          "  --model-half-life SEC  half-life of the state's decayed sum (default 1800)\n"
          "  --model-context LIST   request-context values in the state, as the job's\n"
          "                         context_fields (comma-separated: hour, page)\n"
          "  --model-state-network FILE  the state network the job's learner names\n"
          "                         (state_network); default: the simple state features\n"
          "  --model-embeddings FILE  the item table model:DIR scores with, any dimension,\n"
          "                         the world's items (a distilled student's\n"
          "                         student_embeddings); default: --embeddings\n"
          "  --model-last DIR       model:DIR with LAST: per page, throw-away parameter offsets\n"
          "                         of the model searched by gradient exploration, lists scored\n"
          "                         by the evaluator in the store DIR (its current version, a\n"
          "                         learner with objective: list_reward); default: off\n"
          "  --model-last-candidates N  offsets per page (default 8)\n"
          "  --model-last-steps N   gradient steps per offset (default 1)\n"
          "  --model-last-step X    length of the smallest step (default 0.1)\n"
          "  --model-last-temperature T  of the list probability followed (default 1)\n"
          "  --model-last-budget US time budget per page in µs; 0: none (default 0)\n"
          "  --http-timeout SEC     http://HOST:PORT: limit per request (default 10)\n"
          "  --help                 print this help\n",
          f);
}

static int rn_sim_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9') return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int rn_sim_parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    uint64_t v;
    if (rn_sim_parse_u64(s, lo, hi, &v)) return -1;
    *out = (uint32_t)v;
    return 0;
}

static int rn_sim_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* --model-context: a comma-separated list of hour and page (each at most once). */
static int rn_sim_parse_context(const char *s, struct rn_sim_opts *o)
{
    o->model_n_ctx = 0;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        int which = n == 4 && !memcmp(s, "hour", 4) ? 0 : n == 4 && !memcmp(s, "page", 4) ? 1 : -1;
        if (which < 0) return -1;
        for (uint32_t i = 0; i < o->model_n_ctx; i++)
            if (o->model_ctx[i] == which) return -1;
        o->model_ctx[o->model_n_ctx++] = (uint8_t)which;
        if (!e) break;
        s = e + 1;
    }
    return o->model_n_ctx ? 0 : -1;
}

/* Fills o from argv; returns 0, 1 after --help, or -1 after printing what was wrong. */
static int rn_sim_parse_args(int argc, char **argv, struct rn_sim_opts *o)
{
    enum {
        O_POLICY = 256,
        O_SESSIONS,
        O_USERS,
        O_ITEMS,
        O_DIM,
        O_TOPICS,
        O_CLICKBAIT,
        O_DRIFT,
        O_CAND,
        O_SLATE,
        O_EPS,
        O_WCLICK,
        O_WPAY,
        O_MAXPAGES,
        O_DECAY,
        O_RATE,
        O_MINGAP,
        O_IZIPF,
        O_UZIPF,
        O_START,
        O_SEED,
        O_OUT,
        O_EMB,
        O_EMBNOISE,
        O_SUMMARY,
        O_RETURNS,
        O_MLAG,
        O_MPERIOD,
        O_MWAIT,
        O_MHIST,
        O_MHALF,
        O_MSTATENET,
        O_MCTX,
        O_MEMB,
        O_HTIMEOUT,
        O_MLAST,
        O_MLASTCAND,
        O_MLASTSTEPS,
        O_MLASTSTEP,
        O_MLASTTEMP,
        O_MLASTBUDGET,
        O_HELP
    };
    static const struct option longopts[] = {
        {"policy", required_argument, NULL, O_POLICY},
        {"sessions", required_argument, NULL, O_SESSIONS},
        {"users", required_argument, NULL, O_USERS},
        {"items", required_argument, NULL, O_ITEMS},
        {"dim", required_argument, NULL, O_DIM},
        {"topics", required_argument, NULL, O_TOPICS},
        {"clickbait", required_argument, NULL, O_CLICKBAIT},
        {"drift", required_argument, NULL, O_DRIFT},
        {"candidates", required_argument, NULL, O_CAND},
        {"slate", required_argument, NULL, O_SLATE},
        {"epsilon", required_argument, NULL, O_EPS},
        {"w-click", required_argument, NULL, O_WCLICK},
        {"w-pay", required_argument, NULL, O_WPAY},
        {"max-pages", required_argument, NULL, O_MAXPAGES},
        {"exam-decay", required_argument, NULL, O_DECAY},
        {"rate", required_argument, NULL, O_RATE},
        {"min-gap", required_argument, NULL, O_MINGAP},
        {"item-zipf", required_argument, NULL, O_IZIPF},
        {"user-zipf", required_argument, NULL, O_UZIPF},
        {"start-ts", required_argument, NULL, O_START},
        {"seed", required_argument, NULL, O_SEED},
        {"out", required_argument, NULL, O_OUT},
        {"embeddings", required_argument, NULL, O_EMB},
        {"embedding-noise", required_argument, NULL, O_EMBNOISE},
        {"summary-json", required_argument, NULL, O_SUMMARY},
        {"returns", required_argument, NULL, O_RETURNS},
        {"model-lag", required_argument, NULL, O_MLAG},
        {"model-period", required_argument, NULL, O_MPERIOD},
        {"model-wait", required_argument, NULL, O_MWAIT},
        {"model-history", required_argument, NULL, O_MHIST},
        {"model-half-life", required_argument, NULL, O_MHALF},
        {"model-context", required_argument, NULL, O_MCTX},
        {"model-state-network", required_argument, NULL, O_MSTATENET},
        {"model-embeddings", required_argument, NULL, O_MEMB},
        {"http-timeout", required_argument, NULL, O_HTIMEOUT},
        {"model-last", required_argument, NULL, O_MLAST},
        {"model-last-candidates", required_argument, NULL, O_MLASTCAND},
        {"model-last-steps", required_argument, NULL, O_MLASTSTEPS},
        {"model-last-step", required_argument, NULL, O_MLASTSTEP},
        {"model-last-temperature", required_argument, NULL, O_MLASTTEMP},
        {"model-last-budget", required_argument, NULL, O_MLASTBUDGET},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    *o = (struct rn_sim_opts){
        .items = 2000,
        .dim = 16,
        .topics = 8,
        .users = 5000,
        .candidates = 50,
        .slate = 5,
        .max_pages = 10,
        .sessions = 2000,
        .seed = 1,
        .min_gap_s = 1800,
        .start_ts = 1700000000000,
        .clickbait = 0.1,
        .drift = 0.05,
        .epsilon = 0.05,
        .w_click = 1.0,
        .w_pay = 5.0,
        .embedding_noise = 0.1,
        .rate = 0.5,
        .item_zipf = 0.8,
        .user_zipf = 0.5,
        .exam_decay = 0.7,
        .policy = "random",
        .model_lag_s = 3600,
        .model_period_s = 600,
        .model_wait_s = 120,
        .model_history = 10,
        .model_half_life_s = 1800,
        .http_timeout_s = 10,
        .model_last_candidates = 8,
        .model_last_steps = 1,
        .model_last_step = 0.1,
        .model_last_temperature = 1.0,
    };
    int c, li = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, &li)) != -1) {
        const char *a = optarg;
        uint64_t u;
        int bad = 0;
        switch (c) {
        case O_POLICY:
            o->policy = a;
            bad = rn_sim_policy_find(a) == NULL;
            break;
        case O_SESSIONS:
            bad = rn_sim_parse_u64(a, 0, 1000000000ull, &o->sessions);
            break;
        case O_USERS:
            bad = rn_sim_parse_u32(a, 1, RN_SIM_MAX_IDS, &o->users);
            break;
        case O_ITEMS:
            bad = rn_sim_parse_u32(a, 1, RN_SIM_MAX_IDS, &o->items);
            break;
        case O_DIM:
            bad = rn_sim_parse_u32(a, 1, RN_SIM_MAX_DIM, &o->dim);
            break;
        case O_TOPICS:
            bad = rn_sim_parse_u32(a, 1, RN_SIM_MAX_IDS, &o->topics);
            break;
        case O_CLICKBAIT:
            bad = rn_sim_parse_double(a, 0.0, 1.0, &o->clickbait);
            break;
        case O_DRIFT:
            bad = rn_sim_parse_double(a, 0.0, 1.0, &o->drift);
            break;
        case O_CAND:
            bad = rn_sim_parse_u32(a, 1, RN_SIM_MAX_CAND, &o->candidates);
            break;
        case O_SLATE:
            bad = rn_sim_parse_u32(a, 1, RN_SIM_MAX_CAND, &o->slate);
            break;
        case O_EPS:
            bad = rn_sim_parse_double(a, 0.0, 1.0, &o->epsilon);
            break;
        case O_WCLICK:
            bad = rn_sim_parse_double(a, 0.0, 1e9, &o->w_click);
            break;
        case O_WPAY:
            bad = rn_sim_parse_double(a, 0.0, 1e9, &o->w_pay);
            break;
        case O_MAXPAGES:
            bad = rn_sim_parse_u32(a, 1, 1000000, &o->max_pages);
            break;
        case O_DECAY:
            bad = rn_sim_parse_double(a, 0.0, 100.0, &o->exam_decay);
            break;
        case O_RATE:
            bad = rn_sim_parse_double(a, 1e-6, 1e6, &o->rate);
            break;
        case O_MINGAP:
            bad = rn_sim_parse_u64(a, 0, 10ull * 365 * 86400, &o->min_gap_s);
            break;
        case O_IZIPF:
            bad = rn_sim_parse_double(a, 0.0, 100.0, &o->item_zipf);
            break;
        case O_UZIPF:
            bad = rn_sim_parse_double(a, 0.0, 100.0, &o->user_zipf);
            break;
        case O_START:
            bad = rn_sim_parse_u64(a, 0, 32503680000000ull, &u);
            o->start_ts = (int64_t)u;
            break;
        case O_SEED:
            bad = rn_sim_parse_u64(a, 0, UINT64_MAX, &o->seed);
            break;
        case O_OUT:
            o->out = a;
            break;
        case O_EMB:
            o->embeddings = a;
            break;
        case O_EMBNOISE:
            bad = rn_sim_parse_double(a, 0.0, 1e6, &o->embedding_noise);
            break;
        case O_SUMMARY:
            o->summary_json = a;
            break;
        case O_RETURNS:
            o->returns = a;
            break;
        case O_MLAG:
            bad = rn_sim_parse_u64(a, 0, 10ull * 365 * 86400, &o->model_lag_s);
            break;
        case O_MPERIOD:
            bad = rn_sim_parse_u64(a, 1, 10ull * 365 * 86400, &o->model_period_s);
            break;
        case O_MWAIT:
            bad = rn_sim_parse_double(a, 0.0, 1e6, &o->model_wait_s);
            break;
        case O_MHIST:
            bad = rn_sim_parse_u32(a, 1, 1000, &o->model_history);
            break;
        case O_MEMB:
            o->model_embeddings = a;
            break;
        case O_MHALF:
            bad = rn_sim_parse_double(a, 0.0, 1e9, &o->model_half_life_s);
            break;
        case O_MSTATENET:
            o->model_state_network = a;
            break;
        case O_MCTX:
            bad = rn_sim_parse_context(a, o);
            break;
        case O_HTIMEOUT:
            bad = rn_sim_parse_double(a, 0.001, 1e6, &o->http_timeout_s);
            break;
        case O_MLAST:
            o->model_last = a;
            break;
        case O_MLASTCAND:
            bad = rn_sim_parse_u32(a, 1, 256, &o->model_last_candidates);
            break;
        case O_MLASTSTEPS:
            bad = rn_sim_parse_u32(a, 1, 64, &o->model_last_steps);
            break;
        case O_MLASTSTEP:
            bad = rn_sim_parse_double(a, 1e-9, 1e9, &o->model_last_step);
            break;
        case O_MLASTTEMP:
            bad = rn_sim_parse_double(a, 1e-9, 1e9, &o->model_last_temperature);
            break;
        case O_MLASTBUDGET:
            bad = rn_sim_parse_double(a, 0.0, 1e9, &o->model_last_budget_us);
            break;
        case O_HELP:
            rn_sim_usage(stdout);
            return 1;
        default:
            if (optopt >= O_POLICY && optopt <= O_HELP)
                fprintf(stderr, "sim: option %s needs a value\n", argv[optind - 1]);
            else
                fprintf(stderr, "sim: unknown option '%s'\n", argv[optind - 1]);
            rn_sim_usage(stderr);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "sim: bad value '%s' for option --%s\n", a, longopts[li].name);
            if (c == O_POLICY) {
                fputs("sim: policies:\n", stderr);
                for (size_t i = 0; i < RN_SIM_NPOLICIES; i++) {
                    const struct rn_sim_policy_type *t = &rn_sim_policies[i];
                    char name[64];
                    snprintf(name, sizeof(name), "%s%s", t->name, t->arg ? t->arg : "");
                    fprintf(stderr, "  %-18s %s\n", name, t->description);
                }
            } else {
                rn_sim_usage(stderr);
            }
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sim: unexpected argument '%s'\n", argv[optind]);
        rn_sim_usage(stderr);
        return -1;
    }
    if (o->candidates > o->items) {
        fprintf(stderr, "sim: --candidates (%u) exceeds --items (%u)\n", o->candidates, o->items);
        return -1;
    }
    if (o->slate > o->candidates) {
        fprintf(stderr, "sim: --slate (%u) exceeds --candidates (%u)\n", o->slate, o->candidates);
        return -1;
    }
    if (strncmp(o->policy, "model:", 6) == 0 && !o->embeddings) {
        fprintf(stderr,
                "sim: --policy %s needs --embeddings PATH: the model scores with the "
                "table the simulator writes there\n",
                o->policy);
        return -1;
    }
    if (o->model_n_ctx && strncmp(o->policy, "model:", 6) != 0) {
        fprintf(stderr, "sim: --model-context is for --policy model:DIR, not %s\n", o->policy);
        return -1;
    }
    if (o->model_last && strncmp(o->policy, "model:", 6) != 0) {
        fprintf(stderr, "sim: --model-last is for --policy model:DIR, not %s\n", o->policy);
        return -1;
    }
    if (o->model_state_network && strncmp(o->policy, "model:", 6) != 0) {
        fprintf(stderr, "sim: --model-state-network is for --policy model:DIR, not %s\n",
                o->policy);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Pending events: a binary min-heap on (ts, seq).
 */

enum rn_sim_kind {
    RN_SIM_K_REQUEST = RN_SIM_REQUEST, /* a page: request, ranking, the user's reactions */
    RN_SIM_K_IMPRESSION = RN_SIM_IMPRESSION,
    RN_SIM_K_CLICK = RN_SIM_CLICK,
    RN_SIM_K_PAY = RN_SIM_PAY,
    RN_SIM_K_ARRIVAL,    /* a session arrives; a free user takes it */
    RN_SIM_K_USER_READY, /* a user may start a session again */
};

struct rn_sim_pending {
    int64_t ts;
    uint64_t seq;     /* tie breaker: first scheduled, first out */
    uint64_t request; /* impression, click, pay */
    uint32_t user;
    uint32_t session; /* request: session index */
    uint32_t page;    /* request: page number; impression: page slot */
    uint32_t item;    /* click, pay */
    uint32_t cents;   /* pay */
    uint8_t kind;     /* enum rn_sim_kind */
};

struct rn_sim_heap {
    struct rn_sim_pending *v;
    size_t n, cap;
};

static inline int rn_sim_before(const struct rn_sim_pending *a, const struct rn_sim_pending *b)
{
    return a->ts < b->ts || (a->ts == b->ts && a->seq < b->seq);
}

/* Copies e into the heap. */
static void rn_sim_heap_push(struct rn_sim_heap *h, const struct rn_sim_pending *e)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 1024;
        h->v = rn_sim_xrealloc(h->v, h->cap, sizeof(*h->v));
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!rn_sim_before(e, &h->v[parent])) break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = *e;
}

static void rn_sim_heap_pop(struct rn_sim_heap *h, struct rn_sim_pending *out)
{
    assert(h->n > 0);
    *out = h->v[0];
    struct rn_sim_pending last = h->v[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && rn_sim_before(&h->v[c + 1], &h->v[c])) c++;
        if (!rn_sim_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (n > 0) h->v[i] = last;
}

/* ---------------------------------------------------------------------------------------
 * Free users: a Fenwick tree of integer activity weights (0 while a user is busy), so that
 * drawing a free user by weight and taking one out or putting one back are O(log U).
 */

struct rn_sim_fenwick {
    uint64_t *t; /* 1-based partial sums */
    uint64_t *w; /* the weight each user has when free */
    uint8_t *free;
    uint32_t n;
    uint64_t total;
};

static void rn_sim_fenwick_add(struct rn_sim_fenwick *f, uint32_t user, int64_t delta)
{
    f->total += (uint64_t)delta;
    for (uint32_t i = user + 1; i <= f->n; i += i & (~i + 1))
        f->t[i] += (uint64_t)delta;
}

static void rn_sim_fenwick_set_free(struct rn_sim_fenwick *f, uint32_t user, int is_free)
{
    if (f->free[user] == is_free) return;
    f->free[user] = (uint8_t)is_free;
    rn_sim_fenwick_add(f, user, is_free ? (int64_t)f->w[user] : -(int64_t)f->w[user]);
}

/* The user whose weight interval holds x, for x < total. */
static uint32_t rn_sim_fenwick_find(const struct rn_sim_fenwick *f, uint64_t x)
{
    uint32_t pos = 0, step = 1;
    while (step * 2 <= f->n)
        step *= 2;
    for (; step; step /= 2) {
        if (pos + step <= f->n && f->t[pos + step] <= x) {
            pos += step;
            x -= f->t[pos];
        }
    }
    assert(pos < f->n && f->free[pos]);
    return pos;
}

/* ---------------------------------------------------------------------------------------
 * The simulator.
 */

/* What one session accumulated. */
struct rn_sim_session {
    double ret;     /* sum of page rewards */
    int64_t end_ts; /* the latest event time of any of its events */
    uint32_t pages;
};

/* The slate of a page, kept from its request until its impression is written. */
struct rn_sim_pages {
    uint32_t *items; /* cap * L item indices */
    double *props;   /* cap * L propensities */
    uint64_t *model_version;
    uint32_t *free;
    uint32_t nfree, cap, slate;
};

struct rn_sim {
    struct rn_sim_opts o;
    struct rn_sim_world world;
    const struct rn_sim_policy_type *ptype;
    void *policy;
    struct rn_rand arrival, cand_rng, user_rng;
    struct rn_sim_heap heap;
    struct rn_sim_fenwick users;
    struct rn_sim_pages pages;
    struct rn_sim_session *sessions; /* o.sessions entries */
    double *item_cdf;                /* prior item popularity by rank */
    uint32_t *item_by_rank;
    uint64_t *item_mark; /* item -> last request that drew it as a candidate */
    uint32_t *cand;      /* K scratch: item indices */
    uint32_t *slate;     /* L scratch: positions in cand */
    double *props;       /* L scratch */
    uint8_t *consumed;   /* L scratch: 1 clicked, 2 clicked and paid */
    uint64_t seq, nreq, arrivals, started, waiting;
    FILE *out;
    char err[256];
    /* Figures for the summary. */
    uint64_t lines, n_pages, impressions, clicks, clickbait_clicks, pays;
    int64_t first_ts, last_ts;
};

static uint32_t rn_sim_page_acquire(struct rn_sim_pages *p)
{
    if (p->nfree == 0) {
        uint32_t old = p->cap, cap = old ? old * 2 : 256;
        p->items = rn_sim_xrealloc(p->items, (size_t)cap * p->slate, sizeof(*p->items));
        p->props = rn_sim_xrealloc(p->props, (size_t)cap * p->slate, sizeof(*p->props));
        p->model_version = rn_sim_xrealloc(p->model_version, cap, sizeof(*p->model_version));
        p->free = rn_sim_xrealloc(p->free, cap, sizeof(*p->free));
        for (uint32_t i = cap; i > old; i--)
            p->free[p->nfree++] = i - 1;
        p->cap = cap;
    }
    return p->free[--p->nfree];
}

static void rn_sim_page_release(struct rn_sim_pages *p, uint32_t slot)
{
    assert(p->nfree < p->cap);
    p->free[p->nfree++] = slot;
}

static void rn_sim_schedule(struct rn_sim *s, struct rn_sim_pending *e)
{
    e->seq = s->seq++;
    rn_sim_heap_push(&s->heap, e);
}

static void rn_sim_write_list(FILE *f, const uint32_t *items, uint32_t n)
{
    fputc('[', f);
    for (uint32_t i = 0; i < n; i++)
        fprintf(f, i ? ",\"i%u\"" : "\"i%u\"", items[i] + 1);
    fputc(']', f);
}

/* Writes e as one JSON line and shows it to the policy; e is borrowed. */
static void rn_sim_emit(struct rn_sim *s, const struct rn_sim_event *e)
{
    static const char *const names[] = {"request", "impression", "click", "pay"};
    FILE *f = s->out;
    assert(s->lines == 0 || e->ts >= s->last_ts);
    fprintf(f, "{\"type\":\"%s\",\"ts\":%lld,\"request\":\"r%llu\",\"user\":\"u%u\"",
            names[e->type], (long long)e->ts, (unsigned long long)e->request, e->user + 1);
    switch (e->type) {
    case RN_SIM_REQUEST:
        fputs(",\"candidates\":", f);
        rn_sim_write_list(f, e->list, e->n);
        fprintf(f, ",\"context\":{\"hour\":%d,\"page\":%u}}\n", (int)(e->ts / 3600000 % 24),
                e->page);
        break;
    case RN_SIM_IMPRESSION:
        fputs(",\"items\":", f);
        rn_sim_write_list(f, e->list, e->n);
        fputs(",\"propensities\":[", f);
        for (uint32_t i = 0; i < e->n; i++)
            fprintf(f, i ? ",%.6g" : "%.6g", e->props[i]);
        fprintf(f, "],\"model_version\":%llu}\n", (unsigned long long)e->model_version);
        break;
    case RN_SIM_CLICK:
        fprintf(f, ",\"item\":\"i%u\"}\n", e->item + 1);
        break;
    case RN_SIM_PAY:
        fprintf(f, ",\"item\":\"i%u\",\"amount\":%u.%02u}\n", e->item + 1, e->cents / 100,
                e->cents % 100);
        break;
    default:
        assert(0);
    }
    if (s->lines == 0) s->first_ts = e->ts;
    s->last_ts = e->ts;
    s->lines++;
    if (s->ptype->observe) s->ptype->observe(s->policy, e);
}

/* Fills s->cand with K distinct items drawn by prior popularity.  After many repeats (a tiny
 * catalogue, a steep skew) it walks to the next unused item so that the loop always ends. */
static void rn_sim_draw_candidates(struct rn_sim *s, uint64_t req)
{
    uint32_t k = s->o.candidates, n = s->o.items;
    uint64_t tries = 0;
    for (uint32_t j = 0; j < k;) {
        uint32_t item = s->item_by_rank[rn_sim_zipf_draw(s->item_cdf, n, &s->cand_rng)];
        if (s->item_mark[item] == req) {
            if (tries++ < 16ull * k) continue;
            while (s->item_mark[item] == req)
                item = (item + 1) % n;
        }
        s->item_mark[item] = req;
        s->cand[j++] = item;
    }
}

/* Checks what a policy returned: L distinct positions into the candidates, propensities in
 * [0, 1].  Returns 0 or -1 with a reason in s->err. */
static int rn_sim_check_slate(struct rn_sim *s)
{
    uint32_t k = s->o.candidates;
    for (uint32_t j = 0; j < s->o.slate; j++) {
        uint32_t c = s->slate[j];
        double p = s->props[j];
        if (c >= k) {
            snprintf(s->err, sizeof(s->err), "slot %u: candidate position %u out of range", j, c);
            return -1;
        }
        if (!(p >= 0.0 && p <= 1.0)) {
            snprintf(s->err, sizeof(s->err), "slot %u: propensity %g outside [0, 1]", j, p);
            return -1;
        }
        for (uint32_t m = 0; m < j; m++)
            if (s->slate[m] == c) {
                snprintf(s->err, sizeof(s->err), "slots %u and %u show the same candidate", m, j);
                return -1;
            }
    }
    return 0;
}

static void rn_sim_session_touch(struct rn_sim *s, uint32_t session, int64_t ts)
{
    if (ts > s->sessions[session].end_ts) s->sessions[session].end_ts = ts;
}

/* A page: writes the request, asks the policy, schedules the impression, draws the user's
 * reactions and schedules them, then the next page or the end of the session.  Returns 0, or
 * -1 when the policy failed (reason in s->err). */
static int rn_sim_page(struct rn_sim *s, const struct rn_sim_pending *pe)
{
    const struct rn_sim_opts *o = &s->o;
    const struct rn_sim_model *m = s->world.m;
    struct rn_rand *r = &s->user_rng;
    uint32_t user = pe->user, L = o->slate, K = o->candidates;
    uint64_t req = ++s->nreq;
    int64_t t = pe->ts;

    rn_sim_draw_candidates(s, req);
    struct rn_sim_event ev = {.type = RN_SIM_REQUEST,
                              .ts = t,
                              .request = req,
                              .user = user,
                              .page = pe->page,
                              .n = K,
                              .list = s->cand};
    rn_sim_emit(s, &ev);

    struct rn_sim_query q = {.request = req,
                             .user = user,
                             .page = pe->page,
                             .ts = t,
                             .slate = L,
                             .world = &s->world,
                             .log = s->out};
    s->err[0] = '\0';
    if (s->ptype->rank(s->policy, &q, s->cand, K, s->slate, s->props, s->err, sizeof(s->err)) < 0 ||
        rn_sim_check_slate(s) < 0) {
        if (!s->err[0]) snprintf(s->err, sizeof(s->err), "rank failed");
        return -1;
    }

    uint32_t slot = rn_sim_page_acquire(&s->pages);
    uint32_t *shown = s->pages.items + (size_t)slot * L;
    double *props = s->pages.props + (size_t)slot * L;
    for (uint32_t j = 0; j < L; j++) {
        shown[j] = s->cand[s->slate[j]];
        props[j] = s->props[j];
    }
    s->pages.model_version[slot] = s->ptype->model_version ? s->ptype->model_version(s->policy) : 0;
    int64_t t_imp = t + 20 + (int64_t)rn_rand_below(r, 101);
    struct rn_sim_pending imp = {
        .ts = t_imp, .request = req, .user = user, .page = slot, .kind = RN_SIM_K_IMPRESSION};
    rn_sim_schedule(s, &imp);
    rn_sim_session_touch(s, pe->session, t_imp);

    /* The user browses top-down: each slot is examined, clicked and paid independently. */
    uint32_t clicks = 0, pays = 0;
    double sat = 0;
    int64_t browsed = t_imp + 1500 * (int64_t)L;
    for (uint32_t j = 0; j < L; j++) {
        uint32_t item = shown[j];
        double u_exam = rn_rand_uniform(r), u_click = rn_rand_uniform(r);
        s->consumed[j] = 0;
        if (u_exam >= s->world.exam[j] || u_click >= rn_sim_click_prob(&s->world, user, item))
            continue;
        s->consumed[j] = 1;
        clicks++;
        s->clicks++;
        if (s->world.clickbait[item]) {
            s->clickbait_clicks++;
            sat += m->sat_clickbait;
        } else {
            sat += m->sat_click;
        }
        int64_t t_click =
            t_imp + 800 * (int64_t)(j + 1) + (int64_t)fmin(rn_rand_exp(r, 1000), 20000);
        struct rn_sim_pending c = {
            .ts = t_click, .request = req, .user = user, .item = item, .kind = RN_SIM_K_CLICK};
        rn_sim_schedule(s, &c);
        rn_sim_session_touch(s, pe->session, t_click);
        if (t_click > browsed) browsed = t_click;
        if (rn_rand_uniform(r) < rn_sim_pay_prob(&s->world, user, item)) {
            pays++;
            s->pays++;
            sat += m->sat_pay;
            int64_t t_pay = t_click + 3000 + (int64_t)fmin(rn_rand_exp(r, 20000), 297000);
            struct rn_sim_pending p = {.ts = t_pay,
                                       .request = req,
                                       .user = user,
                                       .item = item,
                                       .cents = s->world.price[item],
                                       .kind = RN_SIM_K_PAY};
            rn_sim_schedule(s, &p);
            rn_sim_session_touch(s, pe->session, t_pay);
            s->consumed[j]++;
        }
    }
    /* Interests move towards what was consumed, in slot order: a step per click and per pay. */
    for (uint32_t j = 0; j < L; j++)
        for (uint8_t n = 0; n < s->consumed[j]; n++)
            rn_sim_drift(&s->world, user, shown[j], o->drift);

    struct rn_sim_session *sess = &s->sessions[pe->session];
    sess->ret += o->w_click * clicks + o->w_pay * pays;
    sess->pages++;
    s->n_pages++;

    double p_next = rn_sim_sigmoid(m->next_bias + m->next_sat * sat);
    if (p_next > m->next_max) p_next = m->next_max;
    if (pe->page + 1 < o->max_pages && rn_rand_uniform(r) < p_next) {
        struct rn_sim_pending next = {.ts = browsed + 2000 +
                                            (int64_t)fmin(rn_rand_exp(r, 4000), 58000),
                                      .user = user,
                                      .session = pe->session,
                                      .page = pe->page + 1,
                                      .kind = RN_SIM_K_REQUEST};
        rn_sim_schedule(s, &next);
        rn_sim_session_touch(s, pe->session, next.ts);
    } else {
        /* The session is over once its last event (maybe a pay) has happened. */
        struct rn_sim_pending ready = {.ts = sess->end_ts + (int64_t)o->min_gap_s * 1000,
                                       .user = user,
                                       .kind = RN_SIM_K_USER_READY};
        rn_sim_schedule(s, &ready);
    }
    return 0;
}

/* Gives a session that arrives at ts to a free user drawn by activity. */
static void rn_sim_start_session(struct rn_sim *s, int64_t ts)
{
    assert(s->users.total > 0 && s->started < s->o.sessions);
    uint32_t user = rn_sim_fenwick_find(&s->users, rn_rand_below(&s->arrival, s->users.total));
    rn_sim_fenwick_set_free(&s->users, user, 0);
    uint32_t session = (uint32_t)s->started++;
    s->sessions[session].end_ts = ts;
    struct rn_sim_pending e = {
        .ts = ts, .user = user, .session = session, .page = 0, .kind = RN_SIM_K_REQUEST};
    rn_sim_schedule(s, &e);
}

/* Runs the simulation to the end: every session started, every event written. */
static int rn_sim_run(struct rn_sim *s)
{
    const struct rn_sim_opts *o = &s->o;
    double clock = 0, mean_gap_ms = 1000.0 / o->rate;
    if (o->sessions > 0) {
        struct rn_sim_pending a = {.ts = o->start_ts, .kind = RN_SIM_K_ARRIVAL};
        rn_sim_schedule(s, &a);
    }
    while (s->heap.n) {
        struct rn_sim_pending pe;
        rn_sim_heap_pop(&s->heap, &pe);
        switch (pe.kind) {
        case RN_SIM_K_ARRIVAL:
            s->arrivals++;
            if (s->users.total > 0)
                rn_sim_start_session(s, pe.ts);
            else
                s->waiting++;
            if (s->arrivals < o->sessions) {
                clock += rn_rand_exp(&s->arrival, mean_gap_ms);
                struct rn_sim_pending a = {.ts = o->start_ts + (int64_t)clock,
                                           .kind = RN_SIM_K_ARRIVAL};
                if (a.ts < pe.ts) a.ts = pe.ts;
                rn_sim_schedule(s, &a);
            }
            break;
        case RN_SIM_K_USER_READY:
            rn_sim_fenwick_set_free(&s->users, pe.user, 1);
            if (s->waiting) {
                s->waiting--;
                rn_sim_start_session(s, pe.ts);
            }
            break;
        case RN_SIM_K_REQUEST:
            if (rn_sim_page(s, &pe) < 0) {
                fprintf(stderr, "sim: policy '%s' failed on request r%llu: %s\n", o->policy,
                        (unsigned long long)s->nreq, s->err);
                return -1;
            }
            break;
        case RN_SIM_K_IMPRESSION: {
            uint32_t L = o->slate;
            struct rn_sim_event ev = {.type = RN_SIM_IMPRESSION,
                                      .ts = pe.ts,
                                      .request = pe.request,
                                      .user = pe.user,
                                      .n = L,
                                      .list = s->pages.items + (size_t)pe.page * L,
                                      .props = s->pages.props + (size_t)pe.page * L,
                                      .model_version = s->pages.model_version[pe.page]};
            rn_sim_emit(s, &ev);
            s->impressions++;
            rn_sim_page_release(&s->pages, pe.page);
            break;
        }
        case RN_SIM_K_CLICK:
        case RN_SIM_K_PAY: {
            struct rn_sim_event ev = {.type = pe.kind,
                                      .ts = pe.ts,
                                      .request = pe.request,
                                      .user = pe.user,
                                      .item = pe.item,
                                      .cents = pe.cents};
            rn_sim_emit(s, &ev);
            break;
        }
        default:
            assert(0);
        }
    }
    assert(s->started == o->sessions && s->waiting == 0);
    return 0;
}

/* Writes the embedding table: "i<n>" and D noisy components per line.  Returns 0 or -1. */
static int rn_sim_write_embeddings(const struct rn_sim *s, const char *path)
{
    const struct rn_sim_world *w = &s->world;
    struct rn_rand r;
    rn_rand_seed(&r, s->o.seed, RN_SIM_S_EMBED);
    /* Written under a temporary name and renamed into place, so that a job
     * started as soon as the file exists never reads half a table. */
    size_t plen = strlen(path) + 16;
    char *tmp = malloc(plen);
    if (!tmp) return -1;
    snprintf(tmp, plen, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "sim: cannot open %s: %s\n", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    for (uint32_t i = 0; i < w->n_items; i++) {
        fprintf(f, "i%u", i + 1);
        for (uint32_t d = 0; d < w->dim; d++) {
            double v =
                w->item_vec[(size_t)i * w->dim + d] + s->o.embedding_noise * rn_sim_gauss(&r);
            if (v == 0.0) v = 0.0; /* never "-0.00000" */
            fprintf(f, " %.5f", v);
        }
        fputc('\n', f);
    }
    int bad = fflush(f) != 0 || ferror(f);
    if (fclose(f) != 0) bad = 1;
    if (bad || rename(tmp, path) != 0) {
        fprintf(stderr, "sim: write to %s failed: %s\n", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

/* Writes s as a JSON string (a policy's argument may hold any byte). */
static void rn_sim_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* The summary figures: on stderr always, as JSON with --summary-json.  Returns 0 or -1. */
static int rn_sim_summary(const struct rn_sim *s)
{
    const struct rn_sim_opts *o = &s->o;
    uint64_t n = o->sessions;
    /* Welford's running mean and variance of the session returns. */
    double mean = 0, m2 = 0;
    for (uint64_t i = 0; i < n; i++) {
        double x = s->sessions[i].ret, d = x - mean;
        mean += d / (double)(i + 1);
        m2 += d * (x - mean);
    }
    double half = n > 1 ? 1.96 * sqrt(m2 / (double)(n - 1)) / sqrt((double)n) : NAN;
    double pps = n ? (double)s->n_pages / (double)n : 0.0;
    double cb_share = s->clicks ? (double)s->clickbait_clicks / (double)s->clicks : 0.0;
    double ctr = s->impressions ? (double)s->clicks / (double)(s->impressions * o->slate) : 0.0;

    fprintf(stderr,
            "sim: policy=%s seed=%llu sessions=%llu pages=%llu pages_per_session=%.3f "
            "clicks=%llu pays=%llu ctr=%.4f clickbait_click_share=%.4f lines=%llu\n",
            o->policy, (unsigned long long)o->seed, (unsigned long long)n,
            (unsigned long long)s->n_pages, pps, (unsigned long long)s->clicks,
            (unsigned long long)s->pays, ctr, cb_share, (unsigned long long)s->lines);
    if (n > 1)
        fprintf(stderr, "sim: mean_session_return=%.4f ci95=[%.4f, %.4f] (w_click=%g w_pay=%g)\n",
                mean, mean - half, mean + half, o->w_click, o->w_pay);
    else
        fprintf(stderr, "sim: mean_session_return=%.4f ci95=n/a (w_click=%g w_pay=%g)\n", mean,
                o->w_click, o->w_pay);

    if (o->returns) {
        FILE *r = fopen(o->returns, "wb");
        if (!r) {
            fprintf(stderr, "sim: cannot open %s: %s\n", o->returns, strerror(errno));
            return -1;
        }
        for (uint64_t i = 0; i < n; i++)
            fprintf(r, "%llu %u %.6g\n", (unsigned long long)i, s->sessions[i].pages,
                    s->sessions[i].ret);
        if (fflush(r) != 0 || ferror(r) || fclose(r) != 0) {
            fprintf(stderr, "sim: write to %s failed: %s\n", o->returns, strerror(errno));
            return -1;
        }
    }
    if (!o->summary_json) return 0;
    FILE *f = fopen(o->summary_json, "wb");
    if (!f) {
        fprintf(stderr, "sim: cannot open %s: %s\n", o->summary_json, strerror(errno));
        return -1;
    }
    fputs("{\"policy\":", f);
    rn_sim_json_str(f, o->policy);
    fprintf(f,
            ",\"seed\":%llu,\"sessions\":%llu,\"pages\":%llu,"
            "\"pages_per_session\":%.6g,\"requests\":%llu,\"impressions\":%llu,"
            "\"clicks\":%llu,\"pays\":%llu,\"clickbait_clicks\":%llu,"
            "\"clickbait_click_share\":%.6g,\"ctr\":%.6g,\"w_click\":%.6g,\"w_pay\":%.6g,"
            "\"mean_session_return\":%.6g,",
            (unsigned long long)o->seed, (unsigned long long)n, (unsigned long long)s->n_pages, pps,
            (unsigned long long)s->nreq, (unsigned long long)s->impressions,
            (unsigned long long)s->clicks, (unsigned long long)s->pays,
            (unsigned long long)s->clickbait_clicks, cb_share, ctr, o->w_click, o->w_pay, mean);
    if (n > 1)
        fprintf(f, "\"ci95_low\":%.6g,\"ci95_high\":%.6g,", mean - half, mean + half);
    else
        fputs("\"ci95_low\":null,\"ci95_high\":null,", f);
    fprintf(f, "\"lines\":%llu,\"first_ts\":%lld,\"last_ts\":%lld}\n", (unsigned long long)s->lines,
            (long long)s->first_ts, (long long)s->last_ts);
    if (fflush(f) != 0 || ferror(f) || fclose(f) != 0) {
        fprintf(stderr, "sim: write to %s failed: %s\n", o->summary_json, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct rn_sim s;
    int rc = rn_sim_parse_args(argc, argv, &s.o);
    if (rc) return rc > 0 ? 0 : 2;
    const struct rn_sim_opts *o = &s.o;
    if (o->sessions > UINT32_MAX) {
        fprintf(stderr, "sim: --sessions too large\n");
        return 2;
    }

    rn_sim_world_create(&s.world, o);
    rn_rand_seed(&s.arrival, o->seed, RN_SIM_S_ARRIVAL);
    rn_rand_seed(&s.cand_rng, o->seed, RN_SIM_S_CAND);
    rn_rand_seed(&s.user_rng, o->seed, RN_SIM_S_USER);

    /* Item popularity and user activity: Zipf ranks over random permutations, from their own
     * stream so that they do not depend on the policy. */
    struct rn_rand setup;
    rn_rand_seed(&setup, o->seed, RN_SIM_S_SETUP);
    s.item_cdf = rn_sim_zipf_cdf(o->items, o->item_zipf);
    /* An item's exposure rank follows a noisy mix of its quality and appeal: what is widely
     * seen in a catalogue is partly what people like. */
    {
        double *keys = rn_sim_xmalloc(o->items, sizeof(*keys));
        s.item_by_rank = rn_sim_xmalloc(o->items, sizeof(*s.item_by_rank));
        for (uint32_t i = 0; i < o->items; i++) {
            keys[i] = s.world.m->exposure_q * s.world.quality[i] +
                      s.world.m->exposure_a * s.world.appeal[i] + rn_sim_gauss(&setup);
            s.item_by_rank[i] = i;
        }
        rn_sim_sort_keys = keys;
        qsort(s.item_by_rank, o->items, sizeof(*s.item_by_rank), rn_sim_by_key_desc);
        free(keys);
    }
    s.item_mark = rn_sim_xmalloc(o->items, sizeof(*s.item_mark));
    uint32_t *user_by_rank = rn_sim_permutation(o->users, &setup);
    s.users.n = o->users;
    s.users.t = rn_sim_xmalloc((size_t)o->users + 1, sizeof(*s.users.t));
    s.users.w = rn_sim_xmalloc(o->users, sizeof(*s.users.w));
    s.users.free = rn_sim_xmalloc(o->users, 1);
    for (uint32_t k = 0; k < o->users; k++) {
        double w = ldexp(pow((double)(k + 1), -o->user_zipf), 32);
        s.users.w[user_by_rank[k]] = w < 1.0 ? 1 : (uint64_t)w;
    }
    for (uint32_t u = 0; u < o->users; u++)
        rn_sim_fenwick_set_free(&s.users, u, 1);
    free(user_by_rank);

    s.sessions = rn_sim_xmalloc(o->sessions, sizeof(*s.sessions));
    s.cand = rn_sim_xmalloc(o->candidates, sizeof(*s.cand));
    s.slate = rn_sim_xmalloc(o->slate, sizeof(*s.slate));
    s.props = rn_sim_xmalloc(o->slate, sizeof(*s.props));
    s.consumed = rn_sim_xmalloc(o->slate, sizeof(*s.consumed));
    s.pages.slate = o->slate;

    /* The embedding table depends only on the world as created, before any drift.  It is
     * written before the policy is made: the model policy reads it back. */
    if (o->embeddings && rn_sim_write_embeddings(&s, o->embeddings) < 0) return 1;

    s.ptype = rn_sim_policy_find(o->policy);
    assert(s.ptype);
    s.policy = s.ptype->create(o, s.err, sizeof(s.err));
    if (!s.policy) {
        fprintf(stderr, "sim: policy '%s': %s\n", o->policy, s.err);
        return 1;
    }

    static char outbuf[RN_SIM_OUTBUF];
    if (o->out) {
        s.out = fopen(o->out, "wb");
        if (!s.out) {
            fprintf(stderr, "sim: cannot open %s: %s\n", o->out, strerror(errno));
            return 1;
        }
    } else {
        s.out = stdout;
    }
    setvbuf(s.out, outbuf, _IOFBF, sizeof(outbuf));

    rc = rn_sim_run(&s);
    if (fflush(s.out) != 0 || ferror(s.out)) {
        fprintf(stderr, "sim: write to %s failed: %s\n", o->out ? o->out : "stdout",
                strerror(errno));
        rc = -1;
    }
    if (o->out && fclose(s.out) != 0 && rc == 0) {
        fprintf(stderr, "sim: write to %s failed: %s\n", o->out, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && rn_sim_summary(&s) < 0) rc = -1;

    s.ptype->destroy(s.policy);
    rn_sim_world_destroy(&s.world);
    free(s.item_cdf);
    free(s.item_by_rank);
    free(s.item_mark);
    free(s.users.t);
    free(s.users.w);
    free(s.users.free);
    free(s.sessions);
    free(s.cand);
    free(s.slate);
    free(s.props);
    free(s.consumed);
    free(s.heap.v);
    free(s.pages.items);
    free(s.pages.props);
    free(s.pages.model_version);
    free(s.pages.free);
    return rc == 0 ? 0 : 1;
}
