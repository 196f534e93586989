/* SPDX-License-Identifier: Apache-2.0 */
/* config-schema.c: the keys the core itself declares (DESIGN §5): [core], the backend choice of
 * each plugin kind, [container] hardening defaults used by `run`, and [route.NAME] broker
 * routes. Plugin sections are declared by the plugins (plugin-keys.c). Never prints. */
#include <ctype.h>

#include "config-internal.h"
#include "terok-build-config.h"

#define KEY(n, t, d, h)                                                                            \
    {                                                                                              \
        n, t, d, h                                                                                 \
    }

static const config_key core_keys[] = {
    KEY("plugin-dir", "path", TEROK_PLUGIN_DIR, "Directory the backend plugins are loaded from"),
    KEY("log-level", "enum:err|warning|notice|info|debug", "notice",
        "Most verbose priority logged"),
};

/* Backend names: [a-z0-9-]+ or "none" (switched off); the runtime cannot be switched off,
 * which config-validate.c checks. */
static const config_key runtime_keys[] = {
    KEY("backend", "backend", "podman", "Runtime plugin: loads <plugin-dir>/runtime-NAME.so"),
};
static const config_key vault_keys[] = {
    KEY("backend", "backend", "sqlite", "Vault plugin: loads <plugin-dir>/vault-NAME.so"),
    KEY("ca-file", "path", "",
        "Extra CA bundle (PEM) the broker trusts for upstream TLS, besides the system's"),
    KEY("workers", "int:0:64", "0",
        "Broker worker threads, each with its own event loop on the same sockets; 0: one per "
        "online CPU"),
};
static const config_key gate_keys[] = {
    KEY("backend", "backend", "git", "Gate plugin: loads <plugin-dir>/gate-NAME.so"),
};
static const config_key shield_keys[] = {
    KEY("backend", "backend", "nft",
        "Shield plugin: loads <plugin-dir>/shield-NAME.so; 'none' runs containers unshielded"),
    KEY("profiles", "string", "",
        "Shield profiles of every run (comma or space separated); unset: the backend's default"),
    KEY("dns-resolver", "string", "",
        "The one resolver address containers may query on port 53; unset: none"),
};
static const config_key clearance_keys[] = {
    KEY("backend", "backend", "dbus", "Clearance plugin: loads <plugin-dir>/clearance-NAME.so"),
};

static const config_key container_keys[] = {
    KEY("pids-limit", "int:1:4194304", "512", "Maximum number of processes in a container"),
    KEY("memory", "size:6M:", "2G", "Memory limit (bytes, or with a K/M/G/T suffix)"),
    KEY("cpus", "decimal:0.01:1024", "2", "CPU limit in CPUs, e.g. 1.5"),
    KEY("stop-timeout", "duration:0:1h", "10s", "Grace period between SIGTERM and SIGKILL"),
    KEY("network", "string", "none",
        "none | slirp4netns[:OPTS] | pasta[:OPTS] | bridge | ns:PATH (checked by run); 'none' "
        "leaves only loopback, where the broker and gate are"),
    KEY("read-only", "bool", "yes", "Read-only root file system"),
    KEY("no-new-privileges", "bool", "yes", "Set no_new_privs"),
    KEY("cap-drop-all", "bool", "yes", "Drop every capability"),
    KEY("seccomp", "bool", "yes", "Apply the runtime's default seccomp profile"),
    KEY("grantable-caps", "caps", "perfmon",
        "Capabilities `run --cap-add` may grant (space-separated, without CAP_)"),
};

/* What the vault broker reads (broker/routes.c, which also checks the formats of allow,
 * path-upstreams and token-headers; config-validate.c runs it so `config check` reports them). */
static const config_key route_keys[] = {
    KEY("upstream", "url", "", "The real upstream, http:// or https:// (required)"),
    KEY("credential", "string", "", "Vault secret that replaces the phantom token (required)"),
    KEY("auth-header", "string", "Authorization", "Header that carries the real credential"),
    KEY("auth-prefix", "string", "",
        "Prefix of the credential in that header (default: \"Bearer \" for Authorization)"),
    KEY("token-env", "envvar", "", "Container variable that receives the phantom token"),
    KEY("base-url-env", "envvar", "", "Container variable that receives the broker URL"),
    KEY("path-upstreams", "string", "", "Other upstreams by path: /PREFIX=URL, space-separated"),
    KEY("allow", "string", "", "Requests allowed, METHOD:/PATH space-separated (default: all)"),
    KEY("token-headers", "string", "",
        "Headers a phantom token may arrive in (default: authorization x-api-key private-token)"),
    KEY("max-body", "size:1:", "", "Largest request body forwarded (default: 8G)"),
    KEY("websocket", "bool", "yes", "Pass WebSocket upgrades through (no: refused with 403)"),
    KEY("websocket-idle", "duration:1s:1d", "10m",
        "A WebSocket tunnel with no byte either way for this long is closed"),
    KEY("scrub-responses", "bool", "yes",
        "Mask the credential where an upstream answer repeats it (asks for unencoded answers)"),
    KEY("oauth-token-url", "url", "", "OAuth token endpoint, for refreshable credentials"),
    KEY("oauth-client-id", "string", "", "OAuth client id used with oauth-token-url"),
};

#define SECTION(n, k)                                                                              \
    {                                                                                              \
        n, k, ELEMENTSOF(k)                                                                        \
    }

const config_schema_section config_core_schema[] = {
    SECTION("core", core_keys),           SECTION("runtime", runtime_keys),
    SECTION("vault", vault_keys),         SECTION("gate", gate_keys),
    SECTION("shield", shield_keys),       SECTION("clearance", clearance_keys),
    SECTION("container", container_keys),
};
const size_t config_core_schema_n = ELEMENTSOF(config_core_schema);

const config_schema_section config_route_schema = SECTION("route", route_keys);

const char *const config_plugin_kinds[] = {"runtime", "vault", "gate", "shield", "clearance", NULL};

const config_schema_section *config_core_section(const char *name)
{
    for (size_t i = 0; i < config_core_schema_n; i++)
        if (streq(config_core_schema[i].name, name))
            return &config_core_schema[i];
    return NULL;
}

const config_key *config_schema_key(const config_schema_section *s, const char *key)
{
    for (size_t i = 0; s && i < s->n_keys; i++)
        if (streq(s->keys[i].name, key))
            return &s->keys[i];
    return NULL;
}

bool config_kind_is_valid(const char *kind)
{
    for (size_t i = 0; config_plugin_kinds[i]; i++)
        if (streq(config_plugin_kinds[i], kind))
            return true;
    return false;
}

bool config_route_name_is_valid(const char *name)
{
    size_t n = strlen(name);

    /* [a-z0-9][a-z0-9_-]*: a name is a path segment (/<route>) and an env prefix; a leading '-'
     * would read as an option wherever it is passed on a command line. */
    if (n == 0 || n > 64 || name[0] == '-' || name[0] == '_')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)name[i]) && !isdigit((unsigned char)name[i]) &&
            name[i] != '-' && name[i] != '_')
            return false;
    return true;
}
