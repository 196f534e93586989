/* SPDX-License-Identifier: Apache-2.0 */
/* test-shield-nft.c: shield-nft without live traffic: target validation (hostile input named
 * in the message), canonical forms, golden ruleset, nft acceptance of rendered rulesets at
 * 10/1,000/10,000 entries, chunking, profiles, and apply failing closed on a bad bundle. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shield/harness.h"
#include "terok-test.h"

static shield_h h;

static void load_with(const char *const *cfg)
{
    const char *msg = "";
    char sd[4096];

    test_tmpdir_setup();
    snprintf(sd, sizeof sd, "%s/state", test_tmp);
    cr_assert_eq(sh_load(&h, sd, cfg, &msg), 0, "load: %s", msg);
}

static void setup(void)
{
    char prof[4096];
    static char kv[4200];

    snprintf(prof, sizeof prof, "%s/data/shield/profiles", getenv("TEROK_TEST_SOURCE_DIR"));
    snprintf(kv, sizeof kv, "profiles-dir=%s", prof);
    const char *cfg[] = {kv, "user-profiles-dir=/nonexistent", "dns-server=127.0.0.1:1", NULL};
    load_with(cfg);
}

static void teardown(void)
{
    sh_unload(&h);
    test_tmpdir_teardown();
}

static const char *const no_profiles[] = {NULL};

static void prepared_free(terok_shield_prepared *p)
{
    free(p->bundle_path);
    for (char **a = p->annotations; a && *a; a++)
        free(*a);
    free(p->annotations);
}

static int prepare(const char *name, const char *const *allow, const char *const *deny,
                   const char *const *override, const char *const *profiles, terok_error *err,
                   terok_shield_prepared *out)
{
    terok_shield_policy pol = {.struct_size = sizeof pol,
                               .container = name,
                               .profiles = profiles ? profiles : no_profiles,
                               .allow = allow,
                               .deny = deny,
                               .override = override,
                               .dns_resolver = "10.0.2.3"};
    terok_shield_prepared tmp = {.struct_size = sizeof tmp};
    int r = h.ops->prepare(h.state, &pol, out ? out : &tmp, err);

    if (!out)
        prepared_free(&tmp);
    return r;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;

    cr_assert(f, "open %s", path);
    n = getdelim(&buf, &cap, '\0', f);
    fclose(f);
    cr_assert(n >= 0);
    return buf;
}

static void spit(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);

    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static json_object *bundle_json(const char *name)
{
    char path[4096];
    char *text;
    json_object *o;

    snprintf(path, sizeof path, "%s/state/containers/%s/shield/shield.json", test_tmp, name);
    text = slurp(path);
    o = json_tokener_parse(text);
    free(text);
    cr_assert(o, "bundle of %s is not JSON", name);
    return o;
}

/* The rendered ruleset the bundle stores (what nft -f can take as it is). */
static char *ruleset_text(const char *name)
{
    char path[4096];

    snprintf(path, sizeof path, "%s/state/containers/%s/shield/ruleset.nft", test_tmp, name);
    return slurp(path);
}

TestSuite(shield_nft, .init = setup, .fini = teardown, .timeout = 60);

Test(shield_nft, descriptor_and_caps)
{
    cr_assert_str_eq(h.desc->name, "nft");
    cr_assert_eq(h.desc->kind, TEROK_PLUGIN_KIND_SHIELD);
    cr_assert(h.ops->caps & TEROK_SHIELD_CAP_EGRESS);
    cr_assert(h.ops->caps & TEROK_SHIELD_CAP_ROOTLESS);
    cr_assert_eq(h.ops->ctl(h.state, 0x42, NULL, NULL), -EOPNOTSUPP);
}

/* ---- hostile targets: rejected, the value named in single quotes ---- */

/* Criterion re-executes the binary for each test (PIE: other addresses), so parameters carry
 * their strings by value. */
typedef struct bad_case {
    char input[128];
    char message[320];
} bad_case;

#define LONG_LABEL "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

