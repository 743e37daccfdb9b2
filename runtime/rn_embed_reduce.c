/*
 * rn_embed_reduce.c — `runnel embed-reduce IN OUT --dim d` (rn_embed_reduce.h).
 *
 * Principal components of an item table: the D x D covariance of its vectors
 * (in double), diagonalised by cyclic Jacobi rotations (exact for a symmetric
 * matrix, deterministic, and cheap for the tens of dimensions item tables
 * have), its top d eigenvectors as the new axes. The result keeps the item ids,
 * so a student's table names the same items as its teacher's.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_embed_reduce.h"
#include "rn_fs.h"
#include "rn_model.h"

/* Eigenvalues (into w) and eigenvectors (columns of V) of the symmetric
 * n x n matrix A (destroyed), by cyclic Jacobi. */
static void rn__jacobi(double *A, uint32_t n, double *w, double *V)
{
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++)
            V[i * n + j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (uint32_t p = 0; p < n; p++)
            for (uint32_t q = p + 1; q < n; q++)
                off += A[p * n + q] * A[p * n + q];
        if (off < 1e-30) break;
        for (uint32_t p = 0; p < n; p++)
            for (uint32_t q = p + 1; q < n; q++) {
                double apq = A[p * n + q];
                if (fabs(apq) < 1e-300) continue;
                double theta = (A[q * n + q] - A[p * n + p]) / (2 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (uint32_t k = 0; k < n; k++) { /* A ← Jᵀ A J */
                    double akp = A[k * n + p], akq = A[k * n + q];
                    A[k * n + p] = c * akp - s * akq;
                    A[k * n + q] = s * akp + c * akq;
                }
                for (uint32_t k = 0; k < n; k++) {
                    double apk = A[p * n + k], aqk = A[q * n + k];
                    A[p * n + k] = c * apk - s * aqk;
                    A[q * n + k] = s * apk + c * aqk;
                }
                for (uint32_t k = 0; k < n; k++) {
                    double vkp = V[k * n + p], vkq = V[k * n + q];
                    V[k * n + p] = c * vkp - s * vkq;
                    V[k * n + q] = s * vkp + c * vkq;
                }
            }
    }
    for (uint32_t i = 0; i < n; i++)
        w[i] = A[i * n + i];
}

int rn_embed_reduce(const char *in, uint32_t dim, const char *out, double *explained, char *errbuf,
                    size_t errlen)
{
    struct rn_embed *t = rn_embed_load(in, errbuf, errlen);
    if (!t) return RN_EIO;
    uint32_t D = rn_embed_dim(t);
    size_t n = rn_embed_count(t);
    int rc = RN_EINVAL;
    if (dim < 1 || dim > D || n < 2) {
        rn_errf(errbuf, errlen, "%s: cannot reduce %zu items of dimension %u to %u", in, n, D, dim);
        rn_embed_destroy(t);
        return rc;
    }
    double *mean = calloc(D, sizeof *mean), *C = calloc((size_t)D * D, sizeof *C);
    double *w = calloc(D, sizeof *w), *V = calloc((size_t)D * D, sizeof *V);
    uint32_t *order = calloc(D, sizeof *order);
    struct rn_buf b = RN_BUF_INIT;
    if (!mean || !C || !w || !V || !order) {
        rn_errf(errbuf, errlen, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const float *x = rn_embed_get(t, rn_embed_id(t, i));
        for (uint32_t j = 0; j < D; j++)
            mean[j] += x[j] / (double)n;
    }
    for (size_t i = 0; i < n; i++) {
        const float *x = rn_embed_get(t, rn_embed_id(t, i));
        for (uint32_t j = 0; j < D; j++)
            for (uint32_t k = 0; k < D; k++)
                C[j * D + k] += (x[j] - mean[j]) * (x[k] - mean[k]) / (double)(n - 1);
    }
    rn__jacobi(C, D, w, V);
    /* components by decreasing variance (ties: the lower index) */
    double total = 0, kept = 0;
    for (uint32_t j = 0; j < D; j++) {
        order[j] = j;
        total += w[j];
    }
    for (uint32_t j = 1; j < D; j++)
        for (uint32_t k = j; k > 0 && w[order[k]] > w[order[k - 1]]; k--) {
            uint32_t tmp = order[k];
            order[k] = order[k - 1];
            order[k - 1] = tmp;
        }
    for (uint32_t c = 0; c < dim; c++) {
        uint32_t col = order[c], big = 0;
        kept += w[col];
        for (uint32_t j = 1; j < D; j++)
            if (fabs(V[j * D + col]) > fabs(V[big * D + col])) big = j;
        if (V[big * D + col] < 0)
            for (uint32_t j = 0; j < D; j++)
                V[j * D + col] = -V[j * D + col];
    }
    if (explained) *explained = total > 0 ? kept / total : 1.0;
    rn_buf_printf(&b, "# %u principal components of %s (%.4f of the variance)\n", dim, in,
                  total > 0 ? kept / total : 1.0);
    for (size_t i = 0; i < n; i++) {
        const float *x = rn_embed_get(t, rn_embed_id(t, i));
        rn_buf_printf(&b, "%s", rn_embed_name(t, i));
        for (uint32_t c = 0; c < dim; c++) {
            double v = 0;
            for (uint32_t j = 0; j < D; j++)
                v += (x[j] - mean[j]) * V[j * D + order[c]];
            if (fabs(v) < 5e-7) v = 0; /* never "-0" */
            rn_buf_printf(&b, " %.6f", v);
        }
        rn_buf_printf(&b, "\n");
    }
    rc = rn_fs_write_atomic(out, b.data, b.len, errbuf, errlen);
done:
    rn_buf_free(&b);
    free(mean);
    free(C);
    free(w);
    free(V);
    free(order);
    rn_embed_destroy(t);
    return rc;
}

static int rn__reduce_usage(FILE *f)
{
    fprintf(f, "usage: runnel embed-reduce IN OUT --dim N\n"
               "  Writes IN's item table in N dimensions (its top N principal components) to\n"
               "  OUT, the same items: a distilled student's\n"
               "  student_embeddings (docs/learning.md, \"Distillation\").\n");
    return f == stdout ? 0 : 2;
}

int rn_embed_reduce_main(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    long dim = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return rn__reduce_usage(stdout);
        if (strcmp(argv[i], "--dim") == 0 && i + 1 < argc) {
            char *end;
            dim = strtol(argv[++i], &end, 10);
            if (*end || dim < 1 || dim > 4096) {
                fprintf(stderr,
                        "runnel embed-reduce: --dim wants a whole number 1..4096, not '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "runnel embed-reduce: unknown option '%s'\n", argv[i]);
            return rn__reduce_usage(stderr);
        } else if (!in) {
            in = argv[i];
        } else if (!out) {
            out = argv[i];
        } else {
            return rn__reduce_usage(stderr);
        }
    }
    if (!in || !out || !dim) return rn__reduce_usage(stderr);
    char err[512];
    double kept;
    if (rn_embed_reduce(in, (uint32_t)dim, out, &kept, err, sizeof err)) {
        fprintf(stderr, "runnel embed-reduce: %s\n", err);
        return 1;
    }
    printf("%s: %ld dimensions, %.1f %% of the variance\n", out, dim, 100 * kept);
    return 0;
}
