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
