/* SPDX-License-Identifier: Apache-2.0 */
/* vault-spawn.h: run a helper (systemd-creds, the operator's passphrase-command) with posix_spawn
 * and an argv array — never a shell — feeding stdin and capturing stdout into guarded memory,
 * with a deadline after which the child is killed. Never prints, never logs what it captured. */
#pragma once

#include <stddef.h>

#define SPAWN_OUT_MAX 65536u

typedef struct spawn_result {
    unsigned char *out; /* sodium_malloc(SPAWN_OUT_MAX); wiped and freed by spawn_result_done */
    size_t out_len;
    int status;        /* exit status, or 128+signal */
    char errline[160]; /* first line of stderr, control characters replaced; for diagnostics */
} spawn_result;

/* 0 when the child ran to the end (look at ->status); -ENOENT when the program is missing,
 * -ETIMEDOUT when it was killed at the deadline, -E2BIG when stdout overflowed, else -errno. */
int spawn_capture(char *const argv[], const void *in, size_t in_len, int timeout_ms,
                  spawn_result *ret);
void spawn_result_done(spawn_result *r);

/* Split a command line into argv without a shell: whitespace separates, '…' is literal,
 * "…" allows \" and \\, a backslash outside quotes escapes the next character. -EINVAL on an
 * unterminated quote or an empty command. *ret is a NULL-terminated malloc'd vector. */
int split_command(const char *s, char ***ret);
char **strv_free_(char **v);
