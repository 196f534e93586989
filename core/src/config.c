/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: replaced by the real implementation. */
#include "config.h"
#include <errno.h>
#include <stddef.h>
int config_load(const char *explicit_file, const char *system_dir, const char *user_dir,
                config **ret, terok_error *err)
{
    return -EOPNOTSUPP;
}
config *config_free(config *c)
{
    return NULL;
}
int config_validate(config *c)
{
    return -EOPNOTSUPP;
}
size_t config_problems(const config *c, const config_problem **ret)
{
    return 0;
}
const char *config_get(const config *c, const char *section, const char *key)
{
    return NULL;
}
int config_get_bool(const config *c, const char *section, const char *key, bool *ret)
{
    return -EOPNOTSUPP;
}
int config_get_int(const config *c, const char *section, const char *key, int64_t *ret)
{
    return -EOPNOTSUPP;
}
const char *config_origin(const config *c, const char *section, const char *key)
{
    return NULL;
}
int config_foreach(const config *c, config_show_cb cb, void *userdata)
{
    return -EOPNOTSUPP;
}
const char *const *config_files(const config *c)
{
    return NULL;
}
size_t config_sections_with_prefix(const config *c, const char *prefix, const char ***ret)
{
    return 0;
}
terok_config_section *config_plugin_section(config *c, const char *kind, const char *name)
{
    return NULL;
}
int config_section_get(const terok_config_section *sec, const char *key, const char **ret)
{
    return -EOPNOTSUPP;
}
int config_section_get_bool(const terok_config_section *sec, const char *key, int *ret)
{
    return -EOPNOTSUPP;
}
int config_section_get_int(const terok_config_section *sec, const char *key, int64_t *ret)
{
    return -EOPNOTSUPP;
}
int parse_bool(const char *s, bool *ret)
{
    return -EOPNOTSUPP;
}
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
    return -EOPNOTSUPP;
}
int parse_size(const char *s, uint64_t *ret)
{
    return -EOPNOTSUPP;
}
int parse_duration_ms(const char *s, int64_t *ret)
{
    return -EOPNOTSUPP;
}
int config_check_value(const char *type, const char *value, char **ret_why)
{
    return -EOPNOTSUPP;
}
int plugin_keys_read(int fd, config_key **ret_keys, size_t *ret_n, terok_error *err)
{
    return -EOPNOTSUPP;
}
void plugin_keys_free(config_key *keys, size_t n)
{
}
