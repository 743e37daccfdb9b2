/*
 * rn_statenet.c — the state network φ(s) (rn_statenet.h): a single-layer 1-D
 * CNN over the user's last k item embeddings, in the spirit of Meituan's
 * "guess you like" state representation, plus the hand-written gradient
 * that `runnel pretrain` trains it with.
 *
 * The history matrix X is k x D, oldest row first, zero rows at the front
 * when the user has fewer than k items. Conv m (width w, C filters) at time t
 * (0 <= t <= k - w) is
 *
 *   y_m[c, t] = b_m[c] + Σ_{j<w, d<D} W_m[c, j, d] X[t + j, d]
 *
 * and since the window X[t .. t+w) is contiguous in row-major memory, each t
 * is one gemv of W_m (C x wD) with a slice of X. Zero padding is never
 * materialised: a window that starts in the padding uses only its columns
 * past the padded rows, which is the same sum. Pooling is
 * p_m[c] = max_t ReLU(y_m[c, t]) = ReLU(max_t y_m[c, t]), so the argmax alone
 * carries the gradient. Then z = [p1 | p2 | ctx | longterm] and
 * φ = tanh(Wd z + bd), one more gemv.
 *
 * Parameters live in one array (conv1.weight | conv1.bias | conv2.weight |
 * conv2.bias | dense.weight | dense.bias) so the trainer's optimiser treats
 * them as one vector. After load the network is read-only; forward keeps its
 * scratch on the caller's stack, so any number of threads may share one.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "rn_model.h"
#include "rn_statenet_int.h"

/* ---- shape and lifecycle ---------------------------------------------------------- */

struct rn_statenet *rn__statenet_create(uint32_t k, uint32_t D, uint32_t C, uint32_t w1,
                                        uint32_t w2, uint32_t n_ctx, uint32_t S, char *errbuf,
                                        size_t errlen)
{
    if (!k || !D || !C || !w1 || !w2 || !S) {
        rn_errf(errbuf, errlen,
                "state network: history, dim, filters, widths and output size "
                "must be positive");
        return NULL;
    }
    if (k < w1 || k < w2) {
        rn_errf(errbuf, errlen,
                "state network: history %u is shorter than a convolution (widths "
                "%u and %u)",
                k, w1, w2);
        return NULL;
    }
    uint64_t Z = 2ull * C + n_ctx + D;
    if (C + Z + S > RN_SN_MAX_SCRATCH || (uint64_t)w1 * D > RN_SN_MAX_SCRATCH ||
        (uint64_t)w2 * D > RN_SN_MAX_SCRATCH || k > 4096) {
        rn_errf(errbuf, errlen,
                "state network: too large (filters %u, dense input %llu, output "
                "%u, history %u)",
                C, (unsigned long long)Z, S, k);
        return NULL;
    }
    struct rn_statenet *n = rn_xcalloc(1, sizeof *n);
    n->k = k, n->D = D, n->C = C, n->w1 = w1, n->w2 = w2, n->n_ctx = n_ctx, n->S = S;
    n->Z = (uint32_t)Z;
    n->half_life_ms = RN_SN_HALF_LIFE_MS;
    size_t at = 0;
    n->at.W1 = at, at += (size_t)C * w1 * D;
    n->at.b1 = at, at += C;
    n->at.W2 = at, at += (size_t)C * w2 * D;
    n->at.b2 = at, at += C;
    n->at.Wd = at, at += (size_t)S * n->Z;
    n->at.bd = at, at += S;
    n->at.n = at;
    n->params = rn_xcalloc(at, sizeof(float));
    return n;
}

void rn_statenet_destroy(struct rn_statenet *n)
{
    if (!n) return;
    free(n->params);
    free(n);
}

uint32_t rn_statenet_out_dim(const struct rn_statenet *n)
{
    return n->S;
}

uint32_t rn_statenet_history(const struct rn_statenet *n)
{
    return n->k;
}

