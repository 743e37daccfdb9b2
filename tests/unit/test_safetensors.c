/*
 * test_safetensors.c — model files (runtime/rn_safetensors.c):
 *
 *   round trip     tensors (values, shapes, rank 0..4, empty), metadata with
 *                  characters JSON must escape, names in header order
 *   determinism    the same input twice gives byte-identical files, header
 *                  padded to 8 bytes, no temporary file left behind
 *   dtypes         F64, F16, BF16, I64, I32 converted to float
 *   corruption     truncated file, bad header length, offsets out of range,
 *                  overlapping and gapped offsets, wrong size, bad JSON,
 *                  unknown dtype, duplicate names, rank > 4, bad metadata:
 *                  each rejected with a message naming the file and tensor
 *   write errors   a missing directory, bad tensors (message with strerror)
 */
#include "rn_test.h"

#include "rn_model.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char err[1024];
static char dir[256];

static char *path_of(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)len + 1);
    *n = fread(p, 1, (size_t)len, f);
    fclose(f);
    return p;
}

/* A file image from a header text and data bytes. */
static unsigned char *image(const char *header, const void *data, size_t dlen, size_t *n)
{
    size_t hl = strlen(header);
    *n = 8 + hl + dlen;
    unsigned char *p = malloc(*n);
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(p + 8, header, hl);
    if (dlen) memcpy(p + 8 + hl, data, dlen);
    return p;
}

/* ---- round trip ------------------------------------------------------------------ */

static float a_data[6] = {1.5f, -2.25f, 3e-8f, 1e30f, 0.0f, -0.0f};
static float b_data[24];
static float c_data[1] = {42.0f};

static void fill_tensors(struct rn_tensor *t)
{
    for (int i = 0; i < 24; i++)
        b_data[i] = (float)i * 0.125f - 1.0f;
    t[0] = (struct rn_tensor){"conv.weight", 2, {2, 3}, a_data};
    t[1] = (struct rn_tensor){"b \"quoted\"\n\\", 4, {1, 2, 3, 4}, b_data};
    t[2] = (struct rn_tensor){"scalar", 0, {0}, c_data};
    t[3] = (struct rn_tensor){"empty", 1, {0}, NULL};
}

static const char *const mk[] = {"history", "note", "unicode"};
static const char *const mv[] = {"10", "tab\there, \"quote\", back\\slash", "\xc3\xa9t\xc3\xa9"};

static void test_round_trip(void)
{
    struct rn_tensor t[4];
    fill_tensors(t);
    CHECK_EQ_INT(rn_st_write(path_of("a.safetensors"), t, 4, mk, mv, 3, err, sizeof err), 0);
    struct rn_st_file *f = rn_st_read(path_of("a.safetensors"), err, sizeof err);
    CHECK(f != NULL);
    if (!f) {
        fprintf(stderr, "read: %s\n", err);
        return;
    }
    CHECK_EQ_INT(f->n, 4);
    for (size_t i = 0; i < 4 && i < f->n; i++) {
        CHECK(strcmp(f->tensors[i].name, t[i].name) == 0); /* header order */
        CHECK_EQ_INT(f->tensors[i].ndim, t[i].ndim);
        uint64_t count = 1;
        for (uint32_t d = 0; d < t[i].ndim; d++) {
            CHECK_EQ_INT(f->tensors[i].shape[d], t[i].shape[d]);
            count *= t[i].shape[d];
        }
        if (count) CHECK(memcmp(f->tensors[i].data, t[i].data, count * sizeof(float)) == 0);
    }
    const struct rn_tensor *b = rn_st_find(f, "b \"quoted\"\n\\");
    CHECK(b != NULL && b->data[23] == b_data[23]);
    CHECK(rn_st_find(f, "nope") == NULL);
    CHECK_EQ_INT(f->n_meta, 3);
    for (int i = 0; i < 3; i++)
        CHECK(rn_st_meta(f, mk[i]) && strcmp(rn_st_meta(f, mk[i]), mv[i]) == 0);
    CHECK(rn_st_meta(f, "missing") == NULL);
    rn_st_free(f);

    /* No metadata, no tensors: still a valid file. */
    CHECK_EQ_INT(rn_st_write(path_of("empty.safetensors"), NULL, 0, NULL, NULL, 0, err, sizeof err),
                 0);
    f = rn_st_read(path_of("empty.safetensors"), err, sizeof err);
    CHECK(f != NULL && f->n == 0 && f->n_meta == 0);
    rn_st_free(f);
}

