/* SPDX-License-Identifier: Apache-2.0 */
/* runtime-podman's decoding of what the libpod service answers: container inspect and list
 * entries, image inspect, the events stream (newline-delimited JSON, fed in chunks), the
 * multiplexed log/exec stream, error bodies {"cause","message","response"}, removal reports,
 * response headers, the archive path-stat header and RFC 3339 times. A hostile or broken service
 * must give clear errors, never a crash. Input: one selector byte, one parameter byte, then the
 * answer. The plugin's files with static decoders are compiled in here. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-plugin-host.h"
#include "fuzz.h"

#include "podman-api.c"
#include "podman-copy.c"
#include "podman-service.c"
#include "runtime-podman.c"

/* Read every string the decoder handed out, so ASan sees any that points outside its JSON. */
static void touch(const char *s)
{
    if (s && strlen(s) == (size_t)-1)
        abort();
}

static void touch_strv(const char *const *l, char must_have)
{
    for (; l && *l; l++)
        if (must_have && !strchr(*l, must_have))
            abort(); /* "K=V" labels, "src:dst[:ro]" mounts */
}

static int on_container(void *userdata, const terok_container_info *info)
{
    (void)userdata;
    if (info->struct_size != sizeof *info || !info->labels || !info->annotations || !info->mounts)
        abort();
    touch(info->id);
    touch(info->name);
    touch(info->image);
    touch(info->status);
    touch(info->raw_json);
    touch_strv(info->labels, '=');
    touch_strv(info->annotations, '=');
    touch_strv(info->mounts, 0);
    return 0;
}

static int on_image(void *userdata, const terok_image_info *info)
{
    (void)userdata;
    if (!info->entrypoint || !info->cmd || !info->env)
        abort();
    touch(info->id);
    touch(info->user);
    touch(info->workdir);
    touch_strv(info->entrypoint, 0);
    touch_strv(info->cmd, 0);
    touch_strv(info->env, 0);
    return 0;
}

static int n_events;

static int on_event(void *userdata, const terok_event *ev)
{
    (void)userdata;
    if (!ev->action || !ev->labels || ev->exit_code < -1 || ev->exit_code > 255)
        abort(); /* an event has an action; an exit code is -1 (none) or 0..255 */
    touch(ev->id);
    touch(ev->name);
    touch_strv(ev->labels, '=');
    return ++n_events > 1000; /* the stream ends when the callback says so */
}

static size_t demuxed;

static int on_frame(void *userdata, int stream, const void *data, size_t len)
{
    (void)userdata;
    if ((stream != 1 && stream != 2) || (len && !data))
        abort();
    demuxed += len;
    return 0;
}

/* A copy of exactly n bytes (no terminator), as libcurl hands header lines. */
static char *exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);

    if (!p)
        abort();
    memcpy(p, s, n);
    return p;
}

static void error_body(long status, const char *body, size_t len)
{
    api_response rs = {.status = status};
    terok_error err = TEROK_ERROR_INIT;
    json_object *j;
    const char *msg;
    int r, code;

    if (api_buf_append(&rs.body, body, len) < 0)
        abort();
    code = api_status_errno(&rs);
    r = api_error(&rs, &err, "inspecting container '%s'", "c1");
    if (r >= 0 || r != code || err.code != r || !err.message ||
        strncmp(err.message, "inspecting container 'c1': ", 27) != 0)
        abort(); /* an errno, and the message says what we tried */
    if (status == 404 && code != -ENOENT)
        abort();
    /* Podman's own message, verbatim, behind what we tried. */
    j = api_json(&rs);
    msg = json_str(j, "message");
    if (msg && strcmp(err.message + 27, msg) != 0)
        abort();
    json_object_put(j);
    free(err.message);
    api_response_done(&rs);
}

static void events(const char *data, size_t len, size_t chunk, const char *prefix)
{
    events_ctx ctx = {.prefix = prefix, .cb = on_event};

    ctx.lines = (linebuf){.emit = events_line, .userdata = &ctx};
    n_events = 0;
    for (size_t off = 0; off < len;) {
        size_t n = MIN(chunk, len - off);
        if (events_sink(&ctx, data + off, n))
            break;
        off += n;
    }
    linebuf_free(&ctx.lines);
}

