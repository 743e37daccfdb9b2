/*
 * rn_fs_int.h — the runtime's file work besides what sinks use (rn_fs.h):
 * removing trees, cloning a checkpoint's files (hard links for immutable
 * ones), syncing directories and sizing trees. Each returns 0 or a negative
 * RN_E* code with a message naming the path.
 */
#ifndef RUNNEL_RN_FS_INT_H
#define RUNNEL_RN_FS_INT_H

#include "rn_fs.h"

/* rm -rf path (missing is fine). */
int rn_fs_rmtree(const char *path, char *errbuf, size_t errlen);
/* Copies directory `from` into new directory `to` (flat), hard-linking files
 * whose name ends in `link_suffix` (immutable ones, such as ".sst") and
 * copying the rest. */
int rn_fs_clone_dir(const char *from, const char *to, const char *link_suffix, char *errbuf,
                    size_t errlen);
int rn_fs_fsync_dir(const char *dir);
int rn_fs_exists(const char *path);
/* Total bytes of regular files under path (for sizes on the status page). */
uint64_t rn_fs_du(const char *path);

#endif
