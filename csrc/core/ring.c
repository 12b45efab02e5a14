/*
 * ring.c - picks a ring's backend at rl_ring_open and routes every rl_ring_*
 * call to it (ring_backend.h); parses datagram buffers, whose layout both
 * backends share.
 *
 * Selection (RINGLOOP_BACKEND): unset means io_uring, and epoll when the
 * kernel refuses io_uring (seccomp, kernel.io_uring_disabled, old kernel).
 * That refusal is remembered for the process, so later rings go straight
 * to epoll, and reported once through rl_ring_fallback_notice. The only
 * process-wide state here is those two atomics; any thread may open rings.
 */
#include "core/ring_backend.h"
#include "core/common.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_int uring_refused; /* -errno once io_uring setup was refused */
static atomic_int notice;        /* the same, until taken; then 1 */

int
rl_ring_backend_wanted(void)
{
    const char *want = getenv("RINGLOOP_BACKEND");
    if (want == NULL || *want == '\0')
        return RL_RING_AUTO;
    if (strcmp(want, "io_uring") == 0)
        return RL_RING_URING;
    if (strcmp(want, "epoll") == 0)
        return RL_RING_EPOLL;
    return -EINVAL;
}

/* Errors that mean "no io_uring here", not "out of something". */
static int
is_refusal(int res)
{
    return res != -EMFILE && res != -ENFILE;
}

int
rl_ring_open(struct rl_ring **out)
{
    int want = rl_ring_backend_wanted();
    if (want < 0)
        return want;
    if (want == RL_RING_EPOLL ||
        (want == RL_RING_AUTO && atomic_load(&uring_refused)))
        return rl_epoll_open(out);
    int res = rl_uring_open(out);
    if (res == 0 || want == RL_RING_URING || !is_refusal(res))
        return res;
    int none = 0;
    if (atomic_compare_exchange_strong(&uring_refused, &none, res))
        atomic_store(&notice, res);
    return rl_epoll_open(out);
}

int
rl_ring_fallback_notice(void)
{
    int res = atomic_load(&notice);
    if (res >= 0 || !atomic_compare_exchange_strong(&notice, &res, 1))
        return 0;
    return res;
}

const char *
rl_ring_backend_name(const struct rl_ring *r)
{
    return r->backend == RL_RING_URING ? "io_uring" : "epoll";
}

