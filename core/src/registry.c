/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: replaced by the real implementation. */
#include "registry.h"
#include <errno.h>
#include <stddef.h>
int registry_new(config *cfg, const paths *p, registry **ret, terok_error *err)
{
    return -EOPNOTSUPP;
}
registry *registry_free(registry *r)
{
    return NULL;
}
const char *registry_backend_name(registry *r, uint32_t kind)
{
    return NULL;
}
int registry_get(registry *r, uint32_t kind, uint64_t required_caps, plugin **ret_plugin,
                 void **ret_state, terok_error *err)
{
    return -EOPNOTSUPP;
}
