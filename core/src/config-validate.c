/* SPDX-License-Identifier: Apache-2.0 */
/* config-validate.c: checking what was read against the declared keys: the core's, the routes',
 * and each configured plugin's, read from the plugin file's ELF section (plugin-keys.c) — no
 * plugin is loaded and no plugin code runs. Every problem names file:line, the section, the key
 * and the value. Never prints. */
#include "broker/routes.h"
#include "config-internal.h"

enum section_class {
    SECTION_UNKNOWN,
    SECTION_CORE,
    SECTION_ROUTE,
    SECTION_PLUGIN,   /* [kind.name] of the configured backend */
    SECTION_INACTIVE, /* [kind.name] of another backend: ignored */
    SECTION_INVALID,  /* already reported */
};

/* Splits "kind.name"; false when the section is not of that form. */
static bool split_section(const char *section, char *kind, size_t sz, const char **ret_name)
{
    const char *dot = strchr(section, '.');

    if (!dot || (size_t)(dot - section) >= sz)
        return false;
    snprintf(kind, sz, "%.*s", (int)(dot - section), section);
    *ret_name = dot + 1;
    return true;
}

static enum section_class classify(config *c, const char *section,
                                   struct terok_config_section **ret_plugin)
{
    const char *name, *backend;
    char kind[32];

    *ret_plugin = NULL;
    if (config_core_section(section))
        return SECTION_CORE;
    if (!split_section(section, kind, sizeof kind, &name))
        return SECTION_UNKNOWN;
    if (streq(kind, "route"))
        return config_route_name_is_valid(name) ? SECTION_ROUTE : SECTION_INVALID;
    if (!config_kind_is_valid(kind))
        return SECTION_UNKNOWN;
    if (!backend_name_is_valid(name) || streq(name, "none"))
        return SECTION_INVALID;
    backend = config_get(c, kind, "backend");
    if (!backend || !streq(backend, name))
        return SECTION_INACTIVE;
    *ret_plugin = config_plugin_schema(c, kind, name);
    return *ret_plugin ? SECTION_PLUGIN : SECTION_INVALID;
}

static void check_sections(config *c)
{
    struct terok_config_section *plugin;
    char kind[32];
    const char *name;

    for (size_t i = 0; i < c->n_sections; i++) {
        const config_section_ref *s = &c->sections[i];
        const char *file = c->files[s->file];

        switch (classify(c, s->name, &plugin)) {
        case SECTION_UNKNOWN:
            (void)config_problem_add(c, file, s->line, false, "unknown section [%s]", s->name);
            break;
        case SECTION_INVALID:
            split_section(s->name, kind, sizeof kind, &name);
            (void)config_problem_add(c, file, s->line, false,
                                     "invalid name '%s' in section [%s]: expected %s", name,
                                     s->name,
                                     streq(kind, "route") ? "[a-z0-9][a-z0-9_-]*, at most 64"
                                                          : "a backend name ([a-z0-9-]+)");
            break;
        case SECTION_INACTIVE:
            split_section(s->name, kind, sizeof kind, &name);
            (void)config_problem_add(c, file, s->line, true,
                                     "section [%s] configures backend '%s' but [%s] backend is "
                                     "'%s'; it is ignored",
                                     s->name, name, kind, strna(config_get(c, kind, "backend")));
            break;
        default:
            break;
        }
    }
}

static void check_entry(config *c, const config_entry *e)
{
    struct terok_config_section *plugin;
    const config_key *k = NULL;
    _cleanup_free_ char *why = NULL;
    const char *file = c->files[e->file];

    switch (classify(c, e->section, &plugin)) {
    case SECTION_CORE:
        k = config_schema_key(config_core_section(e->section), e->key);
        break;
    case SECTION_ROUTE:
        k = config_schema_key(&config_route_schema, e->key);
        break;
    case SECTION_PLUGIN:
        if (plugin->schema_error < 0)
            return; /* reported once, on the backend */
        for (size_t i = 0; i < plugin->n_keys && !k; i++)
            if (streq(plugin->keys[i].name, e->key))
                k = &plugin->keys[i];
        if (!k) {
            (void)config_problem_add(c, file, e->line, false,
                                     "unknown key '%s' in [%s]: plugin '%s-%s' declares %s", e->key,
                                     e->section, plugin->kind, plugin->name,
                                     plugin->n_keys ? "other keys" : "no keys");
            return;
        }
        break;
    default:
        return; /* the section itself is reported */
    }
    if (!k) {
        (void)config_problem_add(c, file, e->line, false, "unknown key '%s' in [%s]", e->key,
                                 e->section);
        return;
    }
    if (config_check_value(k->type, e->value, &why) < 0) {
        (void)config_problem_add(c, file, e->line, false, "invalid value '%s' for '%s' in [%s]: %s",
                                 e->value, e->key, e->section, why ? why : "out of memory");
        return;
    }
    if (streq(e->section, "runtime") && streq(e->key, "backend") && streq(e->value, "none"))
        (void)config_problem_add(c, file, e->line, false,
                                 "invalid value 'none' for 'backend' in [runtime]: every "
                                 "container needs a runtime");
}

