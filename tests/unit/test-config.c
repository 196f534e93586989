/* SPDX-License-Identifier: Apache-2.0 */
/* test-config.c: loading, layering and validating the configuration: hostile input (table),
 * file policy (owner, mode, symlinks), layering order, defaults, typed getters, value parsers.
 * Plugin key declarations and hostile ELF files are in test-config-keys.c. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-internal.h"
#include "config.h"
#include "terok-build-config.h"
#include "terok-test.h"
#include "util/strv.h"

#define CONFIG_TEST_LINE 4096

TestSuite(config, .init = test_tmpdir_setup, .fini = test_tmpdir_teardown, .timeout = 20.);

/* The text table has many cases and each runs in its own process: a lighter fixture than
 * test_tmpdir_setup's (which spawns rm -rf), enough for the one file they write. */
static void text_setup(void)
{
    char tmpl[] = "/tmp/terok-config-test.XXXXXX";

    cr_assert(mkdtemp(tmpl) != NULL);
    test_tmp = strdup(tmpl);
    unsetenv("TEROK_SANDBOX_CONFIG");
}

static void text_teardown(void)
{
    unlink(test_path("sys/sandbox.conf"));
    rmdir(test_path("sys"));
    rmdir(test_tmp);
    free(test_tmp);
    test_tmp = NULL;
}

TestSuite(config_text, .init = text_setup, .fini = text_teardown, .timeout = 20.);
TestSuite(config_parse, .timeout = 20.);

/* Every problem as "LINE: [warning: ]message", one per line; files are left out (one file). */
static char *problems_text(config *c)
{
    const config_problem *p;
    size_t n = config_problems(c, &p);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%u: %s%s", i ? "\n" : "", p[i].line, p[i].warning ? "warning: " : "",
                p[i].message);
    fclose(f);
    return out;
}

static const char *write_bytes(const char *rel, const char *data, size_t len, unsigned mode)
{
    const char *path = test_write_file(rel, "", mode);
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);

    cr_assert(fd >= 0);
    cr_assert(write(fd, data, len) == (ssize_t)len);
    close(fd);
    return path;
}

/* Loads sys/sandbox.conf (the only file of the chain) and validates. */
static config *load_system_file(const char *data, size_t len)
{
    terok_error err = TEROK_ERROR_INIT;
    config *c = NULL;

    write_bytes("sys/sandbox.conf", data, len, 0644);
    terok_assert_ok(config_load(NULL, test_path("sys"), NULL, &c, &err), &err);
    (void)config_validate(c);
    return c;
}

static void *cr_memdup(const void *p, size_t n)
{
    void *q = cr_malloc(n);

    cr_assert(q != NULL);
    memcpy(q, p, n);
    return q;
}

struct text_case {
    const char *name;
    const char *text;
    size_t len;
    const char *expect; /* problems_text(), "" for none */
};

#define CASE(n, t, e)                                                                              \
    {                                                                                              \
        n, t, sizeof(t) - 1, e                                                                     \
    }