uint32_t rn_statenet_dim(const struct rn_statenet *n)
{
    return n->D;
}

uint32_t rn_statenet_context(const struct rn_statenet *n)
{
    return n->n_ctx;
}

double rn_statenet_half_life_ms(const struct rn_statenet *n)
{
    return n->half_life_ms;
}

/* ---- files ---------------------------------------------------------------------------- */

static int rn__sn_meta_u32(const struct rn_st_file *f, const char *key, const char *path,
                           uint32_t *out, char *errbuf, size_t errlen)
{
    const char *v = rn_st_meta(f, key);
    char *end;
    errno = 0;
    unsigned long x = v ? strtoul(v, &end, 10) : 0;
    if (!v || !v[0] || *end || errno || x > 1000000 || v[0] == '-') {
        rn_errf(errbuf, errlen, "%s: state network: metadata '%s' %s", path, key,
                v ? "is not a small non-negative integer" : "is missing");
        return RN_ECORRUPT;
    }
    *out = (uint32_t)x;
    return 0;
}

/* The tensor `name` with exactly the shape given (ndim dims of want), or
 * NULL with a message saying what is wrong with it. */
static const struct rn_tensor *rn__sn_tensor(const struct rn_st_file *f, const char *path,
                                             const char *name, uint32_t ndim, const uint64_t *want,
                                             char *errbuf, size_t errlen)
{
    const struct rn_tensor *t = rn_st_find(f, name);
    if (!t) {
        rn_errf(errbuf, errlen, "%s: state network: tensor '%s' is missing", path, name);
        return NULL;
    }
    int ok = t->ndim == ndim;
    for (uint32_t i = 0; ok && i < ndim; i++)
        ok = t->shape[i] == want[i];
    if (!ok) {
        char got[96] = "", exp[96] = "";
        size_t g = 0, e = 0;
        for (uint32_t i = 0; i < t->ndim && g < sizeof got; i++)
            g += (size_t)snprintf(got + g, sizeof got - g, "%s%llu", i ? ", " : "",
                                  (unsigned long long)t->shape[i]);
        for (uint32_t i = 0; i < ndim && e < sizeof exp; i++)
            e += (size_t)snprintf(exp + e, sizeof exp - e, "%s%llu", i ? ", " : "",
                                  (unsigned long long)want[i]);
        rn_errf(errbuf, errlen, "%s: state network: tensor '%s' has shape [%s], expected [%s]",
                path, name, got, exp);
        return NULL;
    }
    return t;
}

