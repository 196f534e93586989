/* SPDX-License-Identifier: Apache-2.0 */
/* gate.c: the core's calls into the configured gate backend, and the loan of a repo's upstream
 * credential from the vault for the one sync or forward that needs it: a token as a secret, an
 * SSH key as a signer (the private key stays in this process's secret memory; the plugin asks
 * us to sign). */
#include <ctype.h>
#include <json-c/json.h>

#include "error.h"
#include "gate.h"
#include "secret.h"
#include "sshkeys.h"
#include "vault.h"

#define NEED_OP(g, op, what)                                                                       \
    do {                                                                                           \
        if (!(g)->plugin->ops.gate.op)                                                             \
            return terok_error_set(err, -EOPNOTSUPP, "gate backend '%s' cannot %s",                \
                                   (g)->plugin->name, what);                                       \
    } while (0)

int gate_open(registry *r, uint64_t required_caps, gate *ret, terok_error *err)
{
    plugin *p;
    void *st;
    int rc = registry_get(r, TEROK_PLUGIN_KIND_GATE, required_caps, &p, &st, err);

    if (rc < 0)
        return rc;
    ret->plugin = p;
    ret->state = st;
    ret->registry = r;
    return 0;
}

bool gate_has_cap(const gate *g, uint64_t cap)
{
    return (g->plugin->ops.gate.caps & cap) == cap;
}

bool gate_repo_name_is_valid(const char *name)
{
    size_t n;

    if (!name || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
        return false;
    n = strnlen(name, 65);
    if (n > 64 || strstr(name, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    /* "x.git" would read as a repo directory name; ".lock" is git's own. */
    if (n >= 4 && streq(name + n - 4, ".git"))
        return false;
    return !(n >= 5 && streq(name + n - 5, ".lock"));
}

bool gate_branch_name_is_valid(const char *name)
{
    size_t n;

    if (!name || !*name || name[0] == '-' || name[0] == '/' || name[0] == '.')
        return false;
    n = strnlen(name, 201);
    if (n > 200 || name[n - 1] == '/' || name[n - 1] == '.' || strstr(name, "..") ||
        strstr(name, "//") || strstr(name, "/.") || strstr(name, "@{") || streq(name, "@"))
        return false;
    if (n >= 5 && streq(name + n - 5, ".lock"))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x21 || c == 0x7f || strchr("~^:?*[\\", c))
            return false;
    }
    return true;
}

static int check_repo(const char *repo, terok_error *err)
{
    if (!gate_repo_name_is_valid(repo))
        return terok_error_set(err, -EINVAL,
                               "invalid project name '%s': use [a-z0-9][a-z0-9._-]*, at most 64, "
                               "no '..'",
                               strna(repo));
    return 0;
}

static int check_container(const char *name, terok_error *err)
{
    size_t n;

    if (!name || !*name)
        return terok_error_set(err, -EINVAL, "a task (container) name is required");
    n = strnlen(name, 129);
    if (n > 128 || !isalnum((unsigned char)name[0]))
        return terok_error_set(err, -EINVAL, "invalid task name '%.128s'", name);
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
            return terok_error_set(err, -EINVAL, "invalid task name '%.128s'", name);
    return 0;
}

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        int _c = (expr);                                                                           \
        if (_c < 0)                                                                                \
            return _c;                                                                             \
    } while (0)

static void forget_credential(gate *g, const char *repo)
{
    terok_gate_credential c = {.struct_size = sizeof c, .repo = repo};

    (void)gate_ctl(g, TEROK_GATE_CTL_CREDENTIAL, &c, NULL);
}

/* What one sync/forward borrowed: an SSH key stays here, in a secret, and the plugin gets only
 * its public blob and loan_sign(); the key is wiped when the call is over. */
typedef struct gate_loan {
    bool ssh;
    sshkey key;
    uint8_t blob[SSHKEY_BLOB_BYTES];
} gate_loan;

