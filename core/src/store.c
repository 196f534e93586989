/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: replaced by the real implementation. */
#include "store.h"
#include <errno.h>
#include <stddef.h>
int store_open(const char *state_dir, store **ret, terok_error *err)
{
    return -EOPNOTSUPP;
}
store *store_close(store *s)
{
    return NULL;
}
int store_schema_version(store *s)
{
    return -EOPNOTSUPP;
}
int store_begin(store *s, terok_error *err)
{
    return -EOPNOTSUPP;
}
int store_commit(store *s, terok_error *err)
{
    return -EOPNOTSUPP;
}
void store_rollback(store *s)
{
}
void container_rec_done(container_rec *r)
{
}
int store_container_add(store *s, const container_rec *r, terok_error *err)
{
    return -EOPNOTSUPP;
}
int store_container_set_id(store *s, const char *name, const char *id, terok_error *err)
{
    return -EOPNOTSUPP;
}
int store_container_get(store *s, const char *name, container_rec *ret, terok_error *err)
{
    return -EOPNOTSUPP;
}
int store_container_remove(store *s, const char *name, terok_error *err)
{
    return -EOPNOTSUPP;
}
int store_container_list(store *s, store_container_cb cb, void *userdata, terok_error *err)
{
    return -EOPNOTSUPP;
}
