/* SPDX-License-Identifier: Apache-2.0 */
/* Replays a fuzz target's corpus without libFuzzer: each argument is a file or a directory of
 * files; every file is one input. Prints TAP, one line per input. A crash, a sanitizer report or
 * a hang fails the test (the process dies before the plan is complete). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

static int n_run;

static int run_file(const char *path)
{
    FILE *f = fopen(path, "re");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;

    if (!f) {
        printf("not ok %d - %s: %s\n", ++n_run, path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            uint8_t *grown = realloc(buf, cap = cap ? cap * 2 : 4096);
            if (!grown)
                abort();
            buf = grown;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    /* An exact-size copy, so ASan sees a read past the input's end. */
    uint8_t *in = malloc(len ? len : 1);
    if (!in)
        abort();
    memcpy(in, buf, len);
    free(buf);
    fflush(stdout);
    LLVMFuzzerTestOneInput(in, len);
    free(in);
    printf("ok %d - %s\n", ++n_run, path);
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;
    int r = 0;

    if (stat(path, &st) < 0) {
        printf("not ok %d - %s: %s\n", ++n_run, path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path);
    if (!(d = opendir(path))) {
        printf("not ok %d - %s: %s\n", ++n_run, path, strerror(errno));
        return -1;
    }
    while ((de = readdir(d))) {
        char *p;
        if (de->d_name[0] == '.')
            continue;
        if (asprintf(&p, "%s/%s", path, de->d_name) < 0)
            abort();
        char **grown = realloc(names, (n + 1) * sizeof *names);
        if (!grown)
            abort();
        names = grown;
        names[n++] = p;
    }
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n; i++) {
        if (run_path(names[i]) < 0)
            r = -1;
        free(names[i]);
    }
    free(names);
    return r;
}

int main(int argc, char **argv)
{
    int r = 0;

    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++)
        if (run_path(argv[i]) < 0)
            r = 1;
    if (n_run == 0) {
        /* An empty corpus would be a test that cannot fail. */
        printf("not ok 1 - no inputs in the corpus\n");
        n_run = 1;
        r = 1;
    }
    printf("1..%d\n", n_run);
    return r;
}
