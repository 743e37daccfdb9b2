/*
 * rn_devkafka.c — `runnel dev-kafka`: librdkafka's mock cluster as a local
 * Kafka, so that examples and tests need no broker.
 *
 *   runnel dev-kafka [--brokers N] [--port P] [--topics t:partitions,...]
 *
 * The mock cluster (rdkafka_mock.h) runs inside this process on threads of
 * its own: N brokers, each listening on an ephemeral loopback port. The
 * bootstrap address goes to standard output as the first line (for scripts:
 * `read -r BOOT < <(runnel dev-kafka &)`), then the process runs until
 * SIGINT or SIGTERM.
 *
 * --port P adds a listener on 127.0.0.1:P that relays each connection to the
 * first broker, byte for byte, and is printed as the bootstrap address
 * instead: a fixed address to put in a job file. Clients learn the brokers'
 * own addresses from metadata and connect to those directly afterwards.
 *
 * The mock is not Kafka: librdkafka 2.0.2's keeps only the last 5 MiB of a
 * partition and writes no transaction markers (docs/operations.md).
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "rn_common.h"
#include "rn_config.h"
#include "rn_devkafka.h"

static volatile sig_atomic_t rn__dk_stop;

static void rn__dk_on_signal(int sig)
{
    (void)sig;
    rn__dk_stop = 1;
}

static int rn__dk_usage(FILE *out)
{
    fprintf(out,
            "usage: runnel dev-kafka [--brokers N] [--port P] [--topics TOPIC:PARTITIONS,...]\n"
            "\n"
            "Starts a local Kafka (librdkafka's mock cluster) and prints its bootstrap\n"
            "address on the first line of standard output; runs until Ctrl-C or SIGTERM.\n"
            "  --brokers N   brokers in the cluster (default 3)\n"
            "  --port P      also accept clients on 127.0.0.1:P and print that address\n"
            "  --topics L    create topics first, e.g. events:8,models:1 (other topics are\n"
            "                created on first use, with 4 partitions)\n"
            "Not a real broker: each partition keeps only its last 5 MiB, and transactions\n"
            "write no markers (read_committed consumers also see aborted messages).\n");
    return out == stdout ? 0 : 2;
}

/* ---- the relay behind --port --------------------------------------------------------- */

struct rn__dk_relay {
    int lfd;
    struct sockaddr_in target;
};

struct rn__dk_pipe {
    int a, b;
};

/* Copies bytes both ways between two sockets until either side closes. */
static void *rn__dk_pipe_run(void *arg)
{
    struct rn__dk_pipe *p = arg;
    char buf[1 << 16];
    struct pollfd fds[2] = {{p->a, POLLIN, 0}, {p->b, POLLIN, 0}};
    while (!rn__dk_stop) {
        int n = poll(fds, 2, 200);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        int closed = 0;
        for (int i = 0; i < 2 && !closed; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t r = read(fds[i].fd, buf, sizeof buf);
            if (r <= 0) {
                closed = 1;
                break;
            }
            for (ssize_t off = 0; off < r;) {
                ssize_t w = write(fds[1 - i].fd, buf + off, (size_t)(r - off));
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) {
                    closed = 1;
                    break;
                }
                off += w;
            }
        }
        if (closed) break;
    }
    close(p->a);
    close(p->b);
    free(p);
    return NULL;
}

static void *rn__dk_relay_run(void *arg)
{
    struct rn__dk_relay *r = arg;
    while (!rn__dk_stop) {
        struct pollfd pfd = {r->lfd, POLLIN, 0};
        if (poll(&pfd, 1, 200) <= 0) continue;
        int c = accept(r->lfd, NULL, NULL);
        if (c < 0) continue;
        int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (t < 0 || connect(t, (struct sockaddr *)&r->target, sizeof r->target) != 0) {
            close(c);
            if (t >= 0) close(t);
            continue;
        }
        struct rn__dk_pipe *p = rn_xmalloc(sizeof *p);
        *p = (struct rn__dk_pipe){c, t};
        pthread_t th;
        if (pthread_create(&th, NULL, rn__dk_pipe_run, p) != 0) {
            close(c);
            close(t);
            free(p);
            continue;
        }
        pthread_detach(th);
    }
    return NULL;
}

