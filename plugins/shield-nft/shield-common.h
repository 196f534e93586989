/* SPDX-License-Identifier: Apache-2.0 */
/* shield-common.h: small helpers shared by the shield-nft sources: quoting untrusted values for
 * messages, wrapping errors with context, clocks, bounded reads. No policy, no nft here. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "terok/plugin.h"
#include "util/macro.h"

/* util/macro.h's TAKE_PTR/TAKE_FD are GNU statement expressions, which -Wpedantic
 * (warning_level=3) rejects unless marked __extension__; these wrappers do that. */
#define take_ptr(p) (__extension__ TAKE_PTR(p))
#define take_fd(fd) (__extension__ TAKE_FD(fd))

/* Render an untrusted value for a message: printable ASCII kept, anything else (and quotes,
 * backslashes) as \xNN, cut at 80 characters with "...". buf of 4*80+8 always suffices. */
#define QUOTE_BUF 336
const char *value_quote(const char *s, char *buf, size_t n);
#define Q(s) value_quote((s), (char[QUOTE_BUF]){0}, QUOTE_BUF)

/* Prepend "ctx: " to the message already in err; returns err->code (or -EIO). */
int err_prefix(terok_error *err, const char *fmt, ...) _printf_(2, 3);

/* inet_ntop, without its printf machinery (hot when rendering 10,000 elements). buf holds at
 * least INET6_ADDRSTRLEN bytes; returns the length. IPv6 follows RFC 5952 like inet_ntop. */
#define ADDR_BUF 48
size_t fmt_addr(bool v6, const struct in6_addr *a, char *buf);

int64_t now_realtime_ms(void);
int64_t now_monotonic_ns(void);

/* Read all of fd (up to max bytes, else -EFBIG) into a NUL-terminated heap buffer. */
int read_fd_all(int fd, size_t max, char **ret_buf, size_t *ret_len);
/* Write all of buf; retries on EINTR and short writes. */
int write_fd_all(int fd, const void *buf, size_t len);

/* Growable string buffer for rendering. On allocation failure it latches `oom` and further
 * appends are no-ops; check sb_done() once at the end. */
typedef struct strbuf {
    char *s;
    size_t len, cap;
    int oom;
} strbuf;
void sb_putn(strbuf *b, const char *s, size_t n);
void sb_puts(strbuf *b, const char *s);
void sb_printf(strbuf *b, const char *fmt, ...) _printf_(2, 3);
/* Returns 0 and hands over the string (never NULL), or -ENOMEM. */
int sb_done(strbuf *b, char **ret);
void sb_free(strbuf *b);