struct rn_statenet *rn_statenet_load(const char *path, char *errbuf, size_t errlen)
{
    struct rn_st_file *f = rn_st_read(path, errbuf, errlen);
    if (!f) return NULL;
    struct rn_statenet *n = NULL;
    uint32_t k, D, n_ctx;
    if (rn__sn_meta_u32(f, "history", path, &k, errbuf, errlen) ||
        rn__sn_meta_u32(f, "dim", path, &D, errbuf, errlen) ||
        rn__sn_meta_u32(f, "context", path, &n_ctx, errbuf, errlen))
        goto fail;
    /* C, the widths and S come from the tensors; check those first. */
    const struct rn_tensor *c1 = rn_st_find(f, "conv1.weight");
    const struct rn_tensor *c2 = rn_st_find(f, "conv2.weight");
    const struct rn_tensor *dw = rn_st_find(f, "dense.weight");
    const char *bad = !c1 ? "conv1.weight" : !c2 ? "conv2.weight" : !dw ? "dense.weight" : NULL;
    if (bad) {
        rn_errf(errbuf, errlen, "%s: state network: tensor '%s' is missing", path, bad);
        goto fail;
    }
    const char *rank = c1->ndim != 3   ? "conv1.weight"
                       : c2->ndim != 3 ? "conv2.weight"
                       : dw->ndim != 2 ? "dense.weight"
                                       : NULL;
    if (rank) {
        rn_errf(errbuf, errlen, "%s: state network: tensor '%s' has %u dimensions, expected %d",
                path, rank, rn_st_find(f, rank)->ndim, strcmp(rank, "dense.weight") ? 3 : 2);
        goto fail;
    }
    if (c1->shape[0] > UINT32_MAX || c1->shape[1] > UINT32_MAX || c2->shape[1] > UINT32_MAX ||
        dw->shape[0] > UINT32_MAX) {
        rn_errf(errbuf, errlen, "%s: state network: tensor shapes too large", path);
        goto fail;
    }
    uint32_t C = (uint32_t)c1->shape[0], w1 = (uint32_t)c1->shape[1];
    uint32_t w2 = (uint32_t)c2->shape[1], S = (uint32_t)dw->shape[0];
    uint64_t Z = 2ull * C + n_ctx + D;
    const uint64_t s_c1[] = {C, w1, D}, s_c2[] = {C, w2, D}, s_b[] = {C}, s_dw[] = {S, Z},
                   s_db[] = {S};
    const struct rn_tensor *t_c1 = rn__sn_tensor(f, path, "conv1.weight", 3, s_c1, errbuf, errlen);
    const struct rn_tensor *t_b1 =
        t_c1 ? rn__sn_tensor(f, path, "conv1.bias", 1, s_b, errbuf, errlen) : NULL;
    const struct rn_tensor *t_c2 =
        t_b1 ? rn__sn_tensor(f, path, "conv2.weight", 3, s_c2, errbuf, errlen) : NULL;
    const struct rn_tensor *t_b2 =
        t_c2 ? rn__sn_tensor(f, path, "conv2.bias", 1, s_b, errbuf, errlen) : NULL;
    const struct rn_tensor *t_dw =
        t_b2 ? rn__sn_tensor(f, path, "dense.weight", 2, s_dw, errbuf, errlen) : NULL;
    const struct rn_tensor *t_db =
        t_dw ? rn__sn_tensor(f, path, "dense.bias", 1, s_db, errbuf, errlen) : NULL;
    if (!t_db) goto fail;
    char cerr[256];
    n = rn__statenet_create(k, D, C, w1, w2, n_ctx, S, cerr, sizeof cerr);
    if (!n) {
        rn_errf(errbuf, errlen, "%s: %s", path, cerr);
        goto fail;
    }
    memcpy(n->params + n->at.W1, t_c1->data, (size_t)C * w1 * D * sizeof(float));
    memcpy(n->params + n->at.b1, t_b1->data, C * sizeof(float));
    memcpy(n->params + n->at.W2, t_c2->data, (size_t)C * w2 * D * sizeof(float));
    memcpy(n->params + n->at.b2, t_b2->data, C * sizeof(float));
    memcpy(n->params + n->at.Wd, t_dw->data, (size_t)S * Z * sizeof(float));
    memcpy(n->params + n->at.bd, t_db->data, S * sizeof(float));
    const char *hl = rn_st_meta(f, "half_life_ms");
    if (hl) {
        char *end;
        double x = strtod(hl, &end);
        if (!hl[0] || *end || !(x > 0 && x < 1e18)) {
            rn_errf(errbuf, errlen,
                    "%s: state network: metadata 'half_life_ms' is not a positive number", path);
            rn_statenet_destroy(n);
            n = NULL;
            goto fail;
        }
        n->half_life_ms = x;
    }
    for (size_t i = 0; i < n->at.n; i++)
        if (!isfinite(n->params[i])) {
            rn_errf(errbuf, errlen, "%s: state network: a parameter is not finite", path);
            rn_statenet_destroy(n);
            n = NULL;
            goto fail;
        }
    rn_st_free(f);
    return n;

fail:
    rn_st_free(f);
    return NULL;
}

