/* SPDX-License-Identifier: Apache-2.0 */
/* podman-it.h: shared fixture and helpers of the runtime-podman integration tests: the plugin
 * loaded through podman-harness, one state per test, every container the test made labelled
 * with the test's run id and removed in teardown, output collected into buffers. */
#pragma once

#include <criterion/criterion.h>
#include <stdbool.h>

#include "error.h"
#include "podman-harness.h"

#define IT_IMAGE "localhost/terok-busybox:test"

extern const terok_runtime_ops *ops;
extern void *st;           /* the test's plugin state */
extern terok_error err;    /* cleared by IT_OK */
extern bool rootless;      /* euid != 0 */
extern char run_label[64]; /* "terok.it.run=<pid>" on every container */
extern char tmp[256];      /* per-test scratch directory */

void it_setup(void);
void it_teardown(void);

/* Fails the test with the plugin's message. */
#define IT_OK(expr)                                                                                \
    do {                                                                                           \
        int _r = (expr);                                                                           \
        cr_assert(_r >= 0, "%s failed: %d (%s)", #expr, _r, terok_error_message(&err));            \
        terok_error_clear(&err);                                                                   \
    } while (0)

/* A spec with the test's label, the test image, network none and `argv`. Name "it-<pid>-<sfx>". */
typedef struct it_spec {
    terok_run_spec s;
    char name[96];
    const char *labels[4];
} it_spec;
void it_spec_init(it_spec *sp, const char *suffix, const char *const *argv);

/* Output collected from logs/exec. */
typedef struct it_output {
    char out[65536], err[16384], all[81920];
    size_t out_len, err_len, all_len;
} it_output;
int it_output_cb(void *userdata, int stream, const void *data, size_t len);
/* A terok_container_cb counting calls into the int userdata points to. */
int it_count_cb(void *userdata, const terok_container_info *info);

/* create + start + wait (60 s) + logs; returns the exit code. *ret_id is freed by the caller
 * with harness_free (NULL to not keep it). */
int it_run(const terok_run_spec *s, it_output *o, char **ret_id);
/* Full hardening the core applies by default, on top of it_spec_init. */
void it_harden(it_spec *sp);
/* Path of the built terok-init. */
const char *it_init_path(void);
/* Spec mount of terok-init at /run/terok-init (read-only file mount). */
terok_mount it_init_mount(void);
