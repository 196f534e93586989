/* SPDX-License-Identifier: Apache-2.0 */
/* test-config-keys.c: plugin key declarations read from ELF files without loading them: a real
 * fixture plugin (runtime-keys.so), crafted ELF files with hostile declaration sections, files
 * that are not ELF at all, and how `config check` validates a plugin's section with them. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>
#include <fcntl.h>
#include <stdarg.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "terok-test.h"

TestSuite(config_keys, .init = test_tmpdir_setup, .fini = test_tmpdir_teardown, .timeout = 20.);

static const char *keys_plugin(void)
{
    const char *p = getenv("TEROK_TEST_KEYS_PLUGIN");

    cr_assert(p != NULL, "TEROK_TEST_KEYS_PLUGIN not set (run through meson test)");
    return p;
}

static int read_keys(const char *path, config_key **keys, size_t *n, terok_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int r;

    cr_assert(fd >= 0, "cannot open %s", path);
    r = plugin_keys_read(fd, keys, n, err);
    close(fd);
    return r;
}

Test(config_keys, fixture_declarations)
{
    terok_error err = TEROK_ERROR_INIT;
    config_key *k = NULL;
    size_t n = 0;

    terok_assert_ok(read_keys(keys_plugin(), &k, &n, &err), &err);
    cr_assert(eq(sz, n, 5));
    cr_assert(eq(str, (char *)k[0].name, "socket"));
    cr_assert(eq(str, (char *)k[0].type, "string"));
    cr_assert(eq(str, (char *)k[0].def, "auto"));
    cr_assert(eq(str, (char *)k[0].help, "API socket path, or 'auto'"));
    cr_assert(eq(str, (char *)k[1].type, "duration"));
    cr_assert(eq(str, (char *)k[2].type, "int:0:10"));
    cr_assert(eq(str, (char *)k[3].def, ""));
    cr_assert(eq(str, (char *)k[4].type, "enum:auto|rootful|rootless"));
    cr_assert(eq(str, (char *)k[4].help, "How containers are run — rootful needs root"));
    plugin_keys_free(k, n);
}

Test(config_keys, plugin_without_declarations_has_no_keys)
{
    terok_error err = TEROK_ERROR_INIT;
    config_key *k = (config_key *)1;
    char path[4096];
    size_t n = 7;

    /* any shared object without a .terok.config section: one of libc's own */
    snprintf(path, sizeof path, "%s", "/lib/x86_64-linux-gnu/libm.so.6");
    terok_assert_ok(read_keys(path, &k, &n, &err), &err);
    cr_assert(eq(sz, n, 0));
    cr_assert(eq(ptr, k, NULL));
}

/* Writes a minimal ELF64 shared object whose only content section is `secname`. */
static const char *write_elf(const char *rel, const char *secname, const void *data, size_t len,
                             bool nobits)
{
    const char *path = test_write_file(rel, "", 0755);
    char strtab[256];
    size_t namelen = strlen(secname);
    int fd = open(path, O_RDWR | O_TRUNC | O_CLOEXEC);
    Elf *e;
    Elf64_Ehdr *eh;
    Elf_Scn *scn, *str;
    Elf_Data *d;
    Elf64_Shdr *sh;

    cr_assert(fd >= 0);
    cr_assert(elf_version(EV_CURRENT) != EV_NONE);
    /* "\0<secname>\0.shstrtab\0" */
    strtab[0] = 0;
    memcpy(strtab + 1, secname, namelen + 1);
    memcpy(strtab + 2 + namelen, ".shstrtab", 10);
    e = elf_begin(fd, ELF_C_WRITE, NULL);
    cr_assert(e != NULL);
    eh = elf64_newehdr(e);
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_type = ET_DYN;
    eh->e_machine = EM_X86_64;
    eh->e_version = EV_CURRENT;

    scn = elf_newscn(e);
    d = elf_newdata(scn);
    d->d_buf = (void *)data;
    d->d_size = len;
    d->d_type = ELF_T_BYTE;
    d->d_align = 1;
    d->d_version = EV_CURRENT;
    sh = elf64_getshdr(scn);
    sh->sh_name = 1;
    sh->sh_type = nobits ? SHT_NOBITS : SHT_PROGBITS;
    sh->sh_flags = SHF_ALLOC;

    str = elf_newscn(e);
    d = elf_newdata(str);
    d->d_buf = strtab;
    d->d_size = namelen + 12;
    d->d_type = ELF_T_BYTE;
    d->d_align = 1;
    d->d_version = EV_CURRENT;
    sh = elf64_getshdr(str);
    sh->sh_name = (Elf64_Word)(namelen + 2);
    sh->sh_type = SHT_STRTAB;
    eh->e_shstrndx = (Elf64_Half)elf_ndxscn(str);

    cr_assert(elf_update(e, ELF_C_WRITE) >= 0, "elf_update: %s", elf_errmsg(-1));
    elf_end(e);
    close(fd);
    return path;
}

