/* SPDX-License-Identifier: Apache-2.0 */
/*
 * terok/runtime.h: the container runtime interface (runtime-podman, runtime-null, yours).
 *
 * The core validates a run spec and fills in every hardening default; the runtime only executes
 * what the spec says and never weakens it. A runtime that cannot honour a field it does not
 * understand returns -EOPNOTSUPP rather than ignoring it.
 *
 * Containers are named by `ref`: the name the core chose or the runtime's id.
 * Strings and arrays handed to a callback are borrowed for the duration of the call.
 */
#ifndef TEROK_RUNTIME_H
#define TEROK_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "terok/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Capabilities (ops->caps). */
#define TEROK_RUNTIME_CAP_ROOTLESS (UINT64_C(1) << 0) /* runs containers without root */
#define TEROK_RUNTIME_CAP_EXEC (UINT64_C(1) << 1)     /* exec into a running container */
#define TEROK_RUNTIME_CAP_LOGS (UINT64_C(1) << 2)
#define TEROK_RUNTIME_CAP_EVENTS (UINT64_C(1) << 3)
#define TEROK_RUNTIME_CAP_COPY (UINT64_C(1) << 4)  /* copy_in */
#define TEROK_RUNTIME_CAP_HOOKS (UINT64_C(1) << 5) /* runs OCI hooks (needed by the shield) */
#define TEROK_RUNTIME_CAP_TTY (UINT64_C(1) << 6)   /* interactive TTY exec */

/* Container states (terok_container_info.state). */
enum {
    TEROK_CONTAINER_UNKNOWN = 0,
    TEROK_CONTAINER_CREATED = 1,
    TEROK_CONTAINER_RUNNING = 2,
    TEROK_CONTAINER_PAUSED = 3,
    TEROK_CONTAINER_STOPPED = 4, /* stopping or stopped, exit code not yet known */
    TEROK_CONTAINER_EXITED = 5,
    TEROK_CONTAINER_REMOVING = 6,
};

/* Mounts. */
enum {
    TEROK_MOUNT_BIND = 1,
    TEROK_MOUNT_TMPFS = 2,
    TEROK_MOUNT_VOLUME = 3, /* a named runtime volume */
};
#define TEROK_MOUNT_RO (1u << 0)
#define TEROK_MOUNT_SHARED_LABEL (1u << 1)  /* SELinux :z */
#define TEROK_MOUNT_PRIVATE_LABEL (1u << 2) /* SELinux :Z */

/* Element of terok_run_spec.mounts. Fixed at its 1.0 layout: new fields go in a new array. */
typedef struct terok_mount {
    uint32_t type;       /* TEROK_MOUNT_* */
    uint32_t flags;      /* TEROK_MOUNT_RO | ... */
    const char *source;  /* host path, volume name, or NULL for tmpfs */
    const char *target;  /* absolute path in the container */
    const char *options; /* extra, e.g. "size=64m,mode=1777" for tmpfs; may be NULL */
} terok_mount;

/* Spec flags (terok_run_spec.flags). The hardening bits are set by the core by default; a
 * cleared bit is an explicit, recorded relaxation by the operator. */
#define TEROK_SPEC_CAP_DROP_ALL (1u << 0) /* drop every capability, then add cap_add */
#define TEROK_SPEC_NO_NEW_PRIVS (1u << 1) /* no_new_privileges */
#define TEROK_SPEC_READ_ONLY_ROOT (1u << 2)
#define TEROK_SPEC_DEFAULT_SECCOMP (1u << 3) /* the runtime's default seccomp profile */
#define TEROK_SPEC_REMOVE_ON_EXIT (1u << 4)  /* ephemeral (--rm) */
#define TEROK_SPEC_TTY (1u << 5)             /* allocate a TTY for the main process */
#define TEROK_SPEC_STDIN (1u << 6)           /* keep stdin open for attach */
#define TEROK_SPEC_SEALED (1u << 7)          /* no bind mounts except live ones; copy_in instead */

/* What to run and how. Every string array is NULL-terminated ("K=V" for env, labels,
 * annotations, sysctls). Unset numbers are 0; unset strings NULL. */
typedef struct terok_run_spec {
    uint32_t struct_size;
    uint32_t flags; /* TEROK_SPEC_* */

    /* --- ABI 1.0 --- */
    const char *name;  /* container name, [a-zA-Z0-9][a-zA-Z0-9_.-]* */
    const char *image; /* image reference */
    /* The full argv of the container's first process: entrypoint + command, already resolved
     * by the core (terok-init wrapper included). The runtime sets the entrypoint to argv[0..]
     * and no separate command, so nothing from the image is appended behind the core's back. */
    const char *const *argv;
    const char *const *env;
    const char *const *labels;
    const char *const *annotations;
    const char *const *cap_add; /* capability names without CAP_, lower case: "perfmon" */
    const char *const *devices; /* "/dev/x[:/dev/y[:rwm]]" or CDI names "vendor.com/class=name" */
    const char *const *sysctls;
    const terok_mount *mounts;
    size_t n_mounts;
    const char *hostname;
    const char *workdir;
    const char *user;    /* "uid[:gid]" or NULL for the image's */
    const char *network; /* "none" | "slirp4netns[:opts]" | "pasta[:opts]" | "bridge" | "ns:PATH" */
    const char *userns;  /* "auto" | "keep-id[:opts]" | "host" | NULL for the runtime default */
    const char *oci_runtime;     /* "crun", or NULL for the runtime's default */
    const char *seccomp_profile; /* path, or NULL for the default profile */
    int64_t pids_limit;          /* 0 = unlimited */
    int64_t memory_bytes;        /* 0 = unlimited */
    int64_t cpu_millis;          /* 1000 = one CPU; 0 = unlimited */
    int64_t stop_timeout_s;      /* grace before SIGKILL on stop; 0 = runtime default */
    const char *const
        *hooks_annotations; /* reserved for the shield: annotation keys gating hooks */
    /* ABI 1.0 ends here; append only */
} terok_run_spec;

