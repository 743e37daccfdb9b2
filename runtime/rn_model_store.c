/*
 * rn_model_store.c — models as safetensors files, and the model store: a
 * directory of immutable, numbered versions (include/runnel/rn_model.h).
 *
 *   DIR/v000000000042.safetensors   tensors v, W, w, b, c + metadata
 *   DIR/v000000000042.json          manifest: the version exists once this does
 *   DIR/PINNED                      optional: the id to serve instead of the newest
 *
 * Writers (the learner) publish by writing the model file atomically, then the
 * manifest atomically; readers (inference, the simulator, `runnel models`)
 * list manifests. Nothing is ever rewritten in place, so a reader that opened
 * a version keeps reading a consistent file. A version published again with
 * the same id (a learner replaying after a restore) replaces its files with
 * the same bytes in deterministic mode.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "rn_fs_int.h"
#include "rn_model.h"

#define RN_MODEL_FORMAT_Q "runnel-dueling-q/1"
#define RN_MODEL_FORMAT_ACTOR "runnel-actor/1"

/* ---- model files -----------------------------------------------------------------
 * One entry per model kind (rn_model.h, enum rn_model_kind): the `format`
 * metadata that names it, and how its tensors are written and read. Readers
 * dispatch on `format`; a new kind is a new row. */

struct rn__kind {
    const char *format;
    /* Writes the file `path`, or with out != NULL appends its bytes to out
     * (a model topic's message; `path` then names it in messages). */
    int (*write)(const char *path, struct rn_buf *out, const struct rn_model *m,
                 const char *const *keys, const char *const *vals, size_t n, char *errbuf,
                 size_t errlen);
    struct rn_model *(*from_st)(const struct rn_st_file *f, const char *path, char *errbuf,
                                size_t errlen);
};

/* The tensor `name` with ndim dimensions, or NULL with a message; `required`
 * 0 lets it be absent (NULL, no message). */
static const struct rn_tensor *rn__tensor(const struct rn_st_file *f, const char *path,
                                          const char *name, uint32_t ndim, int required,
                                          const char *what, char *errbuf, size_t errlen)
{
    const struct rn_tensor *t = rn_st_find(f, name);
    if (!t) {
        if (required) rn_errf(errbuf, errlen, "%s: no tensor '%s' (%s)", path, name, what);
        return NULL;
    }
    if (t->ndim != ndim) {
        rn_errf(errbuf, errlen, "%s: tensor '%s' has %u dimensions, expected %u", path, name,
                t->ndim, ndim);
        return NULL;
    }
    return t;
}

/* Writes the tensors with `format` first, then the caller's metadata: to the
 * file `path`, or with out != NULL into out. */
static int rn__write_kind(const char *path, struct rn_buf *out, const struct rn_tensor *t, size_t nt,
                          const char *const *fixed_keys, const char *const *fixed_vals,
                          size_t n_fixed, const char *const *meta_keys,
                          const char *const *meta_vals, size_t n_meta, char *errbuf, size_t errlen)
{
    const char *keys[40], *vals[40];
    size_t nk = 0;
    for (size_t i = 0; i < n_fixed; i++) {
        keys[nk] = fixed_keys[i];
        vals[nk++] = fixed_vals[i];
    }
    for (size_t i = 0; i < n_meta && nk < RN_ARRAY_LEN(keys); i++) {
        keys[nk] = meta_keys[i];
        vals[nk++] = meta_vals[i];
    }
    if (out) return rn_st_encode(t, nt, keys, vals, nk, path, out, errbuf, errlen);
    return rn_st_write(path, t, nt, keys, vals, nk, errbuf, errlen);
}

