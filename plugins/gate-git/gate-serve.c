/* SPDX-License-Identifier: Apache-2.0 */
/* gate-serve.c: one authenticated smart-HTTP request, served by `git upload-pack` or
 * `git receive-pack --stateless-rpc` on the task's own repository with a forced safe
 * configuration (no system/global config, an empty HOME, an empty hooks dir, fsck on receive,
 * private refs hidden, size limit). The request body streams from read_body into git's stdin
 * while git's stdout streams to write_body in one poll loop, so neither is held whole and a big
 * pack cannot deadlock. After a push: a backup ref for every rewritten or deleted ref and one
 * line in <root>/events.jsonl. All callbacks are called from the thread that called serve. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <sodium.h>
#include <zlib.h>

#include "gate-state.h"

/* Reads from git's stdout and from the request body: big enough that a 55 MB clone is a few
 * hundred hand-offs to the HTTP thread, not thousands (each one a wake-up on a busy machine). */
#define IO_CHUNK (256 * 1024)
/* git's pipes: upload-pack writes 64 KiB sideband packets; a 1 MiB pipe lets it run ahead of
 * us instead of blocking on every packet (F_SETPIPE_SZ; capped by fs/pipe-max-size). */
#define PIPE_SIZE (1024 * 1024)
#define STDERR_KEEP 2048

extern char **environ;

typedef struct svc {
    bool receive; /* receive-pack, else upload-pack */
    bool advertise;
    const char *name; /* "git-upload-pack" */
} svc;

static int respond(const terok_gate_http *req, int status, const char *text)
{
    const char *hdrs[] = {"Content-Type: text/plain; charset=utf-8", "Cache-Control: no-cache",
                          NULL};
    int r = req->write_head(req->io, status, hdrs);

    if (r >= 0 && text)
        r = req->write_body(req->io, text, strlen(text));
    return r < 0 ? -EPIPE : 0;
}

/* Git-Protocol header: colon-separated key[=value] items of a small alphabet. */
static bool protocol_is_valid(const char *p)
{
    size_t n = strnlen(p, 257);

    if (n == 0 || n > 256)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '=' || c == ':' || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool wants_v2(const char *p)
{
    const char *s = p;

    while (s && *s) {
        if (strneq(s, "version=2", 9) && (s[9] == ':' || s[9] == '\0'))
            return true;
        s = strchr(s, ':');
        if (s)
            s++;
    }
    return false;
}

/* --- ref snapshots ------------------------------------------------------------------------- */

typedef struct refsnap {
    size_t n;
    char **names;
    git_oid *oids;
} refsnap;

static void refsnap_done(refsnap *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->names[i]);
    free(s->names);
    free(s->oids);
    *s = (refsnap){0};
}

static int refsnap_take(git_repository *repo, refsnap *s)
{
    _cleanup_(git_reference_iterator_freep) git_reference_iterator *it = NULL;
    git_reference *ref;
    size_t cap = 0;
    int r;

    *s = (refsnap){0};
    if (git_reference_iterator_new(&it, repo) < 0)
        return -EIO;
    while ((r = git_reference_next(&ref, it)) == 0) {
        const char *name = git_reference_name(ref);
        const git_oid *oid = git_reference_target(ref);
        if (oid && !strneq(name, GG_NS, strlen(GG_NS))) {
            if (s->n == cap) {
                size_t nc = cap ? cap * 2 : 32;
                char **nn = realloc(s->names, nc * sizeof *nn);
                git_oid *no = nn ? realloc(s->oids, nc * sizeof *no) : NULL;
                if (nn)
                    s->names = nn;
                if (!no) {
                    git_reference_free(ref);
                    return -ENOMEM;
                }
                s->oids = no;
                cap = nc;
            }
            s->names[s->n] = strdup(name);
            git_oid_cpy(&s->oids[s->n], oid);
            if (!s->names[s->n]) {
                git_reference_free(ref);
                return -ENOMEM;
            }
            s->n++;
        }
        git_reference_free(ref);
    }
    return r == GIT_ITEROVER ? 0 : -EIO;
}

