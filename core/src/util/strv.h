/* SPDX-License-Identifier: Apache-2.0 */
/* util/strv.h: NULL-terminated string vectors (argv, env, label lists). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/macro.h"

char **strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char *, strv_free)
#define _cleanup_strv_free_ _cleanup_(strv_freep)

size_t strv_length(char *const *l);
/* Append a copy of s; returns 0 or -ENOMEM. *l may be NULL. */
int strv_extend(char ***l, const char *s);
/* Append s, taking ownership (freed on failure). */
int strv_consume(char ***l, char *s);
int strv_extendf(char ***l, const char *fmt, ...) _printf_(2, 3);
int strv_extend_strv(char ***l, const char *const *other);
char **strv_copy(const char *const *l);
bool strv_contains(const char *const *l, const char *s);
/* For "K=V" lists: the value of K, or NULL. */
const char *strv_env_get(const char *const *l, const char *key);
/* For "K=V" lists: replace an existing K or append. */
int strv_env_set(char ***l, const char *key, const char *value);
char *strv_join(const char *const *l, const char *sep);

#define STRV_FOREACH(s, l) for (char *const *s = (l); s && *s; s++)
