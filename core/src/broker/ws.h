/* SPDX-License-Identifier: Apache-2.0 */
/* broker/ws.h: WebSocket passthrough for the vault broker (docs/architecture.md, "WebSocket").
 *
 * The upstream side of one upgraded request: a libcurl CONNECT_ONLY connection (TLS and the
 * test CA as for any route, on the proxy's curl loop), the handshake request written on it, the
 * answer's head parsed with http-parser; after a 101 the client socket MHD hands over is joined
 * to it and bytes are pumped both ways through two bounded buffers, with backpressure, until
 * either side closes or the tunnel has been idle for the route's websocket-idle. Frames are not
 * rewritten: the credential travels in the handshake only; with ws_conn_scrub, bytes from the
 * upstream that repeat it are masked on their way to the client, also when two reads split it
 * (the frames' lengths tell how long a tail may wait, broker/ws-frames.h; a credential split over
 * two frames is not seen). Never prints, never logs a header value. */
#pragma once

#include <curl/curl.h>
#include <microhttpd.h>
#include <stdint.h>

#include "broker/curl-loop.h"
#include "daemon/evloop.h"

#define WS_HEAD_MAX (16 * 1024)  /* the upstream's answer head, at most */
#define WS_HEAD_TIMEOUT_MS 30000 /* from the request sent to the answer's end of head */

typedef struct ws_conn ws_conn;

/* The upstream's answer to the handshake. status: its status code (101 to go on), or 0 when
 * there is no answer; headers: its end-to-end "Name: value" lines (NULL-terminated, borrowed for
 * the call); error: NULL, or why there is no usable answer (no secret in it). */
typedef void (*ws_answer_cb)(void *userdata, int status, char *const *headers, const char *error);

/* Why a tunnel ended, and what went through it. */
typedef struct ws_end {
    const char *outcome; /* "ok" (a side closed), "idle-timeout", "tunnel-error" */
    uint64_t bytes_up;   /* client -> upstream, after the handshake */
    uint64_t bytes_down; /* upstream -> client, after the handshake */
} ws_end;
typedef void (*ws_closed_cb)(void *userdata, const ws_end *end);

/* Connect to url (http or https) and send "GET <path> HTTP/1.1", Host, then headers (lines
 * "Name: value", each checked for CR/LF/NUL; wiped and freed by us) and the end of head.
 * answer is called once, from the loop, unless the connection is freed first. */
int ws_conn_start(evloop *l, curl_loop *c, const char *url, struct curl_slist *headers,
                  const char *ca_file, ws_answer_cb answer, void *userdata, ws_conn **ret);
/* Mask secret (copied; wiped when freed) wherever the upstream's bytes repeat it, from the
 * bytes that come with the answer's head on (broker/scrub.h). Call right after ws_conn_start. */
int ws_conn_scrub(ws_conn *w, const char *secret, size_t len);
/* After a 101 was passed on: MHD's upgrade handler hands over the client's socket (sock, urh)
 * and the bytes it read past the request (extra_in, copied). The tunnel closes after idle_ms
 * without a byte either way. closed is called once, when the tunnel has ended, just before the
 * client socket is given back to MHD to close. */
int ws_conn_attach(ws_conn *w, int sock, struct MHD_UpgradeResponseHandle *urh,
                   const char *extra_in, size_t extra_in_size, int64_t idle_ms, ws_closed_cb closed,
                   void *userdata);
/* Close both sides now (a tunnel still open ends as "tunnel-error" without calling closed) and
 * free. */
ws_conn *ws_conn_free(ws_conn *w);