ParameterizedTestParameters(config_text, hostile_text)
{
    static struct text_case cases[] = {
        CASE("clean", "[core]\nlog-level = debug\n", ""),
        CASE("crlf is accepted", "[core]\r\nlog-level = debug\r\n", ""),
        CASE("no final newline", "[core]\nlog-level = debug", ""),
        CASE("utf-8 bom", "\xef\xbb\xbf[core]\nlog-level = debug\n", ""),
        CASE("comments",
             "# c\n; c\n[core]   # c\nlog-level = debug   # c\n[shield]\nbackend = none ; c\n", ""),
        CASE("nul byte", "[core]\nlog-level = de\0bug\n", "2: line contains a NUL byte"),
        CASE("escape sequence", "[core]\nlog-level = \x1b[31mdebug\n",
             "2: line contains the control character 0x1b"),
        CASE("lone cr", "[core]\nlog-level = de\rbug\n",
             "2: line contains the control character 0x0d"),
        CASE("invalid utf-8", "[core]\nlog-level = d\xff\n", "2: line is not valid UTF-8"),
        CASE("overlong utf-8", "[core]\nlog-level = \xc0\xaf\n", "2: line is not valid UTF-8"),
        CASE("surrogate", "[core]\nlog-level = \xed\xa0\x80\n", "2: line is not valid UTF-8"),
        CASE("truncated utf-8", "[core]\nlog-level = \xe2\x82\n", "2: line is not valid UTF-8"),
        CASE("utf-8 in a string",
             "[route.x]\nupstream = https://x.example\ncredential = gr\xc3\xbc\xc3\x9f\n", ""),
        CASE("bad header drops its keys", "[co\xffre]\nbogus = 1\n", "1: line is not valid UTF-8"),
        CASE("unterminated section", "[core\nlog-level = debug\n",
             "1: unterminated section header: expected ']'"),
        CASE("comment inside header", "[core # x]\n",
             "1: unterminated section header: expected ']'"),
        CASE("text after header", "[core] x\nlog-level = debug\n",
             "1: unexpected text after the section header [core]"),
        CASE("empty section name", "[]\nx = 1\n", "1: empty section name"),
        CASE("section name too long",
             "[route.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n",
             "1: section name "
             "'route.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'"
             " is too long (at most 49 characters)"),
        CASE("key outside any section", "log-level = debug\n",
             "1: key 'log-level' is outside any section"),
        CASE("missing equals", "[core]\nlog-level\n",
             "2: expected 'key = value' or a [section] header"),
        CASE("colon is not a separator", "[core]\nlog-level: debug\n",
             "2: expected 'key = value' or a [section] header"),
        CASE("no multi-line values", "[core]\nlog-level = debug\n  info\n",
             "3: expected 'key = value' or a [section] header"),
        CASE("missing key name", "[core]\n= debug\n", "2: missing key name before '='"),
        CASE("unterminated quote",
             "[route.x]\nupstream = https://x.example\ncredential = x\nauth-prefix = \"Bearer\n",
             "4: unterminated quote in the value of 'auth-prefix' in [route.x]: '\"Bearer'"),
        CASE("duplicate key", "[core]\nlog-level = info\nlog-level = debug\n",
             "3: duplicate key 'log-level' in [core] (first set on line 2)"),
        CASE("duplicate key in a reopened section",
             "[core]\nlog-level = info\n[gate]\n[core]\nlog-level = debug\n",
             "5: duplicate key 'log-level' in [core] (first set on line 2)"),
        CASE("unknown key", "[core]\nloglevel = debug\n", "2: unknown key 'loglevel' in [core]"),
        CASE("unknown section", "[bogus]\nx = 1\n", "1: unknown section [bogus]"),
        CASE("unknown dotted section", "[foo.bar]\n", "1: unknown section [foo.bar]"),
        CASE("section names are case-sensitive", "[Core]\n", "1: unknown section [Core]"),
        CASE("bad bool", "[container]\nread-only = maybe\n",
             "2: invalid value 'maybe' for 'read-only' in [container]: expected yes, no, true, "
             "false, on, off, 1 or 0"),
        CASE("bool words", "[container]\nread-only = ON\nseccomp = 1\ncap-drop-all = false\n", ""),
        CASE("int overflow", "[container]\npids-limit = 99999999999999999999\n",
             "2: invalid value '99999999999999999999' for 'pids-limit' in [container]: out of "
             "range: expected an integer from 1 to 4194304"),
        CASE("int negative", "[container]\npids-limit = -5\n",
             "2: invalid value '-5' for 'pids-limit' in [container]: out of range: expected an "
             "integer from 1 to 4194304"),
        CASE("int trailing junk", "[container]\npids-limit = 12abc\n",
             "2: invalid value '12abc' for 'pids-limit' in [container]: expected an integer from "
             "1 to 4194304"),
        CASE("int plus sign", "[container]\npids-limit = +12\n",
             "2: invalid value '+12' for 'pids-limit' in [container]: expected an integer from 1 "
             "to 4194304"),
        CASE("int hex", "[container]\npids-limit = 0x10\n",
             "2: invalid value '0x10' for 'pids-limit' in [container]: expected an integer from "
             "1 to 4194304"),
        CASE("int empty", "[container]\npids-limit =\n",
             "2: invalid value '' for 'pids-limit' in [container]: expected an integer from 1 to "
             "4194304"),
        CASE("size fraction", "[container]\nmemory = 1.5G\n",
             "2: invalid value '1.5G' for 'memory' in [container]: expected a size (bytes, or "
             "with a K, M, G or T suffix) of at least 6M"),
        CASE("size too small", "[container]\nmemory = 1K\n",
             "2: invalid value '1K' for 'memory' in [container]: out of range: expected a size "
             "(bytes, or with a K, M, G or T suffix) of at least 6M"),
        CASE("size overflow", "[container]\nmemory = 99999999999T\n",
             "2: invalid value '99999999999T' for 'memory' in [container]: out of range: "
             "expected a size (bytes, or with a K, M, G or T suffix) of at least 6M"),
        CASE("size unit", "[container]\nmemory = 512MB\n",
             "2: invalid value '512MB' for 'memory' in [container]: expected a size (bytes, or "
             "with a K, M, G or T suffix) of at least 6M"),
        CASE("duration unit", "[container]\nstop-timeout = 10x\n",
             "2: invalid value '10x' for 'stop-timeout' in [container]: expected a duration "
             "(such as 500ms, 10s, 5m, 2h or 1d) from 0 to 1h"),
        CASE("duration too long", "[container]\nstop-timeout = 2h\n",
             "2: invalid value '2h' for 'stop-timeout' in [container]: out of range: expected a "
             "duration (such as 500ms, 10s, 5m, 2h or 1d) from 0 to 1h"),
        CASE("decimal too small", "[container]\ncpus = 0\n",
             "2: invalid value '0' for 'cpus' in [container]: out of range: expected a decimal "
             "number with up to three decimals from 0.01 to 1024"),
        CASE("decimal precision", "[container]\ncpus = 1.2345\n",
             "2: invalid value '1.2345' for 'cpus' in [container]: expected a decimal number "
             "with up to three decimals from 0.01 to 1024"),
        CASE("decimal ok", "[container]\ncpus = 1.5\n", ""),
        CASE("bad enum", "[core]\nlog-level = loud\n",
             "2: invalid value 'loud' for 'log-level' in [core]: expected one of: err, warning, "
             "notice, info, debug"),
        CASE("relative path", "[core]\nplugin-dir = plugins\n",
             "2: invalid value 'plugins' for 'plugin-dir' in [core]: expected an absolute path"),
        CASE("bad backend name", "[vault]\nbackend = Bad_Name\n",
             "2: invalid value 'Bad_Name' for 'backend' in [vault]: expected a backend name "
             "([a-z0-9-]+) or 'none'"),
        CASE("runtime cannot be none", "[runtime]\nbackend = none\n",
             "2: invalid value 'none' for 'backend' in [runtime]: every container needs a "
             "runtime"),
        CASE("unknown capability", "[container]\ngrantable-caps = perfmon CAP_SYS_ADMIN\n",
             "2: invalid value 'perfmon CAP_SYS_ADMIN' for 'grantable-caps' in [container]: "
             "unknown capability 'CAP_SYS_ADMIN': expected lower-case names without CAP_, such "
             "as 'perfmon' or 'sys_ptrace'"),
        CASE("route without upstream", "[route.x]\ntoken-env = lower\n",
             "1: route [route.x] has no 'upstream'\n"
             "1: route [route.x] has no 'credential'\n"
             "2: invalid value 'lower' for 'token-env' in [route.x]: expected an environment "
             "variable name ([A-Z_][A-Z0-9_]*)"),
        CASE("route the broker refuses",
             "[route.x]\nupstream = https://x.example\ncredential = x\nallow = GET/v1\n",
             "1: route 'x': allow rule 'GET/v1' must be METHOD:/PATH"),
        CASE("route oauth needs a client id",
             "[route.x]\nupstream = https://x.example\ncredential = x\n"
             "oauth-token-url = https://x.example/token\n",
             "1: route 'x': oauth-token-url needs oauth-client-id"),
        CASE("route websocket keys",
             "[route.x]\nupstream = https://x.example\ncredential = x\nwebsocket = maybe\n"
             "websocket-idle = 0s\n",
             "4: invalid value 'maybe' for 'websocket' in [route.x]: expected yes, no, true, "
             "false, on, off, 1 or 0\n"
             "5: invalid value '0s' for 'websocket-idle' in [route.x]: out of range: expected a "
             "duration (such as 500ms, 10s, 5m, 2h or 1d) from 1s to 1d"),
        CASE("route websocket ok",
             "[route.x]\nupstream = https://x.example\ncredential = x\nwebsocket = no\n"
             "websocket-idle = 30s\n",
             ""),
        CASE("route url", "[route.x]\nupstream = ftp://x.example\ncredential = x\n",
             "2: invalid value 'ftp://x.example' for 'upstream' in [route.x]: expected an "
             "http:// or https:// URL"),
        CASE("route name", "[route.Foo]\nupstream = https://x.example\ncredential = x\n",
             "1: invalid name 'Foo' in section [route.Foo]: expected [a-z0-9][a-z0-9_-]*, at most "
             "64"),
        CASE(
            "route name with a leading dash",
            "[route.-x]\nupstream = https://x.example\ncredential = x\n",
            "1: invalid name '-x' in section [route.-x]: expected [a-z0-9][a-z0-9_-]*, at most 64"),
        CASE("inactive plugin section", "[vault.other]\nx = 1\n",
             "1: warning: section [vault.other] configures backend 'other' but [vault] backend "
             "is 'sqlite'; it is ignored"),
        CASE("switched-off backend section", "[shield]\nbackend = none\n[shield.nft]\n",
             "3: warning: section [shield.nft] configures backend 'nft' but [shield] backend is "
             "'none'; it is ignored"),
        CASE("problems in line order", "[core]\nx = 1\n[bogus\n[container]\nmemory = 1\n",
             "2: unknown key 'x' in [core]\n"
             "3: unterminated section header: expected ']'\n"
             "5: invalid value '1' for 'memory' in [container]: out of range: expected a size "
             "(bytes, or with a K, M, G or T suffix) of at least 6M"),
    };

    /* Tests run in a fresh process: parameters must live in Criterion's shared memory. */
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        cases[i].name = cr_memdup(cases[i].name, strlen(cases[i].name) + 1);
        cases[i].text = cr_memdup(cases[i].text, cases[i].len + 1);
        cases[i].expect = cr_memdup(cases[i].expect, strlen(cases[i].expect) + 1);
    }
    return cr_make_param_array(struct text_case, cases, ELEMENTSOF(cases));
}

