/*
 * test_config.c — the job-configuration layer on its own: unit parsers
 * (durations, sizes, booleans, integers), YAML loading with positions,
 * ${VAR} substitution, --set overrides on maps and lists, key tables
 * (defaults, unknown keys, required keys, enums, ranges) and suggestions.
 */
#include "rn_test.h"

#include "rn_config_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char err[1024];

static struct rn_cfg_doc *load(const char *text)
{
    err[0] = 0;
    return rn_cfg_load_string("t.yaml", text, strlen(text), err, sizeof err);
}

/* ---- unit parsers ------------------------------------------------------------ */

static void test_duration(void)
{
    static const struct {
        const char *s;
        int64_t ms;
    } good[] = {
        {"250ms", 250},       {"10s", 10000},       {"30m", 1800000},  {"30min", 1800000},
        {"2h", 7200000},      {"1d", 86400000},     {"1.5s", 1500},    {"0s", 0},
        {"0.5ms", 1},         {"1e3ms", 1000},      {"10 s", 10000},
    };
    for (size_t i = 0; i < RN_ARRAY_LEN(good); i++) {
        int64_t v = -1;
        int rc = rn_parse_duration_ms(good[i].s, &v);
        if (rc != 0 || v != good[i].ms)
            fprintf(stderr, "duration '%s': rc %d, got %lld\n", good[i].s, rc, (long long)v);
        CHECK_EQ_INT(rc, 0);
        CHECK_EQ_INT(v, good[i].ms);
    }
    static const char *const bad[] = {"",     "10",  "10 parsecs", "-5s", "s",   "ms",
                                      "10ss", "10S", "1.5.5s",     "nan", "inf", "10sec"};
    for (size_t i = 0; i < RN_ARRAY_LEN(bad); i++) {
        int64_t v = 12345;
        int rc = rn_parse_duration_ms(bad[i], &v);
        if (rc != RN_EINVAL) fprintf(stderr, "duration '%s' accepted as %lld\n", bad[i], (long long)v);
        CHECK_EQ_INT(rc, RN_EINVAL);
        CHECK_EQ_INT(v, 12345); /* untouched on failure */
    }
    int64_t v = 0;
    CHECK_EQ_INT(rn_parse_duration_ms(NULL, &v), RN_EINVAL);
}

static void test_size(void)
{
    static const struct {
        const char *s;
        int64_t bytes;
    } good[] = {
        {"64MiB", 67108864},     {"1GB", 1000000000},     {"512k", 524288},
        {"512K", 524288},        {"100", 100},            {"0", 0},
        {"1.5KiB", 1536},        {"2KB", 2000},           {"3B", 3},
        {"1M", 1048576},         {"1MB", 1000000},        {"1G", 1073741824},
        {"1GiB", 1073741824},    {"1TiB", 1099511627776}, {"1TB", 1000000000000},
    };
    for (size_t i = 0; i < RN_ARRAY_LEN(good); i++) {
        int64_t v = -1;
        int rc = rn_parse_size(good[i].s, &v);
        if (rc != 0 || v != good[i].bytes)
            fprintf(stderr, "size '%s': rc %d, got %lld\n", good[i].s, rc, (long long)v);
        CHECK_EQ_INT(rc, 0);
        CHECK_EQ_INT(v, good[i].bytes);
    }
    static const char *const bad[] = {"64XB", "", "-1", "-1MiB", "MiB", "64 mib", "1e30", "abc"};
    for (size_t i = 0; i < RN_ARRAY_LEN(bad); i++) {
        int64_t v = 12345;
        int rc = rn_parse_size(bad[i], &v);
        if (rc != RN_EINVAL) fprintf(stderr, "size '%s' accepted as %lld\n", bad[i], (long long)v);
        CHECK_EQ_INT(rc, RN_EINVAL);
        CHECK_EQ_INT(v, 12345);
    }
}

