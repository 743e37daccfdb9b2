/*
 * rn_pretrain.c — `runnel pretrain`: trains the state network offline as a
 * next-click model and writes it as safetensors.
 *
 * Input is what the joiner writes for offline training (the partitioned_file
 * sink: DIR/YYYY-MM-DD/HH/part-*.jsonl, one labelled list per line with
 * "user", "ts" and "items": [{"item", "click", "pay", ...}]) and the item
 * embedding table ("id v1 ... vD" per line). Lines are parsed with yajl's
 * tree API.
 *
 * Per user, in time order, the click history is rebuilt: an item joins it
 * when its list had a click or pay on it. Every list with a click becomes an
 * example whose state is the history before that list:
 *   H         the last k clicked items' embeddings
 *   ctx       [sin 2πh/24, cos 2πh/24, filled] (h: hour of the list, UTC;
 *             filled: the fraction of the k history slots filled)
 *   longterm  the time-decayed mean of all earlier clicks' embeddings
 *             (half-life 24 h)
 * (built by rn__sn_inputs and the long-term sums of rn_statenet_int.h, the
 * code rn_phi_compute builds the same inputs with online), and whose target
 * is the clicked items among the shown ones: softmax cross-entropy of the
 * scores φ(s)ᵀ P e_i over the shown items, with the projection P (S x D)
 * learned jointly and written next to the network as "proj.weight". The last
 * 10 % of examples by time are held out; each epoch prints the training loss
 * and the held-out hit-rate@1 (the top-scored item was clicked) next to what
 * a uniformly random pick would get.
 *
 * Training is Adam on mini-batches of 16 in an order shuffled from --seed,
 * single-threaded BLAS, so the same inputs and seed give the same bytes.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cblas.h>
#include <yajl/yajl_tree.h>

#include "rn_fs_int.h"
#include "rn_model.h"
#include "rn_pretrain.h"
#include "rn_rand.h"
#include "rn_statenet_int.h"

#define RN_PT_BATCH 16

static int rn__pt_usage(FILE *out)
{
    fprintf(out,
            "usage: runnel pretrain --data DIR --embeddings FILE --out FILE.safetensors\n"
            "                       [--history 10] [--filters 16] [--out-dim 32] [--epochs 3]\n"
            "                       [--lr 0.01] [--seed 1]\n"
            "       runnel pretrain --check FILE.safetensors\n"
            "\n"
            "Trains the state network (docs/learning.md) as a next-click model on the\n"
            "joiner's training output (JSON lines under DIR, e.g. the partitioned_file\n"
            "sink's directory) and the item-embedding table, and writes it atomically.\n"
            "Prints one line per epoch: loss, held-out hit-rate@1 (last 10%% by time) and\n"
            "the hit-rate of a uniformly random pick. --check loads a file and prints its\n"
            "shape.\n");
    return out == stdout ? 0 : 2;
}

/* The embedding table is rn_model.h's (rn_embed_load), the one every
 * operator reads. */

/* ---- the training lists ---------------------------------------------------------------- */

/* One labelled list: the shown items that have an embedding. */
struct rn__pt_list {
    uint64_t user;
    int64_t ts;
    size_t seq;  /* input order, for stable sorting */
    uint32_t m;  /* items */
    uint32_t at; /* first item in the item arrays */
    uint32_t n_clicked;
};

struct rn__pt_data {
    struct rn__pt_list *lists;
    size_t n, cap;
    const float **items; /* embeddings of the shown items, all lists */
    uint8_t *clicked;
    size_t n_items, cap_items;
    size_t lines, missing_items;
};

static void rn__pt_data_free(struct rn__pt_data *d)
{
    free(d->lists);
    free(d->items);
    free(d->clicked);
}

static int rn__pt_cmp_path(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects the visible *.jsonl files under dir, recursively. */
static int rn__pt_walk(const char *dir, char ***paths, size_t *n, size_t *cap, char *errbuf,
                       size_t errlen)
{
    DIR *dp = opendir(dir);
    if (!dp) {
        rn_errf(errbuf, errlen, "%s: cannot open directory: %s", dir, strerror(errno));
        return RN_EIO;
    }
    int rc = 0;
    for (struct dirent *de; rc == 0 && (de = readdir(dp));) {
        if (de->d_name[0] == '.') continue; /* ., .., in-progress and pending parts */
        size_t pl = strlen(dir) + strlen(de->d_name) + 2;
        char *p = rn_xmalloc(pl);
        snprintf(p, pl, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st) != 0) {
            rn_errf(errbuf, errlen, "%s: %s", p, strerror(errno));
            rc = RN_EIO;
        } else if (S_ISDIR(st.st_mode)) {
            rc = rn__pt_walk(p, paths, n, cap, errbuf, errlen);
        } else if (S_ISREG(st.st_mode) && pl > 8 && strcmp(p + pl - 7, ".jsonl") == 0) {
            if (*n == *cap) {
                *cap = *cap ? 2 * *cap : 64;
                *paths = rn_xrealloc(*paths, *cap * sizeof **paths);
            }
            (*paths)[(*n)++] = p;
            p = NULL;
        }
        free(p);
    }
    closedir(dp);
    return rc;
}

