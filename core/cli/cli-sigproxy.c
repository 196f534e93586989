/* SPDX-License-Identifier: Apache-2.0 */
/* cli-sigproxy.c: a foreground `run` passes the signals it receives on to the container, as
 * `podman run` does (--sig-proxy): Ctrl-C on a run without a raw terminal, a `kill` of the CLI
 * by a supervisor. The signals are blocked in every thread and taken by one thread with
 * sigwaitinfo(), which opens a sandbox of its own (the main thread is inside the runtime's attach
 * call) and sends each one with sandbox_kill(). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "cli-container.h"
#include "log.h"

static const int proxied[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static struct {
    pthread_t thread;
    bool running;
    atomic_bool stopping;
    sigset_t set, old_mask;
    const char *config_file;
    char *name;
} proxy;

static void *proxy_main(void *arg)
{
    sandbox *sb = NULL;

    (void)arg;
    for (;;) {
        _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
        siginfo_t si;
        int sig = sigwaitinfo(&proxy.set, &si), r;

        if (sig < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (atomic_load(&proxy.stopping))
            break;
        if (!sb && (r = sandbox_open(proxy.config_file, &sb, &err)) < 0) {
            log_warning("cannot pass %s on to '%s': %s", sigabbrev_np(sig), proxy.name,
                        terok_error_message(&err));
            continue;
        }
        r = sandbox_kill(sb, proxy.name, sig, &err);
        if (r < 0)
            log_warning("cannot pass SIG%s on to '%s': %s", sigabbrev_np(sig), proxy.name,
                        terok_error_message(&err));
        else
            log_info("passed SIG%s on to '%s'", sigabbrev_np(sig), proxy.name);
    }
    sandbox_free(sb);
    return NULL;
}

int cli_sig_proxy_start(const char *config_file, const char *name)
{
    int r;

    if (proxy.running)
        return 0;
    sigemptyset(&proxy.set);
    for (size_t i = 0; i < sizeof proxied / sizeof *proxied; i++)
        sigaddset(&proxy.set, proxied[i]);
    proxy.name = strdup(name);
    if (!proxy.name)
        return -ENOMEM;
    proxy.config_file = config_file;
    atomic_store(&proxy.stopping, false);
    r = pthread_sigmask(SIG_BLOCK, &proxy.set, &proxy.old_mask);
    if (r == 0)
        r = pthread_create(&proxy.thread, NULL, proxy_main, NULL);
    if (r != 0) {
        (void)pthread_sigmask(SIG_SETMASK, &proxy.old_mask, NULL);
        free(proxy.name);
        proxy.name = NULL;
        return -r;
    }
    proxy.running = true;
    return 0;
}

void cli_sig_proxy_stop(void)
{
    struct timespec zero = {0, 0};

    if (!proxy.running)
        return;
    atomic_store(&proxy.stopping, true);
    (void)pthread_kill(proxy.thread, SIGUSR2); /* blocked there too: sigwaitinfo takes it */
    (void)pthread_join(proxy.thread, NULL);
    /* what arrived after the container ended has no one to go to: drop it, do not die of it */
    while (sigtimedwait(&proxy.set, NULL, &zero) > 0)
        ;
    (void)pthread_sigmask(SIG_SETMASK, &proxy.old_mask, NULL);
    free(proxy.name);
    proxy.name = NULL;
    proxy.running = false;
}
