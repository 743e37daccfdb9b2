/*
 * source_nexmark.c — `nexmark`: a generator of the Nexmark benchmark's
 * online-auction stream (persons, auctions, bids) as one record type,
 * "nexmark", whose `kind` says which.
 *
 * The stream follows the published description of the Nexmark generator of
 * Apache Beam and Flink's nexmark project: of every 50 events, 1 is a new
 * person, 3 are new auctions and 46 are bids; ids start at 1000; a bid goes
 * to a "hot" auction (the newest multiple of 100) with probability 1/2 and
 * otherwise to one of the ~100 auctions in flight, from a hot bidder with
 * probability 3/4 and otherwise from one of the ~1000 active people; prices
 * are 100 x 10^(6u) cents for u uniform in [0, 1); auctions fall into 5
 * categories from 10; `extra` pads the records towards the benchmark's
 * average sizes (person 200, auction 500, bid 100 bytes). Event i has event
 * time base_time + i x 1000 / rate ms, so `rate` sets how fast event time
 * moves (Flink's benchmark runs at 10 M events per second).
 *
 * Determinism: every random choice of event i is drawn from a generator
 * seeded with (seed, i), so the stream is a function of (seed, i) alone,
 * whatever the batch sizes and wherever a restored job resumes. The
 * checkpointed position is the index of the next event.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_checkpoint.h"
#include "rn_operator.h"
#include "rn_rand.h"

enum { RN_NX_PERSON = 0, RN_NX_AUCTION = 1, RN_NX_BID = 2 };

#define RN_NX_TOTAL 50
#define RN_NX_PERSONS 1
#define RN_NX_AUCTIONS 3
#define RN_NX_FIRST_ID 1000
#define RN_NX_FIRST_CATEGORY 10
#define RN_NX_CATEGORIES 5
#define RN_NX_HOT_RATIO 100 /* hot ids are multiples of 100 */
#define RN_NX_IN_FLIGHT 100 /* auctions open at a time */
#define RN_NX_ACTIVE 1000   /* people who bid and sell */
#define RN_NX_ID_LEAD 10    /* ids may run a little ahead of the newest */

/* The "nexmark" record: one struct for the three kinds; fields that do not
 * apply to a kind are 0 or empty. */
struct rn_nexmark {
    int64_t kind;                                                /* RN_NX_* */
    int64_t date_time;                                           /* event time, ms */
    int64_t id;                                                  /* person and auction: its id */
    int64_t auction;                                             /* bid */
    int64_t bidder;                                              /* bid */
    int64_t price;                                               /* bid, cents */
    int64_t seller;                                              /* auction */
    int64_t category;                                            /* auction */
    int64_t initial_bid, reserve, expires;                       /* auction */
    struct rn_str name, email_address, credit_card, city, state; /* person */
    struct rn_str item_name, description;                        /* auction */
    struct rn_str channel, url;                                  /* bid */
    struct rn_str extra;
};

static const char *const rn_nx_kinds[] = {"person", "auction", "bid", NULL};

#define RN_NX_I(n, f, d)                                                                           \
    {                                                                                              \
        n, RN_FIELD_I64, offsetof(struct rn_nexmark, f), NULL, d                                   \
    }
#define RN_NX_S(n, f, d)                                                                           \
    {                                                                                              \
        n, RN_FIELD_STR, offsetof(struct rn_nexmark, f), NULL, d                                   \
    }
static const struct rn_field rn_nx_fields[] = {
    {"kind", RN_FIELD_I64, offsetof(struct rn_nexmark, kind), rn_nx_kinds,
     "person, auction or bid."},
    RN_NX_I("date_time", date_time, "Event time, ms since the epoch."),
    RN_NX_I("id", id, "Person or auction id."),
    RN_NX_I("auction", auction, "Bid: the auction's id."),
    RN_NX_I("bidder", bidder, "Bid: the bidder's person id."),
    RN_NX_I("price", price, "Bid: price in cents."),
    RN_NX_I("seller", seller, "Auction: the seller's person id."),
    RN_NX_I("category", category, "Auction: category, 10..14."),
    RN_NX_I("initial_bid", initial_bid, "Auction: first price, cents."),
    RN_NX_I("reserve", reserve, "Auction: reserve price, cents."),
    RN_NX_I("expires", expires, "Auction: when it closes, ms."),
    RN_NX_S("name", name, "Person: name."),
    RN_NX_S("email_address", email_address, "Person: e-mail address."),
    RN_NX_S("credit_card", credit_card, "Person: card number."),
    RN_NX_S("city", city, "Person: city."),
    RN_NX_S("state", state, "Person: US state."),
    RN_NX_S("item_name", item_name, "Auction: item name."),
    RN_NX_S("description", description, "Auction: description."),
    RN_NX_S("channel", channel, "Bid: channel."),
    RN_NX_S("url", url, "Bid: URL."),
    RN_NX_S("extra", extra, "Padding towards the benchmark's record sizes."),
    {NULL, 0, 0, NULL, NULL},
};