static int rn__q_write(const char *path, struct rn_buf *out, const struct rn_model *m,
                       const char *const *meta_keys, const char *const *meta_vals, size_t n_meta,
                       char *errbuf, size_t errlen)
{
    const struct rn_model_shape *s = &m->shape;
    struct rn_tensor t[5] = {
        {"v", 1, {s->phi}, m->params + m->at.v},
        {"W", 2, {s->dim, s->phi}, m->params + m->at.W},
        {"w", 1, {s->dim}, m->params + m->at.w},
        {"b", 1, {s->buckets}, m->params + m->at.b},
        {"c", 1, {s->positions}, m->params + m->at.c},
    };
    const char *k[] = {"format"}, *v[] = {RN_MODEL_FORMAT_Q};
    return rn__write_kind(path, out, t, 5, k, v, 1, meta_keys, meta_vals, n_meta, errbuf, errlen);
}

static struct rn_model *rn__q_from_st(const struct rn_st_file *f, const char *path, char *errbuf,
                                      size_t errlen)
{
    static const char *const names[5] = {"v", "W", "w", "b", "c"};
    const struct rn_tensor *t[5];
    for (int i = 0; i < 5; i++) {
        t[i] = rn__tensor(f, path, names[i], i == 1 ? 2u : 1u, 1,
                          "a dueling-Q model has v, W, w, b, c", errbuf, errlen);
        if (!t[i]) return NULL;
    }
    struct rn_model_shape s = {.dim = (uint32_t)t[2]->shape[0],
                               .phi = (uint32_t)t[0]->shape[0],
                               .buckets = (uint32_t)t[3]->shape[0],
                               .positions = (uint32_t)t[4]->shape[0]};
    if (t[1]->shape[0] != s.dim || t[1]->shape[1] != s.phi) {
        rn_errf(errbuf, errlen, "%s: tensor 'W' is [%" PRIu64 ", %" PRIu64 "], expected [%u, %u]",
                path, t[1]->shape[0], t[1]->shape[1], s.dim, s.phi);
        return NULL;
    }
    struct rn_model *m = rn_model_create(&s);
    if (!m) {
        rn_errf(errbuf, errlen, "%s: model shape out of range", path);
        return NULL;
    }
    memcpy(m->params + m->at.v, t[0]->data, s.phi * sizeof(float));
    memcpy(m->params + m->at.W, t[1]->data, (size_t)s.dim * s.phi * sizeof(float));
    memcpy(m->params + m->at.w, t[2]->data, s.dim * sizeof(float));
    memcpy(m->params + m->at.b, t[3]->data, s.buckets * sizeof(float));
    memcpy(m->params + m->at.c, t[4]->data, s.positions * sizeof(float));
    return m;
}

static int rn__actor_write(const char *path, struct rn_buf *out, const struct rn_model *m,
                           const char *const *meta_keys, const char *const *meta_vals,
                           size_t n_meta, char *errbuf, size_t errlen)
{
    const struct rn_model_shape *s = &m->shape;
    struct rn_tensor t[5] = {
        {"actor.weight", 2, {s->dim, s->phi}, m->params + m->at.W},
        {"actor.bias", 1, {s->dim}, m->params + m->at.w},
        {"item_bias", 1, {s->buckets}, m->params + m->at.b},
        {"perturb.weight", 2, {s->dim, (uint64_t)s->phi + s->dim}, m->params + m->at.P},
        {"perturb.bias", 1, {s->dim}, m->params + m->at.p},
    };
    char scale[32], pscale[32];
    snprintf(scale, sizeof scale, "%.9g", s->scale != 0 ? (double)s->scale : 1.0);
    snprintf(pscale, sizeof pscale, "%.9g", (double)s->pscale);
    const char *k[] = {"format", "activation", "scale", "perturb_scale"};
    const char *v[] = {RN_MODEL_FORMAT_ACTOR, s->activation == RN_ACTOR_TANH ? "tanh" : "linear",
                       scale, pscale};
    return rn__write_kind(path, out, t, s->perturb ? 5 : 3, k, v, s->perturb ? 4 : 3, meta_keys,
                          meta_vals, n_meta, errbuf, errlen);
}

/* A decimal metadata value into *out (absent: *out unchanged). */
static int rn__meta_float(const struct rn_st_file *f, const char *path, const char *key, float *out,
                          char *errbuf, size_t errlen)
{
    const char *v = rn_st_meta(f, key);
    if (!v) return 0;
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x)) {
        rn_errf(errbuf, errlen, "%s: metadata '%s' is '%s', not a number", path, key, v);
        return RN_EINVAL;
    }
    *out = (float)x;
    return 0;
}

