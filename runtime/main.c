/*
 * main.c — the `runnel` command line.
 *
 *   runnel validate JOB.yaml [--set key=value]...   check a job, print its graph
 *   runnel run JOB.yaml [--set key=value]...        run a job in this process
 *   runnel evaluate --data PATH --policy P...       off-policy evaluation (rn_evaluate.c)
 *   runnel train-offline --algo A --data PATH ...   offline RL of an actor (rn_offline.c)
 *   runnel dev-kafka [--brokers N] [--port P]        a local Kafka (rn_devkafka.c)
 *   runnel schema                                   print the YAML reference
 *   runnel version
 *
 * Exit codes: 0 success, 1 the job failed or is invalid, 2 bad usage.
 *
 * Signals: the first SIGINT or SIGTERM asks the job to stop (sources stop,
 * a final checkpoint is taken, sinks commit). Whatever the job is doing, the
 * process is gone RN__STOP_LIMIT_MS later: a watchdog thread exits it with
 * status 1 if the stop has not finished by then (nothing is lost: a restart
 * resumes from the last completed checkpoint). A second signal ends the
 * process at once, by that signal (status 128 + its number: 130, 143).
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rn_cluster_int.h"
#include "rn_config_int.h"
#include "rn_devkafka.h"
#include "rn_evaluate_int.h"
#include "rn_offline_int.h"
#include "rn_http_int.h"
#include "rn_models_int.h"
#include "rn_job.h"
#include "rn_operator.h"
#include "rn_pretrain.h"

#define RN__STOP_LIMIT_MS 4500

static struct rn_job *rn__running;
static sem_t rn__wake;       /* posted by the signal handler, and when the run ends */
static atomic_int rn__ended; /* the run has returned */

static void rn__on_signal(int sig)
{
    (void)sig;
    if (rn__running) rn_job_stop(rn__running);
    /* A second signal kills the process the ordinary way. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sem_post(&rn__wake); /* async-signal-safe */
}

/* The stop watchdog: after the first signal, the run has RN__STOP_LIMIT_MS
 * to return; a thread stuck on a disk that does not answer, or a final
 * checkpoint that cannot finish, does not keep the process alive. */
static void *rn__watchdog(void *arg)
{
    (void)arg;
    while (sem_wait(&rn__wake) != 0 && errno == EINTR) {
    }
    if (atomic_load(&rn__ended)) return NULL;
    int64_t deadline = rn_now_ns() + RN__STOP_LIMIT_MS * 1000000LL;
    while (!atomic_load(&rn__ended) && rn_now_ns() < deadline)
        usleep(20000);
    if (atomic_load(&rn__ended)) return NULL;
    fprintf(stderr,
            "runnel: the job did not stop within %.1f s of the signal; exiting without "
            "its final checkpoint (a restart resumes from the last completed one)\n",
            RN__STOP_LIMIT_MS / 1000.0);
    /* Straight to the kernel: no atexit handlers, and no sanitizer's exit
     * report about the threads that are still running on purpose. */
    syscall(SYS_exit_group, 1);
    return NULL;
}

static int rn__usage(FILE *out)
{
    fprintf(out, "usage: runnel validate JOB.yaml [--set key=value]...\n"
                 "       runnel run JOB.yaml [--set key=value]... [--quiet] [--hold] [--fresh]\n"
                 "                  [--from-checkpoint DIR] [--token-file PATH]\n"
                 "       runnel savepoint ADDRESS|JOB.yaml [--no-wait]\n"
                 "       runnel checkpoint ADDRESS|JOB.yaml [--no-wait]\n"
                 "       runnel status ADDRESS|JOB.yaml\n"
                 "       runnel evaluate --data PATH --policy POLICY... (see runnel evaluate --help)\n"
                 "       runnel pretrain --data DIR --embeddings FILE --out FILE (--help: more)\n"
                 "       runnel train-offline --algo A --data PATH ... (--help: more)\n"
                 "       runnel models list|pin|unpin|rollback DIR ... (see runnel models --help)\n"
                 "       runnel cluster start --workers N | coordinator | worker (--help: more)\n"
                 "       runnel submit|list|status|savepoint|cancel|rescale|workers ... (a cluster;\n"
                 "              see runnel submit --help)\n"
                 "       runnel dev-kafka [--brokers N] [--port P] [--topics T:N,...]\n"
                 "       runnel schema\n"
                 "       runnel version\n"
                 "\n"
                 "--set key=value overrides a key of the job file: a dotted path, where a\n"
                 "list element is named by its id, e.g. --set operators.collect.max_items=50\n"
                 "or --set sources.logs.path=/tmp/x.jsonl.\n"
                 "--hold keeps the status page up after a bounded job ends (until Ctrl-C).\n"
                 "With checkpoint: in the job, run restores the latest completed checkpoint;\n"
                 "--fresh starts empty instead, --from-checkpoint DIR restores DIR.\n"
                 "When http.listen is not loopback-only, POST calls (checkpoints, savepoints,\n"
                 "model pin/rollback) need the bearer token in --token-file (default\n"
                 "$RUNNEL_TOKEN_FILE, else var/token; made with mode 0600 if missing).\n");
    return 2;
}