ParameterizedTest(struct text_case *tc, config_text, hostile_text)
{
    config *c = load_system_file(tc->text, tc->len);
    char *got = problems_text(c);

    cr_assert(eq(str, got, (char *)tc->expect), "case '%s'", tc->name);
    free(got);
    config_free(c);
}

Test(config, overlong_line)
{
    char line[CONFIG_TEST_LINE + 64];
    config *c;
    char *got;

    /* 4096 bytes is the limit: exactly that is fine, one more is not. */
    snprintf(line, sizeof line, "[route.x]\nupstream = https://x.example\ncredential = %0*d\n",
             CONFIG_TEST_LINE - 13, 0);
    c = load_system_file(line, strlen(line));
    got = problems_text(c);
    cr_assert(eq(str, got, ""));
    free(got);
    config_free(c);

    snprintf(line, sizeof line, "[route.x]\nupstream = https://x.example\ncredential = %0*d\n",
             CONFIG_TEST_LINE - 12, 0);
    c = load_system_file(line, strlen(line));
    got = problems_text(c);
    cr_assert(
        eq(str, got, "1: route [route.x] has no 'credential'\n3: line is longer than 4096 bytes"));
    free(got);
    config_free(c);
}

Test(config, oversized_file_is_refused)
{
    size_t n = 2 * 1024 * 1024;
    char *big = malloc(n);
    config *c;
    char *got;

    memset(big, 'a', n);
    memcpy(big, "[core]\nx = ", 11);
    big[n - 1] = '\n';
    c = load_system_file(big, n);
    got = problems_text(c);
    /* Over the 1 MiB file limit: refused before parsing. */
    cr_assert(strstr(got, "config file is too large (2097152 bytes; the limit is 1048576)") != NULL,
              "%s", got);
    free(got);
    free(big);
    config_free(c);
}

