/* SPDX-License-Identifier: Apache-2.0 */
/* broker/curl-loop.h: a libcurl multi handle driven by the daemon's evloop (socket and timer
 * callbacks), so upstream transfers share the loop with libmicrohttpd. Never prints. */
#pragma once

#include <curl/curl.h>

#include "daemon/evloop.h"

typedef struct curl_loop curl_loop;

/* Called once per finished transfer (the easy handle is already removed from the multi). */
typedef void (*curl_loop_done_cb)(CURL *easy, CURLcode result, void *userdata);

int curl_loop_new(evloop *l, curl_loop **ret);
curl_loop *curl_loop_free(curl_loop *c);
/* Start a transfer; `userdata` is handed to done. */
int curl_loop_add(curl_loop *c, CURL *easy, curl_loop_done_cb done, void *userdata);
/* A CONNECT_ONLY transfer: done is called once connected, and on success the handle stays in
 * the multi (libcurl's curl_easy_send/recv need that) until curl_loop_remove(), which closes the
 * connection. */
int curl_loop_add_connect_only(curl_loop *c, CURL *easy, curl_loop_done_cb done, void *userdata);
/* The caller watches this socket of a connect-only transfer from now on (we drop our watch and
 * ignore libcurl's wishes for it) until libcurl closes it. */
void curl_loop_take_socket(curl_loop *c, int fd);
/* Abort a transfer without calling done. */
void curl_loop_remove(curl_loop *c, CURL *easy);
/* Drive curl after something outside a curl callback changed (e.g. an unpause). */
void curl_loop_kick(curl_loop *c);
CURLM *curl_loop_multi(curl_loop *c);
