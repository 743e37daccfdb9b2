/*
 * rn_auth_int.h — bearer tokens for HTTP listeners that are not loopback-only
 * (rn_auth.c). See docs/operations.md.
 */
#ifndef RUNNEL_RN_AUTH_INT_H
#define RUNNEL_RN_AUTH_INT_H

#include "rn_common.h"
#include "rn_http_int.h"

#define RN_TOKEN_MAX 128

/* Reads the token in `path` (its first line) into tok. With create, a
 * missing file is created first (mode 0600, 32 random bytes as hex). Returns 0,
 * or < 0 with a message. */
int rn_token_load(const char *path, int create, char *tok, size_t toklen, char *errbuf,
                  size_t errlen);
/* Whether the request carries "Authorization: Bearer <token>"; the compare
 * takes the same time wherever the first difference is. */
int rn_token_check(const struct rn_http_request *req, const char *token);
/* Whether the bound "host:port" accepts only loopback connections. */
int rn_addr_is_loopback(const char *addr);

#endif
