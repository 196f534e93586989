/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-gate-serve.c: `terok-sandbox gate serve`, the git gate daemon. Built only into
 * terok-sandbox-daemon (it links libmicrohttpd); the CLI execs that binary for it. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "daemon/spawn.h"
#include "gate-serve/gate-client.h"
#include "gate-serve/gate-daemon.h"
#include "log.h"
#include "paths.h"

static void serve_help(void)
{
    printf("Usage: terok-sandbox gate serve [OPTIONS]\n"
           "\n"
           "Run the git gate. Containers reach it on their own socket\n"
           "(<runtime>/containers/<name>/gate.sock, /run/terok/gate.sock inside, and\n"
           "http://127.0.0.1:9418/ through terok-init's bridge). Only the smart-HTTP\n"
           "endpoints of /<project>.git are served, to a task presenting its gate token\n"
           "(HTTP Basic, the token as user name). `run --repo` starts the daemon on demand.\n"
           "\n"
           "Options:\n"
           "      --foreground               stay in the foreground (default: detach once\n"
           "                                 ready and print the daemon's pid)\n"
           "      --tcp ADDR:PORT=CONTAINER  also listen on a loopback TCP port, every request\n"
           "                                 on it counting as CONTAINER (tests, benchmarks)\n"
           "      --max-workers N            git requests served at once (default 8)\n"
           "  -h, --help                     show this help\n");
}

int cmd_gate_serve(cli *c, int argc, char **argv);
int cmd_gate_serve(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"foreground", no_argument, NULL, 'f'},
        {"tcp", required_argument, NULL, 't'},
        {"max-workers", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    _cleanup_(cli_tcp_done) cli_tcp tcp = {.n = 0};
    gate_daemon_opts o = {.tcp = tcp.v};
    bool foreground = false;
    int ready_fd = -1;
    int64_t v;
    sandbox *sb;
    int opt, r;

    while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) >= 0) {
        switch (opt) {
        case 'f':
            foreground = true;
            break;
        case 't':
            r = cli_serve_tcp(c, "gate serve", optarg, &tcp);
            if (r > 0)
                return r;
            break;
        case 'w':
            if (parse_int64(optarg, 1, 256, &v) < 0)
                return cli_usage_error(c, "gate serve",
                                       "invalid --max-workers '%s': expected 1 to 256", optarg);
            o.max_workers = (unsigned)v;
            break;
        case 'h':
            serve_help();
            return EXIT_OK;
        default:
            return cli_usage_error(c, "gate serve", "unknown option");
        }
    }
    if (optind != argc)
        return cli_usage_error(c, "gate serve", "unexpected argument '%s'", argv[optind]);

    r = cli_serve_start(c, "gate", foreground, gate_client_ping, &sb, &ready_fd);
    if (r != CLI_DETACHED)
        return r;
    o.n_tcp = tcp.n;
    o.ready = cli_daemon_ready;
    o.ready_userdata = &ready_fd;
    r = gate_daemon_run(sb, &o, &err);
    if (r < 0)
        return cli_fail(c, r, &err);
    return EXIT_OK;
}