ParameterizedTestParameters(shield_nft, hostile_target)
{
    static bad_case cases[] = {
        {"", "allow: target '' is empty"},
        {"1.2.3.4;drop", "allow: target '1.2.3.4;drop' is not a valid domain name (letters, "
                         "digits, '-' and '.' only; use the punycode form for international "
                         "names)"},
        {"evil.com\"", "allow: target 'evil.com\\x22' is not a valid domain name (letters, "
                       "digits, '-' and '.' only; use the punycode form for international "
                       "names)"},
        {"a.com'", "allow: target 'a.com\\x27' is not a valid domain name (letters, digits, "
                   "'-' and '.' only; use the punycode form for international names)"},
        {"a.com\nflush ruleset", "allow: target 'a.com\\x0aflush ruleset' contains a space, "
                                 "control or non-ASCII character"},
        {"x.com }", "allow: target 'x.com }' contains a space, control or non-ASCII character"},
        {"{x.com}", "allow: target '{x.com}' is not a valid domain name (letters, digits, '-' "
                    "and '.' only; use the punycode form for international names)"},
        {"$(reboot).com", "allow: target '$(reboot).com' is not a valid domain name (letters, "
                          "digits, '-' and '.' only; use the punycode form for international "
                          "names)"},
        {"10.0.0.0/33", "allow: target '10.0.0.0/33' has an invalid prefix length (0-32)"},
        {"10.0.0.0/", "allow: target '10.0.0.0/' has an invalid prefix length (0-32)"},
        {"10.0.0.0/08", "allow: target '10.0.0.0/08' has an invalid prefix length (0-32)"},
        {"10.0.0.1/8", "allow: target '10.0.0.1/8' has host bits set (did you mean "
                       "'10.0.0.0/8'?)"},
        {"1.2.3.999", "allow: target '1.2.3.999' is not a valid IPv4 address"},
        {"1.2.3", "allow: target '1.2.3' is not a valid IPv4 address"},
        {"1.2.3.4:99999", "allow: target '1.2.3.4:99999' has an invalid port (1-65535)"},
        {"1.2.3.4:0", "allow: target '1.2.3.4:0' has an invalid port (1-65535)"},
        {"1.2.3.4:-1", "allow: target '1.2.3.4:-1' has an invalid port (1-65535)"},
        {"1.2.3.4:", "allow: target '1.2.3.4:' has an invalid port (1-65535)"},
        {":80", "allow: target ':80' has no host before the port"},
        {"::1/129", "allow: target '::1/129' has an invalid prefix length (0-128)"},
        {"2001:db8::1/64", "allow: target '2001:db8::1/64' has host bits set (did you mean "
                           "'2001:db8::/64'?)"},
        {"fe80::1%eth0", "allow: target 'fe80::1%eth0' is not a valid IPv6 address"},
        {"[::1]", "allow: target '[::1]' is not '[IPv6]:port'"},
        {"[::1]:0", "allow: target '[::1]:0' has an invalid port (1-65535)"},
        {"[1.2.3.4]:80", "allow: target '[1.2.3.4]:80' is not a valid IPv6 address"},
        {"1.2.3.4:80:90", "allow: target '1.2.3.4:80:90' is not a valid IPv6 address"},
        {"*.", "allow: target '*.' has an empty domain name"},
        {"*.com", "allow: target '*.com' is too broad: a wildcard needs at least two labels"},
        {"*.*.example.com", "allow: target '*.*.example.com' is not a valid domain name "
                            "(letters, digits, '-' and '.' only; use the punycode form for "
                            "international names)"},
        {"-x.com", "allow: target '-x.com' has a label starting with '-'"},
        {"x-.com", "allow: target 'x-.com' has a label ending in '-'"},
        {"a..b.com", "allow: target 'a..b.com' has an empty label"},
        {"localhost", "allow: target 'localhost' is not a fully qualified domain name"},
        {"under_score.com", "allow: target 'under_score.com' is not a valid domain name "
                            "(letters, digits, '-' and '.' only; use the punycode form for "
                            "international names)"},
        {"b\xc3\xbc"
         "cher.de",
         "allow: target 'b\\xc3\\xbccher.de' contains a space, control "
         "or non-ASCII character"},
        {LONG_LABEL ".com", "allow: target '" LONG_LABEL ".com' has a label longer than 63 "
                            "characters"},
    };
    return cr_make_param_array(bad_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(bad_case *c, shield_nft, hostile_target)
{
    terok_error err = {0, NULL};
    const char *allow[] = {c->input, NULL};
    int r = prepare("c1", allow, NULL, NULL, NULL, &err, NULL);

    cr_assert_eq(r, -EINVAL, "'%s' gave %d", c->input, r);
    cr_assert_str_eq(err.message, c->message);
    sh_err_clear(&err);
}

Test(shield_nft, overlong_target_quoted_and_cut)
{
    char big[400];
    terok_error err = {0, NULL};
    const char *allow[] = {big, NULL};

    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert_eq(prepare("c1", allow, NULL, NULL, NULL, &err, NULL), -EINVAL);
    cr_assert(strstr(err.message, "allow: target 'aaaa"), "%s", err.message);
    cr_assert(strstr(err.message, "...' is too long"), "%s", err.message);
    cr_assert_lt(strlen(err.message), 140);
    sh_err_clear(&err);
}

Test(shield_nft, hostile_in_deny_override_resolver_and_name)
{
    terok_error err = {0, NULL};
    const char *bad[] = {"1.2.3.4 ", NULL};
    terok_shield_policy pol = {.struct_size = sizeof pol,
                               .container = "c1",
                               .profiles = no_profiles,
                               .dns_resolver = "10.0.2.3:53"};
    terok_shield_prepared out = {.struct_size = sizeof out};

    cr_assert_eq(prepare("c1", NULL, bad, NULL, NULL, &err, NULL), -EINVAL);
    cr_assert_str_eq(err.message, "deny: target '1.2.3.4 ' contains a space, control or "
                                  "non-ASCII character");
    cr_assert_eq(prepare("c1", NULL, NULL, bad, NULL, &err, NULL), -EINVAL);
    cr_assert_str_eq(err.message, "override: target '1.2.3.4 ' contains a space, control or "
                                  "non-ASCII character");
    cr_assert_eq(h.ops->prepare(h.state, &pol, &out, &err), -EINVAL);
    cr_assert_str_eq(err.message, "dns resolver '10.0.2.3:53' must be one IP address");
    cr_assert_eq(prepare("../x", NULL, NULL, NULL, NULL, &err, NULL), -EINVAL);
    cr_assert_str_eq(err.message, "container name '../x' is invalid");
    sh_err_clear(&err);
}

Test(shield_nft, canonical_targets)
{
    const char *allow[] = {"1.2.3.4",           "10.0.0.0/8",   "2001:DB8::1",   "2001:db8::/32",
                           "[2001:db8::1]:443", "Example.COM.", "*.example.org", "1.2.3.4:443",
                           "10.0.0.0/8:22",     "192.0.2.7/32", "1.2.3.4",       NULL};
    const char *want[] = {
        "1.2.3.4",     "10.0.0.0/8",    "2001:db8::1", "2001:db8::/32", "[2001:db8::1]:443",
        "example.com", "*.example.org", "1.2.3.4:443", "10.0.0.0/8:22", "192.0.2.7",
        NULL};
    terok_error err = {0, NULL};
    json_object *o, *e, *a;
    size_t i;

    terok_assert_ok(prepare("c1", allow, NULL, NULL, NULL, &err, NULL), &err);
    o = bundle_json("c1");
    cr_assert(json_object_object_get_ex(o, "entries", &e));
    cr_assert(json_object_object_get_ex(e, "allow", &a));
    /* Permanent entries: one target per line, canonical, duplicates merged, order kept. */
    {
        char want_all[1024] = "";

        for (i = 0; want[i]; i++)
            snprintf(want_all + strlen(want_all), sizeof want_all - strlen(want_all), "%s%s",
                     i ? "\n" : "", want[i]);
        cr_assert_str_eq(json_object_get_string(a), want_all);
    }
    json_object_put(o);
}

Test(shield_nft, prepare_outputs_and_file_modes)
{
    terok_error err = {0, NULL};
    terok_shield_prepared out = {.struct_size = sizeof out};
    char path[4096], want[4200];
    struct stat st;

    terok_assert_ok(prepare("c1", NULL, NULL, NULL, NULL, &err, &out), &err);
    snprintf(path, sizeof path, "%s/state/containers/c1/shield", test_tmp);
    cr_assert_str_eq(out.bundle_path, path);
    snprintf(want, sizeof want, "org.terok.shield.bundle=%s", path);
    cr_assert_str_eq(out.annotations[0], want);
    cr_assert_str_eq(out.annotations[1], "org.terok.shield.version=1");
    cr_assert_null(out.annotations[2]);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0700);
    snprintf(path, sizeof path, "%s/state/containers/c1/shield/shield.json", test_tmp);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600);
    prepared_free(&out);
}

