/* The "ceiling" echo server for the ringloop network benchmarks: an echo done entirely
 * in C on io_uring, with no Python and no copy. Whatever a Python loop costs per
 * request above this is the loop's (and Python's) own cost.
 *
 * One ring, IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN (falls back to COOP_TASKRUN |
 * TASKRUN_FLAG on kernels without them), a registered ring fd, multishot accept,
 * multishot recv on one provided-buffer ring of 16 x 128 KiB (registered by hand with
 * mmap + io_uring_register_buf_ring: liburing 2.3 has no io_uring_setup_buf_ring).
 * Each received chunk is sent back from the provided buffer itself (IORING_OP_SEND,
 * MSG_WAITALL), one send in flight per socket, further chunks queued behind it; the
 * buffer goes back to the ring when its send completes.
 *
 *   ceiling [--cpu C] [--max-seconds T] [--host 127.0.0.1] [--port 0] [--unix PATH]
 *
 * Prints {"port": P, "pid": PID} (or {"unix": PATH, ...}) on stdout once listening. Stops
 * on SIGTERM/SIGINT, after --max-seconds (default 60) or when its parent dies, and then
 * prints counters (ENOBUFS, re-arms, short sends) as one JSON line on stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NBUFS 16
#define BUF_SIZE (128 * 1024)
#define BGID 0
#define MAX_FDS 65536
#define QCAP 32 /* > NBUFS: a connection can never hold more than NBUFS chunks */

enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };

struct chunk {
    uint16_t bid;
    uint32_t off, len;
};

struct conn {
    int open, closing, sending, starved;
    unsigned head, count; /* FIFO of chunks waiting to be (or being) sent; head is in flight */
    struct chunk q[QCAP];
};

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static unsigned char *bufs;
static struct conn *conns;
static int listen_fd, is_unix;
static volatile sig_atomic_t stop;
static int *starved_q; /* connections whose multishot recv ended on ENOBUFS, FIFO */
static unsigned starved_head, starved_count;
static unsigned long long n_recv, n_send, n_enobufs, n_rearm, n_accept, n_short;

static void die(const char *what, int err)
{
    fprintf(stderr, "ceiling: %s: %s\n", what, strerror(err));
    printf("{\"error\": \"%s: %s\"}\n", what, strerror(err));
    fflush(stdout);
    exit(1);
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static inline uint64_t ud(int op, int fd) { return ((uint64_t)op << 32) | (uint32_t)fd; }

static struct io_uring_sqe *sqe_get(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (!sqe) {
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
        if (!sqe) die("io_uring_get_sqe", EBUSY);
    }
    return sqe;
}

static void arm_recv(int fd);

/* Give a buffer back to the ring; re-arm one connection that ran the ring dry (re-arming
   it at once would only meet ENOBUFS again until some send completes). */
static void buf_return(uint16_t bid)
{
    io_uring_buf_ring_add(br, bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, bid,
                          io_uring_buf_ring_mask(NBUFS), 0);
    io_uring_buf_ring_advance(br, 1);
    while (starved_count) {
        int fd = starved_q[starved_head];
        starved_head = (starved_head + 1) % MAX_FDS;
        starved_count--;
        if (conns[fd].open && conns[fd].starved && !conns[fd].closing) {
            conns[fd].starved = 0;
            arm_recv(fd);
            break;
        }
    }
}

static void arm_accept(void)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud(OP_ACCEPT, listen_fd));
}

static void arm_recv(int fd)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, ud(OP_RECV, fd));
}

static void send_head(int fd)
{
    struct conn *c = &conns[fd];
    struct chunk *ch = &c->q[c->head];
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_send(sqe, fd, bufs + (size_t)ch->bid * BUF_SIZE + ch->off, ch->len, MSG_WAITALL);
    io_uring_sqe_set_data64(sqe, ud(OP_SEND, fd));
    c->sending = 1;
    n_send++;
}

static void conn_close(int fd)
{
    struct conn *c = &conns[fd];
    while (c->count) { /* give back every buffer it still holds */
        buf_return(c->q[c->head].bid);
        c->head = (c->head + 1) % QCAP;
        c->count--;
    }
    c->open = 0;
    shutdown(fd, SHUT_RDWR); /* ends a multishot recv still armed on it */
    close(fd);
}

