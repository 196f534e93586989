/* SPDX-License-Identifier: Apache-2.0 */
/* The value parsers behind config keys and CLI flags: booleans, sizes, durations, CPU counts,
 * volumes, --repo, --tcp listeners. Input: one selector byte, then the value text. Each parser
 * must accept or refuse with an error naming the value; nothing it returns may point outside
 * the input. */
#include <stdlib.h>
#include <string.h>

#include "config-internal.h"
#include "config.h"
#include "daemon/tcp-listener.h"
#include "error.h"
#include "fuzz.h"
#include "spec.h"
#include "wiring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    terok_error err = TEROK_ERROR_INIT;
    char *s;

    if (size < 1)
        return 0;
    s = fuzz_strndup(data + 1, size - 1);
    switch (data[0] % 8) {
    case 0: {
        bool b;
        (void)parse_bool(s, &b);
        break;
    }
    case 1: {
        uint64_t v;
        (void)parse_size(s, &v);
        break;
    }
    case 2: {
        int64_t v;
        (void)parse_duration_ms(s, &v);
        break;
    }
    case 3: {
        int64_t v;
        (void)parse_decimal_milli(s, &v);
        break;
    }
    case 4: {
        int64_t v;
        if (spec_parse_cpus(s, &v) == 0 && (v < 0 || v > 100000999))
            abort(); /* an accepted CPU count is in range */
        break;
    }
    case 5: {
        volume_req v = {0};
        if (spec_parse_volume(s, &v, &err) == 0) {
            if (!v.source || !v.target || strlen(v.source) + strlen(v.target) >= strlen(s))
                abort(); /* both parts come from the input, with a ':' between them */
            free(v.source);
            free(v.target);
        } else if (!err.message)
            abort(); /* a refusal says why */
        break;
    }
    case 6: {
        char buf[256];
        uint32_t rights;
        if (wiring_parse_repo(s, buf, sizeof buf, &rights, &err) == 0) {
            if (strlen(buf) > strlen(s) || !strlen(buf))
                abort();
        } else if (!err.message)
            abort();
        break;
    }
    case 7: {
        tcp_listener l;
        char *owned = NULL;
        if (tcp_listener_parse(s, &l, &owned) == 0) {
            if (!l.address || !l.container)
                abort();
        }
        free(owned);
        break;
    }
    }
    terok_error_clear(&err);
    free(s);
    return 0;
}
