/* SPDX-License-Identifier: Apache-2.0 */
/* podman-stream.c: decoding what libpod streams back: the multiplexed stdout/stderr framing of
 * logs and non-TTY exec, and newline-delimited JSON records (events). Pure byte handling. */
#include <poll.h>

#include "podman.h"

int demux_feed(demux *d, const void *data, size_t len)
{
    const unsigned char *p = data;

    while (len) {
        if (d->remaining == 0) {
            size_t take = MIN(len, sizeof d->hdr - d->hdr_len);

            memcpy(d->hdr + d->hdr_len, p, take);
            d->hdr_len += take;
            p += take;
            len -= take;
            if (d->hdr_len < sizeof d->hdr)
                return 0;
            d->hdr_len = 0;
            /* stream 0 is stdin echoed back (never asked for); treat it as stdout */
            d->stream = d->hdr[0] == 2 ? 2 : 1;
            d->remaining = (uint32_t)d->hdr[4] << 24 | (uint32_t)d->hdr[5] << 16 |
                           (uint32_t)d->hdr[6] << 8 | d->hdr[7];
            continue;
        }
        size_t take = MIN(len, (size_t)d->remaining);
        int r = d->emit(d->userdata, d->stream, p, take);

        d->remaining -= (uint32_t)take;
        p += take;
        len -= take;
        if (r)
            return r;
    }
    return 0;
}

int lines_feed(linebuf *lb, const char *data, size_t len)
{
    if (api_buf_append(&lb->buf, data, len) < 0)
        return -ENOMEM;
    for (;;) {
        char *nl = memchr(lb->buf.data, '\n', lb->buf.len);
        size_t n;
        int r;

        if (!nl)
            return 0;
        n = (size_t)(nl - lb->buf.data);
        *nl = 0;
        r = n ? lb->emit(lb->userdata, lb->buf.data, n) : 0;
        memmove(lb->buf.data, nl + 1, lb->buf.len - n - 1);
        lb->buf.len -= n + 1;
        lb->buf.data[lb->buf.len] = 0;
        if (r)
            return r;
    }
}

void linebuf_free(linebuf *lb)
{
    api_buf_free(&lb->buf);
}

int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                    return negative_errno();
                continue;
            }
            return negative_errno();
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
