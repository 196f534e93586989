/* SPDX-License-Identifier: Apache-2.0 */
/* util/strv.c: NULL-terminated string vectors. */
#include <stdarg.h>
#include <stdint.h>

#include "util/strv.h"

char **strv_free(char **l)
{
    if (!l)
        return NULL;
    for (char **p = l; *p; p++)
        free(*p);
    free(l);
    return NULL;
}

size_t strv_length(char *const *l)
{
    size_t n = 0;

    if (!l)
        return 0;
    while (l[n])
        n++;
    return n;
}

int strv_consume(char ***l, char *s)
{
    size_t n;
    char **t;

    if (!s)
        return -ENOMEM;
    n = strv_length(*l);
    t = reallocarray(*l, n + 2, sizeof(char *));
    if (!t) {
        free(s);
        return -ENOMEM;
    }
    t[n] = s;
    t[n + 1] = NULL;
    *l = t;
    return 0;
}

int strv_extend(char ***l, const char *s)
{
    return strv_consume(l, strdup(s));
}

int strv_extendf(char ***l, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int r;

    va_start(ap, fmt);
    r = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (r < 0)
        return -ENOMEM;
    return strv_consume(l, s);
}

int strv_extend_strv(char ***l, const char *const *other)
{
    for (const char *const *p = other; p && *p; p++) {
        int r = strv_extend(l, *p);
        if (r < 0)
            return r;
    }
    return 0;
}

char **strv_copy(const char *const *l)
{
    char **r = calloc(1, sizeof(char *));

    if (!r)
        return NULL;
    if (strv_extend_strv(&r, l) < 0)
        return strv_free(r);
    return r;
}

bool strv_contains(const char *const *l, const char *s)
{
    for (const char *const *p = l; p && *p; p++)
        if (streq(*p, s))
            return true;
    return false;
}

const char *strv_env_get(const char *const *l, const char *key)
{
    size_t k = strlen(key);

    for (const char *const *p = l; p && *p; p++)
        if (strneq(*p, key, k) && (*p)[k] == '=')
            return *p + k + 1;
    return NULL;
}

int strv_env_set(char ***l, const char *key, const char *value)
{
    size_t k = strlen(key);
    char *s = NULL;

    if (asprintf(&s, "%s=%s", key, value) < 0)
        return -ENOMEM;
    for (char **p = *l; p && *p; p++)
        if (strneq(*p, key, k) && (*p)[k] == '=') {
            free(*p);
            *p = s;
            return 0;
        }
    return strv_consume(l, s);
}

char *strv_join(const char *const *l, const char *sep)
{
    size_t n = 1, sl = strlen(sep);
    char *r, *e;

    for (const char *const *p = l; p && *p; p++)
        n += strlen(*p) + sl;
    r = malloc(n);
    if (!r)
        return NULL;
    e = r;
    *e = 0;
    for (const char *const *p = l; p && *p; p++) {
        if (p != l) {
            memcpy(e, sep, sl);
            e += sl;
        }
        size_t m = strlen(*p);
        memcpy(e, *p, m);
        e += m;
        *e = 0;
    }
    return r;
}
