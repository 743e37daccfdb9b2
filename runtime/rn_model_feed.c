/*
 * rn_model_feed.c — follows a model store for every reader in the process
 * (include/runnel/rn_model.h, "following a model store").
 *
 * One feed per store directory, shared and reference-counted. Its loader
 * thread polls the store every poll_ms; when the current version (newest, or
 * pinned) differs from the one served, it loads the file, warms the model up
 * (a scoring pass over every parameter, so the first request after the swap
 * does not pay for page faults) and publishes it with one atomic store.
 *
 * Readers (inference subtasks, serving threads) never take a lock. Each owns a
 * slot, a hazard pointer: enter() loads the current model, stores it in the
 * slot, and re-checks that it is still current (else retries); exit() clears
 * the slot. The loader keeps replaced versions on a retired list and frees one
 * only when no slot points to it. A reader holds a model for one request or
 * one batch, so a replaced version is freed within a poll or two.
 *
 * A topic feed (rn_model_feed_acquire_topic) differs only in where versions
 * come from: its loader reads a model topic (rn_model_topic.c) instead of
 * listing a directory, and a new message under its key replaces the version
 * served, whatever its id (the latest message is what compaction keeps).
 * While it catches up with a topic's history it loads only the last version
 * of each read, not every one in between.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rn_model.h"
#include "rn_model_topic_int.h"

#define RN_FEED_SLOTS 256

struct rn__served {
    struct rn_model *m;
    int64_t version;
    struct rn__served *next; /* retired list */
};

struct rn_model_feed {
    char *dir; /* the directory, or the topic feed's name (kafka://brokers/topic#key) */
    struct rn__mtopic_reader *topic; /* NULL: a directory feed */
    struct rn_buf msg;                /* a topic feed's last message (under mu) */
    int64_t msg_since;                /* when msg came, not loaded yet; 0: loaded */
    char msg_where[256];
    int64_t poll_ms;
    int refs; /* under rn__feeds_mu */
    struct rn_model_feed *next;
    _Atomic(struct rn__served *) cur;
    _Atomic(struct rn__served *) slots[RN_FEED_SLOTS];
    atomic_int slot_used[RN_FEED_SLOTS];
    struct rn__served *retired; /* loader only (or under mu) */
    pthread_mutex_t mu;         /* loads: the loader thread vs rn_model_feed_poll */
    pthread_cond_t cv;
    int stop;
    pthread_t thread;
    struct rn_model_feed_stats st; /* under mu */
};

static pthread_mutex_t rn__feeds_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rn_model_feed *rn__feeds;

/* Frees retired versions that no slot holds. Called with f->mu held. */
static void rn__feed_reclaim(struct rn_model_feed *f)
{
    for (struct rn__served **p = &f->retired; *p;) {
        struct rn__served *s = *p;
        int held = 0;
        for (int i = 0; i < RN_FEED_SLOTS && !held; i++)
            held = atomic_load(&f->slots[i]) == s;
        if (held) {
            p = &s->next;
            continue;
        }
        *p = s->next;
        rn_model_destroy(s->m);
        free(s);
        f->st.freed++;
    }
    f->st.held = 0;
    for (struct rn__served *s = f->retired; s; s = s->next)
        f->st.held++;
}

/* Touches every parameter once through the scoring path. */
static void rn__feed_warm(const struct rn_model *m)
{
    uint32_t d = m->shape.dim, f = m->shape.phi;
    float *phi = rn_xcalloc(f, sizeof *phi), *E = rn_xcalloc(d, sizeof *E), out;
    uint64_t id = 0;
    rn_model_advantages(m, phi, E, &id, 1, &out);
    volatile float sink = 0;
    for (size_t i = 0; i < m->at.n; i += 16)
        sink += m->params[i];
    (void)sink;
    free(phi);
    free(E);
}

/* Makes s the version served; the one it replaces goes on the retired list.
 * f->mu held. */
