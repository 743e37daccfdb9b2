/*
 * rn_evaluate.c — `runnel evaluate`: off-policy evaluation of a target policy
 * from runnel's logged labelled lists (the online_joiner's samples).
 *
 * Each item of a logged list is one logged action: the item a shown at
 * position p of list x, with the logging policy's per-position marginal
 * propensity pi_0(a | x, p) and the item's reward r. This is OBD's
 * "position-wise" evaluation. The estimand is the target policy's expected
 * reward per slot (per shown position, positions weighted as logged).
 *
 *   samples file(s) -> lists sorted by (ts, request) -> [fit part | eval part]
 *                                        |                         |
 *                             reward model q^(a, p)      per list, in time order:
 *                             (item x position mean,     candidates, target scores
 *                             shrunk to the position's)  (causal: only earlier lists),
 *                                                        pi_e(. | x, p) -> rn_ope_obs
 *                                                                   |
 *                                               IPS, SNIPS, DR + bootstrap over lists
 *
 * A target policy at position p (1-based rank k = p - first position + 1)
 * shows its k-th best candidate by score; candidates tied with that one share
 * the probability. `random` scores all candidates alike, so it is uniform;
 * ε-greedy mixes in ε/|C|. The candidate set of a list is the catalogue of
 * its position (every item logged at that position anywhere in the data:
 * OBD's campaign items) or the list's own shown items (runnel's samples do
 * not carry the request's candidates); `auto` takes the catalogue when every
 * list has one item, the shown items otherwise.
 *
 * A model whose learner named context_fields is evaluated with --context
 * (the same names): each sample's "context" object (online_joiner writes it)
 * supplies the values appended to φ, a missing one as 0.
 *
 * Everything runs on one thread; the data is read once and kept in memory.
 * docs/evaluation.md ("Off-policy evaluation") states the estimators.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yajl/yajl_tree.h>

#include "rn_evaluate_int.h"
#include "rn_fs_int.h"
#include "rn_model.h"
#include "rn_rand.h"

#define RN_OPE_SHRINK 10.0 /* prior strength of q^: pseudo-observations at the position mean */

/* ---- the estimators ------------------------------------------------------- */

struct rn_ope_sums {
    double n, wr, w, w2, dr;
};

static void rn_ope_add(struct rn_ope_sums *s, const struct rn_ope_obs *o)
{
    s->n += 1;
    s->wr += o->w * o->r;
    s->w += o->w;
    s->w2 += o->w * o->w;
    s->dr += o->q_pi + o->w * (o->r - o->q_a);
}

static int rn_ope_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile of sorted v[0..n) with linear interpolation (R's type 7). */
static double rn_ope_quantile(const double *v, size_t n, double q)
{
    double h = (double)(n - 1) * q;
    size_t i = (size_t)floor(h);
    if (i + 1 >= n) return v[n - 1];
    return v[i] + (h - (double)i) * (v[i + 1] - v[i]);
}

int rn_ope_estimate(const struct rn_ope_obs *obs, size_t n, const size_t *start, size_t n_groups,
                    uint32_t n_boot, uint64_t seed, struct rn_ope_result *out)
{
    memset(out, 0, sizeof *out);
    if (!start) n_groups = n;
    if (n == 0 || n_groups == 0) return RN_EINVAL;
    struct rn_ope_sums all = {0};
    for (size_t i = 0; i < n; i++) {
        rn_ope_add(&all, &obs[i]);
        out->mean_r += obs[i].r;
        if (obs[i].w > 0) out->matched++;
        if (obs[i].w > out->max_w) out->max_w = obs[i].w;
    }
    out->n = n;
    out->groups = n_groups;
    out->mean_r /= (double)n;
    out->ips.est = all.wr / all.n;
    out->snips_defined = all.w > 0;
    out->snips.est = all.w > 0 ? all.wr / all.w : 0;
    out->dr.est = all.dr / all.n;
    out->ess = all.w2 > 0 ? all.w * all.w / all.w2 : 0;
    out->ips.lo = out->ips.hi = out->ips.est;
    out->snips.lo = out->snips.hi = out->snips.est;
    out->dr.lo = out->dr.hi = out->dr.est;
    if (n_boot == 0) return 0;

    /* Per-group sums once, so that a replicate costs n_groups draws. */
    struct rn_ope_sums *g = calloc(n_groups, sizeof *g);
    double *bs = malloc(3 * (size_t)n_boot * sizeof *bs);
    if (!g || !bs) {
        free(g);
        free(bs);
        return RN_ENOMEM;
    }
    for (size_t k = 0; k < n_groups; k++) {
        size_t a = start ? start[k] : k, b = start ? start[k + 1] : k + 1;
        for (size_t i = a; i < b; i++)
            rn_ope_add(&g[k], &obs[i]);
    }
    struct rn_rand rng;
    rn_rand_seed(&rng, seed, 0x09e);
    double *ips = bs, *snips = bs + n_boot, *dr = bs + 2 * (size_t)n_boot;
    for (uint32_t b = 0; b < n_boot; b++) {
        struct rn_ope_sums s = {0};
        for (size_t k = 0; k < n_groups; k++) {
            const struct rn_ope_sums *x = &g[rn_rand_below(&rng, n_groups)];
            s.n += x->n;
            s.wr += x->wr;
            s.w += x->w;
            s.dr += x->dr;
        }
        ips[b] = s.n > 0 ? s.wr / s.n : 0;
        snips[b] = s.w > 0 ? s.wr / s.w : 0; /* no matched action drawn: 0, as IPS */
        dr[b] = s.n > 0 ? s.dr / s.n : 0;
    }
    struct rn_ope_ci *ci[3] = {&out->ips, &out->snips, &out->dr};
    for (int e = 0; e < 3; e++) {
        double *v = bs + (size_t)e * n_boot;
        qsort(v, n_boot, sizeof *v, rn_ope_cmp_double);
        ci[e]->lo = rn_ope_quantile(v, n_boot, 0.025);
        ci[e]->hi = rn_ope_quantile(v, n_boot, 0.975);
    }
    free(g);
    free(bs);
    return 0;
}

/* ---- logged data ---------------------------------------------------------- */

static uint32_t rn_ope_intern_get(struct rn_ope_intern *t, const char *s)
{
    size_t len = strlen(s);
    uint64_t h = rn_hash64(s, len);
    if ((t->n + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        uint32_t *ns = rn_xcalloc(cap, sizeof *ns);
        for (size_t i = 0; i < t->n; i++) {
            size_t j = t->hashes[i] & (cap - 1);
            while (ns[j])
                j = (j + 1) & (cap - 1);
            ns[j] = (uint32_t)i + 1;
        }
        free(t->slots);
        t->slots = ns;
        t->cap = cap;
    }
    size_t j = h & (t->cap - 1);
    while (t->slots[j]) {
        uint32_t i = t->slots[j] - 1;
        if (t->hashes[i] == h && strcmp(t->names[i], s) == 0) return i;
        j = (j + 1) & (t->cap - 1);
    }
    if (t->n == t->cap_names) {
        t->cap_names = t->cap_names ? t->cap_names * 2 : 256;
        t->names = rn_xrealloc(t->names, t->cap_names * sizeof *t->names);
        t->hashes = rn_xrealloc(t->hashes, t->cap_names * sizeof *t->hashes);
    }
    t->names[t->n] = rn_xstrdup(s);
    t->hashes[t->n] = h;
    t->slots[j] = (uint32_t)t->n + 1;
    return (uint32_t)t->n++;
}

static void rn_ope_intern_free(struct rn_ope_intern *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->names[i]);
    free(t->names);
    free(t->hashes);
    free(t->slots);
}

void rn_ope_data_free(struct rn_ope_data *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->n_lists; i++)
        free(d->lists[i].request);
    free(d->lists);
    free(d->slots);
    rn_ope_intern_free(&d->items);
    rn_ope_intern_free(&d->users);
    rn_ope_intern_free(&d->ctx_names);
    free(d->ctx);
    if (d->cat)
        for (uint32_t p = 0; p + d->min_pos <= d->max_pos; p++)
            free(d->cat[p]);
    free(d->cat);
    free(d->n_cat);
    free(d);
}