/* --- file policy ------------------------------------------------------------------------- */

static char *only_problem(config *c)
{
    const config_problem *p;
    size_t n = config_problems(c, &p);
    char *s = NULL;

    cr_assert(eq(sz, n, 1), "expected one problem, got %zu", n);
    cr_assert(asprintf(&s, "%s:%u: %s", p[0].file, p[0].line, p[0].message) > 0);
    return s;
}

static config *load_chain(void)
{
    terok_error err = TEROK_ERROR_INIT;
    config *c = NULL;

    terok_assert_ok(config_load(NULL, test_path("sys"), test_path("user"), &c, &err), &err);
    (void)config_validate(c);
    return c;
}

Test(config, group_writable_file_is_refused)
{
    const char *path = test_write_file("sys/sandbox.conf", "[core]\nlog-level = debug\n", 0664);
    char want[9000];
    config *c;
    char *got;

    chmod(path, 0664);
    c = load_chain();
    got = only_problem(c);
    snprintf(want, sizeof want,
             "%s:0: refusing a config file writable by group or others (mode 0664); run 'chmod "
             "go-w %s'",
             path, path);
    cr_assert(eq(str, got, want));
    cr_assert(eq(str, (char *)config_get(c, "core", "log-level"), "notice"), "not read");
    cr_assert(eq(ptr, (void *)config_files(c)[0], NULL));
    free(got);
    config_free(c);
}

