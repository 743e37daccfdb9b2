/*
 * rn_cluster_cli.c — the cluster's command line:
 *
 *   runnel coordinator [--listen A] [--dir D] [--token-file F] ...
 *   runnel cluster start --workers N [...]   a coordinator and N workers here
 *   runnel submit JOB.yaml [--workers N]     POST   /api/v1/jobs
 *   runnel list                              GET    /api/v1/jobs
 *   runnel status ID                         GET    /api/v1/jobs/ID
 *   runnel savepoint ID [--no-wait]          POST   /api/v1/jobs/ID/savepoints
 *   runnel cancel ID [--savepoint] [--no-wait]  DELETE /api/v1/jobs/ID
 *   runnel rescale ID N [--no-wait]          POST   /api/v1/jobs/ID/rescale?workers=N
 *   runnel workers                           GET    /api/v1/workers
 *
 * The client commands find the coordinator in --coordinator, else
 * $RUNNEL_COORDINATOR, else 127.0.0.1:8091, and the token in --token-file or
 * $RUNNEL_TOKEN_FILE. Exit codes: 0 done, 1 refused or failed, 2 bad usage.
 *
 * `cluster start` runs the coordinator in its own process and the workers as
 * child processes (this same executable, `runnel worker`); it restarts a
 * worker that exits, telling the coordinator at once so that the worker's
 * tasks move without waiting for the heartbeat timeout, and starts more
 * workers when a rescale asks for them.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rn_cluster_int.h"
#include "rn_fs_int.h"

static volatile sig_atomic_t rn__cl_stop;

static void rn__cl_on_signal(int sig)
{
    (void)sig;
    rn__cl_stop = 1;
}

static void rn__cl_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = rn__cl_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int rn_cluster_is_job_id(const char *arg)
{
    size_t n = strlen(arg);
    if (strchr(arg, ':') || strchr(arg, '/')) return 0;
    if (n > 5 && (strcmp(arg + n - 5, ".yaml") == 0 || strcmp(arg + n - 4, ".yml") == 0)) return 0;
    return n > 0;
}

/* ---- runnel coordinator / cluster start ----------------------------------------------- */

struct rn__srv_args {
    struct rn_coord_opts o;
    int workers;
    int64_t heartbeat_ms;
};

/* Parses the options shared by `coordinator` and `cluster start`; returns the
 * index of an argument it does not know, or argc. */
static int rn__srv_parse(int argc, char **argv, struct rn__srv_args *a, const char *who)
{
    for (int i = 0; i < argc; i += 2) { /* --key value pairs */
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t ms;
        if (!v) return i;
        if (strcmp(k, "--listen") == 0)
            a->o.listen = v;
        else if (strcmp(k, "--dir") == 0)
            a->o.dir = v;
        else if (strcmp(k, "--token-file") == 0)
            a->o.token_file = v;
        else if (strcmp(k, "--workers") == 0)
            a->workers = atoi(v);
        else if (strcmp(k, "--heartbeat-timeout") == 0 || strcmp(k, "--heartbeat") == 0 ||
                 strcmp(k, "--checkpoint-every") == 0) {
            if (rn_parse_duration_ms(v, &ms) || ms <= 0) {
                fprintf(stderr, "runnel %s: %s %s: expected a duration such as 5s\n", who, k, v);
                return -1;
            }
            if (k[2] == 'c')
                a->o.checkpoint_every_ms = ms;
            else if (strcmp(k, "--heartbeat") == 0)
                a->heartbeat_ms = ms;
            else
                a->o.heartbeat_timeout_ms = ms;
        } else
            return i;
    }
    return argc;
}

static const char rn__srv_usage[] =
    "  --listen HOST:PORT        REST address (default " RN_CLUSTER_DEFAULT_ADDR
    "; loopback unless told)\n"
    "  --dir DIR                 the coordinator's files (default var/cluster)\n"
    "  --token-file PATH         bearer token; made (0600) on first start when the\n"
    "                            listener is not loopback-only (default DIR/token)\n"
    "  --heartbeat-timeout DUR   a worker silent this long is dead (default 5s)\n"
    "  --checkpoint-every DUR    how often cluster checkpoints are recorded (default 1s)\n";