static void loan_done(gate_loan *l)
{
    if (l->ssh)
        sshkey_done(&l->key);
    *l = (gate_loan){0};
}

static int loan_sign(void *signer, const uint8_t *data, size_t len, uint8_t *sig, size_t sig_cap,
                     size_t *ret_len)
{
    gate_loan *l = signer;
    int r;

    if (!l || !l->ssh || !data || !sig || !ret_len)
        return -EINVAL;
    if (sig_cap < SSHKEY_SIG_BYTES)
        return -ENOBUFS;
    r = sshkey_sign(l->key.seed, l->key.pk, data, len, sig, NULL);
    if (r < 0)
        return r;
    *ret_len = SSHKEY_SIG_BYTES;
    return 0;
}

bool gate_url_is_ssh(const char *url)
{
    const char *colon, *slash;

    if (!url)
        return false;
    if (strneq(url, "ssh://", 6) || strneq(url, "ssh+git://", 10) || strneq(url, "git+ssh://", 10))
        return true;
    /* scp-like [user@]host:path */
    if (url[0] == '/' || strstr(url, "://"))
        return false;
    colon = strchr(url, ':');
    slash = strchr(url, '/');
    return colon && colon > url && (!slash || colon < slash);
}

static int no_info(void *ud, const sshkey_info *k)
{
    (void)ud;
    (void)k;
    return 0;
}

/* Lend the vault entry `name` to the plugin as repo's credential for an upstream at url (NULL:
 * not known here); returns 1 when lent. A token is lent as a secret; an SSH key as a signer
 * backed by *loan, which the caller keeps until it forgets the credential. */
static int lend_named(gate *g, const char *repo, const char *name, const char *url, gate_loan *loan,
                      terok_error *err)
{
    terok_secret *secret = NULL;
    terok_gate_credential c = {.struct_size = sizeof c, .repo = repo};
    vault v;
    int r;

    r = vault_open(g->registry, 0, &v, err);
    if (r < 0)
        return terok_error_prefix(err, "project '%s' needs credential '%s'", repo, name);
    r = sshkeys_find(&v, name, no_info, NULL, err);
    if (r == -EMEDIUMTYPE || r == -ENOENT) {
        /* not an SSH key (or no entry: the vault names what is missing) */
        terok_error_clear(err);
        r = vault_get(&v, name, &secret, err);
        if (r < 0)
            return terok_error_prefix(err, "project '%s' needs credential '%s'", repo, name);
        if (url && gate_url_is_ssh(url)) {
            terok_secret_free(secret);
            return terok_error_set(err, -EINVAL,
                                   "credential '%s' is not an SSH key: an ssh:// upstream "
                                   "authenticates with an SSH key from the vault ('terok-sandbox "
                                   "ssh add' or 'ssh import')",
                                   name);
        }
        c.secret = secret;
    } else if (r < 0) {
        return terok_error_prefix(err, "project '%s' needs credential '%s'", repo, name);
    } else {
        if (url && !gate_url_is_ssh(url))
            return terok_error_set(err, -EINVAL,
                                   "credential '%s' is an SSH key: it authenticates ssh:// "
                                   "upstreams only (for https, store a token)",
                                   name);
        r = sshkeys_load(&v, name, &loan->key, err);
        if (r < 0)
            return terok_error_prefix(err, "project '%s' needs credential '%s'", repo, name);
        loan->ssh = true;
        sshkey_pub_blob(loan->key.pk, loan->blob);
        c.ssh_public_key = loan->blob;
        c.ssh_public_key_len = sizeof loan->blob;
        c.ssh_sign = loan_sign;
        c.ssh_signer = loan;
    }
    r = gate_ctl(g, TEROK_GATE_CTL_CREDENTIAL, &c, err);
    terok_secret_free(secret);
    if (r < 0) {
        loan_done(loan);
        return terok_error_prefix(err, "lending credential '%s'", name);
    }
    return 1;
}

struct cred_find {
    const char *repo;
    bool found;
    char *credential;
    char *upstream;
};