extern const struct rn_config_key *rn__job_config_keys(int which);

static void rn__schema_kind(enum rn_op_kind kind, const char *title, struct rn_buf *b)
{
    const struct rn_op_type *types[128];
    size_t n = rn_op_list(kind, types, 128);
    for (size_t i = 0; i < n; i++) {
        const struct rn_op_type *t = types[i];
        rn_buf_printf(b, "### %s `%s`\n\n%s\n\n", title, t->name, t->description);
        if (t->n_inputs > 1) {
            rn_buf_puts(b, "Inputs:");
            for (uint32_t i = 0; i < t->n_inputs; i++)
                rn_buf_printf(b, "%s `%s` (`%s`%s)", i ? "," : "", t->inputs[i].name,
                              t->inputs[i].type,
                              (t->inputs[i].flags & RN_IN_BROADCAST) ? ", broadcast" : "");
            rn_buf_putc(b, '.');
        } else if (t->in_type) {
            rn_buf_printf(b, "Input: `%s`.", t->in_type);
        }
        if ((t->in_type || t->n_inputs > 1) && t->n_outputs) rn_buf_putc(b, ' ');
        for (uint32_t p = 0; p < t->n_outputs; p++)
            rn_buf_printf(b, "%s%s `%s`: %s", p ? " " : "", p ? "Side output" : "Output",
                          p ? t->outputs[p].name : t->outputs[p].type, t->outputs[p].description);
        if (t->flags & RN_OP_KEYED)
            rn_buf_printf(b, " Keyed: partitioned by `key:`%s%s%s.", t->default_key ? " (default `" : "",
                          t->default_key ? t->default_key : "", t->default_key ? "`)" : "");
        rn_buf_puts(b, "\n\n");
        if (t->config && t->config[0].name)
            rn_config_doc(t->config, b);
        else
            rn_buf_puts(b, "No keys of its own.\n");
        rn_buf_putc(b, '\n');
    }
}

static int rn__schema(void)
{
    rn_operators_init();
    struct rn_buf b = RN_BUF_INIT;
    rn_buf_puts(&b, "<!-- generated by `runnel schema`; do not edit by hand -->\n\n");
    rn_buf_puts(&b, "### Top level\n\n");
    rn_config_doc(rn__job_config_keys(0), &b);
    rn_buf_puts(&b, "\n### State (`state:`)\n\n");
    rn_config_doc(rn__job_config_keys(1), &b);
    rn_buf_puts(&b, "\n### Checkpoint (`checkpoint:`)\n\n");
    rn_config_doc(rn__job_config_keys(2), &b);
    rn_buf_puts(&b, "\n### Watermark (`watermark:`)\n\n");
    rn_config_doc(rn__job_config_keys(3), &b);
    rn_buf_puts(&b, "\n### Serve (`serve:`)\n\n");
    rn_config_doc(rn__job_config_keys(4), &b);
    rn_buf_putc(&b, '\n');
    rn__schema_kind(RN_KIND_SOURCE, "Source", &b);
    rn__schema_kind(RN_KIND_OPERATOR, "Operator", &b);
    rn__schema_kind(RN_KIND_SINK, "Sink", &b);
    fwrite(b.data, 1, b.len, stdout);
    rn_buf_free(&b);
    return 0;
}

