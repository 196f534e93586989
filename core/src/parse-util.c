/* SPDX-License-Identifier: Apache-2.0 */
/* parse-util.c: strict value parsing shared by the config and the CLI, and the checker for
 * declared key types ("int:1:10", "enum:a|b", ...). Whole strings only, no whitespace, range and
 * overflow checked; never atoi/strtol without checks. Never prints. */
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <strings.h>

#include "config-internal.h"

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Unsigned decimal of exactly n digits; -ERANGE past UINT64_MAX. */
static int parse_digits(const char *s, size_t n, uint64_t *ret)
{
    uint64_t v = 0;

    if (!all_digits(s, n))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s[i] - '0', &v))
            return -ERANGE;
    }
    *ret = v;
    return 0;
}

int parse_bool(const char *s, bool *ret)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *ret = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *ret = false;
            return 0;
        }
    }
    return -EINVAL;
}

int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
    bool neg;
    uint64_t u;
    int64_t v;
    int r;

    if (!s)
        return -EINVAL;
    neg = s[0] == '-';
    r = parse_digits(s + neg, strlen(s + neg), &u);
    if (r < 0)
        return r;
    if (neg) {
        if (u > (uint64_t)INT64_MAX + 1)
            return -ERANGE;
        v = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
    } else {
        if (u > (uint64_t)INT64_MAX)
            return -ERANGE;
        v = (int64_t)u;
    }
    if (v < min || v > max)
        return -ERANGE;
    *ret = v;
    return 0;
}

int parse_size(const char *s, uint64_t *ret)
{
    static const char suffixes[] = "kmgt";
    size_t n;
    unsigned shift = 0;
    uint64_t v;
    int r;

    if (!s)
        return -EINVAL;
    n = strlen(s);
    if (n > 1 && !isdigit((unsigned char)s[n - 1])) {
        const char *p = strchr(suffixes, tolower((unsigned char)s[n - 1]));
        if (!p || !*p)
            return -EINVAL;
        shift = 10 * (unsigned)(p - suffixes + 1);
        n--;
    }
    r = parse_digits(s, n, &v);
    if (r < 0)
        return r;
    if (shift && v > (UINT64_MAX >> shift))
        return -ERANGE;
    *ret = v << shift;
    return 0;
}

int parse_duration_ms(const char *s, int64_t *ret)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {"", 1000},
    };
    size_t digits = 0;
    uint64_t v;
    int64_t out;
    int r;

    if (!s)
        return -EINVAL;
    while (s[digits] >= '0' && s[digits] <= '9')
        digits++;
    for (size_t i = 0; i < ELEMENTSOF(units); i++) {
        if (!streq(s + digits, units[i].unit))
            continue;
        r = parse_digits(s, digits, &v);
        if (r < 0)
            return r;
        if (v > (uint64_t)INT64_MAX || __builtin_mul_overflow((int64_t)v, units[i].ms, &out))
            return -ERANGE;
        *ret = out;
        return 0;
    }
    return -EINVAL;
}

/* "1", "1.5", "0.25", "2.125": fixed point with three decimals (thousandths). */
int parse_decimal_milli(const char *s, int64_t *ret)
{
    const char *dot = strchr(s, '.');
    size_t ilen = dot ? (size_t)(dot - s) : strlen(s);
    uint64_t ip, fp = 0;
    size_t flen = 0;
    int r;

    if (ilen > 9)
        return -ERANGE;
    r = parse_digits(s, ilen, &ip);
    if (r < 0)
        return r;
    if (dot) {
        flen = strlen(dot + 1);
        if (flen == 0 || flen > 3)
            return -EINVAL;
        r = parse_digits(dot + 1, flen, &fp);
        if (r < 0)
            return r;
        for (size_t i = flen; i < 3; i++)
            fp *= 10;
    }
    *ret = (int64_t)(ip * 1000 + fp);
    return 0;
}

