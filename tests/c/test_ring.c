/*
 * test_ring.c - ring.h's contract, checked the same way on each backend
 * (io_uring, then epoll, chosen with RINGLOOP_BACKEND): nothing completes
 * inside the queueing call, a recv and a send pending on one fd, stream
 * sends that wait for all of it, cancel (before and after completion, and
 * the data stays), multishot accept/recv with the receive buffers and
 * -ENOBUFS, multishot recvmsg parsed by rl_ring_datagram, poll, a read on
 * a blocking eventfd, connect, the file ops, and close delivering the
 * final completions. io_uring refused: its half is reported and skipped.
 */
#define _GNU_SOURCE
#include "core/ring.h"
#include "check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct rec {
    struct rl_op op;
    int n;
    int res[64];
    unsigned flags[64];
};

static void
record(struct rl_op *op, int res, unsigned flags)
{
    struct rec *r = (struct rec *)op;
    if (r->n < 64) {
        r->res[r->n] = res;
        r->flags[r->n] = flags;
    }
    r->n++;
}

static void
rec_init(struct rec *r)
{
    memset(r, 0, sizeof(*r));
    r->op.complete = record;
}

/* Runs the ring until rec has `want` completions (or ~2 s). */
static void
run_until(struct rl_ring *ring, struct rec *rec, int want)
{
    for (int i = 0; i < 200 && rec->n < want; i++) {
        rl_ring_submit_and_wait(ring, 10 * 1000 * 1000);
        rl_ring_dispatch(ring);
    }
}

static void
spin(struct rl_ring *ring, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        rl_ring_submit_and_wait(ring, 1000 * 1000);
        rl_ring_dispatch(ring);
    }
}

static void
pair(int sv[2])
{
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
}

