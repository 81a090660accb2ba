/* iobench: the two timed loops of `make bench` that a shell cannot run without measuring
 * itself, each timed inside the process (CLOCK_MONOTONIC) so that no interpreter or fork is in
 * the figure. Prints the elapsed seconds on standard output; exits 1 on any failed call.
 *
 *   iobench randread <file> <count> <seed>   <count> 4 KiB preads at offsets drawn from <seed>
 *   iobench stat <directory> <names-file>    stat(2) of <directory>/<name> for each line
 *   iobench open <directory> <names-file>    open(2) + close(2) of <directory>/<name> for each line
 *
 * The offsets depend only on <seed> and the file's size, so every contender reads the same list.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* splitmix64: the same seed always gives the same offsets. */
static uint64_t next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int randread(const char *path, long count, uint64_t seed) {
    enum { block = 4096 };
    int fd = open(path, O_RDONLY);
    if (fd < 0) { fprintf(stderr, "iobench: open %s: %s\n", path, strerror(errno)); return 1; }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < block) { fprintf(stderr, "iobench: %s: too small\n", path); return 1; }
    uint64_t blocks = (uint64_t)st.st_size / block;
    off_t *offsets = malloc(sizeof(off_t) * (size_t)count);
    uint64_t state = seed;
    for (long i = 0; i < count; i++) offsets[i] = (off_t)(next(&state) % blocks) * block;
    static char buffer[block] __attribute__((aligned(4096)));
    double start = now();
    for (long i = 0; i < count; i++) {
        ssize_t n = pread(fd, buffer, block, offsets[i]);
        if (n != block) {
            fprintf(stderr, "iobench: pread %s at %lld: %zd (%s)\n", path, (long long)offsets[i], n, n < 0 ? strerror(errno) : "short");
            return 1;
        }
    }
    double elapsed = now() - start;
    close(fd);
    printf("%.6f\n", elapsed);
    return 0;
}

/* Reads <directory>/<name> for each line of namesFile into a list. */
static char **readpaths(const char *directory, const char *namesFile, size_t *countOut) {
    FILE *names = fopen(namesFile, "r");
    if (!names) { fprintf(stderr, "iobench: %s: %s\n", namesFile, strerror(errno)); return NULL; }
    size_t capacity = 1024, count = 0;
    char **paths = malloc(sizeof(char *) * capacity);
    char line[4096];
    while (fgets(line, sizeof line, names)) {
        line[strcspn(line, "\n")] = 0;
        if (!*line) continue;
        if (count == capacity) paths = realloc(paths, sizeof(char *) * (capacity *= 2));
        if (asprintf(&paths[count++], "%s/%s", directory, line) < 0) return NULL;
    }
    fclose(names);
    *countOut = count;
    return paths;
}

/* open(2) and close(2) of each file: what an open costs where the names are already known. */
static int openall(const char *directory, const char *namesFile) {
    size_t count = 0;
    char **paths = readpaths(directory, namesFile, &count);
    if (!paths) return 1;
    double start = now();
    for (size_t i = 0; i < count; i++) {
        int fd = open(paths[i], O_RDONLY);
        if (fd < 0) { fprintf(stderr, "iobench: open %s: %s\n", paths[i], strerror(errno)); return 1; }
        close(fd);
    }
    double elapsed = now() - start;
    printf("%.6f\n", elapsed);
    return 0;
}

static int statall(const char *directory, const char *namesFile) {
    size_t count = 0;
    char **paths = readpaths(directory, namesFile, &count);
    if (!paths) return 1;
    struct stat st;
    double start = now();
    for (size_t i = 0; i < count; i++) {
        if (stat(paths[i], &st) != 0) { fprintf(stderr, "iobench: stat %s: %s\n", paths[i], strerror(errno)); return 1; }
    }
    double elapsed = now() - start;
    printf("%.6f\n", elapsed);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "randread") == 0) return randread(argv[2], atol(argv[3]), strtoull(argv[4], NULL, 0));
    if (argc == 4 && strcmp(argv[1], "stat") == 0) return statall(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "open") == 0) return openall(argv[2], argv[3]);
    fprintf(stderr, "usage: iobench randread <file> <count> <seed> | iobench stat <directory> <names-file>\n");
    return 2;
}
