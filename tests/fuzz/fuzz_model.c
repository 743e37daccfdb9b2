/*
 * fuzz_model.c — the model file readers: safetensors (rn_st_parse) into a
 * model of any kind (rn_model_from_st: the dueling Q or an actor, scored once
 * when it loads), a state network file
 * (rn_statenet_load), an embeddings text file (rn_embed_load), and a model
 * store's version manifests vN.json and PINNED file (rn_store_list,
 * rn_store_current, and the listing the REST API and `runnel models` print),
 * and a model topic's message (rn_model_decode: what a Kafka topic hands the
 * topic feed).
 *
 * The first byte picks the reader; the rest is the file:
 *   0 safetensors -> model   1 state network   2 embeddings
 *   3 a version manifest v000000000001.json   4 PINNED (with one manifest)
 *   5 a model topic message
 * Bad files must be refused with a message naming them; anything else that
 * happens (a crash, a leak, undefined behaviour, a silent refusal) is a bug.
 *
 * With RN_FUZZ_WRITE_SEEDS=DIR set, the harness writes a valid file of each
 * kind into DIR as seeds and exits.
 */
#include <stdint.h>
#include <sys/stat.h>

#include "fuzz_util.h"
#include "rn_model.h"
#include "rn_statenet.h"
#include "rn_statenet_int.h"

int rn__models_json(const char *dir, struct rn_buf *b, char *errbuf, size_t errlen);

static void rn_fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz_model: %s\n", what);
    abort();
}

static void rn_fuzz_seed(const char *dir, const char *name, int kind, const char *from)
{
    size_t len;
    char *data = rn_fs_read_all(from, &len);
    if (!data) rn_fuzz_fail("cannot read a seed back");
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) rn_fuzz_fail("cannot write a seed");
    fputc(kind, f);
    fwrite(data, 1, len, f);
    fclose(f);
    free(data);
}

static void rn_fuzz_write_seeds(const char *dir)
{
    char err[512], store[300], path[600];
    snprintf(store, sizeof store, "%s/seed-store", rn_fuzz_dir());
    struct rn_model_shape sh = {.dim = 4, .phi = 6, .buckets = 8, .positions = 3};
    struct rn_model *m = rn_model_create(&sh);
    for (size_t i = 0; i < m->at.n; i++)
        m->params[i] = (float)i / 7.0f;
    struct rn_model_version v = {12, 1700000000000, 1700000000500, 40, 80, 0.25, -1.5};
    if (rn_store_publish(store, m, &v, err, sizeof err)) rn_fuzz_fail(err);
    struct rn_buf msg = RN_BUF_INIT;
    if (rn_model_encode(m, &v, &msg, err, sizeof err)) rn_fuzz_fail(err);
    rn_fuzz_seed(dir, "topic-message", 5, rn_fuzz_file("msg.bin", msg.data, msg.len));
    rn_buf_free(&msg);
    rn_model_destroy(m);
    rn_store_path(store, 12, ".safetensors", path, sizeof path);
    rn_fuzz_seed(dir, "model.safetensors", 0, path);
    rn_store_path(store, 12, ".json", path, sizeof path);
    rn_fuzz_seed(dir, "manifest.json", 3, path);
    /* an actor (runnel-actor/1) with its perturbation layer */
    struct rn_model_shape ash = {.dim = 3, .phi = 4, .buckets = 5, .positions = 0};
    ash.kind = RN_MODEL_ACTOR;
    ash.activation = RN_ACTOR_TANH;
    ash.perturb = 1;
    ash.scale = 0.5f;
    ash.pscale = 0.05f;
    m = rn_model_create(&ash);
    for (size_t i = 0; i < m->at.n; i++)
        m->params[i] = (float)i / 13.0f;
    v.id = 13;
    if (rn_store_publish(store, m, &v, err, sizeof err)) rn_fuzz_fail(err);
    rn_model_destroy(m);
    rn_store_path(store, 13, ".safetensors", path, sizeof path);
    rn_fuzz_seed(dir, "actor.safetensors", 0, path);

    struct rn_statenet *n = rn__statenet_create(4, 4, 2, 2, 3, RN_SN_CONTEXT, 5, err, sizeof err);
    if (!n) rn_fuzz_fail(err);
    for (size_t i = 0; i < n->at.n; i++)
        n->params[i] = (float)i / 11.0f;
    const char *mk[] = {"format", "context_features", "half_life_ms"};
    const char *mv[] = {"runnel-statenet", "sin_hour,cos_hour,history_fill", "86400000"};
    snprintf(path, sizeof path, "%s/statenet.safetensors", rn_fuzz_dir());
    if (rn__statenet_write(path, n, n->params, mk, mv, 3, err, sizeof err)) rn_fuzz_fail(err);
    rn_statenet_destroy(n);
    rn_fuzz_seed(dir, "statenet.safetensors", 1, path);

    static const char emb[] =
        "# item vectors\na 0.1 0.2 0.3 0.4\nb -0.5 0.25 0 1e-3\n\nc 1 1 1 1\n";
    rn_fuzz_seed(dir, "embeddings.txt", 2, rn_fuzz_file("emb.txt", emb, sizeof emb - 1));
    rn_fuzz_seed(dir, "pinned", 4, rn_fuzz_file("pin.txt", "12\n", 3));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *seeds = getenv("RN_FUZZ_WRITE_SEEDS");
    if (seeds) {
        rn_fuzz_write_seeds(seeds);
        exit(0);
    }
    return 0;
}

