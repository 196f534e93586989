/* SPDX-License-Identifier: Apache-2.0 */
/* The clearance daemon's side of its control protocol (core/src/clearance/clearance-daemon.c,
 * #included for its static handlers): requests as ctl hands them over (one JSON object each:
 * ping, status, attach, detach, forget, pending, verdict, stop), the blocked-connection events
 * the shield delivers, the pending queue they fill, the verdict's destination syntax (an id,
 * "1.2.3.4:443", "[2001:db8::1]:443", "example.com") and the shield audit rows.
 *
 * Input: a JSON array of items (or one object). An item with an "event" object injects events
 * ({"container", "ip", "port", "proto", "domain", "n"}: n events, the address's last byte
 * counting up); any other object is a request to on_ctl(). The daemon around them is real but
 * for its shield, a stub that records allow/deny (a target containing "fail" fails) and has no
 * event source to attach; its store is a private one of ours (/dev/shm when there is one)
 * holding containers c1, c2 and web-1.
 *
 * What must hold: a request is answered with {"ok": true, ...} and no error, or refused with
 * an error message; a reply fits one ctl message; a verdict answers at least one request and
 * leaves none that it names; a container keeps at most CLEARANCE_PENDING_MAX requests, ids
 * unique and in arrival order; every pending request can be named by its id and by its
 * address and port; audit rows read back. */
#include "clearance/clearance-daemon.c"

#include "daemon/evloop.h"
#include "fuzz.h"
#include "paths.h"

#define MAX_ITEMS 64
#define MAX_REPEAT 300

static evloop *loop;
static store *st;
static char state_dir[64];
static unsigned n_allowed, n_denied;

static int stub_allow(void *state, const char *container, const char *target, int64_t duration_ms,
                      terok_error *err)
{
    if (strstr(target, "fail"))
        return terok_error_set(err, -EIO, "stub shield refuses '%s'", target);
    n_allowed++;
    return 0;
}

static int stub_deny(void *state, const char *container, const char *target, terok_error *err)
{
    if (strstr(target, "fail"))
        return terok_error_set(err, -EIO, "stub shield refuses '%s'", target);
    n_denied++;
    return 0;
}

static int stub_ctl(void *state, uint32_t op, void *arg, terok_error *err)
{
    if (op == TEROK_SHIELD_CTL_EVENTS_OPEN)
        return terok_error_set(err, -ESRCH, "container '%s' is not running",
                               ((terok_shield_ctl_events *)arg)->container);
    return terok_error_set(err, -EOPNOTSUPP, "stub shield: no ctl %u", op);
}

static struct terok_plugin stub = {
    .label = (char *)"shield-stub",
    .name = (char *)"stub",
    .kind = TEROK_PLUGIN_KIND_SHIELD,
    .ops.shield = {.struct_size = sizeof(terok_shield_ops),
                   .caps = TEROK_SHIELD_CAP_EVENTS | TEROK_SHIELD_CAP_LIVE | TEROK_SHIELD_CAP_TIMED,
                   .allow = stub_allow,
                   .deny = stub_deny,
                   .ctl = stub_ctl},
};

