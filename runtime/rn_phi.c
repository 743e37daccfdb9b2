/*
 * rn_phi.c — φ(s), the state features, one mechanism for every place that
 * needs them (rn_model.h): the value_advantage_learner (φ(s) and φ(s') of
 * each transition), the inference operator (φ at the request's time), the
 * simulator's `model:` policy and `runnel evaluate`'s model policy.
 *
 * A spec is either the simple φ (rn_phi_simple) or a pretrained state
 * network (rn_statenet.h). For the network, the history is walked once,
 * oldest first: each item found in the embedding table joins the long-term
 * sums at its time and a ring of the last k items; then the sums are decayed
 * to `now` and rn__sn_inputs lays out H, longterm and ctx — the same code,
 * in the same order, as `runnel pretrain` builds its training examples with
 * (rn_pretrain.c), so the network sees online what it was trained on. The
 * only difference is how far back the history goes: pretrain's long-term
 * vector covers every earlier click, online it covers the `history` latest
 * items the operators keep.
 *
 * Request context (rn_phi_spec_set_context): the simple φ is followed by the
 * C context values as they are (NaN, a missing field, as 0); scaling them is
 * the job's business. A state network is not given them (it was trained on
 * its own RN_SN_CONTEXT features), so a spec refuses both at once.
 *
 * Scratch is the caller's (rn_phi_scratch_size), so one spec serves any
 * number of threads.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "rn_model.h"
#include "rn_statenet_int.h"

int rn_phi_spec_open(struct rn_phi_spec *spec, uint32_t history, double half_life_ms,
                     const char *state_network, const struct rn_embed *emb, char *errbuf,
                     size_t errlen)
{
    *spec = (struct rn_phi_spec){.history = history, .half_life_ms = half_life_ms};
    if (!state_network) return 0;
    struct rn_statenet *n = rn_statenet_load(state_network, errbuf, errlen);
    if (!n) return RN_EIO;
    if (n->D != rn_embed_dim(emb)) {
        rn_errf(errbuf, errlen,
                "%s: state network of item dimension %u, but the embedding table's is %u",
                state_network, n->D, rn_embed_dim(emb));
        goto fail;
    }
    if (n->n_ctx != RN_SN_CONTEXT) {
        rn_errf(errbuf, errlen,
                "%s: state network with %u context features; runnel builds %u (sin and cos "
                "of the hour, the history's fill)",
                state_network, n->n_ctx, RN_SN_CONTEXT);
        goto fail;
    }
    if (n->k > history) {
        rn_errf(errbuf, errlen,
                "%s: state network over the last %u items, but the state features use only %u "
                "(raise `history` to at least %u)",
                state_network, n->k, history, n->k);
        goto fail;
    }
    spec->net = n;
    spec->owned = 1;
    return 0;

fail:
    rn_statenet_destroy(n);
    return RN_EINVAL;
}

int rn_phi_spec_set_context(struct rn_phi_spec *spec, uint32_t n_context, char *errbuf,
                            size_t errlen)
{
    if (n_context && spec->net) {
        rn_errf(errbuf, errlen,
                "context_fields with a state network: the network takes only its own %u context "
                "features (sin and cos of the hour, the history's fill), not the request's",
                RN_SN_CONTEXT);
        return RN_EINVAL;
    }
    spec->n_context = n_context;
    return 0;
}

void rn_phi_spec_close(struct rn_phi_spec *spec)
{
    if (spec->owned) rn_statenet_destroy((struct rn_statenet *)spec->net);
    spec->net = NULL;
    spec->owned = 0;
}

uint32_t rn_phi_dim(const struct rn_phi_spec *spec, const struct rn_embed *emb)
{
    return spec->net ? spec->net->S : RN_PHI_SIMPLE_DIM(rn_embed_dim(emb)) + spec->n_context;
}

/* The network's scratch: sum (D doubles) | ring, last (k pointers each) | H (k x D) |
 * longterm (D) | ctx (RN_SN_CONTEXT floats). Doubles and pointers first, so
 * every part is aligned when the start is. */
