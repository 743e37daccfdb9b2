/*
 * rn_safetensors.c — model files in the safetensors layout, read and written
 * without any library but yajl (for the header's JSON):
 *
 *   +---------+----------------------------------+-------------------------+
 *   | u64 LE  | N bytes of JSON, space-padded    | data: each tensor's     |
 *   | N       | {"name": {"dtype", "shape",      | bytes, little-endian,   |
 *   |         |   "data_offsets": [b, e]}, ...,  | row-major, at [b, e)    |
 *   |         |  "__metadata__": {"k": "v"}}     | relative to data start  |
 *   +---------+----------------------------------+-------------------------+
 *
 * Reading trusts nothing: the header length is checked against the file size
 * and a 100 MB cap, the JSON is parsed with yajl's tree API, every tensor's
 * dtype, rank (at most 4), shape and offsets are checked (the byte count must
 * equal product(shape) times the dtype's size; the tensors must tile the data
 * buffer exactly, with no overlap, gap or trailing bytes), names must be
 * unique, and metadata values must be strings. F32, F64, F16, BF16, I64 and
 * I32 are converted to float; anything else is rejected by name. Every message
 * names the file (or "<buffer>") and the tensor.
 *
 * Writing produces F32 only, in the order the caller gives, with the header
 * padded to a multiple of 8 bytes, so the same tensors and metadata always
 * give the same bytes. The file is replaced atomically: a unique temporary
 * file in the same directory is written, flushed, fsync'ed and renamed over
 * the target, then the directory is fsync'ed.
 *
 * Byte order is decoded explicitly, so the code does not depend on the host's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "rn_fs_int.h"
#include "rn_model.h"

#define RN_ST_MAX_HEADER (100u * 1000u * 1000u)
#define RN_ST_MAX_DIM 4

/* ---- little-endian helpers ------------------------------------------------------- */

static uint64_t rn__st_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t rn__st_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t rn__st_le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static float rn__st_f32_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* IEEE half to float, subnormals, infinities and NaN included. */
static float rn__st_half(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0) {
        float v = ldexpf((float)man, -24);
        return sign ? -v : v;
    }
    if (exp == 31) return rn__st_f32_bits(sign | 0x7f800000u | (man << 13));
    return rn__st_f32_bits(sign | ((exp - 15 + 127) << 23) | (man << 13));
}

/* ---- dtypes -------------------------------------------------------------------------- */

enum rn_st_dtype { RN_ST_F32, RN_ST_F64, RN_ST_F16, RN_ST_BF16, RN_ST_I64, RN_ST_I32 };

static const struct {
    const char *name;
    size_t size;
} rn__st_dtypes[] = {
    [RN_ST_F32] = {"F32", 4},   [RN_ST_F64] = {"F64", 8}, [RN_ST_F16] = {"F16", 2},
    [RN_ST_BF16] = {"BF16", 2}, [RN_ST_I64] = {"I64", 8}, [RN_ST_I32] = {"I32", 4},
};

static int rn__st_dtype(const char *s)
{
    for (size_t i = 0; i < RN_ARRAY_LEN(rn__st_dtypes); i++)
        if (strcmp(s, rn__st_dtypes[i].name) == 0) return (int)i;
    return -1;
}

static void rn__st_convert(int dtype, const unsigned char *p, uint64_t count, float *out)
{
    size_t sz = rn__st_dtypes[dtype].size;
    for (uint64_t i = 0; i < count; i++, p += sz) {
        switch (dtype) {
        case RN_ST_F32:
            out[i] = rn__st_f32_bits(rn__st_le32(p));
            break;
        case RN_ST_F64: {
            uint64_t u = rn__st_le64(p);
            double d;
            memcpy(&d, &u, sizeof d);
            out[i] = (float)d;
            break;
        }
        case RN_ST_F16:
            out[i] = rn__st_half(rn__st_le16(p));
            break;
        case RN_ST_BF16:
            out[i] = rn__st_f32_bits((uint32_t)rn__st_le16(p) << 16);
            break;
        case RN_ST_I64:
            out[i] = (float)(int64_t)rn__st_le64(p);
            break;
        case RN_ST_I32:
            out[i] = (float)(int32_t)rn__st_le32(p);
            break;
        default:
            out[i] = 0;
            break;
        }
    }
}