static void
test_stream_ops(struct rl_ring *ring)
{
    int sv[2];
    pair(sv);
    char buf[64] = {0};
    struct rec recv, send;
    rec_init(&recv);
    rec_init(&send);

    /* queued, data present: nothing before the ring runs */
    write(sv[1], "abc", 3);
    CHECK(rl_ring_recv(ring, &recv.op, sv[0], buf, sizeof(buf), 0) == 0);
    CHECK(rl_ring_inflight(ring) == 2); /* with the test's doorbell read */
    CHECK(rl_ring_dispatch(ring) == 0 && recv.n == 0);
    run_until(ring, &recv, 1);
    CHECK(recv.n == 1 && recv.res[0] == 3 && memcmp(buf, "abc", 3) == 0);

    /* a recv and a send pending on one fd */
    rec_init(&recv);
    CHECK(rl_ring_recv(ring, &recv.op, sv[0], buf, sizeof(buf), 0) == 0);
    CHECK(rl_ring_send(ring, &send.op, sv[0], "xyz", 3, MSG_WAITALL) == 0);
    run_until(ring, &send, 1);
    CHECK(send.n == 1 && send.res[0] == 3 && recv.n == 0);
    write(sv[1], "12", 2);
    run_until(ring, &recv, 1);
    CHECK(recv.n == 1 && recv.res[0] == 2);
    char tmp[8];
    CHECK(read(sv[1], tmp, sizeof(tmp)) == 3);

    /* a stream send waits for all of it */
    size_t big = 8 << 20;
    char *data = malloc(big), *sink = malloc(big);
    memset(data, 7, big);
    rec_init(&send);
    CHECK(rl_ring_send(ring, &send.op, sv[0], data, (unsigned)big,
                       MSG_WAITALL | MSG_NOSIGNAL) == 0);
    size_t got = 0;
    for (int i = 0; i < 2000 && send.n == 0; i++) {
        spin(ring, 1);
        ssize_t n = read(sv[1], sink + got, big - got);
        if (n > 0)
            got += (size_t)n;
    }
    CHECK(send.n == 1 && send.res[0] == (int)big);
    while (got < big) {
        ssize_t n = read(sv[1], sink + got, big - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    CHECK(got == big && memcmp(sink, data, big) == 0);
    free(data);
    free(sink);

    /* cancel a pending recv: -ECANCELED, and the data stays */
    rec_init(&recv);
    CHECK(rl_ring_recv(ring, &recv.op, sv[0], buf, sizeof(buf), 0) == 0);
    spin(ring, 2);
    CHECK(rl_ring_cancel(ring, &recv.op) == 0);
    write(sv[1], "kept", 4);
    run_until(ring, &recv, 1);
    spin(ring, 2);
    CHECK(recv.n == 1 && recv.res[0] == -ECANCELED);
    CHECK(read(sv[0], buf, sizeof(buf)) == 4);

    /* cancel after completion: nothing more */
    rec_init(&recv);
    write(sv[1], "z", 1);
    CHECK(rl_ring_recv(ring, &recv.op, sv[0], buf, sizeof(buf), 0) == 0);
    run_until(ring, &recv, 1);
    CHECK(rl_ring_cancel(ring, &recv.op) == 0);
    spin(ring, 3);
    CHECK(recv.n == 1 && recv.res[0] == 1);

    /* poll */
    struct rec poll_rec;
    rec_init(&poll_rec);
    CHECK(rl_ring_poll(ring, &poll_rec.op, sv[0], POLLIN) == 0);
    spin(ring, 2);
    CHECK(poll_rec.n == 0);
    write(sv[1], "p", 1);
    run_until(ring, &poll_rec, 1);
    CHECK(poll_rec.n == 1 && (poll_rec.res[0] & POLLIN));
    read(sv[0], buf, sizeof(buf));

    /* multishot receive into the ring's buffers, then EOF */
    struct rec ms;
    rec_init(&ms);
    CHECK(rl_ring_recv_multishot(ring, &ms.op, sv[0]) == 0);
    write(sv[1], "hello", 5);
    run_until(ring, &ms, 1);
    CHECK(ms.n == 1 && ms.res[0] == 5 && (ms.flags[0] & RL_OP_MORE) &&
          (ms.flags[0] & RL_OP_BUFFER));
    if (ms.n >= 1 && (ms.flags[0] & RL_OP_BUFFER)) {
        unsigned id = RL_OP_BUFFER_ID(ms.flags[0]);
        CHECK(memcmp(rl_ring_buffer(ring, id), "hello", 5) == 0);
        CHECK(rl_ring_buffer_size(ring) >= 1024);
        rl_ring_buffer_recycle(ring, id);
    }
    write(sv[1], "again", 5);
    run_until(ring, &ms, 2);
    CHECK(ms.n == 2 && ms.res[1] == 5);
    if (ms.n >= 2)
        rl_ring_buffer_recycle(ring, RL_OP_BUFFER_ID(ms.flags[1]));
    close(sv[1]);
    run_until(ring, &ms, 3);
    CHECK(ms.n == 3 && ms.res[2] == 0 && !(ms.flags[2] & RL_OP_MORE));
    close(sv[0]);

    /* data and the peer's close in one wake-up: both arrive */
    pair(sv);
    rec_init(&ms);
    CHECK(rl_ring_recv_multishot(ring, &ms.op, sv[0]) == 0);
    spin(ring, 2);
    write(sv[1], "bye", 3);
    close(sv[1]);
    run_until(ring, &ms, 2);
    CHECK(ms.n == 2 && ms.res[0] == 3 && ms.res[1] == 0);
    if (ms.n >= 1 && (ms.flags[0] & RL_OP_BUFFER))
        rl_ring_buffer_recycle(ring, RL_OP_BUFFER_ID(ms.flags[0]));
    close(sv[0]);
}

static void
test_no_buffers(struct rl_ring *ring)
{
    /* RINGLOOP_RECV_BUFFERS=1x1024 was set before this ring's buffers */
    int sv[2];
    pair(sv);
    struct rec ms;
    rec_init(&ms);
    CHECK(rl_ring_recv_multishot(ring, &ms.op, sv[0]) == 0);
    write(sv[1], "one", 3);
    run_until(ring, &ms, 1);
    spin(ring, 2);
    CHECK(ms.n == 1 && ms.res[0] == 3 && (ms.flags[0] & RL_OP_MORE));
    write(sv[1], "two", 3); /* the only buffer is still ours */
    run_until(ring, &ms, 2);
    CHECK(ms.n == 2 && ms.res[1] == -ENOBUFS && !(ms.flags[1] & RL_OP_MORE));
    if (ms.n >= 1)
        rl_ring_buffer_recycle(ring, RL_OP_BUFFER_ID(ms.flags[0]));
    rec_init(&ms);
    CHECK(rl_ring_recv_multishot(ring, &ms.op, sv[0]) == 0);
    run_until(ring, &ms, 1);
    CHECK(ms.n == 1 && ms.res[0] == 3);
    if (ms.n >= 1)
        rl_ring_buffer_recycle(ring, RL_OP_BUFFER_ID(ms.flags[0]));
    CHECK(rl_ring_cancel(ring, &ms.op) == 0);
    run_until(ring, &ms, 2);
    CHECK(ms.n == 2 && ms.res[1] == -ECANCELED);
    close(sv[0]);
    close(sv[1]);
}

static int
listener(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(*addr);
    bind(fd, (struct sockaddr *)addr, len);
    listen(fd, 16);
    getsockname(fd, (struct sockaddr *)addr, &len);
    return fd;
}

static void
test_accept_connect(struct rl_ring *ring)
{
    struct sockaddr_in addr;
    int lfd = listener(&addr);
    struct rec acc, con[3];
    rec_init(&acc);
    CHECK(rl_ring_accept_multishot(ring, &acc.op, lfd) == 0);
    int cfd[3];
    for (int i = 0; i < 3; i++) {
        rec_init(&con[i]);
        cfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        0);
        CHECK(rl_ring_connect(ring, &con[i].op, cfd[i],
                              (struct sockaddr *)&addr, sizeof(addr)) == 0);
    }
    for (int i = 0; i < 3; i++)
        run_until(ring, &con[i], 1);
    run_until(ring, &acc, 3);
    for (int i = 0; i < 3; i++)
        CHECK(con[i].n == 1 && con[i].res[0] == 0);
    CHECK(acc.n == 3);
    for (int i = 0; i < acc.n && i < 3; i++) {
        CHECK(acc.res[i] >= 0 && (acc.flags[i] & RL_OP_MORE));
        CHECK(fcntl(acc.res[i], F_GETFD) == FD_CLOEXEC);
        close(acc.res[i]);
    }
    CHECK(rl_ring_cancel(ring, &acc.op) == 0);
    run_until(ring, &acc, 4);
    CHECK(acc.n == 4 && acc.res[3] == -ECANCELED &&
          !(acc.flags[3] & RL_OP_MORE));
    for (int i = 0; i < 3; i++)
        close(cfd[i]);

    /* a refused connection */
    close(lfd);
    struct rec refused;
    rec_init(&refused);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(rl_ring_connect(ring, &refused.op, fd, (struct sockaddr *)&addr,
                          sizeof(addr)) == 0);
    run_until(ring, &refused, 1);
    CHECK(refused.n == 1 && refused.res[0] == -ECONNREFUSED);
    close(fd);
}

static void
test_datagrams(struct rl_ring *ring)
{
    int rx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int tx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET}, b;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    b = a;
    socklen_t len = sizeof(a);
    bind(rx, (struct sockaddr *)&a, len);
    getsockname(rx, (struct sockaddr *)&a, &len);
    bind(tx, (struct sockaddr *)&b, len);
    getsockname(tx, (struct sockaddr *)&b, &len);

    struct msghdr msg = {.msg_namelen = sizeof(struct sockaddr_storage)};
    struct rec ms;
    rec_init(&ms);
    CHECK(rl_ring_recvmsg_multishot(ring, &ms.op, rx, &msg) == 0);
    sendto(tx, "dgram-1", 7, 0, (struct sockaddr *)&a, sizeof(a));
    sendto(tx, "dg2", 3, 0, (struct sockaddr *)&a, sizeof(a));
    run_until(ring, &ms, 2);
    CHECK(ms.n == 2);
    const char *want[2] = {"dgram-1", "dg2"};
    for (int i = 0; i < 2 && i < ms.n; i++) {
        CHECK((ms.flags[i] & RL_OP_BUFFER) && (ms.flags[i] & RL_OP_MORE));
        unsigned id = RL_OP_BUFFER_ID(ms.flags[i]);
        struct rl_datagram d;
        CHECK(rl_ring_datagram(&msg, rl_ring_buffer(ring, id),
                               (unsigned)ms.res[i], &d) == 0);
        CHECK(d.len == strlen(want[i]) &&
              memcmp(d.data, want[i], d.len) == 0 && !d.truncated);
        CHECK(d.name && d.namelen == sizeof(b) &&
              ((struct sockaddr_in *)d.name)->sin_port == b.sin_port);
        rl_ring_buffer_recycle(ring, id);
    }
    CHECK(rl_ring_cancel(ring, &ms.op) == 0);
    run_until(ring, &ms, 3);
    CHECK(ms.n == 3 && ms.res[2] == -ECANCELED);
    close(rx);
    close(tx);
}