size_t rn_ope_data_lists(const struct rn_ope_data *d)
{
    return d->n_lists;
}

size_t rn_ope_data_slots(const struct rn_ope_data *d)
{
    return d->n_slots;
}

/* Key paths for yajl_tree_get (which takes them non-const). */
static const char *rn_ope_k_user[] = {"user", NULL}, *rn_ope_k_request[] = {"request", NULL},
                  *rn_ope_k_ts[] = {"ts", NULL}, *rn_ope_k_items[] = {"items", NULL},
                  *rn_ope_k_item[] = {"item", NULL}, *rn_ope_k_pos[] = {"position", NULL},
                  *rn_ope_k_prop[] = {"propensity", NULL}, *rn_ope_k_reward[] = {"reward", NULL},
                  *rn_ope_k_context[] = {"context", NULL};

/* One JSON line (NUL-terminated, borrowed) into d; errors name file:line. */
static int rn_ope_parse_line(struct rn_ope_data *d, char *line, const char *file, size_t lineno,
                             char *errbuf, size_t errlen)
{
    char perr[256];
    yajl_val v = yajl_tree_parse(line, perr, sizeof perr);
    if (!v) {
        rn_errf(errbuf, errlen, "%s:%zu: not JSON: %s", file, lineno, perr);
        return RN_EINVAL;
    }
    int rc = RN_EINVAL;
    yajl_val user = yajl_tree_get(v, rn_ope_k_user, yajl_t_string);
    yajl_val req = yajl_tree_get(v, rn_ope_k_request, yajl_t_string);
    yajl_val ts = yajl_tree_get(v, rn_ope_k_ts, yajl_t_number);
    yajl_val items = yajl_tree_get(v, rn_ope_k_items, yajl_t_array);
    if (!user || !req || !ts || !YAJL_IS_INTEGER(ts) || !items) {
        rn_errf(errbuf, errlen,
                "%s:%zu: not a labelled list (a sample needs user, request, ts and items)", file,
                lineno);
        goto out;
    }
    size_t n = YAJL_GET_ARRAY(items)->len;
    if (n == 0) {
        rn_errf(errbuf, errlen, "%s:%zu: a labelled list with no items", file, lineno);
        goto out;
    }
    if (d->n_slots + n > d->cap_slots) {
        d->cap_slots = RN_MAX(d->cap_slots * 2, d->n_slots + n + 1024);
        d->slots = rn_xrealloc(d->slots, d->cap_slots * sizeof *d->slots);
    }
    for (size_t i = 0; i < n; i++) {
        yajl_val it = YAJL_GET_ARRAY(items)->values[i];
        yajl_val name = yajl_tree_get(it, rn_ope_k_item, yajl_t_string);
        yajl_val pos = yajl_tree_get(it, rn_ope_k_pos, yajl_t_number);
        yajl_val prop = yajl_tree_get(it, rn_ope_k_prop, yajl_t_number);
        yajl_val rew = yajl_tree_get(it, rn_ope_k_reward, yajl_t_number);
        if (!name || !pos || !YAJL_IS_INTEGER(pos) || YAJL_GET_INTEGER(pos) < 0 || !rew) {
            rn_errf(errbuf, errlen, "%s:%zu: item %zu needs item, position and reward", file,
                    lineno, i);
            goto out;
        }
        if (!prop) {
            rn_errf(errbuf, errlen,
                    "%s:%zu: item %zu has no logging propensity (off-policy estimates need one)",
                    file, lineno, i);
            goto out;
        }
        double p = YAJL_GET_DOUBLE(prop);
        if (!(p > 0 && p <= 1)) {
            rn_errf(errbuf, errlen, "%s:%zu: item %zu: propensity %g is not in (0, 1]", file,
                    lineno, i, p);
            goto out;
        }
        struct rn_ope_slot *s = &d->slots[d->n_slots + i];
        s->item = rn_ope_intern_get(&d->items, YAJL_GET_STRING(name));
        s->pos = (uint32_t)YAJL_GET_INTEGER(pos);
        s->prop = p;
        s->reward = YAJL_GET_DOUBLE(rew);
    }
    if (d->n_lists == d->cap_lists) {
        d->cap_lists = d->cap_lists ? d->cap_lists * 2 : 1024;
        d->lists = rn_xrealloc(d->lists, d->cap_lists * sizeof *d->lists);
    }
    struct rn_ope_list *l = &d->lists[d->n_lists++];
    l->ts = YAJL_GET_INTEGER(ts);
    l->user = rn_ope_intern_get(&d->users, YAJL_GET_STRING(user));
    l->first = (uint32_t)d->n_slots;
    l->n = (uint32_t)n;
    l->request = rn_xstrdup(YAJL_GET_STRING(req));
    l->ctx_first = (uint32_t)d->n_ctx;
    l->n_ctx = 0;
    yajl_val ctx = yajl_tree_get(v, rn_ope_k_context, yajl_t_object);
    for (size_t i = 0; ctx && i < YAJL_GET_OBJECT(ctx)->len; i++) {
        yajl_val cv = YAJL_GET_OBJECT(ctx)->values[i];
        if (!YAJL_IS_NUMBER(cv)) continue; /* null: a missing value */
        if (d->n_ctx == d->cap_ctx) {
            d->cap_ctx = d->cap_ctx ? d->cap_ctx * 2 : 1024;
            d->ctx = rn_xrealloc(d->ctx, d->cap_ctx * sizeof *d->ctx);
        }
        d->ctx[d->n_ctx].name = rn_ope_intern_get(&d->ctx_names, YAJL_GET_OBJECT(ctx)->keys[i]);
        d->ctx[d->n_ctx++].v = YAJL_GET_DOUBLE(cv);
        l->n_ctx++;
    }
    d->n_slots += n;
    rc = 0;
out:
    yajl_tree_free(v);
    return rc;
}

