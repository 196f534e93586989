/* SPDX-License-Identifier: Apache-2.0 */
/* broker/scrub.h: masking the credential where an upstream's answer repeats it (route option
 * scrub-responses; docs/vault.md, "Answers that repeat the credential"). */
#pragma once

#include <stddef.h>
#include <string.h>

#include "util/macro.h"

#define SCRUB_MIN 8 /* shorter credentials are not looked for (they would mask innocent bytes) */
/* A kept tail goes out after this long without more bytes: a stream that pauses after a piece
 * ending in the credential's first bytes is delayed, not stalled. */
#define SCRUB_HOLD_MS 2000

/* Overwrite every occurrence of s in [p, p+n) with '*' (the same length, so a Content-Length
 * holds) and return the length of the longest tail of the range that begins s: those bytes wait
 * for the next piece, which shows whether they are the credential. Anything else passes at once,
 * so an SSE event is not held back unless it ends in the credential's first bytes. The caller
 * searches the next piece together with the bytes it kept. */
static inline size_t scrub_span(char *p, size_t n, const char *s, size_t sl)
{
    char *at = p, *end = p + n, *hit;

    if (sl == 0)
        return 0;
    while ((hit = memmem(at, (size_t)(end - at), s, sl))) {
        memset(hit, '*', sl);
        at = hit + sl;
    }
    for (size_t k = MIN(sl - 1, n); k > 0; k--)
        if (end[-(ptrdiff_t)k] == s[0] && memcmp(end - k, s, k) == 0)
            return k;
    return 0;
}
