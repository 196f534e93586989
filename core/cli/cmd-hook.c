/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-hook.c: `terok-sandbox hook [--plugin-dir DIR] [--backend NAME] [--trust ID]...
 * createRuntime|poststop`,
 * the OCI hook `shield install-hooks` registers. Podman runs it with an empty environment and
 * the container's OCI state on stdin; it reads no configuration. The bundle path comes from the
 * org.terok.shield.bundle annotation and is validated (absolute, canonical, no symlink, a
 * directory owned by us and writable by no one else) before the shield plugin sees it;
 * createRuntime applies the bundle to the container's pid and exits non-zero on any failure,
 * so the container does not start. The reason goes to stderr and to the container's
 * shield-hook.log next to the bundle. */
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "loader.h"
#include "shield.h"
#include "spec.h"
#include "terok-build-config.h"

#define HOOK_STATE_MAX (1024 * 1024)

static void hook_help(void)
{
    printf("Usage: terok-sandbox hook [--plugin-dir DIR] [--backend NAME] [--trust ID]...\n"
           "                          createRuntime|poststop\n"
           "\n"
           "The OCI hook of the egress shield, run by the container engine (installed by\n"
           "'terok-sandbox shield install-hooks'). Reads the OCI state on stdin; applies the\n"
           "shield bundle named by the org.terok.shield.bundle annotation to the container\n"
           "(createRuntime) or releases it (poststop). Fails closed: any error exits non-zero\n"
           "and the container does not start.\n"
           "\n"
           "Options:\n"
           "      --plugin-dir DIR  where shield-NAME.so is (default %s)\n"
           "      --backend NAME    the shield backend (default nft)\n"
           "      --trust ID        a plugin directory (DEV:INO) or plugin (DEV:INO:SEC.NSEC)\n"
           "                        recorded by install-hooks: where root is not mapped, only\n"
           "                        these root-owned files are trusted\n"
           "  -h, --help            show this help\n",
           TEROK_PLUGIN_DIR);
}

/* The log next to the bundle: <state>/containers/<name>/shield-hook.log. */
static char *log_dir;

static void hook_fail_log(const char *fmt, ...) _printf_(1, 2);
static void hook_fail_log(const char *fmt, ...)
{
    _cleanup_free_ char *msg = NULL, *path = NULL;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    fprintf(stderr, "terok-sandbox hook: %s\n", msg ? msg : "out of memory");
    if (!log_dir || !msg || asprintf(&path, "%s/shield-hook.log", log_dir) < 0)
        return;
    _cleanup_close_ int fd =
        open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0)
        dprintf(fd, "%lld %s\n", (long long)time(NULL), msg);
}

static int read_state(json_object **ret)
{
    _cleanup_free_ char *b = malloc(HOOK_STATE_MAX + 1);
    json_tokener *tok;
    size_t n = 0;
    ssize_t k;

    if (!b)
        return -ENOMEM;
    while (n < HOOK_STATE_MAX && (k = read(STDIN_FILENO, b + n, HOOK_STATE_MAX - n)) != 0) {
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return negative_errno();
        }
        n += (size_t)k;
    }
    if (n >= HOOK_STATE_MAX)
        return -E2BIG;
    b[n] = 0;
    tok = json_tokener_new();
    if (!tok)
        return -ENOMEM;
    *ret = json_tokener_parse_ex(tok, b, (int)n);
    /* one object and nothing after it but white space */
    bool ok = *ret && json_tokener_get_error(tok) == json_tokener_success &&
              strspn(b + json_tokener_get_parse_end(tok), " \t\r\n") ==
                  n - json_tokener_get_parse_end(tok) &&
              json_object_is_type(*ret, json_type_object);
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(*ret);
        *ret = NULL;
        return -EBADMSG;
    }
    return 0;
}

/* Absolute, canonical (no "." or ".." or empty component), no symlink anywhere; the bundle a
 * directory of ours that no one else may write. On success: the plugin's state dir (the part
 * before /containers/<name>/shield), the container name and the container's dir. */
