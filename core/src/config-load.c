/* SPDX-License-Identifier: Apache-2.0 */
/* config-load.c: reading the config files: the system file and drop-ins, then the user's (or one
 * explicit file), each opened without following a symlink and refused when someone other than
 * root or the caller could have written it; then parsed by libinih through a reader that counts
 * lines and vets raw bytes (NUL, control characters, UTF-8, length) before inih sees them.
 * Problems are collected with file:line, never printed. Not thread-safe: inih's settings are
 * process-wide globals in Debian's build. */
#include <dirent.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>

#include "config-internal.h"
#include "util/strv.h"

#define INIH_MAX_SECTION 50 /* inih's MAX_SECTION: longer names are silently cut */

typedef struct parse_ctx {
    config *c;
    FILE *f;
    const char *path;
    size_t file;
    unsigned line;
    unsigned first_syntax_line; /* first line the reader reported as malformed */
    bool skip;                  /* keys belong to a section header we refused */
    char *buf;                  /* CONFIG_MAX_LINE + 2 */
} parse_ctx;

int config_check_owner_mode(const struct stat *st, const char *path, const char *what, bool dir,
                            char **ret_why)
{
    int r = 0;

    *ret_why = NULL;
    if (dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
        r = asprintf(ret_why, "refusing a %s that is not a %s", what,
                     dir ? "directory" : "regular file");
    else if (st->st_uid != 0 && st->st_uid != geteuid())
        r = asprintf(ret_why,
                     "refusing a %s owned by uid %u (only root or uid %u may own it); run "
                     "'chown %u %s'",
                     what, (unsigned)st->st_uid, (unsigned)geteuid(), (unsigned)geteuid(), path);
    else if (st->st_mode & (S_IWGRP | S_IWOTH))
        r = asprintf(ret_why,
                     "refusing a %s writable by group or others (mode %04o); run 'chmod go-w "
                     "%s'",
                     what, (unsigned)(st->st_mode & 07777), path);
    else
        return 0;
    if (r < 0)
        *ret_why = NULL;
    return -EPERM;
}

static void syntax_problem(parse_ctx *p, const char *fmt, ...) _printf_(2, 3);
static void syntax_problem(parse_ctx *p, const char *fmt, ...)
{
    _cleanup_free_ char *m = NULL;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    (void)config_problem_add(p->c, p->path, p->line, false, "%s", m ? m : "out of memory");
    if (!p->first_syntax_line)
        p->first_syntax_line = p->line;
}

/* inih's notion of an inline comment: ';' or '#' at the start or after whitespace. */
static char *find_comment(char *s)
{
    for (char *q = s; *q; q++)
        if ((*q == ';' || *q == '#') && (q == s || q[-1] == ' ' || q[-1] == '\t'))
            return q;
    return NULL;
}

/* Vets one line the way inih will read it. Returns false when the line must not reach inih. */
static bool vet_line(parse_ctx *p, char *line)
{
    char *s = line, *end, *comment;

    if (p->line == 1 && strneq(s, "\xef\xbb\xbf", 3))
        s += 3;
    s += strspn(s, " \t");
    if (!*s || *s == ';' || *s == '#')
        return true;
    comment = find_comment(s);
    if (*s == '[') {
        end = strchr(s, ']');
        if (!end || (comment && comment < end)) {
            syntax_problem(p, "unterminated section header: expected ']'");
            p->skip = true;
            return false;
        }
        *end = 0;
        const char *name = s + 1;
        char *after = end + 1 + strspn(end + 1, " \t");
        if (*after && *after != ';' && *after != '#') {
            syntax_problem(p, "unexpected text after the section header [%s]", name);
            p->skip = true;
        } else if (!*name) {
            syntax_problem(p, "empty section name");
            p->skip = true;
        } else if (strlen(name) >= INIH_MAX_SECTION) {
            syntax_problem(p, "section name '%s' is too long (at most %d characters)", name,
                           INIH_MAX_SECTION - 1);
            p->skip = true;
        } else {
            p->skip = false;
            (void)config_section_ref_add(p->c, p->file, p->line, name);
        }
        *end = ']';
        return !p->skip;
    }
    end = s + strcspn(s, "=:");
    if (!*end || (comment && comment < end) || *end == ':') {
        syntax_problem(p, "expected 'key = value' or a [section] header");
        return false;
    }
    return true;
}

/* inih's fgets-style reader: one line per call, bounded, counted, vetted. */
static char *reader(char *str, int num, void *stream)
{
    parse_ctx *p = stream;
    size_t n = 0;
    bool too_long = false, any = false;
    int ch;
    char tmp[64];
    const char *bad;

    while ((ch = getc_unlocked(p->f)) != EOF) {
        any = true;
        if (ch == '\n')
            break;
        if (n < CONFIG_MAX_LINE + 1)
            p->buf[n++] = (char)ch;
        else
            too_long = true;
    }
    if (!any)
        return NULL;
    p->line++;
    if (n > 0 && p->buf[n - 1] == '\r') /* CRLF: files edited on Windows */
        n--;
    if (n > CONFIG_MAX_LINE)
        too_long = true;
    bad = too_long ? NULL : config_text_problem((unsigned char *)p->buf, n, tmp, sizeof tmp);
    if (too_long || bad) {
        bool header = n > 0 && p->buf[strspn(p->buf, " \t")] == '[';
        if (too_long)
            syntax_problem(p, "line is longer than %d bytes", CONFIG_MAX_LINE);
        else
            syntax_problem(p, "line %s", bad);
        if (header)
            p->skip = true;
        n = 0;
    }
    p->buf[n] = 0;
    if (n > 0 && !vet_line(p, p->buf))
        n = 0;
    /* ini_max_line leaves room for the line, '\n' and '\0'. */
    if ((size_t)num < n + 2)
        n = 0;
    memcpy(str, p->buf, n);
    str[n] = '\n';
    str[n + 1] = 0;
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx *p = user;
    _cleanup_free_ char *unquoted = NULL;
    size_t vlen = strlen(value);

    if (p->skip)
        return 1;
    if (!*section) {
        syntax_problem(p, "key '%s' is outside any section", name);
        return 1;
    }
    if (!*name) {
        syntax_problem(p, "missing key name before '='");
        return 1;
    }
    /* "..." keeps leading/trailing spaces: auth-prefix = "Bearer ". No escapes. */
    if (value[0] == '"') {
        if (vlen < 2 || value[vlen - 1] != '"') {
            syntax_problem(p, "unterminated quote in the value of '%s' in [%s]: '%s'", name,
                           section, value);
            return 1;
        }
        unquoted = strndup(value + 1, vlen - 2);
        if (!unquoted)
            return 1;
        value = unquoted;
    }
    for (size_t i = 0; i < p->c->n_entries; i++) {
        const config_entry *e = &p->c->entries[i];
        if (e->file == p->file && streq(e->section, section) && streq(e->key, name)) {
            (void)config_problem_add(p->c, p->path, p->line, false,
                                     "duplicate key '%s' in [%s] (first set on line %u)", name,
                                     section, e->line);
            break;
        }
    }
    (void)config_entry_add(p->c, p->file, p->line, section, name, value);
    return 1;
}

/* Takes ownership of fd. */
static int parse_fd(config *c, int fd_in, const char *path)
{
    _cleanup_close_ int fd = fd_in;
    _cleanup_fclose_ FILE *f = NULL;
    _cleanup_free_ char *buf = malloc(CONFIG_MAX_LINE + 2);
    parse_ctx p = {.c = c, .path = path, .buf = buf};
    int r;

    if (!buf)
        return -ENOMEM;
    f = fdopen(fd, "r");
    if (!f)
        return negative_errno();
    fd = -EBADF; /* the FILE owns it now */
    p.f = f;
    r = strv_extend(&c->files, path);
    if (r < 0)
        return r;
    p.file = strv_length(c->files) - 1;

    ini_allow_multiline = false;
    ini_allow_bom = true;
    ini_allow_inline_comments = true;
    ini_inline_comment_prefixes = (char *)";#";
    ini_start_comment_prefixes = (char *)";#";
    ini_allow_no_value = false;
    ini_stop_on_first_error = false;
    ini_max_line = CONFIG_MAX_LINE + 3;

    r = ini_parse_stream(reader, &p, handler, &p);
    if (r == -2)
        return -ENOMEM;
    if (r > 0 && (unsigned)r != p.first_syntax_line)
        (void)config_problem_add(c, path, (unsigned)r, false, "syntax error");
    if (ferror(f))
        (void)config_problem_add(c, path, 0, false, "read error");
    return 0;
}

/* Opens and parses dfd/name. -ENOENT when it does not exist; other refusals are problems. */
static int load_file_at(config *c, int dfd, const char *name, const char *path)
{
    _cleanup_free_ char *why = NULL;
    _cleanup_close_ int fd = -EBADF;
    struct stat st;
    int r;

    /* O_NONBLOCK: a FIFO in place of the file must not hang us; it is refused below. */
    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return -ENOENT;
        if (errno == ELOOP)
            return config_problem_add(c, path, 0, false,
                                      "refusing a symlinked config file (a link can be swapped "
                                      "under us); put the file itself in its place");
        return config_problem_add(c, path, 0, false, "cannot open config file: %s",
                                  strerror(errno));
    }
    if (fstat(fd, &st) < 0)
        return config_problem_add(c, path, 0, false, "cannot stat config file: %s",
                                  strerror(errno));
    if (config_check_owner_mode(&st, path, "config file", false, &why) < 0)
        return config_problem_add(c, path, 0, false, "%s", why ? why : "refused");
    if (st.st_size > CONFIG_MAX_FILE)
        return config_problem_add(c, path, 0, false,
                                  "config file is too large (%lld bytes; the limit is %d)",
                                  (long long)st.st_size, CONFIG_MAX_FILE);
    r = fcntl(fd, F_SETFL, 0);
    if (r < 0)
        return negative_errno();
    r = parse_fd(c, fd, path);
    fd = -EBADF; /* parse_fd took it */
    return r;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_dropins(config *c, int dfd, const char *dirpath)
{
    _cleanup_strv_free_ char **names = NULL;
    _cleanup_free_ char *why = NULL;
    _cleanup_close_ int fd = -EBADF;
    DIR *d;
    struct dirent *de;
    struct stat st;
    int r;

    fd = openat(dfd, "sandbox.conf.d", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno == ELOOP || errno == ENOTDIR)
            return config_problem_add(c, dirpath, 0, false,
                                      "refusing a drop-in directory that is a symlink or not a "
                                      "directory");
        return config_problem_add(c, dirpath, 0, false, "cannot open drop-in directory: %s",
                                  strerror(errno));
    }
    if (fstat(fd, &st) < 0)
        return negative_errno();
    if (config_check_owner_mode(&st, dirpath, "drop-in directory", true, &why) < 0)
        return config_problem_add(c, dirpath, 0, false, "%s", why ? why : "refused");
    r = dup(fd);
    if (r < 0)
        return negative_errno();
    d = fdopendir(r);
    if (!d) {
        close(r);
        return negative_errno();
    }
    while ((errno = 0, de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len < 6 || !streq(de->d_name + len - 5, ".conf"))
            continue;
        r = strv_extend(&names, de->d_name);
        if (r < 0) {
            closedir(d);
            return r;
        }
    }
    closedir(d);
    /* Lexical order by bytes, whatever the locale: 10-x.conf before 20-y.conf. */
    if (names)
        qsort(names, strv_length(names), sizeof(char *), cmp_str);
    STRV_FOREACH(n, names)
    {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s", dirpath, *n) < 0)
            return -ENOMEM;
        r = load_file_at(c, fd, *n, path);
        if (r < 0 && r != -ENOENT)
            return r;
    }
    return 0;
}