static void *cr_memdup(const void *p, size_t n)
{
    void *q = cr_malloc(n);

    cr_assert(q != NULL);
    memcpy(q, p, n);
    return q;
}

struct elf_case {
    const char *name;
    const char *data;
    size_t len;
    const char *expect; /* error message, or NULL for success */
    size_t n_keys;
};

#define ECASE(n, d, e, k)                                                                          \
    {                                                                                              \
        n, d, sizeof(d) - 1, e, k                                                                  \
    }

ParameterizedTestParameters(config_keys, hostile_sections)
{
    static struct elf_case cases[] = {
        ECASE("empty section", "", NULL, 0),
        ECASE("only the string terminator", "\0", NULL, 0),
        ECASE("one key", "a\037string\037x\037help\036\0", NULL, 1),
        ECASE("no trailing separator", "a\037string\037\037help",
              "section '.terok.config' does not end with a record separator (\\036)", 0),
        ECASE("fields missing", "a\037string\036",
              "key declaration 1 has 2 fields; expected 4 (name, type, default, help)", 0),
        ECASE("one field", "a\036b\037string\037\037h\036",
              "key declaration 1 has 1 field; expected 4 (name, type, default, help)", 0),
        ECASE("too many fields", "a\037string\037\037h\037x\036",
              "key declaration 1 has more than 4 fields (name, type, default, help)", 0),
        ECASE("control character", "a\037string\037\037he\001lp\036",
              "key declaration 1 contains the control character 0x01", 0),
        ECASE("escape in a default", "a\037string\037\033[2J\037h\036",
              "key declaration 1 contains the control character 0x1b", 0),
        ECASE("not utf-8", "a\037string\037\037h\xff\036", "key declaration 1 is not valid UTF-8",
              0),
        ECASE("nul inside", "a\0b\036", "section '.terok.config' contains a NUL byte", 0),
        ECASE("bad name", "Bad\037string\037\037h\036",
              "key declaration 1 has an invalid name 'Bad' (expected [a-z0-9_-]+, at most 64 "
              "characters)",
              0),
        ECASE("empty name", "\037string\037\037h\036",
              "key declaration 1 has an invalid name '' (expected [a-z0-9_-]+, at most 64 "
              "characters)",
              0),
        ECASE("unknown type", "a\037strnig\037\037h\036", "key 'a' has an unknown type 'strnig'",
              0),
        ECASE("bad bounds", "a\037int:x:5\037\037h\036", "key 'a' has an unknown type 'int:x:5'",
              0),
        ECASE("bad default", "a\037int:1:5\0379\037h\036",
              "key 'a' has an invalid default '9': out of range: expected an integer from 1 to 5",
              0),
        ECASE("declared twice", "a\037string\037\037h\036a\037bool\037\037h\036",
              "key 'a' is declared twice", 0),
        ECASE("second record bad", "a\037string\037\037h\036b\037bool\037maybe\037h\036",
              "key 'b' has an invalid default 'maybe': expected yes, no, true, false, on, off, 1 "
              "or 0",
              0),
    };
    /* Tests run in a fresh process: parameters must live in Criterion's shared memory. */
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        cases[i].name = cr_memdup(cases[i].name, strlen(cases[i].name) + 1);
        cases[i].data = cr_memdup(cases[i].data, cases[i].len + 1);
        if (cases[i].expect)
            cases[i].expect = cr_memdup(cases[i].expect, strlen(cases[i].expect) + 1);
    }
    return cr_make_param_array(struct elf_case, cases, ELEMENTSOF(cases));
}