static void rn_nx_kv_i(struct rn_buf *o, const char *k, int64_t v)
{
    rn_buf_putc(o, ',');
    rn_json_str(o, k, strlen(k));
    rn_buf_putc(o, ':');
    rn_json_i64(o, v);
}

static void rn_nx_kv_s(struct rn_buf *o, const struct rn_nexmark *e, const char *k, struct rn_str s)
{
    rn_buf_putc(o, ',');
    rn_json_str(o, k, strlen(k));
    rn_buf_putc(o, ':');
    rn_json_str(o, rn_str_ptr(e, s), s.len);
}

static void rn_nx_json(const struct rn_record *r, struct rn_buf *o)
{
    const struct rn_nexmark *e = r->payload;
    RN_BUF_LIT(o, "{\"kind\":");
    const char *k = rn_nx_kinds[e->kind >= 0 && e->kind <= 2 ? e->kind : 2];
    rn_json_str(o, k, strlen(k));
    if (e->kind == RN_NX_PERSON) {
        rn_nx_kv_i(o, "id", e->id);
        rn_nx_kv_s(o, e, "name", e->name);
        rn_nx_kv_s(o, e, "email_address", e->email_address);
        rn_nx_kv_s(o, e, "credit_card", e->credit_card);
        rn_nx_kv_s(o, e, "city", e->city);
        rn_nx_kv_s(o, e, "state", e->state);
    } else if (e->kind == RN_NX_AUCTION) {
        rn_nx_kv_i(o, "id", e->id);
        rn_nx_kv_s(o, e, "item_name", e->item_name);
        rn_nx_kv_s(o, e, "description", e->description);
        rn_nx_kv_i(o, "initial_bid", e->initial_bid);
        rn_nx_kv_i(o, "reserve", e->reserve);
        rn_nx_kv_i(o, "expires", e->expires);
        rn_nx_kv_i(o, "seller", e->seller);
        rn_nx_kv_i(o, "category", e->category);
    } else {
        rn_nx_kv_i(o, "auction", e->auction);
        rn_nx_kv_i(o, "bidder", e->bidder);
        rn_nx_kv_i(o, "price", e->price);
        rn_nx_kv_s(o, e, "channel", e->channel);
        rn_nx_kv_s(o, e, "url", e->url);
    }
    rn_nx_kv_i(o, "date_time", e->date_time);
    rn_nx_kv_s(o, e, "extra", e->extra);
    rn_buf_putc(o, '}');
}

static const char *const rn_nx_key_fields[] = {"auction", "bidder",   "id",
                                               "seller",  "category", NULL};

static uint64_t rn_nx_key_of(const struct rn_record *r, int field)
{
    const struct rn_nexmark *e = r->payload;
    int64_t v = field == 0   ? e->auction
                : field == 1 ? e->bidder
                : field == 2 ? e->id
                : field == 3 ? e->seller
                             : e->category;
    return rn_hash64(&v, sizeof v);
}

static const struct rn_type rn_type_nexmark = {
    .name = "nexmark",
    .description = "a Nexmark event: a person, an auction or a bid",
    .write_json = rn_nx_json,
    .key_fields = rn_nx_key_fields,
    .key_of = rn_nx_key_of,
    .fields = rn_nx_fields,
};

static const struct rn_type *const rn_nx_types[] = {&rn_type_nexmark, NULL};

/* ---- configuration -------------------------------------------------------------------- */

struct rn_nx_cfg {
    int64_t events, rate, seed, base_time;
    int extra;
};

