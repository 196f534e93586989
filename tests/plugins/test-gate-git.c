/* SPDX-License-Identifier: Apache-2.0 */
/* test-gate-git.c: the gate-git plugin with real git, real libgit2 and real repositories in
 * temporary directories. The plugin is loaded through the real loader from the test plugin dir;
 * smart HTTP is driven by the real `git` client through a tiny HTTP harness
 * (gate/http-harness.c) that calls the plugin's serve op; upstreams are file:// bare repos. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gate/http-harness.h"
#include "loader.h"
#include "terok-test.h"

static plugin *P;
static void *S;
static const terok_gate_ops *O;
static char state_dir[1024], so_path[1024];

static void gate_setup(void)
{
    terok_error err = TEROK_ERROR_INIT;

    test_tmpdir_setup();
    setenv("GIT_AUTHOR_NAME", "Test Author", 1);
    setenv("GIT_AUTHOR_EMAIL", "author@example.invalid", 1);
    setenv("GIT_COMMITTER_NAME", "Test Author", 1);
    setenv("GIT_COMMITTER_EMAIL", "author@example.invalid", 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_TERMINAL_PROMPT", "0", 1);
    unsetenv("GIT_PROTOCOL");
    snprintf(so_path, sizeof so_path, "%s/gate-git.so", getenv("TEROK_TEST_PLUGIN_DIR"));
    snprintf(state_dir, sizeof state_dir, "%s/state/gate-git", test_tmp);
    mkdir(test_path("state"), 0700);
    mkdir(state_dir, 0700);
    terok_assert_ok(loader_load_file(so_path, &P, &err), &err);
    P->state_dir = state_dir;
    P->runtime_dir = state_dir;
    O = &P->ops.gate;
    terok_assert_ok(O->open(P, NULL, &S, &err), &err);
}

static gate_srv srv;

static void gate_teardown(void)
{
    gate_srv_stop(&srv);
    if (O && S)
        O->close(S);
    S = NULL;
    if (P)
        plugin_unload(P);
    P = NULL;
    test_tmpdir_teardown();
}

TestSuite(gate, .init = gate_setup, .fini = gate_teardown, .timeout = 120.);

/* --- helpers ------------------------------------------------------------------------------- */

#define GIT TEST_GIT
#define commit_file test_commit_file
#define GIT_FAILS(...) git_fails((const char *const[]){"git", __VA_ARGS__, NULL})

static char *git_fails(const char *const *argv)
{
    cli_result r = test_run(NULL, argv);

    cr_assert(r.exit_code != 0, "git %s unexpectedly succeeded: %s", argv[1], r.out);
    free(r.out);
    return r.err;
}

/* A file:// upstream bare repo with `n` commits on main; returns its URL. *ret_work (may be
 * NULL) gets the path of a work tree that pushes to it. */
static const char *make_upstream(const char *name, int n, char **ret_work)
{
    static char url[1200];
    char bare[1024], work[1024], file[1100], msg[64];

    snprintf(bare, sizeof bare, "%s/up/%s.git", test_tmp, name);
    snprintf(work, sizeof work, "%s/work-%s", test_tmp, name);
    free(GIT("init", "-q", "--bare", "-b", "main", bare));
    free(GIT("init", "-q", "-b", "main", work));
    for (int i = 0; i < n; i++) {
        FILE *f;
        snprintf(file, sizeof file, "%s/file%d.txt", work, i);
        f = fopen(file, "w");
        cr_assert(f != NULL);
        fprintf(f, "line %d\n", i);
        fclose(f);
        free(GIT("-C", work, "add", "."));
        snprintf(msg, sizeof msg, "upstream commit %d", i);
        free(GIT("-C", work, "commit", "-q", "-m", msg));
    }
    free(GIT("-C", work, "remote", "add", "origin", bare));
    if (n)
        free(GIT("-C", work, "push", "-q", "origin", "main"));
    snprintf(url, sizeof url, "file://%s", bare);
    if (ret_work)
        *ret_work = strdup(work);
    return url;
}

static void create_repo(const char *name, const char *url, const char *branch)
{
    terok_error err = TEROK_ERROR_INIT;
    terok_gate_repo_spec spec = {
        .struct_size = sizeof spec, .name = name, .upstream_url = url, .branch = branch};

    terok_assert_ok(O->repo_create(S, &spec, &err), &err);
}

static void grant(const char *task, const char *repo, uint32_t rights)
{
    terok_error err = TEROK_ERROR_INIT;

    terok_assert_ok(O->grant(S, task, repo, rights, &err), &err);
}

static const char *mirror_dir(const char *repo)
{
    static char p[1200];

    snprintf(p, sizeof p, "%s/projects/%s.git", state_dir, repo);
    return p;
}

static const char *task_dir(const char *task, const char *repo)
{
    static char p[1200];

    snprintf(p, sizeof p, "%s/tasks/%s/%s.git", state_dir, task, repo);
    return p;
}

/* rev-parse in a bare repo; "" when absent. */
static char *rev(const char *gitdir, const char *ref)
{
    const char *argv[] = {"git", "--git-dir", gitdir, "rev-parse", "-q", "--verify", ref, NULL};
    cli_result r = test_run(NULL, argv);
    size_t n = strlen(r.out);

    while (n && r.out[n - 1] == '\n')
        r.out[--n] = 0;
    free(r.err);
    return r.out;
}

static const char *start_server(const char *rights)
{
    static char base[128];

    gate_srv_start(&srv, so_path, state_dir, rights, test_path("srv.log"));
    snprintf(base, sizeof base, "http://127.0.0.1:%d", srv.port);
    return base;
}

static const char *start_server_base(void)
{
    static char base[128];

    snprintf(base, sizeof base, "http://127.0.0.1:%d", srv.port);
    return base;
}

static char *url_of(const char *base, const char *task, const char *repo)
{
    char *u = NULL;

    cr_assert(asprintf(&u, "%s/%s/%s.git", base, task, repo) > 0);
    return u;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 20);
    size_t n = 0;

    cr_assert(buf != NULL);
    if (f) {
        n = fread(buf, 1, (1 << 20) - 1, f);
        fclose(f);
    }
    buf[n] = 0;
    return buf;
}

/* Collect JSON records from a json callback. */
typedef struct records {
    json_object *arr;
} records;

static int collect(void *ud, const char *json)
{
    records *r = ud;
    json_object *o = json_tokener_parse(json);

    cr_assert(o != NULL, "not JSON: %s", json);
    json_object_array_add(r->arr, o);
    return 0;
}

static json_object *find_rec(json_object *arr, const char *key, const char *value)
{
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *o = json_object_array_get_idx(arr, i), *v;
        if (json_object_object_get_ex(o, key, &v) && json_object_get_string(v) &&
            strcmp(json_object_get_string(v), value) == 0)
            return o;
    }
    return NULL;
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;

    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

/* --- projects and grants ------------------------------------------------------------------ */

Test(gate, create_from_upstream_mirrors_branches_and_hides_nothing_of_upstream)
{
    const char *url = make_upstream("proj", 3, NULL);
    _cleanup_free_ char *up = NULL, *mine = NULL, *snap = NULL, *logall = NULL;
    records rs = {json_object_new_array()};
    terok_error err = TEROK_ERROR_INIT;
    char upbare[1200];

    create_repo("proj", url, NULL);
    snprintf(upbare, sizeof upbare, "%s/up/proj.git", test_tmp);
    up = rev(upbare, "refs/heads/main");
    mine = rev(mirror_dir("proj"), "refs/heads/main");
    snap = rev(mirror_dir("proj"), "refs/terok/upstream/main");
    cr_expect_str_eq(mine, up);
    cr_expect_str_eq(snap, up);
    logall = GIT("--git-dir", mirror_dir("proj"), "config", "core.logAllRefUpdates");
    cr_expect_str_eq(logall, "always");
    /* Idempotent with the same spec, refused with another. */
    create_repo("proj", url, NULL);
    {
        terok_gate_repo_spec other = {
            .struct_size = sizeof other, .name = "proj", .upstream_url = "file:///elsewhere"};
        cr_expect(eq(int, O->repo_create(S, &other, &err), -EEXIST));
        cr_expect(strstr(terok_error_message(&err), "'proj'") != NULL);
        terok_error_clear(&err);
    }
    terok_assert_ok(O->repo_list(S, collect, &rs, &err), &err);
    cr_assert(eq(sz, json_object_array_length(rs.arr), 1));
    cr_expect_str_eq(jstr(json_object_array_get_idx(rs.arr, 0), "name"), "proj");
    cr_expect_str_eq(jstr(json_object_array_get_idx(rs.arr, 0), "upstream"), url);
    cr_expect_str_eq(jstr(json_object_array_get_idx(rs.arr, 0), "head"), "refs/heads/main");
    json_object_put(rs.arr);
}