static int rn_ope_load_file(struct rn_ope_data *d, const char *path, char *errbuf, size_t errlen)
{
    size_t len = 0;
    char *text = rn_fs_read_all(path, &len);
    if (!text) {
        rn_errf(errbuf, errlen, "%s: cannot read: %s", path, strerror(errno));
        return RN_EIO;
    }
    int rc = 0;
    size_t lineno = 0;
    for (char *p = text; p < text + len && rc == 0;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        char *end = nl ? nl : text + len;
        lineno++;
        *end = 0;
        char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\r')
            q++;
        if (*q) rc = rn_ope_parse_line(d, p, path, lineno, errbuf, errlen);
        p = end + 1;
    }
    free(text);
    return rc;
}

static int rn_ope_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory's *.jsonl and *.json files, recursively, in name order (hidden
 * and in-progress parts skipped). */
static int rn_ope_load_dir(struct rn_ope_data *d, const char *dir, char *errbuf, size_t errlen)
{
    DIR *dp = opendir(dir);
    if (!dp) {
        rn_errf(errbuf, errlen, "%s: cannot open: %s", dir, strerror(errno));
        return RN_EIO;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = rn_xrealloc(names, cap * sizeof *names);
        }
        names[n++] = rn_xstrdup(e->d_name);
    }
    closedir(dp);
    if (n > 1) qsort(names, n, sizeof *names, rn_ope_cmp_str); /* names is NULL when n is 0 */
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct rn_buf p = RN_BUF_INIT;
        rn_buf_printf(&p, "%s/%s", dir, names[i]);
        struct stat st;
        size_t nl = strlen(names[i]);
        if (stat(p.data, &st) != 0) {
            rn_errf(errbuf, errlen, "%s: %s", p.data, strerror(errno));
            rc = RN_EIO;
        } else if (S_ISDIR(st.st_mode)) {
            rc = rn_ope_load_dir(d, p.data, errbuf, errlen);
        } else if (S_ISREG(st.st_mode) && ((nl > 6 && strcmp(names[i] + nl - 6, ".jsonl") == 0) ||
                                           (nl > 5 && strcmp(names[i] + nl - 5, ".json") == 0))) {
            rc = rn_ope_load_file(d, p.data, errbuf, errlen);
        }
        rn_buf_free(&p);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int rn_ope_cmp_list(const void *a, const void *b)
{
    const struct rn_ope_list *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return strcmp(x->request, y->request);
}

