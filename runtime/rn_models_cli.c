/*
 * rn_models_cli.c — `runnel models`: look at a model store and choose the
 * version that jobs serve.
 *
 *   runnel models list DIR [--json]   the versions, which one is current, pinned
 *   runnel models pin DIR ID          serve version ID (writes DIR/PINNED)
 *   runnel models unpin DIR           serve the newest again (removes PINNED)
 *   runnel models rollback DIR        pin the version before the current one
 *
 * Everything goes through the store API (rn_model.h): a pin is one atomic
 * write of DIR/PINNED, which every inference operator's model feed follows
 * within its poll interval, so a running job switches without a restart. The
 * JSON form of a store and the rollback rule live here too, shared with the
 * status server's /api/v1/models endpoints (rn_status.c), so that the command
 * line and the REST API cannot disagree.
 *
 * Exit codes: 0 done, 1 failed (no such store, no such version, nothing to
 * roll back to), 2 bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "rn_fs_int.h"
#include "rn_model.h"
#include "rn_models_int.h"

/* ---- shared with rn_status.c ------------------------------------------------------ */

int rn__models_pinned(const char *dir, int64_t *id, char *errbuf, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/PINNED", dir);
    size_t len;
    char *text = rn_fs_read_all(path, &len);
    *id = -1;
    if (!text) return 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    int ok = end != text && (*end == '\n' || *end == 0) && v >= 0;
    free(text);
    if (!ok) {
        rn_errf(errbuf, errlen, "%s: not a version number", path);
        return RN_ECORRUPT;
    }
    *id = v;
    return 0;
}

static void rn__models_id_or_null(struct rn_buf *b, int64_t id)
{
    if (id < 0)
        rn_buf_puts(b, "null");
    else
        rn_json_i64(b, id);
}

int rn__models_json(const char *dir, struct rn_buf *b, char *errbuf, size_t errlen)
{
    struct rn_model_version *vs = NULL;
    size_t n = 0;
    int64_t pinned, current = -1;
    int rc = rn__models_pinned(dir, &pinned, errbuf, errlen);
    if (!rc) rc = rn_store_list(dir, &vs, &n, errbuf, errlen);
    if (rc) return rc;
    if (pinned >= 0)
        current = pinned;
    else if (n)
        current = vs[n - 1].id;
    rn_buf_puts(b, "{\"store\":");
    rn_json_str(b, dir, strlen(dir));
    rn_buf_puts(b, ",\"current\":");
    rn__models_id_or_null(b, current);
    rn_buf_puts(b, ",\"pinned\":");
    rn__models_id_or_null(b, pinned);
    rn_buf_puts(b, ",\"versions\":[");
    for (size_t i = 0; i < n; i++) {
        const struct rn_model_version *v = &vs[i];
        rn_buf_printf(b,
                      "%s{\"id\":%" PRId64 ",\"created_ms\":%" PRId64 ",\"event_time\":%" PRId64
                      ",\"updates\":%" PRIu64 ",\"transitions\":%" PRIu64 ",\"loss\":",
                      i ? "," : "", v->id, v->created_ms, v->event_time, v->updates,
                      v->transitions);
        rn_json_f64(b, v->loss);
        rn_buf_puts(b, ",\"mean_q\":");
        rn_json_f64(b, v->mean_q);
        rn_buf_putc(b, '}');
    }
    rn_buf_puts(b, "]}");
    free(vs);
    return 0;
}

int rn__models_rollback(const char *dir, int64_t *from, int64_t *to, char *errbuf, size_t errlen)
{
    struct rn_model_version *vs = NULL;
    size_t n = 0;
    int rc = rn_store_current(dir, from, errbuf, errlen);
    if (rc) return rc;
    rc = rn_store_list(dir, &vs, &n, errbuf, errlen);
    if (rc) return rc;
    *to = -1;
    for (size_t i = 0; i < n; i++)
        if (vs[i].id < *from) *to = vs[i].id;
    free(vs);
    if (*to < 0) {
        rn_errf(errbuf, errlen,
                "model store '%s' has no version before %" PRId64 " to roll back to", dir, *from);
        return RN_ENOENT;
    }
    return rn_store_pin(dir, *to, errbuf, errlen);
}

/* ---- the subcommand ---------------------------------------------------------------- */

static int rn__models_usage(FILE *out)
{
    fputs("usage: runnel models list DIR [--json]   versions of a model store; * marks the one\n"
          "                                         served (pinned, else the newest)\n"
          "       runnel models pin DIR ID          serve version ID from now on\n"
          "       runnel models unpin DIR           serve the newest version again\n"
          "       runnel models rollback DIR        pin the version before the current one\n"
          "\n"
          "Running jobs follow the change within their poll_interval. Exit status: 0 done,\n"
          "1 failed, 2 bad usage.\n",
          out);
    return out == stdout ? 0 : 2;
}

/* A store given on the command line must exist (rn_store_list takes a missing
 * directory for an empty store, which would hide a typo). */
static int rn__models_dir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        fprintf(stderr, "runnel models: '%s': %s\n", dir, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "runnel models: '%s' is not a directory\n", dir);
        return 1;
    }
    return 0;
}

