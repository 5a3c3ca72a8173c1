/* simctl-readbench N [WORK_ID]: reads 1 byte from /dev/zero N times through libc read()
 * (so an LD_PRELOAD hook sees every call) and prints the loop's duration in ns (CLOCK_MONOTONIC)
 * and the ns per read of its fastest window of WINDOW consecutive reads: on a shared host,
 * preemption only ever adds time, so the fastest window is the undisturbed cost.
 * With WORK_ID the loop sits between gem5 m5 workbegin and workend (magic instruction), so gem5
 * dumps its stats for exactly the reads. Dynamically linked on purpose: static binaries ignore
 * LD_PRELOAD. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define WINDOW 100

/* gem5's x86 m5 ops workbegin (0x5a) and workend (0x5b): 0F 04 <func:u16>, arguments in rdi,
 * rsi. Only gem5's own CPU models decode them; the driver passes WORK_ID only under gem5. */
static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void m5_work(int begin, unsigned long id) {
    if (begin) {
        __asm__ volatile(".byte 0x0f, 0x04; .word 0x5a" : : "D"(id), "S"(0UL) : "rax", "memory");
    } else {
        __asm__ volatile(".byte 0x0f, 0x04; .word 0x5b" : : "D"(id), "S"(0UL) : "rax", "memory");
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: simctl-readbench N [WORK_ID]\n");
        return 2;
    }
    long reads = atol(argv[1]);
    long work = argc > 2 ? atol(argv[2]) : -1;
    int fd = open("/dev/zero", O_RDONLY);
    if (fd < 0 || reads <= 0) {
        perror("simctl-readbench: /dev/zero");
        return 1;
    }
    char byte;
    long long fastest = -1;
    if (work >= 0) {
        m5_work(1, (unsigned long)work);
    }
    long long start = now_ns();
    long long window_start = start;
    for (long i = 0; i < reads; i++) {
        if (read(fd, &byte, 1) != 1) {
            perror("simctl-readbench: read");
            return 1;
        }
        if ((i + 1) % WINDOW == 0) {
            long long t = now_ns();
            if (fastest < 0 || t - window_start < fastest) {
                fastest = t - window_start;
            }
            window_start = t;
        }
    }
    long long end = now_ns();
    if (work >= 0) {
        m5_work(0, (unsigned long)work);
    }
    printf("%lld %.3f\n", end - start, fastest < 0 ? -1.0 : (double)fastest / WINDOW);
    return 0;
}
