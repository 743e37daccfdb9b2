/*
 * rn_config.c — YAML job files into rn_cfg_node trees, overrides, unit
 * parsing, and key tables that fill operator contexts.
 *
 * libyaml's event parser drives a small recursive builder: each MAPPING_START,
 * SEQUENCE_START or SCALAR event becomes a node stamped with the event's mark
 * (libyaml counts lines and columns from 0; we report them from 1, as editors
 * do). Aliases are refused rather than half-supported, and duplicate keys are
 * an error: silently keeping one of two `parallelism:` lines hides mistakes.
 */
#include "rn_config_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static struct rn_cfg_node *rn__node_new(enum rn_cfg_kind kind, const char *file, int line, int col)
{
    struct rn_cfg_node *n = rn_xcalloc(1, sizeof *n);
    n->kind = kind;
    n->file = file;
    n->line = line;
    n->col = col;
    n->key_line = line;
    n->key_col = col;
    return n;
}

static void rn__node_free(struct rn_cfg_node *n)
{
    while (n) {
        struct rn_cfg_node *next = n->next;
        rn__node_free(n->child);
        free(n->key);
        free(n->value);
        free(n);
        n = next;
    }
}

void rn_cfg_errf(char *errbuf, size_t errlen, const struct rn_cfg_node *n, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n)
        rn_errf(errbuf, errlen, "%s:%d:%d: %s", n->file, n->line, n->col, msg);
    else
        rn_errf(errbuf, errlen, "%s", msg);
}

void rn_cfg_key_errf(char *errbuf, size_t errlen, const struct rn_cfg_node *n, const char *fmt,
                     ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n)
        rn_errf(errbuf, errlen, "%s:%d:%d: %s", n->file, n->key_line, n->key_col, msg);
    else
        rn_errf(errbuf, errlen, "%s", msg);
}

/* Replaces ${VAR} and ${VAR:-default} in s. Returns a new string, or NULL with
 * the name of the missing variable in *missing (malloc'd). */
static char *rn__subst_env(const char *s, char **missing)
{
    struct rn_buf b = RN_BUF_INIT;
    const char *p = s;
    while (*p) {
        if (p[0] == '$' && p[1] == '{') {
            const char *end = strchr(p + 2, '}');
            if (end) {
                const char *name = p + 2;
                const char *dflt = NULL;
                size_t name_len = (size_t)(end - name);
                const char *sep = strstr(name, ":-");
                if (sep && sep < end) {
                    name_len = (size_t)(sep - name);
                    dflt = sep + 2;
                }
                char *var = rn_xstrndup(name, name_len);
                if (!name_len) {
                    *missing = var;
                    rn_buf_free(&b);
                    return NULL;
                }
                const char *val = getenv(var);
                if (val) {
                    rn_buf_puts(&b, val);
                    free(var);
                } else if (dflt) {
                    rn_buf_append(&b, dflt, (size_t)(end - dflt));
                    free(var);
                } else {
                    *missing = var;
                    rn_buf_free(&b);
                    return NULL;
                }
                p = end + 1;
                continue;
            }
        }
        rn_buf_putc(&b, *p++);
    }
    rn_buf_putc(&b, 0);
    return b.data;
}

#define RN_CFG_MAX_DEPTH 64

struct rn__builder {
    yaml_parser_t parser;
    const char *file;
    char *errbuf;
    size_t errlen;
    int depth;
};

static int rn__next(struct rn__builder *bld, yaml_event_t *ev)
{
    if (yaml_parser_parse(&bld->parser, ev)) return 0;
    const yaml_parser_t *p = &bld->parser;
    size_t line = p->problem_mark.line, col = p->problem_mark.column;
    if (p->context) {
        rn_errf(bld->errbuf, bld->errlen, "%s:%zu:%zu: YAML syntax error: %s %s (started at %zu:%zu)",
                bld->file, line + 1, col + 1, p->problem ? p->problem : "", p->context,
                p->context_mark.line + 1, p->context_mark.column + 1);
    } else {
        rn_errf(bld->errbuf, bld->errlen, "%s:%zu:%zu: YAML syntax error: %s", bld->file,
                line + 1, col + 1, p->problem ? p->problem : "unknown problem");
    }
    return RN_EINVAL;
}

static int rn__build(struct rn__builder *bld, yaml_event_t *ev, struct rn_cfg_node **out);

