/*
 * TLS load generator for the line-echo benchmarks: the TLS counterpart of
 * loadgen.c, on OpenSSL. Talks to HOST:PORT (always 127.0.0.1 in the
 * benchmarks), verifies every echoed byte and prints one JSON object with the
 * results on stdout (diagnostics go to stderr). Exit status is 0 only if the
 * run completed without any error (mismatched byte, unexpected EOF, TLS or
 * socket error, stall, a resumed session).
 *
 *   tls_loadgen rr        --port P [--conns C] [--threads T] [--size 64] [--warmup S] [--duration S]
 *   tls_loadgen bulk      --port P [--line 16384] [--window 4194304] [--warmup S] [--duration S]
 *   tls_loadgen handshake --port P [--conns C] [--threads T] [--size 64] [--warmup S] [--duration S]
 *   common: [--host 127.0.0.1] [--timeout S] [--ciphersuites TLS_AES_256_GCM_SHA384] [--groups X25519]
 *
 * TLS: every connection offers TLS 1.3 only, one cipher suite (--ciphersuites,
 * default TLS_AES_256_GCM_SHA384) and one key-exchange group (--groups,
 * default X25519), so that every server negotiates the same; what was
 * negotiated is reported ("tls", "cipher", "group"). The server's certificate
 * is not verified (the CertificateVerify signature is, as TLS 1.3 requires):
 * the benchmarks measure servers, and chain verification would only add client
 * work. No session is ever offered for resumption, so every handshake is a
 * full one; a resumed session is an error. The session tickets servers send
 * are read and counted ("tickets" per connection) but never used.
 *
 * rr         C persistent connections (handshakes made before the clock
 *            starts) doing request/response: send one line of --size bytes
 *            (LF included), wait for the whole echo, verify, repeat. Reports
 *            requests/s and p50/p99 latency (send -> full echo received). With
 *            one connection per thread (C = T, e.g. C = 1) each thread does
 *            blocking SSL_write/SSL_read; otherwise the connections are spread
 *            over T threads, each a level-triggered epoll loop over its share
 *            of non-blocking sessions.
 * bulk       One connection; 16 KiB lines (--line) streamed while the echo is
 *            read and verified, the writer at most --window bytes ahead.
 *            OpenSSL does not allow one session to be used by two threads at
 *            once, so unlike loadgen.c one thread does both, with poll() on a
 *            non-blocking socket. Reports MB/s (10^6 bytes per second of
 *            echoed data, one direction).
 * handshake  C concurrent workers (spread over T epoll threads), each
 *            repeating: connect, full TLS handshake, send one line, read and
 *            verify its echo, send close_notify, close. Reports handshakes/s
 *            (cycles completed) and the p50/p99 time of a whole cycle.
 *
 * The timed workloads run --warmup seconds unmeasured, then --duration
 * seconds measured; only work completed inside the measured window counts.
 * CPU use of the load generator itself over the measured window (getrusage,
 * user+system, percent of one core) is reported as "cpu_pct".
 *
 * Every loop is bounded in time: --timeout (default 10 s) is the longest any
 * single request, handshake or bulk transfer may go without progress.
 *
 * Build: cc -O2 -pthread -o tls_loadgen tls_loadgen.c $(pkg-config --cflags --libs openssl)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE 65536
#define NS 1000000000LL

/* ---------------------------------------------------------------- options */

static struct {
    const char *host;
    int port;
    int conns;
    int threads;
    int size;
    int line;
    long window;
    double warmup;
    double duration;
    double timeout;
    const char *ciphersuites;
    const char *groups;
} opt = {
    .host = "127.0.0.1",
    .port = 0,
    .conns = -1,
    .threads = 1,
    .size = 64,
    .line = 16384,
    .window = 4L << 20,
    .warmup = 1.0,
    .duration = 4.0,
    .timeout = 10.0,
    .ciphersuites = "TLS_AES_256_GCM_SHA384",
    .groups = "X25519",
};

static struct sockaddr_in server_addr;
static SSL_CTX *ctx;

/* ------------------------------------------------------------ utilities */

#define LOADGEN_NAME "tls_loadgen"
#include "loadgen_common.h"

