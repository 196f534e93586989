/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ws-bench: both ends of a WebSocket tunnel for bench/broker. The upstream's bytes are binary
 * frames of 64 KiB (the broker reads their lengths to know where frames end,
 * broker/ws-frames.h); the client's are raw bytes (the broker does not look at them).
 *
 *   ws-bench sink PORTFILE
 *       Listens on 127.0.0.1 (port written to PORTFILE), one connection at a time: reads the
 *       handshake's head, answers 101; then for a target ending in "/up" reads and discards
 *       until EOF, for "/down/N" writes N bytes (N a multiple of 64 KiB: whole frames) and closes.
 *       A POST or PUT to a target ending in "/upload" is bench/broker's upload sink instead:
 *       the whole body is read (framed by http-parser, 256 KiB reads) before the 200, so every
 *       path under test has to carry all of it (an upstream that answers first, as nginx's
 *       `return 200` does, lets a proxy stop forwarding and discard the rest).
 *   ws-bench up|down HOST PORT TARGET BYTES [HEADER]
 *       Connects (TCP), sends "GET TARGET" with the upgrade headers (and HEADER, e.g. the
 *       phantom token), reads the 101; "up" sends BYTES and half-closes, then waits for the
 *       close; "down" reads until EOF and checks it got BYTES. Prints the seconds from the
 *       first byte of the handshake to the close.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <inttypes.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

static char buf[CHUNK];

static int fail(const char *what)
{
    fprintf(stderr, "ws-bench: %s: %s\n", what, strerror(errno));
    return 1;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Read up to the end of an HTTP head into head (NUL-terminated); returns its length, or -1. */
static ssize_t read_head(int fd, char *head, size_t cap)
{
    size_t off = 0;

    while (off < cap - 1) {
        ssize_t k = read(fd, head + off, 1); /* byte by byte: nothing past the head is taken */
        if (k <= 0)
            return -1;
        off++;
        head[off] = 0;
        if (off >= 4 && memcmp(head + off - 4, "\r\n\r\n", 4) == 0)
            return (ssize_t)off;
    }
    return -1;
}

static int on_complete(http_parser *p)
{
    *(bool *)p->data = true;
    return 0;
}

/* The rest of an upload whose head is in head: read until http-parser has the whole message,
 * then answer. */
static void upload(int c, const char *head, size_t head_len)
{
    static const char ok[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
    static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n";
    http_parser_settings settings = {.on_message_complete = on_complete};
    http_parser p;
    bool done = false;
    ssize_t k;

    http_parser_init(&p, HTTP_REQUEST);
    p.data = &done;
    http_parser_execute(&p, &settings, head, head_len);
    while (!done && HTTP_PARSER_ERRNO(&p) == HPE_OK && (k = read(c, buf, sizeof buf)) > 0)
        http_parser_execute(&p, &settings, buf, (size_t)k);
    if (done)
        (void)write_all(c, ok, sizeof ok - 1);
    else
        (void)write_all(c, bad, sizeof bad - 1);
}

static int sink(const char *portfile)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FILE *f;

    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 8) < 0 ||
        getsockname(l, (struct sockaddr *)&sa, &sl) < 0)
        return fail("listen");
    f = fopen(portfile, "w");
    if (!f)
        return fail(portfile);
    fprintf(f, "%u\n", ntohs(sa.sin_port));
    fclose(f);
    for (;;) {
        static const char ok[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Accept: bench\r\n\r\n";
        char head[8192], target[512] = "";
        int c = accept(l, NULL, NULL);

        if (c < 0)
            continue;
        ssize_t hl = read_head(c, head, sizeof head);
        char method[8] = "";
        if (hl > 0 && sscanf(head, "%7s %511s", method, target) == 2 &&
            (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) && strlen(target) >= 7 &&
            strcmp(target + strlen(target) - 7, "/upload") == 0) {
            upload(c, head, (size_t)hl);
            close(c);
            continue;
        }
        if (hl < 0 || strcmp(method, "GET") != 0 || write_all(c, ok, sizeof ok - 1) < 0) {
            close(c);
            continue;
        }
        size_t tl = strlen(target);
        if (tl >= 3 && strcmp(target + tl - 3, "/up") == 0) {
            while (read(c, buf, sizeof buf) > 0)
                ;
        } else {
            const char *n = strstr(target, "/down/");
            uint64_t left = n ? strtoull(n + 6, NULL, 10) : 0;
            /* frames of 64 KiB: a 4-byte header (FIN + binary, 16-bit length 65532), payload */
            memset(buf, 'x', sizeof buf);
            for (size_t at = 0; at < sizeof buf; at += 65536)
                memcpy(buf + at, "\x82\x7e\xff\xfc", 4);
            while (left > 0) {
                size_t k = left < sizeof buf ? (size_t)left : sizeof buf;
                if (write_all(c, buf, k) < 0)
                    break;
                left -= k;
            }
        }
        close(c);
    }
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int client(int up, const char *host, int port, const char *target, uint64_t bytes,
                  const char *header)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[2048], head[8192];
    uint64_t got = 0;
    double t0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int n;
    ssize_t k;

    if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return fail("address");
    n = snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "%s%s\r\n",
                 target, host, header ? header : "", header ? "\r\n" : "");
    t0 = now_s();
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        return fail("connect");
    if (write_all(fd, req, (size_t)n) < 0 || read_head(fd, head, sizeof head) < 0)
        return fail("handshake");
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "ws-bench: no switch: %.80s\n", head);
        return 1;
    }
    if (up) {
        memset(buf, 'y', sizeof buf);
        for (uint64_t left = bytes; left > 0;) {
            size_t c = left < sizeof buf ? (size_t)left : sizeof buf;
            if (write_all(fd, buf, c) < 0)
                return fail("send");
            left -= c;
        }
        shutdown(fd, SHUT_WR);
        while ((k = read(fd, buf, sizeof buf)) > 0)
            ;
    } else {
        while ((k = read(fd, buf, sizeof buf)) > 0)
            got += (uint64_t)k;
        if (got != bytes) {
            fprintf(stderr, "ws-bench: got %" PRIu64 " of %" PRIu64 " bytes\n", got, bytes);
            return 1;
        }
    }
    printf("%.3f\n", now_s() - t0);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    char *end1 = NULL, *end2 = NULL;
    long port;
    unsigned long long bytes;

    if (argc == 3 && strcmp(argv[1], "sink") == 0)
        return sink(argv[2]);
    if ((argc == 6 || argc == 7) && (strcmp(argv[1], "up") == 0 || strcmp(argv[1], "down") == 0)) {
        errno = 0;
        port = strtol(argv[3], &end1, 10);
        bytes = strtoull(argv[5], &end2, 10);
        if (errno || *end1 || *end2 || port <= 0 || port > 65535) {
            fprintf(stderr, "ws-bench: bad port '%s' or size '%s'\n", argv[3], argv[5]);
            return 2;
        }
        return client(strcmp(argv[1], "up") == 0, argv[2], (int)port, argv[4], bytes,
                      argc == 7 ? argv[6] : NULL);
    }
    fprintf(stderr, "usage: ws-bench sink PORTFILE | ws-bench up|down HOST PORT TARGET BYTES "
                    "[HEADER]\n");
    return 2;
}