int rn__statenet_write(const char *path, const struct rn_statenet *n, const float *P,
                       const char *const *meta_keys, const char *const *meta_vals, size_t n_meta,
                       char *errbuf, size_t errlen)
{
    struct rn_tensor t[7] = {
        {"conv1.weight", 3, {n->C, n->w1, n->D}, n->params + n->at.W1},
        {"conv1.bias", 1, {n->C}, n->params + n->at.b1},
        {"conv2.weight", 3, {n->C, n->w2, n->D}, n->params + n->at.W2},
        {"conv2.bias", 1, {n->C}, n->params + n->at.b2},
        {"dense.weight", 2, {n->S, n->Z}, n->params + n->at.Wd},
        {"dense.bias", 1, {n->S}, n->params + n->at.bd},
        {"proj.weight", 2, {n->S, n->D}, (float *)P},
    };
    char hist[16], dim[16], ctx[16];
    snprintf(hist, sizeof hist, "%u", n->k);
    snprintf(dim, sizeof dim, "%u", n->D);
    snprintf(ctx, sizeof ctx, "%u", n->n_ctx);
    size_t nm = 3 + n_meta;
    const char **mk = rn_xcalloc(nm, sizeof *mk), **mv = rn_xcalloc(nm, sizeof *mv);
    mk[0] = "history", mv[0] = hist;
    mk[1] = "dim", mv[1] = dim;
    mk[2] = "context", mv[2] = ctx;
    for (size_t i = 0; i < n_meta; i++)
        mk[3 + i] = meta_keys[i], mv[3 + i] = meta_vals[i];
    int rc = rn_st_write(path, t, P ? 7 : 6, mk, mv, nm, errbuf, errlen);
    free(mk);
    free(mv);
    return rc;
}

/* ---- forward ---------------------------------------------------------------------------- */

/* One convolution with max-pooling: pool[c] = ReLU(max_t y[c, t]) and
 * arg[c] = the first t reaching the max. X is the last n_used rows of the
 * history (n_used <= k), the k - n_used rows before them are zeros. y is C
 * floats of scratch. */
static void rn__sn_conv(const struct rn_statenet *n, const float *W, const float *b, uint32_t w,
                        const float *X, uint32_t n_used, float *pool, uint32_t *arg, float *y)
{
    const uint32_t C = n->C, D = n->D, pad = n->k - n_used;
    for (uint32_t t = 0; t + w <= n->k; t++) {
        uint32_t j0 = pad > t ? pad - t : 0;
        memcpy(y, b, C * sizeof(float));
        if (j0 < w)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)C, (int)((w - j0) * D), 1.0f,
                        W + (size_t)j0 * D, (int)(w * D), X + (size_t)(t + j0 - pad) * D, 1, 1.0f,
                        y, 1);
        for (uint32_t c = 0; c < C; c++)
            if (t == 0 || y[c] > pool[c]) pool[c] = y[c], arg[c] = t;
    }
    for (uint32_t c = 0; c < C; c++)
        if (pool[c] < 0) pool[c] = 0;
}

/* z (Z floats) and φ (S floats, in phi) for the inputs; the argmaxes into
 * arg1, arg2 (C each); y is C floats of scratch. Returns the rows used. */
static uint32_t rn__sn_forward(const struct rn_statenet *n, const float *H, uint32_t n_hist,
                               const float *longterm, const float *ctx, float *z, float *phi,
                               uint32_t *arg1, uint32_t *arg2, float *y)
{
    uint32_t n_used = RN_MIN(n_hist, n->k);
    const float *X = H ? H + (size_t)(n_hist - n_used) * n->D : NULL;
    const float *p = n->params;
    rn__sn_conv(n, p + n->at.W1, p + n->at.b1, n->w1, X, n_used, z, arg1, y);
    rn__sn_conv(n, p + n->at.W2, p + n->at.b2, n->w2, X, n_used, z + n->C, arg2, y);
    if (n->n_ctx) memcpy(z + 2 * n->C, ctx, n->n_ctx * sizeof(float));
    memcpy(z + 2 * n->C + n->n_ctx, longterm, n->D * sizeof(float));
    memcpy(phi, p + n->at.bd, n->S * sizeof(float));
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n->S, (int)n->Z, 1.0f, p + n->at.Wd, (int)n->Z, z,
                1, 1.0f, phi, 1);
    for (uint32_t s = 0; s < n->S; s++)
        phi[s] = tanhf(phi[s]);
    return n_used;
}

