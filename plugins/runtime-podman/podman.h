/* SPDX-License-Identifier: Apache-2.0 */
/* podman.h: what the runtime-podman files share: the plugin state, the libpod REST client
 * (podman-api.c), service discovery (podman-service.c), the spec mapping (podman-spec.c),
 * stream decoding (podman-stream.c), inspect/list decoding (podman-info.c), exec and copy.
 * Nothing here prints or exits; every failure fills terok_error through terok_perr(). */
#pragma once

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "terok/runtime.h"
#include "util/macro.h"

/* util/macro.h's TAKE_PTR is a bare statement expression, which -Wpedantic (warning_level=3)
 * rejects; the same with __extension__ until macro.h carries it. */
#undef TAKE_PTR
#define TAKE_PTR(p)                                                                                \
    __extension__({                                                                                \
        __typeof__(p) _p_ = (p);                                                                   \
        (p) = NULL;                                                                                \
        _p_;                                                                                       \
    })

/* The API level we speak; the service must report Libpod-Api-Version >= 4.0. */
#define PODMAN_API "/v4.0.0/libpod"
#define PODMAN_MIN_API_MAJOR 4

typedef struct podman {
    CURL *curl;          /* one handle per state, reused (keep-alive) */
    char *socket;        /* the socket in use, NULL until connected */
    char *configured;    /* "auto", "private" or an absolute path */
    char *private_dir;   /* <runtime_dir>/runtime-podman: socket, pidfile, lock */
    char *plugin_state;  /* <state_dir>/runtime-podman: service log */
    char *hooks_dir;     /* handed to a private service with --hooks-dir */
    char *podman_binary; /* "podman" (PATH) or an absolute path */
    char *api_version;   /* from the Libpod-Api-Version header */
    bool rootless;       /* euid != 0 */
    bool is_private;     /* connected to our own private service */
    bool broken;         /* stopped answering: rediscover before the next call */
    int64_t idle_s;      /* private service --time */
    int64_t timeout_ms;  /* default per-call timeout */
    pid_t service_pid;   /* a private service this process spawned, reaped with WNOHANG */
    char curl_err[CURL_ERROR_SIZE];
} podman;

/* ---- podman-api.c ---- */

typedef struct api_buf {
    char *data; /* NUL-terminated */
    size_t len, cap;
} api_buf;
int api_buf_append(api_buf *b, const void *data, size_t len);
void api_buf_free(api_buf *b);

/* Streaming body consumer: return 0 to go on, nonzero to stop the transfer (not an error). */
typedef int (*api_sink)(void *userdata, const char *data, size_t len);

typedef struct api_request {
    const char *method; /* GET POST PUT DELETE HEAD */
    const char *path;   /* below PODMAN_API, query included, already escaped */
    const char *json;   /* request body, or NULL */
    int upload_fd;      /* PUT a stream read from this fd (chunked); -1 for none */
    int64_t timeout_ms; /* 0: the state's default; < 0: none */
    api_sink sink;      /* when set, 2xx bodies stream here instead of into the response */
    void *sink_data;
} api_request;
#define API_REQUEST_INIT                                                                           \
    {                                                                                              \
        .upload_fd = -1                                                                            \
    }

typedef struct api_response {
    long status;
    api_buf body;
    char *path_stat; /* X-Docker-Container-Path-Stat, base64 JSON (HEAD …/archive) */
    bool stopped;    /* the sink asked to stop */
} api_response;
void api_response_done(api_response *rs);
static inline void api_response_donep(api_response *rs)
{
    api_response_done(rs);
}
#define _cleanup_response_ _cleanup_(api_response_donep)

/* One call. Returns 0 whenever an HTTP response arrived (any status, check rs->status);
 * a negative errno when the service could not be reached or stopped answering. A refused
 * connection triggers rediscovery (and a private-service restart) and one retry. */
int api_call(podman *p, const api_request *rq, api_response *rs, terok_error *err);
/* An HTTP error as errno + "<what we tried>: <podman's own message>". */
int api_error(const api_response *rs, terok_error *err, const char *fmt, ...) _printf_(3, 4);
/* Errno for a libpod error response (404 -> -ENOENT, name in use -> -EEXIST, ...). */
int api_status_errno(const api_response *rs);
/* Parse the body as JSON; NULL when it is not JSON. Caller puts it. */
json_object *api_json(const api_response *rs);
/* URL-escape a query value (curl_easy_escape); NULL on OOM. */
char *api_escape(podman *p, const char *s);
/* Refs we put in a URL path: container names/ids and image references. */
bool ref_is_valid(const char *ref);
bool image_ref_is_valid(const char *ref);

