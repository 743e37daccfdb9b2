/*
 * rn_assets_int.h — files built into the binary (the web UI's pages, scripts and
 * styles), so an installed runnel serves them with nothing beside it.
 *
 * The build turns every file under runtime/ui/ into one entry of rn__assets
 * (cmake/embed_assets.cmake writes the table into the build directory); the
 * status server and the coordinator serve them under /ui/ with
 * rn__asset_serve. Adding a file under runtime/ui/ is all it takes to serve it
 * (re-run cmake so that its glob sees the new file).
 */
#ifndef RUNNEL_RN_ASSETS_INT_H
#define RUNNEL_RN_ASSETS_INT_H

#include <stddef.h>

#include "rn_http.h"

struct rn_asset {
    const char *path;          /* "ui/job.js": the name under runtime/ */
    const unsigned char *data; /* its bytes, NUL-terminated (the NUL not counted) */
    size_t len;
};

/* Every embedded file, ending with an entry whose path is NULL. */
extern const struct rn_asset rn__assets[];

/* The asset at path ("ui/job.js"), or NULL. Static data: never freed. */
const struct rn_asset *rn__asset_find(const char *path);

/* The content type of a file name, by its extension ("application/octet-stream"
 * for one it does not know). A static string. */
const char *rn__asset_content_type(const char *path);

/* Answers GET or HEAD of an embedded asset: `name` is the asset's path
 * ("ui/job.html"). Fills res with the bytes (copied) and their type, or 404 when
 * there is none. Returns 0 when it was found. */
int rn__asset_serve(const char *name, struct rn_http_response *res);

#endif