static struct rn_model *rn__actor_from_st(const struct rn_st_file *f, const char *path,
                                          char *errbuf, size_t errlen)
{
    static const char what[] = "an actor has actor.weight and actor.bias";
    const struct rn_tensor *W = rn__tensor(f, path, "actor.weight", 2, 1, what, errbuf, errlen);
    if (!W) return NULL;
    const struct rn_tensor *w = rn__tensor(f, path, "actor.bias", 1, 1, what, errbuf, errlen);
    if (!w) return NULL;
    errbuf[0] = 0;
    const struct rn_tensor *b = rn__tensor(f, path, "item_bias", 1, 0, what, errbuf, errlen);
    const struct rn_tensor *P = rn__tensor(f, path, "perturb.weight", 2, 0, what, errbuf, errlen);
    const struct rn_tensor *p = rn__tensor(f, path, "perturb.bias", 1, 0, what, errbuf, errlen);
    if (errbuf[0]) return NULL; /* present with the wrong rank */
    struct rn_model_shape s = {.dim = (uint32_t)W->shape[0],
                               .phi = (uint32_t)W->shape[1],
                               .buckets = b ? (uint32_t)b->shape[0] : 1u,
                               .positions = 0};
    s.kind = RN_MODEL_ACTOR;
    s.scale = 1.0f;
    s.perturb = P || p;
    const char *act = rn_st_meta(f, "activation");
    if (!act || strcmp(act, "linear") == 0) {
        s.activation = RN_ACTOR_LINEAR;
    } else if (strcmp(act, "tanh") == 0) {
        s.activation = RN_ACTOR_TANH;
    } else {
        rn_errf(errbuf, errlen, "%s: unknown activation '%s' (linear or tanh)", path, act);
        return NULL;
    }
    if (rn__meta_float(f, path, "scale", &s.scale, errbuf, errlen) ||
        rn__meta_float(f, path, "perturb_scale", &s.pscale, errbuf, errlen))
        return NULL;
    if (w->shape[0] != s.dim) {
        rn_errf(errbuf, errlen, "%s: tensor 'actor.bias' is [%" PRIu64 "], expected [%u]", path,
                w->shape[0], s.dim);
        return NULL;
    }
    if (s.perturb && (!P || !p || P->shape[0] != s.dim || P->shape[1] != (uint64_t)s.phi + s.dim ||
                      p->shape[0] != s.dim)) {
        rn_errf(errbuf, errlen,
                "%s: the perturbation layer needs 'perturb.weight' [%u, %u] and 'perturb.bias' "
                "[%u]",
                path, s.dim, s.phi + s.dim, s.dim);
        return NULL;
    }
    struct rn_model *m = rn_model_create(&s);
    if (!m) {
        rn_errf(errbuf, errlen, "%s: actor shape out of range", path);
        return NULL;
    }
    memcpy(m->params + m->at.W, W->data, (size_t)s.dim * s.phi * sizeof(float));
    memcpy(m->params + m->at.w, w->data, s.dim * sizeof(float));
    if (b) memcpy(m->params + m->at.b, b->data, s.buckets * sizeof(float));
    if (s.perturb) {
        memcpy(m->params + m->at.P, P->data, (size_t)s.dim * (s.phi + s.dim) * sizeof(float));
        memcpy(m->params + m->at.p, p->data, s.dim * sizeof(float));
    }
    return m;
}

static const struct rn__kind rn__kinds[] = {
    [RN_MODEL_DUELING_Q] = {RN_MODEL_FORMAT_Q, rn__q_write, rn__q_from_st},
    [RN_MODEL_ACTOR] = {RN_MODEL_FORMAT_ACTOR, rn__actor_write, rn__actor_from_st},
};

