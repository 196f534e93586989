/* SPDX-License-Identifier: Apache-2.0 */
/* secret.h: terok_secret, the only type that holds a credential value in host memory. It has
 * no printf path, is mlock()ed where the kernel allows and wiped (sodium_memzero) on free. */
#pragma once

#include <stddef.h>

#include "terok/plugin.h"
#include "util/macro.h"

int terok_secret_new(const void *data, size_t len, terok_secret **ret);
terok_secret *terok_secret_free(terok_secret *s);
int terok_secret_peek(const terok_secret *s, const void **ret_data, size_t *ret_len);
/* Constant-time comparison with a byte string. */
int terok_secret_equals(const terok_secret *s, const void *data, size_t len);
DEFINE_TRIVIAL_CLEANUP_FUNC(terok_secret, terok_secret_free)
#define _cleanup_secret_ _cleanup_(terok_secret_freep)