/* Routes one call: io_uring is the predicted branch. */
#define ROUTE(r, call)                                                        \
    (RL_LIKELY((r)->backend == RL_RING_URING) ? rl_uring_##call               \
                                                : rl_epoll_##call)

int
rl_ring_enable(struct rl_ring *r)
{
    return ROUTE(r, enable(r));
}

int
rl_ring_owned_elsewhere(const struct rl_ring *r)
{
    return ROUTE(r, owned_elsewhere(r));
}

int
rl_ring_forked(const struct rl_ring *r)
{
    return ROUTE(r, forked(r));
}

void
rl_ring_close(struct rl_ring *r)
{
    if (r->backend == RL_RING_URING)
        rl_uring_close(r);
    else
        rl_epoll_close(r);
}

unsigned
rl_ring_inflight(const struct rl_ring *r)
{
    return ROUTE(r, inflight(r));
}

const char *
rl_ring_describe(const struct rl_ring *r)
{
    return ROUTE(r, describe(r));
}

int
rl_ring_read(struct rl_ring *r, struct rl_op *op, int fd, void *buf,
             unsigned len)
{
    return ROUTE(r, read(r, op, fd, buf, len));
}

int
rl_ring_write(struct rl_ring *r, struct rl_op *op, int fd, const void *buf,
              unsigned len)
{
    return ROUTE(r, write(r, op, fd, buf, len));
}

int
rl_ring_cancel(struct rl_ring *r, struct rl_op *op)
{
    return ROUTE(r, cancel(r, op));
}

int
rl_ring_pread(struct rl_ring *r, struct rl_op *op, int fd, void *buf,
              unsigned len, uint64_t offset)
{
    return ROUTE(r, pread(r, op, fd, buf, len, offset));
}

int
rl_ring_pwrite(struct rl_ring *r, struct rl_op *op, int fd, const void *buf,
               unsigned len, uint64_t offset)
{
    return ROUTE(r, pwrite(r, op, fd, buf, len, offset));
}

int
rl_ring_openat(struct rl_ring *r, struct rl_op *op, int dirfd,
               const char *path, int flags, unsigned mode)
{
    return ROUTE(r, openat(r, op, dirfd, path, flags, mode));
}

int
rl_ring_close_fd(struct rl_ring *r, struct rl_op *op, int fd)
{
    return ROUTE(r, close_fd(r, op, fd));
}

int
rl_ring_statx(struct rl_ring *r, struct rl_op *op, int dirfd,
              const char *path, int flags, unsigned mask, struct statx *out)
{
    return ROUTE(r, statx(r, op, dirfd, path, flags, mask, out));
}

int
rl_ring_fsync(struct rl_ring *r, struct rl_op *op, int fd, int datasync)
{
    return ROUTE(r, fsync(r, op, fd, datasync));
}

int
rl_ring_recv(struct rl_ring *r, struct rl_op *op, int fd, void *buf,
             unsigned len, int flags)
{
    return ROUTE(r, recv(r, op, fd, buf, len, flags));
}

int
rl_ring_send(struct rl_ring *r, struct rl_op *op, int fd, const void *buf,
             unsigned len, int flags)
{
    return ROUTE(r, send(r, op, fd, buf, len, flags));
}

int
rl_ring_recvmsg(struct rl_ring *r, struct rl_op *op, int fd,
                struct msghdr *msg, int flags)
{
    return ROUTE(r, recvmsg(r, op, fd, msg, flags));
}

int
rl_ring_sendmsg(struct rl_ring *r, struct rl_op *op, int fd,
                const struct msghdr *msg, int flags)
{
    return ROUTE(r, sendmsg(r, op, fd, msg, flags));
}

int
rl_ring_connect(struct rl_ring *r, struct rl_op *op, int fd,
                const struct sockaddr *addr, socklen_t len)
{
    return ROUTE(r, connect(r, op, fd, addr, len));
}

int
rl_ring_accept(struct rl_ring *r, struct rl_op *op, int fd,
               struct sockaddr *addr, socklen_t *len)
{
    return ROUTE(r, accept(r, op, fd, addr, len));
}

int
rl_ring_accept_multishot(struct rl_ring *r, struct rl_op *op, int fd)
{
    return ROUTE(r, accept_multishot(r, op, fd));
}

int
rl_ring_recv_multishot(struct rl_ring *r, struct rl_op *op, int fd)
{
    return ROUTE(r, recv_multishot(r, op, fd));
}

int
rl_ring_recvmsg_multishot(struct rl_ring *r, struct rl_op *op, int fd,
                          struct msghdr *msg)
{
    return ROUTE(r, recvmsg_multishot(r, op, fd, msg));
}

int
rl_ring_poll(struct rl_ring *r, struct rl_op *op, int fd, unsigned mask)
{
    return ROUTE(r, poll(r, op, fd, mask));
}

char *
rl_ring_buffer(struct rl_ring *r, unsigned id)
{
    return ROUTE(r, buffer(r, id));
}

void
rl_ring_buffer_recycle(struct rl_ring *r, unsigned id)
{
    if (RL_LIKELY(r->backend == RL_RING_URING))
        rl_uring_buffer_recycle(r, id);
    else
        rl_epoll_buffer_recycle(r, id);
}

unsigned
rl_ring_buffer_size(const struct rl_ring *r)
{
    return ROUTE(r, buffer_size(r));
}

int
rl_ring_submit_and_wait(struct rl_ring *r, int64_t timeout_ns)
{
    return ROUTE(r, submit_and_wait(r, timeout_ns));
}

int
rl_ring_needs_enter(struct rl_ring *r)
{
    return ROUTE(r, needs_enter(r));
}

int
rl_ring_dispatch(struct rl_ring *r)
{
    return ROUTE(r, dispatch(r));
}

int
rl_ring_datagram(const struct msghdr *msg, char *buf, unsigned res,
                 struct rl_datagram *out)
{
    size_t head = sizeof(struct rl_recvmsg_out) + msg->msg_namelen +
                  msg->msg_controllen;
    if (res < head)
        return -EINVAL;
    struct rl_recvmsg_out o;
    memcpy(&o, buf, sizeof(o));
    out->namelen = o.namelen;
    out->name = o.namelen ? (struct sockaddr *)(buf + sizeof(o)) : NULL;
    if (out->namelen > msg->msg_namelen)
        out->namelen = msg->msg_namelen;
    out->data = buf + head;
    out->len = res - (unsigned)head;
    out->truncated = (o.flags & MSG_TRUNC) != 0;
    return 0;
}
