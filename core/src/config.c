/* SPDX-License-Identifier: Apache-2.0 */
/* config.c: the in-memory configuration: entries as read (later wins), problems, effective
 * values with their origin, the plugin sections handed to plugins, and `config show`'s walk.
 * Reading files is config-load.c, checking them config-validate.c. Never prints. */
#include <fcntl.h>
#include <stdarg.h>

#include "config-internal.h"
#include "util/strv.h"

int config_problem_add(config *c, const char *file, unsigned line, bool warning, const char *fmt,
                       ...)
{
    config_problem *p;
    char *m = NULL;
    va_list ap;

    if (c->n_problems >= CONFIG_MAX_PROBLEMS)
        return 0;
    p = reallocarray(c->problems, c->n_problems + 1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    c->problems = p;
    va_start(ap, fmt);
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    if (!m)
        return -ENOMEM;
    p = &c->problems[c->n_problems];
    *p = (config_problem){
        .file = file ? strdup(file) : NULL, .line = line, .message = m, .warning = warning};
    if (file && !p->file) {
        free(m);
        return -ENOMEM;
    }
    c->n_problems++;
    return 0;
}

int config_entry_add(config *c, size_t file, unsigned line, const char *section, const char *key,
                     const char *value)
{
    config_entry *e = reallocarray(c->entries, c->n_entries + 1, sizeof(*e));

    if (!e)
        return -ENOMEM;
    c->entries = e;
    e = &c->entries[c->n_entries];
    *e = (config_entry){.section = strdup(section),
                        .key = strdup(key),
                        .value = strdup(value),
                        .file = file,
                        .line = line};
    if (asprintf(&e->origin, "%s:%u", c->files[file], line) < 0)
        e->origin = NULL;
    if (!e->section || !e->key || !e->value || !e->origin) {
        free(e->section);
        free(e->key);
        free(e->value);
        free(e->origin);
        return -ENOMEM;
    }
    c->n_entries++;
    return 0;
}

int config_section_ref_add(config *c, size_t file, unsigned line, const char *name)
{
    config_section_ref *s = reallocarray(c->sections, c->n_sections + 1, sizeof(*s));

    if (!s)
        return -ENOMEM;
    c->sections = s;
    s[c->n_sections] = (config_section_ref){.name = strdup(name), .file = file, .line = line};
    if (!s[c->n_sections].name)
        return -ENOMEM;
    c->n_sections++;
    return 0;
}

const config_entry *config_find(const config *c, const char *section, const char *key)
{
    for (size_t i = c->n_entries; i > 0; i--) {
        const config_entry *e = &c->entries[i - 1];
        if (streq(e->section, section) && streq(e->key, key))
            return e;
    }
    return NULL;
}

static struct terok_config_section *plugin_section_free(struct terok_config_section *s)
{
    if (!s)
        return NULL;
    free(s->kind);
    free(s->name);
    free(s->section);
    free(s->schema_message);
    plugin_keys_free(s->keys, s->n_keys);
    free(s);
    return NULL;
}

config *config_free(config *c)
{
    if (!c)
        return NULL;
    strv_free(c->files);
    for (size_t i = 0; i < c->n_entries; i++) {
        free(c->entries[i].section);
        free(c->entries[i].key);
        free(c->entries[i].value);
        free(c->entries[i].origin);
    }
    free(c->entries);
    for (size_t i = 0; i < c->n_sections; i++)
        free(c->sections[i].name);
    free(c->sections);
    for (size_t i = 0; i < c->n_problems; i++) {
        free(c->problems[i].file);
        free(c->problems[i].message);
    }
    free(c->problems);
    for (size_t i = 0; i < c->n_plugins; i++)
        plugin_section_free(c->plugins[i]);
    free(c->plugins);
    free(c->prefix_result);
    free(c);
    return NULL;
}

size_t config_problems(const config *c, const config_problem **ret)
{
    *ret = c->problems;
    return c->n_problems;
}

const char *const *config_files(const config *c)
{
    static const char *const none[] = {NULL};

    return c->files ? (const char *const *)c->files : none;
}

static void read_schema(config *c, struct terok_config_section *s)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    _cleanup_free_ char *path = NULL, *why = NULL;
    _cleanup_close_ int fd = -EBADF;
    const char *dir = config_get(c, "core", "plugin-dir");
    struct stat st;
    int r;

    s->schema_read = true;
    if (!dir || dir[0] != '/') {
        s->schema_error = -EINVAL;
        return;
    }
    if (asprintf(&path, "%s/%s-%s.so", dir, s->kind, s->name) < 0) {
        s->schema_error = -ENOMEM;
        return;
    }
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        s->schema_error = negative_errno();
        if (errno == ENOENT)
            r = asprintf(&s->schema_message, "plugin '%s-%s' not found in '%s'", s->kind, s->name,
                         dir);
        else if (errno == ELOOP)
            r = asprintf(&s->schema_message, "refusing the symlinked plugin '%s'", path);
        else
            r = asprintf(&s->schema_message, "cannot open plugin '%s': %s", path, strerror(errno));
        if (r < 0)
            s->schema_message = NULL;
        return;
    }
    if (fstat(fd, &st) < 0 || config_check_owner_mode(&st, path, "plugin", false, &why) < 0) {
        s->schema_error = -EPERM;
        s->schema_message = why;
        why = NULL;
        return;
    }
    r = plugin_keys_read(fd, &s->keys, &s->n_keys, &err);
    if (r < 0) {
        s->schema_error = r;
        terok_error_prefix(&err, "plugin '%s'", path);
        s->schema_message = strdup(terok_error_message(&err));
    }
}

