/* SPDX-License-Identifier: Apache-2.0 */
/* The OCI hook's inputs (core/cli/cmd-hook.c, #included for its static parsers): the runtime
 * state JSON on stdin, its org.terok.shield.bundle annotation and pid, and the bundle path check
 * that splits <state>/containers/<name>/shield. Input: the state document as the engine writes
 * it to stdin; or, after a 0x01 byte, a --trust record (loader_trust_unmapped) and, after a 0x02
 * byte, the stat fields loader_file_id() records it from.
 *
 * The path check walks the path with lstat(); here lstat is a stand-in that answers from the
 * last component's name, so the walk is a pure function of the path: "missing" does not exist,
 * "link" is a symlink, "file" a regular file, "other" someone else's directory, "open" a
 * world-writable one, anything else a directory of ours (0700).
 *
 * What must hold: a refused state leaves nothing; a refused path says why; an accepted path is
 * exactly <state>/containers/<name>/shield with the container's dir <state>/containers/<name>,
 * a name without '/', and an absolute state dir; what loader_file_id() records,
 * loader_trust_unmapped() takes back (loader.h). */
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "loader.h"
#include "log.h"
#include "shield.h"
#include "spec.h"
#include "terok-build-config.h"

#include "fuzz.h"

static int fake_lstat(const char *path, struct stat *st);
#define lstat fake_lstat
#include "cmd-hook.c"
#undef lstat

static int stdin_fd = -1;

static int fake_lstat(const char *path, struct stat *st)
{
    const char *last = strrchr(path, '/');

    last = last ? last + 1 : path;
    *st = (struct stat){.st_mode = S_IFDIR | 0700, .st_uid = geteuid(), .st_nlink = 2};
    if (streq(last, "missing")) {
        errno = ENOENT;
        return -1;
    }
    if (streq(last, "link"))
        st->st_mode = S_IFLNK | 0777;
    else if (streq(last, "file"))
        st->st_mode = S_IFREG | 0600;
    else if (streq(last, "other"))
        st->st_uid = geteuid() + 1;
    else if (streq(last, "open"))
        st->st_mode = S_IFDIR | 0777;
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int fd = memfd_create("oci-state", MFD_CLOEXEC);

    log_set_max_level(LOG_CRIT);
    /* stdin is where the hook reads the state from: a memfd refilled for each input */
    if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
        abort();
    stdin_fd = fd;
    return 0;
}

static void check_path(const char *bundle)
{
    _cleanup_free_ char *state_dir = NULL, *name = NULL, *dir = NULL, *whole = NULL, *parent = NULL;
    const char *why = "";
    int r = check_bundle(bundle, &state_dir, &name, &dir, &why);

    if (r < 0) {
        if (r != -ENOMEM && isempty(why))
            abort();
        return;
    }
    if (!state_dir || !name || !dir || state_dir[0] != '/' || isempty(name) || strchr(name, '/'))
        abort();
    if (asprintf(&whole, "%s/containers/%s/shield", state_dir, name) < 0 ||
        asprintf(&parent, "%s/containers/%s", state_dir, name) < 0)
        abort();
    if (!streq(whole, bundle) || !streq(parent, dir))
        abort();
}

static void fuzz_state(const uint8_t *data, size_t size)
{
    json_object *state = NULL, *jpid;
    const char *bundle;
    int r;

    if (ftruncate(stdin_fd, 0) < 0 || pwrite(stdin_fd, data, size, 0) != (ssize_t)size ||
        lseek(stdin_fd, 0, SEEK_SET) != 0)
        abort();
    r = read_state(&state);
    if (r < 0) {
        if (state || (r != -EBADMSG && r != -E2BIG))
            abort();
        return;
    }
    if (!json_object_is_type(state, json_type_object))
        abort();
    /* what cmd_hook() takes from it */
    bundle = annotation(state, SPEC_SHIELD_BUNDLE_ANNOTATION);
    if (json_object_object_get_ex(state, "pid", &jpid) && json_object_is_type(jpid, json_type_int))
        (void)json_object_get_int64(jpid);
    if (bundle)
        check_path(bundle);
    json_object_put(state);
}

static void fuzz_trust(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size);

    (void)loader_trust_unmapped(s);
    loader_trust_reset();
    free(s);
}

static void fuzz_file_id(const uint8_t *data, size_t size)
{
    struct stat st = {0};
    uint64_t v[4] = {0};
    char *id;
    int r;

    memcpy(v, data, MIN(size, sizeof v));
    st.st_dev = (dev_t)(v[0] & UINT32_MAX); /* the kernel encodes a dev_t in 32 bits */
    st.st_ino = (ino_t)v[1];
    st.st_ctim.tv_sec = (time_t)(v[2] & INT64_MAX);
    st.st_ctim.tv_nsec = (long)(v[3] % 1000000000);
    st.st_mode = v[3] & (UINT64_C(1) << 63) ? S_IFDIR | 0755 : S_IFREG | 0755;
    if (!(id = loader_file_id(&st)))
        abort();
    r = loader_trust_unmapped(id);
    if (r < 0) {
        fprintf(stderr, "loader_trust_unmapped('%s'): %s\n", id, strerror(-r));
        abort();
    }
    loader_trust_reset();
    free(id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 1 && data[0] == 0x01)
        fuzz_trust(data + 1, size - 1);
    else if (size >= 1 && data[0] == 0x02)
        fuzz_file_id(data + 1, size - 1);
    else
        fuzz_state(data, size);
    return 0;
}
