// A few libc calls that Swift's Glibc module does not show without
// _GNU_SOURCE. Each is a thin, inline pass-through.
#ifndef C_SOCKET_SERVER_H
#define C_SOCKET_SERVER_H

#ifdef __linux__
#include <sys/socket.h>
#include <sys/types.h>

int csocketserver_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
/// gettid(2): the kernel id of the calling thread.
int csocketserver_gettid(void);
/// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)
int csocketserver_eventfd(void);
/// pipe2(2): a pipe with `flags` (O_CLOEXEC) on both ends.
int csocketserver_pipe2(int fds[2], int flags);
/// recv(2) and send(2) without glibc's cancellation-point wrapper (see
/// shims.c): -1 and errno on failure, as the libc calls.
long csocketserver_recv(int fd, void *buf, unsigned long len, int flags);
long csocketserver_send(int fd, const void *buf, unsigned long len, int flags);
/// sendfile(2): out_fd, in_fd, offset in/out, count.
long csocketserver_sendfile(int out_fd, int in_fd, long long *offset, unsigned long count);
#endif

#endif