/* ---- reading ---------------------------------------------------------------------------- */

void rn_st_free(struct rn_st_file *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) {
        free((char *)f->tensors[i].name);
        free(f->tensors[i].data);
    }
    free(f->tensors);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    free(f);
}

/* One tensor's header entry, while checking the offsets. */
struct rn__st_entry {
    uint64_t begin, end;
    size_t index; /* into f->tensors */
};

static int rn__st_cmp_entry(const void *a, const void *b)
{
    const struct rn__st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* A non-negative integer of the JSON tree, or -1. */
static int rn__st_uint(yajl_val v, uint64_t *out)
{
    if (!v || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0) return -1;
    *out = (uint64_t)YAJL_GET_INTEGER(v);
    return 0;
}

/* Parses the metadata object into f. */
static int rn__st_parse_meta(struct rn_st_file *f, yajl_val m, const char *where, char *errbuf,
                             size_t errlen)
{
    if (!YAJL_IS_OBJECT(m)) {
        rn_errf(errbuf, errlen, "%s: __metadata__ is not an object", where);
        return RN_ECORRUPT;
    }
    size_t n = m->u.object.len;
    f->meta_keys = rn_xcalloc(n ? n : 1, sizeof *f->meta_keys);
    f->meta_vals = rn_xcalloc(n ? n : 1, sizeof *f->meta_vals);
    for (size_t i = 0; i < n; i++) {
        const char *k = m->u.object.keys[i];
        yajl_val v = m->u.object.values[i];
        if (!YAJL_IS_STRING(v)) {
            rn_errf(errbuf, errlen, "%s: __metadata__ value of '%s' is not a string", where, k);
            return RN_ECORRUPT;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->u.object.keys[j], k) == 0) {
                rn_errf(errbuf, errlen, "%s: __metadata__ key '%s' appears twice", where, k);
                return RN_ECORRUPT;
            }
        f->meta_keys[i] = rn_xstrdup(k);
        f->meta_vals[i] = rn_xstrdup(YAJL_GET_STRING(v));
        f->n_meta = i + 1;
    }
    return 0;
}

