#ifdef __linux__
#define _GNU_SOURCE
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include "CSocketServer.h"

int csocketserver_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return accept4(fd, addr, len, flags);
}

#include <unistd.h>
#include <sys/syscall.h>

int csocketserver_gettid(void) {
    return (int)syscall(SYS_gettid);
}

// recv and send are the two calls of every echoed line. glibc makes each
// a thread-cancellation point: two extra calls that switch asynchronous
// cancellation on and off around the system call (about 60 of the ~120
// instructions libc spends per line). The library never cancels a thread
// (pthread_cancel would unwind through Swift frames, which is undefined),
// so it calls the kernel through syscall(2) instead. Under a sanitizer the
// libc functions are kept: their interceptors check the buffers (ASan) and
// see the descriptor as a synchronization point (TSan).
#if defined(__has_feature)
#  if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#    define CSOCKETSERVER_LIBC_IO 1
#  endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#  define CSOCKETSERVER_LIBC_IO 1
#endif

long csocketserver_recv(int fd, void *buf, unsigned long len, int flags) {
#ifdef CSOCKETSERVER_LIBC_IO
    return (long)recv(fd, buf, len, flags);
#else
    return syscall(SYS_recvfrom, fd, buf, len, flags, (void *)0, (void *)0);
#endif
}

long csocketserver_send(int fd, const void *buf, unsigned long len, int flags) {
#ifdef CSOCKETSERVER_LIBC_IO
    return (long)send(fd, buf, len, flags);
#else
    return syscall(SYS_sendto, fd, buf, len, flags, (void *)0, 0);
#endif
}

int csocketserver_pipe2(int fds[2], int flags) {
    return pipe2(fds, flags);
}

int csocketserver_eventfd(void) {
    return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

long csocketserver_sendfile(int out_fd, int in_fd, long long *offset, unsigned long count) {
    off_t off = (off_t)*offset;
    ssize_t n = sendfile(out_fd, in_fd, &off, count);
    *offset = (long long)off;
    return (long)n;
}
#endif