/* --- cached ref advertisements ----------------------------------------------------------- *
 * An info/refs answer is git's, byte for byte, but git's run (~8 ms, most of it exec and
 * dynamic loading) is spent once per state of the view's refs, not once per request: the
 * answer depends only on the refs (and HEAD), the service and the Git-Protocol header, the
 * configuration being forced and the same for every run. The key is a BLAKE2b of every ref's
 * name and target (symbolic ones included), taken before and after git ran: an answer is kept
 * only when the refs did not move meanwhile. A push changes the refs and so the key; an entry
 * that no longer matches is replaced. Bounded: ADV_MAX entries, each at most ADV_BYTES. */
#define ADV_MAX 64
#define ADV_BYTES (256 * 1024)

typedef struct gg_adv {
    char *path; /* the view's git dir */
    bool receive;
    char *protocol; /* Git-Protocol, "" when none */
    uint8_t key[32];
    char *data;
    size_t len;
} gg_adv;

void gg_adv_free_all(gg *g)
{
    for (size_t i = 0; i < g->n_adv; i++) {
        free(g->adv[i].path);
        free(g->adv[i].protocol);
        free(g->adv[i].data);
    }
    free(g->adv);
    g->adv = NULL;
    g->n_adv = 0;
}

static int refs_key(git_repository *repo, uint8_t key[32])
{
    _cleanup_(git_reference_iterator_freep) git_reference_iterator *it = NULL;
    crypto_generichash_state h;
    git_reference *ref;
    int r;

    crypto_generichash_init(&h, NULL, 0, 32);
    if (git_reference_lookup(&ref, repo, "HEAD") == 0) {
        const char *t = git_reference_symbolic_target(ref);
        const git_oid *oid = git_reference_target(ref); /* a detached HEAD */
        if (t)
            crypto_generichash_update(&h, (const uint8_t *)t, strlen(t) + 1);
        else if (oid)
            crypto_generichash_update(&h, oid->id, GIT_OID_RAWSZ);
        git_reference_free(ref);
    }
    if (git_reference_iterator_new(&it, repo) < 0)
        return -EIO;
    while ((r = git_reference_next(&ref, it)) == 0) {
        const char *name = git_reference_name(ref), *sym = git_reference_symbolic_target(ref);
        const git_oid *oid = git_reference_target(ref);

        crypto_generichash_update(&h, (const uint8_t *)name, strlen(name) + 1);
        if (oid)
            crypto_generichash_update(&h, oid->id, GIT_OID_RAWSZ);
        else if (sym)
            crypto_generichash_update(&h, (const uint8_t *)sym, strlen(sym) + 1);
        git_reference_free(ref);
    }
    if (r != GIT_ITEROVER)
        return -EIO;
    crypto_generichash_final(&h, key, 32);
    return 0;
}

static gg_adv *adv_find(gg *g, const char *path, bool receive, const char *protocol)
{
    for (size_t i = 0; i < g->n_adv; i++)
        if (g->adv[i].receive == receive && streq(g->adv[i].path, path) &&
            streq(g->adv[i].protocol, protocol))
            return &g->adv[i];
    return NULL;
}

/* A copy of the cached answer for this key, or NULL. */
static char *adv_lookup(gg *g, const char *path, bool receive, const char *protocol,
                        const uint8_t key[32], size_t *ret_len)
{
    char *copy = NULL;
    gg_adv *a;

    pthread_mutex_lock(&g->adv_lock);
    a = adv_find(g, path, receive, protocol);
    if (a && memcmp(a->key, key, 32) == 0 && (copy = malloc(a->len ? a->len : 1))) {
        memcpy(copy, a->data, a->len);
        *ret_len = a->len;
    }
    pthread_mutex_unlock(&g->adv_lock);
    return copy;
}

static void adv_store(gg *g, const char *path, bool receive, const char *protocol,
                      const uint8_t key[32], char *data, size_t len)
{
    gg_adv *a;

    pthread_mutex_lock(&g->adv_lock);
    a = adv_find(g, path, receive, protocol);
    if (!a) {
        if (g->n_adv >= ADV_MAX)
            gg_adv_free_all(g);
        if (!g->adv && !(g->adv = calloc(ADV_MAX, sizeof *g->adv)))
            goto out;
        a = &g->adv[g->n_adv];
        *a = (gg_adv){.path = strdup(path), .receive = receive, .protocol = strdup(protocol)};
        if (!a->path || !a->protocol) {
            free(a->path);
            free(a->protocol);
            goto out;
        }
        g->n_adv++;
    }
    free(a->data);
    a->data = TAKE_PTR(data);
    a->len = len;
    memcpy(a->key, key, 32);
out:
    pthread_mutex_unlock(&g->adv_lock);
    free(data);
}