/* Why a TLS call failed, for an error message: OpenSSL's reason, errno, or
 * the end of the stream. Clears this thread's error queue. */
static const char *tls_failure(SSL *ssl, int ret, char *buf, size_t n) {
    int code = SSL_get_error(ssl, ret);
    unsigned long e = ERR_peek_error();
    if (code == SSL_ERROR_ZERO_RETURN)
        snprintf(buf, n, "close_notify (unexpected end of the session)");
    else if (code == SSL_ERROR_SYSCALL && e == 0)
        snprintf(buf, n, "%s", errno ? strerror(errno) : "unexpected EOF");
    else if (e != 0) {
        char reason[160];
        ERR_error_string_n(e, reason, sizeof reason);
        snprintf(buf, n, "%s", reason);
    } else if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE)
        snprintf(buf, n, "timeout");
    else
        snprintf(buf, n, "TLS error %d", code);
    ERR_clear_error();
    return buf;
}

/* What the first completed handshake negotiated, for the report. */
static pthread_once_t negotiated_once = PTHREAD_ONCE_INIT;
static SSL *negotiated_ssl;
static char negotiated_version[32] = "?", negotiated_cipher[64] = "?", negotiated_group[32] = "?";
static atomic_long tickets_seen;
static atomic_long resumed_count;

static void record_negotiated(void) {
    SSL *ssl = negotiated_ssl;
    snprintf(negotiated_version, sizeof negotiated_version, "%s", SSL_get_version(ssl));
    snprintf(negotiated_cipher, sizeof negotiated_cipher, "%s",
             SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
    int nid = SSL_get_negotiated_group(ssl);
    const char *name = nid > 0 ? OBJ_nid2sn(nid) : NULL;
    snprintf(negotiated_group, sizeof negotiated_group, "%s", name ? name : "?");
}

/* After a completed handshake: a resumed session is an error (every
 * handshake must be a full one); the first one's parameters are kept. */
static int check_handshake(SSL *ssl) {
    if (SSL_session_reused(ssl)) {
        atomic_fetch_add(&resumed_count, 1);
        report_error("the server resumed a session: every handshake must be full");
        return -1;
    }
    negotiated_ssl = ssl;
    pthread_once(&negotiated_once, record_negotiated);
    return 0;
}

/* A session ticket arrived: count it, keep nothing (0: OpenSSL frees it). */
static int on_new_session(SSL *ssl, SSL_SESSION *session) {
    (void)ssl;
    (void)session;
    atomic_fetch_add(&tickets_seen, 1);
    return 0;
}

static int make_context(void) {
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, opt.ciphersuites) != 1 ||
        SSL_CTX_set1_groups_list(ctx, opt.groups) != 1) {
        fprintf(stderr, "tls_loadgen: cannot set up TLS (ciphersuites %s, groups %s):\n",
                opt.ciphersuites, opt.groups);
        ERR_print_errors_fp(stderr);
        return -1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* Tickets are passed to on_new_session (counted) and never stored. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    return 0;
}

