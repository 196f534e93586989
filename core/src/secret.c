/* SPDX-License-Identifier: Apache-2.0 */
/* secret.c: locked, wiped secret buffers. Must never log or format a value. */
#include <sodium.h>
#include <sys/mman.h>

#include "secret.h"

struct terok_secret {
    size_t len;
    int locked;
    unsigned char data[]; /* len bytes plus a NUL so text secrets are C strings */
};

int terok_secret_new(const void *data, size_t len, terok_secret **ret)
{
    terok_secret *s;

    if (!ret || (!data && len))
        return -EINVAL;
    if (len > (1u << 24))
        return -E2BIG;
    s = calloc(1, sizeof(*s) + len + 1);
    if (!s)
        return -ENOMEM;
    s->len = len;
    s->locked = mlock(s, sizeof(*s) + len + 1) == 0;
    if (len)
        memcpy(s->data, data, len);
    *ret = s;
    return 0;
}

terok_secret *terok_secret_free(terok_secret *s)
{
    if (!s)
        return NULL;
    sodium_memzero(s->data, s->len + 1);
    if (s->locked)
        munlock(s, sizeof(*s) + s->len + 1);
    free(s);
    return NULL;
}

int terok_secret_peek(const terok_secret *s, const void **ret_data, size_t *ret_len)
{
    if (!s || !ret_data || !ret_len)
        return -EINVAL;
    *ret_data = s->data;
    *ret_len = s->len;
    return 0;
}

int terok_secret_equals(const terok_secret *s, const void *data, size_t len)
{
    if (!s || s->len != len)
        return 0;
    return sodium_memcmp(s->data, data, len) == 0;
}
