/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: replaced by the real implementation. */
#include "loader.h"
#include <errno.h>
#include <stddef.h>
const char *plugin_kind_to_string(uint32_t kind)
{
    return NULL;
}
int plugin_kind_from_string(const char *s)
{
    return -EOPNOTSUPP;
}
bool plugin_name_is_valid(const char *name)
{
    return false;
}
const char *plugin_cap_name(uint32_t kind, unsigned bit)
{
    return NULL;
}
int check_owner_mode(int fd, const char *path, const char *what, terok_error *err)
{
    return -EOPNOTSUPP;
}
int loader_load(const char *dir, uint32_t kind, const char *name, uint64_t required_caps,
                plugin **ret, terok_error *err)
{
    return -EOPNOTSUPP;
}
int loader_load_file(const char *path, plugin **ret, terok_error *err)
{
    return -EOPNOTSUPP;
}
plugin *plugin_unload(plugin *p)
{
    return NULL;
}
int loader_probe_dir(const char *dir, plugin_probe_cb cb, void *userdata, terok_error *err)
{
    return -EOPNOTSUPP;
}
