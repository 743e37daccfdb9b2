/*
 * rank_window.c — `rank_window`: one model call per window result, the top K
 * of the catalogue for the window's user (the streaming half of FlinkRL).
 *
 * Its input is a `window` record whose key is a user and one of whose
 * aggregates (`items`, default "items") is a collect list of item ids: the
 * user's latest items in that window, oldest first. For each such record:
 *
 *   state   φ(s) of those items, the learner's state features (rn_phi_compute
 *           with the same `history`, `half_life` and `state_network`); every
 *           item counts as seen at the window's last instant (end - 1), the
 *           time φ is computed for, so the decayed sum weighs each item 1;
 *   scores  the whole catalogue (every row of the embedding table) scored
 *           with the model store's current version (rn_model_advantages, one
 *           gemv for all items; any model kind: dueling Q or an actor);
 *   top K   the `k` best items by score (ties: the earlier row of the table),
 *           without the window's own items unless `exclude_seen: false`;
 *   output  one `recommendation` record {user, end, model_version, items,
 *           scores}, event time end - 1, keyed by user: the serving table
 *           as a stream, written by any sink.
 *
 * With the job's `serve:` section (and `serve: true`, the default), the
 * latest record of each user is also kept in memory, as the JSON the file
 * sink writes, in a table shared by every subtask and the serving threads
 * (16 stripes under short mutexes, held to swap or copy one row), and
 * GET /api/v1/recommendations/{user} answers from it. Like inference's table
 * it is not part of checkpoints: a restored job refills it as windows fire.
 *
 * Models come through the same feed as inference (rn_model_feed_*): a loader
 * thread follows the store or topic, and scoring holds the current version in
 * a hazard slot. Before a version is there, or when it does not fit the
 * embedding table and state features, a window gets no recommendation and is
 * counted in `without_model` (nothing is emitted with a made-up ranking).
 *
 * The catalogue's embedding rows are copied once at open into E (N x D), so
 * a window costs φ, one pass of gemvs over E and one pass over the N scores
 * keeping the best K in a heap.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <yajl/yajl_tree.h>

#include "rn_http.h"
#include "rn_model.h"
#include "rn_operator.h"

/* ---- the "recommendation" record -------------------------------------------------- */

struct rn_rw_rec {
    int64_t end, model_version;
    uint64_t user_id;
    struct rn_str user;
    uint32_t n; /* items; n doubles (scores) then n rn_str (ids) follow */
    uint32_t pad;
};

static const double *rn_rw_scores(const struct rn_rw_rec *r)
{
    return (const double *)(r + 1);
}

static const struct rn_str *rn_rw_items(const struct rn_rw_rec *r)
{
    return (const struct rn_str *)(rn_rw_scores(r) + r->n);
}

static void rn_rw_json(const struct rn_record *rec, struct rn_buf *out)
{
    const struct rn_rw_rec *r = rec->payload;
    RN_BUF_LIT(out, "{\"user\":");
    rn_json_str(out, rn_str_ptr(r, r->user), r->user.len);
    RN_BUF_LIT(out, ",\"end\":");
    rn_json_i64(out, r->end);
    RN_BUF_LIT(out, ",\"model_version\":");
    rn_json_i64(out, r->model_version);
    RN_BUF_LIT(out, ",\"items\":[");
    const struct rn_str *it = rn_rw_items(r);
    for (uint32_t i = 0; i < r->n; i++) {
        if (i) rn_buf_putc(out, ',');
        rn_json_str(out, rn_str_ptr(r, it[i]), it[i].len);
    }
    RN_BUF_LIT(out, "],\"scores\":[");
    const double *sc = rn_rw_scores(r);
    for (uint32_t i = 0; i < r->n; i++) {
        if (i) rn_buf_putc(out, ',');
        rn_json_f64(out, sc[i]);
    }
    RN_BUF_LIT(out, "]}");
}

static const char *const rn_rw_key_fields[] = {"user", NULL};