static int rn__build_children(struct rn__builder *bld, struct rn_cfg_node *parent, int is_map)
{
    struct rn_cfg_node **tail = &parent->child;
    for (;;) {
        yaml_event_t ev;
        if (rn__next(bld, &ev)) return RN_EINVAL;
        if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        char *key = NULL;
        int key_line = 0, key_col = 0;
        if (is_map) {
            if (ev.type != YAML_SCALAR_EVENT) {
                rn_errf(bld->errbuf, bld->errlen, "%s:%zu:%zu: map keys must be plain strings",
                        bld->file, ev.start_mark.line + 1, ev.start_mark.column + 1);
                yaml_event_delete(&ev);
                return RN_EINVAL;
            }
            key = rn_xstrndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
            key_line = (int)ev.start_mark.line + 1;
            key_col = (int)ev.start_mark.column + 1;
            yaml_event_delete(&ev);
            for (struct rn_cfg_node *c = parent->child; c; c = c->next) {
                if (strcmp(c->key, key) == 0) {
                    rn_errf(bld->errbuf, bld->errlen,
                            "%s:%d:%d: duplicate key '%s' (first at line %d)", bld->file,
                            key_line, key_col, key, c->key_line);
                    free(key);
                    return RN_EINVAL;
                }
            }
            if (rn__next(bld, &ev)) {
                free(key);
                return RN_EINVAL;
            }
        }
        struct rn_cfg_node *child = NULL;
        int rc = rn__build(bld, &ev, &child);
        if (rc) {
            free(key);
            return rc;
        }
        child->key = key;
        if (key) {
            child->key_line = key_line;
            child->key_col = key_col;
        }
        *tail = child;
        tail = &child->next;
    }
}

/* Builds the node that starts with event ev (consumed). */
static int rn__build(struct rn__builder *bld, yaml_event_t *ev, struct rn_cfg_node **out)
{
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    int rc = 0;
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        struct rn_cfg_node *n = rn__node_new(RN_CFG_SCALAR, bld->file, line, col);
        char *raw = rn_xstrndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        yaml_event_delete(ev);
        if (plain && (strcmp(raw, "~") == 0 || strcmp(raw, "null") == 0)) raw[0] = 0;
        char *missing = NULL;
        n->value = rn__subst_env(raw, &missing);
        free(raw);
        if (!n->value && !missing[0]) {
            rn_errf(bld->errbuf, bld->errlen, "%s:%d:%d: '${}' names no environment variable",
                    bld->file, line, col);
            free(missing);
            rn__node_free(n);
            return RN_EINVAL;
        }
        if (!n->value) {
            rn_errf(bld->errbuf, bld->errlen,
                    "%s:%d:%d: environment variable '%s' is not set (use ${%s:-default})",
                    bld->file, line, col, missing, missing);
            free(missing);
            rn__node_free(n);
            return RN_EINVAL;
        }
        *out = n;
        return 0;
    }
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        yaml_event_delete(ev);
        if (bld->depth >= RN_CFG_MAX_DEPTH) {
            rn_errf(bld->errbuf, bld->errlen, "%s:%d:%d: nested deeper than %d levels", bld->file,
                    line, col, RN_CFG_MAX_DEPTH);
            return RN_EINVAL;
        }
        bld->depth++;
        struct rn_cfg_node *n =
            rn__node_new(is_map ? RN_CFG_MAP : RN_CFG_SEQ, bld->file, line, col);
        rc = rn__build_children(bld, n, is_map);
        bld->depth--;
        if (rc) {
            rn__node_free(n);
            return rc;
        }
        *out = n;
        return 0;
    }
    case YAML_ALIAS_EVENT:
        rn_errf(bld->errbuf, bld->errlen, "%s:%d:%d: YAML aliases (*name) are not supported",
                bld->file, line, col);
        yaml_event_delete(ev);
        return RN_EINVAL;
    default:
        rn_errf(bld->errbuf, bld->errlen, "%s:%d:%d: unexpected YAML event", bld->file, line,
                col);
        yaml_event_delete(ev);
        return RN_EINVAL;
    }
}

