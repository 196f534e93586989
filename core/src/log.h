/* SPDX-License-Identifier: Apache-2.0 */
/* log.h: the operator-facing log (stderr by default). Library code logs at debug level only;
 * warnings and errors are logged by the CLI and daemon main loops. Never pass a secret. */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "util/macro.h"

void log_set_max_level(int level);
int log_get_max_level(void);
/* Parses "err|warning|notice|info|debug"; -EINVAL otherwise. */
int log_level_from_string(const char *s);
void log_set_prefix(const char *prefix); /* borrowed; "terok-sandbox" by default */

void log_fullv(int level, const char *fmt, va_list ap) _printf_(2, 0);
void log_full(int level, const char *fmt, ...) _printf_(2, 3);
/* Logs with errno = -r for %m and returns r. */
int log_full_errno(int level, int r, const char *fmt, ...) _printf_(3, 4);

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)
#define log_error_errno(r, ...) log_full_errno(LOG_ERR, r, __VA_ARGS__)
#define log_warning_errno(r, ...) log_full_errno(LOG_WARNING, r, __VA_ARGS__)