/* ---- golden rendering ---- */

Test(shield_nft, golden_small_policy)
{
    const char *allow[] = {"198.51.100.7", "10.1.0.0/16",          "10.1.2.0/24", "2001:db8::1",
                           "1.2.3.4:443",  "[2001:db8::/32]:8443", NULL};
    const char *deny[] = {"203.0.113.9", NULL};
    const char *override[] = {"192.0.2.1", NULL};
    terok_error err = {0, NULL};
    char path[4096];
    char *got, *want;

    terok_assert_ok(prepare("c1", allow, deny, override, NULL, &err, NULL), &err);
    got = ruleset_text("c1");
    snprintf(path, sizeof path, "%s/tests/plugins/shield/golden-small.nft",
             getenv("TEROK_TEST_SOURCE_DIR"));
    if (getenv("SHIELD_GOLDEN_UPDATE")) {
        FILE *f = fopen(path, "we");
        fputs(got, f);
        fclose(f);
    }
    want = slurp(path);
    cr_assert_str_eq(got, want, "rendering changed; review and run with SHIELD_GOLDEN_UPDATE=1");
    free(got);
    free(want);
}

/* ---- nft accepts what we render, at scale, in chunks ---- */

static char **many_targets(int n)
{
    char **l = calloc((size_t)n + 1, sizeof(char *));

    for (int i = 0; i < n; i++) {
        int a = 11 + i / 60000, b = (i / 240) % 250, c = i % 240;

        switch (i % 4) {
        case 0:
            cr_assert(asprintf(&l[i], "%d.%d.%d.%d", a, b, c, 1 + i % 7) > 0);
            break;
        case 1:
            cr_assert(asprintf(&l[i], "%d.%d.%d.0/24", a + 100, b, c) > 0);
            break;
        case 2:
            cr_assert(asprintf(&l[i], "%d.%d.%d.%d:%d", a + 50, b, c, 1 + i % 7, 1 + i % 1000) > 0);
            break;
        default:
            cr_assert(asprintf(&l[i], "2001:db8:%x::%x", i / 65536 + 1, i % 65536 + 1) > 0);
        }
    }
    return l;
}

