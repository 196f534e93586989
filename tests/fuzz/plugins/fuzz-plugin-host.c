/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-plugin-host.c: the host table of the plugin fuzz targets (fuzz-plugin-host.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-plugin-host.h"

const char *const *fuzz_host_config;
const char *fuzz_host_dir = "/tmp";
char fuzz_host_last_log[1024];

struct terok_secret {
    size_t len;
    unsigned char data[];
};

static void h_logv(terok_plugin *self, int priority, const char *fmt, va_list ap)
{
    (void)self;
    (void)priority;
    vsnprintf(fuzz_host_last_log, sizeof fuzz_host_last_log, fmt, ap);
}

static int h_errorv(terok_plugin *self, terok_error *err, int code, const char *fmt, va_list ap)
{
    char *m = NULL;

    (void)self;
    if (code >= 0)
        code = -5; /* EIO, as the host does */
    if (vasprintf(&m, fmt, ap) < 0)
        abort();
    if (!err) {
        free(m);
        return code;
    }
    free(err->message);
    err->code = code;
    err->message = m;
    return code;
}

static char *h_strdup(const char *s)
{
    return strdup(s);
}

static int h_secret_new(const void *data, size_t len, terok_secret **ret)
{
    terok_secret *s = malloc(sizeof *s + len + 1);

    if (!s)
        abort();
    s->len = len;
    if (len)
        memcpy(s->data, data, len);
    s->data[len] = 0;
    *ret = s;
    return 0;
}

static void h_secret_free(terok_secret *s)
{
    if (s)
        memset(s->data, 0, s->len);
    free(s);
}

static int h_secret_peek(const terok_secret *s, const void **ret_data, size_t *ret_len)
{
    *ret_data = s->data;
    *ret_len = s->len;
    return 0;
}

static int h_config_get(const terok_config_section *sec, const char *key, const char **ret)
{
    (void)sec;
    for (const char *const *kv = fuzz_host_config; kv && kv[0]; kv += 2)
        if (strcmp(kv[0], key) == 0) {
            *ret = kv[1];
            return 0;
        }
    return -2; /* ENOENT: the default applies */
}

static int h_config_get_bool(const terok_config_section *sec, const char *key, int *ret)
{
    const char *v;
    int r = h_config_get(sec, key, &v);

    if (r == 0)
        *ret = strcmp(v, "true") == 0 || strcmp(v, "yes") == 0;
    return r;
}

static int h_config_get_int(const terok_config_section *sec, const char *key, int64_t *ret)
{
    const char *v;
    int r = h_config_get(sec, key, &v);

    if (r == 0)
        *ret = strtoll(v, NULL, 10);
    return r;
}

static const char *h_dir(terok_plugin *self)
{
    (void)self;
    return fuzz_host_dir;
}

static const terok_host host = {
    .struct_size = sizeof host,
    .abi_major = TEROK_PLUGIN_ABI_MAJOR,
    .abi_minor = TEROK_PLUGIN_ABI_MINOR,
    .logv = h_logv,
    .errorv = h_errorv,
    .alloc = malloc,
    .free = free,
    .strdup = h_strdup,
    .secret_new = h_secret_new,
    .secret_free = h_secret_free,
    .secret_peek = h_secret_peek,
    .config_get = h_config_get,
    .config_get_bool = h_config_get_bool,
    .config_get_int = h_config_get_int,
    .state_dir = h_dir,
    .runtime_dir = h_dir,
};

const void *fuzz_host_init(void)
{
    const terok_plugin_desc *desc = NULL;
    terok_error err = TEROK_ERROR_INIT;

    if (terok_plugin_init(NULL, &host, &desc, &err) < 0 || !desc)
        abort();
    return desc->ops;
}

void fuzz_error_clear(terok_error *err)
{
    free(err->message);
    *err = (terok_error)TEROK_ERROR_INIT;
}

bool fuzz_mem_in(const char *s, const void *p, size_t n)
{
    size_t sl = s ? strlen(s) : 0;

    if (n == 0 || n > sl)
        return false;
    for (size_t i = 0; i + n <= sl; i++)
        if (memcmp(s + i, p, n) == 0)
            return true;
    return false;
}