/* What a runtime reports about one container (inspect, list). */
typedef struct terok_container_info {
    uint32_t struct_size;
    uint32_t state; /* TEROK_CONTAINER_* */

    /* --- ABI 1.0 --- */
    const char *id;
    const char *name;
    const char *image;
    const char *status; /* the runtime's own words, e.g. "Exited (3) 2 seconds ago" */
    int64_t pid;        /* host pid of the first process, 0 when not running */
    int32_t exit_code;  /* valid for EXITED */
    int32_t reserved0;
    int64_t created_at; /* unix seconds; 0 unknown */
    int64_t started_at;
    int64_t finished_at;
    const char *const *labels;      /* "K=V" */
    const char *const *annotations; /* "K=V" */
    const char *const *mounts;      /* "source:target[:ro]" */
    const char *raw_json;           /* the runtime's full inspect document, or NULL */
    /* ABI 1.0 ends here; append only */
} terok_container_info;

typedef struct terok_image_info {
    uint32_t struct_size;
    uint32_t reserved0;
    const char *id;
    const char *const
        *entrypoint;        /* the image's Config.Entrypoint, NULL-terminated, may be empty */
    const char *const *cmd; /* the image's Config.Cmd */
    const char *const *env;
    const char *user;
    const char *workdir;
    /* ABI 1.0 ends here; append only */
} terok_image_info;

/* Filter for list(): containers carrying every label in `labels` ("K=V" or "K"), and whose
 * name starts with name_prefix when set. Stopped ones too when TEROK_LIST_ALL. */
#define TEROK_LIST_ALL (1u << 0)
typedef struct terok_list_filter {
    uint32_t struct_size;
    uint32_t flags;
    const char *const *labels;
    const char *name_prefix;
} terok_list_filter;

/* Output of exec/logs: stream 1 stdout, 2 stderr. Return 0 to go on, nonzero to stop. */
typedef int (*terok_output_cb)(void *userdata, int stream, const void *data, size_t len);

#define TEROK_EXEC_TTY (1u << 0)         /* allocate a TTY (stdout and stderr merged) */
#define TEROK_EXEC_INTERACTIVE (1u << 1) /* attach stdin_fd */
#define TEROK_EXEC_RESIZE_FD (1u << 2)   /* with TTY: resize_fd is set (appended field) */
typedef struct terok_exec_spec {
    uint32_t struct_size;
    uint32_t flags; /* TEROK_EXEC_* */
    const char *const *argv;
    const char *const *env; /* added to the container's */
    const char *user;
    const char *workdir;
    int stdin_fd;  /* with INTERACTIVE; -1 otherwise */
    int stdout_fd; /* output goes here unless `output` is set; -1 discards */
    int stderr_fd;
    uint16_t tty_rows, tty_cols;
    terok_output_cb output; /* captured output; when set, the fds above are not written */
    void *userdata;
    /* ABI 1.0 ends here; append only */
    /* --- appended after 1.0 --- With TEROK_EXEC_RESIZE_FD: every 4-byte record {uint16_t rows,
     * cols} (host byte order) readable from this fd resizes the TTY while the session runs (the
     * host writes one on SIGWINCH). The runtime reads it, never closes it. */
    int resize_fd;
} terok_exec_spec;
#define TEROK_EXEC_SPEC_SIZE_1_0 (offsetof(terok_exec_spec, userdata) + sizeof(void *))

#define TEROK_LOGS_FOLLOW (1u << 0)
#define TEROK_LOGS_TIMESTAMPS (1u << 1)
typedef struct terok_logs_opts {
    uint32_t struct_size;
    uint32_t flags;
    int64_t tail; /* last N lines; < 0 = all */
} terok_logs_opts;

/* Events: one container lifecycle event. action: "create", "start", "died", "remove", ... */
typedef struct terok_event {
    uint32_t struct_size;
    int32_t exit_code; /* for "died"; -1 otherwise */
    const char *action;
    const char *id;
    const char *name;
    const char *const *labels;
    int64_t time_ns;
} terok_event;
typedef int (*terok_event_cb)(void *userdata, const terok_event *ev); /* nonzero stops */

