/*
 * ring_epoll.c - the epoll backend: ring.h's completion interface emulated
 * with readiness, for where io_uring is refused (behind ring.c). The tries
 * of each kind of op and the receive buffers are in ring_epoll_try.c.
 *
 * Each queued op becomes a request (struct req) on the submission list;
 * nothing happens until rl_epoll_submit_and_wait, which takes the list in
 * order: a socket op is tried at once (non-blocking) and, if it would
 * block, waits on its fd's list; a cancel finds its target through the op
 * hash (ops queued later with the same rl_op are not yet in it); file ops
 * (regular files cannot be polled) run synchronously. Then epoll_wait, and
 * each ready fd's waiters are tried in order. Results go to a completion
 * queue that only rl_epoll_dispatch delivers, so no op completes inside the
 * call that queued it, and a cancel queued before the next wait always
 * beats data that arrives meanwhile.
 *
 * epoll is edge-triggered. Whenever an op starts waiting its fd is
 * (re-)armed with EPOLL_CTL_MOD (ADD if unknown): that re-reports present
 * readiness, and it re-registers an fd number that was closed and reused
 * behind our back (the core closes fds without telling the ring). A stale
 * registration of a file that lives on elsewhere only causes spurious
 * wake-ups, which edge triggering bounds: nothing spins. Ops on a blocking
 * fd (the loop's doorbell eventfd) do their system call only after poll()
 * confirms readiness. An op whose fd is closed under it waits until
 * cancelled, as on io_uring; an fd that cannot be polled (a regular file)
 * gets its read/write run synchronously.
 *
 * Multishot receives read until a short read or -EAGAIN; a receiver that
 * stopped on its per-wake cap is retried on the next call (edge triggering
 * would not report it again). A receive that filled its whole buffer is
 * flagged RL_OP_NONEMPTY (more is probably queued: the cheap guess). Receive
 * buffers: a free-list of ids over one mapping, same contract as the
 * io_uring buffer ring (-ENOBUFS once data waits and none is free).
 *
 * Threads: like every ring, used by one thread at a time; epoll has no
 * issuer restriction, so a loop may move to another thread. A fork child
 * only closes its copy of the epoll fd.
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
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static pid_t
current_tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/* ---- setup and ownership -------------------------------------------- */

int
rl_epoll_open(struct rl_ring **out)
{
    struct rl_epoll *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->base.backend = RL_RING_EPOLL;
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (e->epfd < 0) {
        int err = -errno;
        free(e);
        return err;
    }
    e->pid = getpid();
    *out = &e->base;
    return 0;
}

int
rl_epoll_forked(const struct rl_ring *r)
{
    return E(r)->pid != getpid();
}

int
rl_epoll_owned_elsewhere(const struct rl_ring *r)
{
    return E(r)->owner_tid != 0 && E(r)->owner_tid != current_tid();
}

int
rl_epoll_enable(struct rl_ring *r)
{
    if (rl_epoll_forked(r))
        return -EBADF;
    E(r)->owner_tid = current_tid();
    return 0;
}

unsigned
rl_epoll_inflight(const struct rl_ring *r)
{
    return E(r)->inflight;
}

const char *
rl_epoll_describe(const struct rl_ring *r)
{
    return "epoll";
}

/* ---- completion queue ------------------------------------------------ */

void
rl_epoll_push(struct rl_epoll *e, struct rl_op *op, int res, unsigned flags)
{
    if (e->cq_len == e->cq_cap) {
        size_t cap = e->cq_cap ? e->cq_cap * 2 : 256;
        struct cqe *cq = realloc(e->cq, cap * sizeof(*cq));
        if (!cq)
            rl_fatal("epoll ring: no memory for a completion");
        e->cq = cq;
        e->cq_cap = cap;
    }
    e->cq[e->cq_len++] = (struct cqe){op, res, flags};
}

int
rl_epoll_dispatch(struct rl_ring *r)
{
    struct rl_epoll *e = E(r);
    int n = 0;
    /* Callbacks only queue (submission list): nothing is added here. */
    while (e->cq_head < e->cq_len) {
        struct cqe c = e->cq[e->cq_head++];
        if (!(c.flags & RL_OP_MORE))
            e->inflight--;
        c.op->complete(c.op, c.res, c.flags);
        n++;
    }
    e->cq_head = e->cq_len = 0;
    return n;
}