struct terok_config_section *config_plugin_schema(config *c, const char *kind, const char *name)
{
    struct terok_config_section *s, **l;

    for (size_t i = 0; i < c->n_plugins; i++)
        if (streq(c->plugins[i]->kind, kind) && streq(c->plugins[i]->name, name))
            return c->plugins[i];
    if (!config_kind_is_valid(kind) || !backend_name_is_valid(name))
        return NULL;
    l = reallocarray(c->plugins, c->n_plugins + 1, sizeof(*l));
    if (!l)
        return NULL;
    c->plugins = l;
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->config = c;
    s->kind = strdup(kind);
    s->name = strdup(name);
    if (!s->kind || !s->name || asprintf(&s->section, "%s.%s", kind, name) < 0) {
        s->section = NULL;
        return plugin_section_free(s);
    }
    read_schema(c, s);
    c->plugins[c->n_plugins++] = s;
    return s;
}

terok_config_section *config_plugin_section(config *c, const char *kind, const char *name)
{
    return config_plugin_schema(c, kind, name);
}

static const config_key *plugin_key(const terok_config_section *s, const char *key)
{
    for (size_t i = 0; i < s->n_keys; i++)
        if (streq(s->keys[i].name, key))
            return &s->keys[i];
    return NULL;
}

/* The declared key of section/key: core schema, route schema or a plugin's (already read). */
static const config_key *declared_key(const config *c, const char *section, const char *key)
{
    const char *dot = strchr(section, '.');

    if (!dot)
        return config_schema_key(config_core_section(section), key);
    if (strneq(section, "route.", 6))
        return config_schema_key(&config_route_schema, key);
    for (size_t i = 0; i < c->n_plugins; i++)
        if (streq(c->plugins[i]->section, section))
            return plugin_key(c->plugins[i], key);
    return NULL;
}

const char *config_get(const config *c, const char *section, const char *key)
{
    const config_entry *e = config_find(c, section, key);
    const config_key *k;

    if (e)
        return e->value;
    k = declared_key(c, section, key);
    return k && k->def && *k->def ? k->def : NULL;
}

const char *config_origin(const config *c, const char *section, const char *key)
{
    const config_entry *e = config_find(c, section, key);
    const config_key *k;

    if (e)
        return e->origin;
    k = declared_key(c, section, key);
    return k && k->def && *k->def ? "default" : NULL;
}

int config_value_to_int(const char *type, const char *value, int64_t *ret)
{
    uint64_t u;
    int r;

    if (strneq(type, "int", 3) && (type[3] == 0 || type[3] == ':'))
        return config_check_type(type, value, NULL) < 0
                   ? -EINVAL
                   : parse_int64(value, INT64_MIN, INT64_MAX, ret);
    if (config_check_type(type, value, NULL) < 0)
        return -EINVAL;
    if (strneq(type, "size", 4)) {
        r = parse_size(value, &u);
        if (r < 0 || u > INT64_MAX)
            return -EINVAL;
        *ret = (int64_t)u;
        return 0;
    }
    if (strneq(type, "duration", 8))
        return parse_duration_ms(value, ret);
    if (strneq(type, "decimal", 7))
        return parse_decimal_milli(value, ret);
    return -EINVAL;
}

int config_get_bool(const config *c, const char *section, const char *key, bool *ret)
{
    const char *v = config_get(c, section, key);

    if (!v)
        return -ENOENT;
    return parse_bool(v, ret) < 0 ? -EINVAL : 0;
}

int config_get_int(const config *c, const char *section, const char *key, int64_t *ret)
{
    const char *v = config_get(c, section, key);
    const config_key *k = declared_key(c, section, key);

    if (!v)
        return -ENOENT;
    if (!k)
        return parse_int64(v, INT64_MIN, INT64_MAX, ret) < 0 ? -EINVAL : 0;
    return config_value_to_int(k->type, v, ret);
}

