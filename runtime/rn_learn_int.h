/*
 * rn_learn_int.h — what the learner (rn_model.c) shares with the distiller
 * (rn_distill.c) and nothing else: one Adam step, so that the hint projection
 * moves by exactly the rule the models do.
 */
#ifndef RUNNEL_RN_LEARN_INT_H
#define RUNNEL_RN_LEARN_INT_H

#include <stddef.h>
#include <stdint.h>

/* p -= Adam(g) for n parameters at step t >= 1 (bias-corrected); m1 and m2
 * are the moments, updated in place. All arrays are the caller's. */
void rn__adam_step(float *p, const float *g, float *m1, float *m2, size_t n, uint64_t t, float lr,
                   double beta1, double beta2, float eps);

#endif