/* Blocking connect with TCP_NODELAY; -1 (and an error counted) on failure. */
static int connect_blocking(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        report_error("socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0) {
        report_error("connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* A blocking TLS session over a new connection (handshake done, under the
 * socket time-outs), or NULL with an error counted. */
static SSL *connect_tls_blocking(int *fd_out) {
    int fd = connect_blocking();
    if (fd < 0)
        return NULL;
    set_timeouts(fd, opt.timeout);
    SSL *ssl = SSL_new(ctx);
    char why[200];
    int r = 0;
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || (r = SSL_connect(ssl)) != 1) {
        report_error("TLS handshake: %s", ssl ? tls_failure(ssl, r, why, sizeof why) : "SSL_new");
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    if (check_handshake(ssl) < 0) {
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    *fd_out = fd;
    return ssl;
}

/* SSL_write all of p[0, n) on a session whose socket may be non-blocking
 * (waits with poll, at most opt.timeout). For the small lines used here the
 * first call always takes everything. */
static int tls_write_all(SSL *ssl, int fd, const char *p, size_t n) {
    int64_t deadline = now_ns() + (int64_t)(opt.timeout * NS);
    while (n > 0) {
        size_t w = 0;
        int r = SSL_write_ex(ssl, p, n, &w);
        if (r == 1) {
            p += w;
            n -= w;
            continue;
        }
        int code = SSL_get_error(ssl, r);
        if ((code == SSL_ERROR_WANT_WRITE || code == SSL_ERROR_WANT_READ) && now_ns() < deadline) {
            struct pollfd pfd = {fd, code == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, 0};
            poll(&pfd, 1, 100);
            continue;
        }
        char why[200];
        report_error("TLS send: %s", tls_failure(ssl, r, why, sizeof why));
        return -1;
    }
    return 0;
}

/* Starts the timed window (loadgen_common.h) from now. */
static void start_clock(void) {
    t_begin = now_ns();
    t_measure = t_begin + (int64_t)(opt.warmup * NS);
    t_end = t_measure + (int64_t)(opt.duration * NS);
}

static void print_tls_fields(void) {
    printf("\"tls\":\"%s\",\"cipher\":\"%s\",\"group\":\"%s\",", negotiated_version,
           negotiated_cipher, negotiated_group);
}

/* ------------------------------------------------------------------- rr */

typedef struct {
    int fd, id, dead;
    SSL *ssl;
    uint64_t seq;
    int64_t sent_at;
    int got;
    char tx[MAX_SIZE], rx[MAX_SIZE];
} rr_conn;

typedef struct {
    pthread_t thread;
    rr_conn *conns;
    int n;
    histogram hist;
    uint64_t done; /* requests completed inside the measured window */
} rr_worker;

static int rr_send(rr_conn *c) {
    make_line(c->tx, opt.size, c->id, c->seq);
    c->got = 0;
    c->sent_at = now_ns();
    return tls_write_all(c->ssl, c->fd, c->tx, (size_t)opt.size);
}

/* A full echo arrived on c at time t: verify, account, send the next one. */
static int rr_complete(rr_worker *w, rr_conn *c, int64_t t) {
    if (memcmp(c->tx, c->rx, (size_t)opt.size) != 0) {
        report_error("conn %d: echoed line differs from the line sent", c->id);
        return -1;
    }
    if (t >= t_measure && t < t_end) {
        hist_add(&w->hist, (uint64_t)(t - c->sent_at));
        w->done++;
    }
    c->seq++;
    return rr_send(c);
}

/* One connection per thread: blocking SSL_write/SSL_read. */
static void *rr_blocking(void *arg) {
    rr_worker *w = arg;
    rr_conn *c = &w->conns[0];
    if (rr_send(c) < 0) {
        c->dead = 1;
        return NULL;
    }
    while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
        size_t r = 0;
        int ret = SSL_read_ex(c->ssl, c->rx + c->got, (size_t)(opt.size - c->got), &r);
        if (ret != 1) {
            char why[200];
            report_error("conn %d: TLS receive: %s", c->id, tls_failure(c->ssl, ret, why, sizeof why));
            c->dead = 1;
            return NULL;
        }
        c->got += (int)r;
        if (c->got == opt.size && rr_complete(w, c, now_ns()) < 0) {
            c->dead = 1;
            return NULL;
        }
    }
    return NULL;
}

/* Reads what the session has for c; -1 on error, else 0. Loops until OpenSSL
 * wants more input, so nothing stays decrypted-but-unread inside OpenSSL
 * while epoll (which sees only the socket) says there is nothing to read. */
static int rr_readable(rr_worker *w, rr_conn *c) {
    for (;;) {
        size_t r = 0;
        int ret = SSL_read_ex(c->ssl, c->rx + c->got, (size_t)(opt.size - c->got), &r);
        if (ret != 1) {
            int code = SSL_get_error(c->ssl, ret);
            if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
                ERR_clear_error();
                return 0;
            }
            char why[200];
            report_error("conn %d: TLS receive: %s", c->id, tls_failure(c->ssl, ret, why, sizeof why));
            return -1;
        }
        c->got += (int)r;
        if (c->got == opt.size && rr_complete(w, c, now_ns()) < 0)
            return -1;
    }
}

/* Several connections per thread: level-triggered epoll loop. */
static void *rr_epoll(void *arg) {
    rr_worker *w = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int live = 0;
    int64_t timeout = (int64_t)(opt.timeout * NS);
    for (int i = 0; i < w->n; i++) {
        rr_conn *c = &w->conns[i];
        set_nonblocking(c->fd);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        if (rr_send(c) == 0)
            live++;
        else
            c->dead = 1;
    }
    struct epoll_event evs[256];
    int64_t last_check = now_ns();
    while (live > 0 && !atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
        int n = epoll_wait(ep, evs, 256, 50);
        for (int i = 0; i < n; i++) {
            rr_conn *c = evs[i].data.ptr;
            if (c->dead)
                continue;
            if (rr_readable(w, c) < 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                c->dead = 1;
                live--;
            }
        }
        int64_t t = now_ns();
        if (t - last_check > NS / 10) { /* stalls */
            last_check = t;
            for (int i = 0; i < w->n; i++) {
                rr_conn *c = &w->conns[i];
                if (!c->dead && t - c->sent_at > timeout) {
                    report_error("conn %d: no echo for %.1f s", c->id, (double)(t - c->sent_at) / NS);
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    c->dead = 1;
                    live--;
                }
            }
        }
    }
    close(ep);
    return NULL;
}

static int cmd_rr(void) {
    fit_workers(&opt.conns, &opt.threads, 1);
    rr_conn *conns = calloc((size_t)opt.conns, sizeof *conns);
    rr_worker *workers = calloc((size_t)opt.threads, sizeof *workers);
    if (!conns || !workers) {
        fprintf(stderr, "tls_loadgen: out of memory\n");
        return 1;
    }
    for (int i = 0; i < opt.conns; i++) {
        conns[i].id = i;
        conns[i].fd = -1;
    }
    for (int i = 0; i < opt.conns; i++) {
        conns[i].ssl = connect_tls_blocking(&conns[i].fd);
        if (!conns[i].ssl)
            goto out;
    }
    int blocking = opt.threads == opt.conns;
    start_clock();
    for (int i = 0, first = 0; i < opt.threads; i++) {
        int share = share_of(i, opt.conns, opt.threads);
        workers[i].conns = conns + first;
        workers[i].n = share;
        first += share;
        pthread_create(&workers[i].thread, NULL, blocking ? rr_blocking : rr_epoll, &workers[i]);
    }
    double cpu = run_window();
    histogram *all = calloc(1, sizeof *all);
    uint64_t done = 0;
    for (int i = 0; i < opt.threads; i++) {
        pthread_join(workers[i].thread, NULL);
        hist_merge(all, &workers[i].hist);
        done += workers[i].done;
    }
    /* A request outstanding for longer than --timeout is a stall. */
    int64_t t = now_ns();
    for (int i = 0; i < opt.conns; i++)
        if (!conns[i].dead && conns[i].got < opt.size &&
            t - conns[i].sent_at > (int64_t)(opt.timeout * NS))
            report_error("conn %d: no echo for %.1f s", i, (double)(t - conns[i].sent_at) / NS);
    if (done == 0)
        report_error("no request completed in the measured window");
    printf("{\"workload\":\"tls-rr\",\"conns\":%d,\"threads\":%d,\"size\":%d,\"duration\":%.3f,",
           opt.conns, opt.threads, opt.size, opt.duration);
    print_tls_fields();
    printf("\"tickets\":%.2f,\"requests\":%llu,\"rps\":%.1f,\"p50_us\":%.2f,\"p99_us\":%.2f,"
           "\"max_us\":%.2f,\"cpu_pct\":%.1f,\"errors\":%ld,\"first_error\":\"%s\"}\n",
           (double)atomic_load(&tickets_seen) / opt.conns, (unsigned long long)done,
           (double)done / opt.duration, hist_percentile(all, 50) / 1e3,
           hist_percentile(all, 99) / 1e3, hist_percentile(all, 100) / 1e3, cpu,
           atomic_load(&error_count), first_error_json());
    free(all);
out:
    for (int i = 0; i < opt.conns; i++) {
        if (conns[i].ssl)
            SSL_free(conns[i].ssl);
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    }
    free(conns);
    free(workers);
    return atomic_load(&error_count) ? 1 : 0;
}

/* ----------------------------------------------------------------- bulk */

#define BULK_LINES 7 /* lines per period of the pattern; prime, to catch reordering */

static int cmd_bulk(void) {
    if (opt.line < 2 || opt.line > MAX_SIZE) {
        fprintf(stderr, "tls_loadgen: --line must be 2..%d\n", MAX_SIZE);
        return 2;
    }
    size_t period = (size_t)opt.line * BULK_LINES;
    char *pattern = malloc(period);
    for (int l = 0; l < BULK_LINES; l++) {
        char *p = pattern + (size_t)l * opt.line;
        for (int i = 0; i < opt.line - 1; i++)
            p[i] = (char)(33 + (i * 31 + l * 7) % 94); /* printable, never LF */
        p[opt.line - 1] = '\n';
    }
    const size_t cap = 64 * 1024;
    char *buf = malloc(cap);
    int fd = -1;
    SSL *ssl = connect_tls_blocking(&fd);
    if (!ssl) {
        free(pattern);
        free(buf);
        return 1;
    }
    set_nonblocking(fd);
    /* SSL_write returns after each record written (16 KiB), so the loop
     * alternates between sending and reading at record granularity. */
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE);

    const size_t chunk = 64 * 1024;
    uint64_t sent = 0, received = 0, r0 = 0, r1 = 0;
    double c0 = 0, c1 = 0;
    int64_t w0 = 0, w1 = 0;
    int measuring = 0, stopping = 0;
    int64_t timeout = (int64_t)(opt.timeout * NS);
    int64_t last_progress;
    char why[200];
    start_clock();
    last_progress = t_begin;
    for (;;) {
        int64_t t = now_ns();
        if (!measuring && t >= t_measure) {
            measuring = 1;
            r0 = received;
            c0 = cpu_seconds();
            w0 = t;
        }
        if (!stopping && t >= t_end) {
            stopping = 1;
            r1 = received;
            c1 = cpu_seconds();
            w1 = t;
        }
        if (stopping && received == sent && sent % (uint64_t)opt.line == 0)
            break; /* drained: everything written came back */
        if (t - last_progress > timeout) {
            report_error("bulk: no echoed byte for %.1f s (%llu sent, %llu received)",
                         (double)(t - last_progress) / NS, (unsigned long long)sent,
                         (unsigned long long)received);
            break;
        }
        /* Write while the window allows, until the socket is full; once
         * stopping, only the rest of a line begun (the server echoes whole
         * lines only). */
        int failed = 0;
        for (;;) {
            size_t off = sent % period;
            size_t n = period - off < chunk ? period - off : chunk;
            if (stopping) {
                size_t rest = (size_t)opt.line - (size_t)(sent % (uint64_t)opt.line);
                if (rest == (size_t)opt.line)
                    break;
                n = rest;
            } else if (sent - received + chunk > (uint64_t)opt.window) {
                break;
            }
            size_t w = 0;
            int ret = SSL_write_ex(ssl, pattern + off, n, &w);
            if (ret == 1) {
                sent += w;
                continue;
            }
            int code = SSL_get_error(ssl, ret);
            if (code == SSL_ERROR_WANT_WRITE || code == SSL_ERROR_WANT_READ) {
                ERR_clear_error();
                break; /* the socket is full: poll for POLLOUT below */
            }
            report_error("bulk TLS send: %s", tls_failure(ssl, ret, why, sizeof why));
            failed = 1;
            break;
        }
        if (failed)
            break;
        /* Read (and verify) everything there is. */
        for (;;) {
            size_t r = 0;
            int ret = SSL_read_ex(ssl, buf, cap, &r);
            if (ret != 1) {
                int code = SSL_get_error(ssl, ret);
                if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
                    ERR_clear_error();
                    break;
                }
                report_error("bulk TLS receive: %s", tls_failure(ssl, ret, why, sizeof why));
                failed = 1;
                break;
            }
            size_t done = 0;
            while (done < r) {
                size_t off = (received + done) % period;
                size_t n = period - off < r - done ? period - off : r - done;
                if (memcmp(buf + done, pattern + off, n) != 0) {
                    report_error("bulk: echoed bytes differ from those sent near offset %llu",
                                 (unsigned long long)(received + done));
                    failed = 1;
                    break;
                }
                done += n;
            }
            if (failed)
                break;
            received += r;
            last_progress = now_ns();
        }
        if (failed)
            break;
        if (received == sent)
            last_progress = now_ns(); /* nothing outstanding: not a stall */
        /* Wait for something to read, and for room in the socket if there
         * is something to write (room in the window, or a line to finish),
         * until the next boundary of the window at the latest. */
        int can_write = stopping ? sent % (uint64_t)opt.line != 0
                                 : sent - received + chunk <= (uint64_t)opt.window;
        int64_t next = !measuring ? t_measure : !stopping ? t_end : now_ns() + NS / 100;
        int wait_ms = (int)((next - now_ns()) / 1000000);
        if (wait_ms < 0)
            wait_ms = 0;
        if (wait_ms > 10)
            wait_ms = 10;
        struct pollfd pfd = {fd, (short)(POLLIN | (can_write ? POLLOUT : 0)), 0};
        poll(&pfd, 1, wait_ms);
    }
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    free(pattern);
    free(buf);
    double secs = w1 > w0 ? (double)(w1 - w0) / NS : opt.duration;
    if (r1 == r0)
        report_error("no bytes echoed in the measured window");
    printf("{\"workload\":\"tls-bulk\",\"line\":%d,\"window\":%ld,\"duration\":%.3f,", opt.line,
           opt.window, secs);
    print_tls_fields();
    printf("\"tickets\":%ld,\"bytes\":%llu,\"mbps\":%.2f,\"total_sent\":%llu,\"total_received\":%llu,"
           "\"cpu_pct\":%.1f,\"errors\":%ld,\"first_error\":\"%s\"}\n",
           atomic_load(&tickets_seen), (unsigned long long)(r1 - r0), (double)(r1 - r0) / secs / 1e6,
           (unsigned long long)sent, (unsigned long long)received, 100.0 * (c1 - c0) / secs,
           atomic_load(&error_count), first_error_json());
    return atomic_load(&error_count) ? 1 : 0;
}