static void test_bool_and_numbers(void)
{
    static const char *const t[] = {"true", "yes", "on", "1", "TRUE", "Yes", "ON"};
    static const char *const f[] = {"false", "no", "off", "0", "FALSE", "No", "Off"};
    for (size_t i = 0; i < RN_ARRAY_LEN(t); i++) {
        int b = -1;
        CHECK_EQ_INT(rn_parse_bool(t[i], &b), 0);
        CHECK_EQ_INT(b, 1);
    }
    for (size_t i = 0; i < RN_ARRAY_LEN(f); i++) {
        int b = -1;
        CHECK_EQ_INT(rn_parse_bool(f[i], &b), 0);
        CHECK_EQ_INT(b, 0);
    }
    static const char *const bad[] = {"", "maybe", "2", "tru", "y", "n", "true "};
    for (size_t i = 0; i < RN_ARRAY_LEN(bad); i++) {
        int b = 7;
        CHECK_EQ_INT(rn_parse_bool(bad[i], &b), RN_EINVAL);
        CHECK_EQ_INT(b, 7);
    }

    int64_t v = 0;
    CHECK_EQ_INT(rn_parse_i64("42", &v), 0);
    CHECK_EQ_INT(v, 42);
    CHECK_EQ_INT(rn_parse_i64("-7", &v), 0);
    CHECK_EQ_INT(v, -7);
    CHECK_EQ_INT(rn_parse_i64("9223372036854775807", &v), 0);
    CHECK(v == INT64_MAX);
    CHECK_EQ_INT(rn_parse_i64("", &v), RN_EINVAL);
    CHECK_EQ_INT(rn_parse_i64("two", &v), RN_EINVAL);
    CHECK_EQ_INT(rn_parse_i64("4x", &v), RN_EINVAL);
    CHECK_EQ_INT(rn_parse_i64("1.5", &v), RN_EINVAL);
    CHECK_EQ_INT(rn_parse_i64("99999999999999999999", &v), RN_EINVAL);
    CHECK_EQ_INT(rn_parse_i64(NULL, &v), RN_EINVAL);

    double d = 0;
    CHECK_EQ_INT(rn_parse_f64("0.25", &d), 0);
    CHECK(d == 0.25);
    CHECK_EQ_INT(rn_parse_f64("-3", &d), 0);
    CHECK(d == -3.0);
    CHECK_EQ_INT(rn_parse_f64("", &d), RN_EINVAL);
    CHECK_EQ_INT(rn_parse_f64("1.5x", &d), RN_EINVAL);
    CHECK_EQ_INT(rn_parse_f64("inf", &d), RN_EINVAL);
    CHECK_EQ_INT(rn_parse_f64("nan", &d), RN_EINVAL);
    CHECK_EQ_INT(rn_parse_f64("1e999", &d), RN_EINVAL);
}

/* ---- loading and positions ------------------------------------------------------ */

static const char doc_text[] = "job: demo\n"                                   /* 1 */
                               "sources:\n"                                    /* 2 */
                               "  logs:\n"                                     /* 3 */
                               "    type: file\n"                              /* 4 */
                               "    path: \"a.jsonl\"\n"                       /* 5 */
                               "operators:\n"                                  /* 6 */
                               "  - id: collect\n"                             /* 7 */
                               "    op: log_collector\n"                       /* 8 */
                               "  - {id: f, op: filter, types: [click, pay]}\n" /* 9 */
                               "empty:\n"                                      /* 10 */
                               "tilde: ~\n"                                    /* 11 */
                               "quoted_null: 'null'\n";                        /* 12 */

static void check_pos(const struct rn_cfg_node *n, enum rn_cfg_kind kind, int line, int col)
{
    CHECK(n != NULL);
    if (!n) return;
    CHECK_EQ_INT(n->kind, kind);
    CHECK_EQ_INT(n->line, line);
    CHECK_EQ_INT(n->col, col);
    CHECK(strcmp(n->file, "t.yaml") == 0);
}

