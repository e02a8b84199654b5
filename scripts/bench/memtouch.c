/* Benchmark workload: touches N MiB (every page, a different byte), says so in READY_FILE,
 * then keeps a small part of the memory busy so the process is never idle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    const char *ready = argc > 2 ? argv[2] : NULL;
    size_t len = mib << 20, page = 4096;
    unsigned char *buf = malloc(len);
    if (!buf) { perror("malloc"); return 1; }
    for (size_t i = 0; i < len; i += page) buf[i] = (unsigned char)(i / page) | 1;
    if (ready) { FILE *f = fopen(ready, "w"); if (f) { fprintf(f, "%zu\n", mib); fclose(f); } }
    for (unsigned long n = 0;; n++) {
        buf[(n * page) % len] ^= 0x5a;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
