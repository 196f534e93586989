/* SPDX-License-Identifier: Apache-2.0 */
/* util/macro.h: cleanup attributes, ownership helpers and small macros used across the core and
 * the bundled plugins (systemd src/basic style). Never include from an SDK header. */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _warn_unused_ __attribute__((warn_unused_result))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
/* Each argument evaluated once (MAX(evloop_add_timer(...), 0) once armed two timers). Both are
 * held in their common type (that of `c ? a : b`, the usual arithmetic conversions), so the
 * comparison and the result are what the plain operators give. Not for constant expressions. */
#define CONCATENATE_(a, b) a##b
#define CONCATENATE(a, b) CONCATENATE_(a, b)
#define UNIQ_T(x, uniq) CONCATENATE(x, uniq)
#define MIN(a, b) MINMAX_(<, __COUNTER__, a, b)
#define MAX(a, b) MINMAX_(>, __COUNTER__, a, b)
#define MINMAX_(op, uniq, a, b)                                                                    \
    __extension__({                                                                                \
        const __typeof__(1 ? (a) : (b)) UNIQ_T(_a_, uniq) = (a);                                   \
        const __typeof__(1 ? (a) : (b)) UNIQ_T(_b_, uniq) = (b);                                   \
        UNIQ_T(_a_, uniq) op UNIQ_T(_b_, uniq) ? UNIQ_T(_a_, uniq) : UNIQ_T(_b_, uniq);            \
    })
#define streq(a, b) (strcmp((a), (b)) == 0)
#define strneq(a, b, n) (strncmp((a), (b), (n)) == 0)
#define isempty(s) (!(s) || !*(s))
#define strna(s) ((s) ? (s) : "n/a")
#define strempty(s) ((s) ? (s) : "")

/* Hand ownership on: returns the value and clears the variable. */
#define TAKE_PTR(p)                                                                                \
    __extension__({                                                                                \
        __typeof__(p) _p_ = (p);                                                                   \
        (p) = NULL;                                                                                \
        _p_;                                                                                       \
    })
#define TAKE_FD(fd)                                                                                \
    __extension__({                                                                                \
        int _fd_ = (fd);                                                                           \
        (fd) = -EBADF;                                                                             \
        _fd_;                                                                                      \
    })

static inline void freep(void *p)
{
    free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Generates `static inline void fnp(type **p)` calling fn(*p) when non-NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, fn)                                                      \
    static inline void fn##p(type **p)                                                             \
    {                                                                                              \
        if (*p)                                                                                    \
            fn(*p);                                                                                \
    }

/* errno as a negative return, never 0 (a failing call that forgot errno is still a failure). */
static inline int negative_errno(void)
{
    return errno > 0 ? -errno : -EIO;
}