struct rn_cfg_doc *rn_cfg_load_string(const char *name, const char *text, size_t len,
                                      char *errbuf, size_t errlen)
{
    struct rn_cfg_doc *doc = rn_xcalloc(1, sizeof *doc);
    doc->file = rn_xstrdup(name);
    struct rn__builder bld = {.file = doc->file, .errbuf = errbuf, .errlen = errlen};
    if (!yaml_parser_initialize(&bld.parser)) {
        rn_errf(errbuf, errlen, "%s: cannot initialise the YAML parser", name);
        goto fail_doc;
    }
    yaml_parser_set_input_string(&bld.parser, (const unsigned char *)text, len);
    yaml_event_t ev;
    int state = 0; /* 0: before document, 1: root read */
    for (;;) {
        if (rn__next(&bld, &ev)) goto fail_parser;
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_END_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        if (ev.type == YAML_DOCUMENT_START_EVENT) {
            if (state == 1) {
                rn_errf(errbuf, errlen, "%s:%zu:%zu: a job file holds one YAML document",
                        name, ev.start_mark.line + 1, ev.start_mark.column + 1);
                yaml_event_delete(&ev);
                goto fail_parser;
            }
            yaml_event_delete(&ev);
            continue;
        }
        if (rn__build(&bld, &ev, &doc->root)) goto fail_parser;
        state = 1;
    }
    yaml_parser_delete(&bld.parser);
    if (!doc->root || doc->root->kind != RN_CFG_MAP) {
        int line = doc->root ? doc->root->line : 1, col = doc->root ? doc->root->col : 1;
        rn_errf(errbuf, errlen, "%s:%d:%d: a job must be a YAML map (job:, sources:, ...)", name,
                line, col);
        rn_cfg_free(doc);
        return NULL;
    }
    return doc;

fail_parser:
    yaml_parser_delete(&bld.parser);
fail_doc:
    rn_cfg_free(doc);
    return NULL;
}

struct rn_cfg_doc *rn_cfg_load_file(const char *path, char *errbuf, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        rn_errf(errbuf, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct rn_buf b = RN_BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) rn_buf_append(&b, chunk, n);
    int err = ferror(f);
    fclose(f);
    if (err) {
        rn_errf(errbuf, errlen, "%s: read error", path);
        rn_buf_free(&b);
        return NULL;
    }
    struct rn_cfg_doc *doc = rn_cfg_load_string(path, b.data ? b.data : "", b.len, errbuf, errlen);
    rn_buf_free(&b);
    return doc;
}

void rn_cfg_free(struct rn_cfg_doc *doc)
{
    if (!doc) return;
    for (size_t i = 0; i < doc->n_owned; i++) free(doc->owned[i]);
    free(doc->owned);
    rn__node_free(doc->root);
    free(doc->file);
    free(doc);
}

struct rn_cfg_node *rn_cfg_get(const struct rn_cfg_node *map, const char *key)
{
    if (!map || map->kind != RN_CFG_MAP) return NULL;
    for (struct rn_cfg_node *c = map->child; c; c = c->next)
        if (strcmp(c->key, key) == 0) return c;
    return NULL;
}

size_t rn_cfg_count(const struct rn_cfg_node *n)
{
    size_t k = 0;
    for (const struct rn_cfg_node *c = n ? n->child : NULL; c; c = c->next) k++;
    return k;
}

