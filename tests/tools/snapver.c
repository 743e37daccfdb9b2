/*
 * snapver.c — prints the format version of a checkpoint's snapshot file
 * (ops/<operator>.bin, runtime.bin), or rewrites the file with another
 * version and the same payload. The state version tests use it to make a
 * checkpoint that a newer runnel would have written.
 *
 *   rn_snapver FILE            prints the version
 *   rn_snapver FILE VERSION    rewrites FILE with VERSION
 */
#include <stdio.h>
#include <stdlib.h>

#include "rn_exec_int.h"

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: rn_snapver FILE [VERSION]\n");
        return 2;
    }
    char err[512];
    struct rn_snapshot_reader *r = rn__snapshot_reader_open(argv[1], 0, err, sizeof err);
    if (!r) {
        fprintf(stderr, "rn_snapver: %s\n", err);
        return 1;
    }
    if (argc == 2) {
        printf("%u\n", rn_snapshot_version(r));
        rn__snapshot_reader_destroy(r);
        return 0;
    }
    struct rn_snapshot_writer *w = rn__snapshot_writer_create();
    rn__snapshot_writer_set_version(w, (uint32_t)strtoul(argv[2], NULL, 10));
    char byte;
    while (rn_snapshot_read(r, &byte, 1) == 0)
        rn_snapshot_write(w, &byte, 1);
    rn__snapshot_reader_destroy(r);
    int rc = rn__snapshot_writer_save(w, argv[1], err, sizeof err);
    rn__snapshot_writer_destroy(w);
    if (rc) fprintf(stderr, "rn_snapver: %s\n", err);
    return rc ? 1 : 0;
}
