/*
 * rn_auth.c — who may change what on an HTTP listener of runnel (the
 * coordinator's, a job's status page).
 *
 * A listener that binds loopback only is reachable only from this machine,
 * whose users can read the token file anyway; there every call is allowed.
 * A listener on any other address requires "Authorization: Bearer <token>"
 * on every call that changes something. The token is a file of 64 hex digits,
 * created with mode 0600 on the first start (from getrandom()), read by the
 * coordinator, the workers and the CLI. The compare looks at every byte
 * whatever the first difference, so its time does not tell how much of a
 * guess was right.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_auth_int.h"
#include "rn_fs.h"

int rn_token_load(const char *path, int create, char *tok, size_t toklen, char *errbuf,
                  size_t errlen)
{
    size_t len = 0;
    char *text = rn_fs_read_all(path, &len);
    if (!text && errno == ENOENT && create) {
        unsigned char raw[32];
        if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
            rn_errf(errbuf, errlen, "%s: cannot draw random bytes for a token: %s", path,
                    strerror(errno));
            return RN_EIO;
        }
        char hex[sizeof raw * 2 + 2];
        for (size_t i = 0; i < sizeof raw; i++)
            snprintf(hex + 2 * i, 3, "%02x", raw[i]);
        strcat(hex, "\n");
        if (rn_fs_mkdirs_for(path, errbuf, errlen)) return RN_EIO;
        /* O_EXCL: two processes starting together do not overwrite each other. */
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            ssize_t w = write(fd, hex, strlen(hex));
            int ok = w == (ssize_t)strlen(hex) && fsync(fd) == 0;
            close(fd);
            if (!ok) {
                rn_errf(errbuf, errlen, "%s: cannot write the token: %s", path, strerror(errno));
                unlink(path);
                return RN_EIO;
            }
        } else if (errno != EEXIST) {
            rn_errf(errbuf, errlen, "%s: cannot create the token file: %s", path, strerror(errno));
            return RN_EIO;
        }
        text = rn_fs_read_all(path, &len);
    }
    if (!text) {
        rn_errf(errbuf, errlen, "%s: cannot read the token file: %s", path, strerror(errno));
        return RN_EIO;
    }
    size_t n = strcspn(text, "\r\n");
    if (n == 0 || n >= toklen || n >= RN_TOKEN_MAX) {
        rn_errf(errbuf, errlen, "%s: the token file must hold one line of 1 to %d characters", path,
                RN_TOKEN_MAX - 1);
        free(text);
        return RN_EINVAL;
    }
    memcpy(tok, text, n);
    tok[n] = 0;
    free(text);
    return 0;
}

int rn_token_check(const struct rn_http_request *req, const char *token)
{
    const char *h = req->authorization;
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return 0;
    h += 7;
    size_t hl = strlen(h), tl = strlen(token);
    /* Every byte of the token is looked at, whatever the given value. */
    unsigned char diff = (unsigned char)(hl != tl);
    for (size_t i = 0; i < tl; i++)
        diff |= (unsigned char)(token[i] ^ (i < hl ? h[i] : 0));
    return diff == 0 && tl > 0;
}

int rn_addr_is_loopback(const char *addr)
{
    if (strncmp(addr, "[::1]:", 6) == 0) return 1;
    if (strncmp(addr, "localhost:", 10) == 0) return 1;
    const char *colon = strrchr(addr, ':');
    char host[64];
    if (!colon || (size_t)(colon - addr) >= sizeof host) return 0;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) != 1) return 0;
    return (ntohl(a.s_addr) >> 24) == 127;
}