int rn_model_write(const char *path, const struct rn_model *m, const char *const *meta_keys,
                   const char *const *meta_vals, size_t n_meta, char *errbuf, size_t errlen)
{
    if (m->shape.kind >= RN_ARRAY_LEN(rn__kinds)) {
        rn_errf(errbuf, errlen, "%s: unknown model kind %u", path, m->shape.kind);
        return RN_EINVAL;
    }
    return rn__kinds[m->shape.kind].write(path, NULL, m, meta_keys, meta_vals, n_meta, errbuf,
                                          errlen);
}

struct rn_model *rn_model_from_st(const struct rn_st_file *f, const char *path, char *errbuf,
                                  size_t errlen)
{
    const char *format = rn_st_meta(f, "format");
    if (!format) return rn__q_from_st(f, path, errbuf, errlen); /* files before `format` */
    for (size_t k = 0; k < RN_ARRAY_LEN(rn__kinds); k++)
        if (strcmp(format, rn__kinds[k].format) == 0)
            return rn__kinds[k].from_st(f, path, errbuf, errlen);
    rn_errf(errbuf, errlen, "%s: unknown model format '%s' (runnel reads %s and %s)", path, format,
            RN_MODEL_FORMAT_Q, RN_MODEL_FORMAT_ACTOR);
    return NULL;
}

struct rn_model *rn_model_read(const char *path, char *errbuf, size_t errlen)
{
    struct rn_st_file *f = rn_st_read(path, errbuf, errlen);
    if (!f) return NULL;
    struct rn_model *m = rn_model_from_st(f, path, errbuf, errlen);
    rn_st_free(f);
    return m;
}

/* ---- versions as bytes (the model topic) ------------------------------------------------ */

int rn_model_encode(const struct rn_model *m, const struct rn_model_version *v,
                    struct rn_buf *out, char *errbuf, size_t errlen)
{
    char ids[32], created[32], et[32], upd[32], tr[32], loss[40], q[40];
    snprintf(ids, sizeof ids, "%" PRId64, v->id);
    snprintf(created, sizeof created, "%" PRId64, v->created_ms);
    snprintf(et, sizeof et, "%" PRId64, v->event_time);
    snprintf(upd, sizeof upd, "%" PRIu64, v->updates);
    snprintf(tr, sizeof tr, "%" PRIu64, v->transitions);
    snprintf(loss, sizeof loss, "%.17g", v->loss);
    snprintf(q, sizeof q, "%.17g", v->mean_q);
    const char *mk[] = {"version", "created_ms", "event_time", "updates",
                        "transitions", "loss", "mean_q"};
    const char *mv[] = {ids, created, et, upd, tr, loss, q};
    char where[48];
    snprintf(where, sizeof where, "model version %" PRId64, v->id);
    if (m->shape.kind >= RN_ARRAY_LEN(rn__kinds)) {
        rn_errf(errbuf, errlen, "%s: unknown model kind %u", where, m->shape.kind);
        return RN_EINVAL;
    }
    return rn__kinds[m->shape.kind].write(where, out, m, mk, mv, RN_ARRAY_LEN(mk), errbuf,
                                          errlen);
}

/* A metadata value as a number; NAN when missing or not a number. */
static double rn__meta_num(const struct rn_st_file *f, const char *key)
{
    const char *s = rn_st_meta(f, key);
    char *end;
    if (!s || !*s) return NAN;
    double d = strtod(s, &end);
    return *end ? NAN : d;
}