static const git_oid *refsnap_find(const refsnap *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (streq(s->names[i], name))
            return &s->oids[i];
    return NULL;
}

static json_object *update_json(const char *ref, const git_oid *old, const git_oid *new,
                                const char *kind)
{
    json_object *u = json_object_new_object();
    char h[GIT_OID_HEXSZ + 1];

    json_object_object_add(u, "ref", json_object_new_string(ref));
    json_object_object_add(u, "old", old ? json_object_new_string(gg_oid_str(old, h)) : NULL);
    json_object_object_add(u, "new", new ? json_object_new_string(gg_oid_str(new, h)) : NULL);
    json_object_object_add(u, "kind", json_object_new_string(kind));
    return u;
}

/* Compare before/after a push: back up rewritten and deleted refs, record the event. */
static void after_push(gg *g, const terok_gate_http *req, git_repository *task,
                       const refsnap *before)
{
    _cleanup_(json_object_putp) json_object *ev = json_object_new_object();
    json_object *updates = json_object_new_array(), *backups = json_object_new_array();
    refsnap after;
    char *bname;

    json_object_object_add(ev, "updates", updates);
    json_object_object_add(ev, "backups", backups);
    if (refsnap_take(task, &after) < 0) {
        terok_plog(TEROK_LOG_ERR, "push to '%s' by '%s': cannot read refs after the push",
                   req->repo, req->container);
        refsnap_done(&after);
        return;
    }
    for (size_t i = 0; i < before->n; i++) {
        const git_oid *old = &before->oids[i], *new = refsnap_find(&after, before->names[i]);
        const char *kind;
        int desc;

        if (new &&git_oid_equal(old, new))
            continue;
        desc = new ? git_graph_descendant_of(task, new, old) : 0;
        kind = !new ? "delete" : desc == 1 ? "fast-forward" : "force";
        json_object_array_add(updates, update_json(before->names[i], old, new, kind));
        if (desc == 1)
            continue;
        bname = NULL;
        if (gg_backup_ref(task, before->names[i], old, &bname, NULL) == 0) {
            json_object_array_add(backups, json_object_new_string(bname));
            terok_plog(TEROK_LOG_NOTICE, "push by '%s' rewrote '%s' in '%s': backup %s",
                       req->container, before->names[i], req->repo, bname);
        } else
            terok_plog(TEROK_LOG_ERR, "push by '%s': cannot back up '%s' (%s)", req->container,
                       before->names[i], gg_git_error());
        free(bname);
    }
    for (size_t i = 0; i < after.n; i++)
        if (!refsnap_find(before, after.names[i]))
            json_object_array_add(updates,
                                  update_json(after.names[i], NULL, &after.oids[i], "create"));
    refsnap_done(&after);
    if (json_object_array_length(updates) == 0)
        return;
    json_object_object_add(ev, "time", json_object_new_int64(gg_now()));
    json_object_object_add(ev, "event", json_object_new_string("push"));
    json_object_object_add(ev, "container", json_object_new_string(req->container));
    json_object_object_add(ev, "repo", json_object_new_string(req->repo));
    if (gg_event_append(g, ev) < 0)
        terok_plog(TEROK_LOG_ERR, "cannot append the push event of '%s' to events.jsonl",
                   req->container);
}

/* --- the child ----------------------------------------------------------------------------- */

typedef struct strv {
    char *v[64];
    size_t n;
} strv;

static int strv_addf(strv *s, const char *fmt, ...) _printf_(2, 3);
static int strv_addf(strv *s, const char *fmt, ...)
{
    va_list ap;
    int r;

    if (s->n + 1 >= ELEMENTSOF(s->v))
        return -E2BIG;
    va_start(ap, fmt);
    r = vasprintf(&s->v[s->n], fmt, ap);
    va_end(ap);
    if (r < 0)
        return -ENOMEM;
    s->v[++s->n] = NULL;
    return 0;
}