typedef int (*terok_container_cb)(void *userdata, const terok_container_info *info);
typedef int (*terok_image_cb)(void *userdata, const terok_image_info *info);

#define TEROK_REMOVE_FORCE (1u << 0) /* stop first if running */
#define TEROK_REMOVE_VOLUMES (1u << 1)

typedef struct terok_runtime_ops {
    uint32_t struct_size;
    uint32_t reserved0;
    uint64_t caps; /* TEROK_RUNTIME_CAP_* */

    /* --- ABI 1.0 --- */
    int (*open)(terok_plugin *self, const terok_config_section *cfg, void **ret_state,
                terok_error *err);
    void (*close)(void *state); /* accepts NULL and a half-open state */

    /* Create a container; *ret_id gets the runtime's id (host->strdup). Does not start it. */
    int (*create)(void *state, const terok_run_spec *spec, char **ret_id, terok_error *err);
    int (*start)(void *state, const char *ref, terok_error *err);
    /* SIGTERM (or the image's stop signal), SIGKILL after timeout_s. Stopped already: 0. */
    int (*stop)(void *state, const char *ref, int64_t timeout_s, terok_error *err);
    int (*kill)(void *state, const char *ref, int signo, terok_error *err);
    /* -ENOENT when there is no such container; the core treats that as already removed. */
    int (*remove)(void *state, const char *ref, uint32_t flags, terok_error *err);
    /* Wait for exit; timeout_ms < 0 waits for ever; -ETIMEDOUT on timeout. */
    int (*wait)(void *state, const char *ref, int64_t timeout_ms, int *ret_exit_code,
                terok_error *err);
    /* Calls cb once with the container's info; -ENOENT when absent. */
    int (*inspect)(void *state, const char *ref, terok_container_cb cb, void *userdata,
                   terok_error *err);
    int (*list)(void *state, const terok_list_filter *filter, terok_container_cb cb, void *userdata,
                terok_error *err);
    /* Run argv in a running container; *ret_exit_code is its exit status. */
    int (*exec)(void *state, const char *ref, const terok_exec_spec *spec, int *ret_exit_code,
                terok_error *err);
    int (*logs)(void *state, const char *ref, const terok_logs_opts *opts, terok_output_cb cb,
                void *userdata, terok_error *err);
    /* Copy a host file or directory tree into a created (or running) container. */
    int (*copy_in)(void *state, const char *ref, const char *host_path, const char *container_path,
                   terok_error *err);
    /* Calls cb once with the image's info; -ENOENT when the image is not present locally. */
    int (*image_inspect)(void *state, const char *image, terok_image_cb cb, void *userdata,
                         terok_error *err);
    /* Stream lifecycle events of containers matching filter until cb returns nonzero. */
    int (*events)(void *state, const terok_list_filter *filter, terok_event_cb cb, void *userdata,
                  terok_error *err);
    /* Rare extras; unknown op: -EOPNOTSUPP. Opcodes < 0x10000 are the core's. */
    int (*ctl)(void *state, uint32_t op, void *arg, terok_error *err);
    /* --- append below this line only; bump TEROK_PLUGIN_ABI_MINOR --- */
} terok_runtime_ops;

#define TEROK_RUNTIME_OPS_SIZE_1_0 (offsetof(terok_runtime_ops, ctl) + sizeof(void (*)(void)))

/* ctl opcodes reserved by the core. */
enum {
    TEROK_RUNTIME_CTL_INFO = 1,           /* arg: terok_runtime_ctl_info * */
    TEROK_RUNTIME_CTL_START_ATTACHED = 2, /* arg: terok_runtime_ctl_attach * */
};
typedef struct terok_runtime_ctl_info {
    uint32_t struct_size;
    uint32_t rootless;       /* nonzero when containers run without root */
    const char *api_version; /* borrowed until the next call on this state */
    const char *endpoint;    /* e.g. the socket in use */
} terok_runtime_ctl_info;

/* START_ATTACHED: attach to a created container's stdio, start it, and pass its output on until
 * its stream ends (the container exited). exit_code: the container's status when the runtime
 * could read it at once, else -1 (then wait() gives it). `io` says
 * where the streams go exactly as for exec: TTY (must match TEROK_SPEC_TTY at create: the
 * stream is raw with a TTY, framed without), INTERACTIVE + stdin_fd (the container was created
 * with TEROK_SPEC_STDIN; EOF on stdin_fd closes the container's stdin), stdout/stderr fds or
 * `output`, tty_rows/tty_cols as the initial size, RESIZE_FD. io->argv, env, user and workdir
 * must be NULL. A runtime without it returns -EOPNOTSUPP (the host then starts, follows the
 * logs and waits). */
typedef struct terok_runtime_ctl_attach {
    uint32_t struct_size;
    uint32_t reserved0;
    const char *ref;
    const terok_exec_spec *io;
    int32_t exit_code; /* out: 0-255, or -1 when unknown */
    int32_t reserved1;
} terok_runtime_ctl_attach;

#ifdef __cplusplus
}
#endif

#endif /* TEROK_RUNTIME_H */