struct rn_ope_data *rn_ope_load(const char *path, char *errbuf, size_t errlen)
{
    struct rn_ope_data *d = rn_xcalloc(1, sizeof *d);
    struct stat st;
    int rc;
    if (stat(path, &st) != 0) {
        rn_errf(errbuf, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    rc = S_ISDIR(st.st_mode) ? rn_ope_load_dir(d, path, errbuf, errlen)
                             : rn_ope_load_file(d, path, errbuf, errlen);
    if (rc) goto fail;
    if (d->n_lists == 0) {
        rn_errf(errbuf, errlen, "%s: no labelled lists", path);
        goto fail;
    }
    /* Time order; the request breaks ties so that runs are reproducible
     * whatever order parallel subtasks wrote the lines in. */
    qsort(d->lists, d->n_lists, sizeof *d->lists, rn_ope_cmp_list);
    d->min_pos = UINT32_MAX;
    for (size_t i = 0; i < d->n_slots; i++) {
        d->min_pos = RN_MIN(d->min_pos, d->slots[i].pos);
        d->max_pos = RN_MAX(d->max_pos, d->slots[i].pos);
    }
    if (d->max_pos - d->min_pos > 1000) {
        rn_errf(errbuf, errlen, "%s: positions from %u to %u: too many to evaluate per position",
                path, d->min_pos, d->max_pos);
        goto fail;
    }
    for (size_t i = 0; i < d->n_lists; i++)
        d->max_list = RN_MAX(d->max_list, d->lists[i].n);
    /* Catalogue of each position: the items logged there, in first-seen order. */
    uint32_t np = d->max_pos - d->min_pos + 1;
    d->cat = rn_xcalloc(np, sizeof *d->cat);
    d->n_cat = rn_xcalloc(np, sizeof *d->n_cat);
    uint8_t *seen = rn_xcalloc((size_t)np * d->items.n, 1);
    for (size_t i = 0; i < d->n_slots; i++) {
        uint32_t p = d->slots[i].pos - d->min_pos, it = d->slots[i].item;
        if (seen[(size_t)p * d->items.n + it]) continue;
        seen[(size_t)p * d->items.n + it] = 1;
        d->cat[p] = rn_xrealloc(d->cat[p], (d->n_cat[p] + 1) * sizeof **d->cat);
        d->cat[p][d->n_cat[p]++] = it;
    }
    free(seen);
    return d;
fail:
    rn_ope_data_free(d);
    return NULL;
}

/* ---- the reward model q^ ---------------------------------------------------- */

/* q^(a, p) = (S_ap + k mu_p) / (N_ap + k): the item's mean reward at the
 * position, shrunk to the position's mean mu_p (the overall mean where the
 * position has no data) with k = RN_OPE_SHRINK. Fitted on the lists whose
 * `use` flag is set. */
struct rn_ope_qhat {
    double *q; /* [np][n_items] */
    size_t n_items;
};

static void rn_ope_qhat_fit(struct rn_ope_qhat *m, const struct rn_ope_data *d, const uint8_t *use)
{
    uint32_t np = d->max_pos - d->min_pos + 1;
    size_t ni = d->items.n;
    double *S = rn_xcalloc((size_t)np * ni, sizeof *S), *N = rn_xcalloc((size_t)np * ni, sizeof *N);
    double *Sp = rn_xcalloc(np, sizeof *Sp), *Np = rn_xcalloc(np, sizeof *Np), St = 0, Nt = 0;
    for (size_t l = 0; l < d->n_lists; l++) {
        if (!use[l]) continue;
        for (uint32_t i = 0; i < d->lists[l].n; i++) {
            const struct rn_ope_slot *s = &d->slots[d->lists[l].first + i];
            uint32_t p = s->pos - d->min_pos;
            S[(size_t)p * ni + s->item] += s->reward;
            N[(size_t)p * ni + s->item] += 1;
            Sp[p] += s->reward;
            Np[p] += 1;
            St += s->reward;
            Nt += 1;
        }
    }
    m->n_items = ni;
    m->q = rn_xcalloc((size_t)np * ni, sizeof *m->q);
    for (uint32_t p = 0; p < np; p++) {
        double mu = Np[p] > 0 ? Sp[p] / Np[p] : (Nt > 0 ? St / Nt : 0);
        for (size_t a = 0; a < ni; a++)
            m->q[(size_t)p * ni + a] = (S[(size_t)p * ni + a] + RN_OPE_SHRINK * mu) /
                                       (N[(size_t)p * ni + a] + RN_OPE_SHRINK);
    }
    free(S);
    free(N);
    free(Sp);
    free(Np);
}

/* ---- target policies -------------------------------------------------------- */

enum rn_ope_kind { RN_POL_LOGGING, RN_POL_RANDOM, RN_POL_POPULARITY, RN_POL_MODEL };

#define RN_OPE_CTX_MAX 16

struct rn_ope_policy {
    int kind;
    double epsilon;
    /* causal state, advanced over lists strictly earlier than the current one */
    double *clicks;        /* popularity: reward-bearing feedback per item */
    struct rn_hist **hist; /* model: per user, clicked items, oldest first */
    uint32_t *n_hist, *cap_hist;
    /* model */
    struct rn_model *model;
    struct rn_embed *emb;
    struct rn_phi_spec spec;
    void *phi_scratch;
    uint64_t *item_hash;
    float *phi, *E;
    int64_t version;
    const struct rn_ope_data *d;       /* borrowed: the contexts */
    uint32_t n_ctx;                    /* --context: fields appended to φ */
    uint32_t ctx_name[RN_OPE_CTX_MAX]; /* their index in d->ctx_names; UINT32_MAX: never seen */
};

static int rn_ope_model_open(struct rn_ope_policy *pol, const struct rn_ope_data *d,
                             const char *arg, const struct rn_ope_opts *o, char *errbuf,
                             size_t errlen)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", arg);
    char *at = strrchr(dir, '@');
    int64_t id = -1;
    if (at) {
        char *end;
        *at = 0;
        id = strtoll(at + 1, &end, 10);
        if (at[1] == 0 || *end || id < 0) {
            rn_errf(errbuf, errlen, "model:%s: bad version '%s'", arg, at + 1);
            return RN_EINVAL;
        }
    }
    if (!o->embeddings) {
        rn_errf(errbuf, errlen, "model:%s needs --embeddings FILE (the items' vectors)", arg);
        return RN_EINVAL;
    }
    if (id < 0 && rn_store_current(dir, &id, errbuf, errlen)) return RN_ENOENT;
    pol->model = rn_store_load(dir, id, errbuf, errlen);
    if (!pol->model) return RN_EIO;
    pol->version = id;
    pol->emb = rn_embed_load(o->embeddings, errbuf, errlen);
    if (!pol->emb) return RN_EIO;
    uint32_t D = rn_embed_dim(pol->emb);
    if (rn_phi_spec_open(&pol->spec, o->history, o->half_life_ms, o->state_network, pol->emb,
                         errbuf, errlen))
        return RN_EINVAL;
    pol->d = d;
    for (const char *p = o->context; p && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || pol->n_ctx == RN_OPE_CTX_MAX) {
            rn_errf(errbuf, errlen, "--context '%s': 1 to %d comma-separated names", o->context,
                    RN_OPE_CTX_MAX);
            return RN_EINVAL;
        }
        uint32_t idx = UINT32_MAX;
        for (size_t i = 0; i < d->ctx_names.n; i++)
            if (strlen(d->ctx_names.names[i]) == n && memcmp(d->ctx_names.names[i], p, n) == 0)
                idx = (uint32_t)i;
        pol->ctx_name[pol->n_ctx++] = idx;
        p = e ? e + 1 : p + n;
    }
    if (rn_phi_spec_set_context(&pol->spec, pol->n_ctx, errbuf, errlen)) return RN_EINVAL;
    uint32_t F = rn_phi_dim(&pol->spec, pol->emb);
    if (pol->model->shape.dim != D || pol->model->shape.phi != F) {
        rn_errf(errbuf, errlen,
                "model:%s version %lld has dim %u and phi %u; want dim %u (the embeddings) and "
                "phi %u (%s)",
                arg, (long long)id, pol->model->shape.dim, pol->model->shape.phi, D, F,
                o->state_network ? "the output size of --state-network"
                                 : "the simple state features and --context: is --state-network or --context "
                                   "missing?");
        return RN_EINVAL;
    }
    pol->phi_scratch = rn_xmalloc(rn_phi_scratch_size(&pol->spec, pol->emb) + 1);
    pol->item_hash = rn_xmalloc((d->items.n + 1) * sizeof *pol->item_hash);
    for (size_t i = 0; i < d->items.n; i++)
        pol->item_hash[i] = rn_hash64(d->items.names[i], strlen(d->items.names[i]));
    pol->phi = rn_xcalloc(F, sizeof *pol->phi);
    size_t maxc = RN_MAX((size_t)d->max_list, d->items.n);
    pol->E = rn_xcalloc(maxc * D + 1, sizeof *pol->E);
    return 0;
}