static void on_cqe(struct io_uring_cqe *cqe)
{
    int op = (int)(cqe->user_data >> 32), fd = (int)(uint32_t)cqe->user_data;
    int res = cqe->res;
    unsigned flags = cqe->flags;
    if (op == OP_ACCEPT) {
        if (res >= 0) {
            if (res >= MAX_FDS) {
                close(res);
            } else {
                int one = 1;
                if (!is_unix) setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                memset(&conns[res], 0, sizeof conns[res]);
                conns[res].open = 1;
                n_accept++;
                arm_recv(res);
            }
        }
        if (!(flags & IORING_CQE_F_MORE)) arm_accept();
        return;
    }
    struct conn *c = &conns[fd];
    if (op == OP_RECV) {
        if (!c->open || c->closing) { /* late completion for a closed connection */
            if (res > 0 && (flags & IORING_CQE_F_BUFFER))
                buf_return((uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT));
            return;
        }
        if (res > 0) {
            n_recv++;
            if (!(flags & IORING_CQE_F_BUFFER)) die("recv completed without a buffer", EINVAL);
            uint16_t bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
            unsigned slot = (c->head + c->count) % QCAP;
            c->q[slot] = (struct chunk){.bid = bid, .off = 0, .len = (uint32_t)res};
            c->count++;
            if (!c->sending) send_head(fd);
            if (!(flags & IORING_CQE_F_MORE)) {
                n_rearm++;
                arm_recv(fd);
            }
        } else if (res == -ENOBUFS) {
            n_enobufs++; /* ring ran dry: re-armed when a send gives a buffer back */
            c->starved = 1;
            starved_q[(starved_head + starved_count) % MAX_FDS] = fd;
            starved_count++;
        } else { /* EOF or error: finish the send in flight, then close */
            c->closing = 1;
            if (!c->sending) conn_close(fd);
        }
        return;
    }
    /* OP_SEND */
    c->sending = 0;
    struct chunk *ch = &c->q[c->head];
    if (res < 0) {
        c->closing = 1;
    } else if ((uint32_t)res < ch->len) { /* not expected with MSG_WAITALL; resend the rest */
        n_short++;
        ch->off += (uint32_t)res;
        ch->len -= (uint32_t)res;
        if (!c->closing) {
            send_head(fd);
            return;
        }
    } else {
        buf_return(ch->bid);
        c->head = (c->head + 1) % QCAP;
        c->count--;
        if (c->count && !c->closing) {
            send_head(fd);
            return;
        }
    }
    if (c->closing) conn_close(fd);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *unix_path = NULL;
    int port = 0, cpu = -1;
    double max_seconds = 60;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--cpu")) cpu = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-seconds")) max_seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--host")) host = argv[i + 1];
        else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--unix")) unix_path = argv[i + 1];
        else die(argv[i], EINVAL);
    }
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity", errno);
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the harness */
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: the wait returns -EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct io_uring_params p = {0};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
              IORING_SETUP_CQSIZE;
    p.cq_entries = 8192;
    const char *mode = "SINGLE_ISSUER|DEFER_TASKRUN";
    int ret = io_uring_queue_init_params(512, &ring, &p);
    if (ret == -EINVAL) {
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL |
                  IORING_SETUP_CQSIZE;
        p.cq_entries = 8192;
        mode = "COOP_TASKRUN|TASKRUN_FLAG";
        ret = io_uring_queue_init_params(512, &ring, &p);
    }
    if (ret < 0) die("io_uring_queue_init_params", -ret);
    io_uring_register_ring_fd(&ring); /* optional: fewer fd lookups per enter */

    /* the provided-buffer ring, by hand (liburing 2.3) */
    size_t ring_bytes = NBUFS * sizeof(struct io_uring_buf);
    br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (br == MAP_FAILED) die("mmap buffer ring", errno);
    struct io_uring_buf_reg reg = {
        .ring_addr = (unsigned long)br, .ring_entries = NBUFS, .bgid = BGID};
    ret = io_uring_register_buf_ring(&ring, &reg, 0);
    if (ret < 0) die("io_uring_register_buf_ring", -ret);
    if (posix_memalign((void **)&bufs, 4096, (size_t)NBUFS * BUF_SIZE) != 0)
        die("posix_memalign", ENOMEM);
    memset(bufs, 0, (size_t)NBUFS * BUF_SIZE); /* fault the pages in before serving */
    io_uring_buf_ring_init(br);
    for (int i = 0; i < NBUFS; i++)
        io_uring_buf_ring_add(br, bufs + (size_t)i * BUF_SIZE, BUF_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(NBUFS), i);
    io_uring_buf_ring_advance(br, NBUFS);

    conns = calloc(MAX_FDS, sizeof *conns);
    starved_q = calloc(MAX_FDS, sizeof *starved_q);
    if (!conns || !starved_q) die("calloc", ENOMEM);

    if (unix_path) {
        struct sockaddr_un su = {.sun_family = AF_UNIX};
        if (strlen(unix_path) >= sizeof su.sun_path) die("unix path", ENAMETOOLONG);
        strcpy(su.sun_path, unix_path);
        unlink(unix_path);
        listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&su, sizeof su) != 0)
            die("bind", errno);
        is_unix = 1;
    } else {
        struct sockaddr_in si = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        if (inet_pton(AF_INET, host, &si.sin_addr) != 1) die("host", EINVAL);
        listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&si, sizeof si) != 0)
            die("bind", errno);
    }
    if (listen(listen_fd, 1024) != 0) die("listen", errno);
    if (unix_path) {
        printf("{\"unix\": \"%s\", \"pid\": %d, \"mode\": \"%s\"}\n", unix_path, getpid(), mode);
    } else {
        struct sockaddr_in si;
        socklen_t len = sizeof si;
        getsockname(listen_fd, (struct sockaddr *)&si, &len);
        printf("{\"port\": %d, \"pid\": %d, \"mode\": \"%s\"}\n", ntohs(si.sin_port),
               getpid(), mode);
    }
    fflush(stdout);
    if (max_seconds > 0) alarm((unsigned)(max_seconds + 0.999));

    arm_accept();
    while (!stop) {
        ret = io_uring_submit_and_wait(&ring, 1);
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
            die("io_uring_submit_and_wait", -ret);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            on_cqe(cqe);
            seen++;
        }
        io_uring_cq_advance(&ring, seen);
    }
    fprintf(stderr,
            "{\"accepted\": %llu, \"recv_cqes\": %llu, \"sends\": %llu, \"enobufs\": %llu, "
            "\"recv_rearms\": %llu, \"short_sends\": %llu}\n",
            n_accept, n_recv, n_send, n_enobufs, n_rearm, n_short);
    if (unix_path) unlink(unix_path);
    return 0;
}
