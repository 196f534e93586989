/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-vault-serve.c: `terok-sandbox vault serve`, the broker daemon. Built only into
 * terok-sandbox-daemon (it links libcurl and libmicrohttpd); the CLI execs that binary for it. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#include "broker/vault-client.h"
#include "broker/vault-daemon.h"
#include "cli.h"
#include "log.h"
#include "tokens.h"
#include "util/strv.h"

static void serve_help(void)
{
    printf("Usage: terok-sandbox vault serve [OPTIONS]\n"
           "\n"
           "Run the phantom-token broker. Containers reach it on their own socket\n"
           "(<runtime>/containers/<name>/vault.sock, /run/terok/vault.sock inside); a request\n"
           "/<route>/<path> is forwarded to the route's upstream with the real credential\n"
           "in place of the container's phantom token. `run` starts the daemon on demand.\n"
           "\n"
           "Options:\n"
           "      --foreground               stay in the foreground (default: detach once\n"
           "                                 ready and print the daemon's pid)\n"
           "      --tcp ADDR:PORT=CONTAINER  also listen on a loopback TCP port, every request\n"
           "                                 on it counting as CONTAINER (tests, benchmarks)\n"
           "      --ca-file FILE             extra CA bundle for upstream TLS\n"
           "  -h, --help                     show this help\n");
}

int cmd_vault_serve(cli *c, int argc, char **argv);
int cmd_vault_serve(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"foreground", no_argument, NULL, 'f'},
        {"tcp", required_argument, NULL, 't'},
        {"ca-file", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    _cleanup_(cli_tcp_done) cli_tcp tcp = {.n = 0};
    vault_daemon_opts o = {.tcp = tcp.v};
    bool foreground = false;
    int ready_fd = -1;
    sandbox *sb;
    int opt, r;

    while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) >= 0) {
        switch (opt) {
        case 'f':
            foreground = true;
            break;
        case 't':
            r = cli_serve_tcp(c, "vault serve", optarg, &tcp);
            if (r > 0)
                return r;
            break;
        case 'a':
            o.ca_file = optarg;
            break;
        case 'h':
            serve_help();
            return EXIT_OK;
        default:
            return cli_usage_error(c, "vault serve", "unknown option");
        }
    }
    if (optind != argc)
        return cli_usage_error(c, "vault serve", "unexpected argument '%s'", argv[optind]);

    r = cli_serve_start(c, "vault", foreground, vault_client_ping, &sb, &ready_fd);
    if (r != CLI_DETACHED)
        return r;
    o.n_tcp = tcp.n;
    o.ready = cli_daemon_ready;
    o.ready_userdata = &ready_fd;
    /* The broker holds credentials in memory: no core dumps, not ptrace-able by same-uid peers
     * (main() already did this for every command). */
    r = vault_daemon_run(sb, &o, &err);
    if (r < 0)
        return cli_fail(c, r, &err);
    return EXIT_OK;
}
