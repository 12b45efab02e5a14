/* Echo load generator for the ringloop network benchmarks (benchmarks/echo/).
 *
 * N connections (TCP to 127.0.0.1:PORT, or a unix socket), each with exactly one
 * message of SIZE bytes in flight: send SIZE bytes, read back exactly SIZE bytes,
 * compare them with what was sent, repeat. One thread, epoll, level-triggered.
 * Every message is a different window of a random pattern (the offset changes per
 * request and per connection), so a server that echoes stale, reordered or
 * another connection's bytes fails the check.
 *
 * Phases: connect, warm-up (WARMUP s), measured window (SECONDS s). Over the window
 * only: completed requests, every request's latency (send start -> last byte back;
 * all samples kept, sorted for p50/p99), this process's CPU time (to show the client
 * is not the bottleneck), and, with --server-pid, the server process's CPU time
 * (CLOCK of clock_getcpuclockid(pid): user+sys of all its threads, ns resolution)
 * plus its utime/stime split from /proc/PID/stat (clock ticks).
 *
 * Prints one JSON object on stdout. Exit status 0 on success; on any failure
 * (connect error, short read at EOF, mismatched byte, stall, timeout) it prints
 * {"error": "..."} and exits 1.
 *
 *   loadgen --port P [--host 127.0.0.1] | --unix PATH
 *           --conns N --size S --warmup W --seconds T
 *           [--cpu C] [--server-pid PID] [--stall S] [--udp 1]
 *
 * --udp 1: each connection is a connected UDP socket and each message one
 * datagram of SIZE bytes, echoed as one datagram (checked whole). Loopback
 * does not drop datagrams while one per socket is in flight; a loss would
 * show as a stall.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PATTERN_SLACK 4096 /* distinct offsets into the pattern */

struct conn {
    int fd;
    uint32_t seq;      /* requests started on this connection */
    size_t off;        /* pattern offset of the message in flight */
    size_t sent, got;  /* bytes of the current message */
    int want_out;      /* EPOLLOUT registered */
    uint64_t t_start;  /* ns, send start of the current message */
};

static unsigned char *pattern;
static unsigned char *rbuf; /* one receive buffer, compared right away */
static size_t msg_size;
static int udp; /* --udp: datagrams (see the top) */

static void fail(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '"' || *p == '\\') *p = '\'';
    printf("{\"error\": \"%s\"}\n", msg);
    fflush(stdout);
    exit(1);
}