struct rn_model *rn_model_decode(const void *p, size_t n, const char *where,
                                 struct rn_model_version *v, char *errbuf, size_t errlen)
{
    char e[512];
    struct rn_st_file *f = rn_st_parse(p, n, e, sizeof e);
    if (!f) {
        rn_errf(errbuf, errlen, "%s: %s", where, e);
        return NULL;
    }
    struct rn_model *m = NULL;
    const char *fmt = rn_st_meta(f, "format");
    const char *id = rn_st_meta(f, "version");
    char *end = NULL;
    long long vid = id ? strtoll(id, &end, 10) : 0;
    if (!fmt)
        rn_errf(errbuf, errlen, "%s: metadata 'format' is '(none)', expected '%s' or '%s'", where,
                RN_MODEL_FORMAT_Q, RN_MODEL_FORMAT_ACTOR);
    else if (!id || !*id || *end || vid <= 0)
        rn_errf(errbuf, errlen, "%s: metadata 'version' is '%s', expected a positive integer",
                where, id ? id : "(none)");
    else
        m = rn_model_from_st(f, where, errbuf, errlen);
    if (m && v) {
        memset(v, 0, sizeof *v);
        v->id = vid;
        double d;
        if (!isnan(d = rn__meta_num(f, "created_ms"))) v->created_ms = (int64_t)d;
        if (!isnan(d = rn__meta_num(f, "event_time"))) v->event_time = (int64_t)d;
        if (!isnan(d = rn__meta_num(f, "updates"))) v->updates = (uint64_t)d;
        if (!isnan(d = rn__meta_num(f, "transitions"))) v->transitions = (uint64_t)d;
        v->loss = rn__meta_num(f, "loss");
        v->mean_q = rn__meta_num(f, "mean_q");
    }
    rn_st_free(f);
    return m;
}

/* ---- the store --------------------------------------------------------------------- */

void rn_store_path(const char *dir, int64_t id, const char *ext, char *buf, size_t len)
{
    snprintf(buf, len, "%s/v%012" PRId64 "%s", dir, id, ext);
}

int rn_store_publish(const char *dir, const struct rn_model *m, const struct rn_model_version *v,
                     char *errbuf, size_t errlen)
{
    char path[4096], ids[32], created[32], et[32], upd[32], tr[32];
    int rc = rn_fs_mkdirs(dir, errbuf, errlen);
    if (rc) return rc;
    snprintf(ids, sizeof ids, "%" PRId64, v->id);
    snprintf(created, sizeof created, "%" PRId64, v->created_ms);
    snprintf(et, sizeof et, "%" PRId64, v->event_time);
    snprintf(upd, sizeof upd, "%" PRIu64, v->updates);
    snprintf(tr, sizeof tr, "%" PRIu64, v->transitions);
    const char *keys[] = {"version", "created_ms", "event_time", "updates", "transitions"};
    const char *vals[] = {ids, created, et, upd, tr};
    rn_store_path(dir, v->id, ".safetensors", path, sizeof path);
    rc = rn_model_write(path, m, keys, vals, RN_ARRAY_LEN(keys), errbuf, errlen);
    if (rc) return rc;
    struct rn_buf j = RN_BUF_INIT;
    rn_buf_printf(&j,
                  "{\"id\":%" PRId64 ",\"created_ms\":%" PRId64 ",\"event_time\":%" PRId64
                  ",\"updates\":%" PRIu64 ",\"transitions\":%" PRIu64 ",\"loss\":",
                  v->id, v->created_ms, v->event_time, v->updates, v->transitions);
    rn_json_f64(&j, v->loss);
    rn_buf_puts(&j, ",\"mean_q\":");
    rn_json_f64(&j, v->mean_q);
    rn_buf_puts(&j, ",\"model\":");
    char file[64];
    snprintf(file, sizeof file, "v%012" PRId64 ".safetensors", v->id);
    rn_json_str(&j, file, strlen(file));
    rn_buf_puts(&j, "}\n");
    rn_store_path(dir, v->id, ".json", path, sizeof path);
    rc = rn_fs_write_atomic(path, j.data, j.len, errbuf, errlen);
    rn_buf_free(&j);
    return rc;
}

