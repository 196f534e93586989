/* SPDX-License-Identifier: Apache-2.0 */
/* gate-git's parsers: SSH host keys ("TYPE BASE64"), known_hosts files (patterns, hashed
 * entries, markers) and the host-key check built on them, upstream URLs and SSH endpoints, the
 * smart-HTTP request (classification, Git-Protocol, the push probe, the gzip body reader) through
 * a fake request whose body is the input, backup ids, and the name checks. Nothing here runs git
 * (its path does not exist) or touches a network. Input: one selector byte, one parameter byte,
 * then the case's text (fields separated by newlines where there are several). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz-plugin-host.h"
#include "fuzz.h"

#include "gate-backup.c"
#include "gate-serve.c"
#include "gate-ssh.c"

static char root[] = "/tmp/fz-gate-XXXXXX";
static char kh_path[64];
static gg g;

/* The i-th newline-separated field of s (borrowed; s is cut in place), "" past the end. */
static char *field(char **rest)
{
    char *s = *rest, *nl;

    if (!s)
        return (char *)"";
    nl = strchr(s, '\n');
    if (nl) {
        *nl = 0;
        *rest = nl + 1;
    } else
        *rest = NULL;
    return s;
}

static void printable(const char *q)
{
    if (strlen(q) >= 200)
        abort();
    for (; *q; q++)
        if (*q < 0x20 || *q >= 0x7f)
            abort(); /* a quoted value is printable */
}

/* --- host keys, known_hosts, the host-key check ------------------------------------------ */

static void host_key(const char *line)
{
    uint8_t *blob = NULL, *again = NULL;
    size_t len = 0, alen = 0;
    char *text, t[64], fp[GG_FP_SIZE];
    const char *w = line + strspn(line, " \t");

    if (gg_parse_host_key(line, &blob, &len) < 0)
        return;
    /* the type word is the blob's */
    if (!blob_type(blob, len, t, sizeof t) || strncmp(w, t, strlen(t)) != 0 ||
        !strchr(" \t", w[strlen(t)]))
        abort();
    text = gg_host_key_text(blob, len);
    if (!text || gg_parse_host_key(text, &again, &alen) < 0 || alen != len ||
        memcmp(again, blob, len) != 0)
        abort(); /* what we print, we read back as the same key */
    gg_key_fingerprint(blob, len, fp);
    if (strncmp(fp, "SHA256:", 7) != 0 || strlen(fp) != 50)
        abort();
    free(text);
    free(again);
    free(blob);
}

static void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len) || close(fd) < 0)
        abort();
}

/* The key offered: the blob of a "TYPE BASE64" line, else the line's bytes as they are. */
static uint8_t *offered_key(const char *line, size_t *len)
{
    uint8_t *blob = NULL;

    if (gg_parse_host_key(line, &blob, len) == 0)
        return blob;
    *len = strlen(line);
    blob = malloc(*len ? *len : 1);
    if (!blob)
        abort();
    memcpy(blob, line, *len);
    return blob;
}