static void rn__srv_defaults(struct rn__srv_args *a)
{
    memset(a, 0, sizeof *a);
    a->o.listen = RN_CLUSTER_DEFAULT_ADDR;
    a->o.dir = "var/cluster";
    a->o.heartbeat_timeout_ms = 5000;
    a->o.checkpoint_every_ms = 1000;
    a->heartbeat_ms = 1000;
}

int rn_coordinator_main(int argc, char **argv)
{
    struct rn__srv_args a;
    rn__srv_defaults(&a);
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: runnel coordinator [options]\n%s", rn__srv_usage);
        return 0;
    }
    int bad = rn__srv_parse(argc - 1, argv + 1, &a, "coordinator");
    if (bad != argc - 1) {
        if (bad >= 0) fprintf(stderr, "runnel coordinator: unknown option '%s'\n", argv[1 + bad]);
        fprintf(stderr, "usage: runnel coordinator [options]\n%s", rn__srv_usage);
        return 2;
    }
    char err[1024];
    rn__cl_signals();
    struct rn_coord *c = rn_coord_create(&a.o, err, sizeof err);
    if (!c) {
        fprintf(stderr, "runnel coordinator: %s\n", err);
        return 1;
    }
    printf("coordinator http://%s/\n", rn_coord_address(c));
    fflush(stdout);
    while (!rn__cl_stop)
        usleep(50000);
    rn_coord_destroy(c);
    return 0;
}

struct rn__child {
    pid_t pid;
    int64_t restart_at_ns; /* when to start it again after it exited */
};

static pid_t rn__spawn_worker(const struct rn__srv_args *a, const char *coord, int slot)
{
    char slotbuf[16], dir[600], hb[32];
    snprintf(slotbuf, sizeof slotbuf, "%d", slot);
    snprintf(dir, sizeof dir, "%s/worker-%d", a->o.dir, slot);
    snprintf(hb, sizeof hb, "%lldms", (long long)a->heartbeat_ms);
    const char *args[16];
    int n = 0;
    args[n++] = "runnel";
    args[n++] = "worker";
    args[n++] = "--coordinator";
    args[n++] = coord;
    args[n++] = "--slot";
    args[n++] = slotbuf;
    args[n++] = "--dir";
    args[n++] = dir;
    args[n++] = "--heartbeat";
    args[n++] = hb;
    if (a->o.token_file) {
        args[n++] = "--token-file";
        args[n++] = a->o.token_file;
    }
    args[n] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* The coordinator is in this process: a worker outliving it would run
         * tasks nobody supervises, which a restarted cluster starts again. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        execv("/proc/self/exe", (char *const *)args);
        fprintf(stderr, "runnel cluster: cannot start a worker: %s\n", strerror(errno));
        _exit(127);
    }
    return pid;
}