static void test_deterministic(void)
{
    struct rn_tensor t[4];
    fill_tensors(t);
    CHECK_EQ_INT(rn_st_write(path_of("d1.safetensors"), t, 4, mk, mv, 3, err, sizeof err), 0);
    CHECK_EQ_INT(rn_st_write(path_of("d2.safetensors"), t, 4, mk, mv, 3, err, sizeof err), 0);
    /* Overwriting an existing file replaces it. */
    CHECK_EQ_INT(rn_st_write(path_of("d2.safetensors"), t, 4, mk, mv, 3, err, sizeof err), 0);
    size_t n1 = 0, n2 = 0;
    unsigned char *p1 = slurp(path_of("d1.safetensors"), &n1);
    unsigned char *p2 = slurp(path_of("d2.safetensors"), &n2);
    CHECK(p1 && p2 && n1 == n2 && memcmp(p1, p2, n1) == 0);
    if (p1) {
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--)
            hl = hl << 8 | p1[i];
        CHECK_EQ_INT(hl % 8, 0);
        /* 6 + 24 + 1 + 0 floats of data after the header. */
        CHECK_EQ_INT(n1, 8 + hl + 31 * 4);
        /* The first tensor's first float, little-endian, right after the header. */
        uint32_t u;
        memcpy(&u, &a_data[0], 4);
        CHECK(p1[8 + hl] == (u & 0xff) && p1[8 + hl + 3] == (u >> 24));
    }
    free(p1);
    free(p2);
    /* No temporary files left in the directory. */
    DIR *d = opendir(dir);
    int tmp = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, ".tmp")) tmp++;
    if (d) closedir(d);
    CHECK_EQ_INT(tmp, 0);
}

/* ---- other dtypes ------------------------------------------------------------------ */

static void test_dtypes(void)
{
    unsigned char data[8 + 8 + 4 + 4 + 4 + 8];
    size_t o = 0;
    double d = -3.25;
    memcpy(data + o, &d, 8), o += 8; /* F64 (host is little-endian here) */
    int64_t i64 = -123456789;
    memcpy(data + o, &i64, 8), o += 8; /* I64 */
    int32_t i32 = 77;
    memcpy(data + o, &i32, 4), o += 4;  /* I32 */
    uint16_t f16[2] = {0x3c00, 0xc000}; /* 1.0, -2.0 */
    memcpy(data + o, f16, 4), o += 4;
    uint16_t bf16[2] = {0x3fc0, 0x0000}; /* 1.5, 0 */
    memcpy(data + o, bf16, 4), o += 4;
    uint16_t f16b[4] = {0x0001, 0x7c00, 0x3555, 0x8000}; /* smallest subnormal, inf, ~1/3, -0 */
    memcpy(data + o, f16b, 8), o += 8;
    const char *h = "{\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                    "\"l\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[8,16]},"
                    "\"i\":{\"dtype\":\"I32\",\"shape\":[1,1],\"data_offsets\":[16,20]},"
                    "\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[20,24]},"
                    "\"bf\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[24,28]},"
                    "\"h2\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[28,36]}}";
    size_t n;
    unsigned char *p = image(h, data, o, &n);
    struct rn_st_file *f = rn_st_parse(p, n, err, sizeof err);
    CHECK(f != NULL);
    if (!f) fprintf(stderr, "dtypes: %s\n", err);
    if (f) {
        CHECK(rn_st_find(f, "d")->data[0] == -3.25f);
        CHECK(rn_st_find(f, "l")->data[0] == (float)-123456789);
        CHECK(rn_st_find(f, "i")->data[0] == 77.0f);
        CHECK(rn_st_find(f, "h")->data[0] == 1.0f && rn_st_find(f, "h")->data[1] == -2.0f);
        CHECK(rn_st_find(f, "bf")->data[0] == 1.5f && rn_st_find(f, "bf")->data[1] == 0.0f);
        const float *h2 = rn_st_find(f, "h2")->data;
        CHECK(h2[0] == ldexpf(1.0f, -24));
        CHECK(isinf(h2[1]) && h2[1] > 0);
        CHECK(fabsf(h2[2] - 1.0f / 3) < 1e-3f);
        CHECK(h2[3] == 0.0f && signbit(h2[3]));
    }
    rn_st_free(f);
    free(p);
}

/* ---- corruption ---------------------------------------------------------------------- */

/* Parses an image that must be rejected with a message containing `want`. */
static void reject(const char *what, const unsigned char *p, size_t n, const char *want)
{
    err[0] = 0;
    struct rn_st_file *f = rn_st_parse(p, n, err, sizeof err);
    if (f) fprintf(stderr, "accepted: %s\n", what);
    CHECK(f == NULL);
    rn_st_free(f);
    CHECK_STR_CONTAINS(err, want);
    CHECK_STR_CONTAINS(err, "<buffer>");
}

static void reject_header(const char *what, const char *header, size_t dlen, const char *want)
{
    unsigned char zeros[256] = {0};
    size_t n;
    unsigned char *p = image(header, zeros, dlen, &n);
    reject(what, p, n, want);
    free(p);
}

