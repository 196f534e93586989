/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: replaced by the real implementation. */
#include "paths.h"
#include <errno.h>
#include <stddef.h>
int paths_resolve(paths *p, terok_error *err)
{
    return -EOPNOTSUPP;
}
void paths_done(paths *p)
{
}
int mkdir_safe(const char *path, mode_t mode, terok_error *err)
{
    return -EOPNOTSUPP;
}
bool container_name_is_valid(const char *name)
{
    return false;
}