static yajl_val rn__pt_get(yajl_val v, const char *key, yajl_type t)
{
    const char *path[] = {key, NULL};
    return yajl_tree_get(v, path, t);
}

/* Parses one line into d; a message naming file:line on failure. */
static int rn__pt_line(struct rn__pt_data *d, const struct rn_embed *emb, char *line,
                       const char *file, size_t lineno, char *errbuf, size_t errlen)
{
    char jerr[256] = "";
    yajl_val v = yajl_tree_parse(line, jerr, sizeof jerr);
    if (!v) {
        jerr[strcspn(jerr, "\n")] = 0;
        rn_errf(errbuf, errlen, "%s:%zu: bad JSON: %s", file, lineno, jerr);
        return RN_EINVAL;
    }
    int rc = 0;
    yajl_val user = rn__pt_get(v, "user", yajl_t_string);
    yajl_val ts = rn__pt_get(v, "ts", yajl_t_number);
    yajl_val items = rn__pt_get(v, "items", yajl_t_array);
    if (!user || !ts || !YAJL_IS_INTEGER(ts) || !items) {
        rn_errf(errbuf, errlen,
                "%s:%zu: expected a training list with \"user\" (string), \"ts\" "
                "(integer) and \"items\" (array)",
                file, lineno);
        rc = RN_EINVAL;
        goto done;
    }
    const char *uname = YAJL_GET_STRING(user);
    struct rn__pt_list l = {.user = rn_hash64(uname ? uname : "", uname ? strlen(uname) : 0),
                            .ts = YAJL_GET_INTEGER(ts),
                            .seq = d->n,
                            .at = (uint32_t)d->n_items};
    for (size_t i = 0; i < YAJL_GET_ARRAY(items)->len; i++) {
        yajl_val it = YAJL_GET_ARRAY(items)->values[i];
        yajl_val id = rn__pt_get(it, "item", yajl_t_string);
        if (!id) {
            rn_errf(errbuf, errlen, "%s:%zu: items[%zu] has no \"item\" string", file, lineno, i);
            rc = RN_EINVAL;
            goto done;
        }
        yajl_val ck = rn__pt_get(it, "click", yajl_t_number);
        yajl_val py = rn__pt_get(it, "pay", yajl_t_number);
        int clicked = (ck && YAJL_GET_DOUBLE(ck) > 0) || (py && YAJL_GET_DOUBLE(py) > 0);
        const char *iname = YAJL_GET_STRING(id);
        const float *e = iname ? rn_embed_get(emb, rn_hash64(iname, strlen(iname))) : NULL;
        if (!e) {
            d->missing_items++;
            continue;
        }
        if (d->n_items == d->cap_items) {
            d->cap_items = d->cap_items ? 2 * d->cap_items : 4096;
            d->items = rn_xrealloc(d->items, d->cap_items * sizeof *d->items);
            d->clicked = rn_xrealloc(d->clicked, d->cap_items);
        }
        d->items[d->n_items] = e;
        d->clicked[d->n_items++] = (uint8_t)clicked;
        l.m++;
        l.n_clicked += (uint32_t)clicked;
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 1024;
        d->lists = rn_xrealloc(d->lists, d->cap * sizeof *d->lists);
    }
    d->lists[d->n++] = l;
done:
    yajl_tree_free(v);
    return rc;
}

