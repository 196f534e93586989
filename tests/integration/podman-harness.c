/* SPDX-License-Identifier: Apache-2.0 */
/* podman-harness.c: a minimal host for one runtime plugin (see podman-harness.h). */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "podman-harness.h"

struct terok_plugin {
    const char *state_dir;
    const char *runtime_dir;
};

static struct terok_plugin self;
static int log_level = TEROK_LOG_WARNING;

static void h_logv(terok_plugin *p, int priority, const char *fmt, va_list ap)
{
    if (priority > log_level)
        return;
    fputs("[runtime-podman] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

static int h_errorv(terok_plugin *p, terok_error *err, int code, const char *fmt, va_list ap)
{
    return terok_error_setv(err, code, fmt, ap);
}

static char *h_strdup(const char *s)
{
    return strdup(s);
}

static int h_config_get(const terok_config_section *sec, const char *key, const char **ret)
{
    for (const harness_kv *kv = (const harness_kv *)sec; kv && kv->key; kv++)
        if (strcmp(kv->key, key) == 0) {
            *ret = kv->value;
            return 0;
        }
    return -ENOENT;
}

static int h_config_get_bool(const terok_config_section *sec, const char *key, int *ret)
{
    const char *v;
    int r = h_config_get(sec, key, &v);

    if (r < 0)
        return r;
    *ret = strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
    return 0;
}

/* ints, and durations as milliseconds (500ms, 10s, 5m) like the real host */
static int h_config_get_int(const terok_config_section *sec, const char *key, int64_t *ret)
{
    const char *v;
    char *end = NULL;
    long long n;
    int r = h_config_get(sec, key, &v);

    if (r < 0)
        return r;
    n = strtoll(v, &end, 10);
    if (end == v)
        return -EINVAL;
    if (strcmp(end, "s") == 0)
        n *= 1000;
    else if (strcmp(end, "m") == 0)
        n *= 60000;
    else if (*end && strcmp(end, "ms") != 0)
        return -EINVAL;
    *ret = n;
    return 0;
}

static const char *h_state_dir(terok_plugin *p)
{
    return p->state_dir;
}

static const char *h_runtime_dir(terok_plugin *p)
{
    return p->runtime_dir;
}

static const terok_host host = {
    .struct_size = sizeof(terok_host),
    .abi_major = TEROK_PLUGIN_ABI_MAJOR,
    .abi_minor = TEROK_PLUGIN_ABI_MINOR,
    .logv = h_logv,
    .errorv = h_errorv,
    .alloc = malloc,
    .free = free,
    .strdup = h_strdup,
    .config_get = h_config_get,
    .config_get_bool = h_config_get_bool,
    .config_get_int = h_config_get_int,
    .state_dir = h_state_dir,
    .runtime_dir = h_runtime_dir,
};

int harness_load(const char *so_path, const terok_runtime_ops **ret_ops, terok_error *err)
{
    const terok_plugin_desc *desc = NULL;
    terok_plugin_init_fn init;
    void *dl;
    int r;

    dl = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
    if (!dl)
        return terok_error_set(err, -ENOENT, "dlopen '%s': %s", so_path, dlerror());
    /* POSIX guarantees dlsym's object pointer converts to a function pointer */
    *(void **)&init = dlsym(dl, TEROK_PLUGIN_INIT_SYMBOL);
    if (!init)
        return terok_error_set(err, -ENOENT, "'%s' exports no terok_plugin_init", so_path);
    r = init(&self, &host, &desc, err);
    if (r < 0)
        return terok_error_set(err, r, "terok_plugin_init failed: %d", r);
    if (desc->kind != TEROK_PLUGIN_KIND_RUNTIME)
        return terok_error_set(err, -EINVAL, "'%s' is not a runtime plugin", so_path);
    *ret_ops = desc->ops;
    return 0;
}

void harness_set_dirs(const char *state_dir, const char *runtime_dir)
{
    self.state_dir = state_dir;
    self.runtime_dir = runtime_dir;
}

int harness_open(const terok_runtime_ops *ops, const harness_kv *cfg, void **ret_state,
                 terok_error *err)
{
    return ops->open(&self, (const terok_config_section *)cfg, ret_state, err);
}

void harness_free(void *p)
{
    free(p);
}

void harness_set_log_level(int priority)
{
    log_level = priority;
}