int rn_cluster_main(int argc, char **argv)
{
    struct rn__srv_args a;
    rn__srv_defaults(&a);
    a.workers = 1;
    if (argc < 2 || strcmp(argv[1], "start") != 0 ||
        (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0))) {
        int help = argc > 2;
        fprintf(help ? stdout : stderr,
                "usage: runnel cluster start --workers N [options]\n"
                "  --workers N               worker processes to start (default 1)\n"
                "  --heartbeat DUR           the workers' heartbeat interval (default 1s)\n%s",
                rn__srv_usage);
        return help ? 0 : 2;
    }
    int bad = rn__srv_parse(argc - 2, argv + 2, &a, "cluster start");
    if (bad != argc - 2 || a.workers < 1 || a.workers > 256) {
        if (bad >= 0 && bad != argc - 2)
            fprintf(stderr, "runnel cluster start: unknown option '%s'\n", argv[2 + bad]);
        else if (bad >= 0)
            fprintf(stderr, "runnel cluster start: --workers must be 1 to 256\n");
        return 2;
    }
    char err[1024];
    rn__cl_signals();
    a.o.can_spawn = 1;
    struct rn_coord *c = rn_coord_create(&a.o, err, sizeof err);
    if (!c) {
        fprintf(stderr, "runnel cluster: %s\n", err);
        return 1;
    }
    char coord[128], tok[600];
    snprintf(coord, sizeof coord, "%s", rn_coord_address(c));
    /* The workers need the token whenever the coordinator made or reads one. */
    snprintf(tok, sizeof tok, "%s/token", a.o.dir);
    if (!a.o.token_file && rn_fs_exists(tok)) a.o.token_file = tok;
    printf("coordinator http://%s/\n", coord);
    fflush(stdout);
    struct rn__child kids[256];
    memset(kids, 0, sizeof kids);
    int n = a.workers;
    for (int i = 0; i < n; i++)
        kids[i].pid = rn__spawn_worker(&a, coord, i);
    while (!rn__cl_stop) {
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < n; i++) {
                if (kids[i].pid != pid) continue;
                fprintf(stderr, "cluster: worker %d (pid %d) %s %d; restarting it\n", i, (int)pid,
                        WIFSIGNALED(status) ? "killed by signal" : "exited with",
                        WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
                rn_coord_slot_exited(c, i);
                kids[i].pid = 0;
                kids[i].restart_at_ns = rn_now_ns() + 500000000LL;
            }
        }
        int want = rn_coord_wanted_workers(c);
        while (n < want && n < 256) {
            kids[n].pid = 0;
            kids[n].restart_at_ns = rn_now_ns();
            n++;
        }
        for (int i = 0; i < n; i++)
            if (!kids[i].pid && rn_now_ns() >= kids[i].restart_at_ns)
                kids[i].pid = rn__spawn_worker(&a, coord, i);
        usleep(50000);
    }
    /* Workers stop their tasks (final checkpoints) and exit; then the coordinator. */
    for (int i = 0; i < n; i++)
        if (kids[i].pid > 0) kill(kids[i].pid, SIGTERM);
    for (int i = 0; i < n; i++)
        if (kids[i].pid > 0) waitpid(kids[i].pid, NULL, 0);
    rn_coord_destroy(c);
    return 0;
}

/* ---- the client commands ---------------------------------------------------------- */

struct rn__cli {
    const char *addr;
    char token[RN_TOKEN_MAX];
    int have_token;
};

/* One call; returns the parsed JSON reply (the caller frees it) with *status,
 * or NULL after printing why (the coordinator unreachable, or a reply that is
 * not JSON). */
static yajl_val rn__call(struct rn__cli *cl, const char *method, const char *path, const char *body,
                         int *status)
{
    struct rn_buf out = RN_BUF_INIT;
    char err[512];
    if (rn_http_call_auth(cl->addr, method, path, body, cl->have_token ? cl->token : NULL, 30000,
                          status, &out, err, sizeof err)) {
        fprintf(stderr,
                "runnel: cannot reach the coordinator at %s: %s\n"
                "(is it running? give its address with --coordinator or RUNNEL_COORDINATOR)\n",
                cl->addr, err);
        rn_buf_free(&out);
        return NULL;
    }
    rn_buf_putc(&out, 0);
    yajl_val v = yajl_tree_parse(out.data, NULL, 0);
    if (!v) {
        fprintf(stderr, "runnel: %d from the coordinator: %s", *status, out.data);
        if (out.len < 2 || out.data[out.len - 2] != '\n') fputc('\n', stderr);
    }
    rn_buf_free(&out);
    return v;
}

/* Prints the "error" of a refused call; returns 1. */
static int rn__refused(yajl_val v, int status)
{
    const char *e = rn_jstr(v, "error");
    fprintf(stderr, "runnel: %s%s\n", status == 404 ? "" : "refused: ", e ? e : "(no message)");
    return 1;
}

static void rn__urlenc(struct rn_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-_.~/", ch))
            rn_buf_putc(b, (char)ch);
        else
            rn_buf_printf(b, "%%%02X", ch);
    }
}

static int rn__cli_usage(FILE *out)
{
    fprintf(out,
            "usage: runnel submit JOB.yaml [--workers N]\n"
            "       runnel list\n"
            "       runnel status ID\n"
            "       runnel savepoint ID [--no-wait]\n"
            "       runnel cancel ID [--savepoint] [--no-wait]\n"
            "       runnel rescale ID N [--no-wait]\n"
            "       runnel workers\n"
            "options of all: --coordinator HOST:PORT (or RUNNEL_COORDINATOR; default %s),\n"
            "                --token-file PATH (or RUNNEL_TOKEN_FILE), --json\n",
            RN_CLUSTER_DEFAULT_ADDR);
    return out == stdout ? 0 : 2;
}