/* ------------------------------------------------------------ handshake */

enum { H_FREE, H_CONNECTING, H_HANDSHAKE, H_WRITING, H_READING };

typedef struct {
    int fd, id, state;
    SSL *ssl;
    uint64_t seq;
    int64_t started;
    int got;
    char tx[64], rx[64];
} hs_conn;

typedef struct {
    pthread_t thread;
    hs_conn *conns;
    int n;
    histogram hist;
    uint64_t done;  /* cycles completed inside the measured window */
    uint64_t total; /* cycles completed, warmup included */
} hs_worker;

static void hs_close(hs_conn *c) {
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = H_FREE;
    ERR_clear_error();
}

/* Start a new cycle on c: a non-blocking connect. */
static int hs_start(int ep, hs_conn *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        report_error("socket: %s", strerror(errno));
        return -1;
    }
    if (connect(c->fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0 &&
        errno != EINPROGRESS) {
        report_error("connect: %s", strerror(errno));
        hs_close(c);
        return -1;
    }
    c->state = H_CONNECTING;
    c->got = 0;
    c->started = now_ns();
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

static void hs_want(int ep, hs_conn *c, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Handle an epoll event on c. Returns 1 when the cycle is complete (echo
 * verified), 0 when more is to come, -1 on error (c closed). */
static int hs_event(int ep, hs_conn *c) {
    char why[200];
    int ret;
    if (c->state == H_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            report_error("connect: %s", strerror(err));
            goto fail;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->ssl = SSL_new(ctx);
        if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
            report_error("SSL_new failed");
            goto fail;
        }
        SSL_set_connect_state(c->ssl);
        c->state = H_HANDSHAKE;
    }
    if (c->state == H_HANDSHAKE) {
        ret = SSL_do_handshake(c->ssl);
        if (ret != 1) {
            int code = SSL_get_error(c->ssl, ret);
            if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
                hs_want(ep, c, code == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
                return 0;
            }
            report_error("conn %d: TLS handshake: %s", c->id, tls_failure(c->ssl, ret, why, sizeof why));
            goto fail;
        }
        if (check_handshake(c->ssl) < 0)
            goto fail;
        make_line(c->tx, opt.size, c->id, c->seq);
        c->state = H_WRITING;
    }
    if (c->state == H_WRITING) {
        size_t w = 0;
        ret = SSL_write_ex(c->ssl, c->tx, (size_t)opt.size, &w);
        if (ret != 1) {
            int code = SSL_get_error(c->ssl, ret);
            if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
                hs_want(ep, c, code == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
                return 0;
            }
            report_error("conn %d: TLS send: %s", c->id, tls_failure(c->ssl, ret, why, sizeof why));
            goto fail;
        }
        c->state = H_READING;
        hs_want(ep, c, EPOLLIN);
        return 0; /* the echo cannot be there yet */
    }
    if (c->state != H_READING)
        return 0;
    for (;;) {
        size_t r = 0;
        ret = SSL_read_ex(c->ssl, c->rx + c->got, (size_t)(opt.size - c->got), &r);
        if (ret != 1) {
            int code = SSL_get_error(c->ssl, ret);
            if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
                ERR_clear_error();
                return 0;
            }
            report_error("conn %d: TLS receive: %s", c->id, tls_failure(c->ssl, ret, why, sizeof why));
            goto fail;
        }
        c->got += (int)r;
        if (c->got < opt.size)
            continue;
        if (memcmp(c->tx, c->rx, (size_t)opt.size) != 0) {
            report_error("conn %d: echoed line differs from the line sent", c->id);
            goto fail;
        }
        /* Our close_notify (it fits in the socket buffer: one call), then
         * close without waiting for the server's. */
        SSL_shutdown(c->ssl);
        hs_close(c);
        return 1;
    }
fail:
    hs_close(c);
    return -1;
}

