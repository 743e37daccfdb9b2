/*
 * rn_serve_int.h — private to the engine: the serving server of a job
 * (rn_serve.c), where operator instances' HTTP routes are served.
 */
#ifndef RUNNEL_RN_SERVE_INT_H
#define RUNNEL_RN_SERVE_INT_H

#include "rn_common.h"

struct rn_serve;
struct rn_http_opts;
struct rn_instance;

/* Starts `threads` HTTP servers sharing `listen` (borrowed), each with the
 * limits in *http (borrowed; NULL: the defaults; keep-alive and SO_REUSEPORT
 * are always on); NULL with a message on failure. Called by rn_job_run
 * before the worker threads. */
struct rn_serve *rn__serve_start(const char *listen, int threads, const struct rn_http_opts *http,
                                 char *errbuf, size_t errlen);
/* Stops every server and frees sv (NULL: nothing). After the workers ended. */
/* Stops the servers (joins their threads); routes and figures stay readable. */
void rn__serve_stop(struct rn_serve *sv);
/* Frees what rn__serve_start made (after rn__serve_stop). */
void rn__serve_free(struct rn_serve *sv);
/* "host:port" bound (owned by sv), or "" for NULL. Any thread. */
const char *rn__serve_address(const struct rn_serve *sv);
/* Removes owner's routes, waiting for its handlers in flight (task thread,
 * before close()). */
void rn__serve_remove(struct rn_serve *sv, const struct rn_instance *owner);
/* The "serve" object of /api/v1/job ("null" without a serving server). */
void rn__serve_render_json(struct rn_serve *sv, int threads, struct rn_buf *b);

#endif