static int cred_find_cb(void *ud, const char *json)
{
    struct cred_find *f = ud;
    json_object *o = json_tokener_parse(json), *v;

    if (!o)
        return 0;
    if (json_object_object_get_ex(o, "name", &v) && streq(json_object_get_string(v), f->repo)) {
        f->found = true;
        if (json_object_object_get_ex(o, "credential", &v) &&
            json_object_is_type(v, json_type_string))
            f->credential = strdup(json_object_get_string(v));
        if (json_object_object_get_ex(o, "upstream", &v) &&
            json_object_is_type(v, json_type_string))
            f->upstream = strdup(json_object_get_string(v));
    }
    json_object_put(o);
    return 0;
}

static int find_credential(gate *g, const char *repo, struct cred_find *f, terok_error *err)
{
    *f = (struct cred_find){.repo = repo};
    CHECK(check_repo(repo, err));
    CHECK(gate_repo_list(g, cred_find_cb, f, err));
    if (!f->found)
        return terok_error_set(err, -ENOENT,
                               "gate: no project '%s' (see 'terok-sandbox gate list')", repo);
    return 0;
}

int gate_repo_credential(gate *g, const char *repo, char **ret, terok_error *err)
{
    struct cred_find f;
    int r = find_credential(g, repo, &f, err);

    free(f.upstream);
    if (r < 0) {
        free(f.credential);
        return r;
    }
    *ret = f.credential;
    return 0;
}

/* Lend the repo's credential (if it names one) to the plugin; returns 1 when lent. */
static int lend_credential(gate *g, const char *repo, gate_loan *loan, terok_error *err)
{
    struct cred_find f;
    int r = find_credential(g, repo, &f, err);

    if (r >= 0)
        r = f.credential ? lend_named(g, repo, f.credential, f.upstream, loan, err) : 0;
    free(f.credential);
    free(f.upstream);
    return r;
}

int gate_repo_create(gate *g, const terok_gate_repo_spec *spec, terok_error *err)
{
    gate_loan loan = {0};
    int r, lent = 0;

    NEED_OP(g, repo_create, "create repositories");
    if (!spec)
        return terok_error_set(err, -EINVAL, "no repository spec");
    CHECK(check_repo(spec->name, err));
    if (spec->upstream_url && !gate_has_cap(g, TEROK_GATE_CAP_UPSTREAM))
        return terok_error_set(err, -EOPNOTSUPP, "gate backend '%s' has no upstream support",
                               g->plugin->name);
    if (spec->branch && !gate_branch_name_is_valid(spec->branch))
        return terok_error_set(err, -EINVAL, "invalid branch name '%.200s'", spec->branch);
    if (spec->credential && !vault_name_is_valid(spec->credential))
        return terok_error_set(err, -EINVAL, "invalid credential name '%.128s'", spec->credential);
    if (spec->upstream_url && spec->credential)
        CHECK(lent = lend_named(g, spec->name, spec->credential, spec->upstream_url, &loan, err));
    r = g->plugin->ops.gate.repo_create(g->state, spec, err);
    if (lent)
        forget_credential(g, spec->name);
    loan_done(&loan);
    return r < 0 ? terok_error_prefix(err, "creating '%s'", spec->name) : r;
}

int gate_repo_delete(gate *g, const char *repo, terok_error *err)
{
    int r;

    NEED_OP(g, repo_delete, "delete repositories");
    CHECK(check_repo(repo, err));
    r = g->plugin->ops.gate.repo_delete(g->state, repo, err);
    if (r == -ENOENT)
        return r;
    return r < 0 ? terok_error_prefix(err, "deleting '%s'", repo) : r;
}

int gate_repo_list(gate *g, terok_gate_json_cb cb, void *userdata, terok_error *err)
{
    int r;

    NEED_OP(g, repo_list, "list repositories");
    r = g->plugin->ops.gate.repo_list(g->state, cb, userdata, err);
    return r < 0 ? terok_error_prefix(err, "listing repositories") : r;
}