static const struct rn_config_key rn_nx_keys[] = {
    {"events", RN_CT_INT, "1000000", NULL, offsetof(struct rn_nx_cfg, events),
     "How many events to generate; then the source ends.", NULL, 0, 1, (int64_t)1 << 50},
    {"rate", RN_CT_INT, "10000000", "events/s", offsetof(struct rn_nx_cfg, rate),
     "Events per second of event time: event i has time base_time + i * 1000 / rate ms. "
     "It does not pace the generator.",
     NULL, 0, 1, (int64_t)1 << 40},
    {"seed", RN_CT_INT, "0", NULL, offsetof(struct rn_nx_cfg, seed),
     "Seed of every random choice; the same seed gives the same stream.", NULL, 0, 0, 0},
    {"base_time", RN_CT_INT, "1700000000000", "ms", offsetof(struct rn_nx_cfg, base_time),
     "Event time of the first event, ms since the epoch.", NULL, 0, 0, (int64_t)1 << 50},
    {"extra", RN_CT_BOOL, "true", NULL, offsetof(struct rn_nx_cfg, extra),
     "Pad `extra` towards the benchmark's average sizes (person 200, auction 500, bid 100 "
     "bytes).",
     NULL, 0, 0, 0},
    RN_CONFIG_END,
};

/* ---- generation ------------------------------------------------------------------------ */

struct rn_nx_state {
    int64_t next; /* index of the next event */
    struct rn_payload p;
};

static const char *const rn_nx_first[] = {"Peter", "Paul",  "Luke",  "John",   "Saul",  "Vicky",
                                          "Kate",  "Julie", "Sarah", "Deiter", "Walter"};
static const char *const rn_nx_last[] = {"Shultz", "Abrams", "Spencer", "White", "Bartels",
                                         "Walton", "Smith",  "Jones",   "Noris"};
static const char *const rn_nx_cities[] = {"Phoenix",  "Los Angeles", "San Francisco", "Boise",
                                           "Portland", "Bend",        "Redmond",       "Seattle",
                                           "Kent",     "Cheyenne"};
static const char *const rn_nx_states[] = {"AZ", "CA", "ID", "OR", "WA", "WY"};
static const char *const rn_nx_hot_channels[] = {"Google", "Facebook", "Baidu", "Apple"};
static const char *const rn_nx_hot_urls[] = {"https://www.nexmark.com/Google/item.htm?query=1",
                                             "https://www.nexmark.com/Facebook/item.htm?query=1",
                                             "https://www.nexmark.com/Baidu/item.htm?query=1",
                                             "https://www.nexmark.com/Apple/item.htm?query=1"};

/* The newest person (base 0) at or before event i. */
static int64_t rn_nx_last_person(int64_t i)
{
    return i / RN_NX_TOTAL * RN_NX_PERSONS;
}

/* The newest auction (base 0) at or before event i (-1: none yet). */
static int64_t rn_nx_last_auction(int64_t i)
{
    int64_t epoch = i / RN_NX_TOTAL, off = i % RN_NX_TOTAL;
    if (off < RN_NX_PERSONS) return epoch * RN_NX_AUCTIONS - 1;
    off -= RN_NX_PERSONS;
    return epoch * RN_NX_AUCTIONS + (off < RN_NX_AUCTIONS ? off : RN_NX_AUCTIONS - 1);
}

/* Some active person (base 0), possibly a little ahead of the newest. */
static int64_t rn_nx_some_person(struct rn_rand *g, int64_t i)
{
    int64_t people = rn_nx_last_person(i) + 1;
    int64_t active = people < RN_NX_ACTIVE ? people : RN_NX_ACTIVE;
    return people - active + (int64_t)rn_rand_below(g, (uint64_t)(active + RN_NX_ID_LEAD));
}

static int64_t rn_nx_price(struct rn_rand *g)
{
    return (int64_t)llround(pow(10.0, rn_rand_uniform(g) * 6.0) * 100.0);
}

/* n random lowercase letters, written straight into the payload; 13 letters
 * from each 64-bit draw (26^13 < 2^64). */
static struct rn_str rn_nx_word(struct rn_payload *p, struct rn_rand *g, size_t n)
{
    rn_buf_reserve(&p->buf, n);
    struct rn_str r = {(uint32_t)p->buf.len, (uint32_t)n};
    char *d = p->buf.data + p->buf.len;
    for (size_t k = 0; k < n;) {
        uint64_t x = rn_rand_next(g);
        for (int j = 0; j < 13 && k < n; j++, k++) {
            d[k] = (char)('a' + x % 26);
            x /= 26;
        }
    }
    p->buf.len += n;
    return r;
}

/* The decimal digits of v (< 10^width), zero-padded to width, at d. */
static void rn_nx_digits(char *d, unsigned v, int width)
{
    for (int k = width - 1; k >= 0; k--, v /= 10)
        d[k] = (char)('0' + v % 10);
}