int config_section_get(const terok_config_section *sec, const char *key, const char **ret)
{
    const config_entry *e;
    const config_key *k;

    if (!sec || !key || !ret)
        return -EINVAL;
    k = plugin_key(sec, key);
    if (!k)
        return -EINVAL;
    e = config_find(sec->config, sec->section, key);
    if (e) {
        *ret = e->value;
        return 0;
    }
    if (!k->def || !*k->def)
        return -ENOENT;
    *ret = k->def;
    return 0;
}

int config_section_get_bool(const terok_config_section *sec, const char *key, int *ret)
{
    const char *v;
    bool b;
    int r = config_section_get(sec, key, &v);

    if (r < 0)
        return r;
    if (parse_bool(v, &b) < 0)
        return -EINVAL;
    *ret = b;
    return 0;
}

int config_section_get_int(const terok_config_section *sec, const char *key, int64_t *ret)
{
    const char *v;
    int r = config_section_get(sec, key, &v);

    if (r < 0)
        return r;
    return config_value_to_int(plugin_key(sec, key)->type, v, ret);
}

size_t config_sections_with_prefix(const config *c, const char *prefix, const char ***ret)
{
    config *mc = (config *)c; /* the result buffer is a cache, not part of the value */
    size_t plen = strlen(prefix), n = 0;
    const char **l;

    l = reallocarray(mc->prefix_result, c->n_sections + 1, sizeof(*l));
    if (!l) {
        *ret = NULL;
        return 0;
    }
    mc->prefix_result = l;
    for (size_t i = 0; i < c->n_sections; i++) {
        const char *name = c->sections[i].name;
        bool seen = false;

        if (!strneq(name, prefix, plen) || name[plen] != '.' || !name[plen + 1])
            continue;
        for (size_t j = 0; j < n && !seen; j++)
            seen = streq(l[j], name);
        if (!seen)
            l[n++] = name;
    }
    l[n] = NULL;
    *ret = l;
    return n;
}

/* Walks one section: declared keys in declaration order, then keys the files set that are not
 * declared (only where nothing is declared, i.e. a plugin whose file could not be read). */
static int show_section(const config *c, const char *section, const config_key *keys, size_t n,
                        bool raw, config_show_cb cb, void *userdata)
{
    int r;

    for (size_t i = 0; i < n; i++) {
        const char *v = config_get(c, section, keys[i].name);
        if (!v)
            continue;
        r = cb(userdata, section, keys[i].name, v, config_origin(c, section, keys[i].name));
        if (r != 0)
            return r;
    }
    if (!raw)
        return 0;
    for (size_t i = 0; i < c->n_entries; i++) {
        const config_entry *e = &c->entries[i];
        if (!streq(e->section, section) || config_find(c, section, e->key) != e)
            continue;
        r = cb(userdata, section, e->key, e->value, e->origin);
        if (r != 0)
            return r;
    }
    return 0;
}

int config_foreach(const config *c, config_show_cb cb, void *userdata)
{
    const char **routes;
    size_t n;
    int r;

    for (size_t i = 0; i < config_core_schema_n; i++) {
        const config_schema_section *s = &config_core_schema[i];
        r = show_section(c, s->name, s->keys, s->n_keys, false, cb, userdata);
        if (r != 0)
            return r;
    }
    /* The section of each configured backend, with its declared defaults. */
    for (size_t i = 0; config_plugin_kinds[i]; i++) {
        const char *backend = config_get(c, config_plugin_kinds[i], "backend");
        const terok_config_section *p = NULL;
        _cleanup_free_ char *section = NULL;

        if (!backend || streq(backend, "none"))
            continue;
        for (size_t j = 0; j < c->n_plugins && !p; j++)
            if (streq(c->plugins[j]->kind, config_plugin_kinds[i]) &&
                streq(c->plugins[j]->name, backend))
                p = c->plugins[j];
        if (asprintf(&section, "%s.%s", config_plugin_kinds[i], backend) < 0)
            return -ENOMEM;
        r = show_section(c, section, p ? p->keys : NULL, p ? p->n_keys : 0,
                         !p || p->schema_error < 0, cb, userdata);
        if (r != 0)
            return r;
    }
    n = config_sections_with_prefix(c, "route", &routes);
    for (size_t i = 0; i < n; i++) {
        r = show_section(c, routes[i], config_route_schema.keys, config_route_schema.n_keys, false,
                         cb, userdata);
        if (r != 0)
            return r;
    }
    return 0;
}
