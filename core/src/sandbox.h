/* SPDX-License-Identifier: Apache-2.0 */
/* sandbox.h: the container lifecycle as the operator sees it (DESIGN §7): validate the request,
 * fill hardening defaults from config, compose the spec, record the container in the store,
 * create/start through the runtime, and roll everything back on failure. `rm` is idempotent.
 * Never prints: the CLI renders what these return. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "paths.h"
#include "registry.h"
#include "store.h"
#include "terok/runtime.h"

/* The label every terok-managed container carries; `ps` lists only these. */
#define TEROK_LABEL_MANAGED "org.terok.managed"
#define TEROK_LABEL_NAME "org.terok.name"

typedef struct sandbox {
    config *config;
    paths paths;
    registry *registry;
    store *store;      /* opened on first use */
    char *config_file; /* --config as given (handed on to daemons the CLI starts), or NULL */
} sandbox;

/* config_file: --config, or NULL for $TEROK_SANDBOX_CONFIG or the chain. A config with problems
 * is refused here, naming the first problem as file:line. */
int sandbox_open(const char *config_file, sandbox **ret, terok_error *err);
sandbox *sandbox_free(sandbox *s);
int sandbox_store(sandbox *s, store **ret, terok_error *err);
/* "created", "running", ... for TEROK_CONTAINER_* ("unknown" otherwise). */
const char *container_state_name(uint32_t state);

/* A volume from the command line: HOST:TARGET[:ro|rw][,z|Z]. */
typedef struct volume_req {
    char *source;
    char *target;
    bool read_only;
    bool live;      /* bind-mounted even in sealed mode (option "live") */
    uint32_t label; /* 0, TEROK_MOUNT_SHARED_LABEL, TEROK_MOUNT_PRIVATE_LABEL */
} volume_req;

/* Tristate for operator relaxations: -1 = config default, 0 = off (relaxed), 1 = on.
 * The const char * fields are borrowed; the arrays and volumes are owned and freed by
 * run_request_done(). */
typedef struct run_request {
    const char *name; /* NULL: generated */
    const char *image;
    char **command;    /* NULL/empty: the image's Cmd */
    char **entrypoint; /* NULL: the image's Entrypoint */
    char **env;        /* "K=V" */
    char **labels;     /* "K=V", user labels (managed keys refused) */
    char **annotations;
    char **cap_add;
    char **devices;
    char **gpus; /* "all" or "vendor[:index]" */
    volume_req *volumes;
    size_t n_volumes;
    const char *hostname;
    const char *workdir;
    const char *user;
    const char *network;
    const char *userns;
    const char *oci_runtime;
    int64_t pids_limit;   /* -1 = config default */
    int64_t memory_bytes; /* -1 = config default */
    int64_t cpu_millis;   /* -1 = config default */
    int read_only;        /* tristate */
    int no_new_privs;
    int cap_drop_all;
    int default_seccomp;
    bool remove_on_exit; /* --rm */
    bool sealed; /* volumes (but live ones) are copied in before start, never bind-mounted */
    bool tty;
    bool interactive;
    bool no_shield;      /* the operator said so explicitly */
    char **shield_allow; /* --allow TARGET: the shield's allow tier */
    char **shield_deny;  /* --deny TARGET */
    char **routes;       /* broker routes to wire (NULL: every configured route) */
    bool no_routes;      /* wire no broker route at all */
    char **repos;        /* gate projects to wire: "project[:ro|:rw]" */
    /* --ssh-scope: the SSH keys linked to it reach the container's agent (NULL: none) */
    const char *ssh_scope;
    int64_t token_ttl_s; /* phantom tokens expire this long after the run; 0 = until rm */
} run_request;
void run_request_init(run_request *r);
void run_request_done(run_request *r);

/* Warnings for the operator (e.g. "running without a shield"), collected during compose. */
typedef struct sandbox_notes {
    char **warnings;
} sandbox_notes;
void sandbox_notes_done(sandbox_notes *n);

/* Validate + compose + record + create (not started). *ret_name: the container name. */
int sandbox_create(sandbox *s, const run_request *req, sandbox_notes *notes, char **ret_name,
                   terok_error *err);
int sandbox_start(sandbox *s, const char *name, terok_error *err);
/* Have the clearance daemon (started on demand) collect the container's blocked connections:
 * after start, attach asks it at once; before an attached start (foreground run), !attach only
 * makes sure it runs and its next rescan (within a second) picks the container up. 0 when the
 * container has no shield or its shield has no events. */
int sandbox_watch_events(sandbox *s, const char *name, bool attach, terok_error *err);
/* Start with the container's stdio attached to io (a foreground run, `run -it`) and return when
 * its output ends. *ret_exit_code: its exit status when the runtime had it at once, else -1 (ask
 * sandbox_wait()). -EOPNOTSUPP: the runtime cannot attach (nothing was started). */
int sandbox_start_attached(sandbox *s, const char *name, const terok_exec_spec *io,
                           int *ret_exit_code, terok_error *err);
/* stop: SIGTERM, then SIGKILL after timeout_s (config default when < 0). */
int sandbox_stop(sandbox *s, const char *name, int64_t timeout_s, terok_error *err);
/* kill: send signo to the container's main process (terok-init forwards it to the command). */
int sandbox_kill(sandbox *s, const char *name, int signo, terok_error *err);
/* rm: idempotent; absent = removed (returns 0, *ret_existed false). force stops first. */
int sandbox_remove(sandbox *s, const char *name, bool force, bool *ret_existed, terok_error *err);
int sandbox_wait(sandbox *s, const char *name, int64_t timeout_ms, int *ret_exit_code,
                 terok_error *err);
int sandbox_exec(sandbox *s, const char *name, const terok_exec_spec *spec, int *ret_exit_code,
                 terok_error *err);
int sandbox_logs(sandbox *s, const char *name, const terok_logs_opts *o, terok_output_cb cb,
                 void *userdata, terok_error *err);

/* What ps/inspect show: the runtime's view joined with the store's record. */
typedef struct container_view {
    const container_rec *rec;         /* may be NULL when the runtime knows it but we do not */
    const terok_container_info *info; /* may be NULL when the runtime lost it */
} container_view;
typedef int (*container_view_cb)(void *userdata, const container_view *v);
int sandbox_list(sandbox *s, bool all, container_view_cb cb, void *userdata, terok_error *err);
int sandbox_inspect(sandbox *s, const char *name, container_view_cb cb, void *userdata,
                    terok_error *err);
