/*
 * rn_fs.h — the file-system steps that durability rests on, in one place:
 * making directories, removing trees, linking a checkpoint's files, and
 * replacing a file atomically (write, fsync, rename, fsync the directory).
 * Each returns 0 or a negative RN_E* code with a message naming the path.
 */
#ifndef RUNNEL_RN_FS_H
#define RUNNEL_RN_FS_H

#include "rn_common.h"

/* mkdir -p path. */
int rn_fs_mkdirs(const char *path, char *errbuf, size_t errlen);
/* mkdir -p of the directory part of path. */
int rn_fs_mkdirs_for(const char *path, char *errbuf, size_t errlen);
/* rm -rf path (missing is fine). */
int rn_fs_rmtree(const char *path, char *errbuf, size_t errlen);
/* Copies directory `from` into new directory `to` (flat), hard-linking files
 * whose name ends in `link_suffix` (immutable ones, such as ".sst") and
 * copying the rest. */
int rn_fs_clone_dir(const char *from, const char *to, const char *link_suffix, char *errbuf,
                    size_t errlen);
/* Replaces `path` with `len` bytes atomically and durably. */
int rn_fs_write_atomic(const char *path, const void *data, size_t len, char *errbuf,
                       size_t errlen);
/* Reads a whole file (malloc'd, NUL-terminated) or returns NULL. */
char *rn_fs_read_all(const char *path, size_t *len);
int rn_fs_fsync_dir(const char *dir);
int rn_fs_exists(const char *path);
/* Total bytes of regular files under path (for sizes on the status page). */
uint64_t rn_fs_du(const char *path);

#endif