static void strv_done(strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    s->n = 0;
}

/* The whole environment of a served git: nothing inherited. */
static int build_env(gg *g, const terok_gate_http *req, strv *env)
{
    const char *cfg[][2] = {
        {"core.hooksPath", g->hooks},
        {"receive.fsckObjects", "true"},
        {"transfer.fsckObjects", "true"},
        {"receive.denyDeletes", g->allow_delete ? "false" : "true"},
        {"receive.denyNonFastForwards", g->allow_force ? "false" : "true"},
        {"uploadpack.hideRefs", "refs/terok/"},
        {"receive.hideRefs", "refs/terok/"},
        {"uploadpack.allowFilter", "true"},
        {"uploadpack.allowAnySHA1InWant", "false"},
        {"uploadpack.allowTipSHA1InWant", "false"},
        {"uploadpack.allowReachableSHA1InWant", "false"},
        {"receive.advertisePushOptions", "false"},
        {"core.alternateRefsCommand", "true"},
        {"core.logAllRefUpdates", "always"},
        {"core.fsmonitor", "false"},
        {"gc.auto", "0"},
        {"receive.autogc", "false"},
    };
    int r = 0;

    r |= strv_addf(env, "PATH=/usr/local/bin:/usr/bin:/bin");
    r |= strv_addf(env, "HOME=%s", g->home);
    r |= strv_addf(env, "XDG_CONFIG_HOME=%s", g->home);
    r |= strv_addf(env, "LANG=C");
    r |= strv_addf(env, "GIT_CONFIG_NOSYSTEM=1");
    r |= strv_addf(env, "GIT_CONFIG_GLOBAL=/dev/null");
    r |= strv_addf(env, "GIT_CONFIG_SYSTEM=/dev/null");
    r |= strv_addf(env, "GIT_TERMINAL_PROMPT=0");
    r |= strv_addf(env, "GIT_NO_REPLACE_OBJECTS=1");
    r |= strv_addf(env, "GIT_COMMITTER_NAME=terok-gate");
    r |= strv_addf(env, "GIT_COMMITTER_EMAIL=%s@terok.invalid", req->container);
    if (req->git_protocol && *req->git_protocol)
        r |= strv_addf(env, "GIT_PROTOCOL=%s", req->git_protocol);
    r |= strv_addf(env, "GIT_CONFIG_COUNT=%zu", ELEMENTSOF(cfg) + 1);
    for (size_t i = 0; i < ELEMENTSOF(cfg); i++) {
        r |= strv_addf(env, "GIT_CONFIG_KEY_%zu=%s", i, cfg[i][0]);
        r |= strv_addf(env, "GIT_CONFIG_VALUE_%zu=%s", i, cfg[i][1]);
    }
    r |= strv_addf(env, "GIT_CONFIG_KEY_%zu=receive.maxInputSize", ELEMENTSOF(cfg));
    r |= strv_addf(env, "GIT_CONFIG_VALUE_%zu=%lld", ELEMENTSOF(cfg), (long long)g->max_push);
    return r < 0 ? -ENOMEM : 0;
}

static int spawn_git(gg *g, const terok_gate_http *req, const svc *s, const char *path, int in_fd,
                     int out_fd, int err_fd, pid_t *ret_pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, deflt;
    strv env, argv;
    int r;

    memset(&env, 0, sizeof env);
    memset(&argv, 0, sizeof argv);

    if (build_env(g, req, &env) < 0 || strv_addf(&argv, "%s", g->git) < 0 ||
        strv_addf(&argv, "%s", s->receive ? "receive-pack" : "upload-pack") < 0 ||
        strv_addf(&argv, "--stateless-rpc") < 0 ||
        (s->advertise && strv_addf(&argv, "--advertise-refs") < 0) ||
        strv_addf(&argv, "%s", path) < 0) {
        strv_done(&env);
        strv_done(&argv);
        return -ENOMEM;
    }
    sigemptyset(&none);
    sigfillset(&deflt);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawn_file_actions_addchdir_np(&fa, path);
    posix_spawnattr_init(&at);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &deflt);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    r = posix_spawn(ret_pid, g->git, &fa, &at, argv.v, env.v);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    strv_done(&env);
    strv_done(&argv);
    return -r;
}

