/* SPDX-License-Identifier: Apache-2.0 */
/* vault.c: the core's calls into the configured vault backend. */
#include <ctype.h>

#include "error.h"
#include "vault.h"

#define NEED_OP(v, op, what)                                                                       \
    do {                                                                                           \
        if (!(v)->plugin->ops.vault.op)                                                            \
            return terok_error_set(err, -EOPNOTSUPP, "vault backend '%s' cannot %s",               \
                                   (v)->plugin->name, what);                                       \
    } while (0)

int vault_open(registry *r, uint64_t required_caps, vault *ret, terok_error *err)
{
    plugin *p;
    void *st;
    int rc = registry_get(r, TEROK_PLUGIN_KIND_VAULT, required_caps, &p, &st, err);

    if (rc < 0)
        return rc;
    ret->plugin = p;
    ret->state = st;
    return 0;
}

bool vault_has_cap(const vault *v, uint64_t cap)
{
    return (v->plugin->ops.vault.caps & cap) == cap;
}

bool vault_name_is_valid(const char *name)
{
    size_t n;

    if (!name || !isalnum((unsigned char)name[0]))
        return false;
    n = strlen(name);
    if (n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
            return false;
    return true;
}

int vault_put(vault *v, const char *name, const terok_secret *value, const char *type,
              const char *metadata, terok_error *err)
{
    int r;

    NEED_OP(v, put, "store secrets");
    if (!vault_has_cap(v, TEROK_VAULT_CAP_WRITE))
        return terok_error_set(err, -EOPNOTSUPP, "vault backend '%s' is read-only",
                               v->plugin->name);
    r = v->plugin->ops.vault.put(v->state, name, value, type, metadata, err);
    return r < 0 ? terok_error_prefix(err, "storing '%s'", name) : r;
}

int vault_get(vault *v, const char *name, terok_secret **ret, terok_error *err)
{
    int r;

    NEED_OP(v, get, "read secrets");
    r = v->plugin->ops.vault.get(v->state, name, ret, err);
    return r < 0 ? terok_error_prefix(err, "reading '%s'", name) : r;
}

int vault_remove(vault *v, const char *name, terok_error *err)
{
    int r;

    NEED_OP(v, remove, "remove secrets");
    r = v->plugin->ops.vault.remove(v->state, name, err);
    if (r == -ENOENT)
        return r; /* callers word "absent" themselves: rm is idempotent */
    return r < 0 ? terok_error_prefix(err, "removing '%s'", name) : r;
}

int vault_list(vault *v, terok_vault_entry_cb cb, void *userdata, terok_error *err)
{
    int r;

    NEED_OP(v, list, "list entries");
    r = v->plugin->ops.vault.list(v->state, cb, userdata, err);
    return r < 0 ? terok_error_prefix(err, "listing the vault") : r;
}

int vault_status(vault *v, terok_vault_status_cb cb, void *userdata, terok_error *err)
{
    int r;

    NEED_OP(v, status, "report its status");
    r = v->plugin->ops.vault.status(v->state, cb, userdata, err);
    return r < 0 ? terok_error_prefix(err, "vault status") : r;
}

int vault_unlock(vault *v, const terok_secret *passphrase, terok_error *err)
{
    int r;

    if (!vault_has_cap(v, TEROK_VAULT_CAP_NEEDS_UNLOCK))
        return 0; /* nothing to unlock */
    NEED_OP(v, unlock, "unlock");
    r = v->plugin->ops.vault.unlock(v->state, passphrase, err);
    return r < 0 ? terok_error_prefix(err, "unlocking the vault") : r;
}

int vault_lock(vault *v, terok_error *err)
{
    int r;

    if (!vault_has_cap(v, TEROK_VAULT_CAP_NEEDS_UNLOCK))
        return 0;
    NEED_OP(v, lock, "lock");
    r = v->plugin->ops.vault.lock(v->state, err);
    return r < 0 ? terok_error_prefix(err, "locking the vault") : r;
}

int vault_ctl(vault *v, uint32_t op, void *arg, terok_error *err)
{
    NEED_OP(v, ctl, "do that");
    return v->plugin->ops.vault.ctl(v->state, op, arg, err);
}