/* One epoll loop driving its share of the workers until the window ends. */
static void *hs_run(void *arg) {
    hs_worker *w = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int64_t timeout = (int64_t)(opt.timeout * NS);
    int active = 0;
    for (int i = 0; i < w->n; i++)
        if (hs_start(ep, &w->conns[i]) == 0)
            active++;
    struct epoll_event evs[256];
    int64_t last_check = now_ns();
    while (active > 0) {
        int n = epoll_wait(ep, evs, 256, 50);
        int64_t t = now_ns();
        if (t >= t_end)
            break;
        for (int i = 0; i < n; i++) {
            hs_conn *c = evs[i].data.ptr;
            if (c->state == H_FREE)
                continue;
            int64_t started = c->started;
            int r = hs_event(ep, c);
            if (r == 0)
                continue;
            if (r == 1) {
                int64_t done_at = now_ns();
                w->total++;
                if (done_at >= t_measure && done_at < t_end) {
                    w->done++;
                    hist_add(&w->hist, (uint64_t)(done_at - started));
                }
                c->seq++;
            } else if (atomic_load(&error_count) > 100) {
                active--; /* too many errors: retire this worker */
                continue;
            }
            if (hs_start(ep, c) < 0)
                active--;
        }
        if (t - last_check > NS / 10) { /* stalls */
            last_check = t;
            for (int i = 0; i < w->n; i++) {
                hs_conn *c = &w->conns[i];
                if (c->state != H_FREE && t - c->started > timeout) {
                    report_error("conn %d: no connection/handshake/echo for %.1f s", c->id,
                                 (double)(t - c->started) / NS);
                    hs_close(c);
                    active--;
                }
            }
        }
    }
    for (int i = 0; i < w->n; i++)
        if (w->conns[i].state != H_FREE)
            hs_close(&w->conns[i]);
    close(ep);
    return NULL;
}

