/* SPDX-License-Identifier: Apache-2.0 */
/* nft-apply.h: run nft transactions with libnftables inside the network namespace of a process.
 * A single-threaded child is forked per call; it joins the netns (and the owning user namespace
 * when that is the only way in, i.e. rootless), runs the transactions and reports back over a
 * pipe. The caller's process never changes namespace. */
#pragma once

#include <stdint.h>

#include "terok/plugin.h"

enum {
    NFT_RUN_JSON = 1 << 0,   /* output in JSON (for listings) */
    NFT_RUN_DRY = 1 << 1,    /* parse and evaluate, commit nothing */
    NFT_RUN_OUTPUT = 1 << 2, /* hand back the output of the transactions */
    NFT_RUN_PROBE = 1 << 3,  /* afterwards, read back the output chain (see chain_probe) */
    NFT_RUN_NOCTX = 1 << 4,  /* no libnftables at all (probe only) */
    NFT_RUN_LARGE = 1 << 5,  /* large transactions: libnftables gets a fresh, huge-page backed
                              * malloc arena (a thread of its own in the child) */
};
/* Transactions at least this long (bytes, all together; about 500 entries) are worth
 * NFT_RUN_LARGE: at 1,000 entries it measured 0.90-0.96x of `nft -f` against 1.03-1.07x without. */
#define NFT_LARGE_TX_BYTES (16u << 10)

/* What the kernel holds for the shield's output chain, read straight over netlink (a listing
 * through libnftables would dump every set element: 70 ms at 10,000). */
typedef struct chain_probe {
    int present;    /* the chain exists */
    int policy;     /* 0 drop, 1 accept */
    unsigned rules; /* number of rules */
    char mark[64];  /* comment of the first rule, "" if none */
} chain_probe;

/* Run txs (NULL-terminated, each one nft transaction) in order in pid's netns; stop at the first
 * failure. pid <= 0 runs them in the caller's own netns (still in a child). On failure the
 * message holds nft's own error text and which transaction failed. *ret_output (may be NULL)
 * gets the collected output when NFT_RUN_OUTPUT is set. */
int nft_run_in_netns(int64_t pid, const char *const *txs, unsigned flags, char **ret_output,
                     terok_error *err);
/* The same in two steps, so the child joins the netns and sets up libnftables while the caller
 * still validates and renders: start, then finish with the transactions (or abort: the child
 * leaves without applying anything). The caller must not have other children reaped
 * concurrently by a SIGCHLD handler. */
typedef struct nft_job nft_job;
int nft_job_start(int64_t pid, unsigned flags, nft_job **ret, terok_error *err);
int nft_job_finish(nft_job *j, const char *const *txs, char **ret_output, chain_probe *ret_probe,
                   terok_error *err);
/* finish = send, then wait (the caller may work in between: the child applies meanwhile). */
void nft_job_send(nft_job *j, const char *const *txs);
int nft_job_wait(nft_job *j, char **ret_output, chain_probe *ret_probe, terok_error *err);
void nft_job_abort(nft_job *j);
static inline void nft_job_abortp(nft_job **j)
{
    if (*j)
        nft_job_abort(*j);
}

/* Same, and with NFT_RUN_PROBE fill *ret_probe after the transactions ran. */
int nft_run_probe(int64_t pid, const char *const *txs, unsigned flags, char **ret_output,
                  chain_probe *ret_probe, terok_error *err);

/* In a freshly forked, single-threaded child: join the network namespace of the process behind
 * pidfd (pid is the same process), with its owning user namespace when only that gets us in.
 * *what names the step that failed. */
int netns_join(int pidfd, int pid, const char **what);
int pidfd_open_pid(int64_t pid);

/* Process start time (clock ticks since boot, /proc/<pid>/stat field 22): with the pid it
 * identifies one process even across pid reuse. -ESRCH when there is no such process. */
int proc_starttime(int64_t pid, uint64_t *ret);