int rn_cfg_set(struct rn_cfg_doc *doc, const char *assignment, char *errbuf, size_t errlen)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment) {
        rn_errf(errbuf, errlen, "--set %s: expected key=value", assignment);
        return RN_EINVAL;
    }
    char *path = rn_xstrndup(assignment, (size_t)(eq - assignment));
    /* Nodes set here name the override as their "file", so errors say which. */
    size_t wl = strlen(assignment) + 8;
    char *where = rn_xmalloc(wl);
    snprintf(where, wl, "--set %s", assignment);
    doc->owned = rn_xrealloc(doc->owned, sizeof *doc->owned * (doc->n_owned + 1));
    doc->owned[doc->n_owned++] = where;
    struct rn_cfg_node *cur = doc->root;
    const char *prev = "(top)";
    char *save = NULL;
    int rc = 0;
    for (char *seg = strtok_r(path, ".", &save); seg; seg = strtok_r(NULL, ".", &save)) {
        int last = save == NULL || *save == 0;
        struct rn_cfg_node *next = NULL;
        if (cur->kind == RN_CFG_SEQ) {
            char *end;
            long idx = strtol(seg, &end, 10);
            long i = 0;
            for (struct rn_cfg_node *c = cur->child; c; c = c->next, i++) {
                struct rn_cfg_node *id = rn_cfg_get(c, "id");
                if ((id && id->kind == RN_CFG_SCALAR && strcmp(id->value, seg) == 0) ||
                    (*end == 0 && i == idx)) {
                    next = c;
                    break;
                }
            }
            if (!next) {
                rn_errf(errbuf, errlen, "--set %s: no element '%s' in the list at %s:%d:%d",
                        assignment, seg, cur->file, cur->line, cur->col);
                rc = RN_EINVAL;
                break;
            }
        } else if (cur->kind == RN_CFG_MAP) {
            next = rn_cfg_get(cur, seg);
            if (!next) {
                next = rn__node_new(last ? RN_CFG_SCALAR : RN_CFG_MAP, where, 1, 1);
                next->key = rn_xstrdup(seg);
                struct rn_cfg_node **tail = &cur->child;
                while (*tail) tail = &(*tail)->next;
                *tail = next;
            }
        } else {
            rn_errf(errbuf, errlen, "--set %s: '%s' (%s:%d:%d) is a scalar, it has no '%s'",
                    assignment, prev, cur->file, cur->line, cur->col, seg);
            rc = RN_EINVAL;
            break;
        }
        cur = next;
        prev = seg;
    }
    if (rc == 0) {
        if (cur->kind != RN_CFG_SCALAR) {
            rn_errf(errbuf, errlen, "--set %s: cannot replace a %s (%s:%d:%d) with a scalar",
                    assignment, cur->kind == RN_CFG_MAP ? "map" : "list", cur->file, cur->line,
                    cur->col);
            rc = RN_EINVAL;
        } else {
            free(cur->value);
            cur->value = rn_xstrdup(eq + 1);
            cur->file = where;
            cur->line = 1;
            cur->col = (int)(eq - assignment) + 2;
        }
    }
    free(path);
    return rc;
}

int rn_cfg_unset(struct rn_cfg_doc *doc, const char *path, char *errbuf, size_t errlen)
{
    char *copy = rn_xstrdup(path);
    struct rn_cfg_node *parent = doc->root, **link = NULL;
    char *save = NULL;
    int rc = 0;
    for (char *seg = strtok_r(copy, ".", &save); seg; seg = strtok_r(NULL, ".", &save)) {
        if (link) parent = *link;
        link = NULL;
        if (parent->kind != RN_CFG_MAP && parent->kind != RN_CFG_SEQ) break;
        char *end;
        long idx = strtol(seg, &end, 10), i = 0;
        for (struct rn_cfg_node **c = &parent->child; *c; c = &(*c)->next, i++) {
            struct rn_cfg_node *id = parent->kind == RN_CFG_SEQ ? rn_cfg_get(*c, "id") : NULL;
            int hit = parent->kind == RN_CFG_MAP
                          ? strcmp((*c)->key, seg) == 0
                          : (id && id->kind == RN_CFG_SCALAR && strcmp(id->value, seg) == 0) ||
                                (*end == 0 && i == idx);
            if (hit) {
                link = c;
                break;
            }
        }
        if (!link) break;
    }
    if (!link || (save && *save)) {
        rn_errf(errbuf, errlen, "--set -%s: no such node in the job", path);
        rc = RN_EINVAL;
    } else {
        struct rn_cfg_node *gone = *link;
        *link = gone->next;
        gone->next = NULL;
        rn__node_free(gone);
    }
    free(copy);
    return rc;
}

int rn_cfg_override(struct rn_cfg_doc *doc, const char *override, char *errbuf, size_t errlen)
{
    if (override[0] == '-' && !strchr(override, '='))
        return rn_cfg_unset(doc, override + 1, errbuf, errlen);
    return rn_cfg_set(doc, override, errbuf, errlen);
}

/* ---- unit parsing ---------------------------------------------------------- */

/* The whole string must be the number: strtoll and strtod would also skip
 * leading blanks, so " 4" is refused here rather than read as 4. */
int rn_parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s || isspace((unsigned char)*s)) return RN_EINVAL;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return RN_EINVAL;
    *out = v;
    return 0;
}

int rn_parse_f64(const char *s, double *out)
{
    if (!s || !*s || isspace((unsigned char)*s)) return RN_EINVAL;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return RN_EINVAL;
    *out = v;
    return 0;
}