ParameterizedTest(struct elf_case *tc, config_keys, hostile_sections)
{
    terok_error err = TEROK_ERROR_INIT;
    const char *path = write_elf("x.so", TEROK_PLUGIN_KEYS_SECTION, tc->data, tc->len, false);
    config_key *k = NULL;
    size_t n = 0;
    int r = read_keys(path, &k, &n, &err);

    if (!tc->expect) {
        cr_assert(eq(int, r, 0), "case '%s': %s", tc->name, terok_error_message(&err));
        cr_assert(eq(sz, n, tc->n_keys), "case '%s'", tc->name);
        plugin_keys_free(k, n);
        return;
    }
    cr_assert(eq(int, r, -EBADMSG), "case '%s'", tc->name);
    cr_assert(eq(str, err.message, (char *)tc->expect), "case '%s'", tc->name);
    terok_error_clear(&err);
}

Test(config_keys, section_too_large)
{
    terok_error err = TEROK_ERROR_INIT;
    size_t len = 70000;
    char *big = calloc(1, len);
    config_key *k;
    size_t n;
    const char *path;

    memset(big, 'a', len);
    path = write_elf("x.so", TEROK_PLUGIN_KEYS_SECTION, big, len, false);
    cr_assert(eq(int, read_keys(path, &k, &n, &err), -EBADMSG));
    cr_assert(eq(str, err.message,
                 "section '.terok.config' is too large (70000 bytes; the limit is 65536)"));
    terok_error_clear(&err);
    free(big);
}

Test(config_keys, too_many_keys)
{
    terok_error err = TEROK_ERROR_INIT;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_key *k;
    size_t n;
    const char *path;

    for (int i = 0; i < 300; i++)
        fprintf(f, "k%d\037string\037\037h\036", i);
    fclose(f);
    path = write_elf("x.so", TEROK_PLUGIN_KEYS_SECTION, buf, len, false);
    cr_assert(eq(int, read_keys(path, &k, &n, &err), -EBADMSG));
    cr_assert(eq(str, err.message, "section '.terok.config' declares more than 256 keys"));
    terok_error_clear(&err);
    free(buf);
}

Test(config_keys, nobits_section)
{
    terok_error err = TEROK_ERROR_INIT;
    const char *path = write_elf("x.so", TEROK_PLUGIN_KEYS_SECTION, NULL, 16, true);
    config_key *k;
    size_t n;

    cr_assert(eq(int, read_keys(path, &k, &n, &err), -EBADMSG));
    cr_assert(eq(str, err.message, "section '.terok.config' has no contents"));
    terok_error_clear(&err);
}

Test(config_keys, other_section_names_are_ignored)
{
    terok_error err = TEROK_ERROR_INIT;
    const char *path = write_elf("x.so", ".terok.configx", "junk", 4, false);
    config_key *k = NULL;
    size_t n = 1;

    terok_assert_ok(read_keys(path, &k, &n, &err), &err);
    cr_assert(eq(sz, n, 0));
}

Test(config_keys, not_elf)
{
    static const char *const texts[] = {"", "#!/bin/sh\necho hi\n",
                                        "\x7f"
                                        "EL"};
    terok_error err = TEROK_ERROR_INIT;
    config_key *k;
    size_t n;

    for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
        const char *path = test_write_file("x.so", texts[i], 0755);
        cr_assert(eq(int, read_keys(path, &k, &n, &err), -EBADMSG), "text %zu", i);
        cr_assert(eq(str, err.message, "not an ELF file"), "text %zu", i);
        terok_error_clear(&err);
    }
}

