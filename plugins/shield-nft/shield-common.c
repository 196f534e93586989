/* SPDX-License-Identifier: Apache-2.0 */
/* shield-common.c: quoting, error wrapping, clocks, bounded I/O and a string builder. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "shield-common.h"

const char *value_quote(const char *s, char *buf, size_t n)
{
    size_t o = 0, i;

    if (!s) {
        snprintf(buf, n, "(null)");
        return buf;
    }
    for (i = 0; s[i] && o + 8 < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (i == 80) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\' && c != '"')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, n - o, "\\x%02x", c);
    }
    buf[o] = '\0';
    return buf;
}

int err_prefix(terok_error *err, const char *fmt, ...)
{
    char ctx[512];
    va_list ap;

    if (!err)
        return -EIO;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    if (err->code >= 0)
        return terok_perr(err, -EIO, "%s", ctx);
    _cleanup_free_ char *inner = err->message ? strdup(err->message) : NULL;
    return terok_perr(err, err->code, "%s: %s", ctx, inner ? inner : strerror(-err->code));
}

static size_t put_u8(char *p, unsigned v)
{
    size_t n = 0;

    if (v >= 100)
        p[n++] = (char)('0' + v / 100);
    if (v >= 10)
        p[n++] = (char)('0' + v / 10 % 10);
    p[n++] = (char)('0' + v % 10);
    return n;
}

size_t fmt_addr(bool v6, const struct in6_addr *a, char *buf)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *b = a->s6_addr;
    int best = -1, best_len = 0;
    size_t n = 0;

    if (!v6) {
        for (int i = 0; i < 4; i++) {
            if (i)
                buf[n++] = '.';
            n += put_u8(buf + n, b[i]);
        }
        buf[n] = '\0';
        return n;
    }
    /* inet_ntop prints IPv4-mapped and -compatible addresses in dotted form: leave those to it. */
    if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a)) {
        inet_ntop(AF_INET6, a, buf, ADDR_BUF);
        return strlen(buf);
    }
    for (int i = 0; i < 8;) { /* longest run of zero groups, at least two (RFC 5952) */
        int j = i;

        while (j < 8 && b[2 * j] == 0 && b[2 * j + 1] == 0)
            j++;
        if (j - i > best_len && j - i >= 2) {
            best = i;
            best_len = j - i;
        }
        i = j > i ? j : i + 1;
    }
    for (int i = 0; i < 8; i++) {
        unsigned g = (unsigned)(b[2 * i] << 8 | b[2 * i + 1]);
        bool lead = true;

        if (i == best) {
            buf[n++] = ':';
            buf[n++] = ':';
            i += best_len - 1;
            continue;
        }
        if (i > 0 && buf[n - 1] != ':')
            buf[n++] = ':';
        for (int sh = 12; sh >= 0; sh -= 4) {
            unsigned d = (g >> sh) & 0xf;

            if (lead && d == 0 && sh > 0)
                continue;
            lead = false;
            buf[n++] = hex[d];
        }
    }
    buf[n] = '\0';
    return n;
}

int64_t now_realtime_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t now_monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int read_fd_all(int fd, size_t max, char **ret_buf, size_t *ret_len)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0, cap = 0;

    for (;;) {
        if (cap - len < 4097) {
            size_t ncap = cap ? cap * 2 : 16384;
            char *nb;

            if (ncap > max + 4097)
                ncap = max + 4097;
            if (ncap - len < 2)
                return -EFBIG;
            nb = realloc(buf, ncap);
            if (!nb)
                return -ENOMEM;
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return negative_errno();
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > max)
            return -EFBIG;
    }
    if (!buf && !(buf = malloc(1)))
        return -ENOMEM;
    buf[len] = '\0';
    *ret_buf = take_ptr(buf);
    if (ret_len)
        *ret_len = len;
    return 0;
}

int write_fd_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return negative_errno();
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int sb_grow(strbuf *b, size_t need)
{
    size_t ncap;
    char *ns;

    if (b->oom)
        return -ENOMEM;
    if (b->len + need + 1 <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : 1024;
    while (ncap < b->len + need + 1)
        ncap *= 2;
    ns = realloc(b->s, ncap);
    if (!ns) {
        b->oom = 1;
        return -ENOMEM;
    }
    b->s = ns;
    b->cap = ncap;
    return 0;
}

void sb_putn(strbuf *b, const char *s, size_t n)
{
    if (sb_grow(b, n) < 0)
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void sb_puts(strbuf *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

void sb_printf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (sb_grow(b, 64) < 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        if (sb_grow(b, (size_t)n) < 0)
            return;
        va_start(ap, fmt);
        vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

int sb_done(strbuf *b, char **ret)
{
    if (b->oom || sb_grow(b, 0) < 0) {
        sb_free(b);
        return -ENOMEM;
    }
    b->s[b->len] = '\0';
    *ret = b->s;
    b->s = NULL;
    b->len = b->cap = 0;
    return 0;
}

void sb_free(strbuf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}