static void check_size(int n)
{
    char **targets = many_targets(n);
    terok_error err = {0, NULL};
    char *text, file[4096];

    terok_assert_ok(prepare("big", (const char *const *)targets, NULL, NULL, NULL, &err, NULL),
                    &err);
    /* One transaction here; the chunked form (rootless) is loaded by the integration suite. */
    text = ruleset_text("big");
    snprintf(file, sizeof file, "%s/ruleset.nft", test_tmp);
    FILE *f = fopen(file, "we");
    fputs(text, f);
    fclose(f);
    cr_assert_eq(SH_RUN("unshare", "-n", "nft", "-c", "-f", file), 0, "nft -c rejected %d", n);
    cr_assert_eq(SH_RUN("unshare", "-n", "nft", "-f", file), 0, "nft -f rejected %d", n);
    for (int i = 0; i < n; i++)
        free(targets[i]);
    free(targets);
    free(text);
}

Test(shield_nft, nft_accepts_10)
{
    check_size(10);
}
Test(shield_nft, nft_accepts_1000)
{
    check_size(1000);
}
Test(shield_nft, nft_accepts_10000)
{
    check_size(10000);
}

Test(shield_nft, nested_ranges_collapse)
{
    const char *allow[] = {"10.1.2.0/24",    "10.0.0.0/8",      "10.1.0.0/16",    "10.2.3.4/32",
                           "11.0.0.0/8:443", "11.1.0.0/16:443", "11.1.0.0/16:80", NULL};
    terok_error err = {0, NULL};
    char *text, file[4096];

    terok_assert_ok(prepare("c1", allow, NULL, NULL, NULL, &err, NULL), &err);
    text = ruleset_text("c1");
    cr_assert(strstr(text, "allow_net4 { 10.0.0.0/8 }"), "%s", text);
    cr_assert(strstr(text, "allow_port4 { 11.0.0.0/8 . 443, 11.1.0.0/16 . 80 }"), "%s", text);
    cr_assert(strstr(text, "allow_ip4 { 10.2.3.4 }"), "%s", text);
    snprintf(file, sizeof file, "%s/ruleset.nft", test_tmp);
    FILE *f = fopen(file, "we");
    fputs(text, f);
    fclose(f);
    cr_assert_eq(SH_RUN("unshare", "-n", "nft", "-f", file), 0);
    free(text);
}

