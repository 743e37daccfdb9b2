/*
 * replay_main.c — a main() for the fuzz harnesses without libFuzzer: runs a
 * harness once on every file of the directories (or files) given, in name
 * order, the way libFuzzer replays a corpus. ctest runs each harness so on its
 * seeds and regression inputs (tests/fuzz/corpus/<name>/) in every build tree,
 * gcc and sanitizers included, so a fixed crash cannot come back unnoticed
 * where clang is not installed.
 *
 * A harness reports a broken promise by aborting; this driver adds only "it
 * read every file". Exit status 0 when every input ran.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rn_fs_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int rn_replay_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs the harness on one file; returns 0, or -1 when it cannot be read. */
static int rn_replay_file(const char *path)
{
    size_t len;
    char *data = rn_fs_read_all(path, &len);
    if (!data) {
        fprintf(stderr, "replay: cannot read '%s'\n", path);
        return -1;
    }
    /* An exact-size copy, so that ASan sees a read past the input's end. */
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, data, len);
    free(data);
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    size_t runs = 0;
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: no such file or directory '%s'\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (rn_replay_file(argv[i])) rc = 1;
            runs++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) {
            fprintf(stderr, "replay: cannot open '%s'\n", argv[i]);
            return 1;
        }
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.') continue;
            names = realloc(names, (n + 1) * sizeof *names);
            names[n++] = strdup(de->d_name);
        }
        closedir(d);
        if (n) qsort(names, n, sizeof *names, rn_replay_cmp);
        for (size_t k = 0; k < n; k++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], names[k]);
            if (rn_replay_file(path)) rc = 1;
            runs++;
            free(names[k]);
        }
        free(names);
    }
    printf("replay: %zu inputs, %s\n", runs, rc ? "some unreadable" : "all ran");
    return rc || runs == 0;
}
