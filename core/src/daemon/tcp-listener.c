/* SPDX-License-Identifier: Apache-2.0 */
/* daemon/tcp-listener.c: `--tcp 127.0.0.1:PORT=CONTAINER` for the daemons' serve commands. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon/tcp-listener.h"
#include "paths.h"

int tcp_listener_parse(const char *s, tcp_listener *ret, char **owned)
{
    char *copy = strdup(s), *colon, *eq;
    int64_t port;

    if (!copy)
        return -ENOMEM;
    colon = strrchr(copy, ':');
    eq = colon ? strchr(colon, '=') : NULL;
    if (!colon || !eq || colon == copy) {
        free(copy);
        return -EINVAL;
    }
    *colon = 0;
    *eq = 0;
    if (parse_int64(colon + 1, 0, 65535, &port) < 0 || !container_name_is_valid(eq + 1) ||
        strcmp(copy, "127.0.0.1") != 0) {
        free(copy);
        return -EINVAL;
    }
    *ret = (tcp_listener){copy, (uint16_t)port, eq + 1};
    *owned = copy;
    return 0;
}
