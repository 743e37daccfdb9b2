/*
 * rn_fs.h — the file steps a sink's durability rests on: making directories
 * and replacing a file atomically (write, fsync, rename, fsync the
 * directory). Each returns 0 or a negative RN_E* code with a message naming
 * the path. The runtime's own file work (checkpoint trees, links, sizes) is
 * in runtime/rn_fs_int.h.
 */
#ifndef RUNNEL_RN_FS_H
#define RUNNEL_RN_FS_H

#include "rn_common.h"

/* mkdir -p path. */
int rn_fs_mkdirs(const char *path, char *errbuf, size_t errlen);
/* mkdir -p of the directory part of path. */
int rn_fs_mkdirs_for(const char *path, char *errbuf, size_t errlen);
/* Replaces `path` with `len` bytes atomically and durably. */
int rn_fs_write_atomic(const char *path, const void *data, size_t len, char *errbuf,
                       size_t errlen);
/* Reads a whole file (malloc'd, NUL-terminated; the caller frees it) or
 * returns NULL. */
char *rn_fs_read_all(const char *path, size_t *len);

#endif
