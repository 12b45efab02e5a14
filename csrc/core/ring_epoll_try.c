/*
 * ring_epoll_try.c - the epoll backend's attempts: one non-blocking try of
 * each kind of socket/pipe op (MSG_DONTWAIT, or poll() first on a blocking
 * fd), with io_uring's result conventions (-errno, MSG_WAITALL stream
 * sends that finish or report how far they got, multishot receives into
 * the receive buffers with io_uring's datagram layout), and the file ops,
 * run synchronously. Called only by ring_epoll.c, on the ring's thread.
 */
#define _GNU_SOURCE
#include "core/ring_epoll.h"
#include "core/common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---- the attempts ---------------------------------------------------- */

/* Readiness each kind waits for: an EPOLL* mask. */
unsigned
rl_epoll_wants(const struct req *q)
{
    switch (q->kind) {
    case K_WRITE:
    case K_SEND:
    case K_SENDMSG:
    case K_CONNECT:
        return EPOLLOUT;
    case K_POLL: {
        unsigned m = 0;
        if (q->len & (POLLIN | POLLPRI | POLLRDNORM))
            m |= EPOLLIN | EPOLLPRI;
        if (q->len & (POLLOUT | POLLWRNORM))
            m |= EPOLLOUT;
        if (q->len & POLLRDHUP)
            m |= EPOLLRDHUP;
        return m;
    }
    default:
        return EPOLLIN | EPOLLRDHUP;
    }
}

/* For a blocking fd: 1 if the call will not block. */
static int
ready_now(const struct req *q)
{
    if (!q->blocking)
        return 1;
    struct pollfd p = {q->fd, (rl_epoll_wants(q) & EPOLLOUT) ? POLLOUT : POLLIN, 0};
    return poll(&p, 1, 0) > 0;
}

/* 0 <= n: a result; n < 0: -errno from errno. */
static int
result(ssize_t n)
{
    return n >= 0 ? (int)(n > INT_MAX ? INT_MAX : n) : -errno;
}

static int
would_block(int res)
{
    return res == -EAGAIN || res == -EWOULDBLOCK;
}

/* Completes with res unless it only means "not yet". */
static int
finish(struct rl_epoll *e, struct req *q, int res)
{
    if (would_block(res) || res == -EINTR)
        return ST_WAIT;
    rl_epoll_push(e, q->op, res, 0);
    return ST_DONE;
}

static int
is_stream(int fd)
{
    int type = 0;
    socklen_t len = sizeof(type);
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
           (type == SOCK_STREAM || type == SOCK_SEQPACKET);
}

/* recv and send, with MSG_WAITALL on stream sockets meaning "all of it or
 * an error": a short count reports the error that stopped it. */
static int
try_transfer(struct rl_epoll *e, struct req *q)
{
    int waitall = (q->flags & MSG_WAITALL) != 0;
    int flags = (q->flags & ~MSG_WAITALL) | MSG_DONTWAIT;
    for (;;) {
        char *at = (char *)q->buf + q->done;
        unsigned left = q->len - q->done;
        ssize_t n = q->kind == K_RECV ? recv(q->fd, at, left, flags)
                                      : send(q->fd, at, left, flags);
        int res = result(n);
        if (res > 0 && waitall && (unsigned)res < left &&
            (q->done || is_stream(q->fd))) {
            q->done += (unsigned)res;
            continue;
        }
        if (res >= 0)
            return finish(e, q, (int)q->done + res);
        if (would_block(res) || res == -EINTR)
            return ST_WAIT;
        return finish(e, q, q->done ? (int)q->done : res);
    }
}

/* Drops `n` sent bytes from the front of q's message (copied first). */
static int
advance_msg(struct req *q, size_t n)
{
    if (!q->own_msg) {
        size_t iovs = q->msg->msg_iovlen * sizeof(struct iovec);
        q->own_msg = malloc(sizeof(struct msghdr) + iovs);
        if (!q->own_msg)
            return -ENOMEM;
        *q->own_msg = *q->msg;
        q->own_msg->msg_iov = (struct iovec *)(q->own_msg + 1);
        memcpy(q->own_msg->msg_iov, q->msg->msg_iov, iovs);
        q->msg = q->own_msg;
    }
    struct msghdr *m = q->own_msg;
    while (n && m->msg_iovlen) {
        size_t take = n < m->msg_iov->iov_len ? n : m->msg_iov->iov_len;
        m->msg_iov->iov_base = (char *)m->msg_iov->iov_base + take;
        m->msg_iov->iov_len -= take;
        n -= take;
        if (m->msg_iov->iov_len == 0) {
            m->msg_iov++;
            m->msg_iovlen--;
        }
    }
    m->msg_control = NULL; /* ancillary data went with the first bytes */
    m->msg_controllen = 0;
    return 0;
}