Test(config, world_writable_dropin_dir_is_refused)
{
    char want[9000], dir[4096];
    config *c;
    char *got;

    test_write_file("sys/sandbox.conf.d/10-a.conf", "[core]\nlog-level = debug\n", 0644);
    snprintf(dir, sizeof dir, "%s", test_path("sys/sandbox.conf.d"));
    chmod(dir, 0757);
    c = load_chain();
    got = only_problem(c);
    snprintf(want, sizeof want,
             "%s:0: refusing a drop-in directory writable by group or others (mode 0757); run "
             "'chmod go-w %s'",
             dir, dir);
    cr_assert(eq(str, got, want));
    free(got);
    config_free(c);
}

Test(config, writable_config_dir_is_refused)
{
    char want[9000], dir[4096];
    config *c;
    char *got;

    test_write_file("user/sandbox.conf", "[core]\nlog-level = debug\n", 0644);
    snprintf(dir, sizeof dir, "%s", test_path("user"));
    chmod(dir, 0775);
    c = load_chain();
    got = only_problem(c);
    snprintf(want, sizeof want,
             "%s:0: refusing a config directory writable by group or others (mode 0775); run "
             "'chmod go-w %s'",
             dir, dir);
    cr_assert(eq(str, got, want));
    free(got);
    config_free(c);
}

Test(config, file_of_another_user_is_refused)
{
    const char *path = test_write_file("sys/sandbox.conf", "[core]\nlog-level = debug\n", 0644);
    char want[9000];
    config *c;
    char *got;

    if (geteuid() != 0)
        cr_skip_test("needs root to chown a file to another user");
    cr_assert(chown(path, 4242, 4242) == 0);
    c = load_chain();
    got = only_problem(c);
    snprintf(want, sizeof want,
             "%s:0: refusing a config file owned by uid 4242 (only root or uid 0 may own it); "
             "run 'chown 0 %s'",
             path, path);
    cr_assert(eq(str, got, want));
    free(got);
    config_free(c);
}

Test(config, symlinked_file_is_refused)
{
    const char *real = test_write_file("elsewhere.conf", "[core]\nlog-level = debug\n", 0644);
    char link[4096], want[9000];
    config *c;
    char *got;

    mkdir(test_path("sys"), 0755);
    snprintf(link, sizeof link, "%s", test_path("sys/sandbox.conf"));
    cr_assert(symlink(real, link) == 0);
    c = load_chain();
    got = only_problem(c);
    snprintf(want, sizeof want,
             "%s:0: refusing a symlinked config file (a link can be swapped under us); put the "
             "file itself in its place",
             link);
    cr_assert(eq(str, got, want));
    free(got);
    config_free(c);
}

Test(config, fifo_is_refused_without_blocking)
{
    char path[4096], want[9000];
    config *c;
    char *got;

    mkdir(test_path("sys"), 0755);
    snprintf(path, sizeof path, "%s", test_path("sys/sandbox.conf"));
    cr_assert(mkfifo(path, 0644) == 0);
    c = load_chain();
    got = only_problem(c);
    snprintf(want, sizeof want, "%s:0: refusing a config file that is not a regular file", path);
    cr_assert(eq(str, got, want));
    free(got);
    config_free(c);
}

/* --- layering ---------------------------------------------------------------------------- */

Test(config, layering_order)
{
    config *c;
    const char *const *files;

    test_write_file("sys/sandbox.conf", "[core]\nlog-level = err\n[container]\ncpus = 1\n", 0644);
    test_write_file("sys/sandbox.conf.d/20-b.conf", "[core]\nlog-level = warning\n", 0644);
    test_write_file("sys/sandbox.conf.d/10-a.conf",
                    "[core]\nlog-level = notice\n[container]\npids-limit = 100\n", 0644);
    test_write_file("sys/sandbox.conf.d/README", "not a drop-in\n", 0644);
    test_write_file("sys/sandbox.conf.d/.hidden.conf", "[bogus]\n", 0644);
    test_write_file("user/sandbox.conf", "[core]\nlog-level = info\n", 0644);
    test_write_file("user/sandbox.conf.d/50-u.conf",
                    "[core]\nlog-level = debug\n[container]\nmemory = 1G\n", 0644);
    c = load_chain();
    cr_assert(eq(int, config_validate(c), 0));
    files = config_files(c);
    cr_assert(eq(str, (char *)files[0], (char *)test_path("sys/sandbox.conf")));
    cr_assert(eq(str, (char *)files[1], (char *)test_path("sys/sandbox.conf.d/10-a.conf")));
    cr_assert(eq(str, (char *)files[2], (char *)test_path("sys/sandbox.conf.d/20-b.conf")));
    cr_assert(eq(str, (char *)files[3], (char *)test_path("user/sandbox.conf")));
    cr_assert(eq(str, (char *)files[4], (char *)test_path("user/sandbox.conf.d/50-u.conf")));
    cr_assert(eq(ptr, (void *)files[5], NULL));

    cr_assert(eq(str, (char *)config_get(c, "core", "log-level"), "debug"));
    cr_assert(eq(str, (char *)config_origin(c, "core", "log-level"),
                 (char *)test_path("user/sandbox.conf.d/50-u.conf:2")));
    cr_assert(eq(str, (char *)config_get(c, "container", "cpus"), "1"));
    cr_assert(eq(str, (char *)config_origin(c, "container", "cpus"),
                 (char *)test_path("sys/sandbox.conf:4")));
    cr_assert(eq(str, (char *)config_get(c, "container", "pids-limit"), "100"));
    cr_assert(eq(str, (char *)config_origin(c, "container", "stop-timeout"), "default"));
    config_free(c);
}