Test(gate, grant_gives_each_task_its_own_repo_sharing_objects)
{
    _cleanup_free_ char *alt = NULL, *seeded = NULL, *mirror = NULL;
    char path[1300];

    create_repo("proj", make_upstream("proj", 2, NULL), NULL);
    grant("task-a", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE);
    grant("task-b", "proj", TEROK_GATE_READ);
    snprintf(path, sizeof path, "%s/objects/info/alternates", task_dir("task-a", "proj"));
    alt = slurp(path);
    cr_expect(strstr(alt, "/projects/proj.git/objects") != NULL, "alternates: %s", alt);
    seeded = rev(task_dir("task-b", "proj"), "refs/heads/main");
    mirror = rev(mirror_dir("proj"), "refs/heads/main");
    cr_expect_str_eq(seeded, mirror);
    /* No private (refs/terok/) refs in a task view. */
    {
        _cleanup_free_ char *refs =
            GIT("--git-dir", task_dir("task-a", "proj"), "for-each-ref", "--format=%(refname)");
        cr_expect(strstr(refs, "refs/terok") == NULL, "task refs: %s", refs);
    }
    /* git learns nothing of the mirror's refs through the alternate (the mirror keeps its
     * objects in odb/): no process lists them when a view advertises or checks a push, and
     * the mirror's tips are not offered as ".have"s. Plainly laid out, this prints them. */
    {
        _cleanup_free_ char *alt_refs =
            GIT("--git-dir", task_dir("task-a", "proj"), "rev-list", "--alternate-refs", "--stdin");
        cr_expect_str_eq(alt_refs, "");
    }
    /* Granting again is idempotent and keeps the view. */
    grant("task-a", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE);
}

static unsigned count_suffix(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    unsigned n = 0;

    cr_assert(d != NULL, "opendir '%s'", dir);
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name), k = strlen(suffix);
        if (l > k && streq(de->d_name + l - k, suffix))
            n++;
    }
    closedir(d);
    return n;
}

/* Clones count objects from the mirror's bitmap, as from a git server's repository; the repack
 * that makes it never drops an object a view may still use. */
Test(gate, mirror_is_one_pack_with_a_bitmap_and_keeps_every_object)
{
    char *upwork = NULL, packdir[1300], w[1200], orphan_file[1200];
    records rs = {json_object_new_array()};
    terok_error err = TEROK_ERROR_INIT;
    _cleanup_free_ char *orphan = NULL, *u = NULL, *up_main = NULL, *cloned = NULL;
    FILE *f;

    create_repo("proj", make_upstream("proj", 2, &upwork), NULL);
    snprintf(packdir, sizeof packdir, "%s/objects/pack", mirror_dir("proj"));
    cr_expect(eq(u32, count_suffix(packdir, ".pack"), 1));
    cr_expect(eq(u32, count_suffix(packdir, ".bitmap"), 1));
    /* An object no ref of the mirror reaches (a view may hold the only ref to it). */
    snprintf(orphan_file, sizeof orphan_file, "%s/orphan.txt", test_tmp);
    f = fopen(orphan_file, "w");
    cr_assert(f != NULL);
    fputs("only a task view refers to this\n", f);
    fclose(f);
    orphan = GIT("--git-dir", mirror_dir("proj"), "hash-object", "-w", orphan_file);
    /* Upstream news: the sync fetches a second pack, and the upkeep makes one again. */
    commit_file(upwork, "n.txt", "n\n", "upstream news");
    free(GIT("-C", upwork, "push", "-q", "origin", "main"));
    terok_assert_ok(O->sync(S, "proj", collect, &rs, &err), &err);
    cr_expect(eq(u32, count_suffix(packdir, ".pack"), 1));
    cr_expect(eq(u32, count_suffix(packdir, ".bitmap"), 1));
    free(GIT("--git-dir", mirror_dir("proj"), "cat-file", "-e", orphan));
    /* A view still clones through its alternates. */
    grant("task-a", "proj", TEROK_GATE_READ);
    u = url_of(start_server("task-a=r"), "task-a", "proj");
    snprintf(w, sizeof w, "%s/clone", test_tmp);
    free(GIT("clone", "-q", "--bare", u, w));
    gate_srv_stop(&srv);
    up_main = rev(mirror_dir("proj"), "refs/heads/main");
    cloned = rev(w, "refs/heads/main");
    cr_expect_str_eq(cloned, up_main);
    free(upwork);
    json_object_put(rs.arr);
}

Test(gate, push_by_one_task_is_invisible_to_another)
{
    const char *base;
    _cleanup_free_ char *ua = NULL, *ub = NULL, *lsb = NULL, *lsa = NULL;
    char wa[1200], wb[1200];

    create_repo("proj", make_upstream("proj", 2, NULL), NULL);
    grant("task-a", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE);
    grant("task-b", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE);
    base = start_server("task-a=rw,task-b=rw");
    ua = url_of(base, "task-a", "proj");
    ub = url_of(base, "task-b", "proj");
    snprintf(wa, sizeof wa, "%s/clone-a", test_tmp);
    snprintf(wb, sizeof wb, "%s/clone-b", test_tmp);
    free(GIT("clone", "-q", ua, wa));
    free(GIT("-C", wa, "checkout", "-q", "-b", "secret-work"));
    commit_file(wa, "a.txt", "task a only\n", "task a's work");
    free(GIT("-C", wa, "push", "-q", "origin", "secret-work"));
    lsa = GIT("ls-remote", ua);
    cr_expect(strstr(lsa, "refs/heads/secret-work") != NULL, "A sees its own push: %s", lsa);
    free(GIT("clone", "-q", ub, wb));
    lsb = GIT("ls-remote", ub);
    cr_expect(strstr(lsb, "secret-work") == NULL, "B must not see A's branch: %s", lsb);
    cr_expect(strstr(lsb, "refs/terok") == NULL, "no private refs advertised: %s", lsb);
    {
        _cleanup_free_ char *m = rev(mirror_dir("proj"), "refs/heads/secret-work");
        cr_expect_str_eq(m, "", "the mirror itself is untouched by a task push");
    }
    gate_srv_stop(&srv);
}

/* An upstream with 40 branches: the client's want list exceeds 1 KiB and goes gzipped. */
static void many_branches_project(void)
{
    char *upwork = NULL, name[64], url[1200];

    snprintf(url, sizeof url, "%s", make_upstream("proj", 1, &upwork));
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "branch-%02d", i);
        free(GIT("-C", upwork, "branch", name));
    }
    free(GIT("-C", upwork, "push", "-q", "origin", "--all"));
    free(upwork);
    create_repo("proj", url, NULL);
    grant("task-a", "proj", TEROK_GATE_READ);
}

Test(gate, clone_over_protocol_v2)
{
    const char *base;
    _cleanup_free_ char *u = NULL, *log = NULL, *branches = NULL;
    char w[1200];

    many_branches_project();
    base = start_server("task-a=r");
    u = url_of(base, "task-a", "proj");
    snprintf(w, sizeof w, "%s/clone", test_tmp);
    free(GIT("-c", "protocol.version=2", "clone", "-q", "--bare", u, w));
    gate_srv_stop(&srv);
    log = slurp(test_path("srv.log"));
    cr_expect(strstr(log, "GET info/refs proto=version=2 enc= status=200") != NULL, "log: %s", log);
    cr_expect(strstr(log, "POST git-upload-pack proto=version=2") != NULL, "log: %s", log);
    branches = GIT("--git-dir", w, "for-each-ref", "--format=%(refname)", "refs/heads/");
    cr_expect(strstr(branches, "refs/heads/branch-39") != NULL, "cloned: %s", branches);
}

Test(gate, gzipped_request_bodies_are_inflated)
{
    const char *base;
    _cleanup_free_ char *u = NULL, *log = NULL, *branches = NULL;
    char w[1200];

    many_branches_project();
    base = start_server("task-a=r");
    u = url_of(base, "task-a", "proj");
    snprintf(w, sizeof w, "%s/clone", test_tmp);
    free(GIT("-c", "protocol.version=0", "clone", "-q", "--bare", u, w));
    gate_srv_stop(&srv);
    log = slurp(test_path("srv.log"));
    cr_expect(strstr(log, "POST git-upload-pack proto= enc=gzip status=200") != NULL, "log: %s",
              log);
    branches = GIT("--git-dir", w, "for-each-ref", "--format=%(refname)", "refs/heads/");
    cr_expect(strstr(branches, "refs/heads/branch-00") && strstr(branches, "refs/heads/main"),
              "cloned: %s", branches);
}

Test(gate, read_only_grant_cannot_push)
{
    const char *base;
    _cleanup_free_ char *u = NULL, *e = NULL, *before = NULL, *after = NULL, *log = NULL;
    char w[1200];

    create_repo("proj", make_upstream("proj", 1, NULL), NULL);
    grant("task-r", "proj", TEROK_GATE_READ);
    base = start_server("task-r=r");
    u = url_of(base, "task-r", "proj");
    snprintf(w, sizeof w, "%s/clone", test_tmp);
    free(GIT("clone", "-q", u, w));
    commit_file(w, "x.txt", "x\n", "try to push");
    before = rev(task_dir("task-r", "proj"), "refs/heads/main");
    e = GIT_FAILS("-C", w, "push", "-q", "origin", "main");
    cr_expect(strstr(e, "403") != NULL, "git said: %s", e);
    after = rev(task_dir("task-r", "proj"), "refs/heads/main");
    cr_expect_str_eq(after, before);
    gate_srv_stop(&srv);
    log = slurp(test_path("srv.log"));
    cr_expect(strstr(log, "GET info/refs proto= enc= status=403") != NULL, "log: %s", log);
}

