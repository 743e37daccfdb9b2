/*
 * rn_models_int.h — `runnel models` and the model-store operations it shares
 * with the status server's /api/v1/models endpoints (rn_status.c).
 * Engine-internal: only main.c and rn_status.c use it.
 */
#ifndef RUNNEL_RN_MODELS_INT_H
#define RUNNEL_RN_MODELS_INT_H

#include "rn_common.h"

/* The subcommand: argv[0] is "models", the action and its arguments follow.
 * Returns the process exit code: 0 done (or --help), 1 failed, 2 bad usage. */
int rn_models_main(int argc, char **argv);

/* The pinned version of the store in dir (its PINNED file), or -1 when none.
 * Returns 0, or RN_ECORRUPT with a message when PINNED is not a number. */
int rn__models_pinned(const char *dir, int64_t *id, char *errbuf, size_t errlen);

/* Appends the store as one JSON object to b:
 *   {"store":DIR,"current":N|null,"pinned":N|null,"versions":[{"id":..,
 *    "created_ms":..,"event_time":..,"updates":..,"transitions":..,"loss":..,
 *    "mean_q":..}, ...]}   (versions ascending)
 * Returns 0, or < 0 with a message (and nothing appended). */
int rn__models_json(const char *dir, struct rn_buf *b, char *errbuf, size_t errlen);

/* Pins the version listed just before the current one (pinned, else newest).
 * *from and *to get the two ids. Returns 0; RN_ENOENT when the store is
 * empty or the current version is its oldest; other errors with a message. */
int rn__models_rollback(const char *dir, int64_t *from, int64_t *to, char *errbuf, size_t errlen);

#endif
