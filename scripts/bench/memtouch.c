/* Benchmark workload: touches N MiB, says so in READY_FILE, then keeps a small part of the
 * memory busy so the process is never idle.
 * Fill (third argument): "sparse" (default) writes one byte per page, the rest stays zero;
 * "mixed" fills each page with 1 KiB of pseudo-random bytes and 3 KiB of repeated text, about
 * as compressible as a real heap (zstd -3 shrinks it to roughly a third). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    const char *ready = argc > 2 ? argv[2] : NULL;
    int mixed = argc > 3 && strcmp(argv[3], "mixed") == 0;
    size_t len = mib << 20, page = 4096;
    unsigned char *buf = malloc(len);
    if (!buf) { perror("malloc"); return 1; }
    static const char text[] = "the quick brown fox jumps over the lazy dog; container memory page ";
    unsigned long long x = 88172645463325252ULL;
    for (size_t i = 0; i < len; i += page) {
        if (!mixed) { buf[i] = (unsigned char)(i / page) | 1; continue; }
        for (size_t j = 0; j < 1024; j += 8) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            memcpy(buf + i + j, &x, 8);
        }
        for (size_t j = 1024; j < page; j++) buf[i + j] = text[(j + i / page) % (sizeof text - 1)];
    }
    if (ready) { FILE *f = fopen(ready, "w"); if (f) { fprintf(f, "%zu\n", mib); fclose(f); } }
    for (unsigned long n = 0;; n++) {
        buf[(n * page) % len] ^= 0x5a;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