/* url \n offered key \n pin \n known_hosts... (param bits: pin, known_hosts, accept_new) */
static void cert_check(uint8_t param, char *s)
{
    char *rest = s, *url = field(&rest), *key_line = field(&rest), *pin = field(&rest);
    const char *kh_text = rest ? rest : "";
    size_t klen = 0;
    uint8_t *key = offered_key(key_line, &klen);
    git_cert_hostkey hk = {.parent = {.cert_type = GIT_CERT_HOSTKEY_LIBSSH2},
                           .type = GIT_CERT_SSH_RAW,
                           .hostkey = (const char *)key,
                           .hostkey_len = klen};
    gg_remote_ctx ctx = {.g = &g, .repo = "proj", .url = url};
    char host[256], name[300], t[64];
    int port, kh = KH_UNKNOWN, r;

    if (param & 1)
        ctx.host_key = pin;
    g.known_hosts = param & 2 ? kh_path : NULL;
    ctx.accept_new = param & 4;
    write_file(kh_path, kh_text, strlen(kh_text));
    r = gg_cert_cb(&hk.parent, 1, "ignored", &ctx);
    if (r != 0 && (r != -1 || !ctx.why[0]))
        abort(); /* a refusal says why */
    if (r == 0) {
        /* accepted: a well-formed key of a well-formed endpoint that the pin, known_hosts or
         * trust on first use vouches for */
        if (!blob_type(key, klen, t, sizeof t) ||
            gg_ssh_endpoint(url, host, sizeof host, &port, NULL, 0) < 0)
            abort();
        if (ctx.host_key) {
            uint8_t *p = NULL;
            size_t pl = 0;
            if (gg_parse_host_key(pin, &p, &pl) < 0 || pl != klen || memcmp(p, key, pl) != 0)
                abort(); /* a pinned host accepts its pin only */
            free(p);
        } else {
            if (port == 22)
                snprintf(name, sizeof name, "%s", host);
            else
                snprintf(name, sizeof name, "[%s]:%d", host, port);
            if (g.known_hosts && known_hosts_lookup(kh_path, name, key, klen, &kh) < 0)
                abort();
            if (kh != KH_MATCH && !(kh == KH_UNKNOWN && ctx.accept_new))
                abort(); /* an unknown, changed or revoked key got through */
            if (kh == KH_UNKNOWN && (!ctx.seen_key || !strchr(ctx.seen_key, ' ')))
                abort(); /* trusted on first use: reported as "TYPE BASE64" */
        }
    }
    gg_remote_ctx_done(&ctx);
    free(key);
}

/* name \n known_hosts... : straight into the lookup, the key from the first matching line */
static void known_hosts(char *s)
{
    char *rest = s, *name = field(&rest), *key_line = field(&rest);
    const char *kh_text = rest ? rest : "";
    size_t klen = 0;
    uint8_t *key = offered_key(key_line, &klen);
    int kh = -1;

    write_file(kh_path, kh_text, strlen(kh_text));
    if (known_hosts_lookup(kh_path, name, key, klen, &kh) < 0 || kh < KH_UNKNOWN || kh > KH_REVOKED)
        abort();
    (void)hosts_match(key_line, strlen(key_line), name);
    free(key);
}

/* --- URLs ---------------------------------------------------------------------------------- */