static int check_bundle(const char *path, char **ret_state, char **ret_name, char **ret_dir,
                        const char **why)
{
    _cleanup_free_ char *copy = NULL;
    struct stat st;
    size_t len;
    char *p;

    if (!path || path[0] != '/' || strlen(path) >= PATH_MAX)
        return *why = "is not an absolute path", -EINVAL;
    len = strlen(path);
    if (strstr(path, "//") || strstr(path, "/./") || strstr(path, "/../") || path[len - 1] == '/')
        return *why = "is not canonical", -EINVAL;
    if (len >= 2 && streq(path + len - 2, "/.")) /* "/.." also ends in "." */
        return *why = "is not canonical", -EINVAL;
    if (!(copy = strdup(path)))
        return -ENOMEM;
    for (p = copy + 1;; p++) {
        char c = *p;

        if (c != '/' && c != 0)
            continue;
        *p = 0;
        if (lstat(copy, &st) < 0)
            return *why = "does not exist", negative_errno();
        if (S_ISLNK(st.st_mode))
            return *why = "contains a symlink", -ELOOP;
        *p = c;
        if (!c)
            break;
    }
    if (!S_ISDIR(st.st_mode))
        return *why = "is not a directory", -ENOTDIR;
    if (st.st_uid != geteuid() || (st.st_mode & 022))
        return *why = "is not owned by this user or is group/world-writable", -EPERM;
    /* <state>/containers/<name>/shield. "/shield" and "/x/shield" have fewer slashes to cut
     * at; a path that is not a bundle returns nothing (the hook would log into its parent). */
    char *slash1 = strrchr(copy, '/'), *slash2, *slash3 = NULL;
    if (!streq(slash1, "/shield"))
        return *why = "is not a shield bundle (<state>/containers/<name>/shield)", -EINVAL;
    *slash1 = 0;
    slash2 = strrchr(copy, '/');
    if (slash2 && slash2 != copy) {
        *slash2 = 0;
        slash3 = strrchr(copy, '/');
    }
    if (!slash3 || slash3 == copy || !streq(slash3, "/containers") || isempty(slash2 + 1))
        return *why = "is not a shield bundle (<state>/containers/<name>/shield)", -EINVAL;
    if (!(*ret_name = strdup(slash2 + 1)))
        return -ENOMEM;
    *slash3 = 0;
    if (!(*ret_state = strdup(copy)))
        return -ENOMEM;
    *slash3 = *slash2 = '/';
    if (!(*ret_dir = strdup(copy)))
        return -ENOMEM;
    return 0;
}

static const char *annotation(json_object *state, const char *key)
{
    json_object *a, *v;

    if (!json_object_object_get_ex(state, "annotations", &a) ||
        !json_object_object_get_ex(a, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

int cmd_hook(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"plugin-dir", required_argument, NULL, 'P'},
        {"backend", required_argument, NULL, 'b'},
        {"trust", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    _cleanup_free_ char *state_dir = NULL, *name = NULL;
    plugin *p = NULL;
    const char *plugin_dir = TEROK_PLUGIN_DIR, *backend = "nft", *stage, *bundle, *why = "";
    json_object *state = NULL, *jpid;
    void *st = NULL;
    int64_t pid = 0;
    bool create;
    int o, r;

    (void)c;
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
        switch (o) {
        case 'P':
            plugin_dir = optarg;
            break;
        case 'b':
            backend = optarg;
            break;
        case 't':
            r = loader_trust_unmapped(optarg);
            if (r < 0) {
                hook_fail_log("--trust '%s': %s", optarg,
                              r == -E2BIG ? "too many" : "not DEV:INO or DEV:INO:SEC.NSEC");
                return EXIT_USAGE;
            }
            break;
        case 'h':
            hook_help();
            return EXIT_OK;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind + 1 != argc ||
        (!streq(argv[optind], "createRuntime") && !streq(argv[optind], "poststop"))) {
        hook_fail_log("expected one stage, createRuntime or poststop");
        return EXIT_USAGE;
    }
    stage = argv[optind];
    create = streq(stage, "createRuntime");

    r = read_state(&state);
    if (r < 0) {
        hook_fail_log("%s: cannot read the OCI state on stdin: %s", stage,
                      r == -EBADMSG ? "not one JSON object" : strerror(-r));
        return EXIT_FAIL;
    }
    bundle = annotation(state, SPEC_SHIELD_BUNDLE_ANNOTATION);
    if (json_object_object_get_ex(state, "pid", &jpid) && json_object_is_type(jpid, json_type_int))
        pid = json_object_get_int64(jpid);
    if (!bundle) {
        hook_fail_log("%s: no %s annotation in the OCI state", stage,
                      SPEC_SHIELD_BUNDLE_ANNOTATION);
        r = -EINVAL;
        goto out;
    }
    r = check_bundle(bundle, &state_dir, &name, &log_dir, &why);
    if (r < 0) {
        hook_fail_log("%s: shield bundle '%s' %s", stage, bundle,
                      r == -ENOMEM ? "out of memory" : why);
        goto out;
    }
    if (create && pid <= 0) {
        hook_fail_log("%s: the OCI state of '%s' has no pid", stage, name);
        r = -ESRCH;
        goto out;
    }
    if (plugin_dir[0] != '/') {
        hook_fail_log("--plugin-dir '%s' is not absolute", plugin_dir);
        r = -EINVAL;
        goto out;
    }
    r = loader_load(plugin_dir, TEROK_PLUGIN_KIND_SHIELD, backend, 0, &p, &err);
    if (r >= 0) {
        p->state_dir = state_dir;
        r = p->ops.shield.open ? p->ops.shield.open(p, NULL, &st, &err) : -EPROTO;
    }
    if (r >= 0) {
        shield sh = {.plugin = p, .state = st};

        r = create ? shield_apply(&sh, bundle, pid, &err) : shield_cleanup(&sh, name, &err);
        if (p->ops.shield.close)
            p->ops.shield.close(st);
    }
    if (r < 0)
        hook_fail_log("%s '%s' (pid %lld): %s", stage, name, (long long)pid,
                      err.message ? err.message : strerror(-r));
out:
    json_object_put(state);
    plugin_unload(p);
    free(log_dir);
    log_dir = NULL;
    /* poststop must not fail the container's removal for a shield that is already gone */
    return r < 0 && create ? EXIT_FAIL : EXIT_OK;
}
