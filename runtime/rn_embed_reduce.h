/*
 * rn_embed_reduce.h — `runnel embed-reduce`: an item table in fewer
 * dimensions (principal components), for a distilled student's
 * `student_embeddings`. Engine-internal: main.c and tests call it.
 */
#ifndef RUNNEL_RN_EMBED_REDUCE_H
#define RUNNEL_RN_EMBED_REDUCE_H

#include <stddef.h>
#include <stdint.h>

/* Reads the table at `in`, projects every vector (centred on the table's mean)
 * onto the table's top `dim` principal components (largest variance first,
 * each component's sign fixed so that its largest entry is positive) and
 * writes `item_id v1 ... vdim` lines to `out` atomically (in the table's
 * order, by item-id hash). *explained gets the fraction of the variance kept (may be NULL).
 * Returns 0, or < 0 with a message naming the file. */
int rn_embed_reduce(const char *in, uint32_t dim, const char *out, double *explained, char *errbuf,
                    size_t errlen);

/* The subcommand: argv[0] is "embed-reduce". Returns the exit code (0, 1
 * failed, 2 bad usage). */
int rn_embed_reduce_main(int argc, char **argv);

#endif
