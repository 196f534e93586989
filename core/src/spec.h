/* SPDX-License-Identifier: Apache-2.0 */
/* spec.h: from the operator's run_request to the terok_run_spec a runtime executes.
 *  - spec_policy: the hardening defaults of the [container] config section (with our own safe
 *    defaults when a key has no value), each remembering where it came from;
 *  - spec_validate: every field checked, every rejection naming the offending value in quotes;
 *  - spec_compose: hardening filled in, argv composed from the image's Entrypoint + Cmd (behind
 *    terok-init once it exists), managed labels added, and the JSON record of what was applied
 *    (hardening and the operator's relaxations) that the store keeps and `inspect` shows.
 * No I/O beyond stat() of volume sources; never prints. */
#pragma once

#include "sandbox.h"

/* Bounds on what a request may carry (a 100k-entry env is refused, not truncated). */
#define SPEC_MAX_ENV 4096
#define SPEC_MAX_ENV_BYTES (1024 * 1024)
#define SPEC_MAX_ARGV 4096
#define SPEC_MAX_ARGV_BYTES (1024 * 1024)
#define SPEC_MAX_LABELS 256
#define SPEC_MAX_VOLUMES 256
#define SPEC_MAX_LIST 64 /* cap_add, devices, gpus */

/* Container paths terok-sandbox mounts itself; no volume may land on or under them. */
#define SPEC_MANAGED_DIR "/run/terok"
#define SPEC_INIT_PATH "/run/terok-init"
/* Label/annotation key prefix reserved for terok-sandbox. */
#define SPEC_MANAGED_PREFIX "org.terok."
/* The annotation the shield sets to its bundle path; it gates the OCI hook. */
#define SPEC_SHIELD_BUNDLE_ANNOTATION "org.terok.shield.bundle"

typedef struct spec_policy {
    int64_t pids_limit;     /* 0 = unlimited */
    int64_t memory_bytes;   /* 0 = unlimited */
    int64_t cpu_millis;     /* 0 = unlimited */
    int64_t stop_timeout_s; /* grace before SIGKILL */
    bool read_only;
    bool no_new_privs;
    bool cap_drop_all;
    bool seccomp;
    char *network;         /* NULL: the runtime's default */
    char **grantable_caps; /* lower case, without "cap_" */
    char *shield_backend;  /* "nft" by default; "none" = the operator chose no shield */
    /* Where each boolean knob came from ("FILE:LINE", "default"), for the relaxation record. */
    char *origin_read_only, *origin_no_new_privs, *origin_cap_drop_all, *origin_seccomp;
    /* terok-init on the host, bind-mounted read-only at SPEC_INIT_PATH and prepended to argv
     * as "SPEC_INIT_PATH --". NULL until core/init exists: argv is then the image's own. */
    char *init_binary;
    /* userns when the request names none: "keep-id" rootless, "auto" rootful (the runtime's
     * view, filled by sandbox.c), NULL for the runtime's default. */
    char *userns_default;
} spec_policy;

/* cfg may be NULL: the built-in defaults (pids 512, memory/cpus unlimited, stop-timeout 10 s,
 * read-only, no-new-privileges, cap-drop-all, default seccomp, grantable "perfmon"). A value
 * that does not parse is refused naming the key and value (-EBADMSG). */
int spec_policy_load(const config *cfg, spec_policy *ret, terok_error *err);
void spec_policy_done(spec_policy *p);

/* Every check; -EINVAL (-E2BIG for size bounds) with a message naming the value. The name is
 * checked only when set (sandbox_create generates one otherwise). */
int spec_validate(const run_request *req, const spec_policy *pol, terok_error *err);

/* The composed spec: `spec` points into storage owned by this struct. */
typedef struct composed_spec {
    terok_run_spec spec;
    char *name, *image, *hostname, *workdir, *user, *network, *userns, *oci_runtime;
    char **argv, **env, **labels, **annotations, **cap_add, **devices;
    terok_mount *mounts;
    size_t n_mounts;
    char **mount_strings; /* owns the mount sources/targets/options */
    char *json;           /* the applied spec, for the store and inspect */
} composed_spec;

/* image_entrypoint/image_cmd: the image's Config (may be NULL/empty). notes gets warnings. */
int spec_compose(const run_request *req, const char *name, const spec_policy *pol,
                 char *const *image_entrypoint, char *const *image_cmd, sandbox_notes *notes,
                 composed_spec **ret, terok_error *err);
composed_spec *composed_spec_free(composed_spec *c);
/* After compose: bind run_dir read-only at SPEC_MANAGED_DIR and add env ("K=V"; never recorded
 * in c->json, so phantom tokens stay out of the store and `inspect`). */
int spec_wire(composed_spec *c, const char *run_dir, char *const *env, terok_error *err);
/* After compose, when a shield was prepared: add its annotations (the hook's gate, also listed in
 * spec.hooks_annotations so the runtime refuses a spec whose hook would not run) and env, and
 * record the bundle path in c->json. */
int spec_add_shield(composed_spec *c, const char *bundle_path, char *const *annotations,
                    char *const *env, terok_error *err);
DEFINE_TRIVIAL_CLEANUP_FUNC(composed_spec, composed_spec_free)

/* Parsers shared with the CLI. "1.5" CPUs -> 1500 millis (at most 3 decimals). */
int spec_parse_cpus(const char *s, int64_t *ret_millis);
/* HOST:TARGET[:OPTS] where OPTS is a comma list of ro, rw, z, Z. */
int spec_parse_volume(const char *s, volume_req *ret, terok_error *err);
/* GPU selector -> devices / CDI names (appended to *devices). */
int spec_gpu_devices(const char *selector, char ***devices, terok_error *err);
