/* SPDX-License-Identifier: Apache-2.0 */
/* loader-internal.h: what loader.c shares with probe.c (and the loader's own tests): the per-kind
 * tables, the rejection formatter and the load context that remembers what was learnt about a
 * file before it was rejected (so `plugins list` can show the ABI of a rejected plugin). */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "loader.h"
#include "util/macro.h"
#include "util/strv.h"

#define PLUGIN_NAME_MAX 64

typedef struct op_req {
    const char *name;
    size_t offset; /* in the kind's ops struct */
    uint64_t cap;  /* 0: always required; else required when this capability is claimed */
} op_req;

typedef struct kind_info {
    const char *name;
    size_t ops_size;     /* the host's ops struct */
    size_t ops_size_1_0; /* the smallest table a 1.0 plugin may hand over */
    const op_req *reqs;
    size_t n_reqs;
    const char *const *caps; /* names by bit */
    size_t n_caps;
} kind_info;

const kind_info *kind_info_get(uint32_t kind);

/* What is known about a file being loaded; owned strings, released by load_ctx_done(). */
typedef struct load_ctx {
    char *path;    /* as shown in messages */
    char *kind;    /* from the file name */
    char *name;    /* from the file name */
    char *version; /* from the descriptor, when it had a sane one */
    bool abi_known;
    uint32_t abi_major, abi_minor;
} load_ctx;
void load_ctx_done(load_ctx *l);

/* "plugin '<path>': <what> (plugin ABI X.Y|?, host A.B)" */
char *load_ctx_vformat(const load_ctx *l, const char *fmt, va_list ap) _printf_(2, 0);
int load_ctx_reject(const load_ctx *l, terok_error *err, int code, const char *fmt, ...)
    _printf_(4, 5);

int loader_load_ctx(const char *dir, uint32_t kind, const char *name, uint64_t required_caps,
                    load_ctx *l, plugin **ret, terok_error *err);
int loader_load_file_ctx(const char *path, load_ctx *l, plugin **ret, terok_error *err);

/* "runtime-null.so" -> RUNTIME, "null"; -EINVAL when it is not <kind>-<name>.so. */
int plugin_file_parse(const char *file, uint32_t *ret_kind, char **ret_name);
/* Owner root or euid, no group/other write; else -EPERM and the reason in buf. */
int owner_mode_problem(const struct stat *st, char *buf, size_t len);

static inline void *free_null(void *p)
{
    free(p);
    return NULL;
}

static inline bool str_endswith(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(plugin, plugin_unload)

/* TAKE_PTR() without a statement expression (util/macro.h's trips -Wpedantic): hand ownership
 * on and clear the variable. `pp` is the address of a pointer variable. */
static inline void *take_ptr(void *pp)
{
    void **p = pp, *v = *p;

    *p = NULL;
    return v;
}