static uint64_t rn_rw_key_of(const struct rn_record *rec, int field)
{
    const struct rn_rw_rec *r = rec->payload;
    (void)field;
    return r->user_id;
}

static const struct rn_field rn_rw_fields[] = {
    {"user", RN_FIELD_STR, offsetof(struct rn_rw_rec, user), NULL, "User id."},
    {"end", RN_FIELD_I64, offsetof(struct rn_rw_rec, end), NULL, "The window's end, ms."},
    {"model_version", RN_FIELD_I64, offsetof(struct rn_rw_rec, model_version), NULL,
     "The model version that scored it."},
    {NULL, 0, 0, NULL, NULL},
};

static const struct rn_type rn_type_recommendation = {
    .name = "recommendation",
    .description = "a user's top-K items for one window, with the model version and scores",
    .write_json = rn_rw_json,
    .key_fields = rn_rw_key_fields,
    .key_of = rn_rw_key_of,
    .fields = rn_rw_fields,
};

static const struct rn_type *const rn_rw_types[] = {&rn_type_recommendation, NULL};

/* ---- the serving table ------------------------------------------------------------- */

#define RN_RW_STRIPES 16

struct rn_rw_row {
    uint64_t user_id;
    char *json; /* the latest recommendation, as the file sink writes it */
    size_t len;
    UT_hash_handle hh;
};

struct rn_rw_table {
    struct {
        pthread_mutex_t mu;
        struct rn_rw_row *rows;
    } stripe[RN_RW_STRIPES];
};

static struct rn_rw_table *rn_rw_table_create(void)
{
    struct rn_rw_table *t = rn_xcalloc(1, sizeof *t);
    for (int k = 0; k < RN_RW_STRIPES; k++)
        pthread_mutex_init(&t->stripe[k].mu, NULL);
    return t;
}

static void rn_rw_table_destroy(struct rn_rw_table *t)
{
    if (!t) return;
    for (int k = 0; k < RN_RW_STRIPES; k++) {
        struct rn_rw_row *r, *tmp;
        HASH_ITER(hh, t->stripe[k].rows, r, tmp)
        {
            HASH_DEL(t->stripe[k].rows, r);
            free(r->json);
            free(r);
        }
        pthread_mutex_destroy(&t->stripe[k].mu);
    }
    free(t);
}

/* Makes json (len bytes, copied) the user's row; any thread. */
static void rn_rw_table_put(struct rn_rw_table *t, uint64_t user, const char *json, size_t len)
{
    char *copy = rn_xmalloc(len);
    memcpy(copy, json, len);
    unsigned k = (unsigned)(user % RN_RW_STRIPES);
    pthread_mutex_lock(&t->stripe[k].mu);
    struct rn_rw_row *r;
    HASH_FIND(hh, t->stripe[k].rows, &user, sizeof user, r);
    if (!r) {
        r = rn_xcalloc(1, sizeof *r);
        r->user_id = user;
        HASH_ADD(hh, t->stripe[k].rows, user_id, sizeof r->user_id, r);
    }
    char *old = r->json;
    r->json = copy;
    r->len = len;
    pthread_mutex_unlock(&t->stripe[k].mu);
    free(old);
}