Test(gate, token_rights_and_grant_rights_both_bind)
{
    /* A write token on a read grant is still read-only; a revoked grant serves nothing. */
    const char *base;
    _cleanup_free_ char *u = NULL, *e = NULL, *e2 = NULL;
    terok_error err = TEROK_ERROR_INIT;
    char w[1200];

    create_repo("proj", make_upstream("proj", 1, NULL), NULL);
    grant("task-a", "proj", TEROK_GATE_READ);
    base = start_server("task-a=rw");
    u = url_of(base, "task-a", "proj");
    snprintf(w, sizeof w, "%s/clone", test_tmp);
    free(GIT("clone", "-q", u, w));
    commit_file(w, "x.txt", "x\n", "try to push");
    e = GIT_FAILS("-C", w, "push", "-q", "origin", "main");
    cr_expect(strstr(e, "403") != NULL, "git said: %s", e);
    terok_assert_ok(O->revoke(S, "task-a", "proj", &err), &err);
    e2 = GIT_FAILS("ls-remote", u);
    cr_expect(strstr(e2, "403") != NULL, "git said: %s", e2);
    gate_srv_stop(&srv);
}

Test(gate, force_push_and_delete_make_backups_and_events)
{
    const char *base;
    _cleanup_free_ char *u = NULL, *old = NULL, *ev = NULL, *ls = NULL;
    records rs = {json_object_new_array()};
    terok_error err = TEROK_ERROR_INIT;
    json_object *b;
    char w[1200];

    create_repo("proj", make_upstream("proj", 2, NULL), NULL);
    grant("task-a", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE);
    base = start_server("task-a=rw");
    u = url_of(base, "task-a", "proj");
    snprintf(w, sizeof w, "%s/clone", test_tmp);
    free(GIT("clone", "-q", u, w));
    free(GIT("-C", w, "checkout", "-q", "-b", "topic"));
    commit_file(w, "t.txt", "one\n", "topic one");
    free(GIT("-C", w, "push", "-q", "origin", "topic"));
    old = rev(task_dir("task-a", "proj"), "refs/heads/topic");
    free(GIT("-C", w, "commit", "-q", "--amend", "-m", "topic rewritten"));
    free(GIT("-C", w, "push", "-q", "--force", "origin", "topic"));
    free(GIT("-C", w, "push", "-q", "origin", "--delete", "topic"));
    gate_srv_stop(&srv);
    terok_assert_ok(O->backups_list(S, "proj", collect, &rs, &err), &err);
    cr_assert(json_object_array_length(rs.arr) >= 2, "backups: %s",
              json_object_to_json_string(rs.arr));
    b = find_rec(rs.arr, "oid", old);
    cr_assert(b != NULL, "the force-pushed-over tip is backed up: %s",
              json_object_to_json_string(rs.arr));
    cr_expect_str_eq(jstr(b, "task"), "task-a");
    cr_expect_str_eq(jstr(b, "ref"), "refs/heads/topic");
    /* Backups are never advertised to the task. */
    ls = GIT("--git-dir", task_dir("task-a", "proj"), "for-each-ref", "--format=%(refname)");
    cr_expect(strstr(ls, "refs/terok/backup/heads/topic/") != NULL, "backup ref exists: %s", ls);
    ev = slurp(test_path("state/gate-git/events.jsonl"));
    cr_expect(strstr(ev, "\"kind\":\"force\"") != NULL, "events: %s", ev);
    cr_expect(strstr(ev, "\"kind\":\"delete\"") != NULL, "events: %s", ev);
    cr_expect(strstr(ev, "\"kind\":\"create\"") != NULL, "events: %s", ev);
    cr_expect(strstr(ev, "\"container\":\"task-a\"") != NULL, "events: %s", ev);
    /* Restore brings the old tip back (and backs up nothing, since the branch is gone). */
    {
        char id[512];
        _cleanup_free_ char *now = NULL;
        snprintf(id, sizeof id, "%s", jstr(b, "id"));
        terok_assert_ok(O->backup_restore(S, "proj", id, &err), &err);
        now = rev(task_dir("task-a", "proj"), "refs/heads/topic");
        cr_expect_str_eq(now, old);
    }
    json_object_put(rs.arr);
}

Test(gate, private_refs_cannot_be_pushed)
{
    const char *base;
    _cleanup_free_ char *u = NULL, *e = NULL, *r = NULL;
    char w[1200];

    create_repo("proj", make_upstream("proj", 1, NULL), NULL);
    grant("task-a", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE);
    base = start_server("task-a=rw");
    u = url_of(base, "task-a", "proj");
    snprintf(w, sizeof w, "%s/clone", test_tmp);
    free(GIT("clone", "-q", u, w));
    e = GIT_FAILS("-C", w, "push", "-q", "origin", "HEAD:refs/terok/backup/heads/main/forged");
    r = rev(task_dir("task-a", "proj"), "refs/terok/backup/heads/main/forged");
    cr_expect_str_eq(r, "", "forged private ref must not exist (git said: %s)", e);
    gate_srv_stop(&srv);
}

Test(gate, big_push_streams_without_deadlock)
{
    const char *base;
    _cleanup_free_ char *u = NULL, *tip = NULL, *mine = NULL;
    char w[1200], path[1300];
    unsigned char buf[65536];
    FILE *f;
    int rnd;

    create_repo("proj", make_upstream("proj", 1, NULL), NULL);
    grant("task-a", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE);
    base = start_server("task-a=rw");
    u = url_of(base, "task-a", "proj");
    snprintf(w, sizeof w, "%s/clone", test_tmp);
    free(GIT("clone", "-q", u, w));
    /* 8 MiB of incompressible data: far beyond pipe buffers and git's 1 MiB post buffer. */
    snprintf(path, sizeof path, "%s/blob.bin", w);
    f = fopen(path, "w");
    rnd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    cr_assert(f && rnd >= 0);
    for (int i = 0; i < 128; i++) {
        cr_assert(read(rnd, buf, sizeof buf) == (ssize_t)sizeof buf);
        fwrite(buf, 1, sizeof buf, f);
    }
    fclose(f);
    close(rnd);
    free(GIT("-C", w, "add", "blob.bin"));
    free(GIT("-C", w, "commit", "-q", "-m", "big"));
    free(GIT("-C", w, "push", "-q", "origin", "main"));
    tip = GIT("-C", w, "rev-parse", "HEAD");
    mine = rev(task_dir("task-a", "proj"), "refs/heads/main");
    cr_expect_str_eq(mine, tip);
    gate_srv_stop(&srv);
}

/* --- review, diff, forward --------------------------------------------------------------- */

struct branches {
    json_object *arr;
};

static int collect_branch(void *ud, const terok_gate_branch *b)
{
    struct branches *bs = ud;
    json_object *o = json_object_new_object();

    json_object_object_add(o, "name", json_object_new_string(b->name));
    json_object_object_add(o, "oid", json_object_new_string(b->oid));
    json_object_object_add(o, "upstream_oid",
                           b->upstream_oid ? json_object_new_string(b->upstream_oid) : NULL);
    json_object_object_add(o, "ahead", json_object_new_int64(b->ahead));
    json_object_object_add(o, "behind", json_object_new_int64(b->behind));
    json_object_object_add(o, "detail", json_tokener_parse(b->detail_json));
    json_object_array_add(bs->arr, o);
    return 0;
}

/* A project from an upstream with 3 commits, task-a's view with a pushed branch "feature" of 2
 * commits on main (written straight into the view with git, as a push would). Returns the
 * upstream work tree. */
static char *review_setup(void)
{
    char *upwork = NULL, w[1200];

    create_repo("proj", make_upstream("proj", 3, &upwork), NULL);
    grant("task-a", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE);
    snprintf(w, sizeof w, "%s/task-work", test_tmp);
    free(GIT("clone", "-q", task_dir("task-a", "proj"), w));
    free(GIT("-C", w, "checkout", "-q", "-b", "feature"));
    commit_file(w, "f1.txt", "a\nb\n", "feature one");
    commit_file(w, "f2.txt", "c\n", "feature two");
    free(GIT("-C", w, "push", "-q", task_dir("task-a", "proj"), "feature"));
    return upwork;
}

