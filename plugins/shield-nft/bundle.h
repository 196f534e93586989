/* SPDX-License-Identifier: Apache-2.0 */
/* bundle.h: the per-container shield bundle on disk. A directory
 * <state>/containers/<name>/shield/ (0700) holding shield.json (the resolved policy,
 * versioned), ruleset.nft (the ruleset rendered from it) and runtime.json (the pid the ruleset
 * was applied to). Files are
 * 0600, written tmp + rename, opened without following symlinks, and refused unless owned by
 * the caller's uid and not group/world-writable. */
#pragma once

#include <stdint.h>

#include "policy.h"

#define BUNDLE_FORMAT "terok-shield-bundle"
#define BUNDLE_VERSION 1
#define BUNDLE_FILE "shield.json"
#define RUNTIME_FILE "runtime.json"
#define RULESET_FILE "ruleset.nft" /* the rendered ruleset, one transaction, for nft -f too */
#define BUNDLE_MAX_BYTES (64u << 20)

/* Container names as podman accepts them: [A-Za-z0-9][A-Za-z0-9_.-]{0,127}. */
bool container_name_valid(const char *name);

/* Create (mkdir -p, 0700, no symlinks followed) and open <state_dir>/containers/<name>/shield.
 * *ret_path gets the absolute path. */
int bundle_dir_create(const char *state_dir, const char *name, int *ret_dirfd, char **ret_path,
                      terok_error *err);
/* Open an existing bundle directory: absolute path, no symlink in any component, a directory
 * owned by the caller's euid, not group/world-writable. */
int bundle_dir_open(const char *path, int *ret_dirfd, terok_error *err);
/* flock the directory; released when the fd is closed. */
int bundle_lock(int dirfd, terok_error *err);

/* Read and validate shield.json: every target re-parsed. *ret_ruleset (may be NULL) gets the
 * stored ruleset.nft. */
int bundle_read(int dirfd, shield_policy **ret_policy, char **ret_ruleset, terok_error *err);
/* Write ruleset.nft and shield.json (each tmp + fsync + rename). */
int bundle_write(int dirfd, const shield_policy *p, const char *ruleset, terok_error *err);
/* The same in steps, so the disk can overlap a kernel change and the bundle stays untouched
 * when the kernel refuses: stage writes and fsyncs the temporary files, commit renames them
 * into place, discard removes whatever is staged (runtime.json's too). */
int bundle_stage(int dirfd, const shield_policy *p, const char *ruleset, terok_error *err);
int bundle_commit(int dirfd, terok_error *err);
void bundle_discard(int dirfd);

typedef struct bundle_runtime {
    int64_t pid;
    uint64_t starttime;
    int64_t applied_ms;
} bundle_runtime;
/* -ENOENT when the container was never applied (or was cleaned up). */
int bundle_runtime_read(int dirfd, bundle_runtime *ret, terok_error *err);
int bundle_runtime_stage(int dirfd, const bundle_runtime *rt, terok_error *err);
int bundle_runtime_commit(int dirfd, terok_error *err);
int bundle_runtime_remove(int dirfd);