/* Checks one tensor entry and fills t (name, shape; data later). */
static int rn__st_parse_entry(const char *name, yajl_val v, const char *where, int *dtype,
                              struct rn_tensor *t, struct rn__st_entry *e, char *errbuf,
                              size_t errlen)
{
    static const char *const p_dtype[] = {"dtype", NULL};
    static const char *const p_shape[] = {"shape", NULL};
    static const char *const p_offs[] = {"data_offsets", NULL};
    if (!YAJL_IS_OBJECT(v)) {
        rn_errf(errbuf, errlen, "%s: tensor '%s': entry is not an object", where, name);
        return RN_ECORRUPT;
    }
    for (size_t i = 0; i < v->u.object.len; i++) {
        const char *k = v->u.object.keys[i];
        if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets")) {
            rn_errf(errbuf, errlen, "%s: tensor '%s': unknown key '%s'", where, name, k);
            return RN_ECORRUPT;
        }
    }
    yajl_val dt = yajl_tree_get(v, (const char **)p_dtype, yajl_t_string);
    yajl_val sh = yajl_tree_get(v, (const char **)p_shape, yajl_t_array);
    yajl_val of = yajl_tree_get(v, (const char **)p_offs, yajl_t_array);
    if (!dt || !sh || !of) {
        rn_errf(errbuf, errlen,
                "%s: tensor '%s': needs dtype (string), shape and data_offsets "
                "(arrays)",
                where, name);
        return RN_ECORRUPT;
    }
    *dtype = rn__st_dtype(YAJL_GET_STRING(dt));
    if (*dtype < 0) {
        rn_errf(errbuf, errlen,
                "%s: tensor '%s': unsupported dtype '%s' (runnel reads F32, F64, F16, BF16, "
                "I64, I32)",
                where, name, YAJL_GET_STRING(dt));
        return RN_ECORRUPT;
    }
    size_t ndim = YAJL_GET_ARRAY(sh)->len;
    if (ndim > RN_ST_MAX_DIM) {
        rn_errf(errbuf, errlen, "%s: tensor '%s': %zu dimensions (at most %d)", where, name, ndim,
                RN_ST_MAX_DIM);
        return RN_ECORRUPT;
    }
    uint64_t count = 1;
    t->ndim = (uint32_t)ndim;
    for (size_t i = 0; i < ndim; i++) {
        uint64_t d;
        if (rn__st_uint(YAJL_GET_ARRAY(sh)->values[i], &d)) {
            rn_errf(errbuf, errlen, "%s: tensor '%s': shape[%zu] is not a non-negative integer",
                    where, name, i);
            return RN_ECORRUPT;
        }
        t->shape[i] = d;
        if (d && count > UINT64_MAX / d) {
            rn_errf(errbuf, errlen, "%s: tensor '%s': shape overflows", where, name);
            return RN_ECORRUPT;
        }
        count *= d;
    }
    if (YAJL_GET_ARRAY(of)->len != 2 || rn__st_uint(YAJL_GET_ARRAY(of)->values[0], &e->begin) ||
        rn__st_uint(YAJL_GET_ARRAY(of)->values[1], &e->end) || e->end < e->begin) {
        rn_errf(errbuf, errlen,
                "%s: tensor '%s': data_offsets must be [begin, end] with 0 <= begin <= end", where,
                name);
        return RN_ECORRUPT;
    }
    size_t sz = rn__st_dtypes[*dtype].size;
    if (count > UINT64_MAX / sz || e->end - e->begin != count * sz) {
        rn_errf(errbuf, errlen,
                "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, but %llu %s values "
                "of its shape need %llu",
                where, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                (unsigned long long)(e->end - e->begin), (unsigned long long)count,
                rn__st_dtypes[*dtype].name,
                (unsigned long long)(count > UINT64_MAX / sz ? UINT64_MAX : count * sz));
        return RN_ECORRUPT;
    }
    return 0;
}