Test(gate, review_counts_ahead_behind_with_commits_and_diffstat)
{
    _cleanup_free_ char *upwork = review_setup();
    struct branches bs = {json_object_new_array()};
    terok_error err = TEROK_ERROR_INIT;
    json_object *f, *d, *v;

    /* Upstream moves on by one commit; sync brings it into the snapshot. */
    commit_file(upwork, "up.txt", "up\n", "upstream moves");
    free(GIT("-C", upwork, "push", "-q", "origin", "main"));
    {
        records rs = {json_object_new_array()};
        terok_assert_ok(O->sync(S, "proj", collect, &rs, &err), &err);
        json_object_put(rs.arr);
    }
    terok_assert_ok(O->review(S, "task-a", "proj", collect_branch, &bs, &err), &err);
    f = find_rec(bs.arr, "name", "feature");
    cr_assert(f != NULL, "review: %s", json_object_to_json_string(bs.arr));
    cr_expect(eq(i64, json_object_get_int64(json_object_object_get(f, "ahead")), 2));
    cr_expect(eq(i64, json_object_get_int64(json_object_object_get(f, "behind")), 1));
    cr_expect(json_object_object_get(f, "upstream_oid") == NULL,
              "no upstream branch named feature");
    d = json_object_object_get(f, "detail");
    cr_assert(d != NULL);
    cr_expect(eq(sz, json_object_array_length(json_object_object_get(d, "commits")), 2));
    cr_expect_str_eq(
        jstr(json_object_array_get_idx(json_object_object_get(d, "commits"), 0), "summary"),
        "feature two");
    v = json_object_object_get(d, "diffstat");
    cr_expect(eq(i64, json_object_get_int64(json_object_object_get(v, "files")), 2));
    cr_expect(eq(i64, json_object_get_int64(json_object_object_get(v, "insertions")), 3));
    cr_expect_str_eq(jstr(d, "base"), "refs/terok/upstream/main");
    json_object_put(bs.arr);
}

static int collect_text(void *ud, const char *data, size_t len)
{
    FILE *f = ud;

    fwrite(data, 1, len, f);
    return 0;
}

Test(gate, diff_is_a_unified_diff_from_the_merge_base)
{
    _cleanup_free_ char *upwork = review_setup();
    terok_error err = TEROK_ERROR_INIT;
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);

    terok_assert_ok(O->diff(S, "task-a", "proj", "feature", collect_text, f, &err), &err);
    fclose(f);
    cr_expect(strstr(text, "diff --git a/f1.txt b/f1.txt") != NULL, "diff: %s", text);
    cr_expect(strstr(text, "+a\n+b\n") != NULL, "diff: %s", text);
    cr_expect(strstr(text, "+++ b/f2.txt") != NULL, "diff: %s", text);
    cr_expect(strstr(text, "file0.txt") == NULL, "upstream's own files are not in the diff: %s",
              text);
    free(text);
    cr_expect(eq(int, O->diff(S, "task-a", "proj", "nope", collect_text, stdout, &err), -ENOENT));
    cr_expect(strstr(terok_error_message(&err), "'nope'") != NULL);
    terok_error_clear(&err);
}

Test(gate, forward_lands_upstream_and_refuses_non_fast_forward_without_force)
{
    _cleanup_free_ char *upwork = review_setup();
    _cleanup_free_ char *tip = NULL, *landed = NULL, *upmain = NULL, *ev = NULL;
    terok_error err = TEROK_ERROR_INIT;
    records rs = {json_object_new_array()};
    char upbare[1200];

    snprintf(upbare, sizeof upbare, "%s/up/proj.git", test_tmp);
    tip = rev(task_dir("task-a", "proj"), "refs/heads/feature");
    /* A new upstream branch. */
    terok_assert_ok(O->forward(S, "task-a", "proj", "feature", NULL, 0, &err), &err);
    landed = rev(upbare, "refs/heads/feature");
    cr_expect_str_eq(landed, tip);
    /* Fast-forward of main with --to. */
    terok_assert_ok(O->forward(S, "task-a", "proj", "feature", "main", 0, &err), &err);
    upmain = rev(upbare, "refs/heads/main");
    cr_expect_str_eq(upmain, tip);
    /* Upstream moves: forwarding the task's (now behind) branch again is not a fast-forward. */
    commit_file(upwork, "other.txt", "o\n", "someone else");
    free(GIT("-C", upwork, "pull", "-q", "--rebase", "origin", "main"));
    commit_file(upwork, "other2.txt", "o\n", "someone else again");
    free(GIT("-C", upwork, "push", "-q", "origin", "HEAD:main"));
    free(upmain);
    upmain = rev(upbare, "refs/heads/main");
    {
        _cleanup_free_ char *w = NULL;
        char wt[1200];
        snprintf(wt, sizeof wt, "%s/task-work", test_tmp);
        commit_file(wt, "f3.txt", "d\n", "feature three");
        free(GIT("-C", wt, "push", "-q", task_dir("task-a", "proj"), "feature"));
    }
    cr_expect(eq(int, O->forward(S, "task-a", "proj", "feature", "main", 0, &err), -EPERM));
    cr_expect(strstr(terok_error_message(&err), "not a fast-forward") != NULL, "%s",
              terok_error_message(&err));
    terok_error_clear(&err);
    {
        _cleanup_free_ char *still = rev(upbare, "refs/heads/main");
        cr_expect_str_eq(still, upmain, "upstream untouched after a refused forward");
    }
    /* Forced: lands, and upstream's old tip is kept as a backup in the mirror. */
    terok_assert_ok(
        O->forward(S, "task-a", "proj", "feature", "main", TEROK_GATE_FORWARD_FORCE, &err), &err);
    {
        _cleanup_free_ char *now = rev(upbare, "refs/heads/main"),
                            *ftip = rev(task_dir("task-a", "proj"), "refs/heads/feature");
        cr_expect_str_eq(now, ftip);
    }
    terok_assert_ok(O->backups_list(S, "proj", collect, &rs, &err), &err);
    {
        json_object *b = find_rec(rs.arr, "oid", upmain);
        cr_assert(b != NULL, "backups: %s", json_object_to_json_string(rs.arr));
        cr_expect_str_eq(jstr(b, "ref"), "refs/upstream/main");
        cr_expect(json_object_object_get(b, "task") == NULL);
    }
    ev = slurp(test_path("state/gate-git/events.jsonl"));
    cr_expect(strstr(ev, "\"event\":\"forward\"") != NULL, "events: %s", ev);
    json_object_put(rs.arr);
}

/* --- sync ---------------------------------------------------------------------------------- */

Test(gate, sync_applies_create_and_fast_forward_and_holds_rewrite_and_delete)
{
    char *upwork = NULL;
    records rs = {json_object_new_array()}, pend = {json_object_new_array()};
    terok_error err = TEROK_ERROR_INIT;
    _cleanup_free_ char *main_before = NULL, *old_gone = NULL, *old_rw = NULL;
    char upbare[1200];

    create_repo("proj", make_upstream("proj", 2, &upwork), NULL);
    snprintf(upbare, sizeof upbare, "%s/up/proj.git", test_tmp);
    /* Branches "gone" and "rewritten" exist upstream and in the mirror. */
    free(GIT("-C", upwork, "branch", "gone"));
    free(GIT("-C", upwork, "branch", "rewritten"));
    free(GIT("-C", upwork, "push", "-q", "origin", "gone", "rewritten"));
    terok_assert_ok(O->sync(S, "proj", collect, &rs, &err), &err);
    cr_expect(find_rec(rs.arr, "branch", "gone") && find_rec(rs.arr, "branch", "rewritten"),
              "created: %s", json_object_to_json_string(rs.arr));
    old_gone = rev(mirror_dir("proj"), "refs/heads/gone");
    old_rw = rev(mirror_dir("proj"), "refs/heads/rewritten");
    /* Upstream: main moves forward, "new" appears, "gone" is deleted, "rewritten" rewritten. */
    commit_file(upwork, "m.txt", "m\n", "main forward");
    free(GIT("-C", upwork, "branch", "new"));
    free(GIT("-C", upwork, "checkout", "-q", "rewritten"));
    free(GIT("-C", upwork, "commit", "-q", "--amend", "-m", "rewritten upstream"));
    free(GIT("-C", upwork, "checkout", "-q", "main"));
    free(GIT("-C", upwork, "push", "-q", "origin", "main", "new"));
    free(GIT("-C", upwork, "push", "-q", "--force", "origin", "rewritten"));
    free(GIT("-C", upwork, "push", "-q", "origin", "--delete", "gone"));
    main_before = rev(upbare, "refs/heads/main");
    json_object_put(rs.arr);
    rs.arr = json_object_new_array();
    terok_assert_ok(O->sync(S, "proj", collect, &rs, &err), &err);
    cr_expect_str_eq(jstr(find_rec(rs.arr, "branch", "main"), "action"), "fast-forward");
    cr_expect_str_eq(jstr(find_rec(rs.arr, "branch", "new"), "action"), "create");
    cr_expect_str_eq(jstr(find_rec(rs.arr, "branch", "gone"), "action"), "pending");
    cr_expect_str_eq(jstr(find_rec(rs.arr, "branch", "rewritten"), "action"), "pending");
    {
        _cleanup_free_ char *m = rev(mirror_dir("proj"), "refs/heads/main"),
                            *g = rev(mirror_dir("proj"), "refs/heads/gone"),
                            *w = rev(mirror_dir("proj"), "refs/heads/rewritten");
        cr_expect_str_eq(m, main_before, "fast-forward applied");
        cr_expect_str_eq(g, old_gone, "delete held");
        cr_expect_str_eq(w, old_rw, "rewrite held");
    }
    terok_assert_ok(O->pending_list(S, "proj", collect, &pend, &err), &err);
    cr_expect(eq(sz, json_object_array_length(pend.arr), 2));
    cr_expect_str_eq(jstr(find_rec(pend.arr, "branch", "gone"), "kind"), "upstream-delete");
    cr_expect_str_eq(jstr(find_rec(pend.arr, "branch", "rewritten"), "kind"), "upstream-rewrite");
    /* A second sync keeps both pending (the delete is remembered). */
    json_object_put(pend.arr);
    pend.arr = json_object_new_array();
    terok_assert_ok(O->sync(S, "proj", collect, &rs, &err), &err);
    terok_assert_ok(O->pending_list(S, "proj", collect, &pend, &err), &err);
    cr_expect(eq(sz, json_object_array_length(pend.arr), 2), "pending: %s",
              json_object_to_json_string(pend.arr));
    /* Apply both: a backup of each old tip first. */
    terok_assert_ok(O->pending_apply(S, "proj", "gone", &err), &err);
    terok_assert_ok(O->pending_apply(S, "proj", "refs/heads/rewritten", &err), &err);
    {
        _cleanup_free_ char *g = rev(mirror_dir("proj"), "refs/heads/gone"),
                            *w = rev(mirror_dir("proj"), "refs/heads/rewritten"),
                            *u = rev(upbare, "refs/heads/rewritten");
        records bk = {json_object_new_array()};
        cr_expect_str_eq(g, "");
        cr_expect_str_eq(w, u);
        terok_assert_ok(O->backups_list(S, "proj", collect, &bk, &err), &err);
        cr_expect(find_rec(bk.arr, "oid", old_gone) != NULL, "backups: %s",
                  json_object_to_json_string(bk.arr));
        cr_expect(find_rec(bk.arr, "oid", old_rw) != NULL);
        json_object_put(bk.arr);
    }
    cr_expect(eq(int, O->pending_apply(S, "proj", "gone", &err), -ENOENT));
    terok_error_clear(&err);
    free(upwork);
    json_object_put(rs.arr);
    json_object_put(pend.arr);
}