static int
try_sendmsg(struct rl_epoll *e, struct req *q)
{
    int waitall = (q->flags & MSG_WAITALL) != 0;
    int flags = (q->flags & ~MSG_WAITALL) | MSG_DONTWAIT;
    for (;;) {
        size_t left = 0;
        for (size_t i = 0; i < q->msg->msg_iovlen; i++)
            left += q->msg->msg_iov[i].iov_len;
        int res = result(sendmsg(q->fd, q->msg, flags));
        if (res > 0 && waitall && (size_t)res < left &&
            (q->done || is_stream(q->fd))) {
            if (advance_msg(q, (size_t)res) < 0)
                return finish(e, q, (int)q->done + res);
            q->done += (unsigned)res;
            continue;
        }
        if (res >= 0)
            return finish(e, q, (int)q->done + res);
        if (would_block(res) || res == -EINTR)
            return ST_WAIT;
        return finish(e, q, q->done ? (int)q->done : res);
    }
}

static int
try_connect(struct rl_epoll *e, struct req *q)
{
    if (!q->connecting) {
        int res = connect(q->fd, q->addr, q->addrlen) == 0 ? 0 : -errno;
        if (res == -EINPROGRESS || res == -EAGAIN || res == -EALREADY) {
            q->connecting = res != -EAGAIN;
            return ST_WAIT;
        }
        return finish(e, q, res == -EINTR ? -EINPROGRESS : res);
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return finish(e, q, -errno);
    if (err)
        return finish(e, q, -err);
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    if (getpeername(q->fd, (struct sockaddr *)&peer, &plen) < 0)
        return errno == ENOTCONN ? ST_WAIT : finish(e, q, -errno);
    return finish(e, q, 0);
}

/* ---- receive buffers -------------------------------------------------- */

int
rl_epoll_ensure_buffers(struct rl_epoll *e)
{
    if (RL_LIKELY(e->bufs))
        return 0;
    if (e->bufs_failed)
        return e->bufs_failed;
    unsigned count = 16, size = 128 * 1024;
    const char *want = getenv("RINGLOOP_RECV_BUFFERS"); /* "COUNTxSIZE" */
    if (want) {
        unsigned c, s;
        if (sscanf(want, "%ux%u", &c, &s) == 2 && c && c <= 32768 &&
            (c & (c - 1)) == 0 && s >= 1024) {
            count = c;
            size = s;
        }
    }
    void *bufs = mmap(NULL, (size_t)count * size, PROT_READ | PROT_WRITE,
                      MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (bufs == MAP_FAILED)
        return e->bufs_failed = -errno;
    e->free_ids = malloc(count * sizeof(*e->free_ids));
    if (!e->free_ids) {
        munmap(bufs, (size_t)count * size);
        return e->bufs_failed = -ENOMEM;
    }
    e->bufs = bufs;
    e->buf_count = count;
    e->buf_size = size;
    /* Lowest ids first, as the buffer ring hands them out. */
    for (unsigned i = 0; i < count; i++)
        e->free_ids[i] = count - 1 - i;
    e->nfree = count;
    return 0;
}

char *
rl_epoll_buffer(struct rl_ring *r, unsigned id)
{
    return E(r)->bufs + (size_t)id * E(r)->buf_size;
}

void
rl_epoll_buffer_recycle(struct rl_ring *r, unsigned id)
{
    struct rl_epoll *e = E(r);
    if (id < e->buf_count && e->nfree < e->buf_count)
        e->free_ids[e->nfree++] = id;
}

unsigned
rl_epoll_buffer_size(const struct rl_ring *r)
{
    return E(r)->bufs ? E(r)->buf_size : 0;
}

/* Out of buffers: -ENOBUFS once data is waiting, as io_uring does. */
static int
no_buffer(struct rl_epoll *e, struct req *q)
{
    char c;
    int res = result(recv(q->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT));
    if (would_block(res) || res == -EINTR)
        return ST_WAIT;
    rl_epoll_push(e, q->op, res < 0 ? res : -ENOBUFS, 0);
    return ST_DONE;
}

static unsigned
buffer_flags(unsigned id)
{
    return RL_OP_MORE | RL_OP_BUFFER | (id << 16);
}

/* revents: a short read drains the socket, unless the peer's shutdown was
 * reported too: that edge will not come again, so read on to the EOF. */
static int
try_recv_multishot(struct rl_epoll *e, struct req *q, unsigned revents)
{
    for (int i = 0; i < MULTISHOT_CAP; i++) {
        if (e->nfree == 0)
            return no_buffer(e, q);
        unsigned id = e->free_ids[--e->nfree];
        int res = result(recv(q->fd, rl_epoll_buffer(&e->base, id),
                              e->buf_size, MSG_DONTWAIT));
        if (res <= 0) {
            e->free_ids[e->nfree++] = id;
            return finish(e, q, res);
        }
        int full = (unsigned)res == e->buf_size;
        rl_epoll_push(e, q->op, res, buffer_flags(id) | (full ? RL_OP_NONEMPTY : 0));
        if (!full && !(revents & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
            return ST_WAIT; /* a short read took all there was */
    }
    return ST_RETRY;
}

static int
try_recvmsg_multishot(struct rl_epoll *e, struct req *q)
{
    size_t head = sizeof(struct rl_recvmsg_out) + q->msg->msg_namelen +
                  q->msg->msg_controllen;
    for (int i = 0; i < MULTISHOT_CAP; i++) {
        if (head >= e->buf_size)
            return finish(e, q, -EINVAL);
        if (e->nfree == 0)
            return no_buffer(e, q);
        unsigned id = e->free_ids[--e->nfree];
        char *buf = rl_epoll_buffer(&e->base, id);
        struct iovec iov = {buf + head, e->buf_size - head};
        struct msghdr m = *q->msg;
        m.msg_name = m.msg_namelen ? buf + sizeof(struct rl_recvmsg_out)
                                   : NULL;
        m.msg_control = m.msg_controllen
                            ? buf + sizeof(struct rl_recvmsg_out) +
                                  q->msg->msg_namelen
                            : NULL;
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        int res = result(recvmsg(q->fd, &m, MSG_DONTWAIT | MSG_TRUNC));
        if (res < 0) {
            e->free_ids[e->nfree++] = id;
            return finish(e, q, res);
        }
        struct rl_recvmsg_out o = {
            .namelen = m.msg_name ? m.msg_namelen : 0,
            .controllen = (uint32_t)m.msg_controllen,
            .payloadlen = (uint32_t)res,
            .flags = (uint32_t)m.msg_flags,
        };
        memcpy(buf, &o, sizeof(o));
        size_t got = (size_t)res < iov.iov_len ? (size_t)res : iov.iov_len;
        rl_epoll_push(e, q->op, (int)(head + got), buffer_flags(id));
    }
    return ST_RETRY;
}

static int
try_accept_multishot(struct rl_epoll *e, struct req *q)
{
    for (int i = 0; i < MULTISHOT_CAP; i++) {
        if (!ready_now(q))
            return ST_WAIT;
        int res = result(accept4(q->fd, NULL, NULL, SOCK_CLOEXEC));
        if (res < 0)
            return finish(e, q, res);
        rl_epoll_push(e, q->op, res, RL_OP_MORE);
    }
    return ST_RETRY;
}

/* Polls are never tried before a wait: arming the fd reports readiness. */
static int
try_poll(struct rl_epoll *e, struct req *q, unsigned revents)
{
    unsigned m = 0;
    if (revents & (EPOLLIN | EPOLLPRI))
        m |= revents & EPOLLPRI ? POLLPRI | POLLIN : POLLIN;
    if (revents & EPOLLOUT)
        m |= POLLOUT;
    if (revents & EPOLLRDHUP)
        m |= POLLRDHUP;
    m &= q->len;
    m |= revents & (EPOLLERR | EPOLLHUP); /* same values as POLL* */
    if (!m)
        return ST_WAIT;
    rl_epoll_push(e, q->op, (int)m, 0);
    return ST_DONE;
}

/* File operations: run now (regular files are always "ready"). */
void
rl_epoll_run_file_op(struct rl_epoll *e, struct req *q)
{
    int res;
    switch (q->kind) {
    case K_PREAD:
        res = result(pread(q->fd, q->buf, q->len, (off_t)q->offset));
        break;
    case K_PWRITE:
        res = result(pwrite(q->fd, q->buf, q->len, (off_t)q->offset));
        break;
    case K_OPENAT:
        res = result(openat(q->fd, q->path, q->flags | O_CLOEXEC, q->mode));
        break;
    case K_CLOSE:
        res = result(close(q->fd));
        break;
    case K_STATX:
        res = result(statx(q->fd, q->path, q->flags, q->mode, q->stx));
        break;
    default: /* K_FSYNC */
        res = result(q->flags ? fdatasync(q->fd) : fsync(q->fd));
        break;
    }
    rl_epoll_push(e, q->op, res, 0);
}

/* One try of q. revents: the readiness seen (all of it on first try). */
int
rl_epoll_attempt(struct rl_epoll *e, struct req *q, unsigned revents)
{
    switch (q->kind) {
    case K_READ:
        if (!ready_now(q))
            return ST_WAIT;
        return finish(e, q, result(read(q->fd, q->buf, q->len)));
    case K_WRITE: {
        /* after POLLOUT, a blocking pipe takes PIPE_BUF bytes at once */
        unsigned len = q->blocking && q->len > PIPE_BUF ? PIPE_BUF : q->len;
        if (!ready_now(q))
            return ST_WAIT;
        return finish(e, q, result(write(q->fd, q->buf, len)));
    }
    case K_RECV:
    case K_SEND:
        return try_transfer(e, q);
    case K_RECVMSG:
        return finish(e, q,
                      result(recvmsg(q->fd, q->msg, q->flags | MSG_DONTWAIT)));
    case K_SENDMSG:
        return try_sendmsg(e, q);
    case K_CONNECT:
        return try_connect(e, q);
    case K_ACCEPT:
        if (!ready_now(q))
            return ST_WAIT;
        return finish(e, q,
                      result(accept4(q->fd, q->out_addr, q->addrlenp,
                                     SOCK_CLOEXEC)));
    case K_ACCEPT_MS:
        return try_accept_multishot(e, q);
    case K_RECV_MS:
        return try_recv_multishot(e, q, revents);
    case K_RECVMSG_MS:
        return try_recvmsg_multishot(e, q);
    default: /* K_POLL */
        return try_poll(e, q, revents);
    }
}
