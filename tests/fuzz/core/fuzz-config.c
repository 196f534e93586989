/* SPDX-License-Identifier: Apache-2.0 */
/* The config file loader and its validation: the input is one config file (loaded as --config
 * FILE, from a private temporary directory), then checked against the core schema, the route
 * schema and broker/routes.c. Loading a file we own never fails on its content; every problem
 * has a message and a place in the input; a config that validates builds its routes. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/routes.h"
#include "config-internal.h"
#include "config.h"
#include "error.h"
#include "fuzz.h"

static char *conf_path;

static void cleanup(void)
{
    char *dir;

    if (!conf_path)
        return;
    (void)unlink(conf_path);
    dir = strdup(conf_path);
    if (dir && strrchr(dir, '/')) {
        *strrchr(dir, '/') = 0;
        (void)rmdir(dir);
    }
    free(dir);
    free(conf_path);
    conf_path = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char tmpl[] = "/tmp/terok-fuzz-config.XXXXXX";

    if (!mkdtemp(tmpl) || asprintf(&conf_path, "%s/sandbox.conf", tmpl) < 0)
        abort();
    atexit(cleanup);
    return 0;
}

static void write_input(const uint8_t *data, size_t size)
{
    int fd = open(conf_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    size_t off = 0;

    if (fd < 0)
        abort();
    while (off < size) {
        ssize_t k = write(fd, data + off, size - off);
        if (k <= 0)
            abort();
        off += (size_t)k;
    }
    close(fd);
}

static int count_cb(void *userdata, const char *section, const char *key, const char *value,
                    const char *origin)
{
    size_t *n = userdata;

    if (!section || !key || !value || !origin)
        abort(); /* config show prints every one of them */
    (*n)++;
    return 0;
}

/* A typed core key with a value in a config that validates reads back through its getter. */
static void check_typed_getters(const config *c)
{
    for (size_t i = 0; i < config_core_schema_n; i++) {
        const config_schema_section *s = &config_core_schema[i];

        for (size_t k = 0; k < s->n_keys; k++) {
            const char *type = s->keys[k].type, *name = s->keys[k].name;
            bool b;
            int64_t v;

            if (!config_get(c, s->name, name))
                continue;
            if (streq(type, "bool") && config_get_bool(c, s->name, name, &b) < 0)
                abort();
            if ((strneq(type, "int", 3) || strneq(type, "size", 4) || strneq(type, "duration", 8) ||
                 strneq(type, "decimal", 7)) &&
                config_get_int(c, s->name, name, &v) < 0)
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    terok_error err = TEROK_ERROR_INIT;
    const config_problem *problems;
    config *c = NULL;
    size_t lines = 1, n, shown = 0;
    int errors;

    if (size > CONFIG_MAX_FILE)
        return 0;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    write_input(data, size);
    if (config_load(conf_path, NULL, NULL, &c, &err) < 0)
        abort(); /* content problems are collected, never a failed load */
    errors = config_validate(c);
    if (config_validate(c) != errors)
        abort(); /* idempotent */
    n = config_problems(c, &problems);
    for (size_t i = 0; i < n; i++) {
        const config_problem *p = &problems[i];
        if (!p->message || !*p->message)
            abort();
        if (p->file && (!streq(p->file, conf_path) || p->line > lines))
            abort(); /* "file:line" points into the input */
    }
    /* The value a key was last set to is its effective value, with its origin. */
    for (size_t i = 0; i < c->n_entries; i++) {
        const config_entry *e = config_find(c, c->entries[i].section, c->entries[i].key);
        if (!e || !streq(config_get(c, e->section, e->key), e->value) ||
            !config_origin(c, e->section, e->key))
            abort();
    }
    if (config_foreach(c, count_cb, &shown) != 0)
        abort();
    if (errors == 0) {
        routes rs = {0};

        /* config check runs the broker's route parser: a valid config starts the broker */
        if (routes_from_config(c, &rs, &err) < 0) {
            fprintf(stderr, "valid config, refused routes: %s\n", terok_error_message(&err));
            abort();
        }
        for (size_t i = 0; i < rs.n; i++) {
            const route *rt = &rs.v[i];
            if (!rt->n_upstreams || *rt->upstreams[rt->n_upstreams - 1].prefix)
                abort(); /* the default upstream is last */
            (void)route_upstream_for(rt, "/v1/x");
            (void)route_allows(rt, "GET", "/v1/x");
        }
        routes_done(&rs);
        check_typed_getters(c);
    }
    terok_error_clear(&err);
    config_free(c);
    return 0;
}