static void
test_files_and_eventfd(struct rl_ring *ring)
{
    char path[] = "/tmp/rl_test_ring_XXXXXX";
    int tmp = mkstemp(path);
    close(tmp);
    struct rec r;
    rec_init(&r);
    CHECK(rl_ring_openat(ring, &r.op, AT_FDCWD, path, O_RDWR, 0) == 0);
    run_until(ring, &r, 1);
    int fd = r.n ? r.res[0] : -1;
    CHECK(fd >= 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC);
    rec_init(&r);
    CHECK(rl_ring_pwrite(ring, &r.op, fd, "filedata", 8, 4) == 0);
    run_until(ring, &r, 1);
    CHECK(r.n == 1 && r.res[0] == 8);
    rec_init(&r);
    CHECK(rl_ring_fsync(ring, &r.op, fd, 1) == 0);
    run_until(ring, &r, 1);
    CHECK(r.n == 1 && r.res[0] == 0);
    char buf[16] = {0};
    rec_init(&r);
    CHECK(rl_ring_pread(ring, &r.op, fd, buf, 4, 8) == 0);
    run_until(ring, &r, 1);
    CHECK(r.n == 1 && r.res[0] == 4 && memcmp(buf, "data", 4) == 0);
    struct statx stx;
    rec_init(&r);
    CHECK(rl_ring_statx(ring, &r.op, AT_FDCWD, path, 0, STATX_SIZE, &stx) ==
          0);
    run_until(ring, &r, 1);
    CHECK(r.n == 1 && r.res[0] == 0 && stx.stx_size == 12);
    /* read/write on a regular file (not pollable) */
    rec_init(&r);
    CHECK(rl_ring_read(ring, &r.op, fd, buf, 4) == 0);
    run_until(ring, &r, 1);
    CHECK(r.n == 1 && r.res[0] == 4);
    rec_init(&r);
    CHECK(rl_ring_close_fd(ring, &r.op, fd) == 0);
    run_until(ring, &r, 1);
    CHECK(r.n == 1 && r.res[0] == 0 && fcntl(fd, F_GETFD) < 0);
    rec_init(&r);
    CHECK(rl_ring_openat(ring, &r.op, AT_FDCWD, "/nonexistent/x", O_RDONLY,
                         0) == 0);
    run_until(ring, &r, 1);
    CHECK(r.n == 1 && r.res[0] == -ENOENT);
    unlink(path);

    /* a read on a blocking eventfd, as the loop's doorbell */
    int efd = eventfd(0, EFD_CLOEXEC);
    uint64_t value = 0, one = 1;
    rec_init(&r);
    CHECK(rl_ring_read(ring, &r.op, efd, &value, sizeof(value)) == 0);
    spin(ring, 3);
    CHECK(r.n == 0);
    write(efd, &one, sizeof(one));
    run_until(ring, &r, 1);
    CHECK(r.n == 1 && r.res[0] == 8 && value == 1);
    close(efd);
}

