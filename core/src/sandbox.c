/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: replaced by the real implementation. */
#include "sandbox.h"
#include <errno.h>
#include <stddef.h>
int sandbox_open(const char *config_file, sandbox **ret, terok_error *err)
{
    return -EOPNOTSUPP;
}
sandbox *sandbox_free(sandbox *s)
{
    return NULL;
}
int sandbox_store(sandbox *s, store **ret, terok_error *err)
{
    return -EOPNOTSUPP;
}
void run_request_init(run_request *r)
{
}
void run_request_done(run_request *r)
{
}
void sandbox_notes_done(sandbox_notes *n)
{
}
int sandbox_create(sandbox *s, const run_request *req, sandbox_notes *notes, char **ret_name,
                   terok_error *err)
{
    return -EOPNOTSUPP;
}
int sandbox_start(sandbox *s, const char *name, terok_error *err)
{
    return -EOPNOTSUPP;
}
int sandbox_stop(sandbox *s, const char *name, int64_t timeout_s, terok_error *err)
{
    return -EOPNOTSUPP;
}
int sandbox_remove(sandbox *s, const char *name, bool force, bool *ret_existed, terok_error *err)
{
    return -EOPNOTSUPP;
}
int sandbox_wait(sandbox *s, const char *name, int64_t timeout_ms, int *ret_exit_code,
                 terok_error *err)
{
    return -EOPNOTSUPP;
}
int sandbox_exec(sandbox *s, const char *name, const terok_exec_spec *spec, int *ret_exit_code,
                 terok_error *err)
{
    return -EOPNOTSUPP;
}
int sandbox_logs(sandbox *s, const char *name, const terok_logs_opts *o, terok_output_cb cb,
                 void *userdata, terok_error *err)
{
    return -EOPNOTSUPP;
}
int sandbox_list(sandbox *s, bool all, container_view_cb cb, void *userdata, terok_error *err)
{
    return -EOPNOTSUPP;
}
int sandbox_inspect(sandbox *s, const char *name, container_view_cb cb, void *userdata,
                    terok_error *err)
{
    return -EOPNOTSUPP;
}