/* --- the request body, inflated when the client gzipped it ---------------------------------- */

typedef struct body {
    const terok_gate_http *req;
    bool gzip, eof, zinit;
    z_stream z;
    unsigned char raw[IO_CHUNK];
} body;

/* Fill buf with the next body bytes; 0 at the end, < 0 on a bad body or a failed read. */
static long body_next(body *b, unsigned char *buf, size_t len)
{
    if (b->eof)
        return 0;
    if (!b->gzip) {
        long n = b->req->read_body(b->req->io, buf, len);
        if (n == 0)
            b->eof = true;
        return n < 0 ? -EIO : n;
    }
    b->z.next_out = buf;
    b->z.avail_out = (uInt)len;
    for (;;) {
        int zr;
        if (b->z.avail_in == 0) {
            long n = b->req->read_body(b->req->io, b->raw, sizeof b->raw);
            if (n < 0)
                return -EIO;
            if (n == 0)
                return -EBADMSG; /* truncated gzip stream */
            b->z.next_in = b->raw;
            b->z.avail_in = (uInt)n;
        }
        zr = inflate(&b->z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END) {
            b->eof = true;
            return (long)(len - b->z.avail_out);
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return -EBADMSG;
        if (b->z.avail_out < len)
            return (long)(len - b->z.avail_out);
    }
}

/* --- the request --------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int head_ok(const terok_gate_http *req, const svc *s, bool v2)
{
    char ctype[80], pkt[64];
    const char *hdrs[] = {ctype, "Cache-Control: no-cache", "Pragma: no-cache",
                          "Expires: Fri, 01 Jan 1980 00:00:00 GMT", NULL};
    int r;

    snprintf(ctype, sizeof ctype, "Content-Type: application/x-%s-%s", s->name,
             s->advertise ? "advertisement" : "result");
    r = req->write_head(req->io, 200, hdrs);
    if (r < 0)
        return -EPIPE;
    if (s->advertise && !v2) {
        /* The one pkt-line we write ourselves: "# service=<name>\n" and a flush. */
        int n = snprintf(pkt + 4, sizeof pkt - 4, "# service=%s\n", s->name);
        char len[5];
        snprintf(len, sizeof len, "%04x", n + 4);
        memcpy(pkt, len, 4);
        if (req->write_body(req->io, pkt, (size_t)n + 4) < 0 ||
            req->write_body(req->io, "0000", 4) < 0)
            return -EPIPE;
    }
    return 0;
}

static int classify(const terok_gate_http *req, svc *s, const char **ret_reason, int *ret_status)
{
    *ret_status = 400;
    if (!req->method || !req->service_path) {
        *ret_reason = "bad request\n";
        return -EINVAL;
    }
    if (streq(req->service_path, "info/refs")) {
        const char *q = req->query ? req->query : "";
        if (!streq(req->method, "GET")) {
            *ret_status = 405;
            *ret_reason = "method not allowed\n";
            return -EINVAL;
        }
        s->advertise = true;
        if (streq(q, "service=git-upload-pack"))
            s->receive = false;
        else if (streq(q, "service=git-receive-pack"))
            s->receive = true;
        else {
            *ret_status = 403;
            *ret_reason = "only the smart HTTP protocol is served\n";
            return -EINVAL;
        }
    } else if (streq(req->service_path, "git-upload-pack") ||
               streq(req->service_path, "git-receive-pack")) {
        char want[64];
        s->receive = streq(req->service_path, "git-receive-pack");
        if (!streq(req->method, "POST")) {
            *ret_status = 405;
            *ret_reason = "method not allowed\n";
            return -EINVAL;
        }
        snprintf(want, sizeof want, "application/x-%s-request", req->service_path);
        if (!req->content_type || !streq(req->content_type, want)) {
            *ret_status = 415;
            *ret_reason = "unsupported content type\n";
            return -EINVAL;
        }
    } else {
        *ret_status = 404;
        *ret_reason = "not found\n";
        return -EINVAL;
    }
    s->name = s->receive ? "git-receive-pack" : "git-upload-pack";
    return 0;
}

