/*
 * replay.c - runs a fuzz target on files, without libFuzzer, so that
 * `make test` replays the corpus and every input that ever crashed under
 * AddressSanitizer and UndefinedBehaviorSanitizer on any machine.
 *
 *   replay_NAME [FILE|DIR ...]
 *
 * Without arguments it replays tests/fuzz/corpus/NAME and
 * tests/fuzz/crashes/NAME (NAME compiled in as DN_FUZZ_NAME). Prints a
 * cmocka-style summary line that tests/run counts (the replay is one
 * test); if an input crashes, the process dies and its name is printed
 * first.
 */
#include "fuzz.h"
#include "internal.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef DN_FUZZ_NAME
#error "DN_FUZZ_NAME must name the target"
#endif

/* The input being replayed, for the last words of a crash. */
static char current[1024];

static void say_current(void)
{
    if (current[0]) {
        static const char pre[] = "replay " DN_FUZZ_NAME ": died on ";
        ssize_t w = write(2, pre, sizeof pre - 1);
        w = write(2, current, strlen(current));
        w = write(2, "\n", 1);
        (void)w;
    }
}

static void on_signal(int sig)
{
    say_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define HAVE_SANITIZER 1
#endif
#endif
#ifdef HAVE_SANITIZER
/* Sanitizers end the process themselves; this runs just before. */
void __sanitizer_set_death_callback(void (*callback)(void));
#endif

static int replay_file(const char *path)
{
    uint8_t *buf;
    size_t n;
    dn_error err = {0};
    if (dn_read_regular(path, (uint64_t)1 << 30, &buf, &n, &err) != DN_OK) {
        fprintf(stderr, "replay " DN_FUZZ_NAME ": %s\n", err.msg);
        return -1;
    }
    snprintf(current, sizeof current, "%s", path);
    /* An exact-size copy, so that a read one past the end is caught. */
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    current[0] = 0;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays path (a file, or every file of a directory in name order);
 * returns how many inputs ran, or -1 on an unreadable input. A missing
 * directory holds no inputs. */
static long replay_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    if (!S_ISDIR(st.st_mode))
        return replay_file(path) == 0 ? 1 : -1;
    DIR *d = opendir(path);
    if (!d)
        return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn)
                break;
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    long count = 0;
    for (size_t i = 0; i < n; i++) {
        char file[2048];
        snprintf(file, sizeof file, "%s/%s", path, names[i]);
        if (count >= 0 && stat(file, &st) == 0 && S_ISREG(st.st_mode))
            count = replay_file(file) == 0 ? count + 1 : -1;
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    static const char *const defaults[] = {"tests/fuzz/corpus/" DN_FUZZ_NAME,
                                           "tests/fuzz/crashes/" DN_FUZZ_NAME};
    const char *const *paths = argc > 1 ? (const char *const *)argv + 1 : defaults;
    int n_paths = argc > 1 ? argc - 1 : 2;
    signal(SIGSEGV, on_signal);
    signal(SIGABRT, on_signal);
    signal(SIGBUS, on_signal);
    signal(SIGFPE, on_signal);
#ifdef HAVE_SANITIZER
    __sanitizer_set_death_callback(say_current);
#endif
    long total = 0;
    for (int i = 0; i < n_paths; i++) {
        long n = replay_path(paths[i]);
        if (n < 0) {
            printf("[  FAILED  ] 1 test(s), listed below:\n[  FAILED  ] replay %s\n",
                   paths[i]);
            return 1;
        }
        total += n;
    }
    printf("[==========] replay " DN_FUZZ_NAME ": %ld inputs\n", total);
    if (total == 0) {
        printf("[  FAILED  ] 1 test(s), listed below:\n[  FAILED  ] no inputs\n");
        return 1;
    }
    printf("[  PASSED  ] 1 test(s).\n");
    return 0;
}