/* ---- requests, the op hash, fd entries --------------------------------- */

static struct req *
req_new(struct rl_epoll *e, struct rl_op *op, enum kind kind, int fd)
{
    struct req *q = e->free_reqs;
    if (q)
        e->free_reqs = q->next;
    else if (!(q = malloc(sizeof(*q))))
        return NULL;
    memset(q, 0, sizeof(*q));
    q->op = op;
    q->kind = (unsigned char)kind;
    q->fd = fd;
    return q;
}

static void
req_free(struct rl_epoll *e, struct req *q)
{
    free(q->own_msg);
    q->next = e->free_reqs;
    e->free_reqs = q;
}

/* Appends to the submission list; counts ops (not cancels) in flight. */
static int
queue(struct rl_epoll *e, struct req *q)
{
    q->next = NULL;
    if (e->sq_tail)
        e->sq_tail->next = q;
    else
        e->sq_head = q;
    e->sq_tail = q;
    if (q->kind != K_CANCEL)
        e->inflight++;
    return 0;
}

static unsigned
hash_slot(const struct rl_epoll *e, const struct rl_op *op)
{
    uint64_t h = (uint64_t)(uintptr_t)op * 0x9E3779B97F4A7C15ull;
    return (unsigned)(h >> 32) & (e->hash_size - 1);
}

static void
hash_add(struct rl_epoll *e, struct req *q)
{
    if (e->hash_count >= e->hash_size) {
        unsigned size = e->hash_size ? e->hash_size * 2 : 256;
        struct req **old = e->hash;
        unsigned old_size = e->hash_size;
        struct req **fresh = calloc(size, sizeof(*fresh));
        if (!fresh)
            rl_fatal("epoll ring: no memory for the op table");
        e->hash = fresh;
        e->hash_size = size;
        for (unsigned i = 0; i < old_size; i++)
            for (struct req *p = old[i], *nx; p; p = nx) {
                nx = p->hnext;
                unsigned s = hash_slot(e, p->op);
                p->hnext = e->hash[s];
                e->hash[s] = p;
            }
        free(old);
    }
    unsigned s = hash_slot(e, q->op);
    q->hnext = e->hash[s];
    e->hash[s] = q;
    e->hash_count++;
}

static struct req *
hash_take(struct rl_epoll *e, const struct rl_op *op)
{
    if (!e->hash_size)
        return NULL;
    for (struct req **pp = &e->hash[hash_slot(e, op)]; *pp;
         pp = &(*pp)->hnext)
        if ((*pp)->op == op) {
            struct req *q = *pp;
            *pp = q->hnext;
            e->hash_count--;
            return q;
        }
    return NULL;
}

static struct fdent *
fdent_get(struct rl_epoll *e, int fd)
{
    if (fd < 0)
        return NULL;
    if (fd >= e->nfds) {
        int n = e->nfds ? e->nfds : 64;
        while (n <= fd)
            n *= 2;
        struct fdent **fds = realloc(e->fds, (size_t)n * sizeof(*fds));
        if (!fds)
            return NULL;
        memset(fds + e->nfds, 0, (size_t)(n - e->nfds) * sizeof(*fds));
        e->fds = fds;
        e->nfds = n;
    }
    if (!e->fds[fd])
        e->fds[fd] = calloc(1, sizeof(struct fdent));
    return e->fds[fd];
}

static void
waiter_add(struct rl_epoll *e, struct fdent *f, struct req *q)
{
    q->next = NULL;
    q->prev = f->tail;
    if (f->tail)
        f->tail->next = q;
    else
        f->head = q;
    f->tail = q;
    e->waiting++;
    hash_add(e, q);
}

/* Takes q off its fd's waiters (the hash entry is the caller's). */
static void
waiter_remove(struct rl_epoll *e, struct fdent *f, struct req *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        f->head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        f->tail = q->prev;
    e->waiting--;
}

static int
fd_blocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && !(fl & O_NONBLOCK);
}

/* ---- waiting --------------------------------------------------------- */

static void
fail_waiters(struct rl_epoll *e, struct fdent *f, int res)
{
    for (struct req *q = f->head, *nx; q; q = nx) {
        nx = q->next;
        waiter_remove(e, f, q);
        hash_take(e, q->op);
        rl_epoll_push(e, q->op, res, 0);
        req_free(e, q);
    }
}

