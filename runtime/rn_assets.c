/*
 * rn_assets.c — looks up and serves the files built into the binary
 * (rn_assets_int.h). The table is generated at build time; this file only
 * searches it and picks a content type from the file's extension.
 */
#include <string.h>

#include "rn_assets_int.h"
#include "rn_common.h"

const struct rn_asset *rn__asset_find(const char *path)
{
    for (const struct rn_asset *a = rn__assets; a->path; a++)
        if (strcmp(a->path, path) == 0) return a;
    return NULL;
}

const char *rn__asset_content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
        {".json", "application/json"},         {".png", "image/png"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0) return types[i].type;
    return "application/octet-stream";
}

int rn__asset_serve(const char *name, struct rn_http_response *res)
{
    const struct rn_asset *a = rn__asset_find(name);
    if (!a) {
        res->status = 404;
        rn_buf_puts(&res->body, "not found\n");
        return -1;
    }
    res->content_type = rn__asset_content_type(name);
    rn_buf_append(&res->body, a->data, a->len);
    return 0;
}
