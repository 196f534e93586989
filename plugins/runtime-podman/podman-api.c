/* SPDX-License-Identifier: Apache-2.0 */
/* podman-api.c: the libpod REST client: one libcurl handle per state over the service's Unix
 * socket, request/response plumbing, and Podman's error bodies turned into errno plus Podman's
 * own message, verbatim. Knows nothing about containers. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

#include "podman.h"

int api_buf_append(api_buf *b, const void *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = MAX(b->cap * 2, b->len + len + 1);
        char *n = realloc(b->data, MAX(cap, (size_t)256));

        if (!n)
            return -ENOMEM;
        b->data = n;
        b->cap = MAX(cap, (size_t)256);
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = 0;
    return 0;
}

void api_buf_free(api_buf *b)
{
    free(b->data);
    *b = (api_buf){0};
}

void api_response_done(api_response *rs)
{
    if (!rs)
        return;
    api_buf_free(&rs->body);
    free(rs->path_stat);
    *rs = (api_response){0};
}

typedef struct transfer {
    const api_request *rq;
    api_response *rs;
    int sink_r;
} transfer;

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
    transfer *t = userdata;
    size_t len = size * n;

    /* Error bodies always land in the buffer so api_error() can read Podman's message. */
    if (t->rq->sink && t->rs->status >= 200 && t->rs->status < 300) {
        t->sink_r = t->rq->sink(t->rq->sink_data, data, len);
        if (t->sink_r) {
            t->rs->stopped = true;
            return 0; /* aborts with CURLE_WRITE_ERROR */
        }
        return len;
    }
    if (t->rs->body.len + len > 64u << 20)
        return 0; /* a runaway body; nothing we call returns this much */
    return api_buf_append(&t->rs->body, data, len) < 0 ? 0 : len;
}

static size_t on_header(char *data, size_t size, size_t n, void *userdata)
{
    transfer *t = userdata;
    size_t len = size * n;
    static const char stat_hdr[] = "X-Docker-Container-Path-Stat:";

    /* The status line arrives first; keep it so on_body knows 2xx from errors. A header line
     * is not NUL-terminated: read the three digits of the status and no further. */
    if (len > 12 && strneq(data, "HTTP/", 5)) {
        const char *sp = memchr(data, ' ', len);
        if (sp && sp + 4 <= data + len && isdigit((unsigned char)sp[1]) &&
            isdigit((unsigned char)sp[2]) && isdigit((unsigned char)sp[3]))
            t->rs->status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
    } else if (len > sizeof stat_hdr && strncasecmp(data, stat_hdr, sizeof stat_hdr - 1) == 0) {
        const char *v = data + sizeof stat_hdr - 1;
        size_t vl = len - (sizeof stat_hdr - 1);
        while (vl && isspace((unsigned char)*v))
            v++, vl--;
        while (vl && isspace((unsigned char)v[vl - 1]))
            vl--;
        free(t->rs->path_stat);
        t->rs->path_stat = strndup(v, vl);
    }
    return len;
}

static size_t on_upload(char *buf, size_t size, size_t n, void *userdata)
{
    int fd = *(int *)userdata;
    ssize_t r;

    do
        r = read(fd, buf, size * n);
    while (r < 0 && errno == EINTR);
    return r < 0 ? CURL_READFUNC_ABORT : (size_t)r;
}

static int perform(podman *p, const api_request *rq, api_response *rs, CURLcode *ret_code)
{
    _cleanup_free_ char *url = NULL;
    struct curl_slist *hdrs = NULL;
    transfer t = {.rq = rq, .rs = rs};
    int64_t timeout = rq->timeout_ms ? rq->timeout_ms : p->timeout_ms;
    int fd = rq->upload_fd;
    CURL *c = p->curl;
    CURLcode cc;

    if (asprintf(&url, "http://d" PODMAN_API "%s", rq->path) < 0)
        return -ENOMEM;
    /* reset keeps the live connection (keep-alive) but forgets last call's options */
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, p->socket);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->curl_err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    if (timeout > 0)
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout);
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip on PUT */
    if (rq->json) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->json);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(rq->json));
    } else if (fd >= 0) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/x-tar");
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_upload);
        curl_easy_setopt(c, CURLOPT_READDATA, &fd);
    } else if (streq(rq->method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    if (streq(rq->method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (!streq(rq->method, "GET") && !streq(rq->method, "POST"))
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);

    p->curl_err[0] = 0;
    rs->status = 0;
    cc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    *ret_code = cc;
    if (cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && rs->stopped)) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
        return 0;
    }
    return -EIO;
}

static const char *curl_reason(podman *p, CURLcode cc)
{
    return p->curl_err[0] ? p->curl_err : curl_easy_strerror(cc);
}