Test(config_keys, truncated_elf)
{
    terok_error err = TEROK_ERROR_INIT;
    int in = open(keys_plugin(), O_RDONLY | O_CLOEXEC);
    char buf[2048];
    config_key *k;
    size_t n;
    const char *path;

    cr_assert(in >= 0);
    cr_assert(read(in, buf, sizeof buf) == (ssize_t)sizeof buf);
    close(in);
    /* The header is whole, the section headers it points to are gone. */
    for (size_t cut = 64; cut <= sizeof buf; cut *= 2) {
        int fd;
        path = test_write_file("x.so", "", 0755);
        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        cr_assert(write(fd, buf, cut) == (ssize_t)cut);
        close(fd);
        cr_assert(eq(int, read_keys(path, &k, &n, &err), -EBADMSG), "cut at %zu", cut);
        cr_assert(strncmp(err.message, "malformed ELF file: ", 20) == 0 ||
                      streq(err.message, "not an ELF file"),
                  "cut at %zu: %s", cut, err.message);
        terok_error_clear(&err);
    }
}

/* --- validation of a plugin's section ---------------------------------------------------- */

static config *load_text(const char *fmt, ...) _printf_(1, 2);
static config *load_text(const char *fmt, ...)
{
    terok_error err = TEROK_ERROR_INIT;
    char buf[8192];
    config *c = NULL;
    const char *path;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    path = test_write_file("sandbox.conf", buf, 0600);
    terok_assert_ok(config_load(path, NULL, NULL, &c, &err), &err);
    (void)config_validate(c);
    return c;
}

static char *problems_text(config *c)
{
    const config_problem *p;
    size_t n = config_problems(c, &p);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%u: %s", i ? "\n" : "", p[i].line, p[i].message);
    fclose(f);
    return out;
}

Test(config_keys, plugin_section_is_validated)
{
    const char *dir = getenv("TEROK_TEST_KEYS_PLUGIN_DIR");
    config *c = load_text("[core]\nplugin-dir = %s\n[runtime]\nbackend = keys\n"
                          "[runtime.keys]\nsocket = /run/x.sock\ntimeout = 5q\nretries = 11\n"
                          "mode = rootful\nbogus = 1\n",
                          dir);
    char *got = problems_text(c);

    cr_assert(eq(str, got,
                 "7: invalid value '5q' for 'timeout' in [runtime.keys]: expected a duration "
                 "(such as 500ms, 10s, 5m, 2h or 1d)\n"
                 "8: invalid value '11' for 'retries' in [runtime.keys]: out of range: expected "
                 "an integer from 0 to 10\n"
                 "10: unknown key 'bogus' in [runtime.keys]: plugin 'runtime-keys' declares other "
                 "keys"));
    cr_assert(eq(int, config_validate(c), 3));
    free(got);
    config_free(c);
}

Test(config_keys, plugin_section_reaches_the_plugin_with_defaults)
{
    const char *dir = getenv("TEROK_TEST_KEYS_PLUGIN_DIR");
    config *c = load_text("[core]\nplugin-dir = %s\n[runtime]\nbackend = keys\n"
                          "[runtime.keys]\nsocket = /run/x.sock\n",
                          dir);
    terok_config_section *s = config_plugin_section(c, "runtime", "keys");
    const char *v;
    int64_t i;
    int b;

    cr_assert(eq(int, config_validate(c), 0));
    cr_assert(s != NULL);
    cr_assert(eq(int, config_section_get(s, "socket", &v), 0));
    cr_assert(eq(str, (char *)v, "/run/x.sock"));
    cr_assert(eq(int, config_section_get(s, "mode", &v), 0));
    cr_assert(eq(str, (char *)v, "auto"));
    cr_assert(eq(int, config_section_get_int(s, "timeout", &i), 0));
    cr_assert(eq(i64, i, 30000));
    cr_assert(eq(int, config_section_get_int(s, "retries", &i), 0));
    cr_assert(eq(i64, i, 3));
    cr_assert(eq(int, config_section_get_bool(s, "rootless", &b), -ENOENT), "no default");
    cr_assert(eq(int, config_section_get(s, "undeclared", &v), -EINVAL));
    cr_assert(eq(str, (char *)config_origin(c, "runtime.keys", "timeout"), "default"));
    config_free(c);
}