static int cmd_handshake(void) {
    fit_workers(&opt.conns, &opt.threads, 16);
    if (opt.size > 64)
        opt.size = 64;
    hs_conn *conns = calloc((size_t)opt.conns, sizeof *conns);
    hs_worker *workers = calloc((size_t)opt.threads, sizeof *workers);
    for (int i = 0; i < opt.conns; i++) {
        conns[i].id = i;
        conns[i].fd = -1;
    }
    start_clock();
    for (int i = 0, first = 0; i < opt.threads; i++) {
        int share = share_of(i, opt.conns, opt.threads);
        workers[i].conns = conns + first;
        workers[i].n = share;
        first += share;
        pthread_create(&workers[i].thread, NULL, hs_run, &workers[i]);
    }
    double cpu = run_window();
    histogram *all = calloc(1, sizeof *all);
    uint64_t done = 0, total = 0;
    for (int i = 0; i < opt.threads; i++) {
        pthread_join(workers[i].thread, NULL);
        hist_merge(all, &workers[i].hist);
        done += workers[i].done;
        total += workers[i].total;
    }
    if (done == 0)
        report_error("no handshake completed in the measured window");
    printf("{\"workload\":\"tls-handshake\",\"conns\":%d,\"threads\":%d,\"duration\":%.3f,",
           opt.conns, opt.threads, opt.duration);
    print_tls_fields();
    printf("\"tickets\":%.2f,\"handshakes\":%llu,\"hps\":%.1f,\"total\":%llu,\"resumed\":%ld,"
           "\"p50_us\":%.2f,\"p99_us\":%.2f,\"cpu_pct\":%.1f,\"errors\":%ld,\"first_error\":\"%s\"}\n",
           total ? (double)atomic_load(&tickets_seen) / (double)total : 0.0,
           (unsigned long long)done, (double)done / opt.duration, (unsigned long long)total,
           atomic_load(&resumed_count), hist_percentile(all, 50) / 1e3,
           hist_percentile(all, 99) / 1e3, cpu, atomic_load(&error_count), first_error_json());
    free(all);
    free(conns);
    free(workers);
    return atomic_load(&error_count) ? 1 : 0;
}