/* The model's advantages of the n candidates c for the list's user at `ts`. */
static void rn_ope_model_scores(struct rn_ope_policy *pol, const struct rn_ope_opts *o,
                                const struct rn_ope_list *l, const uint32_t *c, uint32_t n,
                                double *score)
{
    uint32_t D = rn_embed_dim(pol->emb);
    double cv[RN_OPE_CTX_MAX];
    for (uint32_t k = 0; k < pol->n_ctx; k++) {
        cv[k] = NAN;
        for (uint32_t i = 0; i < l->n_ctx; i++)
            if (pol->d->ctx[l->ctx_first + i].name == pol->ctx_name[k])
                cv[k] = pol->d->ctx[l->ctx_first + i].v;
    }
    rn_phi_compute_ctx(&pol->spec, pol->emb, pol->hist[l->user], pol->n_hist[l->user], l->ts, cv,
                       pol->n_ctx, pol->phi, pol->phi_scratch);
    uint64_t *ids = rn_xmalloc((n + 1) * sizeof *ids);
    float *a = rn_xmalloc((n + 1) * sizeof *a);
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = pol->item_hash[c[i]];
        const float *e = rn_embed_get(pol->emb, ids[i]);
        if (e)
            memcpy(pol->E + (size_t)i * D, e, D * sizeof *e);
        else
            memset(pol->E + (size_t)i * D, 0, D * sizeof *pol->E);
    }
    rn_model_advantages(pol->model, pol->phi, pol->E, ids, n, a);
    for (uint32_t i = 0; i < n; i++)
        score[i] = a[i];
    free(ids);
    free(a);
}

static void rn_ope_model_close(struct rn_ope_policy *pol)
{
    if (pol->model) rn_model_destroy(pol->model);
    rn_phi_spec_close(&pol->spec);
    free(pol->phi_scratch);
    if (pol->emb) rn_embed_destroy(pol->emb);
}

/* Feeds list l's feedback into the policy's causal state. */
static void rn_ope_policy_observe(struct rn_ope_policy *pol, const struct rn_ope_data *d,
                                  const struct rn_ope_list *l)
{
    for (uint32_t i = 0; i < l->n; i++) {
        const struct rn_ope_slot *s = &d->slots[l->first + i];
        if (!(s->reward > 0)) continue;
        if (pol->clicks) pol->clicks[s->item] += 1;
        if (pol->hist) {
            uint32_t u = l->user;
            if (pol->n_hist[u] == pol->cap_hist[u]) {
                pol->cap_hist[u] = pol->cap_hist[u] ? pol->cap_hist[u] * 2 : 16;
                pol->hist[u] = rn_xrealloc(pol->hist[u], pol->cap_hist[u] * sizeof **pol->hist);
            }
            pol->hist[u][pol->n_hist[u]++] =
                (struct rn_hist){.item_id = pol->item_hash[s->item], .ts = l->ts};
        }
    }
}

struct rn_ope_cand {
    uint32_t item;
    double score;
};

static int rn_ope_cmp_cand(const void *a, const void *b)
{
    const struct rn_ope_cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->item < y->item ? -1 : x->item > y->item;
}

static void rn_ope_policy_free(struct rn_ope_policy *pol, const struct rn_ope_data *d)
{
    free(pol->clicks);
    if (pol->hist)
        for (size_t u = 0; u < d->users.n; u++)
            free(pol->hist[u]);
    free(pol->hist);
    free(pol->n_hist);
    free(pol->cap_hist);
    rn_ope_model_close(pol);
    free(pol->item_hash);
    free(pol->phi);
    free(pol->E);
}

int rn_ope_evaluate(const struct rn_ope_data *d, const char *spec, const struct rn_ope_opts *o,
                    struct rn_ope_result *out, char **policy_desc, char *errbuf, size_t errlen)
{
    struct rn_ope_policy pol = {.epsilon = o->epsilon, .version = -1};
    int rc = RN_EINVAL;
    if (!(o->train_fraction >= 0 && o->train_fraction < 1) ||
        !(o->epsilon >= 0 && o->epsilon <= 1)) {
        rn_errf(errbuf, errlen, "train fraction must be in [0, 1) and epsilon in [0, 1]");
        return RN_EINVAL;
    }
    if (strcmp(spec, "logging") == 0) {
        pol.kind = RN_POL_LOGGING;
    } else if (strcmp(spec, "random") == 0) {
        pol.kind = RN_POL_RANDOM;
    } else if (strcmp(spec, "popularity") == 0) {
        pol.kind = RN_POL_POPULARITY;
        pol.clicks = rn_xcalloc(d->items.n + 1, sizeof *pol.clicks);
    } else if (strncmp(spec, "model:", 6) == 0 && spec[6]) {
        pol.kind = RN_POL_MODEL;
        pol.hist = rn_xcalloc(d->users.n + 1, sizeof *pol.hist);
        pol.n_hist = rn_xcalloc(d->users.n + 1, sizeof *pol.n_hist);
        pol.cap_hist = rn_xcalloc(d->users.n + 1, sizeof *pol.cap_hist);
        if ((rc = rn_ope_model_open(&pol, d, spec + 6, o, errbuf, errlen))) goto fail_policy;
    } else {
        rn_errf(errbuf, errlen,
                "unknown policy '%s' (logging, random, popularity or model:DIR[@VERSION])", spec);
        return RN_EINVAL;
    }
    int cands = o->candidates;
    if (cands == RN_OPE_CANDS_AUTO)
        cands = d->max_list <= 1 ? RN_OPE_CANDS_CATALOGUE : RN_OPE_CANDS_LIST;

