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
};

/* Run txs (NULL-terminated, each one nft transaction) in order in pid's netns; stop at the first
 * failure. pid <= 0 runs them in the caller's own netns (still in a child). On failure the
 * message holds nft's own error text and which transaction failed. *ret_output (may be NULL)
 * gets the collected output when NFT_RUN_OUTPUT is set. */
int nft_run_in_netns(int64_t pid, const char *const *txs, unsigned flags, char **ret_output,
                     terok_error *err);

/* In a freshly forked, single-threaded child: join the network namespace of the process behind
 * pidfd (pid is the same process), with its owning user namespace when only that gets us in.
 * *what names the step that failed. */
int netns_join(int pidfd, int pid, const char **what);
int pidfd_open_pid(int64_t pid);

/* Process start time (clock ticks since boot, /proc/<pid>/stat field 22): with the pid it
 * identifies one process even across pid reuse. -ESRCH when there is no such process. */
int proc_starttime(int64_t pid, uint64_t *ret);