static void
test_close_delivers(void)
{
    struct rl_ring *ring;
    if (rl_ring_open(&ring) < 0 || rl_ring_enable(ring) < 0) {
        CHECK(0);
        return;
    }
    int sv[2];
    pair(sv);
    char buf[8];
    struct rec recv, ms;
    rec_init(&recv);
    rec_init(&ms);
    CHECK(rl_ring_recv(ring, &recv.op, sv[0], buf, sizeof(buf), 0) == 0);
    spin(ring, 2);
    CHECK(rl_ring_poll(ring, &ms.op, sv[1], POLLIN) == 0); /* not submitted */
    rl_ring_close(ring);
    CHECK(recv.n == 1 && recv.res[0] == -ECANCELED);
    CHECK(ms.n == 1 && ms.res[0] == -ECANCELED);
    close(sv[0]);
    close(sv[1]);
}

static void
run_backend(const char *name)
{
    setenv("RINGLOOP_BACKEND", name, 1);
    unsetenv("RINGLOOP_RECV_BUFFERS");
    struct rl_ring *ring;
    int res = rl_ring_open(&ring);
    if (res < 0) {
        printf("%s: unavailable (%s), skipped\n", name, strerror(-res));
        return;
    }
    CHECK(strcmp(rl_ring_backend_name(ring), name) == 0);
    CHECK(rl_ring_enable(ring) == 0);
    /* something in flight throughout, as the loop's doorbell */
    int efd = eventfd(0, EFD_CLOEXEC);
    uint64_t v;
    struct rec bell;
    rec_init(&bell);
    rl_ring_read(ring, &bell.op, efd, &v, sizeof(v));
    test_stream_ops(ring);
    test_accept_connect(ring);
    test_datagrams(ring);
    test_files_and_eventfd(ring);
    CHECK(rl_ring_inflight(ring) == 1 && bell.n == 0);
    rl_ring_close(ring);
    CHECK(bell.n == 1 && bell.res[0] == -ECANCELED);
    close(efd);

    setenv("RINGLOOP_RECV_BUFFERS", "1x1024", 1);
    if (rl_ring_open(&ring) == 0) {
        rl_ring_enable(ring);
        test_no_buffers(ring);
        rl_ring_close(ring);
    }
    unsetenv("RINGLOOP_RECV_BUFFERS");
    test_close_delivers();
    printf("%s: done (%d failed so far)\n", name, checks_failed);
}

int
main(void)
{
    setenv("RINGLOOP_BACKEND", "bogus", 1);
    struct rl_ring *ring;
    CHECK(rl_ring_backend_wanted() == -EINVAL);
    CHECK(rl_ring_open(&ring) == -EINVAL);
    run_backend("io_uring");
    run_backend("epoll");
    return check_report("test_ring");
}
