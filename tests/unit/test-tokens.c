/* SPDX-License-Identifier: Apache-2.0 */
/* test-tokens.c: phantom and gate tokens: minted once, stored only as keyed hashes, valid only
 * for their container and target, until expiry or revocation; hostile input is just invalid. */
#include <criterion/criterion.h>
#include <sys/wait.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>
#include <sys/stat.h>

#include "terok-test.h"
#include "tokens.h"

static sqlite3 *db;
static uint8_t key[TOKEN_KEY_BYTES];

static void setup(void)
{
    terok_error err = TEROK_ERROR_INIT;

    test_tmpdir_setup();
    cr_assert(sqlite3_open(test_path("t.db"), &db) == SQLITE_OK);
    cr_assert(sqlite3_exec(db, tokens_schema_sql, NULL, NULL, NULL) == SQLITE_OK);
    terok_assert_ok(tokens_key_load(test_tmp, key, &err), &err);
}

static void teardown(void)
{
    sqlite3_close(db);
    test_tmpdir_teardown();
}

TestSuite(tokens, .init = setup, .fini = teardown, .timeout = 10);

static terok_secret *mint(int kind, const char *container, const char *target, int64_t expires)
{
    terok_error err = TEROK_ERROR_INIT;
    token_binding b = {kind, container, target, 0, expires};
    terok_secret *t = NULL;

    terok_assert_ok(tokens_mint(db, key, &b, &t, NULL, &err), &err);
    return t;
}

static token_verdict check(int kind, terok_secret *t, const char *container, const char *target,
                           int64_t now)
{
    terok_error err = TEROK_ERROR_INIT;
    const void *p;
    size_t n;
    token_verdict v;

    terok_secret_peek(t, &p, &n);
    terok_assert_ok(tokens_check(db, key, kind, p, n, container, target, now, &v, NULL, &err),
                    &err);
    return v;
}

Test(tokens, minted_token_has_prefix_and_256_bits)
{
    terok_secret *t = mint(TOKEN_KIND_PHANTOM, "ctr-a", "anthropic", 0);
    const void *p;
    size_t n;

    terok_secret_peek(t, &p, &n);
    cr_assert(eq(sz, n, strlen("terok-p-") + 43));
    cr_assert(strncmp(p, "terok-p-", 8) == 0);
    terok_secret_free(t);
}

Test(tokens, valid_only_for_its_container_and_route)
{
    terok_secret *t = mint(TOKEN_KIND_PHANTOM, "ctr-a", "anthropic", 0);

    cr_assert(eq(int, check(TOKEN_KIND_PHANTOM, t, "ctr-a", "anthropic", 1), TOKEN_VALID));
    cr_assert(
        eq(int, check(TOKEN_KIND_PHANTOM, t, "ctr-b", "anthropic", 1), TOKEN_WRONG_CONTAINER));
    cr_assert(eq(int, check(TOKEN_KIND_PHANTOM, t, "ctr-a", "openai", 1), TOKEN_WRONG_TARGET));
    cr_assert(eq(int, check(TOKEN_KIND_GATE, t, "ctr-a", "anthropic", 1), TOKEN_MALFORMED),
              "a phantom token is no gate token");
    terok_secret_free(t);
}

Test(tokens, expiry_and_revocation)
{
    terok_error err = TEROK_ERROR_INIT;
    terok_secret *t = mint(TOKEN_KIND_PHANTOM, "ctr-a", "r", 1000);
    terok_secret *u = mint(TOKEN_KIND_GATE, "ctr-a", "proj", 0);

    cr_assert(eq(int, check(TOKEN_KIND_PHANTOM, t, "ctr-a", "r", 999), TOKEN_VALID));
    cr_assert(eq(int, check(TOKEN_KIND_PHANTOM, t, "ctr-a", "r", 1000), TOKEN_EXPIRED));
    cr_assert(eq(int, tokens_revoke_container(db, "ctr-a", 0, &err), 2));
    cr_assert(eq(int, check(TOKEN_KIND_PHANTOM, t, "ctr-a", "r", 1), TOKEN_UNKNOWN));
    cr_assert(eq(int, check(TOKEN_KIND_GATE, u, "ctr-a", NULL, 1), TOKEN_UNKNOWN));
    terok_secret_free(t);
    terok_secret_free(u);
}

static int grep_file(const char *path, const void *needle, size_t n)
{
    FILE *f = fopen(path, "re");
    static char buf[1 << 20];
    size_t len;

    cr_assert(f != NULL);
    len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return memmem(buf, len, needle, n) != NULL;
}

Test(tokens, database_holds_no_token_and_listing_is_masked)
{
    terok_error err = TEROK_ERROR_INIT;
    terok_secret *t = mint(TOKEN_KIND_PHANTOM, "ctr-a", "r", 0);
    const void *p;
    size_t n;

    terok_secret_peek(t, &p, &n);
    sqlite3_close(db);
    db = NULL;
    bool whole = grep_file(test_path("t.db"), p, n);
    bool part = grep_file(test_path("t.db"), (const char *)p + 8, 20);
    cr_assert(whole == false, "the token text must not be stored");
    cr_assert(part == false, "no part of the token may be stored");
    cr_assert(sqlite3_open(test_path("t.db"), &db) == SQLITE_OK);
    terok_secret_free(t);
    (void)err;
}