Test(config_keys, plugin_without_keys_rejects_every_key)
{
    /* a plugin file without declarations (never loaded: config check only reads it) */
    const char *argv[] = {"install",
                          "-D",
                          "-m",
                          "0644",
                          "/lib/x86_64-linux-gnu/libm.so.6",
                          test_path("plugins/runtime-bare.so"),
                          NULL};
    cli_result res = test_run(NULL, argv);
    cli_result_done(&res);
    chmod(test_path("plugins"), 0755);
    config *c = load_text("[core]\nplugin-dir = %s\n[runtime]\nbackend = bare\n[runtime.bare]\n"
                          "x = 1\n",
                          test_path("plugins"));
    char *got = problems_text(c);

    cr_assert(eq(str, got,
                 "6: unknown key 'x' in [runtime.bare]: plugin 'runtime-bare' declares no keys"));
    free(got);
    config_free(c);
}

Test(config_keys, missing_plugin_is_reported_on_the_backend_key)
{
    const char *dir = getenv("TEROK_TEST_KEYS_PLUGIN_DIR");
    config *c = load_text("[core]\nplugin-dir = %s\n[runtime]\nbackend = nope\n[runtime.nope]\n"
                          "x = 1\n",
                          dir);
    char *got = problems_text(c), want[9000];

    snprintf(want, sizeof want, "4: plugin 'runtime-nope' not found in '%s'", dir);
    cr_assert(eq(str, got, want));
    free(got);
    config_free(c);
}

Test(config_keys, missing_default_plugin_with_a_section_is_reported_on_the_section)
{
    const char *dir = getenv("TEROK_TEST_KEYS_PLUGIN_DIR");
    config *c = load_text("[core]\nplugin-dir = %s\n[vault.sqlite]\npath = /x\n", dir);
    char *got = problems_text(c), want[9000];

    snprintf(want, sizeof want, "3: plugin 'vault-sqlite' not found in '%s'", dir);
    cr_assert(eq(str, got, want));
    free(got);
    config_free(c);
}

Test(config_keys, hostile_plugin_file_is_named)
{
    char dir[4096], want[9000];
    config *c;
    char *got;

    snprintf(dir, sizeof dir, "%s", test_path("plugins"));
    test_write_file("plugins/runtime-junk.so", "not elf", 0755);
    c = load_text("[core]\nplugin-dir = %s\n[runtime]\nbackend = junk\n", dir);
    got = problems_text(c);
    snprintf(want, sizeof want, "4: plugin '%s/runtime-junk.so': not an ELF file", dir);
    cr_assert(eq(str, got, want));
    free(got);
    config_free(c);
}

Test(config_keys, writable_plugin_file_is_refused)
{
    char dir[4096], want[9000];
    const char *so;
    config *c;
    char *got;

    snprintf(dir, sizeof dir, "%s", test_path("plugins"));
    so = test_write_file("plugins/runtime-junk.so", "not elf", 0775);
    c = load_text("[core]\nplugin-dir = %s\n[runtime]\nbackend = junk\n", dir);
    got = problems_text(c);
    snprintf(want, sizeof want,
             "4: refusing a plugin writable by group or others (mode 0775); run 'chmod go-w %s'",
             so);
    cr_assert(eq(str, got, want));
    free(got);
    config_free(c);
}

Test(config_keys, symlinked_plugin_file_is_refused)
{
    char dir[4096], link[4200], want[9000];
    config *c;
    char *got;

    snprintf(dir, sizeof dir, "%s", test_path("plugins"));
    mkdir(dir, 0755);
    snprintf(link, sizeof link, "%s/runtime-keys.so", dir);
    cr_assert(symlink(keys_plugin(), link) == 0);
    c = load_text("[core]\nplugin-dir = %s\n[runtime]\nbackend = keys\n", dir);
    got = problems_text(c);
    snprintf(want, sizeof want, "4: refusing the symlinked plugin '%s'", link);
    cr_assert(eq(str, got, want));
    free(got);
    config_free(c);
}