Test(config, duplicate_across_files_is_layering)
{
    config *c;

    test_write_file("sys/sandbox.conf", "[core]\nlog-level = err\n", 0644);
    test_write_file("user/sandbox.conf", "[core]\nlog-level = info\n", 0644);
    c = load_chain();
    cr_assert(eq(int, config_validate(c), 0));
    cr_assert(eq(str, (char *)config_get(c, "core", "log-level"), "info"));
    config_free(c);
}

Test(config, explicit_file_replaces_the_chain)
{
    terok_error err = TEROK_ERROR_INIT;
    const char *path;
    config *c = NULL;

    test_write_file("sys/sandbox.conf", "[core]\nlog-level = err\n[container]\ncpus = 1\n", 0644);
    path = test_write_file("mine.conf", "[core]\nlog-level = info\n", 0600);
    terok_assert_ok(config_load(path, test_path("sys"), NULL, &c, &err), &err);
    cr_assert(eq(str, (char *)config_get(c, "core", "log-level"), "info"));
    cr_assert(eq(str, (char *)config_get(c, "container", "cpus"), "2"), "system file not read");
    cr_assert(eq(str, (char *)config_files(c)[0], (char *)path));
    cr_assert(eq(ptr, (void *)config_files(c)[1], NULL));
    config_free(c);
}

Test(config, env_replaces_the_chain_and_option_beats_env)
{
    terok_error err = TEROK_ERROR_INIT;
    char envfile[4096];
    const char *opt;
    config *c = NULL;

    test_write_file("sys/sandbox.conf", "[core]\nlog-level = err\n", 0644);
    snprintf(envfile, sizeof envfile, "%s",
             test_write_file("env.conf", "[core]\nlog-level = warning\n", 0600));
    setenv("TEROK_SANDBOX_CONFIG", envfile, 1);
    terok_assert_ok(config_load(NULL, test_path("sys"), NULL, &c, &err), &err);
    cr_assert(eq(str, (char *)config_get(c, "core", "log-level"), "warning"));
    c = config_free(c);

    opt = test_write_file("opt.conf", "[core]\nlog-level = debug\n", 0600);
    terok_assert_ok(config_load(opt, test_path("sys"), NULL, &c, &err), &err);
    cr_assert(eq(str, (char *)config_get(c, "core", "log-level"), "debug"));
    config_free(c);
}

Test(config, missing_explicit_file_fails)
{
    terok_error err = TEROK_ERROR_INIT;
    config *c = NULL;

    cr_assert(eq(int, config_load("/nonexistent/sandbox.conf", NULL, NULL, &c, &err), -ENOENT));
    cr_assert(eq(str, err.message, "config file '/nonexistent/sandbox.conf' does not exist"));
    cr_assert(eq(ptr, c, NULL));
    terok_error_clear(&err);
}

Test(config, no_file_at_all_gives_working_defaults)
{
    config *c = load_chain();
    int64_t v;
    bool b;

    cr_assert(eq(int, config_validate(c), 0));
    cr_assert(eq(ptr, (void *)config_files(c)[0], NULL));
    cr_assert(eq(str, (char *)config_get(c, "core", "plugin-dir"), TEROK_PLUGIN_DIR));
    cr_assert(eq(str, (char *)config_origin(c, "core", "plugin-dir"), "default"));
    cr_assert(eq(str, (char *)config_get(c, "runtime", "backend"), "podman"));
    cr_assert(eq(str, (char *)config_get(c, "shield", "backend"), "nft"));
    cr_assert(eq(int, config_get_int(c, "container", "memory", &v), 0));
    cr_assert(eq(i64, v, INT64_C(2) << 30));
    cr_assert(eq(int, config_get_int(c, "container", "stop-timeout", &v), 0));
    cr_assert(eq(i64, v, 10000));
    cr_assert(eq(int, config_get_int(c, "container", "cpus", &v), 0));
    cr_assert(eq(i64, v, 2000));
    cr_assert(eq(int, config_get_int(c, "container", "pids-limit", &v), 0));
    cr_assert(eq(i64, v, 512));
    cr_assert(eq(int, config_get_bool(c, "container", "read-only", &b), 0));
    cr_assert(b);
    cr_assert(eq(ptr, (void *)config_get(c, "route.x", "upstream"), NULL));
    cr_assert(eq(ptr, (void *)config_origin(c, "core", "nonexistent"), NULL));
    cr_assert(eq(int, config_get_bool(c, "core", "nonexistent", &b), -ENOENT));
    config_free(c);
}