static void headers(const char *data, size_t len)
{
    api_request rq = API_REQUEST_INIT;
    api_response rs = {0};
    transfer t = {.rq = &rq, .rs = &rs};
    char *version = NULL;

    /* one header line per line of input, each an exact-size buffer */
    for (size_t off = 0; off < len;) {
        const char *nl = memchr(data + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (data + off)) + 1 : len - off;
        char *line = exact(data + off, n);

        if (on_header(line, 1, n, &t) != n || on_ping_header(line, 1, n, &version) != n)
            abort(); /* header callbacks never stop a transfer */
        free(line);
        off += n;
    }
    if (rs.path_stat) {
        char *doc = b64_decode(rs.path_stat);
        json_object *j = doc ? json_tokener_parse(doc) : NULL, *d = NULL;
        if (j)
            (void)(json_object_object_get_ex(j, "isDir", &d) && json_object_get_boolean(d));
        json_object_put(j);
        free(doc);
    }
    free(version);
    api_response_done(&rs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s;
    json_object *j;
    size_t len;

    if (size < 2)
        return 0;
    s = fuzz_strndup(data + 2, size - 2);
    len = size - 2;
    switch (data[0] % 10) {
    case 0: /* GET /containers/{id}/json */
        if ((j = json_tokener_parse(s))) {
            if (info_from_inspect(j, on_container, NULL) < 0 || info_from_inspect(j, NULL, NULL))
                abort();
            json_object_put(j);
        }
        break;
    case 1: /* GET /containers/json: an array of entries */
        if ((j = json_tokener_parse(s))) {
            for (size_t i = 0;
                 json_object_is_type(j, json_type_array) && i < json_object_array_length(j); i++)
                if (info_from_list_entry(json_object_array_get_idx(j, i), on_container, NULL) < 0)
                    abort();
            json_object_put(j);
        }
        break;
    case 2: /* GET /images/{ref}/json */
        if ((j = json_tokener_parse(s))) {
            if (image_info_emit(j, on_image, NULL) < 0)
                abort();
            json_object_put(j);
        }
        break;
    case 3: /* GET /events?stream=true, chunked as the socket delivers it */
        events(s, len, 1 + data[1], data[1] & 0x80 ? "task-" : NULL);
        break;
    case 4: /* an error answer */
        error_body(data[1] & 1 ? 100 + (long)(data[1] >> 1) * 4 : 400 + (data[1] >> 1) % 10, s,
                   len);
        break;
    case 5: { /* logs / non-TTY exec: 8-byte frame headers */
        demux d = {.emit = on_frame};
        size_t chunk = 1 + data[1];
        demuxed = 0;
        for (size_t off = 0; off < len; off += MIN(chunk, len - off))
            if (demux_feed(&d, s + off, MIN(chunk, len - off)))
                abort();
        if (demuxed > len)
            abort(); /* payload is what came in, minus headers */
        break;
    }
    case 6: { /* DELETE /containers/{id}: [{"Id":…,"Err":…}] */
        const char *msg = NULL;
        if ((j = json_tokener_parse(s))) {
            if (removal_reports_error(j, &msg) && (!msg || !*msg))
                abort();
            json_object_put(j);
        }
        break;
    }
    case 7: /* response headers: status line, path stat, Libpod-Api-Version */
        headers(s, len);
        break;
    case 8: /* times as Go prints them */
        (void)rfc3339_to_unix(s);
        break;
    case 9: /* references we put in a URL path */
        if (ref_is_valid(s) && (strstr(s, "/") || strstr(s, "?") || strlen(s) > 253))
            abort();
        if (image_ref_is_valid(s) && (strstr(s, "..") || strstr(s, "?") || strstr(s, "#")))
            abort();
        break;
    }
    free(s);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    (void)fuzz_host_init();
    return 0;
}