static void urls(uint8_t param, const char *url)
{
    terok_error err = TEROK_ERROR_INIT;
    size_t host_size = 1 + param, user_size = 1 + (param >> 2);
    char *host = malloc(host_size), *user = malloc(user_size), q[200];
    const char *scheme, *at, *slash, *userinfo;
    int port = -1, r;

    if (!host || !user)
        abort();
    r = gg_ssh_endpoint(url, host, host_size, &port, user, user_size);
    if (r == 0) {
        if (!gg_url_is_ssh(url) || !*host || host[0] == '-' || strlen(host) >= host_size ||
            !strstr(url, host) || port < 1 || port > 65535 || strlen(user) >= user_size ||
            !strstr(url, user) || strchr(user, ':'))
            abort(); /* an endpoint is a host (and user) of the URL and a port */
    } else if (r != -EINVAL)
        abort();
    /* scheme://user:password@ (any scheme), the userinfo up to the first '/' */
    scheme = strstr(url, "://");
    if (scheme &&
        (scheme == url || strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789+.-") != (size_t)(scheme - url)))
        scheme = NULL;
    at = scheme ? strchr(scheme + 3, '@') : NULL;
    slash = scheme ? strchr(scheme + 3, '/') : NULL;
    userinfo = at && (!slash || at < slash) && memchr(scheme + 3, ':', (size_t)(at - scheme - 3))
                   ? scheme + 3
                   : NULL;
    r = gg_check_url(url, &err);
    if (r < 0) {
        if (!err.message)
            abort();
        /* the value is named, except a password, which is never repeated */
        if (userinfo && fuzz_mem_in(err.message, userinfo, (size_t)(at - userinfo) + 1))
            abort();
        if (*url && !userinfo && !strstr(err.message, gg_quote(url, q)))
            abort();
    } else {
        if (userinfo)
            abort(); /* a URL with a password is never accepted */
        for (const char *p = url; *p; p++)
            if ((unsigned char)*p < 0x21 || *p == 0x7f)
                abort(); /* accepted: no spaces or control characters */
        if (url[0] == '-' || strlen(url) > 2048)
            abort();
    }
    fuzz_error_clear(&err);
    free(host);
    free(user);
}

/* --- the smart-HTTP request ---------------------------------------------------------------- */

typedef struct fake_io {
    const char *body;
    size_t len, off, chunk;
    int heads, status;
    char ctype[128];
    size_t written;
} fake_io;

static long fake_read(void *io, void *buf, size_t len)
{
    fake_io *f = io;
    size_t n = MIN(len, MIN(f->chunk, f->len - f->off));

    memcpy(buf, f->body + f->off, n);
    f->off += n;
    return (long)n;
}

static int fake_head(void *io, int status, const char *const *headers)
{
    fake_io *f = io;

    f->heads++;
    f->status = status;
    snprintf(f->ctype, sizeof f->ctype, "%s", headers && headers[0] ? headers[0] : "");
    return 0;
}

static int fake_body(void *io, const void *data, size_t len)
{
    fake_io *f = io;

    if (f->heads != 1)
        abort(); /* body bytes only after the one head */
    (void)data;
    f->written += len;
    return 0;
}

/* method \n service path \n query \n content type \n encoding \n git protocol \n container \n
 * repo \n body (param: rights, read chunk) */
static void request(uint8_t param, char *s)
{
    char *rest = s;
    char *method = field(&rest), *sp = field(&rest), *query = field(&rest);
    char *ctype = field(&rest), *enc = field(&rest), *proto = field(&rest);
    char *container = field(&rest), *repo = field(&rest);
    const char *payload = rest ? rest : "";
    fake_io f = {.body = payload, .len = strlen(payload), .chunk = 1 + (param >> 2)};
    terok_gate_http req = {
        .struct_size = sizeof req,
        .rights = param & 3,
        .container = *container ? container : "task-a",
        .repo = *repo ? repo : "proj",
        .method = method,
        .service_path = sp,
        .query = query,
        .content_type = ctype,
        .content_encoding = enc,
        .git_protocol = *proto ? proto : NULL,
        .read_body = fake_read,
        .write_head = fake_head,
        .write_body = fake_body,
        .io = &f,
    };
    terok_error err = TEROK_ERROR_INIT;
    svc sv = {0};
    const char *reason = NULL;
    int status = 0, r;

    /* classification on its own */
    if (classify(&req, &sv, &reason, &status) == 0) {
        if (!sv.name || (sv.advertise && !streq(method, "GET")) ||
            (!sv.advertise && (!streq(method, "POST") || !strstr(ctype, sv.name))))
            abort();
    } else if (!reason || reason[strlen(reason) - 1] != '\n' || status < 400 || status > 415)
        abort();
    if (protocol_is_valid(proto) &&
        (strlen(proto) > 256 || strspn(proto, "abcdefghijklmnopqrstuvwxyz"
                                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789=:._-") != strlen(proto)))
        abort();
    if (wants_v2(proto) && !strstr(proto, "version=2"))
        abort();

    /* the whole request: answered with one head, or an error; git itself never runs */
    r = gg_serve(&g, &req, &err);
    if (r == 0) {
        if (f.heads != 1 || f.status < 200 || f.status > 415)
            abort();
        if (f.status == 200) {
            /* only the push probe is answered without git: a lone flush-pkt */
            if (!streq(sp, "git-receive-pack") || !(req.rights & TEROK_GATE_WRITE) || f.len != 4 ||
                memcmp(payload, "0000", 4) != 0 || !strstr(f.ctype, "x-git-receive-pack-result") ||
                f.written)
                abort();
        }
    } else if (!err.message || f.heads > 1)
        abort();
    fuzz_error_clear(&err);
}

/* The body reader over the input: plain or gzip, in the chunks the param says. */
static void body_reader(uint8_t param, const uint8_t *data, size_t size)
{
    fake_io f = {.body = (const char *)data, .len = size, .chunk = 1 + (param >> 3) * 97};
    terok_gate_http req = {.read_body = fake_read, .io = &f};
    body *b = calloc(1, sizeof *b);
    size_t cap = 1 + (param & 7) * 300, total = 0;
    unsigned char *buf = malloc(cap);
    long n;
    int rounds = 0;

    if (!b || !buf)
        abort();
    b->req = &req;
    b->gzip = param & 0x80;
    if (b->gzip) {
        if (inflateInit2(&b->z, 15 + 16) != Z_OK)
            abort();
        b->zinit = true;
    }
    while ((n = body_next(b, buf, cap)) > 0) {
        if ((size_t)n > cap)
            abort();
        if (!b->gzip && memcmp(buf, data + total, (size_t)n) != 0)
            abort(); /* a plain body passes through unchanged */
        total += (size_t)n;
        if (++rounds > 1 << 22)
            abort(); /* it ends */
    }
    if (!b->gzip && (n != 0 || total != size))
        abort();
    if (n < 0 && n != -EBADMSG && n != -EIO)
        abort();
    if (b->zinit)
        inflateEnd(&b->z);
    free(buf);
    free(b);
}

/* --- names and backup ids ------------------------------------------------------------------- */

static void names(const char *s)
{
    terok_error err = TEROK_ERROR_INIT;
    char q[200];
    char *ref = NULL;
    int64_t t = 0;

    printable(gg_quote(s, q));
    if (gg_check_repo(s, &err) < 0 && !err.message)
        abort();
    fuzz_error_clear(&err);
    if (gg_check_container(s, &err) < 0 && !err.message)
        abort();
    fuzz_error_clear(&err);
    if (gg_check_branch(s, "branch", &err) < 0 && !err.message)
        abort();
    fuzz_error_clear(&err);
    if (parse_backup(s, &ref, &t) == 0) {
        const char *rest = s + strlen(GG_BACKUP_NS);
        if (!ref || strncmp(ref, "refs/", 5) != 0 || strncmp(ref + 5, rest, strlen(ref + 5)) != 0)
            abort(); /* the saved ref is the id's middle, under refs/ */
    }
    free(ref);
    /* restore: everything up to opening the repository (there is none) */
    if (gg_backup_restore(&g, "proj", s, &err) >= 0 || !err.message)
        abort();
    fuzz_error_clear(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s;

    if (size < 2)
        return 0;
    s = fuzz_strndup(data + 2, size - 2);
    switch (data[0] % 7) {
    case 0:
        host_key(s);
        break;
    case 1:
        cert_check(data[1], s);
        break;
    case 2:
        known_hosts(s);
        break;
    case 3:
        urls(data[1], s);
        break;
    case 4:
        request(data[1], s);
        break;
    case 5:
        body_reader(data[1], data + 2, size - 2);
        break;
    case 6:
        names(s);
        break;
    }
    free(s);
    return 0;
}

static void cleanup(void)
{
    gg_adv_free_all(&g);
    (void)gg_rmtree(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    git_repository *task = NULL;
    git_config *cfg = NULL;
    char path[128];

    (void)argc;
    (void)argv;
    (void)fuzz_host_init();
    if (git_libgit2_init() < 0 || !mkdtemp(root))
        abort();
    atexit(cleanup);
    snprintf(kh_path, sizeof kh_path, "%s/known_hosts", root);
    g.root = root;
    g.git = (char *)"/nonexistent/terok-fuzz/git"; /* a request that would run git fails */
    g.home = root;
    g.hooks = root;
    g.max_push = 1 << 20;
    g.timeout_ms = 1000;
    pthread_mutex_init(&g.cred_lock, NULL);
    pthread_mutex_init(&g.adv_lock, NULL);
    /* one task view with write rights, so requests get past the lookup to the body */
    snprintf(path, sizeof path, "%s/tasks/task-a/proj.git", root);
    if (git_repository_init(&task, path, 1) < 0 || git_repository_config(&cfg, task) < 0 ||
        git_config_set_string(cfg, "terok.rights", "write") < 0)
        abort();
    git_config_free(cfg);
    git_repository_free(task);
    return 0;
}