/* "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" (RFC 3339; 't', ' ' and 'z'
 * accepted as well) -> ms since the epoch. */
int rn_parse_rfc3339(const char *s, size_t n, int64_t *out)
{
    int v[6] = {0};
    static const int len[6] = {4, 2, 2, 2, 2, 2};
    static const char sep[6] = {'-', '-', 'T', ':', ':', 0};
    size_t i = 0;
    for (int f = 0; f < 6; f++) {
        for (int d = 0; d < len[f]; d++, i++) {
            if (i >= n || s[i] < '0' || s[i] > '9') return RN_EINVAL;
            v[f] = v[f] * 10 + (s[i] - '0');
        }
        if (sep[f]) {
            if (i >= n) return RN_EINVAL;
            char c = s[i];
            if (!(c == sep[f] || (sep[f] == 'T' && (c == 't' || c == ' ')))) return RN_EINVAL;
            i++;
        }
    }
    int64_t ms = 0;
    if (i < n && s[i] == '.') {
        i++;
        int digits = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (digits < 3) ms = ms * 10 + (s[i] - '0');
            digits++;
            i++;
        }
        if (!digits) return RN_EINVAL;
        for (; digits < 3; digits++) ms *= 10;
    }
    int64_t off = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int hh = (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
        int mm = (s[i + 4] - '0') * 10 + (s[i + 5] - '0');
        if (hh > 23 || mm > 59) return RN_EINVAL;
        off = (int64_t)(hh * 60 + mm) * 60000 * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return RN_EINVAL;
    }
    if (i != n) return RN_EINVAL;
    int y = v[0], mo = v[1], d = v[2];
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || v[3] > 23 || v[4] > 59 || v[5] > 60)
        return RN_EINVAL;
    /* Days from the civil date (proleptic Gregorian), as in Howard Hinnant's
     * well-known algorithm. */
    int yy = y - (mo <= 2);
    int era = (yy >= 0 ? yy : yy - 399) / 400;
    int yoe = yy - era * 400;
    int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + doe - 719468;
    *out = ((days * 24 + v[3]) * 60 + v[4]) * 60000 + (int64_t)v[5] * 1000 + ms - off;
    return 0;
}

int rn_parse_bool(const char *s, int *out)
{
    static const char *const t[] = {"true", "yes", "on", "1"};
    static const char *const f[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, t[i]) == 0) return *out = 1, 0;
        if (strcasecmp(s, f[i]) == 0) return *out = 0, 0;
    }
    return RN_EINVAL;
}

/* Parses "<number><unit>" where unit is one of `units` (with multipliers);
 * a bare number takes `bare` as its multiplier (0: a unit is required). */
static int rn__parse_unit(const char *s, const char *const *units, const double *mult, double bare,
                          int64_t *out)
{
    if (!s || !*s) return RN_EINVAL;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0 || !isfinite(v)) return RN_EINVAL;
    while (*end == ' ') end++;
    double m = 0;
    if (*end == 0) {
        m = bare;
    } else {
        for (size_t i = 0; units[i]; i++)
            if (strcmp(end, units[i]) == 0) m = mult[i];
    }
    if (m == 0) return RN_EINVAL;
    double r = v * m;
    if (r > 9.2e18) return RN_EINVAL;
    *out = (int64_t)(r + 0.5);
    return 0;
}

int rn_parse_duration_ms(const char *s, int64_t *out)
{
    if (s && strcmp(s, "0") == 0) return *out = 0, 0; /* zero needs no unit */
    static const char *const u[] = {"ms", "s", "m", "min", "h", "d", NULL};
    static const double m[] = {1, 1000, 60000, 60000, 3600000, 86400000};
    return rn__parse_unit(s, u, m, 0, out);
}

int rn_parse_size(const char *s, int64_t *out)
{
    static const char *const u[] = {"B",  "k",   "K",  "KB",  "KiB", "M", "MB", "MiB",
                                    "G",  "GB",  "GiB", "T",  "TB",  "TiB", NULL};
    static const double m[] = {1,      1024,   1024,   1000,   1024,   1048576, 1e6,
                               1048576, 1073741824.0, 1e9, 1073741824.0, 1099511627776.0,
                               1e12, 1099511627776.0};
    return rn__parse_unit(s, u, m, 1, out);
}

