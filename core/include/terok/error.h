/* SPDX-License-Identifier: Apache-2.0 */
/*
 * terok/error.h: the error record shared by the core and every plugin.
 *
 * Functions return 0 (or a count) on success and a negative errno on failure, and fill an
 * optional terok_error with a human message. The int says what kind of failure it was; the
 * message says what failed and on what. Plugins fill it through the host table (see plugin.h).
 */
#ifndef TEROK_ERROR_H
#define TEROK_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TEROK_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define TEROK_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#else
#define TEROK_PRINTF(fmt, args)
#define TEROK_NONNULL(...)
#endif

/* The error record. `message` is owned by the record (heap, or a static "out of memory"
 * string the host recognises); release it with the host's clear function. */
typedef struct terok_error {
    int code;      /* 0, or a negative errno */
    char *message; /* NULL, or what failed and on what */
} terok_error;

#define TEROK_ERROR_INIT                                                                           \
    {                                                                                              \
        0, NULL                                                                                    \
    }

#ifdef __cplusplus
}
#endif

#endif /* TEROK_ERROR_H */