Test(gate, pending_apply_loses_to_a_concurrent_update)
{
    char *upwork = NULL;
    records rs = {json_object_new_array()};
    terok_error err = TEROK_ERROR_INIT;
    _cleanup_free_ char *concurrent = NULL, *now = NULL;

    create_repo("proj", make_upstream("proj", 2, &upwork), NULL);
    free(GIT("-C", upwork, "commit", "-q", "--amend", "-m", "rewritten upstream main"));
    free(GIT("-C", upwork, "push", "-q", "--force", "origin", "main"));
    terok_assert_ok(O->sync(S, "proj", collect, &rs, &err), &err);
    cr_expect_str_eq(jstr(find_rec(rs.arr, "branch", "main"), "action"), "pending");
    /* Someone moves the mirror's main after sync held the rewrite. */
    concurrent = rev(mirror_dir("proj"), "refs/heads/main~1");
    free(GIT("--git-dir", mirror_dir("proj"), "update-ref", "refs/heads/main", concurrent));
    cr_expect(eq(int, O->pending_apply(S, "proj", "main", &err), -ESTALE));
    cr_expect(strstr(terok_error_message(&err), "changed since") != NULL, "%s",
              terok_error_message(&err));
    terok_error_clear(&err);
    now = rev(mirror_dir("proj"), "refs/heads/main");
    cr_expect_str_eq(now, concurrent, "the concurrent update wins");
    free(upwork);
    json_object_put(rs.arr);
}

Test(gate, unreachable_upstream_is_a_clear_error_and_leaves_the_mirror_alone)
{
    records rs = {json_object_new_array()};
    terok_error err = TEROK_ERROR_INIT;
    _cleanup_free_ char *before = NULL, *after = NULL, *refs_before = NULL, *refs_after = NULL;
    char upbare[1200], moved[1200];
    int r;

    create_repo("proj", make_upstream("proj", 2, NULL), NULL);
    snprintf(upbare, sizeof upbare, "%s/up/proj.git", test_tmp);
    snprintf(moved, sizeof moved, "%s/up/moved.git", test_tmp);
    cr_assert(rename(upbare, moved) == 0);
    refs_before = GIT("--git-dir", mirror_dir("proj"), "for-each-ref");
    r = O->sync(S, "proj", collect, &rs, &err);
    cr_expect(r < 0);
    cr_expect(strstr(terok_error_message(&err), upbare) != NULL, "names the URL: %s",
              terok_error_message(&err));
    terok_error_clear(&err);
    refs_after = GIT("--git-dir", mirror_dir("proj"), "for-each-ref");
    cr_expect_str_eq(refs_after, refs_before);
    /* Forward to it: the same clear error, nothing changed. */
    grant("task-a", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE);
    cr_expect(O->forward(S, "task-a", "proj", "main", NULL, 0, &err) < 0);
    cr_expect(strstr(terok_error_message(&err), upbare) != NULL, "names the URL: %s",
              terok_error_message(&err));
    terok_error_clear(&err);
    /* Creating from an unreachable upstream leaves nothing behind. */
    {
        terok_gate_repo_spec spec = {.struct_size = sizeof spec,
                                     .name = "other",
                                     .upstream_url = "file:///nonexistent/repo.git"};
        struct stat st;
        cr_expect(O->repo_create(S, &spec, &err) < 0);
        cr_expect(strstr(terok_error_message(&err), "file:///nonexistent/repo.git") != NULL, "%s",
                  terok_error_message(&err));
        terok_error_clear(&err);
        cr_expect(stat(mirror_dir("other"), &st) < 0);
    }
    json_object_put(rs.arr);
}

Test(gate, credential_named_but_not_lent_is_refused)
{
    terok_gate_repo_spec spec = {.struct_size = sizeof spec,
                                 .name = "priv",
                                 .upstream_url = "https://git.example.invalid/x.git",
                                 .credential = "gh-token"};
    terok_error err = TEROK_ERROR_INIT;

    cr_expect(eq(int, O->repo_create(S, &spec, &err), -EACCES));
    cr_expect(strstr(terok_error_message(&err), "'gh-token'") != NULL, "%s",
              terok_error_message(&err));
    terok_error_clear(&err);
}

Test(gate, authorize_follows_the_grant)
{
    terok_error err = TEROK_ERROR_INIT;
    uint32_t d = 0;

    create_repo("proj", NULL, NULL);
    grant("task-r", "proj", TEROK_GATE_READ);
    terok_assert_ok(O->authorize(S, "task-r", "proj", TEROK_GATE_READ, &d, &err), &err);
    cr_expect(eq(u32, d, TEROK_DECISION_ALLOW));
    terok_assert_ok(O->authorize(S, "task-r", "proj", TEROK_GATE_WRITE, &d, &err), &err);
    cr_expect(eq(u32, d, TEROK_DECISION_DENY));
    terok_assert_ok(O->authorize(S, "task-x", "proj", TEROK_GATE_READ, &d, &err), &err);
    cr_expect(eq(u32, d, TEROK_DECISION_DENY));
    terok_assert_ok(O->revoke(S, "task-r", "proj", &err), &err);
    terok_assert_ok(O->authorize(S, "task-r", "proj", TEROK_GATE_READ, &d, &err), &err);
    cr_expect(eq(u32, d, TEROK_DECISION_DENY));
    /* Revoking twice, or what was never granted, is fine. */
    terok_assert_ok(O->revoke(S, "task-r", "proj", &err), &err);
    terok_assert_ok(O->revoke(S, "task-never", "proj", &err), &err);
}

Test(gate, empty_project_takes_a_first_push)
{
    const char *base;
    _cleanup_free_ char *u = NULL, *mine = NULL, *tip = NULL;
    char w[1200];

    create_repo("fresh", NULL, NULL);
    grant("task-a", "fresh", TEROK_GATE_READ | TEROK_GATE_WRITE);
    base = start_server("task-a=rw");
    u = url_of(base, "task-a", "fresh");
    snprintf(w, sizeof w, "%s/w", test_tmp);
    free(GIT("init", "-q", "-b", "main", w));
    commit_file(w, "r.txt", "r\n", "first");
    free(GIT("-C", w, "push", "-q", u, "main"));
    tip = GIT("-C", w, "rev-parse", "HEAD");
    mine = rev(task_dir("task-a", "fresh"), "refs/heads/main");
    cr_expect_str_eq(mine, tip);
    gate_srv_stop(&srv);
}

Test(gate, delete_refuses_a_granted_project_and_removes_views_after_revoke)
{
    terok_error err = TEROK_ERROR_INIT;
    struct stat st;

    create_repo("proj", NULL, NULL);
    grant("task-a", "proj", TEROK_GATE_READ);
    cr_expect(eq(int, O->repo_delete(S, "proj", &err), -EBUSY));
    cr_expect(strstr(terok_error_message(&err), "'task-a'") != NULL, "%s",
              terok_error_message(&err));
    terok_error_clear(&err);
    terok_assert_ok(O->revoke(S, "task-a", "proj", &err), &err);
    terok_assert_ok(O->repo_delete(S, "proj", &err), &err);
    cr_expect(stat(mirror_dir("proj"), &st) < 0 && stat(task_dir("task-a", "proj"), &st) < 0);
    cr_expect(eq(int, O->repo_delete(S, "proj", &err), -ENOENT));
    terok_error_clear(&err);
}

