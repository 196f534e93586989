/* SPDX-License-Identifier: Apache-2.0 */
/* gate-maint.c: upkeep of a project mirror after it took in upstream objects: one pack with a
 * reachability bitmap, as a git server keeps its repositories, so a task's clone through the
 * gate counts objects from the bitmap and reuses the pack instead of walking the history. Never
 * deletes an object: task views borrow the mirror's objects through alternates. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>

#include "gate-state.h"

/* Best effort, so logged here: a mirror without a bitmap serves the same objects, only slower. */
static int fail(int code, const char *fmt, ...) _printf_(2, 3);
static int fail(int code, const char *fmt, ...)
{
    _cleanup_free_ char *m = NULL;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    terok_plog(TEROK_LOG_WARNING, "%s", m ? m : "gate: mirror upkeep failed");
    return code;
}

/* True when objects/pack holds exactly one pack and its bitmap: nothing to do. */
static bool packed_with_bitmap(const char *gitdir)
{
    _cleanup_free_ char *p = NULL;
    struct dirent *de;
    unsigned packs = 0, bitmaps = 0;
    DIR *d;

    if (asprintf(&p, "%sobjects/pack", gitdir) < 0)
        return false;
    d = opendir(p);
    if (!d)
        return false;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n > 5 && streq(de->d_name + n - 5, ".pack"))
            packs++;
        else if (n > 7 && streq(de->d_name + n - 7, ".bitmap"))
            bitmaps++;
    }
    closedir(d);
    return packs == 1 && bitmaps == 1;
}

int gg_mirror_repack(gg *g, const char *gitdir)
{
    /* The same walled-off environment as a served git: no system/global config, no hooks. -a -d
     * -b: all objects into one pack with a bitmap; -k: unreachable objects go into it too, never
     * away (a task view may hold refs to mirror objects the mirror's refs no longer reach). */
    char *const argv[] = {g ? g->git : NULL, "repack", "-a", "-d", "-b", "-k", "-q", NULL};
    _cleanup_free_ char *home = NULL, *xdg = NULL, *hooks = NULL, *lockpath = NULL;
    _cleanup_close_ int lockfd = -EBADF;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, deflt;
    pid_t pid;
    int r, st = 0;

    if (!g || !gitdir)
        return -EINVAL;
    /* Under the mirror's lock, as sync, apply and forward take it. */
    if (asprintf(&lockpath, "%sterok.lock", gitdir) < 0)
        return -ENOMEM;
    lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lockfd < 0 || flock(lockfd, LOCK_EX) < 0)
        return fail(-EIO, "gate: cannot lock '%s'", lockpath);
    if (packed_with_bitmap(gitdir))
        return 0;
    if (asprintf(&home, "HOME=%s", g->home) < 0 ||
        asprintf(&xdg, "XDG_CONFIG_HOME=%s", g->home) < 0 ||
        asprintf(&hooks, "GIT_CONFIG_VALUE_0=%s", g->hooks) < 0)
        return -ENOMEM;
    {
        char *const envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin",
                              home,
                              xdg,
                              "LANG=C",
                              "GIT_CONFIG_NOSYSTEM=1",
                              "GIT_CONFIG_GLOBAL=/dev/null",
                              "GIT_CONFIG_SYSTEM=/dev/null",
                              "GIT_TERMINAL_PROMPT=0",
                              "GIT_CONFIG_COUNT=4",
                              "GIT_CONFIG_KEY_0=core.hooksPath",
                              hooks,
                              "GIT_CONFIG_KEY_1=core.fsmonitor",
                              "GIT_CONFIG_VALUE_1=false",
                              "GIT_CONFIG_KEY_2=gc.auto",
                              "GIT_CONFIG_VALUE_2=0",
                              "GIT_CONFIG_KEY_3=pack.writeBitmapHashCache",
                              "GIT_CONFIG_VALUE_3=true",
                              NULL};
        sigemptyset(&none);
        sigfillset(&deflt);
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addclosefrom_np(&fa, 3);
        posix_spawn_file_actions_addchdir_np(&fa, gitdir);
        posix_spawnattr_init(&at);
        posix_spawnattr_setsigmask(&at, &none);
        posix_spawnattr_setsigdefault(&at, &deflt);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        r = posix_spawn(&pid, g->git, &fa, &at, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
    }
    if (r != 0)
        return fail(-r, "gate: cannot run '%s repack': %s", g->git, strerror(r));
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return fail(negative_errno(), "gate: waiting for git repack: %s", strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return fail(-EIO, "gate: 'git repack' of '%s' failed (status %d)", gitdir,
                    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return 0;
}

int gg_sync_and_upkeep(void *state, const char *repo, terok_gate_json_cb cb, void *ud,
                       terok_error *err)
{
    gg *g = state;
    _cleanup_(git_repository_freep) git_repository *mirror = NULL;
    int r = gg_sync(state, repo, cb, ud, err);

    if (r >= 0 && gg_open_mirror(g, repo, &mirror, NULL) >= 0)
        (void)gg_mirror_repack(g, git_repository_path(mirror));
    return r;
}