static void rn_fuzz_store(const uint8_t *data, size_t size, int pinned)
{
    char store[300], err[1024] = "";
    snprintf(store, sizeof store, "%s/store", rn_fuzz_dir());
    mkdir(store, 0777);
    static const char man[] = "{\"id\":1,\"created_ms\":5,\"event_time\":6,\"updates\":7,"
                              "\"transitions\":8,\"loss\":0.5,\"mean_q\":1}\n";
    if (pinned) {
        rn_fuzz_file("store/v000000000001.json", man, sizeof man - 1);
        rn_fuzz_file("store/PINNED", data, size);
    } else {
        rn_fuzz_file("store/v000000000001.json", data, size);
    }
    struct rn_model_version *vs = NULL;
    size_t n = 0;
    int rc = rn_store_list(store, &vs, &n, err, sizeof err);
    if (rc && !err[0]) rn_fuzz_fail("store list failed without a message");
    free(vs);
    int64_t id;
    err[0] = 0;
    if (rn_store_current(store, &id, err, sizeof err) && !err[0])
        rn_fuzz_fail("current version failed without a message");
    struct rn_buf b = RN_BUF_INIT;
    err[0] = 0;
    if (rn__models_json(store, &b, err, sizeof err) && !err[0])
        rn_fuzz_fail("listing failed without a message");
    rn_buf_free(&b);
    char path[400];
    snprintf(path, sizeof path, "%s/store/PINNED", rn_fuzz_dir());
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char err[1024] = "";
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0]) {
    case 0: {
        struct rn_st_file *f = rn_st_parse(p, n, err, sizeof err);
        if (!f) {
            if (!err[0]) rn_fuzz_fail("safetensors refused without a message");
            break;
        }
        struct rn_model *m = rn_model_from_st(f, "<buffer>", err, sizeof err);
        if (!m && !err[0]) rn_fuzz_fail("model refused without a message");
        if (m) {
            /* a model that loads scores (any kind): one candidate, zero inputs */
            float *phi = calloc(m->shape.phi, sizeof *phi), *E = calloc(m->shape.dim, sizeof *E);
            float out;
            uint64_t id = 1;
            rn_model_advantages(m, phi, E, &id, 1, &out);
            free(phi);
            free(E);
        }
        rn_model_destroy(m);
        rn_st_free(f);
        break;
    }
    case 1: {
        struct rn_statenet *sn =
            rn_statenet_load(rn_fuzz_file("sn.safetensors", p, n), err, sizeof err);
        if (!sn && !err[0]) rn_fuzz_fail("state network refused without a message");
        rn_statenet_destroy(sn);
        break;
    }
    case 2: {
        struct rn_embed *e = rn_embed_load(rn_fuzz_file("emb.txt", p, n), err, sizeof err);
        if (!e && !err[0]) rn_fuzz_fail("embeddings refused without a message");
        if (e) rn_embed_destroy(e);
        break;
    }
    case 3:
        rn_fuzz_store(p, n, 0);
        break;
    case 4:
        rn_fuzz_store(p, n, 1);
        break;
    case 5: {
        struct rn_model_version v;
        struct rn_model *m = rn_model_decode(p, n, "topic t partition 0 offset 1", &v, err,
                                             sizeof err);
        if (!m && !err[0]) rn_fuzz_fail("model topic message refused without a message");
        if (m && v.id <= 0) rn_fuzz_fail("model topic message accepted without a version id");
        rn_model_destroy(m);
        break;
    }
    }
    return 0;
}