/* ---- podman-service.c ---- */

/* Find (or start) a service and check its API version. Sets p->socket, p->api_version. */
int service_connect(podman *p, terok_error *err);
/* GET _ping on `sock` through the state's handle; fills *ret_version on success. */
int service_ping(podman *p, const char *sock, char **ret_version, terok_error *err);

/* Podman 4.3 (containers/storage before 1.45) can deadlock its storage locks for good when a
 * create with userns=auto runs beside another storage operation: CreateContainer holds
 * layers.lock and getAutoUserNS then takes storage.lock, while mounts, removals and copies take
 * them the other way round (podman#16062, fixed by containers/storage#1387). Seen here with 10
 * concurrent `run -d`: every later call, `podman ps` included, hung until the service was killed.
 * Create, start, remove, copy_in and attached starts therefore hold this lock file
 * (<runtime>/runtime-podman/storage.lock) among our clients; waits, inspects and the rest stay
 * concurrent. Returns an fd to close, or -EBADF (best effort, never an error). */
int storage_lock(podman *p);
int mkdir_p(const char *path, mode_t mode);

/* ---- podman-spec.c ---- */

/* Map a run spec onto libpod's create body (SpecGenerator JSON). */
int spec_to_json(const terok_run_spec *spec, char **ret_json, terok_error *err);

/* ---- podman-stream.c ---- */

/* Docker/libpod multiplexed stream: 8-byte header [stream,0,0,0,len BE32] then payload. */
typedef int (*demux_emit)(void *userdata, int stream, const void *data, size_t len);
typedef struct demux {
    unsigned char hdr[8];
    size_t hdr_len;
    uint32_t remaining;
    int stream;
    demux_emit emit;
    void *userdata;
} demux;
/* Returns 0, or the emitter's nonzero value when it asked to stop. */
int demux_feed(demux *d, const void *data, size_t len);

/* Newline-delimited records (events). */
typedef int (*line_emit)(void *userdata, char *line, size_t len);
typedef struct linebuf {
    api_buf buf;
    line_emit emit;
    void *userdata;
} linebuf;
int lines_feed(linebuf *lb, const char *data, size_t len); /* 0, emitter's value, or -ENOMEM */
void linebuf_free(linebuf *lb);

/* Write everything to fd (blocking or not); -errno on failure. */
int write_all(int fd, const void *data, size_t len);

/* ---- podman-info.c ---- */

int info_from_inspect(json_object *j, terok_container_cb cb, void *userdata);
int info_from_list_entry(json_object *j, terok_container_cb cb, void *userdata);
int image_info_emit(json_object *j, terok_image_cb cb, void *userdata);
int event_emit(json_object *j, terok_event_cb cb, void *userdata);
/* RFC 3339 (as Go prints it) to unix seconds; 0 for the zero time or garbage. */
int64_t rfc3339_to_unix(const char *s);
const char *json_str(json_object *o, const char *key); /* borrowed, NULL when absent */
/* "K=V" list from a JSON object of strings; caller frees with strv_free. */
char **json_map_to_strv(json_object *o);

/* ---- podman-exec.c, podman-copy.c ---- */

int podman_exec(podman *p, const char *ref, const terok_exec_spec *spec, int *ret_exit_code,
                terok_error *err);
/* ctl START_ATTACHED: attach (initialising the container), start, pump until the stream ends. */
int podman_start_attached(podman *p, terok_runtime_ctl_attach *a, terok_error *err);
/* POST …/start under the storage lock (ref already checked). */
int podman_start(podman *p, const char *ref, terok_error *err);
int podman_copy_in(podman *p, const char *ref, const char *host_path, const char *container_path,
                   terok_error *err);

/* A struct the host handed in: at least our 1.0 size, and nothing set past what we know. */
int check_struct(const void *s, size_t given, size_t known, const char *what, terok_error *err);
