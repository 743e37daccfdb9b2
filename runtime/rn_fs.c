/*
 * rn_fs.c — directory and durable-file helpers (see rn_fs.h).
 *
 * rn_fs_write_atomic is the step every checkpoint completes with: the data
 * goes to "<path>.tmp", is fsync'ed, renamed over <path>, and the directory is
 * fsync'ed, so after a crash <path> is either the old file or the new one,
 * never a torn mix.
 */
#define _XOPEN_SOURCE 700
#include "rn_fs_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rn_fs_mkdirs(const char *path, char *errbuf, size_t errlen)
{
    char *tmp = rn_xstrdup(path);
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/') tmp[--n] = 0;
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
                rn_errf(errbuf, errlen, "cannot create directory '%s': %s", tmp, strerror(errno));
                free(tmp);
                return RN_EIO;
            }
            *p = c;
            if (!c) break;
        }
    }
    free(tmp);
    return 0;
}

int rn_fs_mkdirs_for(const char *path, char *errbuf, size_t errlen)
{
    char *tmp = rn_xstrdup(path);
    char *slash = strrchr(tmp, '/');
    int rc = 0;
    if (slash && slash != tmp) {
        *slash = 0;
        rc = rn_fs_mkdirs(tmp, errbuf, errlen);
    }
    free(tmp);
    return rc;
}

static int rn__rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    return rc != 0 && errno != ENOENT ? -1 : 0;
}

int rn_fs_rmtree(const char *path, char *errbuf, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0) return 0;
    if (nftw(path, rn__rm_one, 32, FTW_DEPTH | FTW_PHYS) != 0) {
        rn_errf(errbuf, errlen, "cannot remove '%s': %s", path, strerror(errno));
        return RN_EIO;
    }
    return 0;
}

static int rn__copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[65536];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        if (write(out, buf, (size_t)n) != n) {
            rc = -1;
            break;
        }
    }
    if (n < 0) rc = -1;
    if (fsync(out) != 0) rc = -1;
    close(in);
    close(out);
    return rc;
}

int rn_fs_clone_dir(const char *from, const char *to, const char *link_suffix, char *errbuf,
                    size_t errlen)
{
    if (rn_fs_mkdirs(to, errbuf, errlen)) return RN_EIO;
    DIR *d = opendir(from);
    if (!d) {
        rn_errf(errbuf, errlen, "cannot read directory '%s': %s", from, strerror(errno));
        return RN_EIO;
    }
    size_t sl = strlen(link_suffix);
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char src[4096], dst[4096];
        snprintf(src, sizeof src, "%s/%s", from, e->d_name);
        snprintf(dst, sizeof dst, "%s/%s", to, e->d_name);
        size_t nl = strlen(e->d_name);
        int linkable = nl >= sl && strcmp(e->d_name + nl - sl, link_suffix) == 0;
        if (linkable && link(src, dst) == 0) continue;
        if (rn__copy_file(src, dst) != 0) {
            rn_errf(errbuf, errlen, "cannot copy '%s' to '%s': %s", src, dst, strerror(errno));
            rc = RN_EIO;
            break;
        }
    }
    closedir(d);
    return rc;
}

int rn_fs_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return RN_EIO;
    int rc = fsync(fd) == 0 ? 0 : RN_EIO;
    close(fd);
    return rc;
}

int rn_fs_write_atomic(const char *path, const void *data, size_t len, char *errbuf, size_t errlen)
{
    size_t pl = strlen(path) + 8;
    char *tmp = rn_xmalloc(pl);
    snprintf(tmp, pl, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rn_errf(errbuf, errlen, "cannot create '%s': %s", tmp, strerror(errno));
        free(tmp);
        return RN_EIO;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, (const char *)data + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rn_errf(errbuf, errlen, "cannot write '%s': %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return RN_EIO;
        }
        done += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        rn_errf(errbuf, errlen, "cannot fsync '%s': %s", tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return RN_EIO;
    }
    if (rename(tmp, path) != 0) {
        rn_errf(errbuf, errlen, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return RN_EIO;
    }
    free(tmp);
    char *dcopy = rn_xstrdup(path);
    rn_fs_fsync_dir(dirname(dcopy));
    free(dcopy);
    return 0;
}

char *rn_fs_read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct rn_buf b = RN_BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) rn_buf_append(&b, chunk, n);
    int err = ferror(f);
    fclose(f);
    if (err) {
        rn_buf_free(&b);
        return NULL;
    }
    rn_buf_putc(&b, 0);
    if (len) *len = b.len - 1;
    return b.data;
}

int rn_fs_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static _Thread_local uint64_t rn__du_total;

static int rn__du_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F) rn__du_total += (uint64_t)st->st_size;
    return 0;
}

uint64_t rn_fs_du(const char *path)
{
    rn__du_total = 0;
    nftw(path, rn__du_one, 16, FTW_PHYS);
    return rn__du_total;
}