int gate_sync(gate *g, const char *repo, terok_gate_json_cb cb, void *userdata, terok_error *err)
{
    gate_loan loan = {0};
    int r, lent;

    NEED_OP(g, sync, "sync from an upstream");
    CHECK(check_repo(repo, err));
    CHECK(lent = lend_credential(g, repo, &loan, err));
    r = g->plugin->ops.gate.sync(g->state, repo, cb, userdata, err);
    if (lent)
        forget_credential(g, repo);
    loan_done(&loan);
    return r < 0 ? terok_error_prefix(err, "syncing '%s'", repo) : r;
}

int gate_pending_list(gate *g, const char *repo, terok_gate_json_cb cb, void *userdata,
                      terok_error *err)
{
    int r;

    NEED_OP(g, pending_list, "list pending upstream changes");
    CHECK(check_repo(repo, err));
    r = g->plugin->ops.gate.pending_list(g->state, repo, cb, userdata, err);
    return r < 0 ? terok_error_prefix(err, "pending changes of '%s'", repo) : r;
}

int gate_pending_apply(gate *g, const char *repo, const char *ref, terok_error *err)
{
    int r;

    NEED_OP(g, pending_apply, "apply pending upstream changes");
    CHECK(check_repo(repo, err));
    if (!ref || !*ref)
        return terok_error_set(err, -EINVAL, "a branch to apply is required");
    r = g->plugin->ops.gate.pending_apply(g->state, repo, ref, err);
    return r < 0 ? terok_error_prefix(err, "applying '%.200s' to '%s'", ref, repo) : r;
}

int gate_grant(gate *g, const char *container, const char *repo, uint32_t rights, terok_error *err)
{
    int r;

    NEED_OP(g, grant, "grant access");
    CHECK(check_container(container, err));
    CHECK(check_repo(repo, err));
    if (rights != TEROK_GATE_READ && rights != (TEROK_GATE_READ | TEROK_GATE_WRITE) &&
        rights != TEROK_GATE_WRITE)
        return terok_error_set(err, -EINVAL, "invalid gate rights %u", rights);
    r = g->plugin->ops.gate.grant(g->state, container, repo, rights, err);
    return r < 0 ? terok_error_prefix(err, "granting '%s' to '%s'", repo, container) : r;
}

int gate_revoke(gate *g, const char *container, const char *repo, terok_error *err)
{
    int r;

    NEED_OP(g, revoke, "revoke access");
    CHECK(check_container(container, err));
    CHECK(check_repo(repo, err));
    r = g->plugin->ops.gate.revoke(g->state, container, repo, err);
    return r < 0 ? terok_error_prefix(err, "revoking '%s' from '%s'", repo, container) : r;
}

int gate_authorize(gate *g, const char *container, const char *repo, uint32_t operation,
                   uint32_t *ret_decision, terok_error *err)
{
    uint32_t d = TEROK_DECISION_DENY;
    int r;

    *ret_decision = TEROK_DECISION_DENY;
    NEED_OP(g, authorize, "authorize");
    CHECK(check_container(container, err));
    CHECK(check_repo(repo, err));
    r = g->plugin->ops.gate.authorize(g->state, container, repo, operation, &d, err);
    if (r < 0)
        return terok_error_prefix(err, "authorizing '%s' for '%s'", repo, container);
    *ret_decision = d;
    return r;
}

int gate_serve(gate *g, const terok_gate_http *req, terok_error *err)
{
    NEED_OP(g, serve, "serve smart HTTP");
    if (!req)
        return terok_error_set(err, -EINVAL, "no request");
    CHECK(check_container(req->container, err));
    CHECK(check_repo(req->repo, err));
    return g->plugin->ops.gate.serve(g->state, req, err);
}

