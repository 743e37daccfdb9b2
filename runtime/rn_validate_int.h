/*
 * rn_validate_int.h — checking a job's YAML over HTTP (POST /api/v1/validate),
 * for the web UI's submit form: the answer lists each problem with its line
 * and column.
 */
#ifndef RUNNEL_RN_VALIDATE_INT_H
#define RUNNEL_RN_VALIDATE_INT_H

#include "rn_http.h"

/* Answers POST /api/v1/validate[?file=NAME] (body: the job's YAML) with
 *   200 {"ok":true,"job":NAME,"problems":[]}
 *   200 {"ok":false,"error":TEXT,"problems":[{"line":L,"column":C,"message":M},..]}
 * (line and column 0 for a problem that names no place). Uses a temporary file
 * under dir (created if missing), removed before it returns. Runs nothing; any
 * thread that may load a job. */
void rn__validate_http(const char *dir, const struct rn_http_request *req,
                       struct rn_http_response *res);

#endif