static struct rn_str rn_nx_text(struct rn_payload *p, const char *s)
{
    return rn_payload_str(p, s, strlen(s));
}

/* Builds event i into s->p. */
static void rn_nx_make(const struct rn_nx_cfg *c, struct rn_nx_state *s, int64_t i, int64_t *ts)
{
    struct rn_rand g;
    rn_rand_seed(&g, (uint64_t)c->seed, (uint64_t)i);
    struct rn_payload *p = &s->p;
    rn_payload_begin(p, sizeof(struct rn_nexmark));
    struct rn_nexmark e;
    memset(&e, 0, sizeof e);
    int64_t off = i % RN_NX_TOTAL;
    *ts = c->base_time + (int64_t)((__int128)i * 1000 / c->rate);
    e.date_time = *ts;
    size_t size, target;
    char buf[96];
    if (off < RN_NX_PERSONS) {
        e.kind = RN_NX_PERSON;
        e.id = rn_nx_last_person(i) + RN_NX_FIRST_ID;
        int n = snprintf(buf, sizeof buf, "%s %s",
                         rn_nx_first[rn_rand_below(&g, RN_ARRAY_LEN(rn_nx_first))],
                         rn_nx_last[rn_rand_below(&g, RN_ARRAY_LEN(rn_nx_last))]);
        e.name = rn_payload_str(p, buf, (size_t)n);
        size_t at = p->buf.len;
        struct rn_str a = rn_nx_word(p, &g, 7), b = rn_nx_word(p, &g, 5);
        n = snprintf(buf, sizeof buf, "%.*s@%.*s.com", (int)a.len, p->buf.data + a.off, (int)b.len,
                     p->buf.data + b.off);
        p->buf.len = at; /* the two words were scratch */
        e.email_address = rn_payload_str(p, buf, (size_t)n);
        n = snprintf(buf, sizeof buf, "%04u %04u %04u %04u", (unsigned)rn_rand_below(&g, 10000),
                     (unsigned)rn_rand_below(&g, 10000), (unsigned)rn_rand_below(&g, 10000),
                     (unsigned)rn_rand_below(&g, 10000));
        e.credit_card = rn_payload_str(p, buf, (size_t)n);
        e.city = rn_nx_text(p, rn_nx_cities[rn_rand_below(&g, RN_ARRAY_LEN(rn_nx_cities))]);
        e.state = rn_nx_text(p, rn_nx_states[rn_rand_below(&g, RN_ARRAY_LEN(rn_nx_states))]);
        size = e.name.len + e.email_address.len + e.credit_card.len + e.city.len + e.state.len + 24;
        target = 200;
    } else if (off < RN_NX_PERSONS + RN_NX_AUCTIONS) {
        e.kind = RN_NX_AUCTION;
        e.id = rn_nx_last_auction(i) + RN_NX_FIRST_ID;
        int64_t last_p = rn_nx_last_person(i);
        e.seller = (rn_rand_below(&g, 4) > 0 ? last_p / RN_NX_HOT_RATIO * RN_NX_HOT_RATIO
                                             : rn_nx_some_person(&g, i)) +
                   RN_NX_FIRST_ID;
        e.category = RN_NX_FIRST_CATEGORY + (int64_t)rn_rand_below(&g, RN_NX_CATEGORIES);
        e.initial_bid = rn_nx_price(&g);
        e.reserve = e.initial_bid + rn_nx_price(&g);
        /* about RN_NX_IN_FLIGHT auctions open at once: an auction lasts up to
         * twice the event time in which that many auctions are created */
        int64_t span_events = RN_NX_IN_FLIGHT * RN_NX_TOTAL / RN_NX_AUCTIONS;
        int64_t span_ms = span_events * 1000 / c->rate;
        e.expires = *ts + 1 + (int64_t)rn_rand_below(&g, (uint64_t)(2 * span_ms + 1));
        e.item_name = rn_nx_word(p, &g, 20);
        e.description = rn_nx_word(p, &g, 100);
        size = e.item_name.len + e.description.len + 64;
        target = 500;
    } else {
        e.kind = RN_NX_BID;
        int64_t last_a = rn_nx_last_auction(i);
        if (rn_rand_below(&g, 2) > 0) {
            e.auction = last_a / RN_NX_HOT_RATIO * RN_NX_HOT_RATIO;
        } else {
            int64_t lo = last_a - RN_NX_IN_FLIGHT > 0 ? last_a - RN_NX_IN_FLIGHT : 0;
            e.auction =
                lo + (int64_t)rn_rand_below(&g, (uint64_t)(last_a - lo + 1 + RN_NX_ID_LEAD));
        }
        e.auction += RN_NX_FIRST_ID;
        int64_t last_p = rn_nx_last_person(i);
        e.bidder = (rn_rand_below(&g, 4) > 0 ? last_p / RN_NX_HOT_RATIO * RN_NX_HOT_RATIO + 1
                                             : rn_nx_some_person(&g, i)) +
                   RN_NX_FIRST_ID;
        e.price = rn_nx_price(&g);
        if (rn_rand_below(&g, 100) > 0) {
            uint64_t h = rn_rand_below(&g, 4);
            e.channel = rn_nx_text(p, rn_nx_hot_channels[h]);
            e.url = rn_nx_text(p, rn_nx_hot_urls[h]);
        } else {
            /* channel-NNNN, and its URL ending in channel_id=NNNN */
            unsigned id = (unsigned)rn_rand_below(&g, 10000);
            static const char url[] = "https://www.nexmark.com/item.htm?query=1&channel_id=";
            memcpy(buf, "channel-", 8);
            rn_nx_digits(buf + 8, id, 4);
            e.channel = rn_payload_str(p, buf, 12);
            memcpy(buf, url, sizeof url - 1);
            rn_nx_digits(buf + sizeof url - 1, id, 4);
            e.url = rn_payload_str(p, buf, sizeof url - 1 + 4);
        }
        size = e.channel.len + e.url.len + 32;
        target = 100;
    }
    if (c->extra && size < target) {
        /* on average target - size bytes: uniform in [0.8, 1.2] times that */
        size_t d = target - size;
        size_t lo = d * 4 / 5, n = lo + (size_t)rn_rand_below(&g, d * 2 / 5 + 1);
        e.extra = rn_nx_word(p, &g, n);
    }
    memcpy(rn_payload_fixed(p), &e, sizeof e);
}

