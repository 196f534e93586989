/* SPDX-License-Identifier: Apache-2.0 */
/* podman-it.c: fixture and helpers for the runtime-podman integration tests (podman-it.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "podman-it.h"
#include "terok-test.h"

const terok_runtime_ops *ops;
void *st;
terok_error err;
bool rootless;
char run_label[64];
char tmp[256];

static char state_dir[256], runtime_dir[256];

/* The private service is shared by the whole suite (one runtime dir per uid) and exits a
 * minute after the last test. */
static const harness_kv cfg[] = {{"service-idle", "60s"}, {NULL, NULL}};

void it_setup(void)
{
    const char *so = getenv("TEROK_TEST_PODMAN_PLUGIN");

    if (access("/usr/bin/podman", X_OK) != 0)
        cr_skip_test("needs podman (scripts/setup-host.sh)");
    cr_assert(so, "TEROK_TEST_PODMAN_PLUGIN is not set");
    rootless = geteuid() != 0;
    snprintf(run_label, sizeof run_label, "terok.it.run=%d", (int)getpid());
    snprintf(state_dir, sizeof state_dir, "/tmp/terok-it-%u/state", (unsigned)geteuid());
    snprintf(runtime_dir, sizeof runtime_dir, "/tmp/terok-it-%u/run", (unsigned)geteuid());
    snprintf(tmp, sizeof tmp, "/tmp/terok-it-%u", (unsigned)geteuid());
    mkdir(tmp, 0700);
    snprintf(tmp, sizeof tmp, "/tmp/terok-it-%u/t.XXXXXX", (unsigned)geteuid());
    cr_assert(mkdtemp(tmp), "mkdtemp");
    IT_OK(harness_load(so, &ops, &err));
    harness_set_dirs(state_dir, runtime_dir);
    IT_OK(harness_open(ops, cfg, &st, &err));
}

static int collect_id(void *userdata, const terok_container_info *info)
{
    char ***ids = userdata;
    size_t n = 0;

    while ((*ids)[n])
        n++;
    *ids = realloc(*ids, (n + 2) * sizeof(char *));
    (*ids)[n] = strdup(info->id);
    (*ids)[n + 1] = NULL;
    return 0;
}

void it_teardown(void)
{
    if (st) {
        const char *labels[] = {run_label, NULL};
        terok_list_filter f = {.struct_size = sizeof f, .flags = TEROK_LIST_ALL, .labels = labels};
        char **ids = calloc(1, sizeof(char *));

        if (ops->list(st, &f, collect_id, &ids, NULL) >= 0)
            for (char **i = ids; *i; i++)
                ops->remove(st, *i, TEROK_REMOVE_FORCE | TEROK_REMOVE_VOLUMES, NULL);
        for (char **i = ids; *i; i++)
            free(*i);
        free(ids);
        ops->close(st);
        st = NULL;
    }
    if (tmp[0] && strncmp(tmp, "/tmp/terok-it-", 14) == 0) {
        const char *argv[] = {"rm", "-rf", tmp, NULL};
        cli_result r = test_run(NULL, argv);
        cli_result_done(&r);
    }
    terok_error_clear(&err);
}

void it_spec_init(it_spec *sp, const char *suffix, const char *const *argv)
{
    memset(sp, 0, sizeof *sp);
    snprintf(sp->name, sizeof sp->name, "it-%d-%s", (int)getpid(), suffix);
    sp->labels[0] = run_label;
    sp->labels[1] = "terok.it=1";
    sp->s.struct_size = sizeof sp->s;
    sp->s.name = sp->name;
    sp->s.image = IT_IMAGE;
    sp->s.argv = argv;
    sp->s.labels = sp->labels;
    sp->s.network = "none";
}

void it_harden(it_spec *sp)
{
    sp->s.flags |= TEROK_SPEC_CAP_DROP_ALL | TEROK_SPEC_NO_NEW_PRIVS | TEROK_SPEC_READ_ONLY_ROOT |
                   TEROK_SPEC_DEFAULT_SECCOMP;
    sp->s.userns = rootless ? "keep-id" : "auto";
    sp->s.pids_limit = 128;
    sp->s.memory_bytes = 64 << 20;
    sp->s.cpu_millis = 500;
}

int it_output_cb(void *userdata, int stream, const void *data, size_t len)
{
    it_output *o = userdata;
    char *buf = stream == 2 ? o->err : o->out;
    size_t *n = stream == 2 ? &o->err_len : &o->out_len;
    size_t cap = stream == 2 ? sizeof o->err : sizeof o->out;

    len = len < cap - 1 - *n ? len : cap - 1 - *n;
    memcpy(buf + *n, data, len);
    *n += len;
    buf[*n] = 0;
    len = len < sizeof o->all - 1 - o->all_len ? len : sizeof o->all - 1 - o->all_len;
    memcpy(o->all + o->all_len, data, len);
    o->all_len += len;
    o->all[o->all_len] = 0;
    return 0;
}

int it_count_cb(void *userdata, const terok_container_info *info)
{
    (*(int *)userdata)++;
    return 0;
}

int it_run(const terok_run_spec *s, it_output *o, char **ret_id)
{
    terok_logs_opts lo = {.struct_size = sizeof lo, .tail = -1};
    char *id = NULL;
    int code = -1;

    IT_OK(ops->create(st, s, &id, &err));
    IT_OK(ops->start(st, id, &err));
    IT_OK(ops->wait(st, id, 60000, &code, &err));
    if (o) {
        memset(o, 0, sizeof *o);
        IT_OK(ops->logs(st, id, &lo, it_output_cb, o, &err));
    }
    if (ret_id)
        *ret_id = id;
    else
        harness_free(id);
    return code;
}

const char *it_init_path(void)
{
    const char *p = getenv("TEROK_TEST_INIT");
    cr_assert(p, "TEROK_TEST_INIT is not set");
    return p;
}

terok_mount it_init_mount(void)
{
    return (terok_mount){.type = TEROK_MOUNT_BIND,
                         .flags = TEROK_MOUNT_RO,
                         .source = it_init_path(),
                         .target = "/run/terok-init"};
}