static uint64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    if (clock_gettime(clk, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* utime, stime in clock ticks from /proc/PID/stat (fields 14 and 15). */
static int proc_times(int pid, unsigned long long *ut, unsigned long long *st)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* comm may contain spaces */
    if (!p) return -1;
    /* after ") ": field 3 (state) ... field 14 utime, 15 stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", ut, st) != 2)
        return -1;
    return 0;
}

/* Non-idle time of all CPUs, in clock ticks, from /proc/stat's first line: lets the
   harness see CPU used by processes other than the server and this client. */
static int machine_busy(unsigned long long *busy)
{
    char buf[512];
    int fd = open("/proc/stat", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    unsigned long long v[8] = {0};
    if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) < 7)
        return -1;
    /* user nice system idle iowait irq softirq steal: all but idle and iowait */
    *busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint32_t *lat;
static size_t nlat, caplat;

static void record(uint64_t ns)
{
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 1 << 20;
        lat = realloc(lat, caplat * sizeof *lat);
        if (!lat) fail("out of memory for latency samples");
    }
    lat[nlat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static void set_out(int ep, struct conn *c, int on, int idx)
{
    if (c->want_out == on) return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.u32 = idx};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) fail("epoll_ctl MOD: %s", strerror(errno));
    c->want_out = on;
}

/* Send what is left of the current message; returns when done or EAGAIN. */
static void pump_send(int ep, struct conn *c, int idx)
{
    while (c->sent < msg_size) {
        ssize_t n = send(c->fd, pattern + c->off + c->sent, msg_size - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_out(ep, c, 1, idx);
            return;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            fail("send on connection %d: %s", idx, n < 0 ? strerror(errno) : "returned 0");
        }
    }
    set_out(ep, c, 0, idx);
}

static void start_request(int ep, struct conn *c, int idx, uint64_t t)
{
    c->seq++;
    /* a different window of the pattern per request and per connection */
    c->off = ((size_t)c->seq * 2654435761u + (size_t)idx * 40503u) % PATTERN_SLACK;
    c->sent = c->got = 0;
    c->t_start = t;
    pump_send(ep, c, idx);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *unix_path = NULL;
    int port = 0, nconns = 10, cpu = -1, server_pid = 0;
    double warmup = 0.2, seconds = 1.0, stall = 5.0;
    msg_size = 1024;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) fail("option %s needs a value", a);
        if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--unix")) unix_path = v;
        else if (!strcmp(a, "--conns")) nconns = atoi(v);
        else if (!strcmp(a, "--size")) msg_size = (size_t)atol(v);
        else if (!strcmp(a, "--warmup")) warmup = atof(v);
        else if (!strcmp(a, "--seconds")) seconds = atof(v);
        else if (!strcmp(a, "--cpu")) cpu = atoi(v);
        else if (!strcmp(a, "--server-pid")) server_pid = atoi(v);
        else if (!strcmp(a, "--stall")) stall = atof(v);
        else if (!strcmp(a, "--udp")) udp = atoi(v);
        else fail("unknown option %s", a);
        i++;
    }
    if (nconns < 1 || msg_size < 1 || seconds <= 0 || (!unix_path && port <= 0))
        fail("usage: loadgen --port P | --unix PATH --conns N --size S --seconds T");
    signal(SIGPIPE, SIG_IGN);
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0)
            fail("sched_setaffinity: %s", strerror(errno));
    }
    clockid_t server_clock = 0;
    if (server_pid > 0 && clock_getcpuclockid(server_pid, &server_clock) != 0)
        fail("clock_getcpuclockid(%d) failed", server_pid);

    pattern = malloc(msg_size + PATTERN_SLACK);
    rbuf = malloc(msg_size);
    struct conn *conns = calloc((size_t)nconns, sizeof *conns);
    if (!pattern || !rbuf || !conns) fail("out of memory");
    uint64_t x = 0x9E3779B97F4A7C15ull; /* xorshift: fixed, reproducible pattern */
    for (size_t i = 0; i < msg_size + PATTERN_SLACK; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        pattern[i] = (unsigned char)(x >> 32);
    }

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) fail("epoll_create1: %s", strerror(errno));
    for (int i = 0; i < nconns; i++) {
        int fd;
        if (unix_path) {
            struct sockaddr_un sa = {.sun_family = AF_UNIX};
            if (strlen(unix_path) >= sizeof sa.sun_path) fail("unix path too long");
            strcpy(sa.sun_path, unix_path);
            fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
                fail("connect %s (connection %d): %s", unix_path, i, strerror(errno));
        } else {
            struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
            if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) fail("bad host %s", host);
            fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
            if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
                fail("connect %s:%d (connection %d): %s", host, port, i, strerror(errno));
            int one = 1;
            if (!udp) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        conns[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) fail("epoll_ctl ADD: %s", strerror(errno));
    }

    uint64_t t0 = now_ns(CLOCK_MONOTONIC);
    for (int i = 0; i < nconns; i++) start_request(ep, &conns[i], i, t0);

    const uint64_t warm_end = t0 + (uint64_t)(warmup * 1e9);
    const uint64_t stall_ns = (uint64_t)(stall * 1e9);
    uint64_t win_start = 0, win_end = 0, last_progress = t0;
    uint64_t cli_cpu0 = 0, cli_cpu1 = 0, srv_cpu0 = 0, srv_cpu1 = 0;
    unsigned long long ut0 = 0, st0 = 0, ut1 = 0, st1 = 0;
    uint64_t requests = 0, total_requests = 0, bytes_checked = 0;
    unsigned long long mb0 = 0, mb1 = 0;
    int measuring = 0, have_proc = 0, have_mb = 0;
    struct epoll_event evs[256];

    for (;;) {
        uint64_t t = now_ns(CLOCK_MONOTONIC);
        if (!measuring && t >= warm_end) {
            measuring = 1;
            win_start = t;
            win_end = t + (uint64_t)(seconds * 1e9);
            cli_cpu0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
            have_mb = machine_busy(&mb0) == 0;
            if (server_pid > 0) {
                srv_cpu0 = now_ns(server_clock);
                have_proc = proc_times(server_pid, &ut0, &st0) == 0;
            }
        }
        if (measuring && t >= win_end) {
            if (server_pid > 0) {
                srv_cpu1 = now_ns(server_clock);
                if (have_proc) have_proc = proc_times(server_pid, &ut1, &st1) == 0;
            }
            cli_cpu1 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
            if (have_mb) have_mb = machine_busy(&mb1) == 0;
            win_end = t; /* the window actually measured */
            break;
        }
        if (t - last_progress > stall_ns)
            fail("stalled: no echo completed for %.1f s (%llu requests done)", stall,
                 (unsigned long long)total_requests);
        uint64_t deadline = measuring ? win_end : warm_end;
        int timeout_ms = (int)((deadline - t) / 1000000) + 1;
        if (timeout_ms > 100) timeout_ms = 100;
        int n = epoll_wait(ep, evs, 256, timeout_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("epoll_wait: %s", strerror(errno));
        }
        for (int k = 0; k < n; k++) {
            int idx = (int)evs[k].data.u32;
            struct conn *c = &conns[idx];
            if (evs[k].events & EPOLLOUT) pump_send(ep, c, idx);
            if (!(evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
            /* never ask for more than is outstanding: an echo can't precede its send,
               and extra bytes would show up as a mismatch in the next message */
            size_t want = c->sent - c->got;
            if (want == 0) {
                char extra;
                ssize_t r = recv(c->fd, &extra, 1, MSG_DONTWAIT | MSG_PEEK);
                if (r > 0) fail("connection %d: server sent bytes that were never sent to it", idx);
                if (r == 0) fail("connection %d: server closed the connection", idx);
                if (errno != EAGAIN && errno != EWOULDBLOCK) fail("recv: %s", strerror(errno));
                continue;
            }
            ssize_t r = recv(c->fd, rbuf, want, 0);
            if (r < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
                fail("recv on connection %d: %s", idx, strerror(errno));
            }
            if (udp && (size_t)r != want)
                fail("connection %d: a datagram of %zd bytes, not %zu", idx, r, want);
            if (r == 0)
                fail("connection %d: server closed the connection after %zu of %zu bytes", idx,
                     c->got, msg_size);
            if (memcmp(rbuf, pattern + c->off + c->got, (size_t)r) != 0) {
                size_t j = 0;
                while (rbuf[j] == pattern[c->off + c->got + j]) j++;
                fail("connection %d request %u: echoed byte %zu of %zu differs", idx, c->seq,
                     c->got + j, msg_size);
            }
            c->got += (size_t)r;
            bytes_checked += (uint64_t)r;
            if (c->got == msg_size) {
                uint64_t done = now_ns(CLOCK_MONOTONIC);
                total_requests++;
                last_progress = done;
                if (measuring && done <= win_end) {
                    requests++;
                    record(done - c->t_start);
                }
                start_request(ep, c, idx, done);
            }
        }
    }

    for (int i = 0; i < nconns; i++) close(conns[i].fd);
    double secs = (double)(win_end - win_start) / 1e9;
    qsort(lat, nlat, sizeof *lat, cmp_u32);
    double p50 = nlat ? lat[(size_t)(0.50 * (double)(nlat - 1))] / 1e3 : 0;
    double p99 = nlat ? lat[(size_t)(0.99 * (double)(nlat - 1))] / 1e3 : 0;
    double pmax = nlat ? lat[nlat - 1] / 1e3 : 0;
    long hz = sysconf(_SC_CLK_TCK);
    printf("{\"requests\": %llu, \"seconds\": %.6f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
           "\"max_us\": %.1f, \"client_cpu_s\": %.6f, ",
           (unsigned long long)requests, secs, p50, p99, pmax, (double)(cli_cpu1 - cli_cpu0) / 1e9);
    if (server_pid > 0)
        printf("\"server_cpu_s\": %.6f, ", (double)(srv_cpu1 - srv_cpu0) / 1e9);
    if (have_proc)
        printf("\"server_utime_s\": %.3f, \"server_stime_s\": %.3f, ", (double)(ut1 - ut0) / hz,
               (double)(st1 - st0) / hz);
    if (have_mb) printf("\"machine_busy_s\": %.3f, ", (double)(mb1 - mb0) / hz);
    printf("\"total_requests\": %llu, \"bytes_checked\": %llu, \"conns\": %d, \"size\": %zu}\n",
           (unsigned long long)total_requests, (unsigned long long)bytes_checked, nconns, msg_size);
    return 0;
}
