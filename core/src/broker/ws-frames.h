/* SPDX-License-Identifier: Apache-2.0 */
/* broker/ws-frames.h: where the WebSocket frames of an upstream's byte stream end (RFC 6455
 * §5.2), so that the tunnel holds back a tail that may begin the credential only while the frame
 * it belongs to is incomplete anyway: the client cannot use a part of a frame, so the hold delays
 * nothing it could read (docs/vault.md, "Answers that repeat the credential"). Only the header's
 * lengths are read; payloads are not interpreted, and nothing here decides what reaches anyone. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ws_frames {
    uint8_t head[14];  /* the header of the frame being read: 2 to 14 bytes */
    uint8_t head_len;  /* of it seen */
    uint8_t head_need; /* its size, once its second byte is seen */
    bool in_payload;
    bool lost;     /* a length no frame has (the 64-bit form with its top bit set): no holds */
    uint64_t left; /* payload bytes of the current frame still to come */
    uint64_t seen; /* bytes of the current, incomplete frame seen so far, its header included */
} ws_frames;

/* Feed the next n bytes of the stream. Returns how many of the bytes seen last belong to a frame
 * not yet complete (0: they end at a frame boundary, or the stream is not one of frames). */
static inline uint64_t ws_frames_feed(ws_frames *f, const unsigned char *p, size_t n)
{
    while (n > 0 && !f->lost) {
        if (f->in_payload) {
            uint64_t take = f->left < n ? f->left : n;

            f->left -= take;
            f->seen += take;
            p += take;
            n -= (size_t)take;
            if (f->left == 0) {
                f->in_payload = false;
                f->seen = 0;
            }
            continue;
        }
        f->head[f->head_len++] = *p++;
        n--;
        f->seen++;
        if (f->head_len == 2) {
            uint8_t len7 = f->head[1] & 0x7f;

            f->head_need = (uint8_t)(2 +
                                     (len7 == 126   ? 2
                                      : len7 == 127 ? 8
                                                    : 0) +
                                     ((f->head[1] & 0x80) ? 4 : 0));
        }
        if (f->head_len < 2 || f->head_len < f->head_need)
            continue;
        uint8_t len7 = f->head[1] & 0x7f;
        uint64_t len = len7;

        if (len7 == 126)
            len = (uint64_t)f->head[2] << 8 | f->head[3];
        else if (len7 == 127) {
            len = 0;
            for (int i = 2; i < 10; i++)
                len = len << 8 | f->head[i];
            if (len >> 63) {
                f->lost = true;
                break;
            }
        }
        f->head_len = f->head_need = 0;
        f->left = len;
        f->in_payload = len > 0;
        if (!f->in_payload)
            f->seen = 0;
    }
    return f->lost ? 0 : f->seen;
}