/* The status address: "host:port", or the `http.listen` of a job file. */
static int rn__address(const char *arg, char *out, size_t n)
{
    size_t len = strlen(arg);
    if (len > 5 && (strcmp(arg + len - 5, ".yaml") == 0 || strcmp(arg + len - 4, ".yml") == 0)) {
        char err[1024];
        struct rn_job_options opt = {.quiet = 1};
        struct rn_job *job = rn_job_load(arg, &opt, err, sizeof err);
        if (!job) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        const char *l = rn_job_http_listen(job);
        if (!l || !l[0] || strcmp(strrchr(l, ':'), ":0") == 0) {
            fprintf(stderr, "runnel: %s has no fixed http.listen address; give host:port\n", arg);
            rn_job_destroy(job);
            return 1;
        }
        snprintf(out, n, "%s", l);
        rn_job_destroy(job);
        return 0;
    }
    snprintf(out, n, "%s", arg);
    return 0;
}

/* runnel savepoint|checkpoint ADDRESS|JOB.yaml [--no-wait] */
static int rn__trigger(int argc, char **argv, int savepoint)
{
    if (argc < 1) return rn__usage(stderr);
    int wait = !(argc > 1 && strcmp(argv[1], "--no-wait") == 0);
    char addr[256], err[512];
    if (rn__address(argv[0], addr, sizeof addr)) return 1;
    struct rn_buf body = RN_BUF_INIT;
    int status = 0;
    /* A job listening beyond loopback wants its token ($RUNNEL_TOKEN_FILE). */
    char token[RN_TOKEN_MAX] = "";
    const char *tf = getenv("RUNNEL_TOKEN_FILE");
    if (tf && tf[0] && rn_token_load(tf, 0, token, sizeof token, err, sizeof err)) {
        fprintf(stderr, "runnel: %s\n", err);
        return 1;
    }
    if (rn_http_call_auth(addr, "POST", savepoint ? "/api/v1/savepoints" : "/api/v1/checkpoints",
                          NULL, token[0] ? token : NULL, 10000, &status, &body, err, sizeof err)) {
        fprintf(stderr, "runnel: %s\n", err);
        rn_buf_free(&body);
        return 1;
    }
    rn_buf_putc(&body, 0);
    if (status != 202) {
        fprintf(stderr, "runnel: %d %s", status, body.data);
        rn_buf_free(&body);
        return 1;
    }
    const char *idp = strstr(body.data, "\"id\":");
    long long id = idp ? atoll(idp + 5) : 0;
    if (!wait) {
        fputs(body.data, stdout);
        rn_buf_free(&body);
        return 0;
    }
    /* Wait until the history shows it completed (or failed). */
    char want[64];
    snprintf(want, sizeof want, "{\"id\":%lld,", id);
    int64_t deadline = rn_now_ns() + 600LL * 1000000000;
    int rc = 1;
    while (rn_now_ns() < deadline) {
        struct rn_buf st = RN_BUF_INIT;
        if (rn_http_call(addr, "GET", "/api/v1/checkpoints", NULL, 10000, &status, &st, err,
                         sizeof err)) {
            fprintf(stderr, "runnel: %s\n", err);
            rn_buf_free(&st);
            break;
        }
        rn_buf_putc(&st, 0);
        const char *h = strstr(st.data, "\"history\":");
        const char *rec = h ? strstr(h, want) : NULL;
        if (rec && strncmp(strstr(rec, "\"status\":"), "\"status\":\"completed\"", 20) == 0) {
            const char *p = strstr(rec, "\"path\":\"");
            printf("%s %lld completed: %.*s\n", savepoint ? "savepoint" : "checkpoint", id,
                   p ? (int)strcspn(p + 8, "\"") : 0, p ? p + 8 : "");
            rc = 0;
            rn_buf_free(&st);
            break;
        }
        if (rec) {
            fprintf(stderr, "runnel: %s %lld failed\n", savepoint ? "savepoint" : "checkpoint", id);
            rn_buf_free(&st);
            break;
        }
        rn_buf_free(&st);
        usleep(100000);
    }
    rn_buf_free(&body);
    return rc;
}