void rn_statenet_forward(const struct rn_statenet *n, const float *H, uint32_t n_hist,
                         const float *longterm, const float *ctx, float *out)
{
    /* Scratch on this thread's stack: y (C), z (Z); create() bounds C + Z + S. */
    float buf[RN_SN_MAX_SCRATCH];
    uint32_t args[2 * (RN_SN_MAX_SCRATCH / 2)];
    float *y = buf, *z = buf + n->C;
    rn__sn_forward(n, H, n_hist, longterm, ctx, z, out, args, args + n->C, y);
}

/* ---- the inputs from a history ------------------------------------------------------------ */

void rn__sn_longterm_init(struct rn__sn_longterm *lt, uint32_t D, double half_life_ms, double *sum)
{
    *lt = (struct rn__sn_longterm){.sum = sum, .half_life_ms = half_life_ms, .D = D};
    memset(sum, 0, D * sizeof *sum);
}

void rn__sn_longterm_decay(struct rn__sn_longterm *lt, int64_t ts)
{
    if (!lt->started) {
        lt->started = 1;
        lt->last_ts = ts;
    }
    double f = exp2(-(double)(ts - lt->last_ts) / lt->half_life_ms);
    lt->weight *= f;
    for (uint32_t j = 0; j < lt->D; j++)
        lt->sum[j] *= f;
    lt->last_ts = ts;
}

void rn__sn_longterm_add(struct rn__sn_longterm *lt, const float *e)
{
    lt->weight += 1;
    for (uint32_t j = 0; j < lt->D; j++)
        lt->sum[j] += e[j];
}

void rn__sn_inputs(const struct rn__sn_longterm *lt, uint32_t k, const float *const *last,
                   uint32_t n_last, int64_t now, float *H, float *longterm, float *ctx)
{
    const uint32_t D = lt->D;
    assert(n_last <= k);
    for (uint32_t r = 0; r < n_last; r++)
        memcpy(H + (size_t)r * D, last[r], D * sizeof(float));
    for (uint32_t j = 0; j < D; j++)
        longterm[j] = lt->weight > 0 ? (float)(lt->sum[j] / lt->weight) : 0.0f;
    int64_t hour = ((now / 3600000) % 24 + 24) % 24;
    ctx[0] = (float)sin(2 * M_PI * (double)hour / 24);
    ctx[1] = (float)cos(2 * M_PI * (double)hour / 24);
    ctx[2] = (float)n_last / (float)k;
}

/* ---- the next-click loss and its gradient ----------------------------------------------- */

/* Adds the gradient of one convolution: only the argmax window of a filter
 * whose max was positive carries g[c]. */
static void rn__sn_conv_back(const struct rn_statenet *n, uint32_t w, const float *X,
                             uint32_t n_used, const float *pool, const uint32_t *arg,
                             const float *g, float *dW, float *db)
{
    const uint32_t D = n->D, pad = n->k - n_used;
    for (uint32_t c = 0; c < n->C; c++) {
        if (pool[c] <= 0 || g[c] == 0) continue;
        db[c] += g[c];
        for (uint32_t j = 0; j < w; j++) {
            uint32_t row = arg[c] + j;
            if (row < pad) continue;
            cblas_saxpy((int)D, g[c], X + (size_t)(row - pad) * D, 1, dW + ((size_t)c * w + j) * D,
                        1);
        }
    }
}

