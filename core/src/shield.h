/* SPDX-License-Identifier: Apache-2.0 */
/* shield.h: core wrappers over the shield backend's ops: a NULL op is -EOPNOTSUPP with a message
 * naming the backend; context naming the container is added to every error. The only way core
 * code reaches a shield plugin. Never prints. */
#pragma once

#include "registry.h"
#include "terok/shield.h"

typedef struct shield {
    plugin *plugin;
    void *state;
} shield;

/* The configured shield; -ENODEV (with a message) when [shield] backend = none. */
int shield_open(registry *r, uint64_t required_caps, shield *ret, terok_error *err);
bool shield_has_cap(const shield *s, uint64_t cap);

int shield_prepare(shield *s, const terok_shield_policy *policy, terok_shield_prepared *out,
                   terok_error *err);
/* Releases what prepare handed back (host allocator). */
void shield_prepared_done(terok_shield_prepared *p);
int shield_apply(shield *s, const char *bundle_path, int64_t pid, terok_error *err);
int shield_cleanup(shield *s, const char *container, terok_error *err);
int shield_posture_set(shield *s, const char *container, uint32_t posture, terok_error *err);
int shield_posture_get(shield *s, const char *container, uint32_t *ret, terok_error *err);
int shield_allow(shield *s, const char *container, const char *target, int64_t duration_ms,
                 terok_error *err);
int shield_deny(shield *s, const char *container, const char *target, terok_error *err);
int shield_rules(shield *s, const char *container, terok_shield_text_cb cb, void *userdata,
                 terok_error *err);
int shield_status(shield *s, const char *container, terok_shield_text_cb cb, void *userdata,
                  terok_error *err);
int shield_ctl(shield *s, uint32_t op, void *arg, terok_error *err);
/* Remove the container's bundle (<plugin state>/containers/<name>/shield, docs/shield.md) and that
 * directory when nothing else is left in it. Absent is fine. After cleanup, on rm. */
int shield_forget(shield *s, const char *container, terok_error *err);
/* Whether the container has a bundle (<plugin state>/containers/<name>/shield): it was created
 * shielded. */
bool shield_has_bundle(shield *s, const char *container);
/* "up", "down", "quarantine", "offline", "error" ("unknown" otherwise). */
const char *shield_posture_name(uint32_t posture);
