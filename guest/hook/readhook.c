/* readhook.so: an LD_PRELOAD hook of libc read(), doing what the hook-latency paper's hook does:
 * intercept, minimal bookkeeping (one relaxed atomic increment of a call counter), call the
 * original. The counter lives in a shared mapping of the file named by $READHOOK_COUNT (8 bytes,
 * little-endian), so the number of hooked calls survives the process; without it the counter is
 * private. Built by simctl (cc -O2 -shared -fPIC) into the guest image as
 * /usr/local/lib/simctl/readhook.so. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

typedef ssize_t (*read_fn)(int, void *, size_t);

static read_fn real_read;
static _Atomic unsigned long private_counter;
static _Atomic unsigned long *counter = &private_counter;

static read_fn resolve(void) {
    read_fn next = (read_fn)dlsym(RTLD_NEXT, "read");
    real_read = next;
    return next;
}

__attribute__((constructor)) static void readhook_init(void) {
    resolve();
    const char *path = getenv("READHOOK_COUNT");
    if (path == NULL) {
        return;
    }
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) {
        return;
    }
    if (ftruncate(fd, sizeof(unsigned long)) == 0) {
        void *shared = mmap(NULL, sizeof(unsigned long), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (shared != MAP_FAILED) {
            counter = shared;
        }
    }
    close(fd);
}

ssize_t read(int fd, void *buf, size_t count) {
    read_fn next = real_read != NULL ? real_read : resolve();
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    return next(fd, buf, count);
}