static void
mark_retry(struct rl_epoll *e, struct fdent *f)
{
    if (!f->retry) {
        f->retry = 1;
        f->pnext = e->retry;
        e->retry = f;
    }
}

/* Tries f's waiters that revents can satisfy, oldest first. */
static void
run_fd(struct rl_epoll *e, struct fdent *f, unsigned revents)
{
    unsigned blocked = 0; /* directions that met -EAGAIN */
    if (revents & (EPOLLERR | EPOLLHUP))
        revents |= EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    for (struct req *q = f->head, *nx; q; q = nx) {
        nx = q->next;
        unsigned w = rl_epoll_wants(q) & revents & ~blocked;
        if (!w && !(q->kind == K_POLL && (revents & (EPOLLERR | EPOLLHUP))))
            continue;
        int st = rl_epoll_attempt(e, q, revents);
        if (st == ST_DONE) {
            waiter_remove(e, f, q);
            hash_take(e, q->op);
            req_free(e, q);
        } else if (st == ST_RETRY) {
            mark_retry(e, f);
        } else if (q->kind != K_POLL) {
            blocked |= rl_epoll_wants(q) & ~EPOLLRDHUP;
        }
    }
}

/* (Re-)arms f for all its waiters: MOD re-reports present readiness. */
static void
arm(struct rl_epoll *e, struct fdent *f, int fd)
{
    unsigned events = EPOLLET;
    for (struct req *q = f->head; q; q = q->next)
        events |= rl_epoll_wants(q);
    struct epoll_event ev = {.events = events, .data.fd = fd};
    int op = f->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int res = epoll_ctl(e->epfd, op, fd, &ev);
    if (res < 0 && (errno == ENOENT || errno == EEXIST)) {
        op = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        res = epoll_ctl(e->epfd, op, fd, &ev);
    }
    if (res == 0) {
        f->registered = 1;
        return;
    }
    int err = errno;
    f->registered = 0;
    if (err == EPERM) {
        /* Not pollable (a regular file): always ready, do it now. */
        run_fd(e, f, EPOLLIN | EPOLLOUT);
        fail_waiters(e, f, -EAGAIN);
    } else {
        fail_waiters(e, f, -err);
    }
}

/* Takes one request off the submission list. */
static void
submit_one(struct rl_epoll *e, struct req *q)
{
    if (q->kind == K_CANCEL) {
        struct req *t = hash_take(e, q->op);
        if (t) {
            waiter_remove(e, e->fds[t->fd], t);
            rl_epoll_push(e, t->op, -ECANCELED, 0);
            req_free(e, t);
        }
        req_free(e, q);
        return;
    }
    if (q->kind >= K_PREAD) {
        rl_epoll_run_file_op(e, q);
        req_free(e, q);
        return;
    }
    struct fdent *f = fdent_get(e, q->fd);
    if (!f) {
        rl_epoll_push(e, q->op, q->fd < 0 ? -EBADF : -ENOMEM, 0);
        req_free(e, q);
        return;
    }
    /* Try now, unless an older op waits in the same direction (order). */
    int queued_behind = 0;
    for (struct req *p = f->head; p; p = p->next)
        if (rl_epoll_wants(p) & rl_epoll_wants(q) & (EPOLLIN | EPOLLOUT))
            queued_behind = 1;
    if (q->kind != K_POLL && !queued_behind) {
        int st = rl_epoll_attempt(e, q, EPOLLIN | EPOLLOUT);
        if (st == ST_DONE) {
            req_free(e, q);
            return;
        }
        if (st == ST_RETRY)
            mark_retry(e, f);
    }
    waiter_add(e, f, q);
    arm(e, f, q->fd);
}

int
rl_epoll_submit_and_wait(struct rl_ring *r, int64_t timeout_ns)
{
    struct rl_epoll *e = E(r);
    while (e->sq_head) {
        struct req *q = e->sq_head;
        e->sq_head = q->next;
        if (!e->sq_head)
            e->sq_tail = NULL;
        submit_one(e, q);
    }
    struct fdent *retry = e->retry;
    e->retry = NULL;
    while (retry) {
        struct fdent *f = retry;
        retry = f->pnext;
        f->retry = 0;
        run_fd(e, f, EPOLLIN | EPOLLRDHUP); /* read on to -EAGAIN */
    }
    if (e->cq_len > e->cq_head || e->retry)
        timeout_ns = 0;
    if (timeout_ns == 0 && e->waiting == 0)
        return 0;
    int ms = timeout_ns < 0 ? -1
                            : (int)((timeout_ns + 999999) / 1000000);
    struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait(e->epfd, evs, MAX_EVENTS, ms);
    if (n < 0)
        return -errno;
    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        if (fd < e->nfds && e->fds[fd])
            run_fd(e, e->fds[fd], evs[i].events);
    }
    return n == 0 && ms > 0 && e->cq_len == e->cq_head ? -ETIME : 0;
}