const char *config_text_problem(const unsigned char *s, size_t n, char *tmp, size_t sz)
{
    for (size_t i = 0; i < n;) {
        unsigned char b = s[i];
        size_t len;
        uint32_t cp, min;

        if (b == 0)
            return "contains a NUL byte";
        if ((b < 0x20 && b != '\t') || b == 0x7f) {
            snprintf(tmp, sz, "contains the control character 0x%02x", b);
            return tmp;
        }
        if (b < 0x80) {
            i++;
            continue;
        }
        if ((b & 0xe0) == 0xc0)
            len = 2, cp = b & 0x1f, min = 0x80;
        else if ((b & 0xf0) == 0xe0)
            len = 3, cp = b & 0x0f, min = 0x800;
        else if ((b & 0xf8) == 0xf0)
            len = 4, cp = b & 0x07, min = 0x10000;
        else
            return "is not valid UTF-8";
        if (i + len > n)
            return "is not valid UTF-8";
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return "is not valid UTF-8";
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates and code points past U+10FFFF are not UTF-8. */
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return "is not valid UTF-8";
        i += len;
    }
    return NULL;
}

bool envvar_name_is_valid(const char *s)
{
    if (!s || !(isupper((unsigned char)*s) || *s == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!isupper((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
            return false;
    return strlen(s) <= 128;
}

bool backend_name_is_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
            return false;
    return true;
}

/* Capability names without CAP_, as podman's --cap-add takes them. */
static const char *const cap_names[] = {
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
};

bool cap_name_is_valid(const char *s)
{
    for (size_t i = 0; i < ELEMENTSOF(cap_names); i++)
        if (streq(s, cap_names[i]))
            return true;
    return false;
}

static int why(char **ret_why, const char *fmt, ...) _printf_(2, 3);
static int why(char **ret_why, const char *fmt, ...)
{
    va_list ap;

    if (ret_why) {
        va_start(ap, fmt);
        if (vasprintf(ret_why, fmt, ap) < 0)
            *ret_why = NULL;
        va_end(ap);
    }
    return -EINVAL;
}

/* Splits "base:min:max" bounds; NULL min/max when absent or empty. Returns false when the type
 * string has extra fields. */
static bool split_bounds(const char *args, char *min, char *max, size_t sz)
{
    const char *colon;

    min[0] = max[0] = 0;
    if (!args)
        return true;
    colon = strchr(args, ':');
    if (!colon || strchr(colon + 1, ':') || (size_t)(colon - args) >= sz || strlen(colon + 1) >= sz)
        return false;
    snprintf(min, sz, "%.*s", (int)(colon - args), args);
    snprintf(max, sz, "%s", colon + 1);
    return true;
}

static const char *const int_bounds_desc = "an integer";

int config_check_type(const char *type, const char *value, char **ret_why)
{
    char base[32], min[64], max[64];
    const char *args = strchr(type, ':');
    size_t blen = args ? (size_t)(args - type) : strlen(type);
    int r;

    if (ret_why)
        *ret_why = NULL;
    if (blen >= sizeof base)
        return -EPROTO;
    snprintf(base, sizeof base, "%.*s", (int)blen, type);
    if (args)
        args++;

    if (streq(base, "string") && !args)
        return 0;
    if (streq(base, "path") && !args) {
        if (!value || value[0] != '/')
            return value ? why(ret_why, "expected an absolute path") : 0;
        return 0;
    }
    if (streq(base, "bool") && !args) {
        bool b;
        if (value && parse_bool(value, &b) < 0)
            return why(ret_why, "expected yes, no, true, false, on, off, 1 or 0");
        return 0;
    }
    if (streq(base, "enum") && args && *args) {
        size_t vlen = value ? strlen(value) : 0;
        for (const char *p = args; value;) {
            const char *bar = strchrnul(p, '|');
            if ((size_t)(bar - p) == vlen && strneq(p, value, vlen) && vlen)
                return 0;
            if (!*bar)
                break;
            p = bar + 1;
        }
        if (!value)
            return 0;
        _cleanup_free_ char *choices = strdup(args);
        if (!choices)
            return -ENOMEM;
        for (char *p = choices; *p; p++)
            if (*p == '|')
                *p = ',';
        /* "a,b,c" reads better as "a, b, c" */
        _cleanup_free_ char *spaced = calloc(1, strlen(choices) * 2 + 1);
        if (!spaced)
            return -ENOMEM;
        for (char *p = choices, *q = spaced; *p; p++) {
            *q++ = *p;
            if (*p == ',')
                *q++ = ' ';
        }
        return why(ret_why, "expected one of: %s", spaced);
    }
    if (streq(base, "int") || streq(base, "size") || streq(base, "duration") ||
        streq(base, "decimal")) {
        int64_t lo = INT64_MIN, hi = INT64_MAX, v = 0;
        uint64_t u = 0;
        const char *what;

        if (!split_bounds(args, min, max, sizeof min))
            return -EPROTO;
        /* Bounds are written in the type's own notation: "size:6M:1T", "duration:1s:1h". */
        if (streq(base, "int")) {
            what = int_bounds_desc;
            if ((*min && parse_int64(min, INT64_MIN, INT64_MAX, &lo) < 0) ||
                (*max && parse_int64(max, INT64_MIN, INT64_MAX, &hi) < 0))
                return -EPROTO;
            r = value ? parse_int64(value, INT64_MIN, INT64_MAX, &v) : 0;
        } else if (streq(base, "size")) {
            what = "a size (bytes, or with a K, M, G or T suffix)";
            lo = 0;
            if ((*min && parse_size(min, &u) < 0) || u > INT64_MAX)
                return -EPROTO;
            lo = (int64_t)u;
            if (*max && (parse_size(max, &u) < 0 || u > INT64_MAX))
                return -EPROTO;
            hi = *max ? (int64_t)u : INT64_MAX;
            r = value ? parse_size(value, &u) : 0;
            if (r == 0 && u > INT64_MAX)
                r = -ERANGE;
            v = (int64_t)u;
        } else if (streq(base, "duration")) {
            what = "a duration (such as 500ms, 10s, 5m, 2h or 1d)";
            lo = 0;
            if ((*min && parse_duration_ms(min, &lo) < 0) ||
                (*max && parse_duration_ms(max, &hi) < 0))
                return -EPROTO;
            r = value ? parse_duration_ms(value, &v) : 0;
        } else {
            what = "a decimal number with up to three decimals";
            lo = 0;
            if ((*min && parse_decimal_milli(min, &lo) < 0) ||
                (*max && parse_decimal_milli(max, &hi) < 0))
                return -EPROTO;
            r = value ? parse_decimal_milli(value, &v) : 0;
        }
        if (!value)
            return 0;
        if (r == 0 && (v < lo || v > hi))
            r = -ERANGE;
        if (r == 0)
            return 0;
        if (*min || *max) {
            if (*min && *max)
                return why(ret_why, "%sexpected %s from %s to %s",
                           r == -ERANGE ? "out of range: " : "", what, min, max);
            return why(ret_why, "%sexpected %s %s %s", r == -ERANGE ? "out of range: " : "", what,
                       *min ? "of at least" : "of at most", *min ? min : max);
        }
        return why(ret_why, "%sexpected %s", r == -ERANGE ? "out of range: " : "", what);
    }
    if (streq(base, "url") && !args) {
        const char *rest = NULL;
        if (!value)
            return 0;
        if (strneq(value, "https://", 8))
            rest = value + 8;
        else if (strneq(value, "http://", 7))
            rest = value + 7;
        if (!rest || !*rest || *rest == '/' || strpbrk(value, " \t"))
            return why(ret_why, "expected an http:// or https:// URL");
        return 0;
    }
    if (streq(base, "envvar") && !args) {
        if (value && !envvar_name_is_valid(value))
            return why(ret_why, "expected an environment variable name ([A-Z_][A-Z0-9_]*)");
        return 0;
    }
    if (streq(base, "backend") && !args) {
        /* "none" passes as a name; whether a kind may be switched off is the schema's call. */
        if (!value || backend_name_is_valid(value))
            return 0;
        return why(ret_why, "expected a backend name ([a-z0-9-]+) or 'none'");
    }
    if (streq(base, "caps") && !args) {
        _cleanup_free_ char *copy = value ? strdup(value) : NULL;
        char *save = NULL;

        if (!value)
            return 0;
        if (!copy)
            return -ENOMEM;
        for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
            if (!cap_name_is_valid(w))
                return why(ret_why,
                           "unknown capability '%s': expected lower-case names without CAP_, "
                           "such as 'perfmon' or 'sys_ptrace'",
                           w);
        return 0;
    }
    return -EPROTO;
}

int config_check_value(const char *type, const char *value, char **ret_why)
{
    int r;

    if (!type || !value)
        return -EINVAL;
    r = config_check_type(type, value, ret_why);
    if (r == -EPROTO)
        return why(ret_why, "unknown key type '%s'", type);
    return r;
}

bool config_type_is_valid(const char *type)
{
    return type && config_check_type(type, NULL, NULL) == 0;
}
