/*
 * rn_model_topic_int.h — reading a model topic (runtime/rn_model_topic.c) for
 * the model feed (rn_model_feed.c). Engine-internal.
 *
 * A reader assigns itself every partition of the topic from the beginning (no
 * consumer group, nothing committed) and hands back the value of the last
 * message under its key that it has seen. One thread uses a reader at a time
 * (the feed calls it with its mutex held).
 */
#ifndef RUNNEL_RN_MODEL_TOPIC_INT_H
#define RUNNEL_RN_MODEL_TOPIC_INT_H

#include "rn_common.h"

struct rn__mtopic_reader;

/* A reader of `topic` on `brokers` for messages keyed `key` (the strings are
 * copied). The topic need not exist yet: the partitions are assigned on the
 * first read that finds it. Returns NULL with a message. */
struct rn__mtopic_reader *rn__mtopic_reader_open(const char *brokers, const char *topic,
                                                 const char *key, char *errbuf, size_t errlen);
void rn__mtopic_reader_close(struct rn__mtopic_reader *r);

/* Reads what has arrived, waiting at most timeout_ms for the first message.
 * When a message under the key arrived, its value replaces *latest (the
 * caller's buffer, reset first) and *where names it ("topic T partition P
 * offset O"). Returns 1 when a new value was stored, 0 when none, < 0 with a
 * message (the topic's metadata or a fetch failed; the reader keeps going). */
int rn__mtopic_reader_read(struct rn__mtopic_reader *r, int timeout_ms, struct rn_buf *latest,
                           char *where, size_t where_len, char *errbuf, size_t errlen);

/* 1 when every assigned partition has been read to its end (since the last
 * message that arrived), 0 otherwise (also before the topic was found). */
int rn__mtopic_reader_caught_up(const struct rn__mtopic_reader *r);

#endif