/* runnel status ADDRESS|JOB.yaml: the job's JSON figures. */
static int rn__status(int argc, char **argv)
{
    if (argc < 1) return rn__usage(stderr);
    char addr[256], err[512];
    if (rn__address(argv[0], addr, sizeof addr)) return 1;
    struct rn_buf body = RN_BUF_INIT;
    int status = 0;
    if (rn_http_call(addr, "GET", "/api/v1/job", NULL, 10000, &status, &body, err, sizeof err)) {
        fprintf(stderr, "runnel: %s\n", err);
        rn_buf_free(&body);
        return 1;
    }
    fwrite(body.data, 1, body.len, stdout);
    putchar('\n');
    rn_buf_free(&body);
    return status == 200 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) return rn__usage(stderr);
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("runnel %s\n", RN_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        rn__usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "schema") == 0) return rn__schema();
    if (strcmp(cmd, "coordinator") == 0) return rn_coordinator_main(argc - 1, argv + 1);
    if (strcmp(cmd, "worker") == 0) return rn_worker_main(argc - 1, argv + 1);
    if (strcmp(cmd, "cluster") == 0) return rn_cluster_main(argc - 1, argv + 1);
    if (strcmp(cmd, "submit") == 0 || strcmp(cmd, "list") == 0 || strcmp(cmd, "cancel") == 0 ||
        strcmp(cmd, "rescale") == 0 || strcmp(cmd, "workers") == 0 ||
        ((strcmp(cmd, "status") == 0 || strcmp(cmd, "savepoint") == 0) && argc > 2 &&
         rn_cluster_is_job_id(argv[2])))
        return rn_cluster_cli_main(argc - 1, argv + 1);
    if (strcmp(cmd, "savepoint") == 0 || strcmp(cmd, "checkpoint") == 0)
        return rn__trigger(argc - 2, argv + 2, strcmp(cmd, "savepoint") == 0);
    if (strcmp(cmd, "status") == 0) return rn__status(argc - 2, argv + 2);
    if (strcmp(cmd, "evaluate") == 0) return rn_evaluate_main(argc - 1, argv + 1);
    if (strcmp(cmd, "train-offline") == 0) return rn_offline_main(argc - 1, argv + 1);
    if (strcmp(cmd, "pretrain") == 0) return rn_pretrain_main(argc - 1, argv + 1);
    if (strcmp(cmd, "models") == 0) return rn_models_main(argc - 1, argv + 1);
    if (strcmp(cmd, "dev-kafka") == 0) return rn_devkafka_main(argc - 1, argv + 1);
    if (strcmp(cmd, "validate") != 0 && strcmp(cmd, "run") != 0) {
        fprintf(stderr, "runnel: unknown command '%s'\n", cmd);
        return rn__usage(stderr);
    }
    const char *path = NULL;
    const char **sets = calloc((size_t)argc, sizeof *sets);
    struct rn_job_options opt = {.overrides = sets};
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            sets[opt.n_overrides++] = argv[++i];
        } else if (strncmp(argv[i], "--set=", 6) == 0) {
            sets[opt.n_overrides++] = argv[i] + 6;
        } else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            opt.quiet = 1;
        } else if (strcmp(argv[i], "--hold") == 0) {
            opt.hold = 1;
        } else if (strcmp(argv[i], "--fresh") == 0) {
            opt.fresh = 1;
        } else if (strcmp(argv[i], "--from-checkpoint") == 0 && i + 1 < argc) {
            opt.from_checkpoint = argv[++i];
        } else if (strcmp(argv[i], "--token-file") == 0 && i + 1 < argc) {
            opt.token_file = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "runnel: unknown option '%s'\n", argv[i]);
            free(sets);
            return rn__usage(stderr);
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "runnel: one job file at a time\n");
            free(sets);
            return rn__usage(stderr);
        }
    }
    if (!path) {
        free(sets);
        return rn__usage(stderr);
    }
    char err[1024] = "";
    struct rn_job *job = rn_job_load(path, &opt, err, sizeof err);
    free(sets);
    if (!job) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (strcmp(cmd, "validate") == 0) {
        rn_job_print(job, stdout);
        printf("ok\n");
        rn_job_destroy(job);
        return 0;
    }
    /* A pipeline allocates and frees the same sizes all the time (batches,
     * state entries): keep freed memory instead of handing it back to the
     * kernel, which would zero every page again on the next allocation. */
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    rn__running = job;
    sem_init(&rn__wake, 0, 0);
    /* The watchdog takes no signals itself. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_t wd;
    int wd_started = pthread_create(&wd, NULL, rn__watchdog, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = rn__on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = rn_job_run(job, err, sizeof err);
    atomic_store(&rn__ended, 1);
    sem_post(&rn__wake);
    if (wd_started) pthread_join(wd, NULL);
    rn__running = NULL;
    if (rc) fprintf(stderr, "runnel: %s\n", err);
    rn_job_destroy(job);
    return rc ? 1 : 0;
}