Test(gate, prune_removes_backups)
{
    char *upwork = NULL;
    records rs = {json_object_new_array()}, bk = {json_object_new_array()};
    terok_error err = TEROK_ERROR_INIT;
    terok_gate_prune p = {.struct_size = sizeof p, .repo = "proj", .older_than_seconds = 3600};

    create_repo("proj", make_upstream("proj", 2, &upwork), NULL);
    free(GIT("-C", upwork, "commit", "-q", "--amend", "-m", "rw"));
    free(GIT("-C", upwork, "push", "-q", "--force", "origin", "main"));
    terok_assert_ok(O->sync(S, "proj", collect, &rs, &err), &err);
    terok_assert_ok(O->pending_apply(S, "proj", "main", &err), &err);
    terok_assert_ok(O->ctl(S, TEROK_GATE_CTL_BACKUPS_PRUNE, &p, &err), &err);
    cr_expect(eq(u64, p.ret_pruned, 0), "a fresh backup is younger than an hour");
    p.older_than_seconds = 0;
    terok_assert_ok(O->ctl(S, TEROK_GATE_CTL_BACKUPS_PRUNE, &p, &err), &err);
    cr_expect(eq(u64, p.ret_pruned, 1));
    terok_assert_ok(O->backups_list(S, "proj", collect, &bk, &err), &err);
    cr_expect(eq(sz, json_object_array_length(bk.arr), 0));
    free(upwork);
    json_object_put(rs.arr);
    json_object_put(bk.arr);
}

/* --- hostile names ------------------------------------------------------------------------- */

struct bad_name {
    char name[300];
    char shown[64]; /* what the error message must contain */
};

static struct bad_name bad_names[] = {
    {"../escape", "../escape"},
    {"a/b", "a/b"},
    {"..", ".."},
    {"x..y", "x..y"},
    {"-leading", "-leading"},
    {".hidden", ".hidden"},
    {"UPPER", "UPPER"},
    {"tab\there", "tab\\x09here"},
    {"nl\nhere", "nl\\x0ahere"},
    {"repo.git", "repo.git"},
    {"space here", "space here"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "aaaaaaaaaaaa"},
};

ParameterizedTestParameters(gate, hostile_project_names_are_refused)
{
    return cr_make_param_array(struct bad_name, bad_names, ELEMENTSOF(bad_names));
}

ParameterizedTest(struct bad_name *b, gate, hostile_project_names_are_refused)
{
    terok_error err = TEROK_ERROR_INIT;
    terok_gate_repo_spec spec = {.struct_size = sizeof spec, .name = b->name};
    struct stat st;
    char escape[1200];

    cr_expect(eq(int, O->repo_create(S, &spec, &err), -EINVAL));
    cr_expect(strstr(strempty(terok_error_message(&err)), b->shown) != NULL, "message: %s",
              terok_error_message(&err));
    terok_error_clear(&err);
    cr_expect(eq(int, O->grant(S, "task-a", b->name, TEROK_GATE_READ, &err), -EINVAL));
    terok_error_clear(&err);
    snprintf(escape, sizeof escape, "%s/escape.git", state_dir);
    cr_expect(stat(escape, &st) < 0, "nothing created outside projects/");
}

static struct bad_name bad_tasks[] = {
    {"../up", "../up"},
    {"a/b", "a/b"},
    {"-x", "-x"},
    {"x..y", "x..y"},
    {"nl\n", "nl\\x0a"},
    {"", "required"},
    {"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
     "longer than"},
};

ParameterizedTestParameters(gate, hostile_task_names_are_refused)
{
    return cr_make_param_array(struct bad_name, bad_tasks, ELEMENTSOF(bad_tasks));
}

ParameterizedTest(struct bad_name *b, gate, hostile_task_names_are_refused)
{
    terok_error err = TEROK_ERROR_INIT;
    uint32_t d = 77;

    create_repo("proj", NULL, NULL);
    cr_expect(eq(int, O->grant(S, b->name, "proj", TEROK_GATE_READ, &err), -EINVAL));
    cr_expect(strstr(strempty(terok_error_message(&err)), b->shown) != NULL, "message: %s",
              terok_error_message(&err));
    terok_error_clear(&err);
    cr_expect(eq(int, O->authorize(S, b->name, "proj", TEROK_GATE_READ, &d, &err), -EINVAL));
    cr_expect(eq(u32, d, 77));
    terok_error_clear(&err);
}

static struct bad_name bad_branches[] = {
    {"-f", "-f"},   {"a..b", "a..b"}, {"x.lock", "x.lock"}, {"a b", "a b"},
    {"a~1", "a~1"}, {"a:b", "a:b"},   {"@{u}", "@{u}"},     {"/abs", "/abs"},
};

ParameterizedTestParameters(gate, hostile_branch_names_are_refused)
{
    return cr_make_param_array(struct bad_name, bad_branches, ELEMENTSOF(bad_branches));
}

ParameterizedTest(struct bad_name *b, gate, hostile_branch_names_are_refused)
{
    terok_error err = TEROK_ERROR_INIT;

    create_repo("proj", NULL, NULL);
    grant("task-a", "proj", TEROK_GATE_READ);
    cr_expect(eq(int, O->diff(S, "task-a", "proj", b->name, collect_text, stdout, &err), -EINVAL));
    cr_expect(strstr(strempty(terok_error_message(&err)), b->shown) != NULL, "message: %s",
              terok_error_message(&err));
    terok_error_clear(&err);
    cr_expect(eq(int, O->forward(S, "task-a", "proj", "main", b->name, 0, &err), -EINVAL));
    terok_error_clear(&err);
    cr_expect(eq(int, O->pending_apply(S, "proj", b->name, &err), -EINVAL));
    terok_error_clear(&err);
}

Test(gate, hostile_urls_are_refused_without_echoing_secrets)
{
    /* a password in a URL refused for something else is not echoed either (tests/fuzz
     * gate-git) */
    static const char *const urls[] = {"ext::sh -c evil",
                                       "-uploadpack=x",
                                       "ftp://x/y",
                                       "https://user:s3cr3tpw@host/x.git",
                                       "https://host/a b",
                                       "https://user:s3cr3tpw@host/a b",
                                       "http://user:s3cr3tpw@host/x\x7f.git",
                                       "ftp://user:s3cr3tpw@host/x.git"};
    terok_error err = TEROK_ERROR_INIT;

    for (size_t i = 0; i < ELEMENTSOF(urls); i++) {
        terok_gate_repo_spec spec = {
            .struct_size = sizeof spec, .name = "proj", .upstream_url = urls[i]};
        cr_expect(eq(int, O->repo_create(S, &spec, &err), -EINVAL), "%s", urls[i]);
        cr_expect(strstr(strempty(terok_error_message(&err)), "s3cr3tpw") == NULL, "%s",
                  terok_error_message(&err));
        terok_error_clear(&err);
    }
}

static unsigned count_lines_with(const char *path, const char *needle)
{
    _cleanup_free_ char *t = slurp(path);
    unsigned n = 0;

    for (char *l = t; l && *l;) {
        char *nl = strchr(l, '\n');
        if (nl)
            *nl = '\0';
        if (strstr(l, needle))
            n++;
        l = nl ? nl + 1 : NULL;
    }
    return n;
}

static char *get_refs(const char *base, const char *service, const char *protocol)
{
    char cmd[1400];
    const char *argv[] = {"sh", "-c", cmd, NULL};
    cli_result r;

    /* the capabilities follow a NUL: shown as a space */
    snprintf(cmd, sizeof cmd,
             "curl -sf -o '%s/refs.out' -H 'Git-Protocol: %s' "
             "'%s/task-a/proj.git/info/refs?service=%s' && tr '\\000' ' ' < '%s/refs.out'",
             test_tmp, protocol ? protocol : "", base, service, test_tmp);
    r = test_run(NULL, argv);
    cr_assert_eq(r.exit_code, 0, "info/refs: %s", r.err);
    free(r.err);
    return r.out;
}

/* An info/refs answer is git's, run once per state of the view's refs: asked again, the same
 * answer comes without running git; after a push (the refs moved) git runs again and the
 * answer names the new branch; each Git-Protocol gets its own. [gate.git] git is a wrapper
 * that logs every run. */
