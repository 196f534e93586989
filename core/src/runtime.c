/* SPDX-License-Identifier: Apache-2.0 */
/* runtime.c: the core's only door to a runtime plugin. Checks that the op exists and the
 * backend claims the capability it needs, and adds context to every error on the way up. */
#include <stdarg.h>
#include <stdio.h>

#include "error.h"
#include "runtime.h"

static const char *backend(const runtime *rt)
{
    return rt && rt->plugin && rt->plugin->name ? rt->plugin->name : "?";
}

/* Make sure a failure carries a message, then prefix it with context. Keeps `r` even when the
 * caller passed no error record. */
static int wrap(int r, terok_error *err, const char *fmt, ...) _printf_(3, 4);
static int wrap(int r, terok_error *err, const char *fmt, ...)
{
    _cleanup_free_ char *ctx = NULL;
    va_list ap;

    if (r >= 0)
        return r;
    if (!err)
        return r;
    if (err->code >= 0 || !err->message)
        terok_error_set(err, r, "%s", strerror(-r));
    va_start(ap, fmt);
    if (vasprintf(&ctx, fmt, ap) < 0)
        ctx = NULL;
    va_end(ap);
    if (ctx)
        terok_error_prefix(err, "%s", ctx);
    err->code = r;
    return r;
}

#define CHECK_OP(rt, op, cap, err)                                                                 \
    do {                                                                                           \
        int _c = check_op((rt), (rt) && (rt)->plugin && (rt)->plugin->ops.runtime.op, #op, (cap),  \
                          (err));                                                                  \
        if (_c < 0)                                                                                \
            return _c;                                                                             \
    } while (0)

static int check_op(runtime *rt, bool present, const char *op, uint64_t cap, terok_error *err)
{
    if (!rt || !rt->plugin)
        return terok_error_set(err, -EINVAL, "no runtime backend is open");
    if (!present)
        return terok_error_set(err, -EOPNOTSUPP, "runtime backend '%s' does not implement %s",
                               backend(rt), op);
    if (cap && !(rt->plugin->ops.runtime.caps & cap))
        return terok_error_set(err, -EOPNOTSUPP, "runtime backend '%s' does not support %s",
                               backend(rt), op);
    return 0;
}

#define OPS(rt) (&(rt)->plugin->ops.runtime)

int runtime_get(registry *r, uint64_t required_caps, runtime *ret, terok_error *err)
{
    plugin *p = NULL;
    void *state = NULL;
    int k;

    k = registry_get(r, TEROK_PLUGIN_KIND_RUNTIME, required_caps, &p, &state, err);
    if (k < 0)
        return k;
    if (!p)
        return terok_error_set(err, -ENODEV, "no runtime backend is configured");
    *ret = (runtime){.plugin = p, .state = state};
    return 0;
}

int runtime_create(runtime *rt, const terok_run_spec *spec, char **ret_id, terok_error *err)
{
    char *id = NULL;
    int r;

    CHECK_OP(rt, create, 0, err);
    if (!spec || !ret_id)
        return terok_error_set(err, -EINVAL, "runtime_create: missing argument");
    r = OPS(rt)->create(rt->state, spec, &id, err);
    if (r >= 0 && isempty(id)) {
        free(id); /* host->strdup is malloc-backed */
        r = terok_error_set(err, -EIO, "runtime backend '%s' returned no container id",
                            backend(rt));
    }
    if (r < 0)
        return wrap(r, err, "creating '%s'", strna(spec->name));
    *ret_id = id;
    return r;
}

int runtime_start(runtime *rt, const char *ref, terok_error *err)
{
    CHECK_OP(rt, start, 0, err);
    return wrap(OPS(rt)->start(rt->state, ref, err), err, "starting '%s'", strna(ref));
}

int runtime_stop(runtime *rt, const char *ref, int64_t timeout_s, terok_error *err)
{
    CHECK_OP(rt, stop, 0, err);
    return wrap(OPS(rt)->stop(rt->state, ref, timeout_s, err), err, "stopping '%s'", strna(ref));
}

int runtime_kill(runtime *rt, const char *ref, int signo, terok_error *err)
{
    CHECK_OP(rt, kill, 0, err);
    return wrap(OPS(rt)->kill(rt->state, ref, signo, err), err, "signalling '%s'", strna(ref));
}

int runtime_remove(runtime *rt, const char *ref, uint32_t flags, terok_error *err)
{
    CHECK_OP(rt, remove, 0, err);
    return wrap(OPS(rt)->remove(rt->state, ref, flags, err), err, "removing '%s'", strna(ref));
}

