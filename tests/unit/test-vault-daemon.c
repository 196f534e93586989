/* SPDX-License-Identifier: Apache-2.0 */
/* test-vault-daemon.c: `vault serve` as a whole (vault_daemon_run on a loopback TCP listener,
 * the real vault-sqlite and state store): its in-memory phantom-token cache never outlives a
 * revocation made by another process's connection — the very next request is refused — and
 * every request still gets its audit row. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "broker/vault-daemon.h"
#include "daemon/ctl.h"
#include "sandbox.h"
#include "terok-test.h"
#include "tokens.h"
#include "vault.h"

static struct MHD_Daemon *up;
static sandbox *sb;
static pthread_t daemon_thread;
static atomic_bool ready;
static int daemon_rc;
static uint16_t port;
static terok_error err;
static bool epoch_only; /* the daemon runs without its inotify backstop */

static enum MHD_Result upstream(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *data,
                                size_t *size, void **con_cls)
{
    struct MHD_Response *resp;
    enum MHD_Result r;

    if (!*con_cls) {
        *con_cls = (void *)1;
        return MHD_YES;
    }
    resp = MHD_create_response_from_buffer(3, (void *)"ok\n", MHD_RESPMEM_PERSISTENT);
    r = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return r;
}

static uint16_t free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void on_ready(void *ud)
{
    atomic_store(&ready, true);
}

static void *run_daemon(void *arg)
{
    terok_error e = TEROK_ERROR_INIT;
    vault_tcp_listener tcp = {"127.0.0.1", port, "ctr"};
    vault_daemon_opts o = {.tcp = &tcp, .n_tcp = 1, .ready = on_ready, .no_db_watch = epoch_only};

    daemon_rc = vault_daemon_run(sb, &o, &e);
    if (daemon_rc < 0)
        fprintf(stderr, "vault daemon: %s\n", terok_error_message(&e));
    terok_error_clear(&e);
    return NULL;
}

static void setup(void)
{
    char cfg[512];
    vault v;
    terok_secret *s = NULL;

    test_tmpdir_setup();
    up = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, upstream, NULL,
        MHD_OPTION_SOCK_ADDR,
        &(struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)},
        MHD_OPTION_END);
    cr_assert(up != NULL);
    snprintf(cfg, sizeof cfg,
             "[vault]\nbackend = sqlite\n[vault.sqlite]\nkey-sources = key-file\n"
             "[route.r]\nupstream = http://127.0.0.1:%u\nauth-header = x-api-key\n"
             "credential = cred\ntoken-env = R_TOKEN\nbase-url-env = R_URL\n",
             MHD_get_daemon_info(up, MHD_DAEMON_INFO_BIND_PORT)->port);
    terok_assert_ok(sandbox_open(test_write_config(cfg), &sb, &err), &err);
    terok_assert_ok(vault_open(sb->registry, 0, &v, &err), &err);
    cr_assert(terok_secret_new("sk-real-daemon", 14, &s) == 0);
    terok_assert_ok(vault_put(&v, "cred", s, NULL, NULL, &err), &err);
    terok_secret_free(s);
    port = free_port();
    atomic_store(&ready, false);
    pthread_create(&daemon_thread, NULL, run_daemon, NULL);
    for (int i = 0; i < 500 && !atomic_load(&ready); i++)
        usleep(10000);
    cr_assert(atomic_load(&ready), "the daemon did not come up");
}

static void stop_daemon(void)
{
    char *ctl = NULL;
    json_object *req = json_object_new_object(), *reply = NULL;

    cr_assert(vault_ctl_path(sb->paths.runtime_dir, &ctl) == 0);
    json_object_object_add(req, "op", json_object_new_string("stop"));
    terok_assert_ok(ctl_call(ctl, req, 5000, &reply, &err), &err);
    json_object_put(req);
    json_object_put(reply);
    free(ctl);
    pthread_join(daemon_thread, NULL);
    daemon_thread = 0;
    cr_assert(eq(int, daemon_rc, 0));
}

static void teardown(void)
{
    if (daemon_thread)
        stop_daemon();
    sb = sandbox_free(sb);
    MHD_stop_daemon(up);
    terok_error_clear(&err);
    test_tmpdir_teardown();
}

TestSuite(vault_daemon, .init = setup, .fini = teardown, .timeout = 120);

static void setup_epoch_only(void)
{
    epoch_only = true;
    setup();
}

/* Without the inotify watch the daemon knows of a revocation only through the token epoch that
 * tokens.c bumps after its commit: nothing else flushes the cache. */
TestSuite(vault_daemon_epoch, .init = setup_epoch_only, .fini = teardown, .timeout = 120);

