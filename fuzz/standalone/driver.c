/* SPDX-License-Identifier: MIT */
/*
 * fuzz/standalone/driver.c - a libFuzzer-compatible driver for machines whose
 * compiler has no libFuzzer runtime (the aarch64 cross build): link it
 * with one fuzz target and the sanitizers.
 *
 *   fuzz-<target> SECONDS SEED CRASH_FILE INPUT_OR_DIR...
 *
 * Replays every input once (the regression run), then, for SECONDS,
 * mutates inputs picked from them (bit flips, byte sets, inserts,
 * deletes, splices of two inputs) and runs each mutant.  Deterministic
 * for a given SEED.  The input being run is written to CRASH_FILE when a
 * sanitizer reports, or the target aborts on a divergence, so the case
 * can be replayed (`fuzz-<target> 0 0 /dev/null CRASH_FILE`).  Not
 * coverage-guided: it explores around the seed corpus, which the
 * libFuzzer runs (scripts/fuzz) keep rich.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void __sanitizer_set_death_callback(void (*cb)(void));

enum { INPUT_BYTES_MAX = 4096, NINPUTS_MAX = 4096 };

static uint8_t *inputs[NINPUTS_MAX];
static size_t sizes[NINPUTS_MAX], ninputs;
static uint8_t cur[INPUT_BYTES_MAX];
static size_t cur_len;
static const char *crash_file;

/* Write the input being run (async-signal-safe: open/write/close). */
static void dump_current(void)
{
    int fd = open(crash_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return;
    ssize_t w = write(fd, cur, cur_len);
    (void)w;
    close(fd);
    static const char msg[] = "standalone: the input is in the crash file\n";
    w = write(2, msg, sizeof msg - 1);
}

static void on_abort(int sig)
{
    dump_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void add_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f || ninputs == NINPUTS_MAX) {
        if (f)
            fclose(f);
        return;
    }
    uint8_t *buf = malloc(INPUT_BYTES_MAX);
    size_t n = fread(buf, 1, INPUT_BYTES_MAX, f);
    fclose(f);
    inputs[ninputs] = buf;
    sizes[ninputs++] = n;
}

static void add_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        add_file(path);
        return;
    }
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        add_file(p);
    }
    if (d)
        closedir(d);
}

static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void run(void)
{
    LLVMFuzzerTestOneInput(cur, cur_len);
}

static void mutate(void)
{
    size_t k = rng() % ninputs;
    cur_len = sizes[k];
    memcpy(cur, inputs[k], cur_len);
    for (int n = 1 + (int)(rng() % 4); n > 0; n--) {
        size_t at = cur_len ? rng() % cur_len : 0;
        switch (rng() % 5) {
        case 0:
            if (cur_len)
                cur[at] ^= (uint8_t)(1u << (rng() % 8));
            break;
        case 1:
            if (cur_len)
                cur[at] = (uint8_t)rng();
            break;
        case 2:
            if (cur_len < INPUT_BYTES_MAX) {
                memmove(cur + at + 1, cur + at, cur_len - at);
                cur[at] = (uint8_t)rng();
                cur_len++;
            }
            break;
        case 3:
            if (cur_len > 1) {
                memmove(cur + at, cur + at + 1, cur_len - at - 1);
                cur_len--;
            }
            break;
        default: {
            size_t o = rng() % ninputs, n2 = sizes[o];
            size_t from = n2 ? rng() % n2 : 0, len = n2 - from;
            if (at + len > INPUT_BYTES_MAX)
                len = INPUT_BYTES_MAX - at;
            memcpy(cur + at, inputs[o] + from, len);
            if (at + len > cur_len)
                cur_len = at + len;
            break;
        }
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s SECONDS SEED CRASH_FILE INPUT_OR_DIR...\n", argv[0]);
        return 2;
    }
    double secs = atof(argv[1]);
    rng_state = strtoull(argv[2], NULL, 0) * 2654435761u + 1;
    crash_file = argv[3];
    for (int i = 4; i < argc; i++)
        add_path(argv[i]);
    if (!ninputs) {
        fprintf(stderr, "no inputs\n");
        return 2;
    }
    __sanitizer_set_death_callback(dump_current);
    signal(SIGABRT, on_abort);

    for (size_t i = 0; i < ninputs; i++) {
        cur_len = sizes[i];
        memcpy(cur, inputs[i], cur_len);
        run();
    }
    unsigned long runs = ninputs;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) * 1e-9 >= secs)
            break;
        for (int k = 0; k < 16; k++, runs++) {
            mutate();
            run();
        }
    }
    printf("standalone: %zu inputs replayed, %lu runs in all, no report\n", ninputs, runs);
    return 0;
}
