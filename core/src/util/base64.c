/* SPDX-License-Identifier: Apache-2.0 */
/* util/base64.c: see util/base64.h. */
#include <errno.h>
#include <sodium.h>

#include "util/base64.h"

int base64_decode(uint8_t *out, size_t cap, const char *in, size_t len, const char *ignore,
                  size_t *ret_len, const char **ret_end)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)in[i] >= 0x80)
            return -EINVAL;
    return sodium_base642bin(out, cap, in, len, ignore, ret_len, ret_end,
                             sodium_base64_VARIANT_ORIGINAL) == 0
               ? 0
               : -EINVAL;
}