Test(config, routes_and_quoted_values)
{
    config *c;
    const char **routes;

    test_write_file("sys/sandbox.conf",
                    "[route.anthropic]\nupstream = https://api.anthropic.com\n"
                    "auth-header = x-api-key\nauth-prefix = \"\"\ntoken-env = ANTHROPIC_API_KEY\n"
                    "credential = anthropic\n"
                    "[route.openai]\nupstream = https://api.openai.com/v1\ncredential = openai\n",
                    0644);
    c = load_chain();
    cr_assert(eq(int, config_validate(c), 0));
    cr_assert(eq(sz, config_sections_with_prefix(c, "route", &routes), 2));
    cr_assert(eq(str, (char *)routes[0], "route.anthropic"));
    cr_assert(eq(str, (char *)routes[1], "route.openai"));
    cr_assert(eq(ptr, (void *)routes[2], NULL));
    cr_assert(eq(str, (char *)config_get(c, "route.anthropic", "auth-prefix"), ""));
    cr_assert(eq(ptr, (void *)config_get(c, "route.openai", "auth-prefix"), NULL),
              "the broker picks it from the header");
    cr_assert(eq(str, (char *)config_get(c, "route.openai", "auth-header"), "Authorization"));
    config_free(c);
}

/* --- value parsers ----------------------------------------------------------------------- */

struct num_case {
    const char *s;
    int r;
    int64_t v;
};

/* Parser tables: one process per table (each case is cheap; a process per case is not). */
Test(config_parse, parse_int64)
{
    static const struct num_case cases[] = {
        {"0", 0, 0},
        {"-1", 0, -1},
        {"9223372036854775807", 0, INT64_MAX},
        {"-9223372036854775808", 0, INT64_MIN},
        {"9223372036854775808", -ERANGE, 0},
        {"-9223372036854775809", -ERANGE, 0},
        {"", -EINVAL, 0},
        {"-", -EINVAL, 0},
        {" 1", -EINVAL, 0},
        {"1 ", -EINVAL, 0},
        {"1e3", -EINVAL, 0},
        {"+1", -EINVAL, 0},
        {"011", 0, 11},
    };

    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        int64_t v = 42;
        cr_expect(eq(int, parse_int64(cases[i].s, INT64_MIN, INT64_MAX, &v), cases[i].r), "'%s'",
                  cases[i].s);
        cr_expect(eq(i64, v, cases[i].r ? 42 : cases[i].v), "'%s'", cases[i].s);
    }
}

Test(config_parse, parse_size)
{
    static const struct num_case cases[] = {
        {"0", 0, 0},
        {"512", 0, 512},
        {"64k", 0, 65536},
        {"64K", 0, 65536},
        {"2G", 0, INT64_C(2) << 30},
        {"1t", 0, INT64_C(1) << 40},
        {"8388607T", 0, INT64_C(8388607) << 40},
        {"16777216T", -ERANGE, 0},
        {"18446744073709551616", -ERANGE, 0},
        {"1.5G", -EINVAL, 0},
        {"G", -EINVAL, 0},
        {"1KB", -EINVAL, 0},
        {"-1", -EINVAL, 0},
        {"", -EINVAL, 0},
    };

    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        uint64_t v = 42;
        cr_expect(eq(int, parse_size(cases[i].s, &v), cases[i].r), "'%s'", cases[i].s);
        cr_expect(eq(u64, v, cases[i].r ? 42 : (uint64_t)cases[i].v), "'%s'", cases[i].s);
    }
}

