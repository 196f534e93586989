/* SPDX-License-Identifier: Apache-2.0 */
/* daemon/tcp-listener.h: a daemon's optional loopback TCP listener (tests and benchmarks), every
 * request on it counting as one container: `--tcp 127.0.0.1:PORT=CONTAINER`. */
#pragma once

#include <stdint.h>

typedef struct tcp_listener {
    const char *address; /* "127.0.0.1" */
    uint16_t port;       /* 0: any */
    const char *container;
} tcp_listener;

/* Parse "127.0.0.1:PORT=CONTAINER" (loopback only, a valid container name). *owned is the
 * allocation the fields point into (free it when done). -EINVAL on a bad value. */
int tcp_listener_parse(const char *s, tcp_listener *ret, char **owned);