/* <dir>/sandbox.conf, then <dir>/sandbox.conf.d/ *.conf. A missing directory is fine. */
static int load_dir(config *c, const char *dir)
{
    _cleanup_free_ char *why = NULL, *file = NULL, *dropins = NULL;
    _cleanup_close_ int fd = -EBADF;
    struct stat st;
    int r;

    if (!dir)
        return 0;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return config_problem_add(c, dir, 0, false, "cannot open config directory: %s",
                                  strerror(errno));
    }
    /* Whoever can write the directory can swap the files in it. */
    if (fstat(fd, &st) < 0)
        return negative_errno();
    if (config_check_owner_mode(&st, dir, "config directory", true, &why) < 0)
        return config_problem_add(c, dir, 0, false, "%s", why ? why : "refused");
    if (asprintf(&file, "%s/sandbox.conf", dir) < 0 ||
        asprintf(&dropins, "%s/sandbox.conf.d", dir) < 0)
        return -ENOMEM;
    r = load_file_at(c, fd, "sandbox.conf", file);
    if (r < 0 && r != -ENOENT)
        return r;
    return load_dropins(c, fd, dropins);
}

int config_load(const char *explicit_file, const char *system_dir, const char *user_dir,
                config **ret, terok_error *err)
{
    _cleanup_(config_freep) config *c = calloc(1, sizeof(*c));
    const char *env;
    int r;

    if (!c)
        return terok_error_set(err, -ENOMEM, "loading the configuration: out of memory");
    if (!explicit_file) {
        env = secure_getenv("TEROK_SANDBOX_CONFIG");
        if (!isempty(env))
            explicit_file = env;
    }
    if (explicit_file) {
        r = load_file_at(c, AT_FDCWD, explicit_file, explicit_file);
        if (r == -ENOENT)
            return terok_error_set(err, -ENOENT, "config file '%s' does not exist", explicit_file);
    } else {
        r = load_dir(c, system_dir);
        if (r >= 0)
            r = load_dir(c, user_dir);
    }
    if (r < 0)
        return terok_error_set(err, r, "loading the configuration: %s", strerror(-r));
    *ret = c;
    c = NULL;
    return 0;
}
