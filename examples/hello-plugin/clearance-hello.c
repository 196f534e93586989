/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clearance-hello.c: an out-of-tree terok-sandbox plugin, built only against the installed SDK
 * (pkg-config terok-sandbox-plugin). A clearance backend that answers every blocked connection
 * with the verdict the operator configured, without asking anyone:
 *
 *     [clearance]
 *     backend = hello
 *     [clearance.hello]
 *     answer = deny          # or allow-once
 *
 * ask() queues the question and makes the fd from get_fd() readable; dispatch() delivers the
 * verdicts. It never fails open: anything it cannot answer is a deny. Like every plugin it
 * reaches the host only through the host table, never prints and never exits.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "terok/clearance.h"
#include "terok/plugin.h"

TEROK_PLUGIN_CONFIG_KEYS(TEROK_CONFIG_KEY("answer", TEROK_CONFIG_ENUM("deny|allow-once"), "deny",
                                          "Verdict given to every blocked connection"));

#define HELLO_QUEUE_MAX 256

typedef struct hello {
    int efd;   /* readable while verdicts are pending */
    int allow; /* answer = allow-once */
    uint64_t next_id;
    uint64_t pending[HELLO_QUEUE_MAX];
    size_t n_pending;
} hello;

static int hello_open(terok_plugin *self, const terok_config_section *cfg, void **ret_state,
                      terok_error *err)
{
    const char *answer = "deny";
    hello *h;
    int r;

    (void)self;
    if (!ret_state)
        return terok_perr(err, -EINVAL, "open: no place for the state");
    r = terok_plugin__host->config_get(cfg, "answer", &answer);
    if (r < 0 && r != -ENOENT)
        answer = "deny"; /* an unreadable setting must never open anything up */
    h = calloc(1, sizeof *h);
    if (!h)
        return terok_perr(err, -ENOMEM, "out of memory");
    h->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (h->efd < 0) {
        r = -errno;
        free(h);
        return terok_perr(err, r, "cannot create an eventfd: %s", strerror(-r));
    }
    h->allow = strcmp(answer, "allow-once") == 0;
    h->next_id = 1;
    terok_plog(TEROK_LOG_INFO, "answering every question with '%s'",
               h->allow ? "allow-once" : "deny");
    *ret_state = h;
    return 0;
}

static void hello_close(void *state)
{
    hello *h = state;

    if (!h)
        return;
    if (h->efd >= 0)
        close(h->efd);
    free(h);
}

static int hello_ask(void *state, const terok_clearance_request *req, uint64_t *ret_request_id,
                     terok_error *err)
{
    hello *h = state;
    uint64_t one = 1;

    if (!h || !req || !req->container || !*req->container || !ret_request_id)
        return terok_perr(err, -EINVAL, "ask: invalid argument");
    if (h->n_pending >= HELLO_QUEUE_MAX)
        return terok_perr(err, -EAGAIN, "ask: %d questions already pending", HELLO_QUEUE_MAX);
    if (write(h->efd, &one, sizeof one) < 0)
        return terok_perr(err, -errno, "ask: cannot signal the eventfd");
    h->pending[h->n_pending++] = h->next_id;
    *ret_request_id = h->next_id++;
    return 0;
}

static int hello_cancel(void *state, uint64_t request_id, terok_error *err)
{
    hello *h = state;

    if (!h)
        return terok_perr(err, -EINVAL, "cancel: invalid argument");
    for (size_t i = 0; i < h->n_pending; i++)
        if (h->pending[i] == request_id) {
            memmove(&h->pending[i], &h->pending[i + 1],
                    (h->n_pending - i - 1) * sizeof h->pending[0]);
            h->n_pending--;
            return 0;
        }
    return terok_perr(err, -ENOENT, "cancel: no pending request %llu",
                      (unsigned long long)request_id);
}

static int hello_get_fd(void *state, int *ret_fd, terok_error *err)
{
    hello *h = state;

    if (!h || !ret_fd)
        return terok_perr(err, -EINVAL, "get_fd: invalid argument");
    *ret_fd = h->efd;
    return 0;
}

static int hello_dispatch(void *state, terok_clearance_verdict_cb cb, void *userdata,
                          terok_error *err)
{
    hello *h = state;
    uint64_t count;
    int delivered = 0;

    if (!h || !cb)
        return terok_perr(err, -EINVAL, "dispatch: invalid argument");
    if (read(h->efd, &count, sizeof count) < 0 && errno != EAGAIN)
        return terok_perr(err, -errno, "dispatch: cannot read the eventfd");
    while (h->n_pending > 0) {
        terok_clearance_verdict v;

        memset(&v, 0, sizeof v);
        v.struct_size = sizeof v;
        v.verdict = h->allow ? TEROK_VERDICT_ALLOW_ONCE : TEROK_VERDICT_DENY;
        v.request_id = h->pending[0];
        v.reason = "configured";
        memmove(&h->pending[0], &h->pending[1], (h->n_pending - 1) * sizeof h->pending[0]);
        h->n_pending--;
        delivered++;
        if (cb(userdata, &v) != 0)
            break;
    }
    return delivered;
}

static int hello_ctl(void *state, uint32_t op, void *arg, terok_error *err)
{
    (void)arg;
    if (!state)
        return terok_perr(err, -EINVAL, "ctl: invalid argument");
    return terok_perr(err, -EOPNOTSUPP, "ctl: unknown opcode %u", (unsigned)op);
}

static const terok_clearance_ops hello_ops = {
    sizeof(terok_clearance_ops), /* struct_size */
    0,                           /* reserved0 */
    0,                           /* caps: no person answers, no desktop */
    hello_open,
    hello_close,
    hello_ask,
    hello_cancel,
    hello_get_fd,
    hello_dispatch,
    hello_ctl,
};

TEROK_PLUGIN_DEFINE(TEROK_PLUGIN_KIND_CLEARANCE, "hello", "1.0.0", &hello_ops)