int
rl_epoll_needs_enter(struct rl_ring *r)
{
    struct rl_epoll *e = E(r);
    return e->sq_head || e->retry || e->waiting;
}

/* ---- queueing -------------------------------------------------------- */

#define NEW(e, q, op, kind, fd)                                               \
    struct req *q = req_new(e, op, kind, fd);                                 \
    if (RL_UNLIKELY(!q))                                                      \
        return -ENOMEM;

int
rl_epoll_read(struct rl_ring *r, struct rl_op *op, int fd, void *buf,
              unsigned len)
{
    NEW(E(r), q, op, K_READ, fd);
    q->buf = buf;
    q->len = len;
    q->blocking = (unsigned char)fd_blocking(fd);
    return queue(E(r), q);
}

int
rl_epoll_write(struct rl_ring *r, struct rl_op *op, int fd, const void *buf,
               unsigned len)
{
    NEW(E(r), q, op, K_WRITE, fd);
    q->buf = (void *)buf;
    q->len = len;
    q->blocking = (unsigned char)fd_blocking(fd);
    return queue(E(r), q);
}

int
rl_epoll_cancel(struct rl_ring *r, struct rl_op *op)
{
    NEW(E(r), q, op, K_CANCEL, -1);
    return queue(E(r), q);
}

int
rl_epoll_pread(struct rl_ring *r, struct rl_op *op, int fd, void *buf,
               unsigned len, uint64_t offset)
{
    NEW(E(r), q, op, K_PREAD, fd);
    q->buf = buf;
    q->len = len;
    q->offset = offset;
    return queue(E(r), q);
}

int
rl_epoll_pwrite(struct rl_ring *r, struct rl_op *op, int fd, const void *buf,
                unsigned len, uint64_t offset)
{
    NEW(E(r), q, op, K_PWRITE, fd);
    q->buf = (void *)buf;
    q->len = len;
    q->offset = offset;
    return queue(E(r), q);
}

int
rl_epoll_openat(struct rl_ring *r, struct rl_op *op, int dirfd,
                const char *path, int flags, unsigned mode)
{
    NEW(E(r), q, op, K_OPENAT, dirfd);
    q->path = path;
    q->flags = flags;
    q->mode = mode;
    return queue(E(r), q);
}

int
rl_epoll_close_fd(struct rl_ring *r, struct rl_op *op, int fd)
{
    NEW(E(r), q, op, K_CLOSE, fd);
    return queue(E(r), q);
}

int
rl_epoll_statx(struct rl_ring *r, struct rl_op *op, int dirfd,
               const char *path, int flags, unsigned mask, struct statx *out)
{
    NEW(E(r), q, op, K_STATX, dirfd);
    q->path = path;
    q->flags = flags;
    q->mode = mask;
    q->stx = out;
    return queue(E(r), q);
}

int
rl_epoll_fsync(struct rl_ring *r, struct rl_op *op, int fd, int datasync)
{
    NEW(E(r), q, op, K_FSYNC, fd);
    q->flags = datasync;
    return queue(E(r), q);
}

int
rl_epoll_recv(struct rl_ring *r, struct rl_op *op, int fd, void *buf,
              unsigned len, int flags)
{
    NEW(E(r), q, op, K_RECV, fd);
    q->buf = buf;
    q->len = len;
    q->flags = flags;
    return queue(E(r), q);
}

int
rl_epoll_send(struct rl_ring *r, struct rl_op *op, int fd, const void *buf,
              unsigned len, int flags)
{
    NEW(E(r), q, op, K_SEND, fd);
    q->buf = (void *)buf;
    q->len = len;
    q->flags = flags;
    return queue(E(r), q);
}

