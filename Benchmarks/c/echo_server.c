/*
 * Minimal thread-per-connection line echo server: the ceiling of the model the
 * project's threading echo-server uses, as a reference for the benchmarks.
 *
 *   echo_server [--host 127.0.0.1] [--port 7007]
 *
 * Once listening it prints exactly one line `listening on HOST:PORT` (the real
 * port; `--port 0` lets the kernel choose) and flushes stdout. Exits 0 on
 * SIGTERM/SIGINT.
 *
 * Per connection: one detached pthread with default attributes. The default
 * stack is RLIMIT_STACK (8 MiB here) of *virtual* memory; only the pages that
 * are touched (a few KiB) count towards RSS, so the idle-memory benchmark sees
 * the real cost. The line buffer is on the heap: 16 KiB, grown (doubling) up to
 * MAX_LINE + 1 only while a single line does not fit. Lines are found with
 * memchr and each complete line is written back with one send(MSG_NOSIGNAL).
 * A line longer than MAX_LINE bytes (including the LF) closes the connection.
 *
 * Build: cc -O2 -pthread -o echo_server echo_server.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_LINE 65536      /* maximum line length in bytes, LF included */
#define INITIAL_BUF 16384
#define BACKLOG 1024

static void on_signal(int sig) {
    (void)sig;
    _exit(0);
}

static int send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void *serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    size_t cap = INITIAL_BUF;
    char *buf = malloc(cap);
    size_t start = 0, end = 0; /* unconsumed bytes are buf[start, end) */
    size_t scanned = 0;        /* bytes of buf[start, end) known to have no LF */

    while (buf) {
        if (end == cap) {
            /* Buffer full: make room by compacting, else grow. */
            if (start > 0) {
                memmove(buf, buf + start, end - start);
                end -= start;
                start = 0;
            } else if (cap < MAX_LINE + 1) {
                size_t ncap = cap * 2 > MAX_LINE + 1 ? MAX_LINE + 1 : cap * 2;
                char *nbuf = realloc(buf, ncap);
                if (!nbuf)
                    break;
                buf = nbuf;
                cap = ncap;
            } else {
                break; /* line longer than MAX_LINE */
            }
        }
        ssize_t r = recv(fd, buf + end, cap - end, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        end += (size_t)r;

        /* Echo every complete line. */
        int failed = 0;
        for (;;) {
            char *nl = memchr(buf + start + scanned, '\n', end - start - scanned);
            if (!nl) {
                scanned = end - start;
                break;
            }
            size_t len = (size_t)(nl - (buf + start)) + 1;
            if (len > MAX_LINE || send_all(fd, buf + start, len) < 0) {
                failed = 1;
                break;
            }
            start += len;
            scanned = 0;
        }
        if (failed)
            break;
        if (start == end)
            start = end = 0;
        if (end - start > MAX_LINE)
            break; /* no LF within MAX_LINE bytes */
    }
    free(buf);
    close(fd);
    return NULL;
}

static void usage(void) {
    fprintf(stderr, "usage: echo_server [--host H] [--port P]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    const char *port = "7007";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--host") && i + 1 < argc)
            host = argv[++i];
        else if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = argv[++i];
        else
            usage();
    }

    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    struct addrinfo hints = {0}, *ai;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "echo_server: %s:%s: %s\n", host, port, gai_strerror(rc));
        return 1;
    }
    int lfd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    int one = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(lfd, BACKLOG) < 0) {
        fprintf(stderr, "echo_server: cannot listen on %s:%s: %s\n", host, port, strerror(errno));
        return 1;
    }
    freeaddrinfo(ai);

    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(lfd, (struct sockaddr *)&ss, &sl);
    int bound = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    printf("listening on %s:%d\n", host, bound);
    fflush(stdout);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);

    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                perror("echo_server: accept");
                usleep(10000);
                continue;
            }
            perror("echo_server: accept");
            return 1;
        }
        /* Same as SwiftNIO's default for accepted sockets. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        if (pthread_create(&t, &attr, serve, (void *)(intptr_t)fd) != 0) {
            perror("echo_server: pthread_create");
            close(fd);
        }
    }
}