Test(gate, ref_advertisements_are_reused_until_the_refs_move)
{
    char wrapper[1200], cfgtext[1400], runs[1200], w[1200];
    _cleanup_free_ char *a1 = NULL, *a2 = NULL, *a3 = NULL, *v1 = NULL, *u = NULL;
    const char *base, *cfg;

    snprintf(runs, sizeof runs, "%s/git-runs.log", test_tmp);
    snprintf(cfgtext, sizeof cfgtext, "#!/bin/sh\necho \"$*\" >> '%s'\nexec git \"$@\"\n", runs);
    snprintf(wrapper, sizeof wrapper, "%s", test_write_file("git-wrapper", cfgtext, 0755));
    snprintf(cfgtext, sizeof cfgtext, "[gate.git]\ngit = %s\n", wrapper);
    cfg = test_write_config(cfgtext);
    create_repo("proj", make_upstream("proj", 2, NULL), NULL);
    grant("task-a", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE);
    gate_srv_start_config(&srv, so_path, state_dir, "task-a=rw", test_path("srv.log"), cfg);
    base = start_server_base();

    a1 = get_refs(base, "git-receive-pack", NULL);
    a2 = get_refs(base, "git-receive-pack", NULL);
    cr_assert(strstr(a1, "refs/heads/main") && strstr(a1, "report-status"), "%s", a1);
    cr_assert_str_eq(a2, a1);
    cr_assert_eq(count_lines_with(runs, "receive-pack --stateless-rpc --advertise-refs"), 1,
                 "git ran again for the same refs");

    /* a push moves the refs: the next answer is new and names the branch */
    cr_assert(asprintf(&u, "%s/task-a/proj.git", base) > 0);
    snprintf(w, sizeof w, "%s/clone", test_tmp);
    free(GIT("clone", "-q", u, w));
    free(GIT("-C", w, "checkout", "-q", "-b", "topic"));
    commit_file(w, "t.txt", "t\n", "topic");
    free(GIT("-C", w, "push", "-q", "origin", "topic"));
    a3 = get_refs(base, "git-receive-pack", NULL);
    cr_assert(strstr(a3, "refs/heads/topic") != NULL, "stale answer after a push: %s", a3);
    cr_assert_eq(count_lines_with(runs, "receive-pack --stateless-rpc --advertise-refs"), 2);

    /* another protocol version, another answer */
    v1 = get_refs(base, "git-receive-pack", "version=1");
    cr_assert(strstr(v1, "version 1") != NULL && strstr(v1, "refs/heads/topic"), "%s", v1);
    cr_assert_eq(count_lines_with(runs, "receive-pack --stateless-rpc --advertise-refs"), 3);
}

/* git probes with a lone flush-pkt before a push over http.postBuffer; the gate answers it as
 * receive-pack would (200, nothing), and a real push still follows. */
Test(gate, push_probe_gets_an_empty_answer)
{
    const char *base;
    char cmd[600];
    const char *argv[] = {"sh", "-c", cmd, NULL};
    cli_result r;

    create_repo("proj", make_upstream("proj", 2, NULL), NULL);
    grant("task-a", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE);
    base = start_server("task-a=rw");
    snprintf(cmd, sizeof cmd,
             "curl -s -o /dev/null -w '%%{http_code} %%{size_download}' -X POST -H "
             "'Content-Type: application/x-git-receive-pack-request' --data-binary 0000 "
             "'%s/task-a/proj.git/git-receive-pack'",
             base);
    r = test_run(NULL, argv);
    cr_expect_str_eq(r.out, "200 0", "%s", cmd);
    cli_result_done(&r);
    gate_srv_stop(&srv);
}

Test(gate, hostile_requests_get_http_errors)
{
    const char *base;
    _cleanup_free_ char *log = NULL;
    char cmd[600];

    create_repo("proj", NULL, NULL);
    grant("task-a", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE);
    base = start_server("task-a=rw");
    {
        /* Dumb HTTP, an unknown service, a wrong content type, a bad Git-Protocol, a bad
         * encoding, a gzip body that is not gzip. */
        const char *reqs[][4] = {
            {"GET", "info/refs", "", ""},
            {"GET", "info/refs?service=git-evil", "", ""},
            {"POST", "git-upload-pack", "-H 'Content-Type: text/plain'", ""},
            {"GET", "info/refs?service=git-upload-pack", "-H 'Git-Protocol: version=2;rm -rf'", ""},
            {"POST", "git-upload-pack",
             "-H 'Content-Type: application/x-git-upload-pack-request' -H 'Content-Encoding: br'",
             ""},
            {"POST", "git-upload-pack",
             "-H 'Content-Type: application/x-git-upload-pack-request' -H 'Content-Encoding: "
             "gzip'",
             "not gzip at all"},
            {"GET", "HEAD", "", ""},
            {"GET", "../../../etc.git/info/refs?service=git-upload-pack", "--path-as-is", ""},
            {"GET", "../UP.git/info/refs?service=git-upload-pack", "--path-as-is", ""},
        };
        const int want[] = {403, 403, 415, 400, 415, 400, 404, 400, 400};
        for (size_t i = 0; i < ELEMENTSOF(reqs); i++) {
            const char *argv[] = {"sh", "-c", cmd, NULL};
            cli_result r;
            char expect[16];
            snprintf(cmd, sizeof cmd,
                     "curl -s -o /dev/null -w '%%{http_code}' -X %s %s %s%s%s '%s/task-a/%s%s'",
                     reqs[i][0], reqs[i][2], reqs[i][3][0] ? "--data-binary '" : "", reqs[i][3],
                     reqs[i][3][0] ? "'" : "", base,
                     strncmp(reqs[i][1], "../", 3) != 0 ? "proj.git/" : "", reqs[i][1]);
            r = test_run(NULL, argv);
            snprintf(expect, sizeof expect, "%d", want[i]);
            cr_expect_str_eq(r.out, expect, "%s", cmd);
            cli_result_done(&r);
        }
    }
    gate_srv_stop(&srv);
    log = slurp(test_path("srv.log"));
    cr_expect(strstr(log, "status=200") == NULL, "log: %s", log);
}

Test(gate, operator_policy_limits_pushes)
{
    const char *cfg = test_write_config(
        "[gate.git]\nmax-push-size = 256K\nallow-force-push = no\nallow-delete = no\n");
    _cleanup_free_ char *u = NULL, *e1 = NULL, *e2 = NULL, *e3 = NULL, *tip = NULL, *after = NULL,
                        *log = NULL;
    char w[1200], path[1300];
    unsigned char buf[65536];
    FILE *f;
    int rnd;

    create_repo("proj", make_upstream("proj", 1, NULL), NULL);
    grant("task-a", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE);
    gate_srv_start_config(&srv, so_path, state_dir, "task-a=rw", test_path("srv.log"), cfg);
    cr_assert(asprintf(&u, "http://127.0.0.1:%d/task-a/proj.git", srv.port) > 0);
    snprintf(w, sizeof w, "%s/clone", test_tmp);
    free(GIT("clone", "-q", u, w));
    /* A small push is fine. */
    free(GIT("-C", w, "checkout", "-q", "-b", "topic"));
    commit_file(w, "small.txt", "small\n", "small");
    free(GIT("-C", w, "push", "-q", "origin", "topic"));
    tip = rev(task_dir("task-a", "proj"), "refs/heads/topic");
    /* Rewriting or deleting it is refused by policy. */
    free(GIT("-C", w, "commit", "-q", "--amend", "-m", "rewritten"));
    e1 = GIT_FAILS("-C", w, "push", "-q", "--force", "origin", "topic");
    e2 = GIT_FAILS("-C", w, "push", "-q", "origin", "--delete", "topic");
    after = rev(task_dir("task-a", "proj"), "refs/heads/topic");
    cr_expect_str_eq(after, tip, "force (%s) and delete (%s) refused", e1, e2);
    /* A pack over max-push-size is refused. */
    snprintf(path, sizeof path, "%s/blob.bin", w);
    f = fopen(path, "w");
    rnd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    cr_assert(f != NULL && rnd >= 0);
    for (int i = 0; i < 8; i++) {
        cr_assert(read(rnd, buf, sizeof buf) == (ssize_t)sizeof buf);
        fwrite(buf, 1, sizeof buf, f);
    }
    fclose(f);
    close(rnd);
    free(GIT("-C", w, "checkout", "-q", "-b", "big"));
    free(GIT("-C", w, "add", "blob.bin"));
    free(GIT("-C", w, "commit", "-q", "-m", "big"));
    e3 = GIT_FAILS("-C", w, "push", "-q", "origin", "big");
    {
        _cleanup_free_ char *big = rev(task_dir("task-a", "proj"), "refs/heads/big");
        cr_expect_str_eq(big, "", "oversized push refused: %s", e3);
    }
    gate_srv_stop(&srv);
    log = slurp(test_path("srv.log"));
    cr_expect(strstr(log, "config failed") == NULL, "%s", log);
}

