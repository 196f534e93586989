/* SPDX-License-Identifier: Apache-2.0 */
/* log.c: one line per message on stderr, prefixed with the program name. */
#include <stdarg.h>

#include "log.h"

static int max_level = LOG_NOTICE;
static const char *log_prefix = "terok-sandbox";

void log_set_max_level(int level)
{
    max_level = level;
}

int log_get_max_level(void)
{
    return max_level;
}

void log_set_prefix(const char *prefix)
{
    log_prefix = prefix;
}

int log_level_from_string(const char *s)
{
    static const struct {
        const char *name;
        int level;
    } levels[] = {
        {"err", LOG_ERR},       {"error", LOG_ERR}, {"warning", LOG_WARNING},
        {"notice", LOG_NOTICE}, {"info", LOG_INFO}, {"debug", LOG_DEBUG},
    };

    for (size_t i = 0; i < ELEMENTSOF(levels); i++)
        if (streq(s, levels[i].name))
            return levels[i].level;
    return -EINVAL;
}

void log_fullv(int level, const char *fmt, va_list ap)
{
    char buf[4096];
    int saved = errno;

    if (level > max_level)
        return;
    errno = saved;
    vsnprintf(buf, sizeof buf, fmt, ap);
    fprintf(stderr, "%s: %s%s\n", log_prefix,
            level <= LOG_ERR       ? ""
            : level == LOG_WARNING ? "warning: "
                                   : "",
            buf);
    errno = saved;
}

void log_full(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_fullv(level, fmt, ap);
    va_end(ap);
}

int log_full_errno(int level, int r, const char *fmt, ...)
{
    va_list ap;

    errno = r < 0 ? -r : r;
    va_start(ap, fmt);
    log_fullv(level, fmt, ap);
    va_end(ap);
    return r;
}
