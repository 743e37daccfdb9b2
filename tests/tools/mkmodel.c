/*
 * mkmodel.c — publishes hand-made models into a runnel model store, for tests.
 *
 *   rn_mkmodel DIR --dim D --event-time MS [--id N] [--count C --every MS]
 *              [--bias ITEM=VALUE ...] [--items N] [--random SEED]
 *              [--buckets H] [--positions P]
 *
 * Writes C versions (default 1) with ids N, N + 1, ... (default 1) and manifest event_times
 * MS, MS + every, ...: a model of item dimension D and the simple state features
 * (F = 2D + 2) whose parameters are all zero except the hashed item bias b[hash(ITEM) mod H]
 * of each --bias (so that A(s, i) is VALUE for those items and 0 for the others), plus, with
 * --random, every parameter of v, W and w drawn uniformly from [-0.5, 0.5) (a model that
 * depends on the state and the embeddings).  --items N checks that no other item of
 * i1..iN shares a biased item's bucket, so that the bias favours exactly the items named.
 * Exit status 0, 1 on a failure, 2 on a usage error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_model.h"
#include "rn_rand.h"

#define MAX_BIAS 256

static int usage(void)
{
    fputs("usage: rn_mkmodel DIR --dim D --event-time MS [--id N] [--count C --every MS]\n"
          "                  [--bias ITEM=VALUE ...] [--items N] [--random SEED]\n"
          "                  [--buckets H] [--positions P]\n",
          stderr);
    return 2;
}

static uint64_t item_hash(const char *name)
{
    return rn_hash64(name, strlen(name));
}

int main(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') return usage();
    const char *dir = argv[1];
    struct rn_model_shape shape = {.dim = 0, .buckets = 65536, .positions = 10};
    long long id = 1, count = 1, every = 0, event_time = -1, items = 0, seed = -1;
    const char *bias_item[MAX_BIAS];
    float bias_val[MAX_BIAS];
    int nbias = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage();
        i++;
        if (strcmp(a, "--dim") == 0)
            shape.dim = (uint32_t)atol(v);
        else if (strcmp(a, "--buckets") == 0)
            shape.buckets = (uint32_t)atol(v);
        else if (strcmp(a, "--positions") == 0)
            shape.positions = (uint32_t)atol(v);
        else if (strcmp(a, "--id") == 0)
            id = atoll(v);
        else if (strcmp(a, "--count") == 0)
            count = atoll(v);
        else if (strcmp(a, "--every") == 0)
            every = atoll(v);
        else if (strcmp(a, "--event-time") == 0)
            event_time = atoll(v);
        else if (strcmp(a, "--items") == 0)
            items = atoll(v);
        else if (strcmp(a, "--random") == 0)
            seed = atoll(v);
        else if (strcmp(a, "--bias") == 0) {
            const char *eq = strchr(v, '=');
            if (!eq || nbias == MAX_BIAS) return usage();
            bias_item[nbias] = strndup(v, (size_t)(eq - v));
            bias_val[nbias++] = strtof(eq + 1, NULL);
        } else {
            return usage();
        }
    }
    if (shape.dim == 0 || event_time < 0 || count < 1 || (count > 1 && every <= 0) || id < 1)
        return usage();
    shape.phi = RN_PHI_SIMPLE_DIM(shape.dim);

    struct rn_model *m = rn_model_create(&shape);
    if (!m) {
        fprintf(stderr, "mkmodel: bad model shape\n");
        return 1;
    }
    if (seed >= 0) {
        struct rn_rand r;
        rn_rand_seed(&r, (uint64_t)seed, 1);
        for (size_t k = m->at.v; k < m->at.b; k++)
            m->params[k] = (float)(rn_rand_uniform(&r) - 0.5);
    }
    for (int b = 0; b < nbias; b++) {
        uint64_t bucket = item_hash(bias_item[b]) % shape.buckets;
        m->params[m->at.b + bucket] = bias_val[b];
        for (long long n = 1; n <= items; n++) {
            char name[32];
            snprintf(name, sizeof(name), "i%lld", n);
            if (strcmp(name, bias_item[b]) != 0 && item_hash(name) % shape.buckets == bucket) {
                fprintf(stderr, "mkmodel: %s shares bucket %" PRIu64 " with %s; pick another\n",
                        name, bucket, bias_item[b]);
                return 1;
            }
        }
    }
    char err[512];
    for (long long c = 0; c < count; c++) {
        struct rn_model_version v = {.id = id + c, .event_time = event_time + c * every};
        v.created_ms = v.event_time;
        if (rn_store_publish(dir, m, &v, err, sizeof(err)) < 0) {
            fprintf(stderr, "mkmodel: %s\n", err);
            return 1;
        }
    }
    rn_model_destroy(m);
    for (int b = 0; b < nbias; b++)
        free((void *)bias_item[b]);
    return 0;
}
