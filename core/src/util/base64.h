/* SPDX-License-Identifier: Apache-2.0 */
/* util/base64.h: standard base64 decoding through libsodium, refusing the text its decoder
 * would misread. Core and plugins compile it (plugins take the file, not the core). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* sodium_base642bin() with sodium_base64_VARIANT_ORIGINAL, after refusing any byte >= 0x80:
 * libsodium 1.0.18 reads each as '/' (its constant-time lookup takes a negative char for a
 * valid one). ignore and ret_end as libsodium's (NULL: none / the whole input must decode).
 * 0, or -EINVAL. */
int base64_decode(uint8_t *out, size_t cap, const char *in, size_t len, const char *ignore,
                  size_t *ret_len, const char **ret_end);