static void rn__feed_swap(struct rn_model_feed *f, struct rn_model *m, int64_t id, int64_t t0)
{
    rn__feed_warm(m);
    struct rn__served *s = rn_xcalloc(1, sizeof *s);
    s->m = m;
    s->version = id;
    struct rn__served *cur = atomic_load(&f->cur);
    atomic_store(&f->cur, s);
    if (cur) {
        cur->next = f->retired;
        f->retired = cur;
    }
    f->st.version = id;
    f->st.loads++;
    f->st.last_load_ms = (double)(rn_now_ns() - t0) / 1e6;
    rn__feed_reclaim(f);
}

static void rn__feed_fail(struct rn_model_feed *f, const char *err)
{
    f->st.failures++;
    snprintf(f->st.last_error, sizeof f->st.last_error, "%s", err);
}

/* A topic feed: reads what arrived (waiting at most wait_ms) and loads the
 * last version under the key once the reader has caught up with the topic
 * (or the message has waited 5 s), so that catching up with a long history
 * loads one version, not each. f->mu held. */
static void rn__feed_check_topic(struct rn_model_feed *f, int wait_ms)
{
    char err[512];
    int rc = rn__mtopic_reader_read(f->topic, wait_ms, &f->msg, f->msg_where,
                                    sizeof f->msg_where, err, sizeof err);
    if (rc < 0) rn__feed_fail(f, err);
    if (rc > 0 && !f->msg_since) f->msg_since = rn_now_ns();
    if (!f->msg_since) return;
    int64_t t0 = rn_now_ns();
    if (!rn__mtopic_reader_caught_up(f->topic) && t0 - f->msg_since < 5000 * (int64_t)1000000)
        return;
    f->msg_since = 0;
    struct rn_model_version v;
    struct rn_model *m =
        rn_model_decode(f->msg.data, f->msg.len, f->msg_where, &v, err, sizeof err);
    if (!m) {
        rn__feed_fail(f, err);
        return;
    }
    rn__feed_swap(f, m, v.id, t0);
}

/* Loads the store's current version if it is not the one served. f->mu held. */
static void rn__feed_check(struct rn_model_feed *f)
{
    if (f->topic) {
        rn__feed_check_topic(f, 0);
        return;
    }
    char err[512];
    int64_t id;
    int rc = rn_store_current(f->dir, &id, err, sizeof err);
    if (rc == RN_ENOENT) return;
    struct rn__served *cur = atomic_load(&f->cur);
    if (rc) {
        rn__feed_fail(f, err);
        return;
    }
    if (cur && cur->version == id) return;
    int64_t t0 = rn_now_ns();
    struct rn_model *m = rn_store_load(f->dir, id, err, sizeof err);
    if (!m) {
        rn__feed_fail(f, err);
        return;
    }
    rn__feed_swap(f, m, id, t0);
}

static void *rn__feed_main(void *arg)
{
    struct rn_model_feed *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!f->stop) {
        rn__feed_check(f);
        rn__feed_reclaim(f); /* versions whose last reader left since the last poll */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + f->poll_ms * 1000000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&f->cv, &f->mu, &ts);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* The feed named `name` (shared), started with `topic` (taken; NULL for a
 * directory feed) when it is the first. */
static struct rn_model_feed *rn__feed_acquire(const char *name, struct rn__mtopic_reader *topic,
                                              int64_t poll_ms, char *errbuf, size_t errlen)
{
    pthread_mutex_lock(&rn__feeds_mu);
    struct rn_model_feed *f = rn__feeds;
    while (f && strcmp(f->dir, name))
        f = f->next;
    if (f) {
        f->refs++;
        pthread_mutex_unlock(&rn__feeds_mu);
        rn__mtopic_reader_close(topic);
        return f;
    }
    f = rn_xcalloc(1, sizeof *f);
    f->dir = rn_xstrdup(name);
    f->topic = topic;
    f->poll_ms = poll_ms > 0 ? poll_ms : 200;
    f->refs = 1;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    int rc = pthread_create(&f->thread, NULL, rn__feed_main, f);
    if (rc) {
        rn_errf(errbuf, errlen, "cannot start the model loader thread: %s", strerror(rc));
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->cv);
        rn__mtopic_reader_close(f->topic);
        free(f->dir);
        free(f);
        pthread_mutex_unlock(&rn__feeds_mu);
        return NULL;
    }
    f->next = rn__feeds;
    rn__feeds = f;
    pthread_mutex_unlock(&rn__feeds_mu);
    return f;
}

