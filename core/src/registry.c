/* SPDX-License-Identifier: Apache-2.0 */
/* registry.c: the configured backends of one process. A kind's backend is loaded on first use
 * (only that one, from the configured plugin directory), checked for the capabilities asked of
 * it, and opened once with its own config section. Instances are closed before their plugins are
 * unloaded. Never prints. */
#include <inttypes.h>

#include "error.h"
#include "loader-internal.h"
#include "registry.h"
#include "terok-build-config.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(registry, registry_free)

typedef struct slot {
    plugin *plugin;
    void *state;
    bool open;
    char *state_dir; /* <state>/<kind>-<name> */
} slot;

struct registry {
    config *cfg; /* borrowed */
    char *plugin_dir;
    char *state_dir; /* base, may be NULL */
    char *runtime_dir;
    slot slots[TEROK_PLUGIN_KIND_CLEARANCE + 1];
};

int registry_new(config *cfg, const paths *p, registry **ret, terok_error *err)
{
    _cleanup_(registry_freep) registry *r = NULL;
    const char *dir = cfg ? config_get(cfg, "core", "plugin-dir") : NULL;

    r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->cfg = cfg;
    r->plugin_dir = strdup(isempty(dir) ? TEROK_PLUGIN_DIR : dir);
    if (!r->plugin_dir)
        return -ENOMEM;
    if (p && p->state_dir && !(r->state_dir = strdup(p->state_dir)))
        return -ENOMEM;
    if (p && p->runtime_dir && !(r->runtime_dir = strdup(p->runtime_dir)))
        return -ENOMEM;
    *ret = take_ptr(&r);
    return 0;
}

static void ops_close(plugin *p, void *state)
{
    void (*close_fn)(void *) = NULL;

    switch (p->kind) {
    case TEROK_PLUGIN_KIND_RUNTIME:
        close_fn = p->ops.runtime.close;
        break;
    case TEROK_PLUGIN_KIND_VAULT:
        close_fn = p->ops.vault.close;
        break;
    case TEROK_PLUGIN_KIND_GATE:
        close_fn = p->ops.gate.close;
        break;
    case TEROK_PLUGIN_KIND_SHIELD:
        close_fn = p->ops.shield.close;
        break;
    case TEROK_PLUGIN_KIND_CLEARANCE:
        close_fn = p->ops.clearance.close;
        break;
    }
    if (close_fn)
        close_fn(state);
}

typedef int (*open_fn)(terok_plugin *self, const terok_config_section *cfg, void **ret_state,
                       terok_error *err);

static open_fn ops_open(plugin *p)
{
    switch (p->kind) {
    case TEROK_PLUGIN_KIND_RUNTIME:
        return p->ops.runtime.open;
    case TEROK_PLUGIN_KIND_VAULT:
        return p->ops.vault.open;
    case TEROK_PLUGIN_KIND_GATE:
        return p->ops.gate.open;
    case TEROK_PLUGIN_KIND_SHIELD:
        return p->ops.shield.open;
    case TEROK_PLUGIN_KIND_CLEARANCE:
        return p->ops.clearance.open;
    }
    return NULL;
}

static void slot_clear(slot *s)
{
    if (s->plugin && s->open)
        ops_close(s->plugin, s->state);
    s->state = NULL;
    s->open = false;
    s->plugin = plugin_unload(s->plugin);
    s->state_dir = free_null(s->state_dir);
}

registry *registry_free(registry *r)
{
    if (!r)
        return NULL;
    /* Close every instance first (a backend may still use another's plugin code while closing),
     * then unload. */
    for (size_t k = ELEMENTSOF(r->slots); k-- > 0;)
        if (r->slots[k].plugin && r->slots[k].open) {
            ops_close(r->slots[k].plugin, r->slots[k].state);
            r->slots[k].open = false;
            r->slots[k].state = NULL;
        }
    for (size_t k = ELEMENTSOF(r->slots); k-- > 0;)
        slot_clear(&r->slots[k]);
    free(r->plugin_dir);
    free(r->state_dir);
    free(r->runtime_dir);
    free(r);
    return NULL;
}

const char *registry_backend_name(registry *r, uint32_t kind)
{
    const char *k = plugin_kind_to_string(kind), *name;

    if (!r || !k || !r->cfg)
        return NULL;
    name = config_get(r->cfg, k, "backend");
    if (isempty(name) || streq(name, "none"))
        return NULL;
    return name;
}

static int check_caps(const plugin *p, uint64_t required_caps, terok_error *err)
{
    _cleanup_free_ char *names = NULL;
    uint64_t absent = required_caps & ~p->caps;

    if (!absent)
        return 0;
    names = plugin_caps_to_string(p->kind, absent);
    return terok_error_set(err, -EOPNOTSUPP,
                           "%s backend '%s' lacks capabilities the configuration requires: %s",
                           plugin_kind_to_string(p->kind), p->name, strna(names));
}

int registry_get(registry *r, uint32_t kind, uint64_t required_caps, plugin **ret_plugin,
                 void **ret_state, terok_error *err)
{
    const char *k = plugin_kind_to_string(kind), *name;
    _cleanup_(plugin_unloadp) plugin *p = NULL;
    _cleanup_free_ char *state_dir = NULL;
    open_fn open;
    void *state = NULL;
    slot *s;
    int ret;

    if (!r || !k)
        return terok_error_set(err, -EINVAL, "unknown plugin kind %" PRIu32, kind);
    s = &r->slots[kind];
    if (s->open) {
        ret = check_caps(s->plugin, required_caps, err);
        if (ret < 0)
            return ret;
        if (ret_plugin)
            *ret_plugin = s->plugin;
        if (ret_state)
            *ret_state = s->state;
        return 0;
    }

    name = registry_backend_name(r, kind);
    if (!name)
        return terok_error_set(err, -ENODEV,
                               "no %s backend is configured ([%s] backend = none); set one in "
                               "the configuration",
                               k, k);

    ret = loader_load(r->plugin_dir, kind, name, required_caps, &p, err);
    if (ret < 0)
        return ret;
    if (r->state_dir) {
        if (asprintf(&state_dir, "%s/%s", r->state_dir, p->label) < 0)
            return -ENOMEM;
        ret = mkdir_safe(state_dir, 0700, err);
        if (ret < 0)
            return terok_error_prefix(err, "%s backend '%s': state directory", k, name);
    }
    p->state_dir = state_dir;
    p->runtime_dir = r->runtime_dir;
    p->config = r->cfg ? config_plugin_section(r->cfg, k, name) : NULL;

    open = ops_open(p);
    ret = open ? open(p, p->config, &state, err) : -EPROTO;
    if (ret < 0) {
        /* C6: a failed open undoes the load. The plugin may have left a half-open state. */
        if (state)
            ops_close(p, state);
        if (err && !err->message)
            terok_error_set(err, ret, "%s", strerror(-ret));
        return terok_error_prefix(err, "opening %s backend '%s'", k, name);
    }

    s->plugin = take_ptr(&p);
    s->state_dir = take_ptr(&state_dir);
    s->state = state;
    s->open = true;
    if (ret_plugin)
        *ret_plugin = s->plugin;
    if (ret_state)
        *ret_state = s->state;
    return 0;
}
