/* SPDX-License-Identifier: Apache-2.0 */
/* plugin-keys.c: reading a plugin's config-key declarations (TEROK_PLUGIN_CONFIG_KEYS) from the
 * TEROK_PLUGIN_KEYS_SECTION of its ELF file with libelf, so `config check` validates a plugin's
 * section without loading it: no dlopen, no plugin code runs. The file is hostile until proven
 * otherwise: sizes are bounded, every field is checked. Never prints. */
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>

#include "config-internal.h"

#define KEYS_MAX_SECTION (64 * 1024)
#define KEYS_MAX_COUNT 256
#define KEYS_MAX_NAME 64
#define KEYS_MAX_FIELD 1024
#define KEYS_MAX_FILE ((off_t)512 * 1024 * 1024)

static void elf_endp(Elf **e)
{
    if (*e)
        elf_end(*e);
}

void plugin_keys_free(config_key *keys, size_t n)
{
    for (size_t i = 0; keys && i < n; i++) {
        free((char *)keys[i].name);
        free((char *)keys[i].type);
        free((char *)keys[i].def);
        free((char *)keys[i].help);
    }
    free(keys);
}

static bool key_name_is_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > KEYS_MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
              s[i] == '_'))
            return false;
    return true;
}

/* One record "name\037type\037default\037help" (without its \036), NUL-terminated in place. */
static int parse_record(char *rec, size_t idx, config_key *k, config_key *done, terok_error *err)
{
    char *f[4], *p = rec, tmp[64];
    const char *bad;
    size_t nf = 0;
    _cleanup_free_ char *why = NULL;

    for (;;) {
        char *sep = strchr(p, '\037');
        if (nf == 4)
            return terok_error_set(err, -EBADMSG,
                                   "key declaration %zu has more than 4 fields (name, type, "
                                   "default, help)",
                                   idx);
        f[nf++] = p;
        if (!sep)
            break;
        *sep = 0;
        p = sep + 1;
    }
    if (nf != 4)
        return terok_error_set(err, -EBADMSG,
                               "key declaration %zu has %zu field%s; expected 4 (name, type, "
                               "default, help)",
                               idx, nf, nf == 1 ? "" : "s");
    for (size_t i = 0; i < 4; i++) {
        size_t len = strlen(f[i]);
        if (len > KEYS_MAX_FIELD)
            return terok_error_set(err, -EBADMSG,
                                   "key declaration %zu has a field longer than %d bytes", idx,
                                   KEYS_MAX_FIELD);
        bad = config_text_problem((const unsigned char *)f[i], len, tmp, sizeof tmp);
        if (bad)
            return terok_error_set(err, -EBADMSG, "key declaration %zu %s", idx, bad);
    }
    if (!key_name_is_valid(f[0]))
        return terok_error_set(err, -EBADMSG,
                               "key declaration %zu has an invalid name '%s' (expected "
                               "[a-z0-9_-]+, at most %d characters)",
                               idx, f[0], KEYS_MAX_NAME);
    for (config_key *d = done; d < k; d++)
        if (streq(d->name, f[0]))
            return terok_error_set(err, -EBADMSG, "key '%s' is declared twice", f[0]);
    if (!config_type_is_valid(f[1]))
        return terok_error_set(err, -EBADMSG, "key '%s' has an unknown type '%s'", f[0], f[1]);
    if (*f[2] && config_check_value(f[1], f[2], &why) < 0)
        return terok_error_set(err, -EBADMSG, "key '%s' has an invalid default '%s': %s", f[0],
                               f[2], why ? why : "out of memory");
    *k = (config_key){strdup(f[0]), strdup(f[1]), strdup(f[2]), strdup(f[3])};
    if (!k->name || !k->type || !k->def || !k->help)
        return terok_error_set(err, -ENOMEM, "out of memory");
    return 0;
}

static int parse_declarations(const char *data, size_t size, config_key **ret_keys, size_t *ret_n,
                              terok_error *err)
{
    _cleanup_free_ char *buf = NULL;
    config_key *keys = NULL;
    size_t n = 0, count = 0;
    char *p;
    int r;

    /* The C string literal brings its terminating NUL (and a linker may pad): drop them. */
    while (size > 0 && data[size - 1] == 0)
        size--;
    if (size == 0) {
        *ret_keys = NULL;
        *ret_n = 0;
        return 0;
    }
    if (memchr(data, 0, size))
        return terok_error_set(err, -EBADMSG, "section '%s' contains a NUL byte",
                               TEROK_PLUGIN_KEYS_SECTION);
    if (data[size - 1] != '\036')
        return terok_error_set(err, -EBADMSG,
                               "section '%s' does not end with a record separator (\\036)",
                               TEROK_PLUGIN_KEYS_SECTION);
    for (size_t i = 0; i < size; i++)
        count += data[i] == '\036';
    if (count > KEYS_MAX_COUNT)
        return terok_error_set(err, -EBADMSG, "section '%s' declares more than %d keys",
                               TEROK_PLUGIN_KEYS_SECTION, KEYS_MAX_COUNT);
    buf = strndup(data, size);
    keys = calloc(count, sizeof(*keys));
    if (!buf || !keys) {
        free(keys);
        return terok_error_set(err, -ENOMEM, "out of memory");
    }
    p = buf;
    for (size_t i = 0; i < count; i++) {
        char *end = strchr(p, '\036');
        *end = 0;
        r = parse_record(p, i + 1, &keys[n], keys, err);
        if (r < 0) {
            plugin_keys_free(keys, n + 1);
            return r;
        }
        n++;
        p = end + 1;
    }
    *ret_keys = keys;
    *ret_n = n;
    return 0;
}