int gg_serve(void *state, const terok_gate_http *req, terok_error *err)
{
    gg *g = state;
    _cleanup_(git_repository_freep) git_repository *task = NULL;
    _cleanup_free_ char *path = NULL, *lockpath = NULL;
    _cleanup_close_ int lockfd = -EBADF, in_w = -EBADF, out_r = -EBADF, err_r = -EBADF;
    unsigned char *inbuf = NULL, *outbuf = NULL;
    char errtext[STDERR_KEEP + 1];
    size_t errlen = 0, inlen = 0, inoff = 0;
    body b = {0};
    svc s = {0};
    refsnap before = {0};
    const char *reason;
    bool v2, head_sent = false, out_eof = false, err_eof = false, in_open = true;
    bool adv_keyed = false; /* an info/refs whose answer may be kept */
    const char *proto = req && req->git_protocol ? req->git_protocol : "";
    uint8_t adv_key[32];
    char *adv = NULL; /* git's answer as it went out, while it fits ADV_BYTES */
    size_t adv_len = 0;
    int status, r = 0, wst = 0;
    int64_t deadline;
    pid_t pid = -1;

    if (!g || !req)
        return terok_perr(err, -EINVAL, "gate: no request");
    if (req->struct_size < offsetof(terok_gate_http, io) + sizeof(void *))
        return terok_perr(err, -EINVAL, "gate: request struct too small");
    if (!terok_struct_tail_is_zero(req, req->struct_size, sizeof *req))
        return terok_perr(err, -E2BIG, "gate: request has fields this plugin lacks");
    if (!req->read_body || !req->write_head || !req->write_body)
        return terok_perr(err, -EINVAL, "gate: request without I/O callbacks");
    /* A name the core should have refused: answer 400 rather than fail. */
    if (gg_check_container(req->container, NULL) < 0 || gg_check_repo(req->repo, NULL) < 0) {
        char q1[200], q2[200];
        terok_plog(TEROK_LOG_WARNING, "refused a request for task '%s', repo '%s': bad name",
                   gg_quote(req->container, q1), gg_quote(req->repo, q2));
        return respond(req, 400, "bad repository name\n");
    }
    if (classify(req, &s, &reason, &status) < 0)
        return respond(req, status, reason);
    if (req->git_protocol && *req->git_protocol && !protocol_is_valid(req->git_protocol))
        return respond(req, 400, "bad Git-Protocol header\n");
    v2 = req->git_protocol && wants_v2(req->git_protocol);
    if (req->content_encoding && *req->content_encoding &&
        !streq(req->content_encoding, "identity")) {
        if (streq(req->content_encoding, "gzip") || streq(req->content_encoding, "x-gzip"))
            b.gzip = true;
        else
            return respond(req, 415, "unsupported content encoding\n");
    }
    if (gg_open_task(g, req->container, req->repo, &task, NULL) < 0)
        return respond(req, 404, "repository not found\n");
    {
        uint32_t need = s.receive ? TEROK_GATE_WRITE : TEROK_GATE_READ;
        uint32_t granted = gg_task_rights(task) & req->rights;
        if (!gg_task_rights(task))
            return respond(req, 403, "access to this repository was revoked\n");
        if ((granted & need) != need)
            return respond(req, 403,
                           s.receive ? "this grant is read-only: push refused\n" : "forbidden\n");
    }
    path = strdup(git_repository_path(task));
    if (!path)
        return -ENOMEM;
    if (s.advertise && refs_key(task, adv_key) == 0) {
        size_t n = 0;
        _cleanup_free_ char *cached = adv_lookup(g, path, s.receive, proto, adv_key, &n);
        if (cached) {
            r = head_ok(req, &s, v2);
            if (r >= 0 && n > 0 && req->write_body(req->io, cached, n) < 0)
                r = -EPIPE;
            goto out;
        }
        adv_keyed = true;
    }
    if (b.gzip) {
        if (inflateInit2(&b.z, 15 + 16) != Z_OK) {
            refsnap_done(&before);
            return -ENOMEM;
        }
        b.zinit = true;
    }
    b.req = req;
    inbuf = malloc(IO_CHUNK);
    outbuf = malloc(IO_CHUNK);
    if (!inbuf || !outbuf) {
        r = -ENOMEM;
        goto out;
    }
    if (s.receive && !s.advertise && !b.gzip) {
        /* Before a push bigger than http.postBuffer git probes with a lone flush-pkt (remote-curl's
         * probe_rpc) to learn whether it must authenticate. receive-pack reads no command from
         * it and answers nothing; so does the gate, without running git, taking the view's lock
         * or comparing refs. Any other body is held in inbuf and goes to git as it would. */
        long n = body_next(&b, inbuf, IO_CHUNK);
        if (n >= 0)
            inlen = (size_t)n;
        if (n == 4 && memcmp(inbuf, "0000", 4) == 0) {
            long m = body_next(&b, inbuf + 4, IO_CHUNK - 4);
            if (m == 0) {
                r = head_ok(req, &s, v2);
                goto out;
            }
            if (m > 0)
                inlen += (size_t)m;
            n = m < 0 ? m : n;
        }
        if (n < 0) {
            r = -EIO;
            goto out;
        }
    }
    if (s.receive && !s.advertise) {
        /* One push at a time per view, so the before/after comparison is the push's own. */
        if (asprintf(&lockpath, "%sterok.lock", path) < 0) {
            r = -ENOMEM;
            goto out;
        }
        lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (lockfd < 0 || flock(lockfd, LOCK_EX) < 0) {
            r = terok_perr(err, -EIO, "gate: cannot lock '%s'", lockpath);
            goto out;
        }
        if (refsnap_take(task, &before) < 0) {
            r = terok_perr(err, -EIO, "gate: cannot read the refs of '%s'", path);
            goto out;
        }
    }
    {
        int sp[2], op[2], ep[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
            r = terok_perr(err, negative_errno(), "gate: socketpair: %s", strerror(errno));
            goto out;
        }
        if (pipe2(op, O_CLOEXEC) < 0) {
            r = terok_perr(err, negative_errno(), "gate: pipe: %s", strerror(errno));
            close(sp[0]);
            close(sp[1]);
            goto out;
        }
        if (pipe2(ep, O_CLOEXEC) < 0) {
            r = terok_perr(err, negative_errno(), "gate: pipe: %s", strerror(errno));
            close(sp[0]);
            close(sp[1]);
            close(op[0]);
            close(op[1]);
            goto out;
        }
        /* Best effort: the default sizes work, only slower. */
        (void)fcntl(op[0], F_SETPIPE_SZ, PIPE_SIZE);
        (void)setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &(int){PIPE_SIZE}, sizeof(int));
        r = spawn_git(g, req, &s, path, sp[1], op[1], ep[1], &pid);
        close(sp[1]);
        close(op[1]);
        close(ep[1]);
        in_w = sp[0];
        out_r = op[0];
        err_r = ep[0];
        if (r < 0) {
            r = terok_perr(err, r, "gate: cannot run '%s': %s", g->git, strerror(-r));
            goto out;
        }
        (void)fcntl(in_w, F_SETFL, O_NONBLOCK);
        (void)fcntl(out_r, F_SETFL, O_NONBLOCK);
        (void)fcntl(err_r, F_SETFL, O_NONBLOCK);
    }
    if (s.advertise) {
        /* No request body for info/refs. */
        in_w = (close(in_w), -EBADF);
        in_open = false;
    }
    deadline = now_ms() + g->timeout_ms;
    while (!out_eof || !err_eof) {
        struct pollfd p[3];
        nfds_t np = 0;
        int64_t left = deadline - now_ms();
        int pr;

        /* Refill the stdin buffer from the body when it is drained. */
        if (in_open && inoff == inlen) {
            long n = body_next(&b, inbuf, IO_CHUNK);
            if (n < 0) {
                terok_plog(TEROK_LOG_WARNING, "request body of '%s' for '%s': %s", req->container,
                           req->repo, n == -EBADMSG ? "bad gzip data" : "read failed");
                r = n == -EBADMSG ? -EBADMSG : -EIO;
                break;
            }
            inoff = 0;
            inlen = (size_t)n;
            if (n == 0) {
                in_w = (close(in_w), -EBADF);
                in_open = false;
            }
        }
        if (left <= 0) {
            terok_plog(TEROK_LOG_WARNING, "git for '%s' ran past serve-timeout; killed",
                       req->container);
            r = -ETIMEDOUT;
            break;
        }
        if (!out_eof)
            p[np++] = (struct pollfd){.fd = out_r, .events = POLLIN};
        if (!err_eof)
            p[np++] = (struct pollfd){.fd = err_r, .events = POLLIN};
        if (in_open && inoff < inlen)
            p[np++] = (struct pollfd){.fd = in_w, .events = POLLOUT};
        pr = poll(p, np, (int)MIN(left, 60000));
        if (pr < 0 && errno != EINTR) {
            r = negative_errno();
            break;
        }
        for (nfds_t i = 0; pr > 0 && i < np; i++) {
            if (!p[i].revents)
                continue;
            if (p[i].fd == out_r) {
                ssize_t n = read(out_r, outbuf, IO_CHUNK);
                if (n > 0) {
                    if (!head_sent) {
                        if ((r = head_ok(req, &s, v2)) < 0)
                            goto stop;
                        head_sent = true;
                    }
                    if (req->write_body(req->io, outbuf, (size_t)n) < 0) {
                        r = -EPIPE;
                        goto stop;
                    }
                    if (adv_keyed && adv_len + (size_t)n <= ADV_BYTES) {
                        char *grown = realloc(adv, adv_len + (size_t)n);
                        if (grown) {
                            adv = grown;
                            memcpy(adv + adv_len, outbuf, (size_t)n);
                            adv_len += (size_t)n;
                        } else
                            adv_keyed = false;
                    } else
                        adv_keyed = false;
                } else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                    out_eof = true;
            } else if (p[i].fd == err_r) {
                char tmp[1024];
                ssize_t n = read(err_r, tmp, sizeof tmp);
                if (n > 0) {
                    size_t k = MIN((size_t)n, STDERR_KEEP - errlen);
                    memcpy(errtext + errlen, tmp, k);
                    errlen += k;
                } else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                    err_eof = true;
            } else if (p[i].fd == in_w) {
                ssize_t n = send(in_w, inbuf + inoff, inlen - inoff, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n > 0)
                    inoff += (size_t)n;
                else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                    /* git stopped reading (it may have answered already): drop the rest. */
                    in_w = (close(in_w), -EBADF);
                    in_open = false;
                }
            }
        }
    }