/* Parses a whole file image; `where` names it in messages. */
static struct rn_st_file *rn__st_parse(const unsigned char *p, size_t n, const char *where,
                                       char *errbuf, size_t errlen)
{
    struct rn_st_file *f = NULL;
    struct rn__st_entry *ents = NULL;
    int *dtypes = NULL;
    yajl_val root = NULL;
    char *text = NULL;
    if (n < 8) {
        rn_errf(errbuf, errlen, "%s: truncated: %zu bytes, not even the 8-byte header length",
                where, n);
        return NULL;
    }
    uint64_t hlen = rn__st_le64(p);
    if (hlen > RN_ST_MAX_HEADER) {
        rn_errf(errbuf, errlen, "%s: header length %llu exceeds the limit of %u bytes", where,
                (unsigned long long)hlen, RN_ST_MAX_HEADER);
        return NULL;
    }
    if (hlen > n - 8) {
        rn_errf(errbuf, errlen, "%s: header length %llu runs past the end of the file (%zu bytes)",
                where, (unsigned long long)hlen, n);
        return NULL;
    }
    if (hlen < 2 || memchr(p + 8, 0, (size_t)hlen)) {
        rn_errf(errbuf, errlen, "%s: bad JSON header: %s", where,
                hlen < 2 ? "too short" : "contains a NUL byte");
        return NULL;
    }
    text = rn_xmalloc((size_t)hlen + 1);
    memcpy(text, p + 8, (size_t)hlen);
    text[hlen] = 0;
    char jerr[256] = "";
    root = yajl_tree_parse(text, jerr, sizeof jerr);
    if (!root) {
        /* yajl's messages span lines; keep the first. */
        jerr[strcspn(jerr, "\n")] = 0;
        rn_errf(errbuf, errlen, "%s: bad JSON header: %s", where, jerr[0] ? jerr : "parse error");
        goto fail;
    }
    if (!YAJL_IS_OBJECT(root)) {
        rn_errf(errbuf, errlen, "%s: bad JSON header: not an object", where);
        goto fail;
    }
    const unsigned char *data = p + 8 + hlen;
    uint64_t data_len = n - 8 - hlen;
    size_t nkeys = root->u.object.len;
    f = rn_xcalloc(1, sizeof *f);
    f->tensors = rn_xcalloc(nkeys ? nkeys : 1, sizeof *f->tensors);
    ents = rn_xcalloc(nkeys ? nkeys : 1, sizeof *ents);
    dtypes = rn_xcalloc(nkeys ? nkeys : 1, sizeof *dtypes);
    int seen_meta = 0;
    for (size_t i = 0; i < nkeys; i++) {
        const char *name = root->u.object.keys[i];
        yajl_val v = root->u.object.values[i];
        if (strcmp(name, "__metadata__") == 0) {
            if (seen_meta++) {
                rn_errf(errbuf, errlen, "%s: __metadata__ appears twice", where);
                goto fail;
            }
            if (rn__st_parse_meta(f, v, where, errbuf, errlen)) goto fail;
            continue;
        }
        for (size_t j = 0; j < f->n; j++)
            if (strcmp(f->tensors[j].name, name) == 0) {
                rn_errf(errbuf, errlen, "%s: tensor '%s' appears twice", where, name);
                goto fail;
            }
        struct rn_tensor *t = &f->tensors[f->n];
        t->name = rn_xstrdup(name);
        f->n++;
        ents[f->n - 1].index = f->n - 1;
        if (rn__st_parse_entry(name, v, where, &dtypes[f->n - 1], t, &ents[f->n - 1], errbuf,
                               errlen))
            goto fail;
        if (ents[f->n - 1].end > data_len) {
            rn_errf(errbuf, errlen,
                    "%s: tensor '%s': data_offsets [%llu, %llu] out of range: the data "
                    "buffer has %llu bytes",
                    where, name, (unsigned long long)ents[f->n - 1].begin,
                    (unsigned long long)ents[f->n - 1].end, (unsigned long long)data_len);
            goto fail;
        }
    }
    /* The tensors must tile the data buffer: sorted by offset, each starts
     * where the previous one ended and the last ends at the end of the file. */
    qsort(ents, f->n, sizeof *ents, rn__st_cmp_entry);
    uint64_t at = 0;
    for (size_t i = 0; i < f->n; i++) {
        const char *name = f->tensors[ents[i].index].name;
        if (ents[i].begin < at) {
            rn_errf(errbuf, errlen, "%s: tensor '%s': data_offsets [%llu, %llu] overlap '%s'",
                    where, name, (unsigned long long)ents[i].begin, (unsigned long long)ents[i].end,
                    f->tensors[ents[i - 1].index].name);
            goto fail;
        }
        if (ents[i].begin > at) {
            rn_errf(errbuf, errlen,
                    "%s: tensor '%s': data_offsets [%llu, %llu] leave a gap of unused bytes "
                    "at [%llu, %llu)",
                    where, name, (unsigned long long)ents[i].begin, (unsigned long long)ents[i].end,
                    (unsigned long long)at, (unsigned long long)ents[i].begin);
            goto fail;
        }
        at = ents[i].end;
    }
    if (at != data_len) {
        rn_errf(errbuf, errlen,
                "%s: the tensors cover %llu bytes of data but the file holds %llu after "
                "the header",
                where, (unsigned long long)at, (unsigned long long)data_len);
        goto fail;
    }
    for (size_t i = 0; i < f->n; i++) {
        struct rn_tensor *t = &f->tensors[ents[i].index];
        uint64_t count = (ents[i].end - ents[i].begin) / rn__st_dtypes[dtypes[ents[i].index]].size;
        if (count > SIZE_MAX / sizeof(float)) {
            rn_errf(errbuf, errlen, "%s: tensor '%s' is too large", where, t->name);
            goto fail;
        }
        t->data = rn_xmalloc(count ? (size_t)count * sizeof(float) : 1);
        rn__st_convert(dtypes[ents[i].index], data + ents[i].begin, count, t->data);
    }
    free(dtypes);
    free(ents);
    yajl_tree_free(root);
    free(text);
    return f;

fail:
    free(dtypes);
    free(ents);
    rn_st_free(f);
    if (root) yajl_tree_free(root);
    free(text);
    return NULL;
}

