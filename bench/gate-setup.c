/* SPDX-License-Identifier: Apache-2.0 */
/* bench/gate-setup.c: gate-setup PROJECT: create an empty gate project through the configured
 * gate backend (the config comes from $TEROK_SANDBOX_CONFIG), for bench/gate. */
#include <stdio.h>

#include "error.h"
#include "gate.h"
#include "sandbox.h"

int main(int argc, char **argv)
{
    terok_error err = TEROK_ERROR_INIT;
    sandbox *sb = NULL;
    gate g;
    int r;

    if (argc != 2) {
        fprintf(stderr, "usage: gate-setup PROJECT\n");
        return 2;
    }
    terok_gate_repo_spec spec = {.struct_size = sizeof spec, .name = argv[1], .branch = "main"};
    r = sandbox_open(NULL, &sb, &err);
    if (r >= 0)
        r = gate_open(sb->registry, 0, &g, &err);
    if (r >= 0)
        r = gate_repo_create(&g, &spec, &err);
    if (r < 0)
        fprintf(stderr, "gate-setup: %s\n", terok_error_message(&err));
    terok_error_clear(&err);
    sandbox_free(sb);
    return r < 0 ? 1 : 0;
}