/* GET /api/v1/recommendations/{user}, on the serving threads. */
static void rn_rw_http(void *ud, const struct rn_http_request *req, struct rn_http_response *res)
{
    struct rn_rw_table *t = ud;
    static const char prefix[] = "/api/v1/recommendations/";
    res->content_type = "application/json";
    const char *user = req->path + sizeof prefix - 1;
    if (strncmp(req->path, prefix, sizeof prefix - 1) != 0 || !*user) {
        res->status = 404;
        RN_BUF_LIT(&res->body, "{\"error\":\"use GET /api/v1/recommendations/{user}\"}\n");
        return;
    }
    uint64_t uid = rn_hash64(user, strlen(user));
    unsigned k = (unsigned)(uid % RN_RW_STRIPES);
    pthread_mutex_lock(&t->stripe[k].mu);
    struct rn_rw_row *r;
    HASH_FIND(hh, t->stripe[k].rows, &uid, sizeof uid, r);
    if (r) {
        rn_buf_append(&res->body, r->json, r->len);
        rn_buf_putc(&res->body, '\n');
    }
    pthread_mutex_unlock(&t->stripe[k].mu);
    if (!r) {
        res->status = 404;
        RN_BUF_LIT(&res->body, "{\"error\":");
        struct rn_buf msg = {0};
        rn_buf_printf(&msg, "no recommendation for user '%s' yet", user);
        rn_json_str(&res->body, msg.data, msg.len);
        rn_buf_free(&msg);
        RN_BUF_LIT(&res->body, "}\n");
    }
}

/* ---- configuration ------------------------------------------------------------------ */

struct rn_rw_cfg {
    const char *model_store, *items;
    struct rn_model_topic_cfg mt;
    struct rn_phi_cfg feat;
    int64_t k, poll_interval;
    int exclude_seen, serve;
    /* shared by every subtask: made by the first open() that serves, freed by the last close() */
    pthread_mutex_t mu;
    int opened;
    struct rn_rw_table *table;
};

static const struct rn_config_key rn_rw_keys[] = {
    RN_PHI_CONFIG_KEYS(struct rn_rw_cfg, feat),
    {"model_store", RN_CT_STRING, NULL, NULL, offsetof(struct rn_rw_cfg, model_store),
     "Model store directory to follow (as inference's); it honours `runnel models pin` and "
     "`rollback`. This or `model_topic`.",
     NULL, 0, 0, 0},
    RN_MODEL_TOPIC_CONFIG_KEYS(struct rn_rw_cfg, mt),
    {"items", RN_CT_STRING, "items", NULL, offsetof(struct rn_rw_cfg, items),
     "The input's field holding the user's items: a `collect` aggregate of the window "
     "operator (a list of item ids, oldest first).",
     NULL, 0, 0, 0},
    {"k", RN_CT_INT, "10", "items", offsetof(struct rn_rw_cfg, k),
     "Items per recommendation: the top K of the catalogue by the model's score.", NULL, 0, 1,
     1000},
    {"exclude_seen", RN_CT_BOOL, "true", NULL, offsetof(struct rn_rw_cfg, exclude_seen),
     "Leave the window's own items out of the top K.", NULL, 0, 0, 0},
    {"serve", RN_CT_BOOL, "true", NULL, offsetof(struct rn_rw_cfg, serve),
     "When the job has a `serve:` section: keep each user's latest recommendation and answer "
     "GET /api/v1/recommendations/{user} from it (set false in a job whose inference "
     "operator serves that path).",
     NULL, 0, 0, 0},
    {"poll_interval", RN_CT_DURATION, "200ms", "ms", offsetof(struct rn_rw_cfg, poll_interval),
     "How often the model loader looks for a new version.", NULL, 0, 1, 3600000},
    RN_CONFIG_END,
};

static int rn_rw_init(void *ctx, const struct rn_cfg_node *node, char *errbuf, size_t errlen)
{
    struct rn_rw_cfg *c = ctx;
    int rc = rn_phi_cfg_init(&c->feat, errbuf, errlen);
    if (rc) return rc;
    if (c->feat.n_ctx) {
        rn_cfg_errf(errbuf, errlen, rn_cfg_get(node, "context_fields"),
                    "rank_window has no request context: leave out context_fields");
        return RN_EINVAL;
    }
    rc = rn_model_topic_cfg_check(&c->mt, c->model_store, 1, node, errbuf, errlen);
    if (!rc) pthread_mutex_init(&c->mu, NULL);
    return rc;
}

static void rn_rw_fini(void *ctx)
{
    struct rn_rw_cfg *c = ctx;
    pthread_mutex_destroy(&c->mu);
}

