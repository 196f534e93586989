/* SPDX-License-Identifier: Apache-2.0 */
/* terok-test.h: shared test helpers: an assertion that prints the terok_error, a per-test
 * temporary directory with its own state/runtime/config dirs, and a runner for the CLI binary
 * that captures exit code, stdout and stderr. */
#pragma once

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* terok_assert_ok(r = f(..., &err), &err): fails with the error message. */
#define terok_assert_ok(expr, errp)                                                                \
    do {                                                                                           \
        int _r = (expr);                                                                           \
        cr_assert(_r >= 0, "%s failed: %d (%s)", #expr, _r, terok_error_message(errp));            \
        terok_error_clear(errp);                                                                   \
    } while (0)

/* Per-test directory: created by test_tmpdir_setup(), removed by test_tmpdir_teardown().
 * Sets TEROK_SANDBOX_STATE_DIR=<tmp>/state, TEROK_SANDBOX_RUNTIME_DIR=<tmp>/run,
 * XDG_CONFIG_HOME=<tmp>/config, HOME=<tmp>/home, and unsets TEROK_SANDBOX_CONFIG. */
extern char *test_tmp;
void test_tmpdir_setup(void);
void test_tmpdir_teardown(void);
/* Path under test_tmp (static buffer rotation of 8; copy if kept). */
const char *test_path(const char *rel);
/* Run a command (git): fail the test with its stderr unless it exits 0; returns its stdout with
 * trailing newlines and spaces trimmed (caller frees). */
char *test_git_ok(const char *const *argv);
#define TEST_GIT(...) test_git_ok((const char *const[]){"git", __VA_ARGS__, NULL})
/* Write work/file with content (NULL: msg and a newline) and commit it with msg. */
void test_commit_file(const char *work, const char *file, const char *content, const char *msg);

/* Whether pid runs (a zombie left for a subreaper to collect does not). */
bool test_pid_alive(int pid);

/* The private Podman service runtime-podman started under dir (<dir>/run/runtime-podman), or 0;
 * stop it (SIGTERM, not waited for). */
pid_t test_private_podman_pid(const char *dir);
void test_stop_private_podman(const char *dir);
/* Detach every mount under dir, deepest first (Podman's overlay driver leaves storage mounted
 * under a test's own --root); only as root. */
void test_unmount_under(const char *dir);
/* Write a file (mode 0644 unless given) under test_tmp, creating parents. Returns its path. */
const char *test_write_file(const char *rel, const char *content, unsigned mode);
/* A config file using the built plugins ([core] plugin-dir = $TEROK_TEST_PLUGIN_DIR) followed
 * by `extra`; returns its path. */
const char *test_write_config(const char *extra);

/* Run the CLI (TEROK_TEST_CLI) with argv (NULL-terminated, without argv[0]); stdin from
 * `input` (may be NULL). Captured output is NUL-terminated. */
typedef struct cli_result {
    int exit_code; /* 128+sig when killed */
    char *out;
    char *err;
} cli_result;
cli_result test_cli(const char *input, const char *const *argv);
#define TEST_CLI(...) test_cli(NULL, (const char *const[]){__VA_ARGS__, NULL})
void cli_result_done(cli_result *r);
/* Run an arbitrary program the same way. */
cli_result test_run(const char *input, const char *const *argv);