/* ---- key tables ------------------------------------------------------------ */

static const char *rn__ctype_name(enum rn_ctype t)
{
    switch (t) {
    case RN_CT_STRING: return "string";
    case RN_CT_INT: return "integer";
    case RN_CT_DOUBLE: return "number";
    case RN_CT_BOOL: return "boolean";
    case RN_CT_DURATION: return "duration";
    case RN_CT_SIZE: return "size";
    case RN_CT_ENUM: return "enum";
    case RN_CT_NODE: return "map or list";
    case RN_CT_REF: return "reference";
    }
    return "?";
}

static int rn__in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strcmp(s, list[i]) == 0) return 1;
    return 0;
}

/* Sets one key from `n` (or from the default text when n is NULL). */
static int rn__apply_one(const struct rn_config_key *k, const struct rn_cfg_node *n, void *ctx,
                         const struct rn_cfg_node *where, char *errbuf, size_t errlen)
{
    char *field = (char *)ctx + k->offset;
    const char *text = n ? n->value : k->def;
    if (k->type == RN_CT_NODE) {
        *(const struct rn_cfg_node **)field = n;
        return 0;
    }
    if (n && n->kind != RN_CFG_SCALAR) {
        const char *tn = rn__ctype_name(k->type);
        rn_cfg_errf(errbuf, errlen, n, "'%s' must be %s %s, not a %s", k->name,
                    strchr("aeiou", tn[0]) ? "an" : "a", tn, n->kind == RN_CFG_MAP ? "map" : "list");
        return RN_EINVAL;
    }
    if (!text) return 0; /* no default: leave zero */
    const struct rn_cfg_node *at = n ? n : where;
    int64_t iv = 0;
    int rc = 0;
    switch (k->type) {
    case RN_CT_STRING:
    case RN_CT_REF:
        *(const char **)field = text;
        return 0;
    case RN_CT_INT:
        rc = rn_parse_i64(text, &iv);
        if (rc) {
            rn_cfg_errf(errbuf, errlen, at, "'%s' must be an integer, got '%s'", k->name, text);
            return rc;
        }
        break;
    case RN_CT_DURATION:
        rc = rn_parse_duration_ms(text, &iv);
        if (rc) {
            rn_cfg_errf(errbuf, errlen, at,
                        "'%s': bad duration '%s' (use a number with ms, s, m, h or d: \"10s\", "
                        "\"30m\")",
                        k->name, text);
            return rc;
        }
        break;
    case RN_CT_SIZE:
        rc = rn_parse_size(text, &iv);
        if (rc) {
            rn_cfg_errf(errbuf, errlen, at,
                        "'%s': bad size '%s' (use bytes or a unit: \"64KiB\", \"64MiB\", \"1GB\")",
                        k->name, text);
            return rc;
        }
        break;
    case RN_CT_DOUBLE: {
        double d;
        if (rn_parse_f64(text, &d)) {
            rn_cfg_errf(errbuf, errlen, at, "'%s' must be a number, got '%s'", k->name, text);
            return RN_EINVAL;
        }
        if (k->min < k->max && (d < (double)k->min || d > (double)k->max)) {
            rn_cfg_errf(errbuf, errlen, at, "'%s' must be between %lld and %lld, got %s",
                        k->name, (long long)k->min, (long long)k->max, text);
            return RN_EINVAL;
        }
        *(double *)field = d;
        return 0;
    }
    case RN_CT_BOOL:
        if (rn_parse_bool(text, (int *)field)) {
            rn_cfg_errf(errbuf, errlen, at, "'%s' must be true or false, got '%s'", k->name,
                        text);
            return RN_EINVAL;
        }
        return 0;
    case RN_CT_ENUM:
        for (int i = 0; k->enum_values[i]; i++) {
            if (strcmp(k->enum_values[i], text) == 0) {
                *(int *)field = i;
                return 0;
            }
        }
        {
            size_t nv = 0;
            while (k->enum_values[nv]) nv++;
            const char *s = rn_suggest(text, k->enum_values, nv);
            struct rn_buf all = RN_BUF_INIT;
            for (size_t i = 0; i < nv; i++) rn_buf_printf(&all, "%s%s", i ? ", " : "", k->enum_values[i]);
            rn_buf_putc(&all, 0);
            if (s)
                rn_cfg_errf(errbuf, errlen, at, "'%s': unknown value '%s' (did you mean '%s'?)",
                            k->name, text, s);
            else
                rn_cfg_errf(errbuf, errlen, at, "'%s': unknown value '%s' (one of: %s)", k->name,
                            text, all.data);
            rn_buf_free(&all);
        }
        return RN_EINVAL;
    case RN_CT_NODE: return 0;
    }
    if (k->min < k->max && (iv < k->min || iv > k->max)) {
        rn_cfg_errf(errbuf, errlen, at, "'%s' must be between %lld and %lld, got '%s'", k->name,
                    (long long)k->min, (long long)k->max, text);
        return RN_EINVAL;
    }
    *(int64_t *)field = iv;
    return 0;
}