/* ---- the instance ------------------------------------------------------------------ */

struct rn_rw_scored {
    float score;
    uint32_t row;
};

struct rn_rw {
    struct rn_embed *emb;
    struct rn_phi_spec spec;
    uint32_t phi_dim, dim;
    struct rn_model_feed *feed;
    int slot;
    size_t n_items;
    uint64_t *ids; /* the catalogue: row i of the table */
    float *E, *scores, *phi;
    void *phi_scratch;
    struct rn_rw_scored *order; /* k entries: the heap of the best so far */
    struct rn_hist *hist;
    uint32_t n_hist, hist_cap;
    int type_id; /* the input type whose fields f_key and f_items are */
    struct rn_field f_key, f_items;
    struct rn_buf text, out, json;
    struct rn_rw_table *table; /* the shared serving table, when serving */
    int misfit_reported;
    int64_t shown_version; /* the model_version gauge as last set (subtask 0) */
};

enum { M_WINDOWS, M_RECOMMENDED, M_NO_MODEL, M_VERSION };
static const char *const rn_rw_metrics[] = {"windows", "recommendations", "without_model",
                                            "model_version", NULL};

static int rn_rw_open(struct rn_op *op)
{
    struct rn_rw_cfg *c = (struct rn_rw_cfg *)rn_op_ctx(op);
    struct rn_rw *w = rn_xcalloc(1, sizeof *w);
    w->slot = -1;
    w->type_id = -1;
    rn_op_set_local(op, w);
    char err[512];
    if (rn_phi_cfg_open(&c->feat, &w->emb, &w->spec, err, sizeof err)) {
        rn_op_errorf(op, "%s", err);
        return RN_EIO;
    }
    w->phi_dim = rn_phi_dim(&w->spec, w->emb);
    w->dim = rn_embed_dim(w->emb);
    if (c->mt.topic)
        w->feed = rn_model_feed_acquire_topic(c->mt.brokers, c->mt.topic,
                                              c->mt.key ? c->mt.key : rn_op_job_name(op),
                                              c->poll_interval, err, sizeof err);
    else
        w->feed = rn_model_feed_acquire(c->model_store, c->poll_interval, err, sizeof err);
    if (!w->feed) {
        rn_op_errorf(op, "%s", err);
        return RN_EIO;
    }
    rn_model_feed_poll(w->feed); /* the newest version from the first window */
    if ((w->slot = rn_model_feed_slot(w->feed)) < 0) {
        rn_op_errorf(op, "too many readers of model %s '%s'", c->model_store ? "store" : "topic",
                     c->model_store ? c->model_store : c->mt.topic);
        return RN_EFULL;
    }
    w->n_items = rn_embed_count(w->emb);
    w->ids = rn_xmalloc((w->n_items ? w->n_items : 1) * sizeof *w->ids);
    for (size_t i = 0; i < w->n_items; i++)
        w->ids[i] = rn_embed_id(w->emb, i);
    w->E = rn_xmalloc((w->n_items ? w->n_items : 1) * w->dim * sizeof *w->E);
    rn_embed_rows(w->emb, w->ids, (uint32_t)w->n_items, w->E);
    w->scores = rn_xmalloc((w->n_items ? w->n_items : 1) * sizeof *w->scores);
    w->order = rn_xmalloc((size_t)c->k * sizeof *w->order);
    w->phi = rn_xmalloc(w->phi_dim * sizeof *w->phi);
    w->phi_scratch = rn_xmalloc(rn_phi_scratch_size(&w->spec, w->emb) + 1);
    if (c->serve && rn_op_serving(op)) {
        pthread_mutex_lock(&c->mu);
        if (!c->table) c->table = rn_rw_table_create();
        c->opened++;
        w->table = c->table;
        pthread_mutex_unlock(&c->mu);
        int rc = rn_op_route(op, "GET", "/api/v1/recommendations", rn_rw_http, w->table);
        if (rc) return rc;
    }
    /* Subtask 0 keeps the model_version gauge, also while no window comes. */
    if (rn_op_subtask(op) == 0) return rn_op_timer_after(op, c->poll_interval);
    return 0;
}

