/*
 * rn_config.h — what an operator sees of job configuration: a YAML node tree
 * whose nodes remember where they came from, and key tables that turn a node
 * into a typed struct.
 *
 * The runtime reads the YAML file (runtime/rn_config_int.h: the loader,
 * `${VAR}` and `--set`); an operator gets its own map node, already read.
 * Every node keeps file, line and column, so every error can name its place.
 *
 * Operators, sources and sinks describe their keys with a table of
 * struct rn_config_key. rn_config_apply() fills the operator's context struct
 * from its YAML node using that table, applies defaults, checks types and
 * units, and rejects unknown keys with a "did you mean". The same table
 * generates the reference in docs/jobs.md (`runnel schema`).
 */
#ifndef RUNNEL_RN_CONFIG_H
#define RUNNEL_RN_CONFIG_H

#include "rn_common.h"

enum rn_cfg_kind { RN_CFG_SCALAR = 0, RN_CFG_MAP = 1, RN_CFG_SEQ = 2 };

struct rn_cfg_node {
    enum rn_cfg_kind kind;
    char *key;   /* the key when this node is a map value, else NULL */
    char *value; /* scalars: the text after ${VAR} substitution; "" for null */
    const char *file;
    int line, col;   /* 1-based; of the value */
    int key_line, key_col;
    int used;        /* set when a reader consumed it (unknown-key check) */
    struct rn_cfg_node *child; /* first child (maps, sequences) */
    struct rn_cfg_node *next;  /* next sibling */
};

struct rn_cfg_node *rn_cfg_get(const struct rn_cfg_node *map, const char *key);
size_t rn_cfg_count(const struct rn_cfg_node *n);

/* Formats "file:line:col: message" for node n (n may be NULL). */
void rn_cfg_errf(char *errbuf, size_t errlen, const struct rn_cfg_node *n, const char *fmt, ...)
    RN_PRINTF(4, 5);
/* Same, at the node's key rather than its value. */
void rn_cfg_key_errf(char *errbuf, size_t errlen, const struct rn_cfg_node *n, const char *fmt,
                     ...) RN_PRINTF(4, 5);

/* Unit parsers: "250ms", "10s", "30m", "2h", "1d" -> ms; "64MiB", "1GB", "512k"
 * -> bytes. Return 0 or RN_EINVAL. */
int rn_parse_duration_ms(const char *s, int64_t *out);
int rn_parse_size(const char *s, int64_t *out);
int rn_parse_bool(const char *s, int *out);
int rn_parse_rfc3339(const char *s, size_t n, int64_t *ms_out);
int rn_parse_i64(const char *s, int64_t *out);
int rn_parse_f64(const char *s, double *out);

/* ---- key tables ----------------------------------------------------------- */

enum rn_ctype {
    RN_CT_STRING,   /* const char * (borrowed from the document) */
    RN_CT_INT,      /* int64_t */
    RN_CT_DOUBLE,   /* double */
    RN_CT_BOOL,     /* int */
    RN_CT_DURATION, /* int64_t, ms */
    RN_CT_SIZE,     /* int64_t, bytes */
    RN_CT_ENUM,     /* int: index into enum_values */
    RN_CT_NODE,     /* const struct rn_cfg_node * (the operator reads it) */
    RN_CT_REF,      /* const char *: the id of a source, operator or sink */
};

#define RN_CK_REQUIRED 0x1

struct rn_config_key {
    const char *name;
    enum rn_ctype type;
    const char *def; /* default as YAML text; NULL: none (zero/NULL) */
    const char *unit;
    size_t offset; /* into the context struct */
    const char *description;
    const char *const *enum_values; /* RN_CT_ENUM: NULL-ended */
    uint32_t flags;                 /* RN_CK_* */
    int64_t min, max;               /* RN_CT_INT/DURATION/SIZE bounds when min < max */
};

#define RN_CONFIG_END {NULL, 0, NULL, NULL, 0, NULL, NULL, 0, 0, 0}

/* Fills ctx from map node `node` using `keys`. Keys listed in `skip` (NULL-ended;
 * handled by the caller, such as `id`, `op`, `from`) are ignored. Defaults are
 * applied for absent keys. Unknown keys are errors naming the place, with a
 * suggestion. */
int rn_config_apply(const struct rn_config_key *keys, const struct rn_cfg_node *node, void *ctx,
                    const char *const *skip, char *errbuf, size_t errlen);

/* Checks that every key of `map` is one of `names` (NULL-ended). */
int rn_config_check_keys(const struct rn_cfg_node *map, const char *const *names,
                         const char *what, char *errbuf, size_t errlen);

#endif