    /* Evaluation part and the reward model's folds. */
    size_t cut = (size_t)floor(o->train_fraction * (double)d->n_lists);
    if (cut >= d->n_lists) cut = d->n_lists - 1;
    struct rn_ope_qhat qh[2] = {{0}};
    uint8_t *use = rn_xcalloc(d->n_lists, 1);
    if (cut > 0) {
        for (size_t l = 0; l < cut; l++)
            use[l] = 1;
        rn_ope_qhat_fit(&qh[0], d, use);
    } else {
        /* Cross-fitting: lists alternate between two folds in time order; a
         * list's q^ is fitted on the other fold. */
        for (int f = 0; f < 2; f++) {
            for (size_t l = 0; l < d->n_lists; l++)
                use[l] = (l & 1) != (size_t)f;
            rn_ope_qhat_fit(&qh[f], d, use);
        }
    }
    free(use);

    size_t n_eval_slots = 0, n_groups = d->n_lists - cut;
    for (size_t l = cut; l < d->n_lists; l++)
        n_eval_slots += d->lists[l].n;
    struct rn_ope_obs *obs = rn_xcalloc(n_eval_slots, sizeof *obs);
    size_t *start = rn_xcalloc(n_groups + 1, sizeof *start);
    size_t maxc = RN_MAX((size_t)d->max_list, d->items.n) + 1;
    struct rn_ope_cand *cand = rn_xcalloc(maxc, sizeof *cand);
    uint32_t *cidx = rn_xcalloc(maxc, sizeof *cidx);
    double *score = rn_xcalloc(maxc, sizeof *score);
    size_t k = 0, applied = 0;
    for (size_t l = cut; l < d->n_lists; l++) {
        const struct rn_ope_list *L = &d->lists[l];
        /* Causal state: every list strictly earlier than this one. */
        while (applied < l && d->lists[applied].ts < L->ts)
            rn_ope_policy_observe(&pol, d, &d->lists[applied++]);
        start[l - cut] = k;
        for (uint32_t i = 0; i < L->n; i++, k++) {
            const struct rn_ope_slot *s = &d->slots[L->first + i];
            uint32_t p = s->pos - d->min_pos;
            const double *q = qh[cut > 0 ? 0 : (l & 1)].q + (size_t)p * d->items.n;
            struct rn_ope_obs *ob = &obs[k];
            ob->r = s->reward;
            ob->q_a = q[s->item];
            if (pol.kind == RN_POL_LOGGING) {
                /* pi_e = pi_0: w = 1; the logged item is the draw from pi_0, so
                 * the direct term is q^ at it and DR reduces to the mean reward. */
                ob->w = 1;
                ob->q_pi = ob->q_a;
                continue;
            }
            uint32_t n;
            if (cands == RN_OPE_CANDS_CATALOGUE) {
                n = d->n_cat[p];
                memcpy(cidx, d->cat[p], n * sizeof *cidx);
            } else {
                n = L->n;
                for (uint32_t j = 0; j < n; j++)
                    cidx[j] = d->slots[L->first + j].item;
            }
            if (pol.kind == RN_POL_POPULARITY)
                for (uint32_t j = 0; j < n; j++)
                    score[j] = pol.clicks[cidx[j]];
            else if (pol.kind == RN_POL_MODEL)
                rn_ope_model_scores(&pol, o, L, cidx, n, score);
            else
                for (uint32_t j = 0; j < n; j++)
                    score[j] = 0;
            for (uint32_t j = 0; j < n; j++)
                cand[j] = (struct rn_ope_cand){cidx[j], score[j]};
            qsort(cand, n, sizeof *cand, rn_ope_cmp_cand);
            /* The greedy choice at rank r: the candidate ranked r, shared
             * with those tied with it. */
            uint32_t r = RN_MIN(p, n - 1), lo = r, hi = r + 1;
            while (lo > 0 && cand[lo - 1].score == cand[r].score)
                lo--;
            while (hi < n && cand[hi].score == cand[r].score)
                hi++;
            double eps = pol.kind == RN_POL_RANDOM ? 0 : pol.epsilon;
            double pe_a = 0;
            ob->q_pi = 0;
            for (uint32_t j = 0; j < n; j++) {
                double pe = eps / n + (j >= lo && j < hi ? (1 - eps) / (hi - lo) : 0);
                ob->q_pi += pe * q[cand[j].item];
                if (cand[j].item == s->item) pe_a = pe;
            }
            ob->w = pe_a / s->prop;
        }
    }
    start[n_groups] = k;
    assert(k == n_eval_slots);
    rc = rn_ope_estimate(obs, n_eval_slots, start, n_groups, o->bootstrap, o->seed, out);
    if (rc) rn_errf(errbuf, errlen, "nothing to evaluate");
    if (rc == 0 && policy_desc) {
        struct rn_buf b = RN_BUF_INIT;
        rn_buf_puts(&b, spec);
        if (pol.kind == RN_POL_MODEL) rn_buf_printf(&b, " (version %lld)", (long long)pol.version);
        if ((pol.kind == RN_POL_MODEL || pol.kind == RN_POL_POPULARITY) && pol.epsilon > 0)
            rn_buf_printf(&b, " eps=%g", pol.epsilon);
        rn_buf_putc(&b, 0);
        *policy_desc = b.data;
    }
    free(obs);
    free(start);
    free(cand);
    free(cidx);
    free(score);
    free(qh[0].q);
    free(qh[1].q);
fail_policy:
    rn_ope_policy_free(&pol, d);
    return rc;
}

