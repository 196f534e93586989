/* SPDX-License-Identifier: Apache-2.0 */
/* test-store.c: the state store: safe creation, CRUD, schema versions (fresh, current, newer
 * refused), and two processes writing at once without corruption. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "store.h"
#include "terok-test.h"

TestSuite(store, .init = test_tmpdir_setup, .fini = test_tmpdir_teardown, .timeout = 60);

static store *open_ok(void)
{
    terok_error err = TEROK_ERROR_INIT;
    store *s = NULL;

    terok_assert_ok(store_open(test_path("state"), &s, &err), &err);
    return s;
}

static container_rec rec(const char *name)
{
    return (container_rec){.name = (char *)name,
                           .image = "localhost/null:latest",
                           .runtime = "null",
                           .spec_json = "{\"argv\":[\"true\"]}",
                           .created_at = 1700000000};
}

static void sql(const char *db, const char *q, char *out, size_t len)
{
    sqlite3 *h;
    sqlite3_stmt *st;

    cr_assert(sqlite3_open(db, &h) == SQLITE_OK);
    cr_assert(sqlite3_prepare_v2(h, q, -1, &st, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(h));
    if (sqlite3_step(st) == SQLITE_ROW && out)
        snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(h);
}

Test(store, created_private_in_wal_mode_at_current_version)
{
    store *s = open_ok();
    struct stat st;
    char mode[32] = "";

    cr_assert(stat(test_path("state/state.db"), &st) == 0);
    cr_assert(eq(u32, st.st_mode & 0777, 0600));
    cr_assert(stat(test_path("state"), &st) == 0);
    cr_assert(eq(u32, st.st_mode & 0777, 0700));
    cr_assert(eq(int, store_schema_version(s), STORE_SCHEMA_VERSION));
    store_close(s);
    sql(test_path("state/state.db"), "PRAGMA journal_mode", mode, sizeof mode);
    cr_assert(eq(str, mode, "wal"));
}

Test(store, loose_mode_is_tightened)
{
    store *s;

    test_write_file("state/state.db", "", 0644);
    chmod(test_path("state"), 0700);
    s = open_ok();
    struct stat st;
    cr_assert(stat(test_path("state/state.db"), &st) == 0);
    cr_assert(eq(u32, st.st_mode & 0777, 0600));
    store_close(s);
}

Test(store, symlinked_database_is_refused)
{
    terok_error err = TEROK_ERROR_INIT;
    char msg[4096];
    store *s = NULL;

    cr_assert(mkdir(test_path("state"), 0700) == 0);
    test_write_file("elsewhere.db", "", 0600);
    cr_assert(symlink(test_path("elsewhere.db"), test_path("state/state.db")) == 0);
    cr_assert(eq(int, store_open(test_path("state"), &s, &err), -ELOOP));
    snprintf(msg, sizeof msg, "state store '%s' is a symlink; refusing it",
             test_path("state/state.db"));
    cr_assert(eq(str, err.message, msg));
    terok_error_clear(&err);
}

Test(store, add_get_list_remove)
{
    terok_error err = TEROK_ERROR_INIT;
    store *s = open_ok();
    container_rec a = rec("a"), got = {0};

    terok_assert_ok(store_container_add(s, &a, &err), &err);
    cr_assert(eq(int, store_container_add(s, &a, &err), -EEXIST));
    cr_assert(eq(str, err.message, "container 'a' already exists"));
    terok_error_clear(&err);
    terok_assert_ok(store_container_set_id(s, "a", "abc123", &err), &err);
    cr_assert(eq(int, store_container_set_id(s, "zz", "x", &err), -ENOENT));
    terok_error_clear(&err);
    terok_assert_ok(store_container_get(s, "a", &got, &err), &err);
    cr_assert(eq(str, got.id, "abc123"));
    cr_assert(eq(str, got.image, "localhost/null:latest"));
    cr_assert(eq(str, got.runtime, "null"));
    cr_assert(eq(i64, got.created_at, 1700000000));
    container_rec_done(&got);
    cr_assert(eq(int, store_container_get(s, "nope", &got, &err), -ENOENT));
    cr_assert(err.message == NULL, "callers word the absence themselves");

    cr_assert(eq(int, store_container_remove(s, "a", &err), 1));
    cr_assert(eq(int, store_container_remove(s, "a", &err), 0), "idempotent");
    store_close(s);
}

Test(store, invalid_spec_json_is_refused)
{
    terok_error err = TEROK_ERROR_INIT;
    store *s = open_ok();
    container_rec a = rec("a");

    a.spec_json = "{not json";
    cr_assert(store_container_add(s, &a, &err) < 0);
    terok_error_clear(&err);
    store_close(s);
}

static int count_cb(void *ud, const container_rec *r)
{
    (*(int *)ud)++;
    return 0;
}

Test(store, transaction_rollback)
{
    terok_error err = TEROK_ERROR_INIT;
    store *s = open_ok();
    container_rec a = rec("a");
    int n = 0;

    terok_assert_ok(store_begin(s, &err), &err);
    terok_assert_ok(store_container_add(s, &a, &err), &err);
    store_rollback(s);
    terok_assert_ok(store_container_list(s, count_cb, &n, &err), &err);
    cr_assert(eq(int, n, 0));
    store_close(s);
}

Test(store, reopen_keeps_rows_and_version)
{
    terok_error err = TEROK_ERROR_INIT;
    store *s = open_ok();
    container_rec a = rec("a");
    int n = 0;

    terok_assert_ok(store_container_add(s, &a, &err), &err);
    store_close(s);
    s = open_ok();
    cr_assert(eq(int, store_schema_version(s), STORE_SCHEMA_VERSION));
    terok_assert_ok(store_container_list(s, count_cb, &n, &err), &err);
    cr_assert(eq(int, n, 1));
    store_close(s);
}

Test(store, empty_file_is_migrated)
{
    store *s;

    test_write_file("state/state.db", "", 0600);
    chmod(test_path("state"), 0700);
    s = open_ok();
    cr_assert(eq(int, store_schema_version(s), STORE_SCHEMA_VERSION));
    store_close(s);
}

Test(store, newer_schema_is_refused)
{
    terok_error err = TEROK_ERROR_INIT;
    char msg[4096];
    store *s = open_ok();

    store_close(s);
    sql(test_path("state/state.db"), "PRAGMA user_version = 99", NULL, 0);
    cr_assert(eq(int, store_open(test_path("state"), &s, &err), -EPROTONOSUPPORT));
    snprintf(msg, sizeof msg,
             "state store '%s' has schema version 99, newer than this terok-sandbox supports "
             "(%d); upgrade terok-sandbox or use another state dir",
             test_path("state/state.db"), STORE_SCHEMA_VERSION);
    cr_assert(eq(str, err.message, msg));
    terok_error_clear(&err);
}

Test(store, garbage_file_is_refused)
{
    terok_error err = TEROK_ERROR_INIT;
    store *s = NULL;

    test_write_file("state/state.db",
                    "this is not a database, just some text padding it out "
                    "beyond one hundred bytes so sqlite reads a header....",
                    0600);
    chmod(test_path("state"), 0700);
    cr_assert(store_open(test_path("state"), &s, &err) < 0);
    cr_assert(err.message != NULL);
    terok_error_clear(&err);
}

static void writer(int which, int n)
{
    terok_error err = TEROK_ERROR_INIT;
    store *s = NULL;

    if (store_open(test_path("state"), &s, &err) < 0)
        _exit(10);
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "w%d-%03d", which, i);
        container_rec r = rec(name);
        /* half in explicit transactions, half autocommit */
        if (i % 2 && store_begin(s, &err) < 0)
            _exit(11);
        if (store_container_add(s, &r, &err) < 0)
            _exit(12);
        if (i % 2 && store_commit(s, &err) < 0)
            _exit(13);
    }
    store_close(s);
    _exit(0);
}

Test(store, two_processes_writing_at_once)
{
    pid_t pids[2];
    char count[32] = "", check[32] = "";
    store *s;

    /* Both processes create the database too: the first migration is raced as well. */
    for (int p = 0; p < 2; p++) {
        pids[p] = fork();
        cr_assert(pids[p] >= 0);
        if (pids[p] == 0)
            writer(p, 200);
    }
    for (int p = 0; p < 2; p++) {
        int status;
        cr_assert(waitpid(pids[p], &status, 0) == pids[p]);
        cr_assert(eq(int, WEXITSTATUS(status), 0), "writer %d failed", p);
    }
    s = open_ok();
    store_close(s);
    sql(test_path("state/state.db"), "PRAGMA integrity_check", check, sizeof check);
    cr_assert(eq(str, check, "ok"));
    sql(test_path("state/state.db"), "SELECT count(*) FROM containers", count, sizeof count);
    cr_assert(eq(str, count, "400"));
}