static int list_cb(void *ud, const token_info *i, int kind, const char *masked, int64_t created)
{
    char **out = ud;
    *out = strdup(masked);
    return 0;
}

Test(tokens, list_shows_a_masked_handle)
{
    terok_error err = TEROK_ERROR_INIT;
    terok_secret *t = mint(TOKEN_KIND_PHANTOM, "ctr-a", "r", 0);
    char *masked = NULL;
    const void *p;
    size_t n;

    terok_assert_ok(tokens_list(db, NULL, list_cb, &masked, &err), &err);
    terok_secret_peek(t, &p, &n);
    cr_assert(masked != NULL && strncmp(masked, "terok-p-…", strlen("terok-p-…")) == 0);
    cr_assert(strstr(masked, (const char *)p + 8) == NULL);
    free(masked);
    terok_secret_free(t);
}

/* Parameters are copied into the test process: no pointers, only inline bytes. */
struct bad_case {
    char text[80];
    size_t len;
};

ParameterizedTestParameters(tokens, hostile_tokens_are_malformed)
{
    static struct bad_case cases[] = {
        {"", 0},
        {"terok-p-", 8},
        {"Bearer terok-p-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 58},
        {"terok-p-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 50},   /* 42 */
        {"terok-p-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 52}, /* 44 */
        {"terok-p-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'", 51},
        {"terok-p-AAAAAAAAAAAAAAAAAAAA\0AAAAAAAAAAAAAAAAAAAAAA", 51},
        {"terok-p-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", 51},
        {"terok-g-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 51},
        {"TEROK-P-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 51},
        {"terok-p-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/+", 51},
    };
    return cr_make_param_array(struct bad_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bad_case *c, tokens, hostile_tokens_are_malformed)
{
    terok_error err = TEROK_ERROR_INIT;
    token_verdict v = TOKEN_VALID;

    terok_assert_ok(tokens_check(db, key, TOKEN_KIND_PHANTOM, c->text, c->len, "ctr-a", NULL, 1, &v,
                                 NULL, &err),
                    &err);
    cr_assert(eq(int, v, TOKEN_MALFORMED));
}

Test(tokens, well_formed_but_never_minted_is_unknown)
{
    terok_error err = TEROK_ERROR_INIT;
    const char *t = "terok-p-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    token_verdict v;

    terok_assert_ok(
        tokens_check(db, key, TOKEN_KIND_PHANTOM, t, strlen(t), "ctr-a", NULL, 1, &v, NULL, &err),
        &err);
    cr_assert(eq(int, v, TOKEN_UNKNOWN));
}

Test(tokens, key_file_with_loose_mode_is_refused)
{
    terok_error err = TEROK_ERROR_INIT;
    uint8_t k2[TOKEN_KEY_BYTES];
    char *expect = NULL;

    cr_assert(eq(int, chmod(test_path("token.key"), 0640), 0));
    cr_assert(eq(int, tokens_key_load(test_tmp, k2, &err), -EPERM));
    cr_assert(asprintf(&expect,
                       "refusing token key '%s/token.key': it must be a regular file owned by "
                       "uid %u with mode 0600",
                       test_tmp, (unsigned)geteuid()) > 0);
    cr_assert(eq(str, err.message, expect));
    free(expect);
    terok_error_clear(&err);
}

Test(tokens, the_same_key_is_loaded_again)
{
    terok_error err = TEROK_ERROR_INIT;
    uint8_t k2[TOKEN_KEY_BYTES];

    terok_assert_ok(tokens_key_load(test_tmp, k2, &err), &err);
    cr_assert(memcmp(key, k2, sizeof key) == 0);
}

/* The token epoch as the vault daemon sees it: its own read-only mapping, like another process's.
 */
static uint64_t epoch_now(tokens_epoch *e)
{
    return tokens_epoch_read(e);
}

Test(tokens, every_token_change_bumps_the_epoch_another_mapping_sees)
{
    terok_error err = TEROK_ERROR_INIT;
    tokens_epoch *e = NULL;
    struct stat st;
    int64_t id = 0;
    token_binding b = {TOKEN_KIND_PHANTOM, "ctr-a", "anthropic", 0, 0};
    terok_secret *t = NULL;
    uint64_t v;

    terok_assert_ok(tokens_epoch_map(test_tmp, false, &e, &err), &err);
    cr_assert(eq(int, stat(test_path(TOKENS_EPOCH_FILE), &st), 0));
    cr_assert(eq(int, (int)(st.st_mode & 07777), 0600));
    cr_assert(eq(long, (long)st.st_size, 8L));
    v = epoch_now(e);
    terok_assert_ok(tokens_mint(db, key, &b, &t, &id, &err), &err);
    terok_secret_free(t);
    cr_assert(eq(u64, epoch_now(e), v + 1), "a mint bumps it");
    cr_assert(eq(int, tokens_revoke_id(db, id, &err), 1));
    cr_assert(eq(u64, epoch_now(e), v + 2), "a revocation bumps it");
    cr_assert(eq(int, tokens_revoke_id(db, id, &err), 0));
    cr_assert(eq(u64, epoch_now(e), v + 2), "revoking nothing changes nothing");
    terok_secret_free(mint(TOKEN_KIND_GATE, "ctr-b", "repo", 0));
    terok_secret_free(mint(TOKEN_KIND_PHANTOM, "ctr-b", "anthropic", 0));
    cr_assert(eq(int, tokens_revoke_container(db, "ctr-b", 0, &err), 2));
    cr_assert(eq(u64, epoch_now(e), v + 5), "revoking a container bumps it");
    e = tokens_epoch_unmap(e);
    /* mapped again (a restarted daemon): the count goes on, it is not reset */
    terok_assert_ok(tokens_epoch_map(test_tmp, false, &e, &err), &err);
    cr_assert(eq(u64, epoch_now(e), v + 5));
    tokens_epoch_unmap(e);
}

/* root (a sudo CLI run) on a user's state directory: the epoch file goes to that user, whose
 * daemon can then map it; one root made before is handed over the same way. */
Test(tokens, root_gives_the_epoch_file_to_the_owner_of_the_state_directory)
{
    terok_error err = TEROK_ERROR_INIT;
    tokens_epoch *e = NULL;
    char dir[4200], file[4300];
    struct stat st;
    pid_t pid;
    int status;

    if (geteuid() != 0)
        cr_skip_test("needs root");
    snprintf(dir, sizeof dir, "%s/user-state", test_tmp);
    snprintf(file, sizeof file, "%s/" TOKENS_EPOCH_FILE, dir);
    cr_assert(mkdir(dir, 0700) == 0);
    cr_assert(chown(dir, 54321, 54321) == 0);
    cr_assert(chmod(test_tmp, 0755) == 0);
    for (int round = 0; round < 2; round++) {
        if (round == 1) { /* a root-owned file an older version left */
            cr_assert(chown(file, 0, 0) == 0);
        }
        terok_assert_ok(tokens_epoch_map(dir, true, &e, &err), &err);
        atomic_fetch_add(e, 1);
        e = tokens_epoch_unmap(e);
        cr_assert(stat(file, &st) == 0);
        cr_assert(eq(u32, (uint32_t)st.st_uid, 54321), "round %d: owner %u", round,
                  (unsigned)st.st_uid);
        cr_assert(eq(u32, (uint32_t)(st.st_mode & 0777), 0600));
        /* the user's daemon maps it and sees root's bumps */
        pid = fork();
        if (pid == 0) {
            tokens_epoch *u = NULL;
            terok_error e2 = TEROK_ERROR_INIT;
            if (setgid(54321) < 0 || setuid(54321) < 0)
                _exit(3);
            if (tokens_epoch_map(dir, false, &u, &e2) < 0)
                _exit(4);
            _exit(tokens_epoch_read(u) == (uint64_t)round + 1 ? 0 : 5);
        }
        cr_assert(waitpid(pid, &status, 0) == pid);
        bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        cr_assert(ok, "round %d: the user's map: status %d", round, status);
    }
}

Test(tokens, an_epoch_file_others_could_write_is_refused)
{
    terok_error err = TEROK_ERROR_INIT;
    tokens_epoch *e = NULL;

    terok_assert_ok(tokens_epoch_map(test_tmp, false, &e, &err), &err);
    tokens_epoch_unmap(e);
    cr_assert(eq(int, chmod(test_path(TOKENS_EPOCH_FILE), 0620), 0));
    cr_assert(eq(int, tokens_epoch_map(test_tmp, false, &e, &err), -EPERM));
    cr_assert(strstr(err.message, "refusing token epoch") != NULL, "%s", err.message);
    terok_error_clear(&err);
    /* and a writer whose bump is refused still commits its change */
    cr_assert(eq(int, tokens_epoch_bump(db, &err), -EPERM));
    terok_error_clear(&err);
    terok_secret_free(mint(TOKEN_KIND_PHANTOM, "ctr-c", "anthropic", 0));
    cr_assert(eq(int, tokens_revoke_container(db, "ctr-c", 0, &err), 1));
}

Test(tokens, a_symlinked_epoch_file_is_not_followed)
{
    terok_error err = TEROK_ERROR_INIT;
    tokens_epoch *e = NULL;

    cr_assert(eq(int, symlink(test_path("elsewhere"), test_path(TOKENS_EPOCH_FILE)), 0));
    cr_assert(eq(int, tokens_epoch_map(test_tmp, false, &e, &err), -ELOOP));
    terok_error_clear(&err);
    cr_assert(eq(int, access(test_path("elsewhere"), F_OK), -1), "nothing was created through it");
}
