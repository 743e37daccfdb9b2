/*
 * rn_cluster_json.c — small helpers over yajl's tree for the cluster's
 * control plane (the documents the coordinator, workers and CLI exchange).
 */
#include <string.h>

#include "rn_cluster_int.h"

static yajl_val rn__jget(yajl_val obj, const char *name)
{
    if (!obj || !YAJL_IS_OBJECT(obj)) return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (strcmp(obj->u.object.keys[i], name) == 0) return obj->u.object.values[i];
    return NULL;
}

const char *rn_jstr(yajl_val obj, const char *name)
{
    yajl_val v = rn__jget(obj, name);
    return v && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

int64_t rn_jint(yajl_val obj, const char *name, int64_t def)
{
    yajl_val v = rn__jget(obj, name);
    if (v && YAJL_IS_INTEGER(v)) return v->u.number.i;
    if (v && YAJL_IS_DOUBLE(v)) return (int64_t)v->u.number.d;
    return def;
}

double rn_jnum(yajl_val obj, const char *name, double def)
{
    yajl_val v = rn__jget(obj, name);
    return v && YAJL_IS_NUMBER(v) ? YAJL_GET_DOUBLE(v) : def;
}

yajl_val rn_jarr(yajl_val obj, const char *name)
{
    yajl_val v = rn__jget(obj, name);
    return v && YAJL_IS_ARRAY(v) ? v : NULL;
}

yajl_val rn_jobj(yajl_val obj, const char *name)
{
    yajl_val v = rn__jget(obj, name);
    return v && YAJL_IS_OBJECT(v) ? v : NULL;
}

void rn_json_kv_str(struct rn_buf *b, const char *name, const char *value)
{
    rn_json_str(b, name, strlen(name));
    rn_buf_putc(b, ':');
    if (value)
        rn_json_str(b, value, strlen(value));
    else
        rn_buf_puts(b, "null");
    rn_buf_putc(b, ',');
}