int
rl_epoll_recvmsg(struct rl_ring *r, struct rl_op *op, int fd,
                 struct msghdr *msg, int flags)
{
    NEW(E(r), q, op, K_RECVMSG, fd);
    q->msg = msg;
    q->flags = flags;
    return queue(E(r), q);
}

int
rl_epoll_sendmsg(struct rl_ring *r, struct rl_op *op, int fd,
                 const struct msghdr *msg, int flags)
{
    NEW(E(r), q, op, K_SENDMSG, fd);
    q->msg = (struct msghdr *)msg;
    q->flags = flags;
    return queue(E(r), q);
}

int
rl_epoll_connect(struct rl_ring *r, struct rl_op *op, int fd,
                 const struct sockaddr *addr, socklen_t len)
{
    NEW(E(r), q, op, K_CONNECT, fd);
    q->addr = addr;
    q->addrlen = len;
    return queue(E(r), q);
}

int
rl_epoll_accept(struct rl_ring *r, struct rl_op *op, int fd,
                struct sockaddr *addr, socklen_t *len)
{
    NEW(E(r), q, op, K_ACCEPT, fd);
    q->out_addr = addr;
    q->addrlenp = len;
    q->blocking = (unsigned char)fd_blocking(fd);
    return queue(E(r), q);
}

int
rl_epoll_accept_multishot(struct rl_ring *r, struct rl_op *op, int fd)
{
    NEW(E(r), q, op, K_ACCEPT_MS, fd);
    q->blocking = (unsigned char)fd_blocking(fd);
    return queue(E(r), q);
}

int
rl_epoll_recv_multishot(struct rl_ring *r, struct rl_op *op, int fd)
{
    int res = rl_epoll_ensure_buffers(E(r));
    if (res < 0)
        return res;
    NEW(E(r), q, op, K_RECV_MS, fd);
    return queue(E(r), q);
}

int
rl_epoll_recvmsg_multishot(struct rl_ring *r, struct rl_op *op, int fd,
                           struct msghdr *msg)
{
    int res = rl_epoll_ensure_buffers(E(r));
    if (res < 0)
        return res;
    NEW(E(r), q, op, K_RECVMSG_MS, fd);
    q->msg = msg;
    return queue(E(r), q);
}

int
rl_epoll_poll(struct rl_ring *r, struct rl_op *op, int fd, unsigned mask)
{
    NEW(E(r), q, op, K_POLL, fd);
    q->len = mask;
    return queue(E(r), q);
}

/* ---- closing --------------------------------------------------------- */

/* Cancels everything queued or waiting: -ECANCELED completions. */
static void
cancel_all(struct rl_epoll *e)
{
    for (struct req *q = e->sq_head, *nx; q; q = nx) {
        nx = q->next;
        if (q->kind != K_CANCEL)
            rl_epoll_push(e, q->op, -ECANCELED, 0);
        req_free(e, q);
    }
    e->sq_head = e->sq_tail = NULL;
    for (int fd = 0; fd < e->nfds; fd++)
        if (e->fds[fd])
            fail_waiters(e, e->fds[fd], -ECANCELED);
    e->retry = NULL;
}

static void
free_all(struct rl_epoll *e)
{
    for (struct req *q = e->sq_head, *nx; q; q = nx) {
        nx = q->next;
        free(q->own_msg);
        free(q);
    }
    for (int fd = 0; fd < e->nfds; fd++) {
        if (!e->fds[fd])
            continue;
        for (struct req *q = e->fds[fd]->head, *nx; q; q = nx) {
            nx = q->next;
            free(q->own_msg);
            free(q);
        }
        free(e->fds[fd]);
    }
    for (struct req *q = e->free_reqs, *nx; q; q = nx) {
        nx = q->next;
        free(q);
    }
    free(e->fds);
    free(e->hash);
    free(e->cq);
    free(e->free_ids);
    if (e->bufs)
        munmap(e->bufs, (size_t)e->buf_count * e->buf_size);
    close(e->epfd);
    free(e);
}

void
rl_epoll_close(struct rl_ring *r)
{
    struct rl_epoll *e = E(r);
    if (!rl_epoll_forked(r)) {
        /* Deliver every final completion before the memory goes away;
         * a completion may queue more, which is cancelled in turn. */
        while (e->inflight) {
            cancel_all(e);
            if (rl_epoll_dispatch(r) == 0)
                rl_fatal("epoll ring: %u ops lost while closing",
                         e->inflight);
        }
    }
    free_all(e);
}