/* ---- the command line ------------------------------------------------------- */

static void rn_ope_usage(FILE *f)
{
    fprintf(
        f,
        "usage: runnel evaluate --data PATH --policy POLICY [--policy POLICY]...\n"
        "                       [--train-fraction F] [--bootstrap B] [--seed S]\n"
        "                       [--epsilon E] [--embeddings FILE] [--candidates "
        "auto|catalogue|list]\n"
        "                       [--history N] [--half-life-ms MS] [--state-network FILE] "
        "[--json]\n"
        "\n"
        "Off-policy evaluation of target policies from labelled lists (the online_joiner's\n"
        "samples: a JSON-lines file, or a directory of *.jsonl files such as a\n"
        "partitioned_file sink's). Each shown item is one logged action with its\n"
        "per-position logging propensity; the estimand is the target's expected reward per\n"
        "slot. Prints IPS, SNIPS and doubly robust (DR) estimates with bootstrap 95%%\n"
        "intervals (lists resampled with replacement) and the effective sample size.\n"
        "\n"
        "  --policy            logging     the logged behaviour (weights 1: its on-policy mean)\n"
        "                      random      uniform over the candidates\n"
        "                      popularity  greedy by clicks on earlier lists\n"
        "                      model:DIR[@VERSION]  greedy by the model store's advantages\n"
        "                      (default: logging and random)\n"
        "  --train-fraction F  the first F of the lists by time fit the reward model; only\n"
        "                      the rest is evaluated (default 0: all, reward model cross-fitted)\n"
        "  --bootstrap B       resamples (default 1000; 0: no intervals)\n"
        "  --seed S            bootstrap seed (default 1)\n"
        "  --epsilon E         epsilon-greedy for popularity and model (default 0)\n"
        "  --embeddings FILE   item embeddings for model: policies\n"
        "  --candidates C      catalogue (items logged at the position), list (the list's\n"
        "                      shown items) or auto (catalogue when lists have one item)\n"
        "  --history N         model: items of history in the state features (default 10)\n"
        "  --half-life-ms MS   model: decay half life of the state features (default 1800000)\n"
        "  --state-network FILE  model: the state network the learner named (state_network);\n"
        "                      default: the simple state features\n"
        "  --context LIST      model: the learner's context_fields (comma-separated), read\n"
        "                      from each sample's \"context\"\n"
        "  --json              one JSON object instead of the table\n"
        "\n"
        "Exit status: 0 success, 1 bad data or a failed policy, 2 bad usage.\n");
}

static int rn_ope_num(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "runnel evaluate: %s '%s': want a number in [%g, %g]\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static void rn_ope_json_ci(struct rn_buf *b, const char *name, const struct rn_ope_ci *c,
                           int defined)
{
    rn_buf_printf(b, ",\"%s\":{\"estimate\":", name);
    if (defined) {
        rn_json_f64(b, c->est);
        RN_BUF_LIT(b, ",\"lo\":");
        rn_json_f64(b, c->lo);
        RN_BUF_LIT(b, ",\"hi\":");
        rn_json_f64(b, c->hi);
    } else {
        RN_BUF_LIT(b, "null,\"lo\":null,\"hi\":null");
    }
    rn_buf_putc(b, '}');
}

static void rn_ope_fmt_ci(char *buf, size_t n, const struct rn_ope_ci *c, int defined)
{
    if (!defined)
        snprintf(buf, n, "%-26s", "undefined (no match)");
    else
        snprintf(buf, n, "%.5f [%.5f, %.5f]", c->est, c->lo, c->hi);
}