/* ---- profiles ---- */

Test(shield_nft, profiles_bundled_user_and_include)
{
    const char *const *profs = (const char *[]){"mine", NULL};
    terok_error err = {0, NULL};
    json_object *o, *p, *e, *a;
    char cfgdir[4096], prof[4096], kv1[4200], kv2[4200];
    bool saw_mine = false, saw_base = false;

    sh_unload(&h);
    snprintf(cfgdir, sizeof cfgdir, "%s/profiles", test_tmp);
    snprintf(prof, sizeof prof, "%s/data/shield/profiles", getenv("TEROK_TEST_SOURCE_DIR"));
    snprintf(kv1, sizeof kv1, "profiles-dir=%s", prof);
    snprintf(kv2, sizeof kv2, "user-profiles-dir=%s", cfgdir);
    test_write_file("profiles/mine.conf",
                    "# my profile\n@include dev-python\n\n  198.51.100.9   # a host\n", 0644);
    {
        const char *cfg[] = {kv1, kv2, "dns-server=127.0.0.1:1", NULL};
        const char *msg;
        char sd[4096];

        snprintf(sd, sizeof sd, "%s/state", test_tmp);
        cr_assert_eq(sh_load(&h, sd, cfg, &msg), 0, "%s", msg);
    }
    terok_assert_ok(prepare("c1", NULL, NULL, NULL, profs, &err, NULL), &err);
    o = bundle_json("c1");
    cr_assert(json_object_object_get_ex(o, "profiles", &p));
    cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(p, 0)), "mine");
    cr_assert(json_object_object_get_ex(o, "entries", &e));
    cr_assert(json_object_object_get_ex(e, "allow", &a));
    {
        const char *all = json_object_get_string(a);

        saw_mine = strstr(all, "\n198.51.100.9") || strncmp(all, "198.51.100.9\n", 13) == 0;
        saw_base = strstr(all, "deb.debian.org\n") != NULL;
    }
    cr_assert(saw_mine && saw_base);
    json_object_put(o);

    test_write_file("profiles/bad.conf", "github.com\n  x;y  # nope\n", 0644);
    profs = (const char *[]){"bad", NULL};
    cr_assert_eq(prepare("c1", NULL, NULL, NULL, profs, &err, NULL), -EINVAL);
    snprintf(prof, sizeof prof,
             "%s/profiles/bad.conf:2: target 'x;y' is not a valid domain name (letters, digits, "
             "'-' and '.' only; use the punycode form for international names)",
             test_tmp);
    cr_assert_str_eq(err.message, prof);

    profs = (const char *[]){"nope", NULL};
    cr_assert_eq(prepare("c1", NULL, NULL, NULL, profs, &err, NULL), -ENOENT);
    cr_assert(strstr(err.message, "profile 'nope' not found in"), "%s", err.message);
    profs = (const char *[]){"../../etc/passwd", NULL};
    cr_assert_eq(prepare("c1", NULL, NULL, NULL, profs, &err, NULL), -EINVAL);
    cr_assert(strstr(err.message, "profile name '../../etc/passwd' is invalid"), "%s", err.message);
    test_write_file("profiles/loop.conf", "@include loop\n", 0644);
    profs = (const char *[]){"loop", NULL};
    cr_assert_eq(prepare("c1", NULL, NULL, NULL, profs, &err, NULL), -ELOOP);
    sh_err_clear(&err);
}

Test(shield_nft, default_profile_is_dev_standard)
{
    terok_error err = {0, NULL};
    terok_shield_policy pol = {.struct_size = sizeof pol, .container = "c1"};
    terok_shield_prepared out = {.struct_size = sizeof out};
    json_object *o, *p;

    terok_assert_ok(h.ops->prepare(h.state, &pol, &out, &err), &err);
    o = bundle_json("c1");
    cr_assert(json_object_object_get_ex(o, "profiles", &p));
    cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(p, 0)), "dev-standard");
    json_object_put(o);
    prepared_free(&out);
}