static int rn_rw_on_processing_time(struct rn_op *op, int64_t now_ms, struct rn_emitter *out)
{
    const struct rn_rw_cfg *c = rn_op_ctx(op);
    struct rn_rw *w = rn_op_local(op);
    (void)now_ms;
    (void)out;
    struct rn_model_feed_stats st;
    rn_model_feed_stats(w->feed, &st);
    if (st.version != w->shown_version) {
        rn_op_metric_add(op, M_VERSION, (uint64_t)(st.version - w->shown_version));
        w->shown_version = st.version;
    }
    return rn_op_timer_after(op, c->poll_interval);
}

static void rn_rw_close(struct rn_op *op)
{
    struct rn_rw_cfg *c = (struct rn_rw_cfg *)rn_op_ctx(op);
    struct rn_rw *w = rn_op_local(op);
    if (!w) return;
    if (w->table) {
        pthread_mutex_lock(&c->mu);
        if (--c->opened == 0) {
            rn_rw_table_destroy(c->table);
            c->table = NULL;
        }
        pthread_mutex_unlock(&c->mu);
    }
    if (w->feed) {
        if (w->slot >= 0) rn_model_feed_slot_free(w->feed, w->slot);
        rn_model_feed_release(w->feed);
    }
    rn_phi_spec_close(&w->spec);
    rn_embed_release(w->emb);
    free(w->ids);
    free(w->E);
    free(w->scores);
    free(w->order);
    free(w->phi);
    free(w->phi_scratch);
    free(w->hist);
    rn_buf_free(&w->text);
    rn_buf_free(&w->out);
    rn_buf_free(&w->json);
    free(w);
    rn_op_set_local(op, NULL);
}

/* Looks the key and the items field up for the type of r (once per type). */
static int rn_rw_resolve(struct rn_op *op, struct rn_rw *w, const struct rn_record *r)
{
    const struct rn_rw_cfg *c = rn_op_ctx(op);
    const struct rn_type *t = rn_types_get(rn_op_types(op), r->type);
    if (!t || rn_record_field(t, r, "key", &w->f_key) || w->f_key.kind != RN_FIELD_STR) {
        rn_op_errorf(op, "input type '%s' has no text field 'key' (the user)", t ? t->name : "?");
        return RN_EINVAL;
    }
    if (rn_record_field(t, r, c->items, &w->f_items) || w->f_items.kind != RN_FIELD_STR) {
        rn_op_errorf(op,
                     "input type '%s' has no list field '%s' (items: a collect aggregate of "
                     "the window operator)",
                     t->name, c->items);
        return RN_EINVAL;
    }
    w->type_id = t->field_lookup ? -1 : r->type; /* a window result: look up per record */
    return 0;
}

/* Reads the JSON list of item ids into w->hist (all at time ts); 0 or RN_EINVAL. */
static int rn_rw_parse(struct rn_op *op, struct rn_rw *w, struct rn_str list, const void *p,
                       int64_t ts)
{
    w->text.len = 0;
    rn_buf_append(&w->text, rn_str_ptr(p, list), list.len);
    rn_buf_putc(&w->text, 0);
    char err[128];
    yajl_val v = yajl_tree_parse(w->text.data, err, sizeof err);
    if (!v || !YAJL_IS_ARRAY(v)) {
        rn_op_errorf(op, "field '%s' is not a list of item ids: %.60s",
                     ((const struct rn_rw_cfg *)rn_op_ctx(op))->items, w->text.data);
        yajl_tree_free(v);
        return RN_EINVAL;
    }
    size_t n = v->u.array.len;
    if (n > w->hist_cap) {
        w->hist_cap = (uint32_t)n;
        w->hist = rn_xrealloc(w->hist, n * sizeof *w->hist);
    }
    w->n_hist = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = YAJL_GET_STRING(v->u.array.values[i]);
        if (!s) {
            rn_op_errorf(op, "field '%s': element %zu is not an item id (a string)",
                         ((const struct rn_rw_cfg *)rn_op_ctx(op))->items, i);
            yajl_tree_free(v);
            return RN_EINVAL;
        }
        w->hist[w->n_hist++] = (struct rn_hist){rn_hash64(s, strlen(s)), ts};
    }
    yajl_tree_free(v);
    return 0;
}

