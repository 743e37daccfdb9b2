/*
 * rn_config_int.h — the engine's side of job configuration: the YAML loader
 * and `--set`, and the reference text generated from key tables.
 *
 * The YAML file is read with libyaml's event parser into rn_cfg_node trees
 * (rn_config.h). `${VAR}` in a scalar is replaced by the environment variable
 * VAR (`${VAR:-default}` gives a default); `--set a.b=v` overrides are applied
 * to the tree before it is read. Operators never load documents: they get
 * their own node, already read.
 */
#ifndef RUNNEL_RN_CONFIG_INT_H
#define RUNNEL_RN_CONFIG_INT_H

#include "rn_config.h"

struct rn_cfg_doc {
    struct rn_cfg_node *root;
    char *file;
    char **owned; /* names of --set overrides, which their nodes point at */
    size_t n_owned;
};

/* Loads a YAML file. Returns NULL with "file:line:col: message" in errbuf. */
struct rn_cfg_doc *rn_cfg_load_file(const char *path, char *errbuf, size_t errlen);
struct rn_cfg_doc *rn_cfg_load_string(const char *name, const char *text, size_t len,
                                      char *errbuf, size_t errlen);
void rn_cfg_free(struct rn_cfg_doc *doc);

/* Applies "a.b.c=value". A path segment into a sequence matches the element
 * whose `id` equals it, or a numeric index. Missing map keys are created. */
int rn_cfg_set(struct rn_cfg_doc *doc, const char *assignment, char *errbuf, size_t errlen);
/* Removes the node at "a.b.c" (segments as for rn_cfg_set) with everything
 * under it: how the coordinator leaves out of a cluster task the nodes of
 * other stages (an override "-a.b.c"). A path that does not exist is an
 * error. */
int rn_cfg_unset(struct rn_cfg_doc *doc, const char *path, char *errbuf, size_t errlen);
/* Applies one override: "-a.b.c" unsets, anything else is rn_cfg_set's. */
int rn_cfg_override(struct rn_cfg_doc *doc, const char *override, char *errbuf, size_t errlen);

/* Appends a Markdown table describing `keys`. */
void rn_config_doc(const struct rn_config_key *keys, struct rn_buf *out);

#endif
