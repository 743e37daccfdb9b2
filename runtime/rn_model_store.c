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

#define RN_MODEL_FORMAT "runnel-dueling-q/1"

/* ---- model files ----------------------------------------------------------------- */

/* The five tensors of m, pointing into its parameters (borrowed). */
static void rn__model_tensors(const struct rn_model *m, struct rn_tensor t[5])
{
    const struct rn_model_shape *s = &m->shape;
    t[0] = (struct rn_tensor){"v", 1, {s->phi}, m->params + m->at.v};
    t[1] = (struct rn_tensor){"W", 2, {s->dim, s->phi}, m->params + m->at.W};
    t[2] = (struct rn_tensor){"w", 1, {s->dim}, m->params + m->at.w};
    t[3] = (struct rn_tensor){"b", 1, {s->buckets}, m->params + m->at.b};
    t[4] = (struct rn_tensor){"c", 1, {s->positions}, m->params + m->at.c};
}

/* "format" first, then the caller's metadata (at most 31 entries). */
static size_t rn__model_meta(const char *const *meta_keys, const char *const *meta_vals,
                             size_t n_meta, const char *keys[32], const char *vals[32])
{
    size_t nk = 0;
    keys[nk] = "format";
    vals[nk++] = RN_MODEL_FORMAT;
    for (size_t i = 0; i < n_meta && nk < 32; i++) {
        keys[nk] = meta_keys[i];
        vals[nk++] = meta_vals[i];
    }
    return nk;
}

int rn_model_write(const char *path, const struct rn_model *m, const char *const *meta_keys,
                   const char *const *meta_vals, size_t n_meta, char *errbuf, size_t errlen)
{
    struct rn_tensor t[5];
    rn__model_tensors(m, t);
    const char *keys[32], *vals[32];
    size_t nk = rn__model_meta(meta_keys, meta_vals, n_meta, keys, vals);
    return rn_st_write(path, t, 5, keys, vals, nk, errbuf, errlen);
}

struct rn_model *rn_model_from_st(const struct rn_st_file *f, const char *path, char *errbuf,
                                  size_t errlen)
{
    static const char *const names[5] = {"v", "W", "w", "b", "c"};
    const struct rn_tensor *t[5];
    for (int i = 0; i < 5; i++) {
        t[i] = rn_st_find(f, names[i]);
        if (!t[i]) {
            rn_errf(errbuf, errlen, "%s: no tensor '%s' (a dueling-Q model has v, W, w, b, c)",
                    path, names[i]);
            return NULL;
        }
        if (t[i]->ndim != (i == 1 ? 2u : 1u)) {
            rn_errf(errbuf, errlen, "%s: tensor '%s' has %u dimensions, expected %u", path,
                    names[i], t[i]->ndim, i == 1 ? 2u : 1u);
            return NULL;
        }
    }
    struct rn_model_shape s = {(uint32_t)t[2]->shape[0], (uint32_t)t[0]->shape[0],
                               (uint32_t)t[3]->shape[0], (uint32_t)t[4]->shape[0]};
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
    struct rn_tensor t[5];
    rn__model_tensors(m, t);
    const char *keys[32], *vals[32];
    size_t nk = rn__model_meta(mk, mv, RN_ARRAY_LEN(mk), keys, vals);
    char where[48];
    snprintf(where, sizeof where, "model version %" PRId64, v->id);
    return rn_st_encode(t, 5, keys, vals, nk, where, out, errbuf, errlen);
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
    if (!fmt || strcmp(fmt, RN_MODEL_FORMAT) != 0)
        rn_errf(errbuf, errlen, "%s: metadata 'format' is '%s', expected '%s'", where,
                fmt ? fmt : "(none)", RN_MODEL_FORMAT);
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