static int rn__pt_read(const char *dir, const struct rn_embed *emb, struct rn__pt_data *d,
                       char *errbuf, size_t errlen)
{
    char **paths = NULL;
    size_t n = 0, cap = 0;
    int rc = rn__pt_walk(dir, &paths, &n, &cap, errbuf, errlen);
    if (rc) goto done;
    if (!n) {
        rn_errf(errbuf, errlen, "%s: no .jsonl files", dir);
        rc = RN_ENOENT;
        goto done;
    }
    qsort(paths, n, sizeof *paths, rn__pt_cmp_path);
    for (size_t i = 0; i < n && !rc; i++) {
        size_t len = 0;
        char *text = rn_fs_read_all(paths[i], &len);
        if (!text) {
            rn_errf(errbuf, errlen, "%s: cannot read: %s", paths[i], strerror(errno));
            rc = RN_EIO;
            break;
        }
        size_t lineno = 0;
        for (char *p = text, *next; !rc && p && *p; p = next) {
            lineno++;
            char *nl = strchr(p, '\n');
            next = nl ? nl + 1 : NULL;
            if (nl) *nl = 0;
            if (!p[strspn(p, " \t\r")]) continue;
            d->lines++;
            rc = rn__pt_line(d, emb, p, paths[i], lineno, errbuf, errlen);
        }
        free(text);
    }
done:
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    return rc;
}

/* ---- examples ------------------------------------------------------------------------------ */

struct rn__pt_example {
    int64_t ts;
    size_t seq;
    uint32_t n_hist; /* rows in H (<= k) */
    float *H;        /* k x D (the first n_hist rows used) */
    float *longterm; /* D */
    float ctx[RN_SN_CONTEXT];
    float *E; /* m x D */
    float *y; /* m */
    uint32_t m;
};