/* ---- apply fails closed on any problem with the bundle ---- */

static pid_t netns_sleeper(void)
{
    int p[2];
    char c;
    pid_t pid;

    cr_assert_eq(pipe(p), 0);
    pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (unshare(CLONE_NEWNET) < 0)
            _exit(1);
        if (write(p[1], "x", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(p[1]);
    cr_assert_eq(read(p[0], &c, 1), 1);
    close(p[0]);
    return pid;
}

static void edit_file(const char *file, const char *from, const char *to)
{
    char path[4096];
    char *text, *at, *out;

    snprintf(path, sizeof path, "%s/state/containers/c1/shield/%s", test_tmp, file);
    text = slurp(path);
    at = strstr(text, from);
    cr_assert(at, "'%s' not in the bundle", from);
    cr_assert(asprintf(&out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)) > 0);
    spit(path, out);
    free(text);
    free(out);
}

static void expect_apply(const char *bundle, pid_t pid, int code, const char *needle)
{
    terok_error err = {0, NULL};
    int r = h.ops->apply(h.state, bundle, pid, &err);

    cr_assert_eq(r, code, "apply gave %d (%s), expected %d", r, err.message, code);
    if (needle)
        cr_assert(err.message && strstr(err.message, needle), "'%s' not in '%s'", needle,
                  err.message);
    sh_err_clear(&err);
}

Test(shield_nft, apply_fails_closed)
{
    const char *allow[] = {"198.51.100.7", NULL};
    terok_error err = {0, NULL};
    terok_shield_prepared out = {.struct_size = sizeof out};
    char link[4200], file[4200], dir[4096];
    pid_t pid = netns_sleeper();
    uint32_t posture = 0;

    terok_assert_ok(prepare("c1", allow, NULL, NULL, NULL, &err, &out), &err);
    snprintf(dir, sizeof dir, "%s", out.bundle_path);
    snprintf(file, sizeof file, "%s/shield.json", dir);
    snprintf(link, sizeof link, "%s/link", test_tmp);
    cr_assert_eq(symlink(dir, link), 0);

    expect_apply("relative/shield", pid, -EINVAL, "is not absolute");
    expect_apply(link, pid, -ELOOP, "symlink in the path");
    expect_apply(dir, getpid(), -EPERM, "refusing to firewall the host");
    expect_apply(dir, 999999999, -ESRCH, "no process");
    chmod(dir, 0770);
    expect_apply(dir, pid, -EPERM, "group- or world-writable");
    chmod(dir, 0700);
    chmod(file, 0666);
    expect_apply(dir, pid, -EPERM, "group- or world-writable");
    chmod(file, 0600);
    edit_file("shield.json", "\"version\":1", "\"version\":2");
    expect_apply(dir, pid, -EPROTONOSUPPORT, "bundle version 2");
    /* A version that is not a number is malformed, not some other version. */
    edit_file("shield.json", "\"version\":2", "\"version\":\"1\"");
    expect_apply(dir, pid, -EBADMSG, "bundle: field 'version' is missing or invalid");
    edit_file("shield.json", "\"version\":\"1\"", "\"version\":1");
    edit_file("ruleset.nft", "output priority filter; policy drop;",
              "output priority filter; policy accept;");
    expect_apply(dir, pid, -EBADMSG, "does not match");
    edit_file("ruleset.nft", "output priority filter; policy accept;",
              "output priority filter; policy drop;");
    edit_file("shield.json", "\"198.51.100.7\"", "\"198.51.100.7; flush ruleset\"");
    expect_apply(dir, pid, -EINVAL, "target '198.51.100.7; flush ruleset' contains a space");
    edit_file("shield.json", "\"198.51.100.7; flush ruleset\"", "\"198.51.100.7\"");
    edit_file("shield.json", "\"nflog_group\":100", "\"nflog_group\":\"100\"");
    expect_apply(dir, pid, -EBADMSG, "field 'nflog_group'");
    edit_file("shield.json", "\"nflog_group\":\"100\"", "\"nflog_group\":100");
    /* The record of domains that did not resolve is read as strictly as the rest. */
    {
        static const struct {
            const char *value, *needle;
        } bad[] = {
            {"{}", "field 'dns_unresolved'"},
            {"[7]", "field 'dns_unresolved'"},
            {"[{\"domain\":\"a.example\",\"error\":\"x\"}]", "field 'dns_unresolved'"},
            {"[{\"domain\":\"a.example\",\"since_ms\":0,\"error\":\"x\"}]",
             "field 'dns_unresolved'"},
            {"[{\"domain\":\"a.example\",\"since_ms\":\"1\",\"error\":\"x\"}]",
             "field 'dns_unresolved'"},
            {"[{\"domain\":\"a.example; flush ruleset\",\"since_ms\":1,\"error\":\"x\"}]",
             "'a.example; flush ruleset'"},
            {"[{\"domain\":\"a.example:80\",\"since_ms\":1,\"error\":\"x\"}]",
             "field 'dns_unresolved.domain'"},
            {"[{\"domain\":\"*.a.example\",\"since_ms\":1,\"error\":\"x\"}]",
             "field 'dns_unresolved.domain'"},
            {"[{\"domain\":\"198.51.100.9\",\"since_ms\":1,\"error\":\"x\"}]",
             "field 'dns_unresolved.domain'"},
            {"[{\"domain\":\"a.example\",\"since_ms\":1,\"error\":\"bell\\u0007\"}]",
             "field 'dns_unresolved.error'"},
            {"[{\"domain\":\"a.example\",\"since_ms\":1,\"error\":\"line\\nbreak\"}]",
             "field 'dns_unresolved.error'"},
            {"[{\"domain\":\"a.example\",\"since_ms\":1,\"error\":7}]", "field 'dns_unresolved'"},
        };
        char long_err[400], *with;

        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            cr_assert(asprintf(&with, "\"dns\":[],\"dns_unresolved\":%s", bad[i].value) > 0);
            edit_file("shield.json", "\"dns\":[]", with);
            expect_apply(dir, pid,
                         bad[i].value[0] == '[' && strstr(bad[i].value, "flush") ? -EINVAL
                                                                                 : -EBADMSG,
                         bad[i].needle);
            edit_file("shield.json", with, "\"dns\":[]");
            free(with);
        }
        memset(long_err, 'e', sizeof long_err - 1);
        long_err[sizeof long_err - 1] = 0;
        cr_assert(
            asprintf(&with,
                     "\"dns\":[],\"dns_unresolved\":[{\"domain\":\"a.example\",\"since_ms\":1,"
                     "\"error\":\"%s\"}]",
                     long_err) > 0);
        edit_file("shield.json", "\"dns\":[]", with);
        expect_apply(dir, pid, -EBADMSG, "field 'dns_unresolved.error'");
        edit_file("shield.json", with, "\"dns\":[]");
        free(with);
    }
    /* Nothing was loaded by any refused apply. */
    terok_assert_ok(h.ops->posture_get(h.state, "c1", &posture, &err), &err);
    cr_assert_eq(posture, TEROK_SHIELD_OFFLINE);

    expect_apply(dir, pid, 0, NULL);
    terok_assert_ok(h.ops->posture_get(h.state, "c1", &posture, &err), &err);
    cr_assert_eq(posture, TEROK_SHIELD_UP);
    terok_assert_ok(h.ops->verify(h.state, "c1", 0, &err), &err);

    kill_wait(pid);
    terok_assert_ok(h.ops->posture_get(h.state, "c1", &posture, &err), &err);
    cr_assert_eq(posture, TEROK_SHIELD_OFFLINE);
    terok_assert_ok(h.ops->cleanup(h.state, "c1", &err), &err);
    terok_assert_ok(h.ops->cleanup(h.state, "c1", &err), &err);
    terok_assert_ok(h.ops->cleanup(h.state, "never-prepared", &err), &err);
    pid = netns_sleeper();
    spit(file, "{not json");
    expect_apply(dir, pid, -EBADMSG, "is not valid JSON (");
    spit(file, "{\"format\":");
    expect_apply(dir, pid, -EBADMSG, "is not valid JSON (unexpected end)");
    spit(file, "{} {}");
    expect_apply(dir, pid, -EBADMSG, "has data after its JSON object (at byte 3)");
    spit(file, "[1]");
    expect_apply(dir, pid, -EBADMSG, "holds a JSON array, not an object");
    kill_wait(pid);
    prepared_free(&out);
}
