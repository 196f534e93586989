/* SPDX-License-Identifier: Apache-2.0 */
/*
 * terok/shield.h: the egress firewall interface (shield-nft, yours).
 *
 * prepare() runs at compose time on the host and writes a resolved policy bundle; apply() runs
 * inside the OCI hook (createRuntime) with the container's pid and must fail closed: any error
 * means the container does not start. Live changes (posture, allow, deny) reach a running
 * container without a restart. Targets are IPs, CIDRs, "host:port" and domain names; a shield
 * validates every target and never pastes one unvalidated into a rule language.
 */
#ifndef TEROK_SHIELD_H
#define TEROK_SHIELD_H

#include <stddef.h>
#include <stdint.h>

#include "terok/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TEROK_SHIELD_CAP_EGRESS (UINT64_C(1) << 0)   /* default-deny egress */
#define TEROK_SHIELD_CAP_DNS (UINT64_C(1) << 1)      /* domain targets, TTL-following */
#define TEROK_SHIELD_CAP_LIVE (UINT64_C(1) << 2)     /* allow/deny/posture without restart */
#define TEROK_SHIELD_CAP_EVENTS (UINT64_C(1) << 3)   /* blocked-connection events */
#define TEROK_SHIELD_CAP_ROOTLESS (UINT64_C(1) << 4) /* works for rootless containers */
#define TEROK_SHIELD_CAP_TIMED (UINT64_C(1) << 5)    /* allow for a duration */

enum {
    TEROK_SHIELD_UP = 1,         /* enforcing */
    TEROK_SHIELD_DOWN = 2,       /* bypass, logged */
    TEROK_SHIELD_QUARANTINE = 3, /* nothing out, established flows cut */
    TEROK_SHIELD_OFFLINE = 4,    /* container not running */
    TEROK_SHIELD_ERROR = 5,
};

/* The policy the core resolved for a container. */
typedef struct terok_shield_policy {
    uint32_t struct_size;
    uint32_t flags;
    const char *container;
    const char *const *profiles; /* profile names */
    const char *const *allow;    /* targets */
    const char *const *deny;
    const char *const *override; /* break-glass allows above the deny tier */
    const char *dns_resolver;    /* resolver the container may query, or NULL */
    uint32_t rootless;
    uint32_t reserved0;
} terok_shield_policy;

/* What prepare() hands back for the run spec. Arrays allocated with host->alloc / strdup and
 * released by the host. */
typedef struct terok_shield_prepared {
    uint32_t struct_size;
    uint32_t reserved0;
    char *bundle_path;  /* absolute path of the bundle written */
    char **annotations; /* "K=V", NULL-terminated: gate the OCI hook */
    char **env;         /* "K=V" to add to the container, may be NULL */
} terok_shield_prepared;

/* One blocked connection. */
typedef struct terok_shield_event {
    uint32_t struct_size;
    uint32_t protocol; /* IPPROTO_* */
    const char *container;
    const char *dest_ip;
    uint32_t dest_port;
    uint32_t reserved0;
    const char *domain; /* when the shield knows it, else NULL */
    int64_t time_ns;
} terok_shield_event;
typedef int (*terok_shield_event_cb)(void *userdata, const terok_shield_event *ev);
typedef int (*terok_shield_text_cb)(void *userdata, const char *data, size_t len);

typedef struct terok_shield_ops {
    uint32_t struct_size;
    uint32_t reserved0;
    uint64_t caps; /* TEROK_SHIELD_CAP_* */

    /* --- ABI 1.0 --- */
    int (*open)(terok_plugin *self, const terok_config_section *cfg, void **ret_state,
                terok_error *err);
    void (*close)(void *state);
    /* Host side, at compose: resolve policy, write the bundle, fill *out. */
    int (*prepare)(void *state, const terok_shield_policy *policy, terok_shield_prepared *out,
                   terok_error *err);
    /* Hook side: install the bundle's ruleset in the netns of pid and verify it. */
    int (*apply)(void *state, const char *bundle_path, int64_t pid, terok_error *err);
    int (*verify)(void *state, const char *container, int64_t pid, terok_error *err);
    /* Hook side at poststop, and on rm: release what apply/prepare made. Idempotent. */
    int (*cleanup)(void *state, const char *container, terok_error *err);
    int (*posture_set)(void *state, const char *container, uint32_t posture, terok_error *err);
    int (*posture_get)(void *state, const char *container, uint32_t *ret_posture, terok_error *err);
    /* duration_ms 0: until revoked. */
    int (*allow)(void *state, const char *container, const char *target, int64_t duration_ms,
                 terok_error *err);
    int (*deny)(void *state, const char *container, const char *target, terok_error *err);
    int (*rules)(void *state, const char *container, terok_shield_text_cb cb, void *userdata,
                 terok_error *err);
    /* Blocked events: an fd to poll (owned by the shield) and a dispatch that reads it. */
    int (*events_fd)(void *state, const char *container, int *ret_fd, terok_error *err);
    int (*events_dispatch)(void *state, const char *container, terok_shield_event_cb cb,
                           void *userdata, terok_error *err);
    int (*ctl)(void *state, uint32_t op, void *arg, terok_error *err);
    /* --- append below this line only; bump TEROK_PLUGIN_ABI_MINOR --- */
} terok_shield_ops;

/* ctl opcodes of the shield kind (below 0x10000 they are the core's). */
#define TEROK_SHIELD_CTL_REFRESH 0x10000u      /* arg: terok_shield_ctl_refresh * */
#define TEROK_SHIELD_CTL_STATUS 0x10001u       /* arg: terok_shield_ctl_text * */
#define TEROK_SHIELD_CTL_EVENTS_OPEN 0x10002u  /* arg: terok_shield_ctl_events * */
#define TEROK_SHIELD_CTL_EVENTS_CLOSE 0x10003u /* arg: terok_shield_ctl_events * */

/* Re-resolve a container's domain targets and re-add their current addresses with fresh
 * TTL-derived timeouts; stale addresses expire on their own. The caller schedules the next
 * refresh within ret_next_ms (-1: the container has no domain targets). */
typedef struct terok_shield_ctl_refresh {
    uint32_t struct_size;
    uint32_t reserved0;
    const char *container;
    int64_t ret_next_ms;
} terok_shield_ctl_refresh;

/* A text report about one container handed to cb (STATUS: one JSON object). */
typedef struct terok_shield_ctl_text {
    uint32_t struct_size;
    uint32_t reserved0;
    const char *container;
    terok_shield_text_cb cb;
    void *userdata;
} terok_shield_ctl_text;

/* EVENTS_OPEN: events_fd() plus the pid of the process whose netns the source reads, so the
 * caller can watch that process (pidfd) and close the source when it exits: the fd itself never
 * reports a hang-up. A source left from an earlier run of the container (another pid) is
 * replaced. EVENTS_CLOSE: close the container's source (ret_* unused); the bundle is untouched,
 * unlike cleanup(). Idempotent. */
typedef struct terok_shield_ctl_events {
    uint32_t struct_size;
    uint32_t reserved0;
    const char *container;
    int32_t ret_fd; /* owned by the shield, like events_fd's */
    uint32_t reserved1;
    int64_t ret_pid;
} terok_shield_ctl_events;

#ifdef __cplusplus
}
#endif

#endif /* TEROK_SHIELD_H */
