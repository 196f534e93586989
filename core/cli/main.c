/* SPDX-License-Identifier: Apache-2.0 */
/* main.c: terok-sandbox entry point: global options, the command table, dispatch. Loads nothing
 * by itself: --version and --help never touch a plugin or the config. */
#include <getopt.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "cli.h"
#include "log.h"
#include "terok-build-config.h"
#include "terok/plugin.h"

static const cli_command commands[] = {
    {"run", cmd_run, "Create and start a sandboxed container"},
    {"create", cmd_create, "Create a sandboxed container without starting it"},
    {"start", cmd_start, "Start a created or stopped container"},
    {"stop", cmd_stop, "Stop a container (SIGTERM, then SIGKILL)"},
    {"kill", cmd_kill, "Send a signal to a container"},
    {"rm", cmd_rm, "Remove containers (idempotent)"},
    {"exec", cmd_exec, "Run a command in a running container"},
    {"logs", cmd_logs, "Show a container's output"},
    {"ps", cmd_ps, "List terok-managed containers"},
    {"inspect", cmd_inspect, "Show a container's details and applied hardening"},
    {"wait", cmd_wait, "Wait for a container to exit and print its exit code"},
    {"config", cmd_config, "Check or show the configuration"},
    {"plugins", cmd_plugins, "List the plugins in the plugin directory"},
    {"vault", cmd_vault, "Credentials, phantom tokens and the broker daemon"},
    {"gate", cmd_gate, "Git gate: projects, review, forward and the gate daemon"},
    {"ssh", cmd_ssh, "SSH keys in the vault and the containers' ssh-agent"},
    {"shield", cmd_shield, "Live egress decisions, status and the OCI hooks"},
    {"hook", cmd_hook, "The shield's OCI hook (run by the container engine)"},
    {"clearance", cmd_clearance, "Blocked connections awaiting a verdict, and their daemon"},
};

static void print_version(bool json)
{
    char abi[32];

    snprintf(abi, sizeof abi, "%u.%u", TEROK_PLUGIN_ABI_MAJOR, TEROK_PLUGIN_ABI_MINOR);
    if (json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "version", json_object_new_string(TEROK_VERSION));
        json_object_object_add(o, "plugin_abi", json_object_new_string(abi));
        json_object_object_add(o, "plugin_dir", json_object_new_string(TEROK_PLUGIN_DIR));
        cli_json_print(o);
        return;
    }
    printf("terok-sandbox %s (plugin ABI %s)\n", TEROK_VERSION, abi);
}

static void print_help(void)
{
    printf("Usage: terok-sandbox [OPTIONS] COMMAND [ARGS...]\n"
           "\n"
           "A hardened container runner for untrusted tasks.\n"
           "\n"
           "Options:\n"
           "  -c, --config FILE     use FILE instead of the configuration chain\n"
           "                        (also $TEROK_SANDBOX_CONFIG)\n"
           "      --json            machine-readable output (every listing and report)\n"
           "      --log-level LEVEL err, warning, notice (default), info, debug\n"
           "  -h, --help            show this help\n"
           "  -V, --version         show the version\n"
           "\n"
           "Commands:\n");
    for (size_t i = 0; i < ELEMENTSOF(commands); i++)
        printf("  %-10s %s\n", commands[i].name, commands[i].summary);
    printf("\n"
           "Run 'terok-sandbox COMMAND --help' for a command's options.\n"
           "\n"
           "Exit status:\n"
           "  0  success                     3  invalid configuration\n"
           "  1  the operation failed        4  no such container or object\n"
           "  2  bad command line            5  a backend plugin could not be used\n"
           "  run (foreground) and exec exit with the container command's status;\n"
           "  125 means terok-sandbox itself failed, 126/127 the command could not run.\n");
}

static void harden_process(void)
{
    /* Secrets pass through this process: no core dumps, no ptrace by peers of the same uid. */
    struct rlimit rl = {0, 0};

    (void)setrlimit(RLIMIT_CORE, &rl);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},    {"json", no_argument, NULL, 'j'},
        {"log-level", required_argument, NULL, 'L'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},         {NULL, 0, NULL, 0},
    };
    cli c = {.argv0 = "terok-sandbox", .argv = argv};
    bool version = false;
    int o, r;

    harden_process();
    /* Installed as a link named terok-sandbox-hook: the OCI hook, argv as `hook`'s. */
    {
        const char *base = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;

        base = base ? base + 1 : argc > 0 && argv[0] ? argv[0] : "";
        if (streq(base, "terok-sandbox-hook"))
            return cmd_hook(&c, argc, argv);
    }
    /* Stop at the first non-option: everything after the command is the command's. */
    while ((o = getopt_long(argc, argv, "+c:hV", opts, NULL)) >= 0) {
        switch (o) {
        case 'c':
            c.config_file = optarg;
            break;
        case 'j':
            c.json = true;
            break;
        case 'L':
            r = log_level_from_string(optarg);
            if (r < 0)
                return cli_usage_error(&c, NULL, "invalid --log-level '%s'", optarg);
            log_set_max_level(r);
            break;
        case 'h':
            print_help();
            return EXIT_OK;
        case 'V':
            version = true;
            break;
        default:
            fprintf(stderr, "Try 'terok-sandbox --help'.\n");
            return EXIT_USAGE;
        }
    }

    if (version) {
        print_version(c.json);
        return EXIT_OK;
    }
    if (optind >= argc) {
        print_help();
        return EXIT_USAGE;
    }

    int idx = optind;
    const char *name = argv[idx];
    if (streq(name, "version")) {
        print_version(c.json);
        return EXIT_OK;
    }
    if (streq(name, "help")) {
        print_help();
        return EXIT_OK;
    }
    for (size_t i = 0; i < ELEMENTSOF(commands); i++)
        if (streq(commands[i].name, name)) {
            optind = 0; /* re-initialise getopt for the command's own options */
            r = commands[i].run(&c, argc - idx, argv + idx);
            c.sandbox = sandbox_free(c.sandbox);
            return r;
        }
    return cli_usage_error(&c, NULL, "unknown command '%s'", name);
}
