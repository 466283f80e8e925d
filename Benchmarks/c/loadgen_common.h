/*
 * What the two load generators (loadgen.c, tls_loadgen.c) share: the clock,
 * error reporting, socket settings, the request lines, the latency
 * histogram and the timed window. Static functions, included once by each;
 * the including file defines NS (nanoseconds per second) and LOADGEN_NAME
 * (its name in error lines) and includes the system headers first.
 */
#ifndef LOADGEN_COMMON_H
#define LOADGEN_COMMON_H

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static void sleep_until(int64_t t) {
    for (;;) {
        int64_t d = t - now_ns();
        if (d <= 0)
            return;
        struct timespec ts = {d / NS, d % NS};
        nanosleep(&ts, NULL);
    }
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Errors: counted, and the first few are described on stderr. */
static atomic_long error_count;
static char first_error[256];
static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;

static void report_error(const char *fmt, ...) {
    long n = atomic_fetch_add(&error_count, 1);
    if (n >= 5)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, LOADGEN_NAME ": error: %s\n", msg);
    pthread_mutex_lock(&error_lock);
    if (!first_error[0])
        snprintf(first_error, sizeof first_error, "%s", msg);
    pthread_mutex_unlock(&error_lock);
}

/* JSON-safe copy of the first error (it only ever contains printable ASCII
 * from our own format strings and strerror, but be safe about quotes). */
static const char *first_error_json(void) {
    static char out[256];
    size_t j = 0;
    for (size_t i = 0; first_error[i] && j < sizeof out - 1; i++) {
        char c = first_error[i];
        out[j++] = (c == '"' || c == '\\' || (unsigned char)c < 32) ? '\'' : c;
    }
    out[j] = 0;
    return out;
}

static void set_nonblocking(int fd) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void set_timeouts(int fd, double seconds) {
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (time_t)seconds) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}


/* The request line for (connection, sequence number): printable, unique per
 * request, `size` bytes with the LF last. */
static void make_line(char *buf, int size, int conn, uint64_t seq) {
    char head[48];
    int h = snprintf(head, sizeof head, "c%d s%llu ", conn, (unsigned long long)seq);
    for (int i = 0; i < size - 1; i++)
        buf[i] = i < h ? head[i] : (char)('a' + (unsigned)(i + seq + (uint64_t)conn) % 26);
    buf[size - 1] = '\n';
}

/* Connections and the threads that drive them: at least one of each
 * (`default_conns` when none was asked for), never more threads than
 * connections. */
static void fit_workers(int *conns, int *threads, int default_conns) {
    if (*conns < 1)
        *conns = default_conns;
    if (*threads < 1)
        *threads = 1;
    if (*threads > *conns)
        *threads = *conns;
}

/* How many of `total` connections thread `i` of `threads` drives: an even
 * split, the first `total % threads` threads taking one more. */
static int share_of(int i, int total, int threads) {
    return total / threads + (i < total % threads);
}

/* ----------------------------------------------------- latency histogram */

/* Log-linear histogram of nanosecond values: exact below 128, then 64
 * sub-buckets per power of two (< 1.6 % relative error). */
#define HBITS 7
#define HSIZE ((64 - HBITS + 1) * (1 << (HBITS - 1)) + (1 << (HBITS - 1)))

typedef struct {
    uint64_t count[HSIZE];
    uint64_t total;
} histogram;

static int hist_index(uint64_t v) {
    if (v < (1u << HBITS))
        return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - (HBITS - 1);
    return (shift << (HBITS - 1)) + (int)(v >> shift);
}

static double hist_value(int idx) { /* midpoint of the bucket */
    if (idx < (1 << HBITS))
        return idx;
    int shift = idx / (1 << (HBITS - 1)) - 1;
    uint64_t m = (uint64_t)(idx - (shift << (HBITS - 1)));
    return (double)(m << shift) + (double)(1ull << shift) / 2.0;
}

static void hist_add(histogram *h, uint64_t v) {
    h->count[hist_index(v)]++;
    h->total++;
}

static void hist_merge(histogram *into, const histogram *from) {
    for (int i = 0; i < HSIZE; i++)
        into->count[i] += from->count[i];
    into->total += from->total;
}

static double hist_percentile(const histogram *h, double p) {
    if (h->total == 0)
        return 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->total + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < HSIZE; i++) {
        seen += h->count[i];
        if (seen >= rank)
            return hist_value(i);
    }
    return hist_value(HSIZE - 1);
}

/* --------------------------------------------------------- timed window */

static int64_t t_begin, t_measure, t_end; /* warmup starts, measuring starts, stop */
static atomic_int stop_flag;

/* Called by the main thread: sleeps through warmup and measurement, returns
 * load generator CPU use over the measured window in percent of one core. */
static double run_window(void) {
    sleep_until(t_measure);
    double c0 = cpu_seconds();
    int64_t w0 = now_ns();
    sleep_until(t_end);
    double c1 = cpu_seconds();
    int64_t w1 = now_ns();
    atomic_store(&stop_flag, 1);
    return 100.0 * (c1 - c0) / ((double)(w1 - w0) / NS);
}

#endif