struct rn_model_feed *rn_model_feed_acquire(const char *dir, int64_t poll_ms, char *errbuf,
                                            size_t errlen)
{
    return rn__feed_acquire(dir, NULL, poll_ms, errbuf, errlen);
}

struct rn_model_feed *rn_model_feed_acquire_topic(const char *brokers, const char *topic,
                                                  const char *key, int64_t poll_ms,
                                                  char *errbuf, size_t errlen)
{
    struct rn_buf name = RN_BUF_INIT;
    rn_buf_printf(&name, "kafka://%s/%s#%s", brokers, topic, key);
    struct rn_model_feed *f = NULL;
    /* Opening a reader costs a client; skip it when the feed exists. */
    pthread_mutex_lock(&rn__feeds_mu);
    for (f = rn__feeds; f && strcmp(f->dir, name.data); f = f->next)
        ;
    if (f) f->refs++;
    pthread_mutex_unlock(&rn__feeds_mu);
    if (!f) {
        struct rn__mtopic_reader *r = rn__mtopic_reader_open(brokers, topic, key, errbuf, errlen);
        if (r) f = rn__feed_acquire(name.data, r, poll_ms, errbuf, errlen);
    }
    rn_buf_free(&name);
    return f;
}

void rn_model_feed_release(struct rn_model_feed *f)
{
    if (!f) return;
    pthread_mutex_lock(&rn__feeds_mu);
    if (--f->refs > 0) {
        pthread_mutex_unlock(&rn__feeds_mu);
        return;
    }
    for (struct rn_model_feed **p = &rn__feeds; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    pthread_mutex_unlock(&rn__feeds_mu);
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    struct rn__served *cur = atomic_load(&f->cur);
    if (cur) {
        cur->next = f->retired;
        f->retired = cur;
    }
    while (f->retired) {
        struct rn__served *s = f->retired;
        f->retired = s->next;
        rn_model_destroy(s->m);
        free(s);
    }
    rn__mtopic_reader_close(f->topic);
    rn_buf_free(&f->msg);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f->dir);
    free(f);
}

int rn_model_feed_slot(struct rn_model_feed *f)
{
    for (int i = 0; i < RN_FEED_SLOTS; i++) {
        int zero = 0;
        if (atomic_compare_exchange_strong(&f->slot_used[i], &zero, 1)) return i;
    }
    return RN_EFULL;
}

void rn_model_feed_slot_free(struct rn_model_feed *f, int slot)
{
    if (slot < 0 || slot >= RN_FEED_SLOTS) return;
    atomic_store(&f->slots[slot], NULL);
    atomic_store(&f->slot_used[slot], 0);
}

const struct rn_model *rn_model_feed_enter(struct rn_model_feed *f, int slot, int64_t *version)
{
    struct rn__served *s;
    do {
        s = atomic_load(&f->cur);
        atomic_store(&f->slots[slot], s);
    } while (s != atomic_load(&f->cur));
    if (version) *version = s ? s->version : 0;
    return s ? s->m : NULL;
}

void rn_model_feed_exit(struct rn_model_feed *f, int slot)
{
    atomic_store(&f->slots[slot], NULL);
}

int64_t rn_model_feed_poll(struct rn_model_feed *f)
{
    pthread_mutex_lock(&f->mu);
    if (f->topic) {
        /* Up to the end of every partition (or 5 s), then the last version. */
        int64_t deadline = rn_now_ns() + 5000 * (int64_t)1000000;
        do
            rn__feed_check_topic(f, 100);
        while ((!rn__mtopic_reader_caught_up(f->topic) || f->msg_since) &&
               rn_now_ns() < deadline);
    } else {
        rn__feed_check(f);
    }
    int64_t v = f->st.version;
    pthread_mutex_unlock(&f->mu);
    return v;
}

void rn_model_feed_stats(struct rn_model_feed *f, struct rn_model_feed_stats *out)
{
    pthread_mutex_lock(&f->mu);
    *out = f->st;
    pthread_mutex_unlock(&f->mu);
}