/* ----------------------------------------------------------------- main */

static void usage(void) {
    fprintf(stderr,
            "usage: tls_loadgen rr|bulk|handshake --port P [--host 127.0.0.1] [--conns N]\n"
            "       [--threads T] [--size BYTES] [--line BYTES] [--window BYTES]\n"
            "       [--warmup S] [--duration S] [--timeout S]\n"
            "       [--ciphersuites TLS_AES_256_GCM_SHA384] [--groups X25519]\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2)
        usage();
    const char *mode = argv[1];
    static const struct option longopts[] = {
        {"host", required_argument, 0, 'H'},     {"port", required_argument, 0, 'p'},
        {"conns", required_argument, 0, 'c'},    {"threads", required_argument, 0, 't'},
        {"size", required_argument, 0, 's'},     {"line", required_argument, 0, 'l'},
        {"window", required_argument, 0, 'W'},   {"warmup", required_argument, 0, 'w'},
        {"duration", required_argument, 0, 'd'}, {"timeout", required_argument, 0, 'T'},
        {"ciphersuites", required_argument, 0, 'C'}, {"groups", required_argument, 0, 'G'},
        {0, 0, 0, 0},
    };
    optind = 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'H': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'c': opt.conns = atoi(optarg); break;
        case 't': opt.threads = atoi(optarg); break;
        case 's': opt.size = atoi(optarg); break;
        case 'l': opt.line = atoi(optarg); break;
        case 'W': opt.window = atol(optarg); break;
        case 'w': opt.warmup = atof(optarg); break;
        case 'd': opt.duration = atof(optarg); break;
        case 'T': opt.timeout = atof(optarg); break;
        case 'C': opt.ciphersuites = optarg; break;
        case 'G': opt.groups = optarg; break;
        default: usage();
        }
    }
    if (opt.port <= 0 || opt.port > 65535 || opt.size < 2 || opt.size > MAX_SIZE ||
        opt.duration <= 0 || opt.warmup < 0 || opt.timeout <= 0)
        usage();
    memset(&server_addr, 0, sizeof server_addr);
    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &server_addr.sin_addr) != 1) {
        fprintf(stderr, "tls_loadgen: --host must be an IPv4 address\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (make_context() < 0)
        return 1;

    if (!strcmp(mode, "rr"))
        return cmd_rr();
    if (!strcmp(mode, "bulk"))
        return cmd_bulk();
    if (!strcmp(mode, "handshake"))
        return cmd_handshake();
    usage();
}
