/*
 * st_dump.c — rn_st_dump FILE: prints a safetensors file as runnel reads it,
 * for tests that compare against files written by other tools:
 *
 *   meta KEY VALUE
 *   tensor NAME [d0,d1,...] v0 v1 ...      (values as %.9g, enough for floats)
 *
 * Metadata first, then tensors in header order. Exits 1 with the reader's
 * message when the file is rejected, 2 on bad usage.
 */
#include <stdio.h>

#include "rn_model.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: rn_st_dump FILE.safetensors\n");
        return 2;
    }
    char err[1024];
    struct rn_st_file *f = rn_st_read(argv[1], err, sizeof err);
    if (!f) {
        fprintf(stderr, "rn_st_dump: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < f->n_meta; i++)
        printf("meta %s %s\n", f->meta_keys[i], f->meta_vals[i]);
    for (size_t i = 0; i < f->n; i++) {
        const struct rn_tensor *t = &f->tensors[i];
        uint64_t count = 1;
        printf("tensor %s [", t->name);
        for (uint32_t d = 0; d < t->ndim; d++) {
            printf("%s%llu", d ? "," : "", (unsigned long long)t->shape[d]);
            count *= t->shape[d];
        }
        putchar(']');
        for (uint64_t k = 0; k < count; k++)
            printf(" %.9g", t->data[k]);
        putchar('\n');
    }
    rn_st_free(f);
    return 0;
}