struct rn_st_file *rn_st_parse(const void *p, size_t n, char *errbuf, size_t errlen)
{
    return rn__st_parse(p, n, "<buffer>", errbuf, errlen);
}

struct rn_st_file *rn_st_read(const char *path, char *errbuf, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        rn_errf(errbuf, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct rn_st_file *f = NULL;
    unsigned char *buf = NULL;
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        rn_errf(errbuf, errlen, "%s: cannot stat: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rn_errf(errbuf, errlen, "%s: not a regular file", path);
        goto done;
    }
    size_t size = (size_t)st.st_size;
    buf = rn_xmalloc(size ? size : 1);
    if (fread(buf, 1, size, fp) != size) {
        rn_errf(errbuf, errlen, "%s: cannot read: %s", path,
                ferror(fp) ? strerror(errno) : "file shrank while reading");
        goto done;
    }
    f = rn__st_parse(buf, size, path, errbuf, errlen);
done:
    free(buf);
    fclose(fp);
    return f;
}

const struct rn_tensor *rn_st_find(const struct rn_st_file *f, const char *name)
{
    for (size_t i = 0; f && i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *rn_st_meta(const struct rn_st_file *f, const char *key)
{
    for (size_t i = 0; f && i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

/* ---- writing ------------------------------------------------------------------------------ */

/* The header JSON for F32 tensors in the given order, padded with spaces to
 * a multiple of 8. */
static int rn__st_header(const struct rn_tensor *t, size_t n, const char *const *mk,
                         const char *const *mv, size_t n_meta, const char *path, struct rn_buf *h,
                         char *errbuf, size_t errlen)
{
    uint64_t at = 0;
    rn_buf_putc(h, '{');
    for (size_t i = 0; i < n; i++) {
        if (!t[i].name || !t[i].name[0] || strcmp(t[i].name, "__metadata__") == 0) {
            rn_errf(errbuf, errlen, "%s: tensor %zu: bad name '%s'", path, i,
                    t[i].name ? t[i].name : "(null)");
            return RN_EINVAL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(t[j].name, t[i].name) == 0) {
                rn_errf(errbuf, errlen, "%s: tensor '%s' given twice", path, t[i].name);
                return RN_EINVAL;
            }
        if (t[i].ndim > RN_ST_MAX_DIM) {
            rn_errf(errbuf, errlen, "%s: tensor '%s': %u dimensions (at most %d)", path, t[i].name,
                    t[i].ndim, RN_ST_MAX_DIM);
            return RN_EINVAL;
        }
        uint64_t count = 1;
        for (uint32_t d = 0; d < t[i].ndim; d++)
            count *= t[i].shape[d];
        if (count && !t[i].data) {
            rn_errf(errbuf, errlen, "%s: tensor '%s' has no data", path, t[i].name);
            return RN_EINVAL;
        }
        if (i) rn_buf_putc(h, ',');
        rn_json_str(h, t[i].name, strlen(t[i].name));
        RN_BUF_LIT(h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (uint32_t d = 0; d < t[i].ndim; d++) {
            if (d) rn_buf_putc(h, ',');
            rn_json_u64(h, t[i].shape[d]);
        }
        RN_BUF_LIT(h, "],\"data_offsets\":[");
        rn_json_u64(h, at);
        rn_buf_putc(h, ',');
        at += count * 4;
        rn_json_u64(h, at);
        RN_BUF_LIT(h, "]}");
    }
    if (n_meta) {
        if (n) rn_buf_putc(h, ',');
        RN_BUF_LIT(h, "\"__metadata__\":{");
        for (size_t i = 0; i < n_meta; i++) {
            if (!mk[i] || !mv[i]) {
                rn_errf(errbuf, errlen, "%s: metadata entry %zu is NULL", path, i);
                return RN_EINVAL;
            }
            if (i) rn_buf_putc(h, ',');
            rn_json_str(h, mk[i], strlen(mk[i]));
            rn_buf_putc(h, ':');
            rn_json_str(h, mv[i], strlen(mv[i]));
        }
        rn_buf_putc(h, '}');
    }
    rn_buf_putc(h, '}');
    while (h->len % 8)
        rn_buf_putc(h, ' ');
    return 0;
}

int rn_st_encode(const struct rn_tensor *t, size_t n, const char *const *meta_keys,
                 const char *const *meta_vals, size_t n_meta, const char *where,
                 struct rn_buf *out, char *errbuf, size_t errlen)
{
    struct rn_buf h = RN_BUF_INIT;
    int rc = rn__st_header(t, n, meta_keys, meta_vals, n_meta, where, &h, errbuf, errlen);
    if (rc) {
        rn_buf_free(&h);
        return rc;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    rn_buf_append(out, len8, 8);
    rn_buf_append(out, h.data, h.len);
    rn_buf_free(&h);
    for (size_t i = 0; i < n; i++) {
        uint64_t count = 1;
        for (uint32_t d = 0; d < t[i].ndim; d++)
            count *= t[i].shape[d];
        rn_buf_reserve(out, (size_t)count * 4);
        unsigned char *p = (unsigned char *)out->data + out->len;
        for (uint64_t k = 0; k < count; k++) {
            uint32_t u;
            memcpy(&u, &t[i].data[k], sizeof u);
            for (int b = 0; b < 4; b++)
                *p++ = (unsigned char)(u >> (8 * b));
        }
        out->len += (size_t)count * 4;
    }
    return 0;
}

int rn_st_write(const char *path, const struct rn_tensor *t, size_t n, const char *const *meta_keys,
                const char *const *meta_vals, size_t n_meta, char *errbuf, size_t errlen)
{
    struct rn_buf body = RN_BUF_INIT;
    int rc = rn_st_encode(t, n, meta_keys, meta_vals, n_meta, path, &body, errbuf, errlen);
    if (rc) goto fail_encode;

    size_t pl = strlen(path) + 16;
    char *tmp = rn_xmalloc(pl);
    snprintf(tmp, pl, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rn_errf(errbuf, errlen, "%s: cannot create temporary file '%s': %s", path, tmp,
                strerror(errno));
        rc = RN_EIO;
        goto fail_tmp;
    }
    /* mkstemp makes 0600; a model file is for readers too. */
    if (fchmod(fd, 0644) != 0) {
        rn_errf(errbuf, errlen, "%s: cannot chmod '%s': %s", path, tmp, strerror(errno));
        close(fd);
        rc = RN_EIO;
        goto fail_file;
    }
    FILE *fp = fdopen(fd, "wb");
    if (!fp) {
        rn_errf(errbuf, errlen, "%s: cannot open '%s': %s", path, tmp, strerror(errno));
        close(fd);
        rc = RN_EIO;
        goto fail_file;
    }
    int ok = fwrite(body.data, 1, body.len, fp) == body.len;
    if (ok) ok = fflush(fp) == 0;
    if (ok) ok = fsync(fileno(fp)) == 0;
    if (!ok) {
        rn_errf(errbuf, errlen, "%s: cannot write '%s': %s", path, tmp, strerror(errno));
        fclose(fp);
        rc = RN_EIO;
        goto fail_file;
    }
    if (fclose(fp) != 0) {
        rn_errf(errbuf, errlen, "%s: cannot close '%s': %s", path, tmp, strerror(errno));
        rc = RN_EIO;
        goto fail_file;
    }
    if (rename(tmp, path) != 0) {
        rn_errf(errbuf, errlen, "%s: cannot rename '%s' over it: %s", path, tmp, strerror(errno));
        rc = RN_EIO;
        goto fail_file;
    }
    /* Make the rename itself durable. */
    char *dir = rn_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = 0;
    else if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    if (rn_fs_fsync_dir(dir) != 0) {
        rn_errf(errbuf, errlen, "%s: cannot fsync directory '%s': %s", path, dir, strerror(errno));
        rc = RN_EIO;
    }
    free(dir);
    free(tmp);
    rn_buf_free(&body);
    return rc;

fail_file:
    unlink(tmp);
fail_tmp:
    free(tmp);
fail_encode:
    rn_buf_free(&body);
    return rc;
}