int gate_review(gate *g, const char *container, const char *repo, terok_gate_branch_cb cb,
                void *userdata, terok_error *err)
{
    int r;

    NEED_OP(g, review, "review pushed work");
    CHECK(check_container(container, err));
    CHECK(check_repo(repo, err));
    r = g->plugin->ops.gate.review(g->state, container, repo, cb, userdata, err);
    return r < 0 ? terok_error_prefix(err, "reviewing '%s' of '%s'", repo, container) : r;
}

int gate_diff(gate *g, const char *container, const char *repo, const char *branch,
              terok_gate_text_cb cb, void *userdata, terok_error *err)
{
    int r;

    NEED_OP(g, diff, "diff pushed work");
    CHECK(check_container(container, err));
    CHECK(check_repo(repo, err));
    if (!gate_branch_name_is_valid(branch))
        return terok_error_set(err, -EINVAL, "invalid branch name '%.200s'", strna(branch));
    r = g->plugin->ops.gate.diff(g->state, container, repo, branch, cb, userdata, err);
    return r < 0 ? terok_error_prefix(err, "diff of '%s' in '%s'", branch, container) : r;
}

int gate_forward(gate *g, const char *container, const char *repo, const char *branch,
                 const char *to_branch, uint32_t flags, terok_error *err)
{
    gate_loan loan = {0};
    int r, lent;

    NEED_OP(g, forward, "forward to an upstream");
    CHECK(check_container(container, err));
    CHECK(check_repo(repo, err));
    if (!gate_branch_name_is_valid(branch))
        return terok_error_set(err, -EINVAL, "invalid branch name '%.200s'", strna(branch));
    if (to_branch && !gate_branch_name_is_valid(to_branch))
        return terok_error_set(err, -EINVAL, "invalid upstream branch name '%.200s'", to_branch);
    CHECK(lent = lend_credential(g, repo, &loan, err));
    r = g->plugin->ops.gate.forward(g->state, container, repo, branch, to_branch, flags, err);
    if (lent)
        forget_credential(g, repo);
    loan_done(&loan);
    return r < 0 ? terok_error_prefix(err, "forwarding '%s' of '%s'", branch, container) : r;
}

int gate_backups_list(gate *g, const char *repo, terok_gate_json_cb cb, void *userdata,
                      terok_error *err)
{
    int r;

    NEED_OP(g, backups_list, "list backups");
    CHECK(check_repo(repo, err));
    r = g->plugin->ops.gate.backups_list(g->state, repo, cb, userdata, err);
    return r < 0 ? terok_error_prefix(err, "backups of '%s'", repo) : r;
}

int gate_backup_restore(gate *g, const char *repo, const char *backup, terok_error *err)
{
    int r;

    NEED_OP(g, backup_restore, "restore backups");
    CHECK(check_repo(repo, err));
    if (!backup || !*backup)
        return terok_error_set(err, -EINVAL, "a backup to restore is required");
    r = g->plugin->ops.gate.backup_restore(g->state, repo, backup, err);
    return r < 0 ? terok_error_prefix(err, "restoring '%.300s' in '%s'", backup, repo) : r;
}

int gate_backups_prune(gate *g, const char *repo, int64_t older_than_seconds, uint64_t *ret_pruned,
                       terok_error *err)
{
    terok_gate_prune p = {
        .struct_size = sizeof p, .repo = repo, .older_than_seconds = older_than_seconds};
    int r;

    CHECK(check_repo(repo, err));
    if (older_than_seconds < 0)
        return terok_error_set(err, -EINVAL, "a negative age");
    r = gate_ctl(g, TEROK_GATE_CTL_BACKUPS_PRUNE, &p, err);
    if (r < 0)
        return terok_error_prefix(err, "pruning backups of '%s'", repo);
    if (ret_pruned)
        *ret_pruned = p.ret_pruned;
    return r;
}

int gate_ctl(gate *g, uint32_t op, void *arg, terok_error *err)
{
    NEED_OP(g, ctl, "do that");
    return g->plugin->ops.gate.ctl(g->state, op, arg, err);
}