static int rn_nx_open(struct rn_op *op)
{
    struct rn_nx_state *s = rn_op_local(op);
    if (!s) {
        s = rn_xcalloc(1, sizeof *s);
        rn_op_set_local(op, s);
    }
    return 0;
}

static int rn_nx_poll(struct rn_op *op, struct rn_emitter *out)
{
    const struct rn_nx_cfg *c = rn_op_ctx(op);
    struct rn_nx_state *s = rn_op_local(op);
    if (s->next >= c->events) return RN_POLL_END;
    int64_t end = RN_MIN(s->next + 1024, c->events);
    for (; s->next < end; s->next++) {
        int64_t ts;
        rn_nx_make(c, s, s->next, &ts);
        rn_emit_payload(out, 0, ts, 0, &s->p);
    }
    return RN_POLL_MORE;
}

static void rn_nx_close(struct rn_op *op)
{
    struct rn_nx_state *s = rn_op_local(op);
    if (s) {
        rn_buf_free(&s->p.buf);
        free(s);
    }
    rn_op_set_local(op, NULL);
}

static int rn_nx_snapshot(struct rn_op *op, uint64_t id, struct rn_snapshot_writer *w)
{
    const struct rn_nx_state *s = rn_op_local(op);
    (void)id;
    rn_snapshot_write_i64(w, s->next);
    return 0;
}

static int rn_nx_restore(struct rn_op *op, struct rn_snapshot_reader *r)
{
    struct rn_nx_state *s = rn_op_local(op);
    if (!s) {
        s = rn_xcalloc(1, sizeof *s);
        rn_op_set_local(op, s);
    }
    if (rn_snapshot_read_i64(r, &s->next) || s->next < 0) return RN_ECORRUPT;
    return 0;
}

static const struct rn_port_decl rn_nx_out[] = {
    {NULL, "nexmark", "Persons, auctions and bids, 1:3:46, in event-time order."}};

const struct rn_op_type rn_source_nexmark = {
    RN_OP_TYPE_HEAD,
    .name = "nexmark",
    .description = "Generates the Nexmark benchmark's stream of persons, auctions and bids.",
    .kind = RN_KIND_SOURCE,
    .flags = RN_OP_EVENT_TIME,
    .config = rn_nx_keys,
    .ctx_size = sizeof(struct rn_nx_cfg),
    .outputs = rn_nx_out,
    .n_outputs = 1,
    .types = rn_nx_types,
    .open = rn_nx_open,
    .poll = rn_nx_poll,
    .close = rn_nx_close,
    .snapshot = rn_nx_snapshot,
    .restore = rn_nx_restore,
};