int rn_evaluate_main(int argc, char **argv)
{
    struct rn_ope_opts o = {.bootstrap = 1000, .seed = 1, .history = 10, .half_life_ms = 1800000};
    const char *data = NULL;
    const char **pols = calloc((size_t)argc + 2, sizeof *pols);
    size_t n_pol = 0;
    int json = 0, rc = 2;
    double v;
    if (!pols) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            rn_ope_usage(stdout);
            rc = 0;
            goto out;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        static const char *const with_value[] = {
            "--data",    "--policy",       "--train-fraction", "--bootstrap",
            "--seed",    "--epsilon",      "--embeddings",     "--candidates",
            "--history", "--half-life-ms", "--state-network", "--context", NULL};
        int known = 0;
        for (int k = 0; with_value[k]; k++)
            known |= strcmp(a, with_value[k]) == 0;
        if (!known) {
            fprintf(stderr, "runnel evaluate: %s '%s'\n",
                    a[0] == '-' ? "unknown option" : "unexpected argument", a);
            goto usage;
        }
        if (!val) {
            fprintf(stderr, "runnel evaluate: %s needs a value\n", a);
            goto usage;
        }
        i++;
        if (strcmp(a, "--data") == 0) {
            data = val;
        } else if (strcmp(a, "--policy") == 0) {
            pols[n_pol++] = val;
        } else if (strcmp(a, "--train-fraction") == 0) {
            if (rn_ope_num(a, val, 0, 0.99, &o.train_fraction)) goto usage;
        } else if (strcmp(a, "--bootstrap") == 0) {
            if (rn_ope_num(a, val, 0, 1e6, &v) || v != floor(v)) goto usage;
            o.bootstrap = (uint32_t)v;
        } else if (strcmp(a, "--seed") == 0) {
            if (rn_ope_num(a, val, 0, 1.8e19, &v) || v != floor(v)) goto usage;
            o.seed = (uint64_t)v;
        } else if (strcmp(a, "--epsilon") == 0) {
            if (rn_ope_num(a, val, 0, 1, &o.epsilon)) goto usage;
        } else if (strcmp(a, "--embeddings") == 0) {
            o.embeddings = val;
        } else if (strcmp(a, "--candidates") == 0) {
            if (strcmp(val, "auto") == 0)
                o.candidates = RN_OPE_CANDS_AUTO;
            else if (strcmp(val, "catalogue") == 0)
                o.candidates = RN_OPE_CANDS_CATALOGUE;
            else if (strcmp(val, "list") == 0)
                o.candidates = RN_OPE_CANDS_LIST;
            else {
                fprintf(stderr, "runnel evaluate: --candidates '%s': auto, catalogue or list\n",
                        val);
                goto usage;
            }
        } else if (strcmp(a, "--history") == 0) {
            if (rn_ope_num(a, val, 1, 1e6, &v) || v != floor(v)) goto usage;
            o.history = (uint32_t)v;
        } else if (strcmp(a, "--half-life-ms") == 0) {
            if (rn_ope_num(a, val, 1, 1e15, &o.half_life_ms)) goto usage;
        } else if (strcmp(a, "--state-network") == 0) {
            o.state_network = val;
        } else if (strcmp(a, "--context") == 0) {
            o.context = val;
        }
    }
    if (!data) {
        fprintf(stderr, "runnel evaluate: --data PATH is required\n");
        goto usage;
    }
    if (n_pol == 0) {
        pols[n_pol++] = "logging";
        pols[n_pol++] = "random";
    }
    char err[1024] = "";
    struct rn_ope_data *d = rn_ope_load(data, err, sizeof err);
    if (!d) {
        fprintf(stderr, "runnel evaluate: %s\n", err);
        rc = 1;
        goto out;
    }
    size_t cut = (size_t)floor(o.train_fraction * (double)d->n_lists);
    if (cut >= d->n_lists) cut = d->n_lists - 1;
    double rsum = 0;
    size_t eslots = 0;
    for (size_t l = cut; l < d->n_lists; l++)
        for (uint32_t i = 0; i < d->lists[l].n; i++, eslots++)
            rsum += d->slots[d->lists[l].first + i].reward;
    int cands = o.candidates == RN_OPE_CANDS_AUTO
                    ? (d->max_list <= 1 ? RN_OPE_CANDS_CATALOGUE : RN_OPE_CANDS_LIST)
                    : o.candidates;
    struct rn_buf b = RN_BUF_INIT;
    if (json) {
        RN_BUF_LIT(&b, "{\"data\":");
        rn_json_str(&b, data, strlen(data));
        rn_buf_printf(&b,
                      ",\"lists\":%zu,\"slots\":%zu,\"items\":%zu,\"eval_lists\":%zu,"
                      "\"eval_slots\":%zu,\"eval_reward_sum\":",
                      d->n_lists, d->n_slots, d->items.n, d->n_lists - cut, eslots);
        rn_json_f64(&b, rsum);
        RN_BUF_LIT(&b, ",\"train_fraction\":");
        rn_json_f64(&b, o.train_fraction);
        rn_buf_printf(&b,
                      ",\"reward_model\":\"%s\",\"candidates\":\"%s\",\"bootstrap\":%u,\"seed\":%"
                      "llu,\"policies\":[",
                      cut > 0 ? "fit on the first part" : "cross-fitted (2 folds)",
                      cands == RN_OPE_CANDS_CATALOGUE ? "catalogue" : "list", o.bootstrap,
                      (unsigned long long)o.seed);
    } else {
        rn_buf_printf(&b, "data: %s: %zu lists, %zu slots, %zu items\n", data, d->n_lists,
                      d->n_slots, d->items.n);
        rn_buf_printf(&b,
                      "evaluated: the last %zu lists by time (%zu slots, reward sum %g); "
                      "reward model %s\n",
                      d->n_lists - cut, eslots, rsum,
                      cut > 0 ? "fit on the first part" : "cross-fitted (2 folds)");
        rn_buf_printf(&b,
                      "candidates: %s; bootstrap: %u resamples of lists, seed %llu, "
                      "95%% percentile intervals\n\n",
                      cands == RN_OPE_CANDS_CATALOGUE ? "catalogue of the position"
                                                      : "the list's shown items",
                      o.bootstrap, (unsigned long long)o.seed);
        rn_buf_printf(&b, "%-24s %8s %8s  %-26s  %-26s  %-26s  %9s\n", "policy", "n", "matched",
                      "IPS [95% CI]", "SNIPS [95% CI]", "DR [95% CI]", "ESS");
    }
    rc = 0;
    for (size_t p = 0; p < n_pol; p++) {
        struct rn_ope_result r;
        char *desc = NULL;
        if (rn_ope_evaluate(d, pols[p], &o, &r, &desc, err, sizeof err)) {
            fprintf(stderr, "runnel evaluate: %s\n", err);
            rc = 1;
            continue;
        }
        if (json) {
            if (b.data[b.len - 1] != '[') rn_buf_putc(&b, ',');
            RN_BUF_LIT(&b, "{\"policy\":");
            rn_json_str(&b, desc, strlen(desc));
            rn_buf_printf(&b, ",\"n\":%zu,\"lists\":%zu,\"matched\":%zu,\"mean_reward\":", r.n,
                          r.groups, r.matched);
            rn_json_f64(&b, r.mean_r);
            rn_ope_json_ci(&b, "ips", &r.ips, 1);
            rn_ope_json_ci(&b, "snips", &r.snips, r.snips_defined);
            rn_ope_json_ci(&b, "dr", &r.dr, 1);
            RN_BUF_LIT(&b, ",\"ess\":");
            rn_json_f64(&b, r.ess);
            RN_BUF_LIT(&b, ",\"max_weight\":");
            rn_json_f64(&b, r.max_w);
            rn_buf_putc(&b, '}');
        } else {
            char c1[64], c2[64], c3[64];
            rn_ope_fmt_ci(c1, sizeof c1, &r.ips, 1);
            rn_ope_fmt_ci(c2, sizeof c2, &r.snips, r.snips_defined);
            rn_ope_fmt_ci(c3, sizeof c3, &r.dr, 1);
            rn_buf_printf(&b, "%-24s %8zu %8zu  %-26s  %-26s  %-26s  %9.1f\n", desc, r.n, r.matched,
                          c1, c2, c3, r.ess);
        }
        free(desc);
    }
    if (json) RN_BUF_LIT(&b, "]}\n");
    fwrite(b.data, 1, b.len, stdout);
    rn_buf_free(&b);
    rn_ope_data_free(d);
out:
    free(pols);
    return rc;
usage:
    rn_ope_usage(stderr);
    rc = 2;
    goto out;
}
