/* SPDX-License-Identifier: Apache-2.0 */
/* null.h: internals of runtime-null, the deterministic, persisted fake runtime every core test
 * runs on. One JSON document per container under <state>/containers/, a lock file serialising
 * separate processes, an append-only call log and event log. Never prints. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "terok/runtime.h"

typedef struct nullrt {
    char *dir; /* the plugin's state dir (0700) */
    bool call_log;
    bool events_follow; /* events(): keep following after the recorded ones */
    int64_t poll_ms;    /* wait/logs/events polling interval */
} nullrt;

/* ---- null-store.c: files, locking, documents ---- */
/* flock the state dir's lock file; returns the fd (>= 0) or a negative errno with a message. */
int null_lock(nullrt *n, bool exclusive, terok_error *err);
void null_unlock(int fd);
bool null_name_is_valid(const char *name);
/* Load <name>.json; -ENOENT (no message) when absent. */
int null_load(nullrt *n, const char *name, json_object **ret, terok_error *err);
/* Resolve a ref (name, id or unique id prefix) to a loaded document; -ENOENT with a message. */
int null_resolve(nullrt *n, const char *ref, json_object **ret, terok_error *err);
/* Write atomically (tmp + rename). */
int null_save(nullrt *n, json_object *doc, terok_error *err);
int null_delete(nullrt *n, const char *name, terok_error *err);
/* Names of all containers, sorted; NULL-terminated, free with null_strv_free. */
int null_names(nullrt *n, char ***ret, terok_error *err);
int64_t null_next_seq(nullrt *n);
/* "op arg..." to calls.log when call-log is on. */
void null_call(nullrt *n, const char *fmt, ...) TEROK_PRINTF(2, 3);
/* One event line to events.log. */
void null_event(nullrt *n, json_object *doc, const char *action, int exit_code);
int64_t null_now_ns(void);
void null_sleep_ms(int64_t ms);

/* ---- helpers ---- */
char **null_strv_free(char **l);
int null_strv_push(char ***l, size_t *n, const char *s); /* copies s; 0 or -ENOMEM */
/* The first n words joined by spaces (n = SIZE_MAX: all of them); malloc'd. */
char *null_join(const char *const *w, size_t n);
const char *null_str(json_object *o, const char *key); /* NULL when absent */
int64_t null_int(json_object *o, const char *key, int64_t def);

/* ---- null-script.c: the tiny deterministic interpreter ---- */
enum {
    SCRIPT_CREATE = 1, /* only checks fail-create */
    SCRIPT_START = 2,
    SCRIPT_EXEC = 3,
};
typedef struct script_io {
    /* Emit one line (without newline). stream 1 stdout, 2 stderr. */
    int (*line)(void *userdata, int stream, const char *text);
    void *userdata;
    const char *const *env;      /* container env, then exec env (later wins for printenv K) */
    const char *const *exec_env; /* may be NULL */
    const char *fs_root;         /* <state>/fs/<name>, for cat */
    int stdin_fd;                /* exec -i: cat without arguments copies it; -1 otherwise */
} script_io;
typedef struct script_result {
    int exit_code;
    bool sleeping;  /* start: stays running until stop/kill */
    char *fail_msg; /* fail-start / fail-create message (malloc) */
} script_result;
int script_run(const char *const *argv, int mode, const script_io *io, script_result *ret);

/* ---- null-fs.c: the container's little file tree (copy_in, cat) ---- */
int null_copy_in(nullrt *n, const char *name, const char *host_path, const char *container_path,
                 terok_error *err);
int null_fs_remove(nullrt *n, const char *name);
/* A container path is absolute without ".." components. */
bool null_container_path_ok(const char *p);

/* ---- null-spec.c: the run spec as JSON ---- */
json_object *null_spec_to_json(const terok_run_spec *spec);