static void rn__models_time(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int rn__models_list(const char *dir, int json)
{
    char err[1024];
    if (json) {
        struct rn_buf b = RN_BUF_INIT;
        if (rn__models_json(dir, &b, err, sizeof err)) {
            fprintf(stderr, "runnel models: %s\n", err);
            rn_buf_free(&b);
            return 1;
        }
        rn_buf_putc(&b, '\n');
        fwrite(b.data, 1, b.len, stdout);
        rn_buf_free(&b);
        return 0;
    }
    struct rn_model_version *vs = NULL;
    size_t n = 0;
    int64_t pinned;
    if (rn__models_pinned(dir, &pinned, err, sizeof err) ||
        rn_store_list(dir, &vs, &n, err, sizeof err)) {
        fprintf(stderr, "runnel models: %s\n", err);
        return 1;
    }
    if (!n) {
        printf("model store '%s' holds no version yet\n", dir);
        free(vs);
        return 0;
    }
    int64_t current = pinned >= 0 ? pinned : vs[n - 1].id;
    printf("  %-8s %-20s %-14s %10s %12s %12s %12s\n", "ID", "CREATED", "EVENT_TIME", "UPDATES",
           "TRANSITIONS", "LOSS", "MEAN_Q");
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        const struct rn_model_version *v = &vs[i];
        char created[32];
        rn__models_time(v->created_ms, created, sizeof created);
        const char *note = v->id != current ? "" : pinned >= 0 ? "current (pinned)" : "current";
        found |= v->id == current;
        printf("%c %-8" PRId64 " %-20s %-14" PRId64 " %10" PRIu64 " %12" PRIu64
               " %12.6g %12.6g%s%s\n",
               v->id == current ? '*' : ' ', v->id, created, v->event_time, v->updates,
               v->transitions, v->loss, v->mean_q, note[0] ? "  " : "", note);
    }
    if (!found) printf("pinned to version %" PRId64 ", which the store does not hold\n", pinned);
    free(vs);
    return 0;
}

int rn_models_main(int argc, char **argv)
{
    /* argv[0] is "models" */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return rn__models_usage(stdout);
    if (argc < 3) {
        if (argc == 2 && strcmp(argv[1], "list") && strcmp(argv[1], "pin") &&
            strcmp(argv[1], "unpin") && strcmp(argv[1], "rollback"))
            fprintf(stderr, "runnel models: unknown action '%s'\n", argv[1]);
        return rn__models_usage(stderr);
    }
    const char *act = argv[1], *dir = argv[2];
    char err[1024];
    if (strcmp(act, "list") == 0) {
        int json = 0;
        for (int i = 3; i < argc; i++) {
            if (strcmp(argv[i], "--json") == 0) {
                json = 1;
            } else {
                fprintf(stderr, "runnel models list: unexpected argument '%s'\n", argv[i]);
                return rn__models_usage(stderr);
            }
        }
        if (rn__models_dir(dir)) return 1;
        return rn__models_list(dir, json);
    }
    if (strcmp(act, "pin") == 0) {
        if (argc != 4) {
            fprintf(stderr, "runnel models pin: give the store and one version id\n");
            return rn__models_usage(stderr);
        }
        char *end;
        errno = 0;
        long long id = strtoll(argv[3], &end, 10);
        if (errno || end == argv[3] || *end || id < 0) {
            fprintf(stderr, "runnel models pin: '%s' is not a version id\n", argv[3]);
            return rn__models_usage(stderr);
        }
        if (rn__models_dir(dir)) return 1;
        if (rn_store_pin(dir, id, err, sizeof err)) {
            fprintf(stderr, "runnel models: %s\n", err);
            return 1;
        }
        printf("pinned '%s' to version %lld\n", dir, id);
        return 0;
    }
    if (strcmp(act, "unpin") == 0 || strcmp(act, "rollback") == 0) {
        if (argc != 3) {
            fprintf(stderr, "runnel models %s: unexpected argument '%s'\n", act, argv[3]);
            return rn__models_usage(stderr);
        }
        if (rn__models_dir(dir)) return 1;
        if (strcmp(act, "unpin") == 0) {
            int64_t cur = -1;
            if (rn_store_pin(dir, -1, err, sizeof err)) {
                fprintf(stderr, "runnel models: %s\n", err);
                return 1;
            }
            if (rn_store_current(dir, &cur, err, sizeof err) == 0)
                printf("unpinned '%s': serving the newest version, %" PRId64 "\n", dir, cur);
            else
                printf("unpinned '%s' (it holds no version yet)\n", dir);
            return 0;
        }
        int64_t from, to;
        if (rn__models_rollback(dir, &from, &to, err, sizeof err)) {
            fprintf(stderr, "runnel models: %s\n", err);
            return 1;
        }
        printf("rolled '%s' back from version %" PRId64 " to %" PRId64 " (pinned; 'runnel "
               "models unpin' serves the newest again)\n",
               dir, from, to);
        return 0;
    }
    fprintf(stderr, "runnel models: unknown action '%s'\n", act);
    return rn__models_usage(stderr);
}