double rn__statenet_loss(const struct rn_statenet *n, const float *P,
                         const struct rn__sn_example *ex, float *grad, float *grad_P, float *scores)
{
    const uint32_t C = n->C, D = n->D, S = n->S, Z = n->Z, m = ex->m;
    /* Scratch: y C | z Z | phi S | u S | s m | q D | da S | dz Z; args 2C. */
    size_t nf = (size_t)C + Z + S + S + m + D + S + Z;
    float *buf = rn_xmalloc(nf * sizeof(float));
    uint32_t *args = rn_xmalloc(2 * (size_t)C * sizeof(uint32_t));
    float *y = buf, *z = y + C, *phi = z + Z, *u = phi + S, *s = u + S, *q = s + m, *da = q + D,
          *dz = da + S;
    uint32_t n_used =
        rn__sn_forward(n, ex->H, ex->n_hist, ex->longterm, ex->ctx, z, phi, args, args + C, y);

    /* s = E (Pᵀ φ): u = Pᵀφ (D), then s = E u. */
    float *v = q; /* Pᵀφ, D floats; q is reused below once s is known */
    cblas_sgemv(CblasRowMajor, CblasTrans, (int)S, (int)D, 1.0f, P, (int)D, phi, 1, 0.0f, v, 1);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)D, 1.0f, ex->E, (int)D, v, 1, 0.0f, s, 1);
    if (scores) memcpy(scores, s, m * sizeof(float));
    double mx = -INFINITY, sum = 0, loss = 0;
    for (uint32_t i = 0; i < m; i++)
        mx = RN_MAX(mx, (double)s[i]);
    for (uint32_t i = 0; i < m; i++)
        sum += exp((double)s[i] - mx);
    /* The largest term is exp(0) = 1, so sum >= 1 whenever m >= 1. */
    /* cppcheck-suppress invalidFunctionArg */
    double lse = mx + log(sum);
    for (uint32_t i = 0; i < m; i++)
        if (ex->y[i] > 0) loss -= ex->y[i] * ((double)s[i] - lse);
    if (!grad) goto done;

    /* ds_i = softmax_i − y_i; q = Eᵀ ds; dP = φ qᵀ; dφ = P q. */
    double ysum = 0;
    for (uint32_t i = 0; i < m; i++)
        ysum += ex->y[i];
    for (uint32_t i = 0; i < m; i++)
        s[i] = (float)(ysum * exp((double)s[i] - lse) - ex->y[i]); /* now ds */
    cblas_sgemv(CblasRowMajor, CblasTrans, (int)m, (int)D, 1.0f, ex->E, (int)D, s, 1, 0.0f, q, 1);
    cblas_sger(CblasRowMajor, (int)S, (int)D, 1.0f, phi, 1, q, 1, grad_P, (int)D);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)S, (int)D, 1.0f, P, (int)D, q, 1, 0.0f, u, 1);
    /* Through tanh: da = dφ (1 − φ²); dWd += da zᵀ; dbd += da; dz = Wdᵀ da. */
    for (uint32_t k = 0; k < S; k++)
        da[k] = u[k] * (1.0f - phi[k] * phi[k]);
    cblas_sger(CblasRowMajor, (int)S, (int)Z, 1.0f, da, 1, z, 1, grad + n->at.Wd, (int)Z);
    cblas_saxpy((int)S, 1.0f, da, 1, grad + n->at.bd, 1);
    cblas_sgemv(CblasRowMajor, CblasTrans, (int)S, (int)Z, 1.0f, n->params + n->at.Wd, (int)Z, da,
                1, 0.0f, dz, 1);
    /* Through pooling and ReLU into both convolutions (the inputs are fixed). */
    const float *X = ex->H ? ex->H + (size_t)(ex->n_hist - n_used) * D : NULL;
    rn__sn_conv_back(n, n->w1, X, n_used, z, args, dz, grad + n->at.W1, grad + n->at.b1);
    rn__sn_conv_back(n, n->w2, X, n_used, z + C, args + C, dz + C, grad + n->at.W2,
                     grad + n->at.b2);
done:
    free(args);
    free(buf);
    return loss;
}
