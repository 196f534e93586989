/* SPDX-License-Identifier: Apache-2.0 */
/*
 * launch-driver: one hardened launch through runtime-podman, the way `terok-sandbox run --rm`
 * will do it, for bench/launch: image_inspect + create + start + wait + remove, with every
 * hardening default (caps dropped, no-new-privileges, read-only root + tmpfs /tmp, default
 * seccomp, user namespace, pids/memory/cpu limits), terok-init as PID 1 wrapping the image's
 * Entrypoint + Cmd (or the given command), network none.
 *
 *   launch-driver [-v] [--plugin SO] [--init PATH] [--image IMG] [-- CMD ARGS...]
 *
 * Exits with the container's exit code. -v prints where the time went (ms) to stderr.
 * Uses the real paths (TEROK_SANDBOX_STATE_DIR / TEROK_SANDBOX_RUNTIME_DIR or the defaults),
 * so a private Podman service started by one run is reused by the next.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "podman-harness.h"
#include "terok-build-config.h"

#ifndef LAUNCH_PLUGIN
#define LAUNCH_PLUGIN ""
#endif
#ifndef LAUNCH_INIT
#define LAUNCH_INIT ""
#endif

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

typedef struct image_cmd {
    char *argv[64];
    int n;
} image_cmd;

static int keep_image(void *userdata, const terok_image_info *info)
{
    image_cmd *c = userdata;

    for (const char *const *p = info->entrypoint; p && *p && c->n < 63; p++)
        c->argv[c->n++] = strdup(*p);
    for (const char *const *p = info->cmd; p && *p && c->n < 63; p++)
        c->argv[c->n++] = strdup(*p);
    return 0;
}

static int fail(const char *what, terok_error *err)
{
    fprintf(stderr, "launch-driver: %s: %s\n", what, terok_error_message(err));
    return 125;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"plugin", required_argument, NULL, 'p'},
                                             {"init", required_argument, NULL, 'i'},
                                             {"image", required_argument, NULL, 'm'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {NULL, 0, NULL, 0}};
    const char *plugin = LAUNCH_PLUGIN, *init = LAUNCH_INIT,
               *image = "localhost/terok-busybox:test";
    char state_dir[512], runtime_dir[512], name[64], *id = NULL;
    const char *cargv[80];
    const char *labels[] = {"terok.bench=launch", NULL};
    terok_mount mounts[2];
    terok_run_spec s = {.struct_size = sizeof s};
    terok_error err = TEROK_ERROR_INIT;
    const terok_runtime_ops *ops;
    image_cmd ic = {0};
    void *st = NULL;
    double t[7];
    int c, n = 0, code = -1, verbose = 0;

    while ((c = getopt_long(argc, argv, "+v", longopts, NULL)) != -1)
        switch (c) {
        case 'p':
            plugin = optarg;
            break;
        case 'i':
            init = optarg;
            break;
        case 'm':
            image = optarg;
            break;
        case 'v':
            verbose = 1;
            break;
        default:
            return 2;
        }

    t[0] = now_ms();
    if (getenv("TEROK_SANDBOX_STATE_DIR"))
        snprintf(state_dir, sizeof state_dir, "%s", getenv("TEROK_SANDBOX_STATE_DIR"));
    else if (geteuid() == 0)
        snprintf(state_dir, sizeof state_dir, "/var/lib/terok-sandbox");
    else
        snprintf(state_dir, sizeof state_dir, "%s/.local/state/terok-sandbox", getenv("HOME"));
    if (getenv("TEROK_SANDBOX_RUNTIME_DIR"))
        snprintf(runtime_dir, sizeof runtime_dir, "%s", getenv("TEROK_SANDBOX_RUNTIME_DIR"));
    else if (geteuid() == 0)
        snprintf(runtime_dir, sizeof runtime_dir, "/run/terok-sandbox");
    else
        snprintf(runtime_dir, sizeof runtime_dir, "%s/terok-sandbox", getenv("XDG_RUNTIME_DIR"));
    if (harness_load(plugin, &ops, &err) < 0)
        return fail("loading the plugin", &err);
    harness_set_dirs(state_dir, runtime_dir);
    if (harness_open(ops, NULL, &st, &err) < 0)
        return fail("opening the runtime", &err);

    t[1] = now_ms();
    if (ops->image_inspect(st, image, keep_image, &ic, &err) < 0)
        return fail("image", &err);
    cargv[n++] = "/run/terok-init";
    cargv[n++] = "--";
    if (optind < argc)
        while (optind < argc && n < 78)
            cargv[n++] = argv[optind++];
    else
        for (int i = 0; i < ic.n && n < 78; i++)
            cargv[n++] = ic.argv[i];
    cargv[n] = NULL;
    if (n == 2) {
        fprintf(stderr, "launch-driver: the image has no Entrypoint/Cmd; give a command\n");
        return 2;
    }

    snprintf(name, sizeof name, "terok-bench-%d", (int)getpid());
    mounts[0] = (terok_mount){.type = TEROK_MOUNT_BIND,
                              .flags = TEROK_MOUNT_RO,
                              .source = init,
                              .target = "/run/terok-init"};
    mounts[1] = (terok_mount){
        .type = TEROK_MOUNT_TMPFS, .target = "/tmp", .options = "rw,nosuid,nodev,size=64m"};
    s.flags = TEROK_SPEC_CAP_DROP_ALL | TEROK_SPEC_NO_NEW_PRIVS | TEROK_SPEC_READ_ONLY_ROOT |
              TEROK_SPEC_DEFAULT_SECCOMP;
    s.name = name;
    s.image = image;
    s.argv = cargv;
    s.labels = labels;
    s.mounts = mounts;
    s.n_mounts = 2;
    s.network = "none";
    s.userns = geteuid() == 0 ? "auto" : "keep-id";
    s.pids_limit = 1024;
    s.memory_bytes = 1LL << 30;
    s.cpu_millis = 2000;

    t[2] = now_ms();
    if (ops->create(st, &s, &id, &err) < 0)
        return fail("create", &err);
    t[3] = now_ms();
    if (ops->start(st, id, &err) < 0)
        return fail("start", &err);
    t[4] = now_ms();
    if (ops->wait(st, id, -1, &code, &err) < 0)
        return fail("wait", &err);
    t[5] = now_ms();
    if (ops->remove(st, id, TEROK_REMOVE_FORCE, &err) < 0)
        return fail("remove", &err);
    t[6] = now_ms();
    if (verbose)
        fprintf(stderr,
                "load+open %.1f  image %.1f  create %.1f  start %.1f  wait %.1f  remove %.1f  "
                "total %.1f ms\n",
                t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3], t[5] - t[4], t[6] - t[5],
                t[6] - t[0]);
    harness_free(id);
    ops->close(st);
    return code;
}