int plugin_keys_read(int fd, config_key **ret_keys, size_t *ret_n, terok_error *err)
{
    _cleanup_(elf_endp) Elf *e = NULL;
    Elf_Scn *scn = NULL, *found = NULL;
    Elf_Data *data;
    GElf_Shdr sh;
    GElf_Ehdr eh;
    size_t shstrndx, shnum, seen = 0;
    struct stat st;

    if (fd < 0 || !ret_keys || !ret_n)
        return terok_error_set(err, -EINVAL, "plugin_keys_read: invalid argument");
    if (elf_version(EV_CURRENT) == EV_NONE)
        return terok_error_set(err, -ELIBBAD, "libelf: %s", elf_errmsg(-1));
    if (fstat(fd, &st) < 0)
        return terok_error_set(err, negative_errno(), "cannot stat the file: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return terok_error_set(err, -EBADMSG, "not a regular file");
    if (st.st_size > KEYS_MAX_FILE)
        return terok_error_set(err, -EFBIG, "file is too large (%lld bytes)",
                               (long long)st.st_size);
    /* ELF_C_READ reads with pread as needed: a short file is an error, not a SIGBUS. */
    e = elf_begin(fd, ELF_C_READ, NULL);
    if (!e || elf_kind(e) != ELF_K_ELF)
        return terok_error_set(err, -EBADMSG, "not an ELF file");
    if (elf_getshdrstrndx(e, &shstrndx) < 0 || elf_getshdrnum(e, &shnum) < 0)
        return terok_error_set(err, -EBADMSG, "malformed ELF file: %s", elf_errmsg(-1));
    /* libelf trusts what fits: section headers past the end of a truncated file just make it
     * look as if it had none. Check the header's own numbers against the file. */
    if (!gelf_getehdr(e, &eh))
        return terok_error_set(err, -EBADMSG, "malformed ELF file: %s", elf_errmsg(-1));
    if (eh.e_shnum ? eh.e_shnum != shnum : eh.e_shoff != 0 && shnum == 0)
        return terok_error_set(err, -EBADMSG,
                               "malformed ELF file: its section headers lie past its end");
    if (shnum > 0 && (eh.e_shoff > (uint64_t)st.st_size ||
                      (uint64_t)st.st_size - eh.e_shoff < (uint64_t)shnum * eh.e_shentsize))
        return terok_error_set(err, -EBADMSG,
                               "malformed ELF file: its section headers lie past its end");
    while ((scn = elf_nextscn(e, scn))) {
        const char *name;

        if (!gelf_getshdr(scn, &sh))
            return terok_error_set(err, -EBADMSG, "malformed ELF file: %s", elf_errmsg(-1));
        name = elf_strptr(e, shstrndx, sh.sh_name);
        if (!name)
            return terok_error_set(err, -EBADMSG, "malformed ELF file: %s", elf_errmsg(-1));
        if (!streq(name, TEROK_PLUGIN_KEYS_SECTION)) {
            seen++;
            continue;
        }
        if (found)
            return terok_error_set(err, -EBADMSG, "more than one section '%s'",
                                   TEROK_PLUGIN_KEYS_SECTION);
        found = scn;
        seen++;
    }
    if (shnum > 0 && seen != shnum - 1)
        return terok_error_set(err, -EBADMSG, "malformed ELF file: %s", elf_errmsg(-1));
    if (!found) {
        /* A plugin that declares nothing accepts no keys in its section. */
        *ret_keys = NULL;
        *ret_n = 0;
        return 0;
    }
    if (!gelf_getshdr(found, &sh))
        return terok_error_set(err, -EBADMSG, "malformed ELF file: %s", elf_errmsg(-1));
    if (sh.sh_type == SHT_NOBITS)
        return terok_error_set(err, -EBADMSG, "section '%s' has no contents",
                               TEROK_PLUGIN_KEYS_SECTION);
    if (sh.sh_size > KEYS_MAX_SECTION)
        return terok_error_set(
            err, -EBADMSG, "section '%s' is too large (%llu bytes; the limit is %d)",
            TEROK_PLUGIN_KEYS_SECTION, (unsigned long long)sh.sh_size, KEYS_MAX_SECTION);
    if (sh.sh_size == 0) {
        *ret_keys = NULL;
        *ret_n = 0;
        return 0;
    }
    data = elf_getdata(found, NULL);
    if (!data)
        return terok_error_set(err, -EBADMSG, "cannot read section '%s': %s",
                               TEROK_PLUGIN_KEYS_SECTION, elf_errmsg(-1));
    if (!data->d_buf || data->d_size != sh.sh_size || elf_getdata(found, data))
        return terok_error_set(err, -EBADMSG, "cannot read section '%s': unexpected layout",
                               TEROK_PLUGIN_KEYS_SECTION);
    return parse_declarations(data->d_buf, data->d_size, ret_keys, ret_n, err);
}
