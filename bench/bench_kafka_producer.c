/*
 * bench_kafka_producer.c — the baseline of bench/run_kafka.sh: a bare
 * librdkafka producer writing the lines of a file, one message each, to a
 * Kafka topic, with nothing else around it.
 *
 * With --txn-messages N / --txn-ms T (the default: 10,000 messages or
 * 100 ms) it writes through Kafka transactions as the `kafka` sink does in
 * mode exactly_once: init_transactions once, then begin_transaction, produce,
 * and commit_transaction (which flushes) every N messages or T ms, whichever
 * comes first, and at the end. With --plain it is an idempotent producer
 * that only flushes at the end (the sink's at_least_once shape).
 *
 * The file is read into memory before the clock starts, so the figure is the
 * producer's alone. It prints one line:
 *   messages=M bytes=B wall_s=W cpu_s=C msgs_per_s=.. msgs_per_cpu_s=.. txns=K
 * where cpu_s is the process's user + system time (librdkafka's threads
 * included) spent producing.
 *
 *   build/bench_kafka_producer --brokers B --topic T --in FILE
 *        [--txn-messages N] [--txn-ms T] [--plain] [--key-field NAME]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static unsigned long long delivered, failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        if (!failed)
            fprintf(stderr, "bench_kafka_producer: delivery: %s\n", rd_kafka_err2str(m->err));
        failed++;
    } else {
        delivered++;
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_kafka_producer --brokers B --topic T --in FILE "
                    "[--txn-messages N] [--txn-ms T] [--plain] [--key-field NAME]\n");
    exit(2);
}

/* Reads the whole of `path`; exits on failure. The caller owns the buffer. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    size_t cap = 1 << 20, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (n == cap) b = realloc(b, cap *= 2);
        if (!b) {
            fprintf(stderr, "bench_kafka_producer: out of memory\n");
            exit(1);
        }
        size_t got = fread(b + n, 1, cap - n, f);
        if (!got) break;
        n += got;
    }
    fclose(f);
    *len = n;
    return b;
}

/* The value of top-level string field `name` in a JSON line ("name":"v"), or
 * none; a plain search, enough for the generator's lines. */
static const char *key_of(const char *line, size_t n, const char *pat, size_t pat_len, size_t *kn)
{
    const char *p = memmem(line, n, pat, pat_len);
    if (!p) return NULL;
    p += pat_len;
    const char *e = memchr(p, '"', (size_t)(line + n - p));
    if (!e) return NULL;
    *kn = (size_t)(e - p);
    return p;
}

static void die_txn(const char *what, rd_kafka_error_t *e)
{
    fprintf(stderr, "bench_kafka_producer: %s: %s\n", what, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    exit(1);
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *topic = NULL, *in = NULL, *key_field = NULL;
    long txn_messages = 10000, txn_ms = 100;
    int plain = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--plain") == 0) {
            plain = 1;
            continue;
        }
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (strcmp(a, "--brokers") == 0)
            brokers = v;
        else if (strcmp(a, "--topic") == 0)
            topic = v;
        else if (strcmp(a, "--in") == 0)
            in = v;
        else if (strcmp(a, "--key-field") == 0)
            key_field = v;
        else if (strcmp(a, "--txn-messages") == 0)
            txn_messages = atol(v);
        else if (strcmp(a, "--txn-ms") == 0)
            txn_ms = atol(v);
        else
            usage();
    }
    if (!brokers || !topic || !in || txn_messages < 1 || txn_ms < 1) usage();

    size_t len;
    char *data = slurp(in, &len);
    char pat[256];
    size_t pat_len = 0;
    if (key_field) pat_len = (size_t)snprintf(pat, sizeof pat, "\"%s\":\"", key_field);

    /* The same settings as the kafka sink's (operators/sink_kafka.c). */
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *props[] = {"bootstrap.servers",
                           brokers,
                           "linger.ms",
                           "5",
                           "enable.idempotence",
                           "true",
                           "log.connection.close",
                           "false",
                           plain ? NULL : "transactional.id",
                           "bench-kafka-producer",
                           "transaction.timeout.ms",
                           "60000",
                           NULL};
    for (int i = 0; props[i]; i += 2) {
        if (rd_kafka_conf_set(conf, props[i], props[i + 1], err, sizeof err)) {
            fprintf(stderr, "bench_kafka_producer: %s\n", err);
            return 1;
        }
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "bench_kafka_producer: %s\n", err);
        return 1;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_error_t *e;
    /* Set-up outside the clock, as a long-running sink pays it once: the
     * transactional id and the topic's metadata. */
    if (!plain && (e = rd_kafka_init_transactions(rk, 30000))) die_txn("init_transactions", e);
    const struct rd_kafka_metadata *md;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == 0) rd_kafka_metadata_destroy(md);

    double w0 = now_s(), c0 = cpu_s(), last_commit = w0;
    unsigned long long n = 0, in_txn = 0, txns = 0;
    int open = 0;
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ln = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *line = p;
        p += ln + (nl != NULL);
        if (!ln) continue;
        if (!plain && !open) {
            if ((e = rd_kafka_begin_transaction(rk))) die_txn("begin_transaction", e);
            open = 1;
        }
        size_t kn = 0;
        const char *k = key_field ? key_of(line, ln, pat, pat_len, &kn) : NULL;
        while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)line, ln,
                                k, kn, NULL) != 0) {
            if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "bench_kafka_producer: produce: %s\n",
                        rd_kafka_err2str(rd_kafka_last_error()));
                return 1;
            }
            rd_kafka_poll(rk, 10);
        }
        n++;
        in_txn++;
        rd_kafka_poll(rk, 0);
        if (!plain && (in_txn >= (unsigned long long)txn_messages ||
                       (n % 256 == 0 && (now_s() - last_commit) * 1000 >= (double)txn_ms))) {
            if ((e = rd_kafka_commit_transaction(rk, 60000))) die_txn("commit_transaction", e);
            open = 0;
            in_txn = 0;
            txns++;
            last_commit = now_s();
        }
    }
    if (open) {
        if ((e = rd_kafka_commit_transaction(rk, 60000))) die_txn("commit_transaction", e);
        txns++;
    }
    if (rd_kafka_flush(rk, 60000)) {
        fprintf(stderr, "bench_kafka_producer: flush timed out\n");
        return 1;
    }
    double wall = now_s() - w0, cpu = cpu_s() - c0;
    printf("messages=%llu bytes=%zu wall_s=%.3f cpu_s=%.3f msgs_per_s=%.0f msgs_per_cpu_s=%.0f "
           "txns=%llu delivered=%llu failed=%llu\n",
           n, len, wall, cpu, (double)n / wall, (double)n / cpu, txns, delivered, failed);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(data);
    return failed || delivered != n;
}
