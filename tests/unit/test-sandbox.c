/* SPDX-License-Identifier: Apache-2.0 */
/* test-sandbox.c: the lifecycle through the core on runtime-null: rejections leave no state
 * (store and runtime), failures after the store write roll back, rm is idempotent and never
 * touches unmanaged containers, ps shows only managed ones. Needs config_load + the loader. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <dirent.h>
#include <stdio.h>

#include "runtime.h"
#include "sandbox.h"
#include "terok-test.h"
#include "util/strv.h"

static sandbox *sb;
static terok_error err;

static void setup(void)
{
    test_tmpdir_setup();
}

static void teardown(void)
{
    sb = sandbox_free(sb);
    terok_error_clear(&err);
    test_tmpdir_teardown();
}

TestSuite(sandbox, .init = setup, .fini = teardown, .timeout = 30);

static void open_sb(const char *extra)
{
    terok_assert_ok(sandbox_open(test_write_config(extra), &sb, &err), &err);
}

static char **sv(const char *a, const char *b)
{
    char **l = calloc(1, sizeof(char *));

    if (a)
        strv_extend(&l, a);
    if (b)
        strv_extend(&l, b);
    return l;
}

static int count_rec(void *ud, const container_rec *r)
{
    (*(int *)ud)++;
    return 0;
}

static int store_rows(void)
{
    store *st;
    int n = 0;

    terok_assert_ok(sandbox_store(sb, &st, &err), &err);
    terok_assert_ok(store_container_list(st, count_rec, &n, &err), &err);
    return n;
}

/* Containers runtime-null holds, by its files. */
static int runtime_containers(void)
{
    DIR *d = opendir(test_path("state/runtime-null/containers"));
    struct dirent *de;
    int n = 0;

    if (!d)
        return 0;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void assert_no_state(void)
{
    cr_assert(eq(int, store_rows(), 0), "no store row may be left");
    cr_assert(eq(int, runtime_containers(), 0), "no runtime container may be left");
}

static int create(run_request *r, char **name)
{
    sandbox_notes notes = {0};
    int k = sandbox_create(sb, r, &notes, name, &err);

    sandbox_notes_done(&notes);
    return k;
}

Test(sandbox, config_problem_is_refused_naming_file_and_line)
{
    const char *cfg = test_write_config("[container]\nno-such-key = 1\n");

    cr_assert(eq(int, sandbox_open(cfg, &sb, &err), -EBADMSG));
    cr_assert(strstr(err.message, "sandbox.conf:6: ") != NULL, "%s", err.message);
}

Test(sandbox, rejected_requests_leave_no_state)
{
    run_request r;
    char *name = NULL;
    const char *targets[] = {"/run/terok", "/run/terok/x", "/run/terok-init", "/"};

    open_sb(NULL);
    for (size_t i = 0; i < 4; i++) {
        run_request_init(&r);
        r.image = "localhost/null:latest";
        r.volumes = calloc(1, sizeof(volume_req));
        r.volumes[0] = (volume_req){.source = strdup("/tmp"), .target = strdup(targets[i])};
        r.n_volumes = 1;
        cr_assert(eq(int, create(&r, &name), -EINVAL), "%s", targets[i]);
        cr_assert(strstr(err.message, targets[i]) != NULL);
        terok_error_clear(&err);
        run_request_done(&r);
    }
    run_request_init(&r);
    r.image = "localhost/null:latest";
    r.labels = sv("org.terok.managed=0", NULL);
    cr_assert(eq(int, create(&r, &name), -EINVAL));
    run_request_done(&r);

    run_request_init(&r);
    r.image = "localhost/null:latest";
    r.env = calloc(100001, sizeof(char *));
    for (int i = 0; i < 100000; i++)
        cr_assert(asprintf(&r.env[i], "K%d=v", i) > 0);
    cr_assert(eq(int, create(&r, &name), -E2BIG));
    cr_assert(eq(str, err.message, "too many environment variables: 100000 (at most 4096)"));
    run_request_done(&r);

    run_request_init(&r);
    r.name = "bad name";
    r.image = "localhost/null:latest";
    cr_assert(eq(int, create(&r, &name), -EINVAL));
    run_request_done(&r);

    run_request_init(&r);
    r.image = "localhost/null:latest";
    r.cap_add = sv("sys_admin", NULL);
    cr_assert(eq(int, create(&r, &name), -EINVAL));
    run_request_done(&r);

    run_request_init(&r);
    r.image = "localhost/null:latest";
    r.network = "host";
    cr_assert(eq(int, create(&r, &name), -EINVAL));
    run_request_done(&r);

    assert_no_state();
}

Test(sandbox, unknown_image_leaves_no_state)
{
    run_request r;
    char *name = NULL;

    open_sb(NULL);
    run_request_init(&r);
    r.image = "docker.io/library/busybox";
    cr_assert(eq(int, create(&r, &name), -ENOENT));
    cr_assert(eq(str, err.message,
                 "image 'docker.io/library/busybox' is not available to the 'null' runtime: pull "
                 "or build it first"));
    run_request_done(&r);
    assert_no_state();
}

Test(sandbox, runtime_create_failure_rolls_back_the_record)
{
    run_request r;
    char *name = NULL;

    open_sb(NULL);
    run_request_init(&r);
    r.name = "doomed";
    r.image = "localhost/null:latest";
    r.command = sv("fail-create", "disk full");
    cr_assert(eq(int, create(&r, &name), -EIO));
    cr_assert(eq(str, err.message, "creating 'doomed': disk full"), "%s", err.message);
    run_request_done(&r);
    assert_no_state();
}

typedef struct seen {
    int n;
    char names[1024];
    char spec[16384];
    char raw[16384];
} seen;

static int view_cb(void *ud, const container_view *v)
{
    seen *s = ud;
    const char *name = v->rec ? v->rec->name : v->info->name;

    s->n++;
    snprintf(s->names + strlen(s->names), sizeof s->names - strlen(s->names), "%s,", name);
    if (v->rec)
        snprintf(s->spec, sizeof s->spec, "%s", v->rec->spec_json);
    if (v->info && v->info->raw_json)
        snprintf(s->raw, sizeof s->raw, "%s", v->info->raw_json);
    return 0;
}

Test(sandbox, create_records_and_hardens)
{
    run_request r;
    char *name = NULL;
    seen s = {0};

    open_sb(NULL);
    run_request_init(&r);
    r.image = "localhost/null:latest";
    terok_assert_ok(create(&r, &name), &err);
    cr_assert(strncmp(name, "terok-", 6) == 0 && strlen(name) == 14, "generated: %s", name);
    terok_assert_ok(sandbox_inspect(sb, name, view_cb, &s, &err), &err);
    cr_assert(eq(int, s.n, 1));
    cr_assert(strstr(s.spec, "\"read_only_root\":true") != NULL, "%s", s.spec);
    cr_assert(strstr(s.raw, "\"cap_drop_all\":true") != NULL, "%s", s.raw);
    cr_assert(strstr(s.raw, "\"org.terok.managed\":\"1\"") != NULL, "%s", s.raw);
    cr_assert(strstr(s.raw, "\"argv\":[\"/bin/null-init\",\"echo\",\"hello\"]") != NULL);
    cr_assert(eq(int, store_rows(), 1));
    run_request_done(&r);
    free(name);
}

Test(sandbox, config_relaxation_is_recorded_with_its_origin)
{
    run_request r;
    char *name = NULL;
    seen s = {0};

    open_sb("[container]\nread-only = no\n");
    run_request_init(&r);
    r.image = "localhost/null:latest";
    terok_assert_ok(create(&r, &name), &err);
    terok_assert_ok(sandbox_inspect(sb, name, view_cb, &s, &err), &err);
    cr_assert(strstr(s.spec, "{\"setting\":\"read_only_root\",\"source\":\"") != NULL, "%s",
              s.spec);
    cr_assert(strstr(s.spec, "sandbox.conf:6\"}") != NULL, "%s", s.spec);
    run_request_done(&r);
    free(name);
}

Test(sandbox, duplicate_name)
{
    run_request r;
    char *name = NULL;

    open_sb(NULL);
    run_request_init(&r);
    r.name = "twice";
    r.image = "localhost/null:latest";
    terok_assert_ok(create(&r, &name), &err);
    free(name);
    cr_assert(eq(int, create(&r, &name), -EEXIST));
    cr_assert(eq(str, err.message, "container 'twice' already exists"));
    cr_assert(eq(int, store_rows(), 1));
    run_request_done(&r);
}

Test(sandbox, remove_is_idempotent_and_spares_unmanaged)
{
    run_request r;
    char *name = NULL, *id = NULL;
    bool existed = true;
    runtime rt;
    terok_run_spec foreign = {.struct_size = sizeof foreign,
                              .name = "foreign",
                              .image = "localhost/null:latest",
                              .argv = (const char *const[]){"sleep", NULL}};

    open_sb(NULL);
    run_request_init(&r);
    r.name = "mine";
    r.image = "localhost/null:latest";
    r.command = sv("sleep", NULL);
    terok_assert_ok(create(&r, &name), &err);
    terok_assert_ok(sandbox_start(sb, "mine", &err), &err);
    cr_assert(eq(int, sandbox_remove(sb, "mine", false, &existed, &err), -EBUSY));
    terok_error_clear(&err);
    terok_assert_ok(sandbox_remove(sb, "mine", true, &existed, &err), &err);
    cr_assert(existed);
    terok_assert_ok(sandbox_remove(sb, "mine", true, &existed, &err), &err);
    cr_assert(existed == false);
    terok_assert_ok(sandbox_remove(sb, "never-was", false, &existed, &err), &err);
    cr_assert(existed == false);

    terok_assert_ok(runtime_get(sb->registry, 0, &rt, &err), &err);
    terok_assert_ok(runtime_create(&rt, &foreign, &id, &err), &err);
    cr_assert(eq(int, sandbox_remove(sb, "foreign", true, &existed, &err), -EPERM));
    cr_assert(eq(str, err.message,
                 "container 'foreign' is not managed by terok-sandbox; refusing to remove it"));
    cr_assert(eq(int, store_rows(), 0));
    cr_assert(eq(int, runtime_containers(), 1), "the foreign container is untouched");
    run_request_done(&r);
    free(name);
    free(id);
}

Test(sandbox, list_shows_only_managed)
{
    run_request r;
    char *name = NULL, *id = NULL;
    seen s = {0};
    runtime rt;
    terok_run_spec foreign = {.struct_size = sizeof foreign,
                              .name = "foreign",
                              .image = "localhost/null:latest",
                              .argv = (const char *const[]){"sleep", NULL}};

    open_sb(NULL);
    terok_assert_ok(runtime_get(sb->registry, 0, &rt, &err), &err);
    terok_assert_ok(runtime_create(&rt, &foreign, &id, &err), &err);
    terok_assert_ok(runtime_start(&rt, "foreign", &err), &err);
    run_request_init(&r);
    r.name = "mine";
    r.image = "localhost/null:latest";
    r.command = sv("sleep", NULL);
    terok_assert_ok(create(&r, &name), &err);
    terok_assert_ok(sandbox_list(sb, true, view_cb, &s, &err), &err);
    cr_assert(eq(str, s.names, "mine,"));
    memset(&s, 0, sizeof s);
    terok_assert_ok(sandbox_list(sb, false, view_cb, &s, &err), &err);
    cr_assert(eq(str, s.names, ""), "not running yet");
    terok_assert_ok(sandbox_start(sb, "mine", &err), &err);
    terok_assert_ok(sandbox_list(sb, false, view_cb, &s, &err), &err);
    cr_assert(eq(str, s.names, "mine,"));
    cr_assert(eq(int, sandbox_inspect(sb, "foreign", view_cb, &s, &err), -ENOENT));
    run_request_done(&r);
    free(name);
    free(id);
}

Test(sandbox, unknown_names_are_not_found)
{
    int code;

    open_sb(NULL);
    cr_assert(eq(int, sandbox_start(sb, "ghost", &err), -ENOENT));
    cr_assert(eq(str, err.message, "no such container 'ghost'"));
    cr_assert(eq(int, sandbox_stop(sb, "ghost", -1, &err), -ENOENT));
    cr_assert(eq(int, sandbox_wait(sb, "ghost", 0, &code, &err), -ENOENT));
}