/* Listens on 127.0.0.1:port and relays to the first broker of `boot`
 * ("127.0.0.1:NNN,..."). Returns 0 or -1 with a message on stderr. */
static int rn__dk_relay_start(struct rn__dk_relay *r, int port, const char *boot)
{
    int bport = 0;
    const char *colon = strchr(boot, ':');
    if (!colon || sscanf(colon + 1, "%d", &bport) != 1) {
        fprintf(stderr, "runnel: dev-kafka: unexpected bootstrap address '%s'\n", boot);
        return -1;
    }
    memset(&r->target, 0, sizeof r->target);
    r->target.sin_family = AF_INET;
    r->target.sin_port = htons((uint16_t)bport);
    r->target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(r->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(r->lfd, 64) != 0) {
        fprintf(stderr, "runnel: dev-kafka: cannot listen on 127.0.0.1:%d: %s\n", port,
                strerror(errno));
        close(r->lfd);
        return -1;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, rn__dk_relay_run, r) != 0) {
        close(r->lfd);
        return -1;
    }
    pthread_detach(th);
    return 0;
}

/* ---- the command --------------------------------------------------------------------- */

/* Creates the topics of "a:4,b:1" (partitions default to 1). */
static int rn__dk_topics(rd_kafka_mock_cluster_t *mc, const char *list)
{
    char *copy = rn_xstrdup(list), *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(t, ':');
        int64_t parts = 1;
        if (colon) {
            *colon = 0;
            if (rn_parse_i64(colon + 1, &parts) || parts < 1 || parts > 10000) {
                fprintf(stderr,
                        "runnel: dev-kafka: --topics: '%s': partitions must be a "
                        "number in 1..10000\n",
                        colon + 1);
                rc = 2;
                break;
            }
        }
        if (!*t) {
            fprintf(stderr, "runnel: dev-kafka: --topics: empty topic name in '%s'\n", list);
            rc = 2;
            break;
        }
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, t, (int)parts, 1);
        if (e) {
            fprintf(stderr, "runnel: dev-kafka: cannot create topic '%s': %s\n", t,
                    rd_kafka_err2str(e));
            rc = 1;
        }
    }
    free(copy);
    return rc;
}

int rn_devkafka_main(int argc, char **argv)
{
    int64_t brokers = 3, port = 0;
    const char *topics = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return rn__dk_usage(stdout);
        if (i + 1 >= argc) {
            fprintf(stderr, "runnel: dev-kafka: unknown option or missing value: '%s'\n", a);
            return rn__dk_usage(stderr);
        }
        const char *v = argv[++i];
        if (strcmp(a, "--brokers") == 0) {
            if (rn_parse_i64(v, &brokers) || brokers < 1 || brokers > 64) {
                fprintf(stderr, "runnel: dev-kafka: --brokers must be a number in 1..64\n");
                return 2;
            }
        } else if (strcmp(a, "--port") == 0) {
            if (rn_parse_i64(v, &port) || port < 1 || port > 65535) {
                fprintf(stderr, "runnel: dev-kafka: --port must be a number in 1..65535\n");
                return 2;
            }
        } else if (strcmp(a, "--topics") == 0) {
            topics = v;
        } else {
            fprintf(stderr, "runnel: dev-kafka: unknown option '%s'\n", a);
            return rn__dk_usage(stderr);
        }
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "runnel: dev-kafka: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, (int)brokers);
    if (!mc) {
        fprintf(stderr, "runnel: dev-kafka: cannot start librdkafka's mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    int rc = topics ? rn__dk_topics(mc, topics) : 0;
    static struct rn__dk_relay relay;
    const char *boot = rd_kafka_mock_cluster_bootstraps(mc);
    if (!rc && port && rn__dk_relay_start(&relay, (int)port, boot)) rc = 1;
    if (!rc) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = rn__dk_on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        if (port)
            printf("127.0.0.1:%d\n", (int)port);
        else
            printf("%s\n", boot);
        fflush(stdout);
        fprintf(stderr, "runnel: dev-kafka: %d broker(s) at %s%s; Ctrl-C stops\n", (int)brokers,
                boot, port ? " (relayed from --port)" : "");
        while (!rn__dk_stop)
            pause();
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return rc;
}
