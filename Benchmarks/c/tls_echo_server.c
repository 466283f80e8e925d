/*
 * Thread-per-connection TLS line echo server on OpenSSL: the ceiling of the
 * model the project's echo-server uses with --tls-cert/--tls-key, as the
 * reference of the TLS benchmark rows. Same protocol and shape as
 * echo_server.c, with blocking SSL_read/SSL_write in place of recv/send.
 *
 *   tls_echo_server --cert FILE --key FILE [--host 127.0.0.1] [--port 7007]
 *
 * Once listening it prints exactly one line `listening on HOST:PORT` (the real
 * port; `--port 0` lets the kernel choose) and flushes stdout. Exits 0 on
 * SIGTERM/SIGINT.
 *
 * The context is set up as the project's SocketServerTLS sets up its own
 * (TLSContext.init(server:)), so that the only difference measured is the
 * code around OpenSSL: OpenSSL's defaults plus SSL_OP_ALL, no compression, no
 * renegotiation, the server's cipher order, TLS 1.2 at least, a session id
 * context; OpenSSL's default session cache and its default two TLS 1.3
 * session tickets per handshake (the benchmark's client never resumes).
 *
 * Per connection: one detached pthread with default attributes. The
 * handshake (SSL_accept) runs on that thread, never in the accept loop. The
 * socket BIO is OpenSSL's own (SSL_set_fd); SIGPIPE is ignored for the whole
 * process, which is what makes that safe (OpenSSL's socket BIO uses write(2)).
 * The line buffer is on the heap: 16 KiB, grown (doubling) up to MAX_LINE + 1
 * only while a single line does not fit; each SSL_read returns at most one
 * record (16 KiB of plaintext). Lines are found with memchr and each complete
 * line is written back with one SSL_write (one record per line up to 16 KiB).
 * A line longer than MAX_LINE bytes (LF included) closes the connection. At
 * the peer's close_notify the server answers with its own, then closes.
 *
 * Build: cc -O2 -pthread -o tls_echo_server tls_echo_server.c $(pkg-config --cflags --libs openssl)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_LINE 65536 /* maximum line length in bytes, LF included */
#define INITIAL_BUF 16384
#define BACKLOG 1024

static SSL_CTX *ctx;

static void on_signal(int sig) {
    (void)sig;
    _exit(0);
}

static int ssl_write_all(SSL *ssl, const char *p, size_t n) {
    while (n > 0) {
        size_t w = 0;
        if (SSL_write_ex(ssl, p, n, &w) != 1)
            return -1;
        p += w;
        n -= w;
    }
    return 0;
}

static void *serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    SSL *ssl = SSL_new(ctx);
    char *buf = NULL;
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_accept(ssl) != 1)
        goto done;

    size_t cap = INITIAL_BUF;
    buf = malloc(cap);
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
        size_t r = 0;
        if (SSL_read_ex(ssl, buf + end, cap - end, &r) != 1) {
            /* The peer's close_notify: answer it. Anything else (a reset, a
             * close without close_notify): the session is gone. */
            if (SSL_get_error(ssl, 0) == SSL_ERROR_ZERO_RETURN)
                SSL_shutdown(ssl);
            break;
        }
        end += r;

        /* Echo every complete line. */
        int failed = 0;
        for (;;) {
            char *nl = memchr(buf + start + scanned, '\n', end - start - scanned);
            if (!nl) {
                scanned = end - start;
                break;
            }
            size_t len = (size_t)(nl - (buf + start)) + 1;
            if (len > MAX_LINE || ssl_write_all(ssl, buf + start, len) < 0) {
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
done:
    free(buf);
    SSL_free(ssl);
    ERR_clear_error(); /* this thread's error queue, before it ends */
    close(fd);
    return NULL;
}

static void usage(void) {
    fprintf(stderr, "usage: tls_echo_server --cert FILE --key FILE [--host H] [--port P]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    const char *port = "7007";
    const char *cert = NULL, *key = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--host") && i + 1 < argc)
            host = argv[++i];
        else if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = argv[++i];
        else if (!strcmp(argv[i], "--cert") && i + 1 < argc)
            cert = argv[++i];
        else if (!strcmp(argv[i], "--key") && i + 1 < argc)
            key = argv[++i];
        else
            usage();
    }
    if (!cert || !key)
        usage();

    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    ctx = SSL_CTX_new(TLS_server_method());
    static const unsigned char sid[] = "tls_echo_server";
    if (!ctx ||
        !SSL_CTX_set_options(ctx, SSL_OP_ALL | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                      SSL_OP_CIPHER_SERVER_PREFERENCE) ||
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1 ||
        SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1) != 1) {
        fprintf(stderr, "tls_echo_server: cannot set up TLS with %s and %s:\n", cert, key);
        ERR_print_errors_fp(stderr);
        return 1;
    }

    struct addrinfo hints = {0}, *ai;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "tls_echo_server: %s:%s: %s\n", host, port, gai_strerror(rc));
        return 1;
    }
    int lfd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    int one = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(lfd, BACKLOG) < 0) {
        fprintf(stderr, "tls_echo_server: cannot listen on %s:%s: %s\n", host, port, strerror(errno));
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
                perror("tls_echo_server: accept");
                usleep(10000);
                continue;
            }
            perror("tls_echo_server: accept");
            return 1;
        }
        /* Same as SwiftNIO's default for accepted sockets. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        if (pthread_create(&t, &attr, serve, (void *)(intptr_t)fd) != 0) {
            perror("tls_echo_server: pthread_create");
            close(fd);
        }
    }
}