size_t rn_phi_scratch_size(const struct rn_phi_spec *spec, const struct rn_embed *emb)
{
    const struct rn_statenet *n = spec->net;
    (void)emb;
    if (!n) return 0;
    return n->D * sizeof(double) + 2 * (size_t)n->k * sizeof(const float *) +
           ((size_t)n->k * n->D + n->D + RN_SN_CONTEXT) * sizeof(float);
}

void rn_phi_compute(const struct rn_phi_spec *spec, const struct rn_embed *emb,
                    const struct rn_hist *h, uint32_t n, int64_t now, float *phi, void *scratch)
{
    rn_phi_compute_ctx(spec, emb, h, n, now, NULL, 0, phi, scratch);
}

void rn_phi_compute_ctx(const struct rn_phi_spec *spec, const struct rn_embed *emb,
                        const struct rn_hist *h, uint32_t n, int64_t now, const double *cv,
                        uint32_t n_cv, float *phi, void *scratch)
{
    const struct rn_statenet *net = spec->net;
    if (!net) {
        rn_phi_simple(emb, spec->history, spec->half_life_ms, h, n, now, phi);
        float *c = phi + RN_PHI_SIMPLE_DIM(rn_embed_dim(emb));
        for (uint32_t i = 0; i < spec->n_context; i++) {
            double v = cv && i < n_cv ? cv[i] : 0.0;
            c[i] = v == v ? (float)v : 0.0f;
        }
        return;
    }
    assert(spec->n_context == 0);
    const uint32_t k = net->k, D = net->D;
    double *sum = scratch;
    const float **ring = (const float **)(sum + D), **last = ring + k;
    float *H = (float *)(last + k), *longterm = H + (size_t)k * D, *ctx = longterm + D;
    struct rn__sn_longterm lt;
    rn__sn_longterm_init(&lt, D, net->half_life_ms, sum);
    uint32_t found = 0;
    for (uint32_t i = n > spec->history ? n - spec->history : 0; i < n; i++) {
        const float *e = rn_embed_get(emb, h[i].item_id);
        if (!e) continue;
        rn__sn_longterm_decay(&lt, h[i].ts);
        rn__sn_longterm_add(&lt, e);
        ring[found++ % k] = e;
    }
    rn__sn_longterm_decay(&lt, now);
    uint32_t n_last = found < k ? found : k;
    for (uint32_t r = 0; r < n_last; r++)
        last[r] = ring[(found - n_last + r) % k];
    rn__sn_inputs(&lt, k, last, n_last, now, H, longterm, ctx);
    rn_statenet_forward(net, H, n_last, longterm, ctx, phi);
}

/* ---- the state-feature settings of an operator ------------------------------------ */

int rn_phi_cfg_init(struct rn_phi_cfg *c, char *errbuf, size_t errlen)
{
    int rc = rn_context_fields_parse(c->context_node, c->ctx_names, &c->n_ctx, errbuf, errlen);
    if (rc) return rc;
    if (c->n_ctx && c->state_network) {
        rn_cfg_errf(errbuf, errlen, c->context_node,
                    "'context_fields' with 'state_network': a state network takes only its own "
                    "context features; leave one out");
        return RN_EINVAL;
    }
    return 0;
}

int rn_phi_cfg_init_types(struct rn_phi_cfg *c, struct rn_types *ts, char *errbuf, size_t errlen)
{
    if (rn_context_fields_set(ts, c->ctx_names, c->n_ctx)) {
        rn_cfg_errf(errbuf, errlen, c->context_node,
                    "'context_fields' differs from another operator's list in this job");
        return RN_EINVAL;
    }
    return 0;
}

int rn_phi_cfg_open(const struct rn_phi_cfg *c, struct rn_embed **emb, struct rn_phi_spec *spec,
                    char *errbuf, size_t errlen)
{
    *emb = rn_embed_acquire(c->embeddings, errbuf, errlen);
    if (!*emb) return RN_EIO;
    if (rn_phi_spec_open(spec, (uint32_t)c->history, (double)c->half_life, c->state_network, *emb,
                         errbuf, errlen) ||
        rn_phi_spec_set_context(spec, c->n_ctx, errbuf, errlen))
        return RN_EINVAL;
    return 0;
}
