/* SPDX-License-Identifier: Apache-2.0 */
/* error.c: terok_error formatting. Never prints. */
#include <stdarg.h>

#include "error.h"

static char oom_message[] = "out of memory";

static void message_free(terok_error *err)
{
    if (err->message && err->message != oom_message)
        free(err->message);
    err->message = NULL;
}

int terok_error_setv(terok_error *err, int code, const char *fmt, va_list ap)
{
    char *m = NULL;

    if (code >= 0)
        code = -EIO;
    if (!err)
        return code;
    message_free(err);
    err->code = code;
    if (vasprintf(&m, fmt, ap) < 0)
        m = oom_message;
    err->message = m;
    return code;
}

int terok_error_set(terok_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = terok_error_setv(err, code, fmt, ap);
    va_end(ap);
    return r;
}

int terok_error_prefix(terok_error *err, const char *fmt, ...)
{
    char *ctx = NULL, *m = NULL;
    va_list ap;

    if (!err)
        return -EIO;
    if (err->code >= 0)
        err->code = -EIO;
    va_start(ap, fmt);
    if (vasprintf(&ctx, fmt, ap) < 0)
        ctx = NULL;
    va_end(ap);
    if (!ctx)
        return err->code;
    if (asprintf(&m, "%s: %s", ctx, terok_error_message(err)) < 0) {
        free(ctx);
        return err->code;
    }
    free(ctx);
    message_free(err);
    err->message = m;
    return err->code;
}

void terok_error_clear(terok_error *err)
{
    if (!err)
        return;
    message_free(err);
    err->code = 0;
}

const char *terok_error_message(const terok_error *err)
{
    if (!err)
        return "unknown error";
    if (err->message)
        return err->message;
    return strerror(err->code < 0 ? -err->code : EIO);
}

void terok_error_move(terok_error *dst, terok_error *src)
{
    terok_error_clear(dst);
    *dst = *src;
    src->code = 0;
    src->message = NULL;
}