static int rn__version_cmp(const void *a, const void *b)
{
    const struct rn_model_version *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static double rn__num(yajl_val root, const char *key)
{
    const char *path[] = {key, NULL};
    yajl_val x = yajl_tree_get(root, path, yajl_t_number);
    return x ? YAJL_GET_DOUBLE(x) : 0;
}

static int64_t rn__int(yajl_val root, const char *key)
{
    const char *path[] = {key, NULL};
    yajl_val x = yajl_tree_get(root, path, yajl_t_number);
    return x && YAJL_IS_INTEGER(x) ? YAJL_GET_INTEGER(x) : -1;
}

int rn_store_list(const char *dir, struct rn_model_version **out, size_t *n, char *errbuf,
                  size_t errlen)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return 0; /* nothing published yet */
        rn_errf(errbuf, errlen, "cannot open model store '%s': %s", dir, strerror(errno));
        return RN_EIO;
    }
    size_t cap = 0;
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        size_t len = strlen(nm);
        if (nm[0] != 'v' || len != 18 || strcmp(nm + 13, ".json")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, nm);
        size_t flen;
        char *text = rn_fs_read_all(path, &flen);
        if (!text) continue; /* removed meanwhile */
        char perr[256];
        yajl_val root = yajl_tree_parse(text, perr, sizeof perr);
        free(text);
        if (!root || !YAJL_IS_OBJECT(root) || rn__int(root, "id") < 0) {
            yajl_tree_free(root);
            closedir(d);
            free(*out);
            *out = NULL;
            *n = 0;
            rn_errf(errbuf, errlen, "%s: not a model manifest", path);
            return RN_ECORRUPT;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = rn_xrealloc(*out, cap * sizeof **out);
        }
        struct rn_model_version *v = &(*out)[(*n)++];
        v->id = rn__int(root, "id");
        v->created_ms = rn__int(root, "created_ms");
        v->event_time = rn__int(root, "event_time");
        v->updates = (uint64_t)rn__int(root, "updates");
        v->transitions = (uint64_t)rn__int(root, "transitions");
        v->loss = rn__num(root, "loss");
        v->mean_q = rn__num(root, "mean_q");
        yajl_tree_free(root);
    }
    closedir(d);
    if (*n) qsort(*out, *n, sizeof **out, rn__version_cmp);
    return 0;
}

int rn_store_current(const char *dir, int64_t *id, char *errbuf, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/PINNED", dir);
    size_t len;
    char *pin = rn_fs_read_all(path, &len);
    if (pin) {
        char *end;
        long long v = strtoll(pin, &end, 10);
        int ok = end != pin && (*end == '\n' || *end == 0) && v >= 0;
        free(pin);
        if (!ok) {
            rn_errf(errbuf, errlen, "%s: not a version number", path);
            return RN_ECORRUPT;
        }
        *id = v;
        return 0;
    }
    /* The newest: the largest id among the manifests' names (no parsing: a
     * follower polls this often). */
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) {
            rn_errf(errbuf, errlen, "model store '%s' holds no version", dir);
            return RN_ENOENT;
        }
        rn_errf(errbuf, errlen, "cannot open model store '%s': %s", dir, strerror(errno));
        return RN_EIO;
    }
    int64_t best = -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (nm[0] != 'v' || strlen(nm) != 18 || strcmp(nm + 13, ".json")) continue;
        char *end;
        long long v = strtoll(nm + 1, &end, 10);
        if (end == nm + 13 && v > best) best = v;
    }
    closedir(d);
    if (best < 0) {
        rn_errf(errbuf, errlen, "model store '%s' holds no version", dir);
        return RN_ENOENT;
    }
    *id = best;
    return 0;
}

int rn_store_pin(const char *dir, int64_t id, char *errbuf, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/PINNED", dir);
    if (id < 0) {
        if (unlink(path) && errno != ENOENT) {
            rn_errf(errbuf, errlen, "cannot remove '%s': %s", path, strerror(errno));
            return RN_EIO;
        }
        return rn_fs_fsync_dir(dir);
    }
    char man[4096];
    rn_store_path(dir, id, ".json", man, sizeof man);
    if (!rn_fs_exists(man)) {
        rn_errf(errbuf, errlen, "model store '%s' has no version %" PRId64, dir, id);
        return RN_ENOENT;
    }
    char text[32];
    int len = snprintf(text, sizeof text, "%" PRId64 "\n", id);
    return rn_fs_write_atomic(path, text, (size_t)len, errbuf, errlen);
}

struct rn_model *rn_store_load(const char *dir, int64_t id, char *errbuf, size_t errlen)
{
    char path[4096];
    rn_store_path(dir, id, ".safetensors", path, sizeof path);
    return rn_model_read(path, errbuf, errlen);
}