/* Polls GET /api/v1/jobs/ID until done(v) says 1 (0 keep waiting, -1 failed). */
static int rn__wait(struct rn__cli *cl, const char *id, int (*done)(yajl_val, const void *),
                    const void *arg, int timeout_s)
{
    char path[512];
    snprintf(path, sizeof path, "/api/v1/jobs/%s", id);
    int64_t deadline = rn_now_ns() + (int64_t)timeout_s * 1000000000;
    while (rn_now_ns() < deadline) {
        int status;
        yajl_val v = rn__call(cl, "GET", path, NULL, &status);
        if (!v) return 1;
        if (status != 200) {
            int rc = rn__refused(v, status);
            yajl_tree_free(v);
            return rc;
        }
        int d = done(v, arg);
        yajl_tree_free(v);
        if (d > 0) return 0;
        if (d < 0) return 1;
        usleep(100000);
    }
    fprintf(stderr, "runnel: still not done after %d s (runnel status %s shows where it is)\n",
            timeout_s, id);
    return 1;
}

static int rn__sp_done(yajl_val v, const void *arg)
{
    int64_t want = *(const int64_t *)arg;
    yajl_val sps = rn_jarr(v, "savepoints");
    for (size_t i = 0; sps && i < sps->u.array.len; i++) {
        yajl_val s = sps->u.array.values[i];
        if (rn_jint(s, "id", 0) != want) continue;
        const char *st = rn_jstr(s, "status");
        if (st && strcmp(st, "completed") == 0) {
            printf("savepoint %lld completed: %s\n", (long long)want, rn_jstr(s, "path"));
            return 1;
        }
        if (st && strcmp(st, "failed") == 0) {
            const char *why = rn_jstr(s, "error");
            fprintf(stderr, "runnel: savepoint %lld failed%s%s\n", (long long)want,
                    why ? ": " : "", why ? why : "");
            return -1;
        }
    }
    return 0;
}

static int rn__cancel_done(yajl_val v, const void *arg)
{
    (void)arg;
    const char *st = rn_jstr(v, "state");
    if (st && strcmp(st, "canceled") == 0) {
        printf("job %s canceled\n", rn_jstr(v, "id"));
        return 1;
    }
    return 0;
}

static int rn__rescale_done(yajl_val v, const void *arg)
{
    int want = *(const int *)arg;
    const char *op = rn_jstr(v, "operation");
    if (op && op[0]) return 0;
    if (rn_jint(v, "workers", 0) != want) {
        /* The newest savepoint is the rescale's: its reason, when it failed. */
        yajl_val sps = rn_jarr(v, "savepoints");
        yajl_val last = sps && sps->u.array.len ? sps->u.array.values[0] : NULL;
        const char *st = last ? rn_jstr(last, "status") : NULL, *why = last ? rn_jstr(last, "error") : NULL;
        if (st && strcmp(st, "failed") == 0)
            fprintf(stderr, "runnel: the rescale did not happen: its savepoint failed%s%s\n",
                    why ? ": " : "", why ? why : "");
        else
            fprintf(stderr, "runnel: the rescale did not happen (its savepoint failed?)\n");
        return -1;
    }
    if (rn_jint(v, "tasks_running", 0) + rn_jint(v, "tasks_finished", 0) !=
        rn_jint(v, "tasks_total", -1))
        return 0;
    printf("job %s runs on %d workers\n", rn_jstr(v, "id"), want);
    return 1;
}