static int rn__pt_cmp_user_time(const void *a, const void *b)
{
    const struct rn__pt_list *x = a, *y = b;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int rn__pt_cmp_example(const void *a, const void *b)
{
    const struct rn__pt_example *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Builds the examples (sorted by time) from the lists; *out malloc'd. */
static size_t rn__pt_examples(struct rn__pt_data *d, uint32_t k, uint32_t D, double half_life_ms,
                              struct rn__pt_example **out)
{
    qsort(d->lists, d->n, sizeof *d->lists, rn__pt_cmp_user_time);
    struct rn__pt_example *ex = rn_xcalloc(d->n ? d->n : 1, sizeof *ex);
    size_t n_ex = 0;
    const float **ring = rn_xmalloc((size_t)k * sizeof *ring); /* last k clicks, circular */
    const float **last = rn_xmalloc((size_t)k * sizeof *last); /* the same, oldest first */
    double *sum = rn_xmalloc(D * sizeof(double));
    struct rn__sn_longterm lt;
    for (size_t i = 0; i < d->n;) {
        /* One user's lists, in time order. */
        uint64_t user = d->lists[i].user;
        uint32_t n_clicks = 0;
        rn__sn_longterm_init(&lt, D, half_life_ms, sum);
        for (; i < d->n && d->lists[i].user == user; i++) {
            const struct rn__pt_list *l = &d->lists[i];
            rn__sn_longterm_decay(&lt, l->ts);
            if (l->n_clicked && l->m >= 2) {
                struct rn__pt_example *e = &ex[n_ex++];
                e->ts = l->ts, e->seq = l->seq, e->m = l->m;
                e->n_hist = RN_MIN(n_clicks, k);
                for (uint32_t r = 0; r < e->n_hist; r++)
                    last[r] = ring[(n_clicks - e->n_hist + r) % k];
                e->H = rn_xcalloc((size_t)k * D, sizeof(float));
                e->longterm = rn_xmalloc(D * sizeof(float));
                rn__sn_inputs(&lt, k, last, e->n_hist, l->ts, e->H, e->longterm, e->ctx);
                e->E = rn_xmalloc((size_t)l->m * D * sizeof(float));
                e->y = rn_xmalloc(l->m * sizeof(float));
                for (uint32_t j = 0; j < l->m; j++) {
                    memcpy(e->E + (size_t)j * D, d->items[l->at + j], D * sizeof(float));
                    e->y[j] = d->clicked[l->at + j] ? 1.0f / (float)l->n_clicked : 0.0f;
                }
            }
            /* Then this list's clicks join the history. */
            for (uint32_t j = 0; j < l->m; j++) {
                if (!d->clicked[l->at + j]) continue;
                const float *v = d->items[l->at + j];
                ring[n_clicks % k] = v;
                n_clicks++;
                rn__sn_longterm_add(&lt, v);
            }
        }
    }
    free(sum);
    free(last);
    free(ring);
    qsort(ex, n_ex, sizeof *ex, rn__pt_cmp_example);
    *out = ex;
    return n_ex;
}

static void rn__pt_examples_free(struct rn__pt_example *ex, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(ex[i].H);
        free(ex[i].longterm);
        free(ex[i].E);
        free(ex[i].y);
    }
    free(ex);
}

/* ---- training -------------------------------------------------------------------------------- */

struct rn__pt_adam {
    float *m, *v;
    size_t n;
    uint64_t t;
};

static void rn__pt_adam_step(struct rn__pt_adam *a, float *x, const float *g, double lr)
{
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    a->t++;
    double c1 = 1 - pow(b1, (double)a->t), c2 = 1 - pow(b2, (double)a->t);
    for (size_t i = 0; i < a->n; i++) {
        a->m[i] = (float)(b1 * a->m[i] + (1 - b1) * g[i]);
        a->v[i] = (float)(b2 * a->v[i] + (1 - b2) * (double)g[i] * g[i]);
        x[i] -= (float)(lr * (a->m[i] / c1) / (sqrt(a->v[i] / c2) + eps));
    }
}

static struct rn__sn_example rn__pt_sn(const struct rn__pt_example *e)
{
    return (struct rn__sn_example){e->H, e->n_hist, e->longterm, e->ctx, e->E, e->y, e->m};
}

/* Hit-rate@1 over examples [from, to) and what a uniform pick would get. */
static void rn__pt_eval(const struct rn_statenet *n, const float *P,
                        const struct rn__pt_example *ex, size_t from, size_t to, double *hit,
                        double *random)
{
    double h = 0, r = 0;
    float scores[1024];
    for (size_t i = from; i < to; i++) {
        struct rn__sn_example s = rn__pt_sn(&ex[i]);
        uint32_t m = RN_MIN(s.m, 1024u);
        s.m = m;
        rn__statenet_loss(n, P, &s, NULL, NULL, scores);
        uint32_t best = 0, clicked = 0;
        for (uint32_t j = 0; j < m; j++) {
            if (scores[j] > scores[best]) best = j;
            clicked += ex[i].y[j] > 0;
        }
        h += ex[i].y[best] > 0;
        r += (double)clicked / m;
    }
    *hit = to > from ? h / (double)(to - from) : 0;
    *random = to > from ? r / (double)(to - from) : 0;
}

struct rn__pt_opts {
    const char *data, *embeddings, *out, *check;
    uint32_t history, filters, out_dim, epochs;
    double lr;
    uint64_t seed;
};

static int rn__pt_train(const struct rn__pt_opts *o)
{
    char err[1024];
    struct rn_embed *emb = NULL;
    struct rn__pt_data d = {0};
    struct rn__pt_example *ex = NULL;
    size_t n_ex = 0;
    struct rn_statenet *net = NULL;
    float *P = NULL, *g = NULL, *gP = NULL;
    struct rn__pt_adam an = {0}, ap = {0};
    int rc = 1;
    openblas_set_num_threads(1); /* the same sums in the same order: byte-identical output */
    if (!(emb = rn_embed_load(o->embeddings, err, sizeof err))) {
        fprintf(stderr, "runnel pretrain: %s\n", err);
        return 1;
    }
    const uint32_t D = rn_embed_dim(emb), k = o->history;
    if (rn__pt_read(o->data, emb, &d, err, sizeof err)) {
        fprintf(stderr, "runnel pretrain: %s\n", err);
        goto fail_data;
    }
    n_ex = rn__pt_examples(&d, k, D, RN_SN_HALF_LIFE_MS, &ex);
    size_t n_train = n_ex - n_ex / 10;
    printf("pretrain: %zu lists from %s (%zu shown items without an embedding skipped), %zu "
           "lists with a click: %zu to train, %zu held out; %zu items of dimension %u\n",
           d.n, o->data, d.missing_items, n_ex, n_train, n_ex - n_train, rn_embed_count(emb), D);
    if (n_train < 1 || n_ex - n_train < 1) {
        fprintf(stderr, "runnel pretrain: too few lists with a click to train and hold out (%zu)\n",
                n_ex);
        goto fail_data;
    }
    net = rn__statenet_create(k, D, o->filters, 2, 3, RN_SN_CONTEXT, o->out_dim, err, sizeof err);
    if (!net) {
        fprintf(stderr, "runnel pretrain: %s\n", err);
        goto fail_data;
    }
    /* Initialisation: uniform in ±sqrt(3 / fan_in) (unit variance through each
     * layer), small positive conv biases so that no filter starts dead. */
    struct rn_rand r;
    rn_rand_seed(&r, o->seed, 1);
    const uint32_t S = net->S, C = net->C;
    struct {
        size_t at, count;
        double fan_in;
    } blocks[] = {{net->at.W1, (size_t)C * 2 * D, 2.0 * D},
                  {net->at.W2, (size_t)C * 3 * D, 3.0 * D},
                  {net->at.Wd, (size_t)S * net->Z, net->Z}};
    for (size_t b = 0; b < RN_ARRAY_LEN(blocks); b++) {
        double a = sqrt(3.0 / blocks[b].fan_in);
        for (size_t i = 0; i < blocks[b].count; i++)
            net->params[blocks[b].at + i] = (float)((rn_rand_uniform(&r) * 2 - 1) * a);
    }
    for (uint32_t c = 0; c < C; c++)
        net->params[net->at.b1 + c] = net->params[net->at.b2 + c] = 0.01f;
    P = rn_xmalloc((size_t)S * D * sizeof(float));
    for (size_t i = 0; i < (size_t)S * D; i++)
        P[i] = (float)((rn_rand_uniform(&r) * 2 - 1) * sqrt(3.0 / S));
    g = rn_xmalloc(net->at.n * sizeof(float));
    gP = rn_xmalloc((size_t)S * D * sizeof(float));
    an = (struct rn__pt_adam){rn_xcalloc(net->at.n, sizeof(float)),
                              rn_xcalloc(net->at.n, sizeof(float)), net->at.n, 0};
    ap = (struct rn__pt_adam){rn_xcalloc((size_t)S * D, sizeof(float)),
                              rn_xcalloc((size_t)S * D, sizeof(float)), (size_t)S * D, 0};
    size_t *order = rn_xmalloc(n_train * sizeof *order);
    for (size_t i = 0; i < n_train; i++)
        order[i] = i;
    double hit = 0, rnd = 0;
    rn__pt_eval(net, P, ex, n_train, n_ex, &hit, &rnd);
    printf("epoch 0/%u: held-out hit@1 %.4f (random %.4f)\n", o->epochs, hit, rnd);
    fflush(stdout);
    for (uint32_t ep = 1; ep <= o->epochs; ep++) {
        for (size_t i = n_train; i > 1; i--) {
            size_t j = (size_t)rn_rand_below(&r, i);
            size_t t = order[i - 1];
            order[i - 1] = order[j], order[j] = t;
        }
        double loss = 0;
        for (size_t b = 0; b < n_train; b += RN_PT_BATCH) {
            size_t e = RN_MIN(b + RN_PT_BATCH, n_train);
            memset(g, 0, net->at.n * sizeof(float));
            memset(gP, 0, (size_t)S * D * sizeof(float));
            for (size_t i = b; i < e; i++) {
                struct rn__sn_example s = rn__pt_sn(&ex[order[i]]);
                loss += rn__statenet_loss(net, P, &s, g, gP, NULL);
            }
            float scale = 1.0f / (float)(e - b);
            cblas_sscal((int)net->at.n, scale, g, 1);
            cblas_sscal((int)(S * D), scale, gP, 1);
            rn__pt_adam_step(&an, net->params, g, o->lr);
            rn__pt_adam_step(&ap, P, gP, o->lr);
        }
        double train_hit, train_rnd;
        rn__pt_eval(net, P, ex, 0, n_train, &train_hit, &train_rnd);
        rn__pt_eval(net, P, ex, n_train, n_ex, &hit, &rnd);
        printf("epoch %u/%u: loss %.4f train hit@1 %.4f held-out hit@1 %.4f (random %.4f)\n", ep,
               o->epochs, loss / (double)n_train, train_hit, hit, rnd);
        fflush(stdout);
    }
    free(order);
    char s_ep[16], s_seed[24], s_hit[32], s_rnd[32], s_hl[32], s_lr[32];
    snprintf(s_ep, sizeof s_ep, "%u", o->epochs);
    snprintf(s_seed, sizeof s_seed, "%llu", (unsigned long long)o->seed);
    snprintf(s_hit, sizeof s_hit, "%.6f", hit);
    snprintf(s_rnd, sizeof s_rnd, "%.6f", rnd);
    snprintf(s_hl, sizeof s_hl, "%.0f", RN_SN_HALF_LIFE_MS);
    snprintf(s_lr, sizeof s_lr, "%g", o->lr);
    const char *mk[] = {"format", "context_features", "half_life_ms",   "epochs", "seed",
                        "lr",     "heldout_hit_at_1", "random_hit_at_1"};
    const char *mv[] = {"runnel-statenet",
                        "sin_hour,cos_hour,history_fill",
                        s_hl,
                        s_ep,
                        s_seed,
                        s_lr,
                        s_hit,
                        s_rnd};
    if (rn__statenet_write(o->out, net, P, mk, mv, RN_ARRAY_LEN(mk), err, sizeof err)) {
        fprintf(stderr, "runnel pretrain: %s\n", err);
        goto fail_train;
    }
    printf("pretrain: wrote %s (history %u, dim %u, context %u, filters %u, out %u)\n", o->out, k,
           D, (unsigned)RN_SN_CONTEXT, C, S);
    rc = 0;
fail_train:
    free(an.m), free(an.v), free(ap.m), free(ap.v);
    free(g);
    free(gP);
    free(P);
    rn_statenet_destroy(net);
fail_data:
    rn__pt_examples_free(ex, n_ex);
    rn__pt_data_free(&d);
    rn_embed_destroy(emb);
    return rc;
}

/* ---- the command line -------------------------------------------------------------------------
 */

static int rn__pt_uint(const char *opt, const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (!v[0] || *end || errno || v[0] == '-' || x < lo || x > hi) {
        fprintf(stderr, "runnel pretrain: %s wants an integer in [%u, %u], not '%s'\n", opt, lo, hi,
                v);
        return -1;
    }
    *out = (uint32_t)x;
    return 0;
}

int rn_pretrain_main(int argc, char **argv)
{
    struct rn__pt_opts o = {
        .history = 10, .filters = 16, .out_dim = 32, .epochs = 3, .lr = 0.01, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return rn__pt_usage(stdout);
        if (a[0] != '-' || i + 1 >= argc) {
            fprintf(stderr, "runnel pretrain: %s '%s'\n",
                    a[0] == '-' ? "missing value for" : "unexpected argument", a);
            return rn__pt_usage(stderr);
        }
        const char *v = argv[++i];
        int bad = 0;
        if (strcmp(a, "--data") == 0) {
            o.data = v;
        } else if (strcmp(a, "--embeddings") == 0) {
            o.embeddings = v;
        } else if (strcmp(a, "--out") == 0) {
            o.out = v;
        } else if (strcmp(a, "--check") == 0) {
            o.check = v;
        } else if (strcmp(a, "--history") == 0) {
            bad = rn__pt_uint(a, v, 3, 1000, &o.history);
        } else if (strcmp(a, "--filters") == 0) {
            bad = rn__pt_uint(a, v, 1, 1024, &o.filters);
        } else if (strcmp(a, "--out-dim") == 0) {
            bad = rn__pt_uint(a, v, 1, 1024, &o.out_dim);
        } else if (strcmp(a, "--epochs") == 0) {
            bad = rn__pt_uint(a, v, 0, 100000, &o.epochs);
        } else if (strcmp(a, "--seed") == 0) {
            char *end;
            errno = 0;
            o.seed = strtoull(v, &end, 10);
            bad = !v[0] || *end || errno || v[0] == '-';
            if (bad) fprintf(stderr, "runnel pretrain: --seed wants an integer, not '%s'\n", v);
        } else if (strcmp(a, "--lr") == 0) {
            char *end;
            o.lr = strtod(v, &end);
            bad = !v[0] || *end || !(o.lr > 0 && o.lr < 10);
            if (bad)
                fprintf(stderr, "runnel pretrain: --lr wants a number in (0, 10), not '%s'\n", v);
        } else {
            fprintf(stderr, "runnel pretrain: unknown option '%s'\n", a);
            return rn__pt_usage(stderr);
        }
        if (bad) return rn__pt_usage(stderr);
    }
    if (o.check) {
        char err[1024];
        struct rn_statenet *n = rn_statenet_load(o.check, err, sizeof err);
        if (!n) {
            fprintf(stderr, "runnel pretrain: %s\n", err);
            return 1;
        }
        printf("%s: state network ok: history %u, dim %u, context %u, out %u\n", o.check,
               rn_statenet_history(n), rn_statenet_dim(n), rn_statenet_context(n),
               rn_statenet_out_dim(n));
        rn_statenet_destroy(n);
        return 0;
    }
    if (!o.data || !o.embeddings || !o.out) {
        fprintf(stderr, "runnel pretrain: --data, --embeddings and --out are required\n");
        return rn__pt_usage(stderr);
    }
    return rn__pt_train(&o);
}