/* The CLI's view: its own connection to the state database, as `run` / `tokens revoke` have. */
static sqlite3 *cli_db(uint8_t key[TOKEN_KEY_BYTES])
{
    sqlite3 *db = NULL;
    char path[512];

    snprintf(path, sizeof path, "%s/state.db", sb->paths.state_dir);
    cr_assert(sqlite3_open(path, &db) == SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    terok_assert_ok(tokens_key_load(sb->paths.state_dir, key, &err), &err);
    return db;
}

static char *mint(sqlite3 *db, const uint8_t key[TOKEN_KEY_BYTES], const char *container,
                  int64_t *id)
{
    token_binding b = {TOKEN_KIND_PHANTOM, container, "r", 0, 0};
    terok_secret *t = NULL;
    const void *p;
    size_t n;
    char *s;

    terok_assert_ok(tokens_mint(db, key, &b, &t, id, &err), &err);
    terok_secret_peek(t, &p, &n);
    s = strndup(p, n);
    terok_secret_free(t);
    return s;
}

static size_t sink(char *d, size_t s, size_t n, void *ud)
{
    return s * n;
}

/* One keep-alive client, as a container's SDK would hold it. */
static long get(CURL *c, const char *token)
{
    char url[128], h[160];
    struct curl_slist *l;
    long status = 0;

    snprintf(url, sizeof url, "http://127.0.0.1:%u/r/v1/x", port);
    snprintf(h, sizeof h, "X-Api-Key: %s", token);
    l = curl_slist_append(NULL, h);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, l);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    cr_assert(eq(int, curl_easy_perform(c), CURLE_OK));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(l);
    return status;
}

/* The daemon runs a worker per CPU (at least two here), each accepting on the same socket:
 * eight keep-alive clients land on all of them, and every one must refuse the revoked token
 * on its very next request, whichever worker cached it. */
#define CLIENTS 8

static void revocations_are_seen_at_once(int rounds)
{
    uint8_t key[TOKEN_KEY_BYTES];
    sqlite3 *db = cli_db(key);
    CURL *c[CLIENTS];

    for (int k = 0; k < CLIENTS; k++)
        c[k] = curl_easy_init();
    for (int round = 0; round < rounds; round++) {
        int64_t id = 0;
        char *tok = mint(db, key, "ctr", &id);
        /* the second and third answers come from the daemon's token cache */
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < CLIENTS; k++)
                cr_assert(eq(long, get(c[k], tok), 200), "round %d request %d client %d", round, i,
                          k);
        cr_assert(eq(int, tokens_revoke_id(db, id, &err), 1));
        for (int k = 0; k < CLIENTS; k++)
            cr_assert(eq(long, get(c[k], tok), 401),
                      "round %d client %d: a revoked token was accepted", round, k);
        free(tok);
    }
    /* a token of another container is refused from the cache too, and `rm` revokes at once */
    int64_t id = 0;
    char *other = mint(db, key, "other", &id), *mine = mint(db, key, "ctr", &id);
    for (int k = 0; k < CLIENTS; k++) {
        cr_assert(eq(long, get(c[k], other), 403));
        cr_assert(eq(long, get(c[k], mine), 200));
    }
    cr_assert(eq(int, tokens_revoke_container(db, "ctr", 0, &err), 1));
    for (int k = 0; k < CLIENTS; k++)
        cr_assert(eq(long, get(c[k], mine), 401), "client %d", k);
    free(other);
    free(mine);
    for (int k = 0; k < CLIENTS; k++)
        curl_easy_cleanup(c[k]);
    sqlite3_close(db);
}

Test(vault_daemon, a_revoked_token_is_refused_on_the_very_next_request)
{
    revocations_are_seen_at_once(25);
}

Test(vault_daemon_epoch, a_revocation_is_seen_through_the_epoch_alone)
{
    revocations_are_seen_at_once(10);
}

static int count_rows(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int n = -1;

    cr_assert(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

Test(vault_daemon, every_request_is_audited)
{
    uint8_t key[TOKEN_KEY_BYTES];
    sqlite3 *db = cli_db(key);
    CURL *c = curl_easy_init();
    int64_t id = 0;
    char *tok = mint(db, key, "ctr", &id);
    const int n = 1500; /* more than one flush batch */

    for (int i = 0; i < n; i++)
        cr_assert(eq(long, get(c, tok), 200));
    cr_assert(eq(long, get(c, "terok-p-not-a-real-token-at-all-aaaaaaaaaaaaaaaaaaaaaaa"), 401));
    curl_easy_cleanup(c);
    stop_daemon(); /* flushes what is still queued */
    cr_assert(eq(int,
                 count_rows(db, "SELECT count(*) FROM audit WHERE service = 'vault' AND "
                                "container = 'ctr' AND target = 'r' AND status = 200 AND "
                                "path = '/v1/x' AND outcome = 'ok' AND bytes_out = 3"),
                 n));
    cr_assert(eq(int, count_rows(db, "SELECT count(*) FROM audit WHERE status = 401"), 1));
    free(tok);
    sqlite3_close(db);
}
