/* SPDX-License-Identifier: Apache-2.0 */
/* test-gate-route.c: the gate daemon's routing and Basic-auth rules as pure functions: every
 * smart-HTTP endpoint and nothing else, raw paths never decoded, the token taken from the user
 * name or the password. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <sodium.h>

#include "gate-serve/gate-route.h"
#include "util/macro.h"

typedef struct route_case {
    char method[8];
    char path[80];
    char service[24]; /* "" = no service argument */
    int n_args;
    int status;
    char repo[16];
    int svc;
} route_case;

static const route_case route_cases[] = {
    {"GET", "/demo.git/info/refs", "git-upload-pack", 1, 0, "demo", GATE_SVC_UPLOAD_PACK},
    {"GET", "/demo.git/info/refs", "git-receive-pack", 1, 0, "demo", GATE_SVC_RECEIVE_PACK},
    {"POST", "/demo.git/git-upload-pack", "", 0, 0, "demo", GATE_SVC_UPLOAD_PACK},
    {"POST", "/my-proj.v2_x.git/git-receive-pack", "", 0, 0, "my-proj.v2_x", GATE_SVC_RECEIVE_PACK},
    {"GET", "/demo.git/info/refs", "", 0, 404, "", 0},
    {"GET", "/demo.git/info/refs", "git-upload-pack", 2, 404, "", 0},
    {"GET", "/demo.git/info/refs", "upload-pack", 1, 404, "", 0},
    {"GET", "/demo.git/HEAD", "", 0, 404, "", 0},
    {"GET", "/demo.git/objects/info/packs", "", 0, 404, "", 0},
    {"GET", "/demo.git/info/refs/", "git-upload-pack", 1, 404, "", 0},
    {"GET", "/demo/info/refs", "git-upload-pack", 1, 404, "", 0},
    {"GET", "/.git/info/refs", "git-upload-pack", 1, 404, "", 0},
    {"GET", "/-x.git/info/refs", "git-upload-pack", 1, 404, "", 0},
    {"GET", "/a.git.git/info/refs", "git-upload-pack", 1, 404, "", 0},
    {"GET", "/a.lock.git/info/refs", "git-upload-pack", 1, 404, "", 0},
    {"GET", "/A.git/info/refs", "git-upload-pack", 1, 404, "", 0},
    {"GET", "/a/b.git/info/refs", "git-upload-pack", 1, 404, "", 0},
    {"GET", "/a..b.git/info/refs", "git-upload-pack", 1, 404, "", 0},
    {"GET", "/../demo.git/info/refs", "git-upload-pack", 1, 400, "", 0},
    {"GET", "/demo.git/./info/refs", "git-upload-pack", 1, 400, "", 0},
    {"GET", "/demo.git/..", "", 0, 400, "", 0},
    {"GET", "//demo.git/info/refs", "git-upload-pack", 1, 400, "", 0},
    {"GET", "/demo.git//info/refs", "git-upload-pack", 1, 400, "", 0},
    {"GET", "/%64emo.git/info/refs", "git-upload-pack", 1, 400, "", 0},
    {"GET", "/demo.git\\info\\refs", "git-upload-pack", 1, 400, "", 0},
    {"GET", "demo.git/info/refs", "git-upload-pack", 1, 400, "", 0},
    {"GET", "/demo.git/info/refs#x", "git-upload-pack", 1, 400, "", 0},
    {"GET", "/demo.git/info/r fs", "git-upload-pack", 1, 400, "", 0},
    {"GET", "/demo.git/git-upload-pack", "", 0, 405, "", 0},
    {"HEAD", "/demo.git/info/refs", "git-upload-pack", 1, 405, "", 0},
    {"POST", "/demo.git/info/refs", "git-upload-pack", 1, 405, "", 0},
    {"PUT", "/demo.git/git-receive-pack", "", 0, 405, "", 0},
    {"POST", "/demo.git/git-upload-pack", "git-upload-pack", 1, 400, "", 0},
};

ParameterizedTestParameters(gate_route, parse)
{
    return cr_make_param_array(route_case, route_cases, ELEMENTSOF(route_cases));
}

ParameterizedTest(const route_case *c, gate_route, parse)
{
    gate_route r;
    int st = gate_route_parse(c->method, c->path, *c->service ? c->service : NULL,
                              (size_t)c->n_args, &r);

    cr_assert_eq(st, c->status, "%s %s: %d, want %d", c->method, c->path, st, c->status);
    if (st == 0) {
        cr_assert_str_eq(r.repo, c->repo);
        cr_assert_eq((int)r.service, c->svc);
    }
}

static void b64(const char *in, char *out, size_t cap)
{
    cr_assert(sodium_init() >= 0);
    sodium_bin2base64(out, cap, (const unsigned char *)in, strlen(in),
                      sodium_base64_VARIANT_ORIGINAL);
}

Test(gate_route, basic_token_from_user_or_password)
{
    char hdr[256], enc[200], tok[80];

    b64("terok-g-abc:", enc, sizeof enc);
    snprintf(hdr, sizeof hdr, "Basic %s", enc);
    cr_assert_eq(gate_route_basic_token(hdr, tok, sizeof tok), 11);
    cr_assert_str_eq(tok, "terok-g-abc");

    b64("x-access-token:terok-g-def", enc, sizeof enc);
    snprintf(hdr, sizeof hdr, "basic  %s ", enc);
    cr_assert_eq(gate_route_basic_token(hdr, tok, sizeof tok), 11);
    cr_assert_str_eq(tok, "terok-g-def");

    b64("nobody", enc, sizeof enc); /* no colon: the whole is the user name */
    snprintf(hdr, sizeof hdr, "Basic %s", enc);
    cr_assert_eq(gate_route_basic_token(hdr, tok, sizeof tok), 6);

    b64(":", enc, sizeof enc);
    snprintf(hdr, sizeof hdr, "Basic %s", enc);
    cr_assert_eq(gate_route_basic_token(hdr, tok, sizeof tok), 0);
    cr_assert_eq(gate_route_basic_token(NULL, tok, sizeof tok), 0);
}

Test(gate_route, malformed_authorization)
{
    char tok[80], hdr[300], enc[250], big[120];

    cr_assert_eq(gate_route_basic_token("Bearer terok-g-abc", tok, sizeof tok), -EINVAL);
    cr_assert_eq(gate_route_basic_token("Basic", tok, sizeof tok), -EINVAL);
    cr_assert_eq(gate_route_basic_token("Basic ", tok, sizeof tok), -EINVAL);
    cr_assert_eq(gate_route_basic_token("Basic !!!!", tok, sizeof tok), -EINVAL);
    cr_assert_eq(gate_route_basic_token("BasicdGVyb2s=", tok, sizeof tok), -EINVAL);
    /* a NUL inside the decoded credentials */
    cr_assert_eq(gate_route_basic_token("Basic YQBiOmM=", tok, sizeof tok), -EINVAL);
    /* "dGVyb2stZy3//zo=" with bytes >= 0x80 for the '/', which libsodium 1.0.18 decodes as '/' */
    cr_assert_eq(gate_route_basic_token("Basic dGVyb2stZy3\xff\xffzo=", tok, sizeof tok), -EINVAL);
    /* longer than the caller's buffer */
    memset(big, 'a', sizeof big - 2);
    big[sizeof big - 2] = ':';
    big[sizeof big - 1] = 0;
    b64(big, enc, sizeof enc);
    snprintf(hdr, sizeof hdr, "Basic %s", enc);
    cr_assert_eq(gate_route_basic_token(hdr, tok, sizeof tok), -EINVAL);
}