/* The backend's plugin must exist and its key declarations be readable when the operator named
 * it or configured its section. A default backend is checked when first loaded, so a host with
 * only the plugins it uses still passes `config check`. */
static void check_backend(config *c, const char *kind)
{
    const config_entry *e = config_find(c, kind, "backend");
    const char *backend = config_get(c, kind, "backend");
    const char *dir = config_get(c, "core", "plugin-dir");
    const config_section_ref *ref = NULL;
    struct terok_config_section *p;
    _cleanup_free_ char *section = NULL;

    if (!backend || streq(backend, "none") || !backend_name_is_valid(backend) || !dir ||
        dir[0] != '/')
        return;
    if (asprintf(&section, "%s.%s", kind, backend) < 0)
        return;
    for (size_t i = 0; i < c->n_sections && !ref; i++)
        if (streq(c->sections[i].name, section))
            ref = &c->sections[i];
    if (!e && !ref)
        return;
    p = config_plugin_schema(c, kind, backend);
    if (!p) {
        (void)config_problem_add(c, NULL, 0, false, "checking plugin '%s-%s': out of memory", kind,
                                 backend);
        return;
    }
    if (p->schema_error >= 0)
        return;
    if (e)
        (void)config_problem_add(c, c->files[e->file], e->line, false, "%s",
                                 strna(p->schema_message));
    else
        (void)config_problem_add(c, c->files[ref->file], ref->line, false, "%s",
                                 strna(p->schema_message));
}

typedef struct route_lookup {
    const config *c;
    const char *section;
} route_lookup;

static const char *route_get(void *userdata, const char *key)
{
    const route_lookup *l = userdata;

    return config_get(l->c, l->section, key);
}

/* Whether a problem was reported on one of the lines that set a key of `section`. */
static bool section_has_problems(const config *c, const char *section)
{
    for (size_t i = 0; i < c->n_problems; i++) {
        const config_problem *p = &c->problems[i];
        for (size_t k = 0; p->file && k < c->n_entries; k++) {
            const config_entry *e = &c->entries[k];
            if (p->line == e->line && streq(e->section, section) &&
                streq(p->file, c->files[e->file]))
                return true;
        }
    }
    return false;
}

/* Required keys, then whatever else the broker would refuse (formats of allow, path-upstreams,
 * token-headers, oauth pairing), reported on the route's section header. */
static void check_routes(config *c)
{
    const char **names;
    size_t n = config_sections_with_prefix(c, "route", &names);

    for (size_t i = 0; i < n; i++) {
        _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
        const char *name = names[i] + strlen("route.");
        const config_section_ref *ref = NULL;
        route_lookup l = {c, names[i]};
        bool complete = true;
        const char *file;
        route rt;

        if (!config_route_name_is_valid(name))
            continue;
        for (size_t j = 0; j < c->n_sections && !ref; j++)
            if (streq(c->sections[j].name, names[i]))
                ref = &c->sections[j];
        file = c->files[ref->file];
        for (size_t k = 0; k < 2; k++) {
            const char *key = k ? "credential" : "upstream";
            if (config_find(c, names[i], key))
                continue;
            (void)config_problem_add(c, file, ref->line, false, "route [%s] has no '%s'", names[i],
                                     key);
            complete = false;
        }
        /* The keys' own problems are reported already; the broker's view adds the rest. */
        if (!complete || section_has_problems(c, names[i]))
            continue;
        if (route_parse(name, route_get, &l, &rt, &err) < 0)
            (void)config_problem_add(c, file, ref->line, false, "%s", terok_error_message(&err));
        route_done(&rt);
    }
}

static size_t file_rank(const config *c, const char *file)
{
    for (size_t i = 0; file && c->files && c->files[i]; i++)
        if (streq(c->files[i], file))
            return i;
    return SIZE_MAX;
}

/* Problems in reading order (stable); those of files that were not read (refused) last. */
static void sort_problems(config *c, size_t from)
{
    for (size_t i = from + 1; i < c->n_problems; i++) {
        config_problem p = c->problems[i];
        size_t rank = file_rank(c, p.file), j = i;

        while (j > from) {
            const config_problem *q = &c->problems[j - 1];
            size_t qrank = file_rank(c, q->file);
            if (qrank < rank || (qrank == rank && q->line <= p.line))
                break;
            c->problems[j] = c->problems[j - 1];
            j--;
        }
        c->problems[j] = p;
    }
}

int config_validate(config *c)
{
    size_t errors = 0;

    if (!c->validated) {
        c->validated = true;
        for (size_t i = 0; config_plugin_kinds[i]; i++)
            check_backend(c, config_plugin_kinds[i]);
        check_sections(c);
        for (size_t i = 0; i < c->n_entries; i++)
            check_entry(c, &c->entries[i]);
        check_routes(c);
        sort_problems(c, 0);
    }
    for (size_t i = 0; i < c->n_problems; i++)
        if (!c->problems[i].warning)
            errors++;
    return (int)MIN(errors, (size_t)INT32_MAX);
}