int rn_cluster_cli_main(int argc, char **argv)
{
    const char *cmd = argv[0];
    struct rn__cli cl;
    memset(&cl, 0, sizeof cl);
    cl.addr = getenv("RUNNEL_COORDINATOR");
    if (!cl.addr || !cl.addr[0]) cl.addr = RN_CLUSTER_DEFAULT_ADDR;
    const char *token_file = getenv("RUNNEL_TOKEN_FILE");
    const char *pos[3] = {NULL, NULL, NULL};
    int npos = 0, wait = 1, with_sp = 0, json = 0;
    const char *workers = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return rn__cli_usage(stdout);
        if (strcmp(a, "--coordinator") == 0 && i + 1 < argc)
            cl.addr = argv[++i];
        else if (strcmp(a, "--token-file") == 0 && i + 1 < argc)
            token_file = argv[++i];
        else if (strcmp(a, "--workers") == 0 && i + 1 < argc)
            workers = argv[++i];
        else if (strcmp(a, "--no-wait") == 0)
            wait = 0;
        else if (strcmp(a, "--savepoint") == 0)
            with_sp = 1;
        else if (strcmp(a, "--json") == 0)
            json = 1;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "runnel %s: unknown option '%s'\n", cmd, a);
            return rn__cli_usage(stderr);
        } else if (npos < 3)
            pos[npos++] = a;
        else
            return rn__cli_usage(stderr);
    }
    char err[1024];
    if (token_file && token_file[0]) {
        if (rn_token_load(token_file, 0, cl.token, sizeof cl.token, err, sizeof err)) {
            fprintf(stderr, "runnel: %s\n", err);
            return 1;
        }
        cl.have_token = 1;
    }
    int need = strcmp(cmd, "list") == 0 || strcmp(cmd, "workers") == 0 ? 0
               : strcmp(cmd, "rescale") == 0                           ? 2
                                                                       : 1;
    if (npos != need) return rn__cli_usage(stderr);
    int status = 0, rc = 1;
    yajl_val v = NULL;
    struct rn_buf path = RN_BUF_INIT;

    if (strcmp(cmd, "submit") == 0) {
        size_t len;
        FILE *f = fopen(pos[0], "rb");
        if (!f) {
            fprintf(stderr, "runnel: %s: %s\n", pos[0], strerror(errno));
            return 1;
        }
        struct rn_buf body = RN_BUF_INIT;
        char chunk[65536];
        while ((len = fread(chunk, 1, sizeof chunk, f)) > 0)
            rn_buf_append(&body, chunk, len);
        fclose(f);
        rn_buf_putc(&body, 0);
        rn_buf_puts(&path, "/api/v1/jobs?file=");
        rn__urlenc(&path, pos[0]);
        if (workers) rn_buf_printf(&path, "&workers=%d", atoi(workers));
        rn_buf_putc(&path, 0);
        v = rn__call(&cl, "POST", path.data, body.data, &status);
        rn_buf_free(&body);
        if (v && status == 201) {
            long long stages = (long long)rn_jint(v, "stages", 1);
            printf("job %s submitted: %lld tasks", rn_jstr(v, "id"),
                   (long long)rn_jint(v, "tasks", 0));
            if (stages > 1) printf(" in %lld stages", stages);
            printf(" over %lld workers\n", (long long)rn_jint(v, "workers", 0));
            rc = 0;
        } else if (v) {
            rc = rn__refused(v, status);
        }
    } else if (strcmp(cmd, "list") == 0 || strcmp(cmd, "workers") == 0) {
        int jobs = cmd[0] == 'l';
        struct rn_buf out = RN_BUF_INIT;
        if (json) {
            if (rn_http_call_auth(cl.addr, "GET", jobs ? "/api/v1/jobs" : "/api/v1/workers", NULL,
                                  NULL, 30000, &status, &out, err, sizeof err) == 0) {
                fwrite(out.data, 1, out.len, stdout);
                rc = status == 200 ? 0 : 1;
            } else {
                fprintf(stderr, "runnel: cannot reach the coordinator at %s: %s\n", cl.addr, err);
            }
            rn_buf_free(&out);
            return rc;
        }
        v = rn__call(&cl, "GET", jobs ? "/api/v1/jobs" : "/api/v1/workers", NULL, &status);
        yajl_val arr = v ? rn_jarr(v, jobs ? "jobs" : "workers") : NULL;
        if (arr) {
            rc = 0;
            if (jobs)
                printf("%-24s %-11s %-10s %7s %5s %12s %10s\n", "ID", "STATE", "OPERATION",
                       "WORKERS", "TASKS", "RECORDS", "RECORDS/S");
            else
                printf("%-4s %-4s %-8s %-5s %-5s %12s %10s %8s %10s  %s\n", "ID", "SLOT", "PID",
                       "ALIVE", "TASKS", "RECORDS", "RECORDS/S", "LAG", "CHECKPOINT", "PAGE");
            for (size_t i = 0; i < arr->u.array.len; i++) {
                yajl_val x = arr->u.array.values[i];
                if (jobs) {
                    char tasks[32];
                    snprintf(tasks, sizeof tasks, "%lld/%lld",
                             (long long)rn_jint(x, "tasks_running", 0),
                             (long long)rn_jint(x, "tasks_total", 0));
                    printf("%-24s %-11s %-10s %7lld %5s %12lld %10.0f\n", rn_jstr(x, "id"),
                           rn_jstr(x, "state"),
                           rn_jstr(x, "operation")[0] ? rn_jstr(x, "operation") : "-",
                           (long long)rn_jint(x, "workers", 0), tasks,
                           (long long)rn_jint(x, "records", 0), rn_jnum(x, "rate", 0));
                } else {
                    yajl_val alive = NULL;
                    for (size_t k = 0; k < x->u.object.len; k++)
                        if (strcmp(x->u.object.keys[k], "alive") == 0)
                            alive = x->u.object.values[k];
                    printf(
                        "%-4lld %-4lld %-8lld %-5s %-5lld %12lld %10.0f %8lld %10lld  http://%s/\n",
                        (long long)rn_jint(x, "id", 0), (long long)rn_jint(x, "slot", 0),
                        (long long)rn_jint(x, "pid", 0), YAJL_IS_TRUE(alive) ? "yes" : "no",
                        (long long)rn_jint(x, "n_tasks", 0), (long long)rn_jint(x, "records", 0),
                        rn_jnum(x, "rate", 0), (long long)rn_jint(x, "lag", 0),
                        (long long)rn_jint(x, "last_checkpoint", 0), rn_jstr(x, "page"));
                }
            }
        }
    } else if (strcmp(cmd, "status") == 0) {
        rn_buf_puts(&path, "/api/v1/jobs/");
        rn__urlenc(&path, pos[0]);
        rn_buf_putc(&path, 0);
        struct rn_buf out = RN_BUF_INIT;
        if (rn_http_call_auth(cl.addr, "GET", path.data, NULL, NULL, 30000, &status, &out, err,
                              sizeof err)) {
            fprintf(stderr, "runnel: cannot reach the coordinator at %s: %s\n", cl.addr, err);
        } else if (status != 200) {
            rn_buf_putc(&out, 0);
            v = yajl_tree_parse(out.data, NULL, 0);
            rc = rn__refused(v, status);
        } else {
            fwrite(out.data, 1, out.len, stdout);
            rc = 0;
        }
        rn_buf_free(&out);
    } else if (strcmp(cmd, "savepoint") == 0 || strcmp(cmd, "cancel") == 0 ||
               strcmp(cmd, "rescale") == 0) {
        int n = 0;
        if (cmd[0] == 'r') {
            n = atoi(pos[1]);
            if (n < 1) {
                fprintf(stderr, "runnel rescale: N must be a number of workers >= 1\n");
                return 2;
            }
        }
        rn_buf_puts(&path, "/api/v1/jobs/");
        rn__urlenc(&path, pos[0]);
        if (cmd[0] == 's') rn_buf_puts(&path, "/savepoints");
        if (cmd[0] == 'r') rn_buf_printf(&path, "/rescale?workers=%d", n);
        if (cmd[0] == 'c' && with_sp) rn_buf_puts(&path, "?savepoint=1");
        rn_buf_putc(&path, 0);
        v = rn__call(&cl, cmd[0] == 'c' ? "DELETE" : "POST", path.data, NULL, &status);
        if (v && status == 202) {
            int64_t sp = rn_jint(v, "savepoint", 0);
            if (!wait) {
                printf("%s of %s requested%s\n", cmd, pos[0], sp ? " (with a savepoint)" : "");
                rc = 0;
            } else if (cmd[0] == 's') {
                rc = rn__wait(&cl, pos[0], rn__sp_done, &sp, 300);
            } else if (cmd[0] == 'c') {
                if (sp) rc = rn__wait(&cl, pos[0], rn__sp_done, &sp, 300);
                rc = rn__wait(&cl, pos[0], rn__cancel_done, NULL, 300);
            } else {
                rc = rn__wait(&cl, pos[0], rn__rescale_done, &n, 300);
            }
        } else if (v) {
            rc = rn__refused(v, status);
        }
    } else {
        return rn__cli_usage(stderr);
    }
    if (v) yajl_tree_free(v);
    rn_buf_free(&path);
    return rc;
}