/* Ranking order: the higher score first, then the earlier row. */
static int rn_rw_before(const struct rn_rw_scored *x, const struct rn_rw_scored *y)
{
    return x->score != y->score ? x->score > y->score : x->row < y->row;
}

static int rn_rw_cmp(const void *a, const void *b)
{
    return rn_rw_before(a, b) ? -1 : rn_rw_before(b, a);
}

/* Restores the heap h[0, n) below i, whose root is the last in ranking order. */
static void rn_rw_sift(struct rn_rw_scored *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && rn_rw_before(&h[m], &h[l])) m = l;
        if (r < n && rn_rw_before(&h[m], &h[r])) m = r;
        if (m == i) return;
        struct rn_rw_scored t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static int rn_rw_seen(const struct rn_rw *w, uint64_t id)
{
    for (uint32_t i = 0; i < w->n_hist; i++)
        if (w->hist[i].item_id == id) return 1;
    return 0;
}

/* Scores the catalogue for one window and emits its top K. */
static int rn_rw_one(struct rn_op *op, struct rn_rw *w, const struct rn_record *r,
                     struct rn_emitter *out)
{
    const struct rn_rw_cfg *c = rn_op_ctx(op);
    int rc;
    if (w->type_id != (int)r->type && (rc = rn_rw_resolve(op, w, r))) return rc;
    struct rn_field fend;
    const struct rn_type *t = rn_types_get(rn_op_types(op), r->type);
    if (rn_record_field(t, r, "end", &fend)) {
        rn_op_errorf(op, "input type '%s' has no field 'end' (the window's end)", t->name);
        return RN_EINVAL;
    }
    int64_t end = rn_field_i64(&fend, r->payload);
    struct rn_str user = rn_field_str(&w->f_key, r->payload);
    if ((rc = rn_rw_parse(op, w, rn_field_str(&w->f_items, r->payload), r->payload, end - 1)))
        return rc;
    rn_op_metric_add(op, M_WINDOWS, 1);
    rn_phi_compute(&w->spec, w->emb, w->hist, w->n_hist, end - 1, w->phi, w->phi_scratch);
    int64_t version = 0;
    const struct rn_model *m = rn_model_feed_enter(w->feed, w->slot, &version);
    if (!m || m->shape.dim != w->dim || m->shape.phi != w->phi_dim) {
        if (m && !w->misfit_reported) {
            w->misfit_reported = 1;
            fprintf(stderr,
                    "runnel: rank_window: model version %" PRId64 " does not fit the embedding "
                    "table and state features (dimension %u, state features %u; want %u and "
                    "%u): windows get no recommendation\n",
                    version, m->shape.dim, m->shape.phi, w->dim, w->phi_dim);
        }
        rn_model_feed_exit(w->feed, w->slot);
        rn_op_metric_add(op, M_NO_MODEL, 1);
        return 0;
    }
    rn_model_advantages(m, w->phi, w->E, w->ids, (uint32_t)w->n_items, w->scores);
    rn_model_feed_exit(w->feed, w->slot);
    /* The top k in one pass: a heap of the best k so far whose root is the
     * worst of them (O(N log k), not a sort of the catalogue); an item is
     * checked against the window's only when it would enter. */
    uint32_t k = 0, want = (uint32_t)c->k;
    struct rn_rw_scored *top = w->order;
    for (size_t i = 0; i < w->n_items; i++) {
        struct rn_rw_scored x = {w->scores[i], (uint32_t)i};
        if (k == want && !rn_rw_before(&x, &top[0])) continue;
        if (c->exclude_seen && rn_rw_seen(w, w->ids[i])) continue;
        if (k < want) {
            top[k] = x;
            for (uint32_t j = k++; j && rn_rw_before(&top[(j - 1) / 2], &top[j]); j = (j - 1) / 2) {
                struct rn_rw_scored t = top[j];
                top[j] = top[(j - 1) / 2];
                top[(j - 1) / 2] = t;
            }
        } else {
            top[0] = x;
            rn_rw_sift(top, k, 0);
        }
    }
    qsort(top, k, sizeof *top, rn_rw_cmp);
    /* the record: header, scores, item strs, then the texts */
    uint32_t pick[1000];
    for (uint32_t j = 0; j < k; j++)
        pick[j] = top[j].row;
    struct rn_buf *b = &w->out;
    size_t fixed = sizeof(struct rn_rw_rec) + k * (sizeof(double) + sizeof(struct rn_str));
    b->len = 0;
    rn_buf_reserve(b, fixed);
    memset(b->data, 0, fixed);
    b->len = fixed;
    struct rn_rw_rec h = {end, version, r->key, {(uint32_t)b->len, user.len}, k, 0};
    rn_buf_append(b, rn_str_ptr(r->payload, user), user.len);
    for (uint32_t j = 0; j < k; j++) {
        const char *name = rn_embed_name(w->emb, pick[j]);
        struct rn_str s = {(uint32_t)b->len, (uint32_t)strlen(name)};
        rn_buf_append(b, name, s.len);
        double sc = w->scores[pick[j]];
        memcpy(b->data + sizeof h + j * sizeof sc, &sc, sizeof sc);
        memcpy(b->data + sizeof h + k * sizeof sc + j * sizeof s, &s, sizeof s);
    }
    memcpy(b->data, &h, sizeof h);
    void *rec = rn_emit(out, 0, end - 1, r->key, (uint32_t)b->len);
    memcpy(rec, b->data, b->len);
    if (w->table) {
        struct rn_record as = {end - 1, r->key, 0, 0, (uint32_t)b->len, b->data};
        w->json.len = 0;
        rn_rw_json(&as, &w->json);
        rn_rw_table_put(w->table, r->key, w->json.data, w->json.len);
    }
    rn_op_metric_add(op, M_RECOMMENDED, 1);
    return 0;
}

