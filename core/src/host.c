/* SPDX-License-Identifier: Apache-2.0 */
/* host.c: the terok_host table, the only way a plugin reaches the host (DESIGN §3). Logging goes
 * to the operator's log with a "[<kind>-<name>] " prefix; errors are formatted into the caller's
 * terok_error; memory and secrets come from the host's allocators. Never prints by itself. */
#include <stdarg.h>
#include <stdio.h>

#include "config.h"
#include "error.h"
#include "loader.h"
#include "log.h"
#include "secret.h"

static void host_logv(terok_plugin *self, int priority, const char *fmt, va_list ap)
{
    char buf[2048];
    size_t n;

    if (!fmt)
        return;
    if (priority < LOG_EMERG)
        priority = LOG_EMERG;
    if (priority > LOG_DEBUG)
        priority = LOG_DEBUG;
    if (priority > log_get_max_level())
        return;
    vsnprintf(buf, sizeof buf, fmt, ap);
    /* One line per call: drop trailing newlines, and keep control characters (which may come
     * from container-controlled data) out of the operator's terminal. */
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    for (char *c = buf; *c; c++)
        if ((unsigned char)*c < 0x20 && *c != '\t')
            *c = '?';
    log_full(priority, "[%s] %s", self && self->label ? self->label : "plugin", buf);
}

static int host_errorv(terok_plugin *self, terok_error *err, int code, const char *fmt, va_list ap)
{
    if (!fmt)
        return terok_error_set(err, code, "%s", "unknown error");
    return terok_error_setv(err, code, fmt, ap);
}

static void *host_alloc(size_t n)
{
    return malloc(n ? n : 1);
}

static void host_free(void *p)
{
    free(p);
}

static char *host_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int host_secret_new(const void *data, size_t len, terok_secret **ret_secret)
{
    if ((!data && len) || !ret_secret)
        return -EINVAL;
    return terok_secret_new(data, len, ret_secret);
}

static void host_secret_free(terok_secret *s)
{
    terok_secret_free(s);
}

static int host_secret_peek(const terok_secret *s, const void **ret_data, size_t *ret_len)
{
    if (!s || !ret_data || !ret_len)
        return -EINVAL;
    return terok_secret_peek(s, ret_data, ret_len);
}

static int host_config_get(const terok_config_section *sec, const char *key, const char **ret_value)
{
    if (!key || !ret_value)
        return -EINVAL;
    return config_section_get(sec, key, ret_value);
}

static int host_config_get_bool(const terok_config_section *sec, const char *key, int *ret_value)
{
    if (!key || !ret_value)
        return -EINVAL;
    return config_section_get_bool(sec, key, ret_value);
}

static int host_config_get_int(const terok_config_section *sec, const char *key, int64_t *ret_value)
{
    if (!key || !ret_value)
        return -EINVAL;
    return config_section_get_int(sec, key, ret_value);
}

static const char *host_state_dir(terok_plugin *self)
{
    return self ? self->state_dir : NULL;
}

static const char *host_runtime_dir(terok_plugin *self)
{
    return self ? self->runtime_dir : NULL;
}

static const terok_host host = {
    .struct_size = sizeof(terok_host),
    .abi_major = TEROK_PLUGIN_ABI_MAJOR,
    .abi_minor = TEROK_PLUGIN_ABI_MINOR,
    .logv = host_logv,
    .errorv = host_errorv,
    .alloc = host_alloc,
    .free = host_free,
    .strdup = host_strdup,
    .secret_new = host_secret_new,
    .secret_free = host_secret_free,
    .secret_peek = host_secret_peek,
    .config_get = host_config_get,
    .config_get_bool = host_config_get_bool,
    .config_get_int = host_config_get_int,
    .state_dir = host_state_dir,
    .runtime_dir = host_runtime_dir,
};

const terok_host *host_table(void)
{
    return &host;
}
