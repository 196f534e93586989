/* SPDX-License-Identifier: Apache-2.0 */
/* harness.h: load shield-nft.so the way the host will (dlopen + terok_plugin_init) with a minimal
 * host table of our own, plus the network-namespace plumbing the shield tests and the bench
 * share: netns/veth topologies, a "container" process, TCP servers and connect probes. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "terok/shield.h"

typedef struct shield_h {
    void *dl;
    const terok_plugin_desc *desc;
    const terok_shield_ops *ops;
    void *state;
    char *state_dir;
} shield_h;

/* Load <dir>/shield-nft.so (dir: $TEROK_TEST_PLUGIN_DIR) and open it with config "key=value"
 * pairs (NULL-terminated; durations in ms) and state_dir. Returns 0 or -errno; *msg (static)
 * says why. */
int sh_load(shield_h *h, const char *state_dir, const char *const *cfg, const char **msg);
void sh_unload(shield_h *h);
/* The message of the last error the plugin reported through our host table, and its logs. */
const char *sh_last_log(void);
/* How many of the plugin's log lines (the first 256 since the last reset) had priority prio
 * (TEROK_LOG_*) and contained needle. */
size_t sh_log_count(int prio, const char *needle);
void sh_log_reset(void);

/* Error helpers: the harness's errorv fills terok_error with malloc'd text. */
void sh_err_clear(terok_error *e);

/* ---- namespaces ---- */
/* Run argv (NULL-terminated) and wait; returns the exit code (or 128+signal). Output goes to
 * /dev/null unless out/outlen given (stdout captured). */
int sh_run(const char *const *argv, char *out, size_t outlen);
#define SH_RUN(...) sh_run((const char *const[]){__VA_ARGS__, NULL}, NULL, 0)

/* A two-netns topology: client (the "container") and server, joined by a veth pair.
 * Client 198.51.100.1/24 + 10.231.0.1/24, server 198.51.100.2-.4/24 and 10.231.0.2/24. */
typedef struct topo {
    char srv_ns[32]; /* ip netns name of the server side */
    char cli_ns[32]; /* ip netns name of the client side, "" when the client is a pid */
    char veth_c[16], veth_s[16];
    pid_t container; /* a process in the client netns */
    pid_t servers;   /* the TCP server process */
} topo;
/* Create server netns + veth; the client side is either a new named netns (container_pid <= 0,
 * a sleeper is started in it) or the netns of an existing process. */
int topo_up(topo *t, pid_t container_pid);
void topo_down(topo *t);
/* Start TCP servers in the server netns on ports (0-terminated list): greet "hello\n", echo. */
int topo_servers(topo *t, const int *ports);
/* Enter the server netns in this process (so host-side DNS reaches its resolver). */
int topo_enter_server(topo *t);

/* From inside pid's netns: connect to ip:port within timeout_ms and read the greeting.
 * Returns 0 on success or the positive errno of the failure (ETIMEDOUT on a silent drop). */
int probe_connect(pid_t pid, const char *ip, int port, int timeout_ms);
/* From inside pid's netns: a DNS query for name (type A) to server:53 over UDP. 0 when an
 * answer with our id arrives within timeout_ms, else a positive errno. */
int probe_dns(pid_t pid, const char *server, const char *name, int timeout_ms);

/* dnsmasq in t's server netns on listen_ip:53, authoritative for example.test with a TTL of 2 s,
 * answering from hosts_file (re-read on SIGHUP), output to /dev/null, dying with the caller.
 * Returns its pid once it answers a query for svc.example.test from t's container, or -1. */
pid_t topo_dnsmasq(topo *t, const char *listen_ip, const char *hosts_file);

/* A long-lived connection from pid's netns: conn_open connects and reads the greeting;
 * conn_ping sends a line and waits for its echo: 0 or the errno of the failure. */
typedef struct held_conn {
    pid_t child;
    int ctl; /* parent side of a socketpair */
} held_conn;
int conn_open(held_conn *c, pid_t pid, const char *ip, int port);
int conn_ping(held_conn *c, int timeout_ms);
void conn_close(held_conn *c);

/* Spawn a sleeper as uid/gid in new user+net namespaces (unshare -rn); returns its pid once the
 * namespaces exist. */
pid_t spawn_userns_sleeper(uid_t uid, gid_t gid);
pid_t spawn_netns_sleeper(const char *netns_name);
void kill_wait(pid_t pid);

/* Collected text from a text callback. */
typedef struct text_buf {
    char *s;
    size_t len;
} text_buf;
int text_collect(void *ud, const char *data, size_t len);
/* Sum of "counter packets N" on ruleset lines containing `needle`. */
long counter_sum(const char *rules, const char *needle);
int64_t mono_ms(void);