int runtime_wait(runtime *rt, const char *ref, int64_t timeout_ms, int *ret_exit_code,
                 terok_error *err)
{
    CHECK_OP(rt, wait, 0, err);
    return wrap(OPS(rt)->wait(rt->state, ref, timeout_ms, ret_exit_code, err), err,
                "waiting for '%s'", strna(ref));
}

int runtime_inspect(runtime *rt, const char *ref, terok_container_cb cb, void *userdata,
                    terok_error *err)
{
    CHECK_OP(rt, inspect, 0, err);
    return wrap(OPS(rt)->inspect(rt->state, ref, cb, userdata, err), err, "inspecting '%s'",
                strna(ref));
}

int runtime_list(runtime *rt, const terok_list_filter *f, terok_container_cb cb, void *userdata,
                 terok_error *err)
{
    CHECK_OP(rt, list, 0, err);
    return wrap(OPS(rt)->list(rt->state, f, cb, userdata, err), err, "listing containers");
}

int runtime_exec(runtime *rt, const char *ref, const terok_exec_spec *spec, int *ret_exit_code,
                 terok_error *err)
{
    CHECK_OP(rt, exec, TEROK_RUNTIME_CAP_EXEC, err);
    if (spec && (spec->flags & TEROK_EXEC_TTY) && !(OPS(rt)->caps & TEROK_RUNTIME_CAP_TTY))
        return terok_error_set(err, -EOPNOTSUPP,
                               "runtime backend '%s' does not support a TTY for exec", backend(rt));
    return wrap(OPS(rt)->exec(rt->state, ref, spec, ret_exit_code, err), err, "executing in '%s'",
                strna(ref));
}

int runtime_logs(runtime *rt, const char *ref, const terok_logs_opts *o, terok_output_cb cb,
                 void *userdata, terok_error *err)
{
    CHECK_OP(rt, logs, TEROK_RUNTIME_CAP_LOGS, err);
    return wrap(OPS(rt)->logs(rt->state, ref, o, cb, userdata, err), err, "reading logs of '%s'",
                strna(ref));
}

int runtime_copy_in(runtime *rt, const char *ref, const char *host_path, const char *container_path,
                    terok_error *err)
{
    CHECK_OP(rt, copy_in, TEROK_RUNTIME_CAP_COPY, err);
    return wrap(OPS(rt)->copy_in(rt->state, ref, host_path, container_path, err), err,
                "copying '%s' into '%s'", strna(host_path), strna(ref));
}

int runtime_image_inspect(runtime *rt, const char *image, terok_image_cb cb, void *userdata,
                          terok_error *err)
{
    CHECK_OP(rt, image_inspect, 0, err);
    return wrap(OPS(rt)->image_inspect(rt->state, image, cb, userdata, err), err,
                "inspecting image '%s'", strna(image));
}

int runtime_events(runtime *rt, const terok_list_filter *f, terok_event_cb cb, void *userdata,
                   terok_error *err)
{
    CHECK_OP(rt, events, TEROK_RUNTIME_CAP_EVENTS, err);
    return wrap(OPS(rt)->events(rt->state, f, cb, userdata, err), err, "reading events");
}

int runtime_ctl(runtime *rt, uint32_t op, void *arg, terok_error *err)
{
    CHECK_OP(rt, ctl, 0, err);
    return wrap(OPS(rt)->ctl(rt->state, op, arg, err), err, "runtime control op %u", op);
}

int runtime_start_attached(runtime *rt, const char *ref, const terok_exec_spec *io,
                           int *ret_exit_code, terok_error *err)
{
    terok_runtime_ctl_attach a = {.struct_size = sizeof a, .ref = ref, .io = io, .exit_code = -1};
    int r;

    CHECK_OP(rt, ctl, 0, err);
    if (io && (io->flags & TEROK_EXEC_TTY) && !(OPS(rt)->caps & TEROK_RUNTIME_CAP_TTY))
        return terok_error_set(err, -EOPNOTSUPP, "runtime backend '%s' does not support a TTY",
                               backend(rt));
    r = wrap(OPS(rt)->ctl(rt->state, TEROK_RUNTIME_CTL_START_ATTACHED, &a, err), err,
             "starting '%s' attached", strna(ref));
    if (r >= 0 && ret_exit_code)
        *ret_exit_code = a.exit_code >= 0 && a.exit_code <= 255 ? a.exit_code : -1;
    return r;
}