Test(gate, sync_carries_upstream_news_into_task_views_the_task_left_alone)
{
    char *upwork = NULL, w[1200];
    records rs = {json_object_new_array()};
    terok_error err = TEROK_ERROR_INIT;
    _cleanup_free_ char *a_main = NULL, *up_main = NULL;
    char upbare[1200];

    create_repo("proj", make_upstream("proj", 2, &upwork), NULL);
    snprintf(upbare, sizeof upbare, "%s/up/proj.git", test_tmp);
    grant("task-a", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE);
    grant("task-b", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE);
    /* task-a commits on main in its own view. */
    snprintf(w, sizeof w, "%s/a-work", test_tmp);
    free(GIT("clone", "-q", task_dir("task-a", "proj"), w));
    commit_file(w, "a.txt", "a\n", "task a on main");
    free(GIT("-C", w, "push", "-q", "origin", "main"));
    a_main = rev(task_dir("task-a", "proj"), "refs/heads/main");
    /* Upstream moves main and adds a branch. */
    commit_file(upwork, "u.txt", "u\n", "upstream moves on");
    free(GIT("-C", upwork, "branch", "fresh"));
    free(GIT("-C", upwork, "push", "-q", "origin", "main", "fresh"));
    up_main = rev(upbare, "refs/heads/main");
    terok_assert_ok(O->sync(S, "proj", collect, &rs, &err), &err);
    {
        _cleanup_free_ char *b_main = rev(task_dir("task-b", "proj"), "refs/heads/main"),
                            *a_now = rev(task_dir("task-a", "proj"), "refs/heads/main"),
                            *a_fresh = rev(task_dir("task-a", "proj"), "refs/heads/fresh"),
                            *b_fresh = rev(task_dir("task-b", "proj"), "refs/heads/fresh");
        cr_expect_str_eq(b_main, up_main, "task-b never touched main: fast-forwarded");
        cr_expect_str_eq(a_now, a_main, "task-a's own main is left alone");
        cr_expect_str_eq(a_fresh, up_main);
        cr_expect_str_eq(b_fresh, up_main);
    }
    {
        json_object *r = find_rec(rs.arr, "action", "task-fast-forward");
        cr_assert(r != NULL, "%s", json_object_to_json_string(rs.arr));
        cr_expect_str_eq(jstr(r, "task"), "task-b");
    }
    free(upwork);
    json_object_put(rs.arr);
}

Test(gate, hooks_in_a_repository_never_run)
{
    const char *base;
    _cleanup_free_ char *u = NULL;
    char w[1200], hook[1300], marker[1200], script[1600];
    struct stat st;
    FILE *f;

    create_repo("proj", make_upstream("proj", 1, NULL), NULL);
    grant("task-a", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE);
    /* Hooks planted in the view itself (as if something had written them there). */
    snprintf(marker, sizeof marker, "%s/hook-ran", test_tmp);
    snprintf(script, sizeof script, "#!/bin/sh\ntouch '%s'\n", marker);
    for (size_t i = 0; i < 3; i++) {
        static const char *const names[] = {"pre-receive", "post-receive", "update"};
        snprintf(hook, sizeof hook, "%s/hooks/%s", task_dir("task-a", "proj"), names[i]);
        f = fopen(hook, "w");
        cr_assert(f != NULL, "%s", hook);
        fputs(script, f);
        fclose(f);
        chmod(hook, 0755);
    }
    base = start_server("task-a=rw");
    u = url_of(base, "task-a", "proj");
    snprintf(w, sizeof w, "%s/clone", test_tmp);
    free(GIT("clone", "-q", u, w));
    commit_file(w, "h.txt", "h\n", "push past the hooks");
    free(GIT("-C", w, "push", "-q", "origin", "main"));
    gate_srv_stop(&srv);
    cr_expect(stat(marker, &st) < 0, "a repository hook ran");
}

Test(gate, concurrent_grants_of_one_view_all_succeed)
{
    pid_t kids[4];
    int ok = 0;

    create_repo("proj", make_upstream("proj", 1, NULL), NULL);
    for (size_t i = 0; i < ELEMENTSOF(kids); i++) {
        kids[i] = fork();
        cr_assert(kids[i] >= 0);
        if (kids[i] == 0) {
            terok_error err = TEROK_ERROR_INIT;
            void *st = NULL;
            if (O->open(P, NULL, &st, &err) < 0 ||
                O->grant(st, "task-a", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE, &err) < 0)
                _exit(1);
            _exit(0);
        }
    }
    for (size_t i = 0; i < ELEMENTSOF(kids); i++) {
        int st = 0;
        waitpid(kids[i], &st, 0);
        ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    cr_expect(eq(int, ok, 4));
    {
        _cleanup_free_ char *m = rev(task_dir("task-a", "proj"), "refs/heads/main"),
                            *mm = rev(mirror_dir("proj"), "refs/heads/main");
        cr_expect_str_eq(m, mm);
    }
}

Test(gate, sync_heals_a_dangling_head_to_the_upstream_default)
{
    char *upwork = NULL, upbare[1200];
    records rs = {json_object_new_array()};
    terok_error err = TEROK_ERROR_INIT;
    records list = {json_object_new_array()};

    /* Created from an empty upstream: HEAD names main, which does not exist yet. */
    create_repo("proj", make_upstream("proj", 0, &upwork), NULL);
    snprintf(upbare, sizeof upbare, "%s/up/proj.git", test_tmp);
    free(GIT("-C", upwork, "checkout", "-q", "-b", "trunk"));
    commit_file(upwork, "t.txt", "t\n", "on trunk");
    free(GIT("-C", upwork, "push", "-q", "origin", "trunk"));
    free(GIT("--git-dir", upbare, "symbolic-ref", "HEAD", "refs/heads/trunk"));
    terok_assert_ok(O->sync(S, "proj", collect, &rs, &err), &err);
    cr_expect(find_rec(rs.arr, "action", "head") != NULL, "%s", json_object_to_json_string(rs.arr));
    {
        _cleanup_free_ char *head = GIT("--git-dir", mirror_dir("proj"), "symbolic-ref", "HEAD");
        cr_expect_str_eq(head, "refs/heads/trunk");
    }
    terok_assert_ok(O->repo_list(S, collect, &list, &err), &err);
    cr_expect_str_eq(jstr(json_object_array_get_idx(list.arr, 0), "branch"), "trunk");
    /* A resolving HEAD is left alone by the next sync. */
    json_object_put(rs.arr);
    rs.arr = json_object_new_array();
    terok_assert_ok(O->sync(S, "proj", collect, &rs, &err), &err);
    cr_expect(find_rec(rs.arr, "action", "head") == NULL);
    free(upwork);
    json_object_put(rs.arr);
    json_object_put(list.arr);
}

/* ssh:// specs refused before anything connects: host keys that are not "TYPE BASE64", host keys
 * for other schemes, hosts starting with '-', bad ports, unknown flags. */
struct bad_ssh {
    const char *url, *host_key;
    uint32_t flags;
    const char *shown;
};

static struct bad_ssh bad_ssh_specs[] = {
    {"ssh://git@host.invalid/x.git", "ssh-ed25519", 0, "not 'TYPE BASE64'"},
    {"ssh://git@host.invalid/x.git", "ssh-ed25519 bm90IGEga2V5", 0, "not 'TYPE BASE64'"},
    /* the type word must be the blob's: an Ed25519 blob named ssh-rsa */
    {"ssh://git@host.invalid/x.git",
     "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOafC2I9w4aMXM7ncRoXlsmFz4p4WmvVdubCTwcH/ih2", 0,
     "not 'TYPE BASE64'"},
    {"git@host.invalid:x.git", "garbage here", 0, "not 'TYPE BASE64'"},
    /* a valid key with its '/' replaced by a byte libsodium 1.0.18 decodes as '/' */
    {"ssh://git@host.invalid/x.git",
     "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOafC2I9w4aMXM7ncRoXlsmFz4p4WmvVdubCTwcH\xffih2", 0,
     "not 'TYPE BASE64'"},
    {"https://host.invalid/x.git",
     "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOafC2I9w4aMXM7ncRoXlsmFz4p4WmvVdubCTwcH/ih2", 0,
     "ssh:// upstreams only"},
    {"file:///tmp/x.git", NULL, TEROK_GATE_REPO_ACCEPT_HOST_KEY, "ssh:// upstreams only"},
    {"ssh://-oProxyCommand=x/y.git", NULL, 0, "starting with '-'"},
    {"git@-oProxyCommand=x:y.git", NULL, 0, "[user@]host:path"},
    {"-oProxyCommand=x@host.invalid:y.git", NULL, 0, "starts with '-'"},
    {"ssh://git@host.invalid:99999/x.git", NULL, 0, "no valid host or port"},
    {"ssh://git@host.invalid:22x/x.git", NULL, 0, "no valid host or port"},
    {"ssh://git@host.invalid/x.git", NULL, 1u << 7, "unknown repository flags"},
};

Test(gate, bad_ssh_specs_are_refused)
{
    for (size_t i = 0; i < ELEMENTSOF(bad_ssh_specs); i++) {
        const struct bad_ssh *b = &bad_ssh_specs[i];
        terok_error err = TEROK_ERROR_INIT;
        terok_gate_repo_spec spec = {.struct_size = sizeof spec,
                                     .name = "sshproj",
                                     .upstream_url = b->url,
                                     .host_key = b->host_key,
                                     .flags = b->flags};
        struct stat st;

        cr_expect(eq(int, O->repo_create(S, &spec, &err), -EINVAL), "%s", b->url);
        cr_expect(strstr(strempty(terok_error_message(&err)), b->shown) != NULL, "%s: message: %s",
                  b->url, terok_error_message(&err));
        terok_error_clear(&err);
        cr_expect(stat(mirror_dir("sshproj"), &st) < 0, "nothing created");
    }
}