static void test_load_positions(void)
{
    struct rn_cfg_doc *doc = load(doc_text);
    CHECK(doc != NULL);
    if (!doc) {
        fprintf(stderr, "load failed: %s\n", err);
        return;
    }
    const struct rn_cfg_node *root = doc->root;
    check_pos(root, RN_CFG_MAP, 1, 1);
    CHECK_EQ_INT(rn_cfg_count(root), 6);

    const struct rn_cfg_node *job = rn_cfg_get(root, "job");
    check_pos(job, RN_CFG_SCALAR, 1, 6);
    CHECK(job && strcmp(job->value, "demo") == 0);
    CHECK(job && job->key_line == 1 && job->key_col == 1);

    const struct rn_cfg_node *sources = rn_cfg_get(root, "sources");
    check_pos(sources, RN_CFG_MAP, 3, 3); /* a block map starts at its first key */
    CHECK(sources && sources->key_line == 2 && sources->key_col == 1);

    const struct rn_cfg_node *logs = rn_cfg_get(sources, "logs");
    check_pos(logs, RN_CFG_MAP, 4, 5);
    CHECK(logs && logs->key_line == 3 && logs->key_col == 3);
    const struct rn_cfg_node *type = rn_cfg_get(logs, "type");
    check_pos(type, RN_CFG_SCALAR, 4, 11);
    CHECK(type && type->key_line == 4 && type->key_col == 5);
    const struct rn_cfg_node *path = rn_cfg_get(logs, "path");
    check_pos(path, RN_CFG_SCALAR, 5, 11); /* the opening quote */
    CHECK(path && strcmp(path->value, "a.jsonl") == 0);

    const struct rn_cfg_node *ops = rn_cfg_get(root, "operators");
    check_pos(ops, RN_CFG_SEQ, 7, 3);
    CHECK_EQ_INT(rn_cfg_count(ops), 2);
    const struct rn_cfg_node *op0 = ops ? ops->child : NULL;
    check_pos(op0, RN_CFG_MAP, 7, 5);
    CHECK(op0 && op0->key == NULL); /* list elements have no key */
    check_pos(rn_cfg_get(op0, "id"), RN_CFG_SCALAR, 7, 9);
    check_pos(rn_cfg_get(op0, "op"), RN_CFG_SCALAR, 8, 9);
    const struct rn_cfg_node *op1 = op0 ? op0->next : NULL;
    check_pos(op1, RN_CFG_MAP, 9, 5);
    check_pos(rn_cfg_get(op1, "id"), RN_CFG_SCALAR, 9, 10);
    const struct rn_cfg_node *types = rn_cfg_get(op1, "types");
    check_pos(types, RN_CFG_SEQ, 9, 32);
    CHECK(types && types->key_line == 9 && types->key_col == 25);
    CHECK_EQ_INT(rn_cfg_count(types), 2);
    check_pos(types ? types->child : NULL, RN_CFG_SCALAR, 9, 33);
    check_pos(types && types->child ? types->child->next : NULL, RN_CFG_SCALAR, 9, 40);
    CHECK(types && types->child && types->child->next &&
          strcmp(types->child->next->value, "pay") == 0);

    /* Null scalars read as "", but a quoted 'null' is the string. */
    const struct rn_cfg_node *e = rn_cfg_get(root, "empty");
    CHECK(e && e->kind == RN_CFG_SCALAR && strcmp(e->value, "") == 0);
    e = rn_cfg_get(root, "tilde");
    CHECK(e && e->kind == RN_CFG_SCALAR && strcmp(e->value, "") == 0);
    e = rn_cfg_get(root, "quoted_null");
    CHECK(e && strcmp(e->value, "null") == 0);

    CHECK(rn_cfg_get(root, "nope") == NULL);
    CHECK(rn_cfg_get(ops, "id") == NULL); /* not a map */
    CHECK(rn_cfg_get(NULL, "id") == NULL);
    CHECK_EQ_INT(rn_cfg_count(NULL), 0);

    /* Error formatting at a value and at its key. */
    rn_cfg_errf(err, sizeof err, type, "bad %s", "thing");
    CHECK(strcmp(err, "t.yaml:4:11: bad thing") == 0);
    rn_cfg_key_errf(err, sizeof err, type, "bad key");
    CHECK(strcmp(err, "t.yaml:4:5: bad key") == 0);
    rn_cfg_errf(err, sizeof err, NULL, "no place");
    CHECK(strcmp(err, "no place") == 0);
    rn_cfg_free(doc);
}