static int rn_rw_process(struct rn_op *op, const struct rn_batch *in, struct rn_emitter *out)
{
    struct rn_rw *w = rn_op_local(op);
    for (uint32_t i = 0; i < in->n; i++) {
        int rc = rn_rw_one(op, w, &in->recs[i], out);
        if (rc) return rc;
    }
    return 0;
}

static const struct rn_port_decl rn_rw_out[] = {
    {NULL, "recommendation",
     "One record per window that had a model version: the user's top K, the version and the "
     "scores."},
};

const struct rn_op_type rn_op_rank_window = {
    RN_OP_TYPE_HEAD,
    .name = "rank_window",
    .description = "Per window result (a user and a collect list of items): the state from "
                   "those items, the catalogue scored with the current model version, the top "
                   "K emitted (FlinkRL's model call per window, in-process).",
    .kind = RN_KIND_OPERATOR,
    .flags = RN_OP_KEYED,
    .config = rn_rw_keys,
    .ctx_size = sizeof(struct rn_rw_cfg),
    .in_type = "window",
    .outputs = rn_rw_out,
    .n_outputs = 1,
    .metrics = rn_rw_metrics,
    .default_key = "key",
    .types = rn_rw_types,
    .init = rn_rw_init,
    .fini = rn_rw_fini,
    .open = rn_rw_open,
    .process = rn_rw_process,
    .close = rn_rw_close,
    .on_processing_time = rn_rw_on_processing_time,
};