static void cleanup(void)
{
    store_close(st);
    evloop_free(loop);
    for (const char *const *f =
             (const char *const[]){"state.db", "state.db-wal", "state.db-shm", NULL};
         *f; f++) {
        char p[128];

        snprintf(p, sizeof p, "%s/%s", state_dir, *f);
        (void)unlink(p);
    }
    (void)rmdir(state_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    terok_error err = TEROK_ERROR_INIT;

    log_set_max_level(LOG_CRIT);
    snprintf(state_dir, sizeof state_dir, "%s/fuzz-clearance-XXXXXX", base);
    if (!mkdtemp(state_dir) || store_open(state_dir, &st, &err) < 0 || evloop_new(&loop) < 0)
        abort();
    atexit(cleanup);
    for (const char *const *n = (const char *const[]){"c1", "c2", "web-1", NULL}; *n; n++) {
        container_rec rec = {.name = (char *)*n,
                             .image = (char *)"img",
                             .runtime = (char *)"null",
                             .spec_json = (char *)"{}"};

        if (store_container_add(st, &rec, &err) < 0)
            abort();
    }
    return 0;
}

static size_t reply_size(json_object *o)
{
    const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

    if (!t)
        abort();
    return strlen(t);
}

/* How an operator names a pending request by address: "ip", "ip:port", "[v6]:port". */
static void dest_text(const pending *p, char *buf, size_t n)
{
    bool v6 = strchr(p->ip, ':') != NULL;

    if (!p->port)
        snprintf(buf, n, "%s", p->ip);
    else
        snprintf(buf, n, "%s%s%s:%u", v6 ? "[" : "", p->ip, v6 ? "]" : "", p->port);
}

static void check_watch(const watch *w)
{
    if (w->n_pend > CLEARANCE_PENDING_MAX)
        abort();
    for (size_t i = 0; i < w->n_pend; i++) {
        const pending *p = &w->pend[i];
        terok_error err = TEROK_ERROR_INIT;
        struct in6_addr a;
        char text[INET6_ADDRSTRLEN + 16];
        dest_ref ref;

        if (p->id == 0 || (i > 0 && p->id <= w->pend[i - 1].id) || p->count < 1)
            abort();
        /* by id: this one request and no other */
        snprintf(text, sizeof text, "%llu", (unsigned long long)p->id);
        if (parse_dest(text, &ref, &err) < 0)
            abort();
        for (size_t k = 0; k < w->n_pend; k++)
            if (dest_matches(&ref, &w->pend[k]) != (k == i))
                abort();
        /* only addresses and host names are kept from what the shield reports */
        if (inet_pton(strchr(p->ip, ':') ? AF_INET6 : AF_INET, p->ip, &a) != 1) {
            fprintf(stderr, "pending address '%s' is not an address\n", p->ip);
            abort();
        }
        if (p->domain && !domain_is_sane(p->domain))
            abort();
        /* by address (what `clearance pending` shows) */
        dest_text(p, text, sizeof text);
        if (parse_dest(text, &ref, &err) < 0) {
            fprintf(stderr, "pending '%s' cannot be named: %s\n", text, err.message);
            abort();
        }
        if (!dest_matches(&ref, p)) {
            fprintf(stderr, "'%s' does not match its own request\n", text);
            abort();
        }
    }
}

static void inject(clearance_daemon *d, json_object *e)
{
    json_object *v;
    const char *name = "c1", *ip = "", *domain = NULL;
    int64_t n = 1, port = 0, proto = IPPROTO_TCP, t_ms = 1700000000000;
    struct in6_addr a;
    bool v6, is_ip;
    watch *w;

    if (json_object_object_get_ex(e, "container", &v))
        name = json_object_get_string(v);
    if (json_object_object_get_ex(e, "ip", &v))
        ip = json_object_get_string(v);
    if (json_object_object_get_ex(e, "domain", &v) && !json_object_is_type(v, json_type_null))
        domain = json_object_get_string(v);
    if (json_object_object_get_ex(e, "port", &v))
        port = json_object_get_int64(v);
    if (json_object_object_get_ex(e, "proto", &v))
        proto = json_object_get_int64(v);
    if (json_object_object_get_ex(e, "time_ms", &v))
        t_ms = json_object_get_int64(v);
    if (json_object_object_get_ex(e, "n", &v))
        n = MIN(MAX(json_object_get_int64(v), (int64_t)1), (int64_t)MAX_REPEAT);
    /* the shield reports running containers only, by their valid names */
    if (!container_name_is_valid(name) || !(w = watch_get(d, name)))
        return;
    v6 = strchr(ip, ':') != NULL;
    is_ip = inet_pton(v6 ? AF_INET6 : AF_INET, ip, &a) == 1;
    for (int64_t i = 0; i < (is_ip ? n : 1); i++) {
        char text[INET6_ADDRSTRLEN];
        terok_shield_event ev = {
            .struct_size = sizeof ev,
            .protocol = (uint32_t)proto,
            .container = name,
            /* the shield formats an address; the daemon checks what comes */
            .dest_ip = is_ip ? inet_ntop(v6 ? AF_INET6 : AF_INET, &a, text, sizeof text) : ip,
            .dest_port = (uint16_t)port, /* a TCP/UDP/SCTP port, as every shield reports */
            .domain = domain,
            .time_ns = t_ms * 1000000,
        };

        uint64_t invalid = w->invalid, events = w->events;
        bool sane = is_ip && (uint32_t)proto <= 255;

        on_event(w, &ev);
        /* an event that names no destination is dropped and counted, never queued */
        if (w->invalid != invalid + !sane || (!sane && w->events != events))
            abort();
        a.s6_addr[v6 ? 15 : 3]++;
    }
}

/* A verdict answered every request it names (clearance-daemon.c, apply_verdict). */
static void check_verdict_done(clearance_daemon *d, json_object *req)
{
    json_object *c, *dest;
    terok_error err = TEROK_ERROR_INIT;
    dest_ref ref;
    watch *w;

    if (!json_object_object_get_ex(req, "container", &c) ||
        !json_object_object_get_ex(req, "dest", &dest) ||
        parse_dest(json_object_get_string(dest), &ref, &err) < 0)
        abort();
    if (ref.id || !(w = watch_find(d, json_object_get_string(c))))
        return;
    for (size_t i = 0; i < w->n_pend; i++)
        if (dest_matches(&ref, &w->pend[i]))
            abort();
}

static void request(clearance_daemon *d, json_object *req)
{
    struct ucred peer = {.pid = 1, .uid = 1000, .gid = 1000};
    terok_error err = TEROK_ERROR_INIT;
    json_object *reply = on_ctl(d, &peer, req, &err), *ok, *op, *n;

    if (!reply) {
        if (!err.message || err.code >= 0)
            abort();
        terok_error_clear(&err);
        return;
    }
    if (err.message || err.code || !json_object_object_get_ex(reply, "ok", &ok) ||
        !json_object_get_boolean(ok))
        abort();
    if (reply_size(reply) > CTL_MAX_MESSAGE) {
        fprintf(stderr, "a reply of %zu bytes is more than one ctl message\n", reply_size(reply));
        abort();
    }
    if (json_object_object_get_ex(req, "op", &op) && streq(json_object_get_string(op), "verdict")) {
        if (!json_object_object_get_ex(reply, "requests", &n) || json_object_get_int64(n) < 1)
            abort();
        check_verdict_done(d, req);
    }
    json_object_put(reply);
}

static int audit_row(void *userdata, const shield_audit_row *r)
{
    json_object *o = shield_audit_row_json(r);

    if (!o || !r->container || !r->kind)
        abort();
    json_object_put(o);
    (*(size_t *)userdata)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clearance_daemon d = {.loop = loop, .db = store_sqlite(st), .st = st, .sh = {&stub, NULL}};
    terok_error err = TEROK_ERROR_INIT;
    json_tokener *tok = json_tokener_new_ex(32);
    json_object *in, *reply;
    size_t n_items, rows = 0;

    if (!tok)
        abort();
    in = json_tokener_parse_ex(tok, (const char *)data, (int)MIN(size, (size_t)INT32_MAX));
    json_tokener_free(tok);
    if (!in)
        return 0;
    n_items = json_object_is_type(in, json_type_array) ? json_object_array_length(in) : 1;
    for (size_t i = 0; i < MIN(n_items, (size_t)MAX_ITEMS); i++) {
        json_object *item = json_object_is_type(in, json_type_array)
                                ? json_object_array_get_idx(in, i)
                                : in,
                    *e;

        /* ctl hands over objects only */
        if (!json_object_is_type(item, json_type_object))
            continue;
        if (json_object_object_get_ex(item, "event", &e) &&
            json_object_is_type(e, json_type_object))
            inject(&d, e);
        else
            request(&d, item);
    }
    for (size_t i = 0; i < d.n_w; i++)
        check_watch(d.w[i]);
    reply = pending_reply(&d, NULL);
    if (reply_size(reply) > CTL_MAX_MESSAGE) {
        fprintf(stderr, "the pending reply of %zu bytes is more than one ctl message\n",
                reply_size(reply));
        abort();
    }
    json_object_put(reply);
    json_object_put(in);

    /* what clearance_daemon_run() does on the way out */
    while (d.n_w > 0)
        watch_drop(&d, d.w[0]);
    free(d.w);
    flush_audit(&d);
    if (d.n_q)
        abort(); /* the audit is writable: nothing stays queued */
    free(d.q);
    if (shield_audit_list(d.db, &(shield_audit_query){0}, audit_row, &rows, &err) < 0)
        abort();
    if (sqlite3_exec(d.db, "DELETE FROM shield_events", NULL, NULL, NULL) != SQLITE_OK)
        abort();
    return 0;
}
