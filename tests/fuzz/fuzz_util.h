/*
 * fuzz_util.h — what the libFuzzer harnesses in tests/fuzz/ share: a scratch
 * directory of their own (under $TMPDIR, removed at exit) and writing the
 * fuzzer's bytes into a file there, for the readers that take a path.
 *
 * Every harness runs single-threaded in the fuzzer's process; the helpers
 * keep no state but the directory's name.
 */
#ifndef RUNNEL_FUZZ_UTIL_H
#define RUNNEL_FUZZ_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_fs_int.h"

static char rn_fuzz_dir_path[256];

static void rn_fuzz_dir_remove(void)
{
    char err[256];
    if (rn_fuzz_dir_path[0]) rn_fs_rmtree(rn_fuzz_dir_path, err, sizeof err);
}

/* The harness's scratch directory, made on first use and removed at exit.
 * The string is static; it is never freed. Aborts if it cannot be made: a
 * harness that cannot write its input would test nothing. */
static const char *rn_fuzz_dir(void)
{
    if (rn_fuzz_dir_path[0]) return rn_fuzz_dir_path;
    const char *tmp = getenv("TMPDIR");
    snprintf(rn_fuzz_dir_path, sizeof rn_fuzz_dir_path, "%s/rn_fuzz_XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(rn_fuzz_dir_path)) {
        perror("mkdtemp");
        abort();
    }
    atexit(rn_fuzz_dir_remove);
    return rn_fuzz_dir_path;
}

/* Writes n bytes to `name` in the scratch directory and returns its path
 * (static storage, overwritten by the next call). Aborts on failure. */
static const char *rn_fuzz_file(const char *name, const void *data, size_t n)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", rn_fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
    return path;
}

#endif
