/* SPDX-License-Identifier: Apache-2.0 */
/*
 * terok/clearance.h: asking the operator about a blocked connection (clearance-dbus, yours).
 *
 * ask() posts a question and returns at once; the verdict arrives later through dispatch()
 * when the fd from get_fd() is readable. A timeout, a dismissed question or any error is a
 * deny: a clearance backend never fails open.
 */
#ifndef TEROK_CLEARANCE_H
#define TEROK_CLEARANCE_H

#include <stddef.h>
#include <stdint.h>

#include "terok/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TEROK_CLEARANCE_CAP_INTERACTIVE (UINT64_C(1) << 0)    /* a person answers */
#define TEROK_CLEARANCE_CAP_DESKTOP (UINT64_C(1) << 1)        /* desktop notifications */
#define TEROK_CLEARANCE_CAP_TIMED_VERDICTS (UINT64_C(1) << 2) /* allow for a duration */

enum {
    TEROK_VERDICT_DENY = 0,
    TEROK_VERDICT_ALLOW_ONCE = 1,
    TEROK_VERDICT_ALLOW_FOR = 2, /* duration_ms set */
    TEROK_VERDICT_ALLOW_ALWAYS = 3,
};

typedef struct terok_clearance_request {
    uint32_t struct_size;
    uint32_t protocol;
    const char *container;
    const char *dest_ip;
    uint32_t dest_port;
    uint32_t reserved0;
    const char *domain; /* or NULL */
    int64_t timeout_ms; /* after which the question counts as denied; 0 = backend default */
} terok_clearance_request;

typedef struct terok_clearance_verdict {
    uint32_t struct_size;
    uint32_t verdict; /* TEROK_VERDICT_* */
    uint64_t request_id;
    int64_t duration_ms;
    const char *reason; /* "timeout", "dismissed", "operator", ... */
} terok_clearance_verdict;
typedef int (*terok_clearance_verdict_cb)(void *userdata, const terok_clearance_verdict *v);

typedef struct terok_clearance_ops {
    uint32_t struct_size;
    uint32_t reserved0;
    uint64_t caps; /* TEROK_CLEARANCE_CAP_* */

    /* --- ABI 1.0 --- */
    int (*open)(terok_plugin *self, const terok_config_section *cfg, void **ret_state,
                terok_error *err);
    void (*close)(void *state);
    int (*ask)(void *state, const terok_clearance_request *req, uint64_t *ret_request_id,
               terok_error *err);
    int (*cancel)(void *state, uint64_t request_id, terok_error *err);
    int (*get_fd)(void *state, int *ret_fd, terok_error *err);
    /* Deliver every verdict that is ready; returns the number delivered. */
    int (*dispatch)(void *state, terok_clearance_verdict_cb cb, void *userdata, terok_error *err);
    int (*ctl)(void *state, uint32_t op, void *arg, terok_error *err);
    /* --- append below this line only; bump TEROK_PLUGIN_ABI_MINOR --- */
} terok_clearance_ops;

#ifdef __cplusplus
}
#endif

#endif /* TEROK_CLEARANCE_H */
