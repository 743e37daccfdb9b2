/*
 * rn_validate_http.c — POST /api/v1/validate: checks a job's YAML as
 * `runnel validate` does and answers where each problem is, so a page can mark
 * the line and column while the job is being written, before it is submitted.
 *
 * The body is written to a private file under the server's directory, loaded
 * with rn_job_load (which checks every key, reference and record type and runs
 * nothing), and removed. Messages name the file by the name the client gave
 * (?file=, default job.yaml), never by the temporary one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_fs_int.h"
#include "rn_job_int.h"
#include "rn_validate_int.h"

/* Copies the value of `key` in a query string ("a=1&file=x.yaml") into out. */
static void rn__query_value(const char *query, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = query; p && *p;) {
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            const char *v = p + kl + 1;
            size_t n = strcspn(v, "&");
            if (n && n < cap) {
                memcpy(out, v, n);
                out[n] = 0;
            }
            return;
        }
        p = strchr(p, '&');
        if (p) p++;
    }
}

/* Writes one problem: {"line":L,"column":C,"message":M}, line and column 0 when the
 * message names no place in the file. `msg` is one line of the loader's error, the
 * temporary path already replaced by `name`. */
static void rn__problem_json(struct rn_buf *b, const char *name, const char *msg, size_t len)
{
    size_t nl = strlen(name);
    long line = 0, col = 0;
    const char *text = msg;
    if (len > nl + 1 && strncmp(msg, name, nl) == 0 && msg[nl] == ':') {
        char *end;
        line = strtol(msg + nl + 1, &end, 10);
        if (*end == ':') col = strtol(end + 1, &end, 10);
        if (*end == ':' && line > 0) {
            text = end + 1;
            while (*text == ' ')
                text++;
        } else {
            line = col = 0;
        }
    }
    rn_buf_printf(b, "{\"line\":%ld,\"column\":%ld,\"message\":", line, col);
    rn_json_str(b, text, len - (size_t)(text - msg));
    rn_buf_putc(b, '}');
}

void rn__validate_http(const char *dir, const struct rn_http_request *req,
                       struct rn_http_response *res)
{
    char name[128] = "job.yaml", tmp[1024], err[4096] = "";
    rn__query_value(req->query, "file", name, sizeof name);
    for (char *p = name; *p; p++)
        if (*p == '/' || *p == '"' || (unsigned char)*p < 0x20) *p = '_';
    res->content_type = "application/json";
    snprintf(tmp, sizeof tmp, "%s/validate-%d-%p.yaml", dir, (int)getpid(), (void *)req);
    if (rn_fs_mkdirs(dir, err, sizeof err) ||
        rn_fs_write_atomic(tmp, req->body ? req->body : "", req->body_len, err, sizeof err)) {
        res->status = 500;
        rn_buf_puts(&res->body, "{\"error\":");
        rn_json_str(&res->body, err, strlen(err));
        rn_buf_puts(&res->body, "}\n");
        return;
    }
    struct rn_job_options opt = {.quiet = 1};
    struct rn_job *job = rn_job_load(tmp, &opt, err, sizeof err);
    unlink(tmp);
    if (job) {
        rn_buf_puts(&res->body, "{\"ok\":true,\"job\":");
        rn_json_str(&res->body, job->name, strlen(job->name));
        rn_buf_puts(&res->body, ",\"problems\":[]}\n");
        rn_job_destroy(job);
        return;
    }
    /* the loader's message, with the file called by the client's name */
    struct rn_buf msg = RN_BUF_INIT;
    size_t tl = strlen(tmp);
    for (const char *p = err;;) {
        const char *hit = strstr(p, tmp);
        rn_buf_append(&msg, p, hit ? (size_t)(hit - p) : strlen(p));
        if (!hit) break;
        rn_buf_puts(&msg, name);
        p = hit + tl;
    }
    rn_buf_putc(&msg, 0);
    rn_buf_puts(&res->body, "{\"ok\":false,\"error\":");
    rn_json_str(&res->body, msg.data, strlen(msg.data));
    rn_buf_puts(&res->body, ",\"problems\":[");
    int first = 1;
    for (const char *l = msg.data; *l;) {
        size_t n = strcspn(l, "\n");
        if (n) {
            if (!first) rn_buf_putc(&res->body, ',');
            rn__problem_json(&res->body, name, l, n);
            first = 0;
        }
        l += n + (l[n] == '\n');
    }
    rn_buf_puts(&res->body, "]}\n");
    rn_buf_free(&msg);
}