static void test_corrupt(void)
{
    struct rn_tensor t[4];
    fill_tensors(t);
    CHECK_EQ_INT(rn_st_write(path_of("c.safetensors"), t, 4, mk, mv, 3, err, sizeof err), 0);
    size_t n = 0;
    unsigned char *good = slurp(path_of("c.safetensors"), &n);
    if (!good) return;
    unsigned char *p = malloc(n);

    /* Truncated: at every length up to the whole file, a prefix is rejected. */
    int accepted = 0;
    for (size_t len = 0; len < n; len++) {
        struct rn_st_file *f = rn_st_parse(good, len, err, sizeof err);
        if (f) accepted++;
        rn_st_free(f);
    }
    CHECK_EQ_INT(accepted, 0);
    reject("5 bytes", good, 5, "truncated");
    reject("data cut", good, n - 4, "data_offsets");

    /* Header length beyond the file, and beyond the cap. */
    memcpy(p, good, n);
    p[0] = 0xff, p[1] = 0xff;
    reject("header length past end", p, n, "runs past the end");
    memcpy(p, good, n);
    memset(p, 0xff, 8);
    reject("huge header length", p, n, "exceeds the limit");

    /* The same file read from disk names the path. */
    FILE *fp = fopen(path_of("trunc.safetensors"), "wb");
    fwrite(good, 1, n / 2, fp);
    fclose(fp);
    struct rn_st_file *f = rn_st_read(path_of("trunc.safetensors"), err, sizeof err);
    CHECK(f == NULL);
    CHECK_STR_CONTAINS(err, "trunc.safetensors");
    f = rn_st_read(path_of("missing.safetensors"), err, sizeof err);
    CHECK(f == NULL);
    CHECK_STR_CONTAINS(err, "No such file");

    /* Header-level problems. */
    const char *T = "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":";
    char h[512];
    snprintf(h, sizeof h, "%s[0,8]}", T);
    reject_header("bad JSON", h, 8, "bad JSON");
    reject_header("not an object", "[1,2]", 0, "not an object");
    reject_header("trailing garbage", "{}}", 0, "bad JSON");
    reject_header("offsets out of range",
                  "{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
                  "out of range");
    snprintf(h, sizeof h, "%s[0,12]}}", T);
    reject_header("wrong size", h, 12, "'t'");
    reject_header("wrong size", h, 12, "need 8");
    snprintf(h, sizeof h, "%s[8,0]}}", T);
    reject_header("end before begin", h, 8, "data_offsets");
    snprintf(h, sizeof h, "%s[-8,0]}}", T);
    reject_header("negative offset", h, 8, "data_offsets");
    snprintf(h, sizeof h, "%s[0,8]}}", T);
    reject_header("trailing data", h, 12, "cover 8 bytes");
    reject_header("unknown dtype",
                  "{\"t\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
                  "unsupported dtype 'U8'");
    reject_header("rank 5",
                  "{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
                  "5 dimensions");
    reject_header("negative dim",
                  "{\"t\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                  "shape[0]");
    reject_header("fractional dim",
                  "{\"t\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                  "shape[0]");
    reject_header("missing shape", "{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
                  "needs dtype");
    reject_header("unknown key",
                  "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
                  "unknown key 'x'");
    reject_header("overlap",
                  "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                  12, "overlap");
    reject_header("gap",
                  "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                  12, "gap");
    reject_header("duplicate name",
                  "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                  8, "'a' appears twice");
    reject_header("metadata not strings", "{\"__metadata__\":{\"k\":1}}", 0,
                  "value of 'k' is not a string");
    reject_header("metadata not an object", "{\"__metadata__\":[]}", 0, "not an object");
    reject_header("entry not an object", "{\"t\":3}", 0, "tensor 't'");
    unsigned char nul[] = {'{', '}', 0, ' '};
    unsigned char img[12] = {4, 0, 0, 0, 0, 0, 0, 0};
    memcpy(img + 8, nul, 4);
    reject("NUL in header", img, 12, "NUL");

    /* Random byte flips never crash (run under ASan in CI); most are caught. */
    srand(7);
    for (int k = 0; k < 2000; k++) {
        memcpy(p, good, n);
        int flips = 1 + rand() % 3;
        for (int j = 0; j < flips; j++)
            p[(size_t)rand() % n] ^= (unsigned char)(1 + rand() % 255);
        rn_st_free(rn_st_parse(p, n, err, sizeof err));
    }
    free(p);
    free(good);
}

/* ---- write errors ---------------------------------------------------------------------- */

static void test_write_errors(void)
{
    struct rn_tensor t[4];
    fill_tensors(t);
    int rc =
        rn_st_write(path_of("no/such/dir/x.safetensors"), t, 1, NULL, NULL, 0, err, sizeof err);
    CHECK_EQ_INT(rc, RN_EIO);
    CHECK_STR_CONTAINS(err, "No such file or directory");
    struct rn_tensor dup[2] = {t[0], t[0]};
    CHECK_EQ_INT(rn_st_write(path_of("dup.safetensors"), dup, 2, NULL, NULL, 0, err, sizeof err),
                 RN_EINVAL);
    CHECK_STR_CONTAINS(err, "'conv.weight' given twice");
    struct rn_tensor big = {"big", 5, {1, 1, 1, 1}, a_data};
    CHECK_EQ_INT(rn_st_write(path_of("big.safetensors"), &big, 1, NULL, NULL, 0, err, sizeof err),
                 RN_EINVAL);
    CHECK_STR_CONTAINS(err, "5 dimensions");
    CHECK(access(path_of("dup.safetensors"), F_OK) != 0);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/rn-st-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_deterministic();
    test_dtypes();
    test_corrupt();
    test_write_errors();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return rn_test_summary();
}