int api_call(podman *p, const api_request *rq, api_response *rs, terok_error *err)
{
    CURLcode cc = CURLE_OK;
    int r;

    *rs = (api_response){0};
    if (!p->socket || p->broken) {
        r = service_connect(p, err);
        if (r < 0)
            return r;
    }
    r = perform(p, rq, rs, &cc);
    if (r >= 0)
        return 0;
    if (cc == CURLE_COULDNT_CONNECT && rq->upload_fd < 0 && access(p->socket, F_OK) < 0 &&
        errno == ENOENT) {
        /* The socket is gone: the service exited cleanly (idle timeout) before this request
         * reached it, so nothing was done and a retry is safe. A socket left behind by a
         * crash is different: the request may have been in flight (libcurl retries a dead
         * reused connection once by itself), so that is reported, and the next call
         * reconnects. */
        terok_plog(TEROK_LOG_INFO, "podman service at '%s' has exited; reconnecting", p->socket);
        p->broken = true;
        api_response_done(rs);
        r = service_connect(p, err);
        if (r < 0)
            return r;
        r = perform(p, rq, rs, &cc);
        if (r >= 0)
            return 0;
    }
    if (cc == CURLE_OPERATION_TIMEDOUT)
        return terok_perr(err, -ETIMEDOUT, "timed out after %lld ms",
                          (long long)(rq->timeout_ms ? rq->timeout_ms : p->timeout_ms));
    if (cc == CURLE_ABORTED_BY_CALLBACK || cc == CURLE_READ_ERROR)
        return terok_perr(err, -EIO, "sending the request body failed: %s", curl_reason(p, cc));
    if (cc == CURLE_OUT_OF_MEMORY)
        return terok_perr(err, -ENOMEM, "out of memory");
    p->broken = true;
    return terok_perr(err, -ECONNRESET,
                      "podman service at '%s' stopped answering: %s (the next call reconnects)",
                      p->socket, curl_reason(p, cc));
}

json_object *api_json(const api_response *rs)
{
    if (!rs->body.data || !rs->body.len)
        return NULL;
    return json_tokener_parse(rs->body.data);
}

const char *json_str(json_object *o, const char *key)
{
    json_object *v = NULL;

    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

int api_status_errno(const api_response *rs)
{
    json_object *j = api_json(rs);
    const char *cause = json_str(j, "cause");
    int r;

    if (rs->status == 404)
        r = -ENOENT;
    else if (cause && strstr(cause, "already in use"))
        r = -EEXIST;
    else if (cause && strstr(cause, "state improper"))
        r = -EBUSY;
    else if (rs->status == 304)
        r = -EALREADY;
    else if (rs->status == 400)
        r = -EINVAL;
    else if (rs->status == 401 || rs->status == 403)
        r = -EACCES;
    else if (rs->status == 409)
        r = -EBUSY;
    else
        r = -EIO;
    json_object_put(j);
    return r;
}

int api_error(const api_response *rs, terok_error *err, const char *fmt, ...)
{
    _cleanup_free_ char *what = NULL;
    json_object *j = api_json(rs);
    const char *msg = json_str(j, "message");
    va_list ap;
    int r, code = api_status_errno(rs);

    va_start(ap, fmt);
    r = vasprintf(&what, fmt, ap);
    va_end(ap);
    if (r < 0)
        what = NULL;
    if (msg)
        r = terok_perr(err, code, "%s: %s", strna(what), msg);
    else if (rs->body.len && rs->body.len < 512)
        r = terok_perr(err, code, "%s: HTTP %ld: %.*s", strna(what), rs->status,
                       (int)strcspn(rs->body.data, "\r\n"), rs->body.data);
    else
        r = terok_perr(err, code, "%s: HTTP %ld", strna(what), rs->status);
    json_object_put(j);
    return r;
}

char *api_escape(podman *p, const char *s)
{
    char *e = curl_easy_escape(p->curl, s, 0);
    char *r;

    if (!e)
        return NULL;
    r = strdup(e); /* so callers free() it like everything else */
    curl_free(e);
    return r;
}

bool ref_is_valid(const char *ref)
{
    size_t n;

    if (isempty(ref) || !isalnum((unsigned char)ref[0]))
        return false;
    n = strspn(ref, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
    return ref[n] == 0 && n <= 253;
}

bool image_ref_is_valid(const char *ref)
{
    size_t n;

    if (isempty(ref) || !isalnum((unsigned char)ref[0]) || strstr(ref, ".."))
        return false;
    n = strspn(ref, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/:@");
    return ref[n] == 0 && n <= 1024;
}

int check_struct(const void *s, size_t given, size_t known, const char *what, terok_error *err)
{
    if (!s)
        return terok_perr(err, -EINVAL, "%s: missing", what);
    if (given < known)
        return terok_perr(err, -EINVAL, "%s: struct_size %zu is smaller than ABI 1.0's %zu", what,
                          given, known);
    if (!terok_struct_tail_is_zero(s, given, known))
        return terok_perr(err, -E2BIG,
                          "%s: fields newer than this plugin are set (struct_size %zu > %zu); "
                          "refusing to ignore them",
                          what, given, known);
    return 0;
}