Test(config_parse, parse_duration)
{
    static const struct num_case cases[] = {
        {"500ms", 0, 500},
        {"10s", 0, 10000},
        {"30", 0, 30000},
        {"5m", 0, 300000},
        {"2h", 0, 7200000},
        {"1d", 0, 86400000},
        {"0", 0, 0},
        {"106751991167d", 0, INT64_C(106751991167) * 86400000},
        {"106751991168d", -ERANGE, 0},
        {"99999999999999999999ms", -ERANGE, 0},
        {"1.5s", -EINVAL, 0},
        {"10sec", -EINVAL, 0},
        {"-1s", -EINVAL, 0},
        {"s", -EINVAL, 0},
        {"", -EINVAL, 0},
        {"1m30s", -EINVAL, 0},
    };

    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        int64_t v = 42;
        cr_expect(eq(int, parse_duration_ms(cases[i].s, &v), cases[i].r), "'%s'", cases[i].s);
        cr_expect(eq(i64, v, cases[i].r ? 42 : cases[i].v), "'%s'", cases[i].s);
    }
}

Test(config_parse, parse_bool_words)
{
    static const char *const yes[] = {"yes", "YES", "true", "on", "1"};
    static const char *const no[] = {"no", "False", "off", "0"};
    static const char *const bad[] = {"", "y", "2", "yes ", "enable"};
    bool b;

    for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
        cr_assert(eq(int, parse_bool(yes[i], &b), 0));
        cr_assert(b, "%s", yes[i]);
    }
    for (size_t i = 0; i < ELEMENTSOF(no); i++) {
        cr_assert(eq(int, parse_bool(no[i], &b), 0));
        cr_assert(b == false, "%s", no[i]);
    }
    for (size_t i = 0; i < ELEMENTSOF(bad); i++)
        cr_assert(eq(int, parse_bool(bad[i], &b), -EINVAL), "'%s'", bad[i]);
}

Test(config_parse, check_value_reports_unknown_types)
{
    char *why = NULL;

    cr_assert(eq(int, config_check_value("int:1:5", "3", &why), 0));
    cr_assert(eq(int, config_check_value("int:1:5", "6", &why), -EINVAL));
    cr_assert(eq(str, why, "out of range: expected an integer from 1 to 5"));
    free(why);
    cr_assert(eq(int, config_check_value("int:1", "3", &why), -EINVAL));
    cr_assert(eq(str, why, "unknown key type 'int:1'"));
    free(why);
    cr_assert(eq(int, config_check_value("float", "3", &why), -EINVAL));
    cr_assert(eq(str, why, "unknown key type 'float'"));
    free(why);
}

/* data/sandbox.conf.example: valid as shipped, and every value in it is valid uncommented
 * (except the plugin-dependent lines, which need plugins this test does not have). */
Test(config, shipped_example_is_valid)
{
    terok_error err = TEROK_ERROR_INIT;
    char path[4096], line[1024];
    char *out = NULL;
    size_t len = 0;
    FILE *in, *f;
    config *c = NULL;
    char *got;

    snprintf(path, sizeof path, "%s/data/sandbox.conf.example", getenv("TEROK_TEST_SOURCE_DIR"));
    in = fopen(path, "re");
    cr_assert(in != NULL, "cannot open %s", path);
    f = open_memstream(&out, &len);
    while (fgets(line, sizeof line, in)) {
        const char *l = line;
        if (strneq(l, "# ", 2) && (l[2] == '[' || (l[2] >= 'a' && l[2] <= 'z' && strstr(l, " = "))))
            l += 2;
        if (strneq(l, "plugin-dir", 10) || strneq(l, "backend", 7) || strneq(l, "socket", 6) ||
            strneq(l, "[runtime.podman]", 16))
            continue;
        fputs(l, f);
    }
    fclose(in);
    fclose(f);

    terok_assert_ok(config_load(path, NULL, NULL, &c, &err), &err);
    cr_assert(eq(int, config_validate(c), 0));
    c = config_free(c);

    c = load_system_file(out, len);
    got = problems_text(c);
    cr_assert(eq(str, got, ""), "uncommented example:\n%s", out);
    cr_assert(eq(str, (char *)config_get(c, "route.anthropic", "auth-prefix"), ""));
    cr_assert(eq(str, (char *)config_get(c, "container", "memory"), "2G"));
    free(got);
    free(out);
    config_free(c);
}

/* Every compiled-in key is complete: a NULL default or help would crash `config show` (a key
 * without a default has ""). */
Test(config, core_schema_keys_are_complete)
{
    const config_schema_section *all[64];
    size_t n = 0;

    for (size_t i = 0; i < config_core_schema_n && n < 63; i++)
        all[n++] = &config_core_schema[i];
    all[n++] = &config_route_schema;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < all[i]->n_keys; j++) {
            const config_key *k = &all[i]->keys[j];
            cr_assert(k->name && k->type && k->def && k->help, "[%s] key %zu (%s) is incomplete",
                      all[i]->name, j, k->name ? k->name : "(no name)");
        }
}