stop:
    if (in_w >= 0)
        in_w = (close(in_w), -EBADF);
    if (r < 0 && pid > 0)
        kill(pid, SIGKILL);
    while (pid > 0 && waitpid(pid, &wst, 0) < 0 && errno == EINTR)
        ;
    errtext[errlen] = '\0';
    if (errlen)
        terok_plog(r < 0 || !WIFEXITED(wst) || WEXITSTATUS(wst) ? TEROK_LOG_WARNING
                                                                : TEROK_LOG_DEBUG,
                   "git %s for '%s': %s", s.name + 4, req->container, errtext);
    if (r == 0 && !head_sent) {
        if (WIFEXITED(wst) && WEXITSTATUS(wst) == 0)
            r = head_ok(req, &s, v2);
        else
            r = respond(req, 500, "git failed\n");
    } else if (r == -EBADMSG && !head_sent) {
        r = respond(req, 400, "bad request body\n");
    }
    if (s.receive && !s.advertise && pid > 0)
        after_push(g, req, task, &before);
    if (adv_keyed && r == 0 && head_sent && WIFEXITED(wst) && WEXITSTATUS(wst) == 0) {
        uint8_t after[32];
        /* kept only if the refs git read are the ones the key says */
        if (refs_key(task, after) == 0 && memcmp(after, adv_key, sizeof after) == 0)
            adv_store(g, path, s.receive, proto, adv_key, TAKE_PTR(adv), adv_len);
    }
out:
    free(adv);
    refsnap_done(&before);
    if (b.zinit)
        inflateEnd(&b.z);
    free(inbuf);
    free(outbuf);
    if (r < 0 && r != -EPIPE)
        return terok_perr(err, r, "gate: serving '%s' for '%s': %s", req->repo, req->container,
                          strerror(-r));
    if (r == -EPIPE)
        return terok_perr(err, r, "gate: the client of '%s' went away", req->container);
    return 0;
}
