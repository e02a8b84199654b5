/* memtouch: a workload that checks its own memory across checkpoint and restore.
 *
 *   memtouch MIB [READY_FILE [sparse|mixed [stamp|-] [busy]]]]
 *
 * Touches MIB MiB, writes MIB to READY_FILE (if given), then every 100 ms flips a byte in
 * each of 8 pages (with "busy": in every other page, so half the memory is rewritten
 * continuously) and prints
 *     tick N pid P sum S ok        (or BAD instead of ok)
 * where S is recomputed from every page and compared with the sum it expects from the flips
 * it made: a restore that lost or mixed up a page prints BAD (zdtm-style: the workload, not
 * the harness, judges its state).
 * Fill: "sparse" (default) one byte per page, the rest zero; "mixed" 1 KiB of pseudo-random
 * bytes and 3 KiB of repeated text per page, about as compressible as a real heap.
 * With "stamp", a child prints "stamp MS" (CLOCK_REALTIME, milliseconds) every 10 ms: the
 * largest gap between two stamps is the downtime the workload saw.
 * Calls setsid() so the dumped tree owns its session (no --shell-job needed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static unsigned long long page_sum(const unsigned char *buf, size_t len) {
    unsigned long long s = 0;
    for (size_t i = 0; i < len; i += PAGE) s += buf[i];
    return s;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    const char *ready = argc > 2 ? argv[2] : NULL;
    int mixed = argc > 3 && strcmp(argv[3], "mixed") == 0;
    int stamp = argc > 4 && strcmp(argv[4], "stamp") == 0;
    int busy = argc > 5 && strcmp(argv[5], "busy") == 0;
    size_t len = mib << 20;
    setsid();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (stamp && fork() == 0) {
        for (;;) {
            struct timespec now, tick = {0, 10 * 1000 * 1000};
            clock_gettime(CLOCK_REALTIME, &now);
            printf("stamp %lld\n", (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
            nanosleep(&tick, NULL);
        }
    }
    unsigned char *buf = malloc(len);
    if (!buf) { perror("malloc"); return 1; }
    static const char text[] = "the quick brown fox jumps over the lazy dog; container memory page ";
    unsigned long long x = 88172645463325252ULL;
    for (size_t i = 0; i < len; i += PAGE) {
        if (!mixed) { buf[i] = (unsigned char)(i / PAGE) | 1; continue; }
        for (size_t j = 0; j < 1024; j += 8) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            memcpy(buf + i + j, &x, 8);
        }
        for (size_t j = 1024; j < PAGE; j++) buf[i + j] = text[(j + i / PAGE) % (sizeof text - 1)];
    }
    if (ready) { FILE *f = fopen(ready, "w"); if (f) { fprintf(f, "%zu\n", mib); fclose(f); } }
    size_t pages = len / PAGE;
    unsigned long long expected = page_sum(buf, len);
    size_t flips = busy ? (pages + 1) / 2 : 8;
    for (unsigned long n = 0;; n++) {
        for (size_t k = 0; k < flips; k++) {
            unsigned char *b = buf + (busy ? (2 * k + (n & 1)) % pages : (n * 8 + k) % pages) * PAGE;
            expected -= *b;
            *b ^= 0x5a;
            expected += *b;
        }
        unsigned long long sum = page_sum(buf, len);
        printf("tick %lu pid %d sum %llu %s\n", n, getpid(), sum, sum == expected ? "ok" : "BAD");
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
