/* SPDX-License-Identifier: Apache-2.0 */
/* runtime.h: core wrappers over the runtime ops: NULL op or missing cap -> -EOPNOTSUPP with a
 * message, context added to every error. The only way core code calls a runtime plugin. */
#pragma once

#include "registry.h"
#include "terok/runtime.h"

typedef struct runtime {
    plugin *plugin;
    void *state;
} runtime;

int runtime_get(registry *r, uint64_t required_caps, runtime *ret, terok_error *err);

int runtime_create(runtime *rt, const terok_run_spec *spec, char **ret_id, terok_error *err);
int runtime_start(runtime *rt, const char *ref, terok_error *err);
int runtime_stop(runtime *rt, const char *ref, int64_t timeout_s, terok_error *err);
int runtime_kill(runtime *rt, const char *ref, int signo, terok_error *err);
int runtime_remove(runtime *rt, const char *ref, uint32_t flags, terok_error *err);
int runtime_wait(runtime *rt, const char *ref, int64_t timeout_ms, int *ret_exit_code,
                 terok_error *err);
int runtime_inspect(runtime *rt, const char *ref, terok_container_cb cb, void *userdata,
                    terok_error *err);
int runtime_list(runtime *rt, const terok_list_filter *f, terok_container_cb cb, void *userdata,
                 terok_error *err);
int runtime_exec(runtime *rt, const char *ref, const terok_exec_spec *spec, int *ret_exit_code,
                 terok_error *err);
int runtime_logs(runtime *rt, const char *ref, const terok_logs_opts *o, terok_output_cb cb,
                 void *userdata, terok_error *err);
int runtime_copy_in(runtime *rt, const char *ref, const char *host_path, const char *container_path,
                    terok_error *err);
int runtime_image_inspect(runtime *rt, const char *image, terok_image_cb cb, void *userdata,
                          terok_error *err);
int runtime_events(runtime *rt, const terok_list_filter *f, terok_event_cb cb, void *userdata,
                   terok_error *err);
/* ctl START_ATTACHED: attach io to the created container, start it, stream until it ends;
 * *ret_exit_code its status when the runtime knew it at once, else -1.
 * -EOPNOTSUPP when the backend cannot (the caller starts, follows the logs and waits). */
int runtime_start_attached(runtime *rt, const char *ref, const terok_exec_spec *io,
                           int *ret_exit_code, terok_error *err);
/* The backend's ctl(): TEROK_RUNTIME_CTL_* or a backend-specific opcode. */
int runtime_ctl(runtime *rt, uint32_t op, void *arg, terok_error *err);
