/* SPDX-License-Identifier: Apache-2.0 */
/* One fuzz target: a file that defines LLVMFuzzerTestOneInput (and, if it needs set-up,
 * LLVMFuzzerInitialize). It is built twice: against libFuzzer for `scripts/fuzz`, and against
 * driver.c, which replays its committed corpus as a test of the unit suite. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The input as a NUL-terminated string (NULs inside it stay); free() it. Aborts on ENOMEM:
 * a fuzz target has nothing better to do. */
char *fuzz_strndup(const uint8_t *data, size_t size);