static void test_load_errors(void)
{
    struct rn_cfg_doc *doc;

    doc = load("job: x\n  bad: indent\n");
    CHECK(doc == NULL);
    CHECK_STR_CONTAINS(err, "t.yaml:2:6: YAML syntax error: mapping values are not allowed");

    doc = load("a: { b: 1\nc: 2\n");
    CHECK(doc == NULL);
    CHECK_STR_CONTAINS(err, "t.yaml:");
    CHECK_STR_CONTAINS(err, "while parsing a flow mapping");

    doc = load("a:\n\tb: 1\n");
    CHECK(doc == NULL);
    CHECK_STR_CONTAINS(err, "t.yaml:2:1: YAML syntax error: found character that cannot start any token");

    doc = load("job: x\nsources:\n  a: 1\n  a: 2\n");
    CHECK(doc == NULL);
    CHECK_STR_CONTAINS(err, "t.yaml:4:3: duplicate key 'a' (first at line 3)");

    doc = load("a: &x 1\nb: *x\n");
    CHECK(doc == NULL);
    CHECK_STR_CONTAINS(err, "t.yaml:2:4: YAML aliases (*name) are not supported");

    doc = load("- a\n- b\n");
    CHECK(doc == NULL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:1: a job must be a YAML map");

    doc = load("just a string\n");
    CHECK(doc == NULL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:1: a job must be a YAML map");

    doc = load("");
    CHECK(doc == NULL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:1: a job must be a YAML map");

    doc = load("# only a comment\n");
    CHECK(doc == NULL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:1: a job must be a YAML map");

    doc = load("a: 1\n---\nb: 2\n");
    CHECK(doc == NULL);
    CHECK_STR_CONTAINS(err, "t.yaml:2:1: a job file holds one YAML document");

    doc = load("? [a, b]\n: c\n");
    CHECK(doc == NULL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:3: map keys must be plain strings");

    err[0] = 0;
    doc = rn_cfg_load_file("/nonexistent/dir/job.yaml", err, sizeof err);
    CHECK(doc == NULL);
    CHECK_STR_CONTAINS(err, "/nonexistent/dir/job.yaml: cannot open:");
}

static void test_env(void)
{
    setenv("RN_TEST_CFG_DIR", "/data", 1);
    unsetenv("RN_TEST_CFG_UNSET");
    struct rn_cfg_doc *doc = load("a: ${RN_TEST_CFG_DIR}/x.jsonl\n"
                                  "b: ${RN_TEST_CFG_UNSET:-fallback}\n"
                                  "c: pre-${RN_TEST_CFG_DIR}-${RN_TEST_CFG_UNSET:-}-post\n"
                                  "d: ${RN_TEST_CFG_DIR:-unused}\n"
                                  "e: $HOME and ${unclosed\n");
    CHECK(doc != NULL);
    if (doc) {
        CHECK(strcmp(rn_cfg_get(doc->root, "a")->value, "/data/x.jsonl") == 0);
        CHECK(strcmp(rn_cfg_get(doc->root, "b")->value, "fallback") == 0);
        CHECK(strcmp(rn_cfg_get(doc->root, "c")->value, "pre-/data--post") == 0);
        CHECK(strcmp(rn_cfg_get(doc->root, "d")->value, "/data") == 0);
        CHECK(strcmp(rn_cfg_get(doc->root, "e")->value, "$HOME and ${unclosed") == 0);
        rn_cfg_free(doc);
    } else {
        fprintf(stderr, "env load failed: %s\n", err);
    }

    doc = load("a: 1\nsources:\n  logs: { path: \"${RN_TEST_CFG_UNSET}\" }\n");
    CHECK(doc == NULL);
    CHECK_STR_CONTAINS(err, "t.yaml:3:17: environment variable 'RN_TEST_CFG_UNSET' is not set "
                            "(use ${RN_TEST_CFG_UNSET:-default})");
    unsetenv("RN_TEST_CFG_DIR");
}

/* ---- --set ------------------------------------------------------------------------- */

static void test_set(void)
{
    struct rn_cfg_doc *doc = load(doc_text);
    CHECK(doc != NULL);
    if (!doc) return;
    const struct rn_cfg_node *root = doc->root;

    /* An existing scalar in a map. */
    CHECK_EQ_INT(rn_cfg_set(doc, "job=other", err, sizeof err), 0);
    const struct rn_cfg_node *job = rn_cfg_get(root, "job");
    CHECK(strcmp(job->value, "other") == 0);
    /* The node now names the override as its place, column at the value. */
    CHECK(strcmp(job->file, "--set job=other") == 0);
    CHECK(job->line == 1 && job->col == 5);

    /* The value keeps everything after the first '='. */
    CHECK_EQ_INT(rn_cfg_set(doc, "sources.logs.path=/tmp/a=b.jsonl", err, sizeof err), 0);
    CHECK(strcmp(rn_cfg_get(rn_cfg_get(rn_cfg_get(root, "sources"), "logs"), "path")->value,
                 "/tmp/a=b.jsonl") == 0);

    /* A missing key is added; so are missing maps on the way. */
    CHECK_EQ_INT(rn_cfg_set(doc, "parallelism=4", err, sizeof err), 0);
    CHECK(rn_cfg_get(root, "parallelism") && strcmp(rn_cfg_get(root, "parallelism")->value, "4") == 0);
    CHECK_EQ_INT(rn_cfg_set(doc, "http.listen=127.0.0.1:0", err, sizeof err), 0);
    const struct rn_cfg_node *http = rn_cfg_get(root, "http");
    CHECK(http && http->kind == RN_CFG_MAP);
    CHECK(rn_cfg_get(http, "listen") && strcmp(rn_cfg_get(http, "listen")->value, "127.0.0.1:0") == 0);
    CHECK_EQ_INT(rn_cfg_count(root), 8);

    /* A list element by id, and by index. */
    const struct rn_cfg_node *ops = rn_cfg_get(root, "operators");
    CHECK_EQ_INT(rn_cfg_set(doc, "operators.collect.max_items=5", err, sizeof err), 0);
    CHECK(rn_cfg_get(ops->child, "max_items") &&
          strcmp(rn_cfg_get(ops->child, "max_items")->value, "5") == 0);
    CHECK_EQ_INT(rn_cfg_set(doc, "operators.f.drop=true", err, sizeof err), 0);
    CHECK(rn_cfg_get(ops->child->next, "drop") &&
          strcmp(rn_cfg_get(ops->child->next, "drop")->value, "true") == 0);
    CHECK(rn_cfg_get(ops->child, "drop") == NULL);
    CHECK_EQ_INT(rn_cfg_set(doc, "operators.1.op=key_by", err, sizeof err), 0);
    CHECK(strcmp(rn_cfg_get(ops->child->next, "op")->value, "key_by") == 0);
    CHECK_EQ_INT(rn_cfg_set(doc, "operators.0.op=filter", err, sizeof err), 0);
    CHECK(strcmp(rn_cfg_get(ops->child, "op")->value, "filter") == 0);
    CHECK_EQ_INT(rn_cfg_set(doc, "operators.f.types.1=click", err, sizeof err), 0);
    const struct rn_cfg_node *types = rn_cfg_get(ops->child->next, "types");
    CHECK(strcmp(types->child->next->value, "click") == 0);
    CHECK(strcmp(types->child->value, "click") == 0);
    CHECK_EQ_INT(rn_cfg_count(ops), 2); /* nothing appended to the list */

    /* Errors. */
    CHECK_EQ_INT(rn_cfg_set(doc, "operators.nope.max_items=5", err, sizeof err), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "--set operators.nope.max_items=5: no element 'nope' in the list at "
                            "t.yaml:7:3");
    CHECK_EQ_INT(rn_cfg_set(doc, "operators.2.op=x", err, sizeof err), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "no element '2' in the list");
    CHECK_EQ_INT(rn_cfg_set(doc, "operators.-1.op=x", err, sizeof err), RN_EINVAL);
    CHECK_EQ_INT(rn_cfg_set(doc, "sources.logs.type.x=1", err, sizeof err), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "--set sources.logs.type.x=1:");
    CHECK_STR_CONTAINS(err, "'type' (t.yaml:4:11) is a scalar, it has no 'x'");
    CHECK_EQ_INT(rn_cfg_set(doc, "sources=x", err, sizeof err), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "--set sources=x: cannot replace a map (t.yaml:3:3) with a scalar");
    CHECK_EQ_INT(rn_cfg_set(doc, "operators=x", err, sizeof err), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "cannot replace a list (t.yaml:7:3) with a scalar");
    CHECK_EQ_INT(rn_cfg_set(doc, "parallelism", err, sizeof err), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "--set parallelism: expected key=value");
    CHECK_EQ_INT(rn_cfg_set(doc, "=4", err, sizeof err), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "expected key=value");
    /* Failed overrides change nothing. */
    CHECK(strcmp(rn_cfg_get(rn_cfg_get(rn_cfg_get(root, "sources"), "logs"), "type")->value,
                 "file") == 0);
    rn_cfg_free(doc);
}

/* "-path" overrides remove a node (how the coordinator leaves out the nodes of
 * other stages of a cluster job). */
static void test_unset(void)
{
    struct rn_cfg_doc *doc = load(doc_text);
    CHECK(doc != NULL);
    if (!doc) return;
    const struct rn_cfg_node *root = doc->root;
    const struct rn_cfg_node *ops = rn_cfg_get(root, "operators");
    /* A list element by id, a map key, a nested map key. */
    CHECK_EQ_INT(rn_cfg_override(doc, "-operators.collect", err, sizeof err), 0);
    CHECK_EQ_INT(rn_cfg_count(ops), 1);
    CHECK(strcmp(rn_cfg_get(ops->child, "id")->value, "f") == 0);
    CHECK_EQ_INT(rn_cfg_override(doc, "-sources.logs.path", err, sizeof err), 0);
    CHECK(rn_cfg_get(rn_cfg_get(rn_cfg_get(root, "sources"), "logs"), "path") == NULL);
    CHECK_EQ_INT(rn_cfg_override(doc, "-empty", err, sizeof err), 0);
    CHECK(rn_cfg_get(root, "empty") == NULL);
    /* The last element of a list, by index; the list stays (empty). */
    CHECK_EQ_INT(rn_cfg_override(doc, "-operators.0", err, sizeof err), 0);
    CHECK_EQ_INT(rn_cfg_count(ops), 0);
    /* Paths that do not exist, or go through a scalar. */
    CHECK_EQ_INT(rn_cfg_override(doc, "-operators.f", err, sizeof err), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "--set -operators.f: no such node in the job");
    CHECK_EQ_INT(rn_cfg_override(doc, "-job.x", err, sizeof err), RN_EINVAL);
    CHECK_EQ_INT(rn_cfg_override(doc, "-nope", err, sizeof err), RN_EINVAL);
    /* With '=' it is an ordinary override whose key starts with '-'. */
    CHECK_EQ_INT(rn_cfg_override(doc, "-x=1", err, sizeof err), 0);
    CHECK(rn_cfg_get(root, "-x") != NULL);
    rn_cfg_free(doc);
}

/* ---- key tables ---------------------------------------------------------------------- */

struct cfg {
    const char *name;
    int64_t count;
    int64_t wait_ms;
    int64_t bytes;
    int flag;
    int mode;
    double ratio;
    const struct rn_cfg_node *extra;
    const char *label;
};

static const char *const modes[] = {"fast", "slow", "careful", NULL};

static const struct rn_config_key keys[] = {
    {"name", RN_CT_STRING, NULL, NULL, offsetof(struct cfg, name), "What to call it.", NULL,
     RN_CK_REQUIRED, 0, 0},
    {"count", RN_CT_INT, "7", NULL, offsetof(struct cfg, count), "How many.", NULL, 0, 1, 10},
    {"wait", RN_CT_DURATION, "1.5s", "ms", offsetof(struct cfg, wait_ms), "How long.", NULL, 0,
     0, 0},
    {"bytes", RN_CT_SIZE, "4KiB", "bytes", offsetof(struct cfg, bytes), "How big.", NULL, 0, 0,
     0},
    {"flag", RN_CT_BOOL, "true", NULL, offsetof(struct cfg, flag), "Whether.", NULL, 0, 0, 0},
    {"mode", RN_CT_ENUM, "slow", NULL, offsetof(struct cfg, mode), "How.", modes, 0, 0, 0},
    {"ratio", RN_CT_DOUBLE, "0.5", NULL, offsetof(struct cfg, ratio), "Share.", NULL, 0, 0, 1},
    {"extra", RN_CT_NODE, NULL, NULL, offsetof(struct cfg, extra), "Anything.", NULL, 0, 0, 0},
    {"label", RN_CT_STRING, NULL, NULL, offsetof(struct cfg, label), "Optional.", NULL, 0, 0, 0},
    RN_CONFIG_END,
};

static const char *const skip[] = {"id", "from", NULL};

/* Applies the table to the map under key "x" of text; returns rc, fills c. */
static int apply(const char *text, struct cfg *c)
{
    memset(c, 0, sizeof *c);
    struct rn_cfg_doc *doc = load(text);
    if (!doc) {
        fprintf(stderr, "load failed: %s\n", err);
        return 99;
    }
    err[0] = 0;
    int rc = rn_config_apply(keys, rn_cfg_get(doc->root, "x"), c, skip, err, sizeof err);
    /* Strings borrowed from the document must be copied out before it goes. */
    static char name[64], label[64];
    if (c->name) {
        snprintf(name, sizeof name, "%s", c->name);
        c->name = name;
    }
    if (c->label) {
        snprintf(label, sizeof label, "%s", c->label);
        c->label = label;
    }
    c->extra = c->extra ? (const struct rn_cfg_node *)1 : NULL; /* only "was it set" survives */
    rn_cfg_free(doc);
    return rc;
}

static void test_apply(void)
{
    struct cfg c;

    /* Defaults for everything absent; keys in `skip` are accepted. */
    CHECK_EQ_INT(apply("x: {name: n1, id: a, from: b}\n", &c), 0);
    CHECK(c.name && strcmp(c.name, "n1") == 0);
    CHECK_EQ_INT(c.count, 7);
    CHECK_EQ_INT(c.wait_ms, 1500);
    CHECK_EQ_INT(c.bytes, 4096);
    CHECK_EQ_INT(c.flag, 1);
    CHECK_EQ_INT(c.mode, 1);
    CHECK(c.ratio == 0.5);
    CHECK(c.extra == NULL);
    CHECK(c.label == NULL);

    /* Every type from YAML. */
    CHECK_EQ_INT(apply("x:\n  name: n2\n  count: 10\n  wait: 2m\n  bytes: 1MiB\n  flag: off\n"
                       "  mode: careful\n  ratio: 0.25\n  extra: {a: 1}\n  label: L\n",
                       &c),
                 0);
    CHECK_EQ_INT(c.count, 10);
    CHECK_EQ_INT(c.wait_ms, 120000);
    CHECK_EQ_INT(c.bytes, 1048576);
    CHECK_EQ_INT(c.flag, 0);
    CHECK_EQ_INT(c.mode, 2);
    CHECK(c.ratio == 0.25);
    CHECK(c.extra != NULL);
    CHECK(c.label && strcmp(c.label, "L") == 0);

    /* A null value of a non-string key means "use the default". */
    CHECK_EQ_INT(apply("x: {name: n, count: ~, wait: }\n", &c), 0);
    CHECK_EQ_INT(c.count, 7);
    CHECK_EQ_INT(c.wait_ms, 1500);

    /* Unknown key: at the key, with a suggestion when one is close. */
    CHECK_EQ_INT(apply("x:\n  name: n\n  cuont: 3\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "t.yaml:3:3: unknown key 'cuont' in this section (did you mean 'count'?)");
    CHECK_EQ_INT(apply("x:\n  name: n\n  froms: a\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "t.yaml:3:3: unknown key 'froms' in this section (did you mean 'from'?)");
    CHECK_EQ_INT(apply("x:\n  name: n\n  zzzzzzzz: 3\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "t.yaml:3:3: unknown key 'zzzzzzzz' in this section");
    CHECK(strstr(err, "did you mean") == NULL);

    /* Missing required key: at the enclosing map. */
    CHECK_EQ_INT(apply("x:\n  count: 3\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "t.yaml:2:3: missing required key 'name' (What to call it.)");

    /* Enum: suggestion, or the list of values. */
    CHECK_EQ_INT(apply("x: {name: n, mode: sloow}\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:20: 'mode': unknown value 'sloow' (did you mean 'slow'?)");
    CHECK_EQ_INT(apply("x: {name: n, mode: turbo}\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:20: 'mode': unknown value 'turbo' (one of: fast, slow, careful)");

    /* Bad values, at the value. */
    CHECK_EQ_INT(apply("x: {name: n, count: two}\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:21: 'count' must be an integer, got 'two'");
    CHECK_EQ_INT(apply("x: {name: n, count: 11}\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:21: 'count' must be between 1 and 10, got '11'");
    CHECK_EQ_INT(apply("x: {name: n, count: 0}\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "'count' must be between 1 and 10, got '0'");
    CHECK_EQ_INT(apply("x: {name: n, wait: 10 parsecs}\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:20: 'wait': bad duration '10 parsecs'");
    CHECK_EQ_INT(apply("x: {name: n, bytes: 64XB}\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:21: 'bytes': bad size '64XB'");
    CHECK_EQ_INT(apply("x: {name: n, flag: maybe}\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:20: 'flag' must be true or false, got 'maybe'");
    CHECK_EQ_INT(apply("x: {name: n, ratio: 2}\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:21: 'ratio' must be between 0 and 1, got 2");
    CHECK_EQ_INT(apply("x: {name: n, ratio: half}\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:21: 'ratio' must be a number, got 'half'");
    CHECK_EQ_INT(apply("x: {name: n, count: [1, 2]}\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:21: 'count' must be a");
    CHECK_STR_CONTAINS(err, "not a list");
    CHECK_EQ_INT(apply("x: {name: {a: 1}}\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:11: 'name' must be a string, not a map");

    /* The node itself must be a map. */
    CHECK_EQ_INT(apply("x: [1]\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:4: expected a map");
    CHECK_EQ_INT(apply("x: 5\n", &c), RN_EINVAL);
    CHECK_STR_CONTAINS(err, "t.yaml:1:4: expected a map");

    /* rn_config_check_keys on its own. */
    struct rn_cfg_doc *doc = load("http: {listen: a, lisen: b}\nnot_a_map: 1\n");
    CHECK(doc != NULL);
    if (doc) {
        static const char *const names[] = {"listen", NULL};
        CHECK_EQ_INT(rn_config_check_keys(rn_cfg_get(doc->root, "http"), names, "http", err,
                                          sizeof err),
                     RN_EINVAL);
        CHECK_STR_CONTAINS(err, "t.yaml:1:19: unknown key 'lisen' in http (did you mean 'listen'?)");
        CHECK_EQ_INT(rn_config_check_keys(rn_cfg_get(doc->root, "not_a_map"), names, "thing",
                                          err, sizeof err),
                     RN_EINVAL);
        CHECK_STR_CONTAINS(err, "t.yaml:2:12: thing must be a map");
        CHECK_EQ_INT(rn_config_check_keys(NULL, names, "x", err, sizeof err), 0);
        rn_cfg_free(doc);
    }

    /* The generated reference names every key. */
    struct rn_buf b = RN_BUF_INIT;
    rn_config_doc(keys, &b);
    rn_buf_putc(&b, 0);
    CHECK_STR_CONTAINS(b.data, "| `name` | string | required |");
    CHECK_STR_CONTAINS(b.data, "| `count` | integer | 7 |");
    CHECK_STR_CONTAINS(b.data, "One of: `fast`, `slow`, `careful`.");
    rn_buf_free(&b);
}

/* ---- suggestions ----------------------------------------------------------------------- */

static void test_suggest(void)
{
    CHECK_EQ_INT(rn_edit_distance("", ""), 0);
    CHECK_EQ_INT(rn_edit_distance("abc", "abc"), 0);
    CHECK_EQ_INT(rn_edit_distance("", "abc"), 3);
    CHECK_EQ_INT(rn_edit_distance("abc", ""), 3);
    CHECK_EQ_INT(rn_edit_distance("kitten", "sitting"), 3);
    CHECK_EQ_INT(rn_edit_distance("flaw", "lawn"), 2);
    CHECK_EQ_INT(rn_edit_distance("paralelism", "parallelism"), 1);
    CHECK_EQ_INT(rn_edit_distance("log_colector", "log_collector"), 1);
    CHECK_EQ_INT(rn_edit_distance("ab", "ba"), 2); /* plain Levenshtein: no transpositions */
    char long_a[80], long_b[80];
    memset(long_a, 'a', sizeof long_a - 1);
    long_a[sizeof long_a - 1] = 0;
    memcpy(long_b, long_a, sizeof long_b);
    CHECK(rn_edit_distance(long_a, long_b) > 3); /* over 64 chars: never "close" */

    static const char *const top[] = {"job",  "parallelism", "max_parallelism", "queue_batches",
                                      "sources", "operators", "sinks", "http"};
    CHECK(rn_suggest("paralelism", top, 8) && strcmp(rn_suggest("paralelism", top, 8), "parallelism") == 0);
    CHECK(rn_suggest("max_paralelism", top, 8) &&
          strcmp(rn_suggest("max_paralelism", top, 8), "max_parallelism") == 0);
    CHECK(rn_suggest("sink", top, 8) && strcmp(rn_suggest("sink", top, 8), "sinks") == 0);
    CHECK(rn_suggest("jbo", top, 8) == NULL); /* short words: one edit at most */
    CHECK(rn_suggest("htp", top, 8) && strcmp(rn_suggest("htp", top, 8), "http") == 0);
    CHECK(rn_suggest("checkpointing", top, 8) == NULL);
    CHECK(rn_suggest("x", top, 0) == NULL);
    static const char *const holes[] = {NULL, "user", NULL, "item"};
    CHECK(rn_suggest("usr", holes, 4) && strcmp(rn_suggest("usr", holes, 4), "user") == 0);
    static const char *const events[] = {"request", "impression", "click", "pay"};
    CHECK(rn_suggest("clik", events, 4) && strcmp(rn_suggest("clik", events, 4), "click") == 0);
    CHECK(rn_suggest("purchase", events, 4) == NULL);
    /* Ties go to the first candidate. */
    static const char *const tie[] = {"abd", "abe"};
    CHECK(rn_suggest("abc", tie, 2) && strcmp(rn_suggest("abc", tie, 2), "abd") == 0);
}

int main(void)
{
    test_duration();
    test_size();
    test_bool_and_numbers();
    test_load_positions();
    test_load_errors();
    test_env();
    test_set();
    test_unset();
    test_apply();
    test_suggest();
    return rn_test_summary();
}