int rn_config_check_keys(const struct rn_cfg_node *map, const char *const *names, const char *what,
                         char *errbuf, size_t errlen)
{
    if (!map) return 0;
    if (map->kind != RN_CFG_MAP) {
        rn_cfg_errf(errbuf, errlen, map, "%s must be a map", what);
        return RN_EINVAL;
    }
    size_t n = 0;
    while (names[n]) n++;
    for (const struct rn_cfg_node *c = map->child; c; c = c->next) {
        if (rn__in_list(c->key, names)) continue;
        const char *s = rn_suggest(c->key, names, n);
        if (s)
            rn_cfg_key_errf(errbuf, errlen, c, "unknown key '%s' in %s (did you mean '%s'?)",
                            c->key, what, s);
        else
            rn_cfg_key_errf(errbuf, errlen, c, "unknown key '%s' in %s", c->key, what);
        return RN_EINVAL;
    }
    return 0;
}

int rn_config_apply(const struct rn_config_key *keys, const struct rn_cfg_node *node, void *ctx,
                    const char *const *skip, char *errbuf, size_t errlen)
{
    if (node && node->kind != RN_CFG_MAP) {
        rn_cfg_errf(errbuf, errlen, node, "expected a map");
        return RN_EINVAL;
    }
    /* Unknown keys first: a typo is the likeliest mistake. */
    size_t nk = 0, ns = 0;
    while (keys && keys[nk].name) nk++;
    while (skip && skip[ns]) ns++;
    const char **names = rn_xcalloc(nk + ns + 1, sizeof *names);
    for (size_t i = 0; i < nk; i++) names[i] = keys[i].name;
    for (size_t i = 0; i < ns; i++) names[nk + i] = skip[i];
    int rc = rn_config_check_keys(node, names, "this section", errbuf, errlen);
    free(names);
    if (rc) return rc;
    for (size_t i = 0; i < nk; i++) {
        const struct rn_config_key *k = &keys[i];
        const struct rn_cfg_node *n = rn_cfg_get(node, k->name);
        if (n && n->kind == RN_CFG_SCALAR && n->value[0] == 0 &&
            (k->type != RN_CT_STRING || (k->flags & RN_CK_REQUIRED)))
            n = NULL;
        if (!n && (k->flags & RN_CK_REQUIRED)) {
            rn_cfg_errf(errbuf, errlen, node, "missing required key '%s' (%s)", k->name,
                        k->description);
            return RN_EINVAL;
        }
        rc = rn__apply_one(k, n, ctx, node, errbuf, errlen);
        if (rc) return rc;
    }
    return 0;
}

void rn_config_doc(const struct rn_config_key *keys, struct rn_buf *out)
{
    rn_buf_puts(out, "| key | type | default | unit | description |\n");
    rn_buf_puts(out, "| --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; keys && keys[i].name; i++) {
        const struct rn_config_key *k = &keys[i];
        rn_buf_printf(out, "| `%s` | %s | %s | %s | %s", k->name, rn__ctype_name(k->type),
                      (k->flags & RN_CK_REQUIRED) ? "required"
                      : k->def                    ? k->def
                                                  : "—",
                      k->unit ? k->unit : "", k->description);
        if (k->type == RN_CT_ENUM) {
            rn_buf_puts(out, " One of:");
            for (int j = 0; k->enum_values[j]; j++)
                rn_buf_printf(out, "%s `%s`", j ? "," : "", k->enum_values[j]);
            rn_buf_putc(out, '.');
        }
        rn_buf_puts(out, " |\n");
    }
}
