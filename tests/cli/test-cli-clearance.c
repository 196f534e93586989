/* SPDX-License-Identifier: Apache-2.0 */
/* test-cli-clearance.c: `shield logs` and `clearance ...` on the command line without Podman:
 * bad arguments are usage errors naming the value, an unknown container is exit 4, no daemon
 * is a clear failure, and `shield logs` reads the audit rows the daemon would write (here
 * written through the core's audit module into the real state store). */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>

#include "clearance/shield-audit.h"
#include "store.h"
#include "terok-test.h"

static void setup(void)
{
    test_tmpdir_setup();
    setenv("TEROK_SANDBOX_CONFIG", test_write_config(NULL), 1);
}

TestSuite(cli_clearance, .init = setup, .fini = test_tmpdir_teardown, .timeout = 60);

static void expect(cli_result *r, int code, const char *err_part)
{
    cr_assert_eq(r->exit_code, code, "exit %d (expected %d)\nstdout: %s\nstderr: %s", r->exit_code,
                 code, r->out, r->err);
    if (err_part)
        cr_assert(strstr(r->err, err_part), "stderr does not mention '%s': %s", err_part, r->err);
    cli_result_done(r);
}

Test(cli_clearance, usage_errors_name_the_value)
{
    cli_result r;

    r = TEST_CLI("shield", "logs", "../etc");
    expect(&r, 2, "invalid container name '../etc'");
    r = TEST_CLI("shield", "logs", "x", "--since", "yesterday-ish");
    expect(&r, 2, "invalid --since 'yesterday-ish'");
    r = TEST_CLI("shield", "logs", "x", "--since", "2026-13-45T99:00:00Z");
    expect(&r, 2, "invalid --since '2026-13-45T99:00:00Z'");
    r = TEST_CLI("shield", "logs");
    expect(&r, 2, "'logs' needs one CONTAINER");
    r = TEST_CLI("shield", "logs", "a", "b");
    expect(&r, 2, "'logs' needs one CONTAINER");
    r = TEST_CLI("clearance", "allow", "c1", "1.2.3.4", "--for", "forever");
    expect(&r, 2, "invalid --for 'forever'");
    r = TEST_CLI("clearance", "deny", "c1", "1.2.3.4", "--for", "1h");
    expect(&r, 2, "deny takes no --for");
    r = TEST_CLI("clearance", "allow", "c1");
    expect(&r, 2, "needs a CONTAINER and a DEST");
    r = TEST_CLI("clearance", "pending", "bad/name");
    expect(&r, 2, "invalid container name 'bad/name'");
    r = TEST_CLI("clearance", "launch");
    expect(&r, 2, "unknown command 'launch'");
    r = TEST_CLI("clearance");
    expect(&r, 2, NULL);
}

Test(cli_clearance, no_daemon_and_unknown_container)
{
    cli_result r;

    r = TEST_CLI("shield", "logs", "ghost");
    expect(&r, 4, "no such container 'ghost'");
    r = TEST_CLI("clearance", "pending");
    expect(&r, 1, "no clearance daemon is running");
    r = TEST_CLI("clearance", "allow", "c1", "1.2.3.4");
    expect(&r, 1, "no clearance daemon is running");
    r = TEST_CLI("clearance", "status", "--json");
    cr_assert_eq(r.exit_code, 0);
    cr_assert(strstr(r.out, "\"running\":false"), "%s", r.out);
    cli_result_done(&r);
    r = TEST_CLI("clearance", "stop");
    expect(&r, 0, NULL);
}

Test(cli_clearance, logs_show_the_audit_of_a_removed_container)
{
    store *st = NULL;
    terok_error err = TEROK_ERROR_INIT;
    shield_audit_row rows[] = {
        {.at_ms = 1700000000123,
         .container = "gone",
         .kind = "blocked",
         .dest_ip = "192.0.2.7",
         .dest_port = 443,
         .protocol = 6,
         .domain = "example.com",
         .count = 1,
         .actor_uid = -1},
        {.at_ms = 1700000001000,
         .container = "gone",
         .kind = "blocked",
         .dest_ip = "2001:db8::9",
         .dest_port = 53,
         .protocol = 17,
         .count = 1,
         .actor_uid = -1},
        {.at_ms = 1700000002000,
         .container = "gone",
         .kind = "suppressed",
         .protocol = -1,
         .count = 57,
         .actor_uid = -1},
        {.at_ms = 1700000003000,
         .container = "gone",
         .kind = "allow",
         .dest_ip = "192.0.2.7",
         .dest_port = 443,
         .protocol = 6,
         .domain = "example.com",
         .target = "example.com:443",
         .count = 1,
         .actor_uid = 0},
        {.at_ms = 1700000004000,
         .container = "other",
         .kind = "blocked",
         .dest_ip = "192.0.2.8",
         .dest_port = 80,
         .protocol = 6,
         .count = 1,
         .actor_uid = -1},
    };
    cli_result r;
    int lines = 0;

    terok_assert_ok(store_open(test_path("state"), &st, &err), &err);
    terok_assert_ok(shield_audit_append(store_sqlite(st), rows, 5, &err), &err);
    store_close(st);

    r = TEST_CLI("shield", "logs", "gone");
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "2023-11-14T22:13:20.123Z blocked    tcp 192.0.2.7:443 (example.com)"),
              "%s", r.out);
    cr_assert(strstr(r.out, "udp [2001:db8::9]:53"), "%s", r.out);
    cr_assert(strstr(r.out, "57 more blocked connection(s)"), "%s", r.out);
    cr_assert(strstr(r.out, "allow      tcp 192.0.2.7:443 (example.com) -> allow example.com:443 "
                            "by uid 0"),
              "%s", r.out);
    cr_assert(!strstr(r.out, "192.0.2.8"), "another container's row: %s", r.out);
    cli_result_done(&r);

    r = TEST_CLI("shield", "logs", "gone", "--json");
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
        json_object *o = json_tokener_parse(line), *v = NULL;

        cr_assert(o, "not JSON: %s", line);
        cr_assert(json_object_object_get_ex(o, "container", &v) &&
                  !strcmp(json_object_get_string(v), "gone"));
        lines++;
        json_object_put(o);
    }
    cr_assert_eq(lines, 4);
    cli_result_done(&r);

    /* known by its rows even when --since filters every one of them */
    r = TEST_CLI("shield", "logs", "gone", "--since", "2999-01-01T00:00:00Z");
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_assert_str_empty(r.out);
    cli_result_done(&r);

    r = TEST_CLI("shield", "logs", "gone", "--since", "2023-11-14T22:13:21Z");
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_assert(!strstr(r.out, "192.0.2.7:443 (example.com)\n"), "%s", r.out);
    cr_assert(strstr(r.out, "[2001:db8::9]:53"), "%s", r.out);
    cli_result_done(&r);
}
