/* SPDX-License-Identifier: Apache-2.0 */
/* error.h: filling and growing terok_error on the host side (crun's crun_error_wrap model).
 * Only the CLI and daemon main loops print an error; everything else returns and fills it. */
#pragma once

#include "terok/error.h"
#include "util/macro.h"

/* Format into *err (may be NULL; an earlier message is replaced) and return code (< 0). */
int terok_error_set(terok_error *err, int code, const char *fmt, ...) _printf_(3, 4);
int terok_error_setv(terok_error *err, int code, const char *fmt, va_list ap) _printf_(3, 0);
/* Prepend context: "ctx: inner". Returns err->code (or -EIO when err is NULL or empty). */
int terok_error_prefix(terok_error *err, const char *fmt, ...) _printf_(2, 3);
void terok_error_clear(terok_error *err);
/* The message, or strerror of the code when none was set. */
const char *terok_error_message(const terok_error *err);
/* Move src into *dst (dst cleared first). */
void terok_error_move(terok_error *dst, terok_error *src);

static inline void terok_error_clearp(terok_error *e)
{
    terok_error_clear(e);
}
#define _cleanup_error_ _cleanup_(terok_error_clearp)
