/*
 * test_auth.c — bearer tokens (rn_auth.c): which listen addresses count as
 * loopback-only, how the Authorization header is checked, and the token file
 * (made with mode 0600 on first use, read back, refused when empty).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_auth_int.h"
#include "rn_test.h"

static int allowed(const char *header, const char *token)
{
    struct rn_http_request req;
    memset(&req, 0, sizeof req);
    req.authorization = header;
    return rn_token_check(&req, token);
}

static void test_loopback(void)
{
    CHECK(rn_addr_is_loopback("127.0.0.1:8091"));
    CHECK(rn_addr_is_loopback("127.3.2.1:0"));
    CHECK(rn_addr_is_loopback("localhost:80"));
    CHECK(rn_addr_is_loopback("[::1]:8091"));
    CHECK(!rn_addr_is_loopback("0.0.0.0:8091"));
    CHECK(!rn_addr_is_loopback("10.1.2.3:8091"));
    CHECK(!rn_addr_is_loopback("[::]:8091"));
    CHECK(!rn_addr_is_loopback("128.0.0.1:8091"));
    CHECK(!rn_addr_is_loopback("nonsense"));
}

static void test_check(void)
{
    const char *tok = "0123456789abcdef";
    CHECK(allowed("Bearer 0123456789abcdef", tok));
    CHECK(allowed("bearer 0123456789abcdef", tok)); /* the scheme is case-insensitive */
    CHECK(!allowed("Bearer 0123456789abcdeF", tok));
    CHECK(!allowed("Bearer 0123456789abcde", tok));   /* a prefix */
    CHECK(!allowed("Bearer 0123456789abcdef0", tok)); /* longer */
    CHECK(!allowed("Bearer ", tok));
    CHECK(!allowed("Basic 0123456789abcdef", tok));
    CHECK(!allowed("", tok));
    CHECK(!allowed(NULL, tok));
    CHECK(!allowed("Bearer ", "")); /* an empty token allows nothing */
}

static void test_file(void)
{
    char dir[] = "/tmp/rn-auth-XXXXXX", path[256], tok[RN_TOKEN_MAX], tok2[RN_TOKEN_MAX];
    char err[512];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/sub/token", dir);
    CHECK(rn_token_load(path, 0, tok, sizeof tok, err, sizeof err) < 0); /* missing, no create */
    CHECK_STR_CONTAINS(err, path);
    CHECK_EQ_INT(rn_token_load(path, 1, tok, sizeof tok, err, sizeof err), 0);
    CHECK_EQ_INT(strlen(tok), 64);
    CHECK_EQ_INT(strspn(tok, "0123456789abcdef"), 64);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    /* A second start reads the same token; it does not make a new one. */
    CHECK_EQ_INT(rn_token_load(path, 1, tok2, sizeof tok2, err, sizeof err), 0);
    CHECK(strcmp(tok, tok2) == 0);
    char hdr[RN_TOKEN_MAX + 8];
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    CHECK(allowed(hdr, tok2));
    /* An empty file is an error naming it, not an empty token. */
    FILE *f = fopen(path, "w");
    fputs("\n", f);
    fclose(f);
    CHECK(rn_token_load(path, 1, tok, sizeof tok, err, sizeof err) < 0);
    CHECK_STR_CONTAINS(err, "one line");
    unlink(path);
    snprintf(path, sizeof path, "%s/sub", dir);
    rmdir(path);
    rmdir(dir);
}

int main(void)
{
    test_loopback();
    test_check();
    test_file();
    return rn_test_summary();
}
