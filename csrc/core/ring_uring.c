/*
 * ring_uring.c - the io_uring backend (the only file that includes
 * liburing.h), behind ring.c (ring_backend.h).
 *
 * Setup follows research/io_uring_and_scheduler.md §A.3: SINGLE_ISSUER |
 * DEFER_TASKRUN | TASKRUN_FLAG | SUBMIT_ALL with a large clamped CQ, created
 * R_DISABLED and enabled by the thread that first runs the loop. Kernels
 * that refuse a flag (EINVAL) get the next set down: COOP_TASKRUN, then no
 * task-run flags at all. No SQPOLL: on a 2-core box it costs CPU. The
 * environment variable RINGLOOP_RING_SETUP=coop_taskrun|plain starts lower
 * on that ladder, so the fallbacks can be tested on a new kernel.
 *
 * user_data is the rl_op pointer; 0 marks our own cancel requests, whose
 * completions are ignored. `inflight` counts ops whose final completion has
 * not been delivered; rl_uring_close drains it to zero before freeing.
 *
 * liburing 2.3 traps (probed): io_uring_enable_rings() is declared but not
 * exported, so ENABLE_RINGS goes through io_uring_register(); NO_SQARRAY
 * corrupts submissions with 2.3 and is never passed.
 */
#define _GNU_SOURCE
#include "core/ring_backend.h"
#include "core/common.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define U(r) ((struct rl_uring *)(r))

enum {
    SQ_ENTRIES = 1024,
    CQ_ENTRIES = 8 * SQ_ENTRIES, /* never overflow: CQ >= 8 x SQ */
    RECV_GROUP = 0,              /* buffer group id of the receive buffers */
};

#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_TASKRUN_FLAG
#define IORING_SETUP_TASKRUN_FLAG (1U << 9)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

struct rl_uring {
    struct rl_ring base; /* first: ring.c routes on its tag */
    struct io_uring uring;
    unsigned flags;   /* setup flags in effect */
    unsigned inflight;
    pid_t pid;        /* creating process */
    pid_t owner_tid;  /* enabling thread, 0 until enabled */
    /* Receive buffers (research/echo_ceiling.md): few and large, so they
     * stay cache-resident and one receive can take a whole large read. */
    struct io_uring_buf_ring *buf_ring;
    char *bufs;
    unsigned buf_count, buf_size;
    int bufs_failed; /* -errno once setting them up failed */
};

static const struct {
    unsigned flags;
    const char *name;
} setups[] = {
    {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
         IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_R_DISABLED,
     "single_issuer|defer_taskrun"},
    {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, "coop_taskrun"},
    {0, "plain"},
};

static pid_t
current_tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static size_t
first_setup(void)
{
    const char *want = getenv("RINGLOOP_RING_SETUP");
    for (size_t i = 0; want && i < sizeof(setups) / sizeof(setups[0]); i++)
        if (strcmp(want, setups[i].name) == 0)
            return i;
    return 0;
}

int
rl_uring_open(struct rl_ring **out)
{
    struct rl_uring *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->base.backend = RL_RING_URING;
    struct rl_ring *r = &u->base;
    int res = -EINVAL;
    for (size_t i = first_setup(); i < sizeof(setups) / sizeof(setups[0]);
         i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof(p));
        p.flags = setups[i].flags | IORING_SETUP_SUBMIT_ALL |
                  IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
        p.cq_entries = CQ_ENTRIES;
        res = io_uring_queue_init_params(SQ_ENTRIES, &U(r)->uring, &p);
        if (res == -EINVAL) {
            /* Older kernels lack SUBMIT_ALL (5.18) too: retry without. */
            p.flags &= ~IORING_SETUP_SUBMIT_ALL;
            memset(&U(r)->uring, 0, sizeof(U(r)->uring));
            res = io_uring_queue_init_params(SQ_ENTRIES, &U(r)->uring, &p);
        }
        if (res == 0) {
            U(r)->flags = p.flags;
            break;
        }
        if (res != -EINVAL)
            break; /* ENOSYS, EPERM, ENOMEM: io_uring itself is refused */
    }
    if (res < 0) {
        free(r);
        return res;
    }
    U(r)->pid = getpid();
    /* A fork child that touches the ring faults instead of corrupting it. */
    io_uring_ring_dontfork(&U(r)->uring);
    *out = r;
    return 0;
}

int
rl_uring_forked(const struct rl_ring *r)
{
    return U(r)->pid != getpid();
}

int
rl_uring_owned_elsewhere(const struct rl_ring *r)
{
    return U(r)->owner_tid != 0 && U(r)->owner_tid != current_tid();
}

int
rl_uring_enable(struct rl_ring *r)
{
    if (rl_uring_forked(r))
        return -EBADF;
    pid_t tid = current_tid();
    if (U(r)->owner_tid == tid)
        return 0;
    if (U(r)->owner_tid != 0 && (U(r)->flags & IORING_SETUP_SINGLE_ISSUER))
        return -EEXIST;
    if (U(r)->flags & IORING_SETUP_R_DISABLED) {
        int res = io_uring_register(U(r)->uring.ring_fd,
                                    IORING_REGISTER_ENABLE_RINGS, NULL, 0);
        if (res < 0)
            return res;
        /* The registered ring fd lives in this thread's table, so it is
         * only used on single-issuer rings, which never change thread. */
        io_uring_register_ring_fd(&U(r)->uring);
        unsigned workers[2] = {2, 4}; /* bounded, unbounded io-wq */
        io_uring_register_iowq_max_workers(&U(r)->uring, workers);
    }
    U(r)->owner_tid = tid;
    return 0;
}

unsigned
rl_uring_inflight(const struct rl_ring *r)
{
    return U(r)->inflight;
}

const char *
rl_uring_describe(const struct rl_ring *r)
{
    for (size_t i = 0; i < sizeof(setups) / sizeof(setups[0]); i++)
        if ((U(r)->flags & setups[i].flags) == setups[i].flags)
            return setups[i].name;
    return "plain";
}

static struct io_uring_sqe *
get_sqe(struct rl_ring *r)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&U(r)->uring);
    if (RL_UNLIKELY(!sqe)) {
        /* SQ full: hand what we have to the kernel and try again. */
        io_uring_submit(&U(r)->uring);
        sqe = io_uring_get_sqe(&U(r)->uring);
    }
    return sqe;
}


int
rl_uring_cancel(struct rl_ring *r, struct rl_op *op)
{
    struct io_uring_sqe *sqe = get_sqe(r);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_cancel(sqe, op, 0);
    io_uring_sqe_set_data(sqe, NULL);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    return 0;
}

/* Every queueing function: take an SQE, prepare it, count the op. */
#define QUEUE(r, op, prep)                                                    \
    do {                                                                      \
        struct io_uring_sqe *sqe = get_sqe(r);                                \
        if (RL_UNLIKELY(!sqe))                                                \
            return -EBUSY;                                                    \
        prep;                                                                 \
        io_uring_sqe_set_data(sqe, op);                                       \
        U(r)->inflight++;                                                      \
        return 0;                                                             \
    } while (0)

int
rl_uring_read(struct rl_ring *r, struct rl_op *op, int fd, void *buf,
             unsigned len)
{
    QUEUE(r, op, io_uring_prep_read(sqe, fd, buf, len, (uint64_t)-1));
}

int
rl_uring_write(struct rl_ring *r, struct rl_op *op, int fd, const void *buf,
              unsigned len)
{
    QUEUE(r, op, io_uring_prep_write(sqe, fd, buf, len, (uint64_t)-1));
}

int
rl_uring_pread(struct rl_ring *r, struct rl_op *op, int fd, void *buf,
              unsigned len, uint64_t offset)
{
    QUEUE(r, op, io_uring_prep_read(sqe, fd, buf, len, offset));
}

int
rl_uring_pwrite(struct rl_ring *r, struct rl_op *op, int fd, const void *buf,
               unsigned len, uint64_t offset)
{
    QUEUE(r, op, io_uring_prep_write(sqe, fd, buf, len, offset));
}

int
rl_uring_openat(struct rl_ring *r, struct rl_op *op, int dirfd,
               const char *path, int flags, unsigned mode)
{
    QUEUE(r, op,
          io_uring_prep_openat(sqe, dirfd, path, flags | O_CLOEXEC, mode));
}

int
rl_uring_close_fd(struct rl_ring *r, struct rl_op *op, int fd)
{
    QUEUE(r, op, io_uring_prep_close(sqe, fd));
}

int
rl_uring_statx(struct rl_ring *r, struct rl_op *op, int dirfd,
              const char *path, int flags, unsigned mask, struct statx *out)
{
    QUEUE(r, op, io_uring_prep_statx(sqe, dirfd, path, flags, mask, out));
}

int
rl_uring_fsync(struct rl_ring *r, struct rl_op *op, int fd, int datasync)
{
    QUEUE(r, op,
          io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0));
}

int
rl_uring_recv(struct rl_ring *r, struct rl_op *op, int fd, void *buf,
             unsigned len, int flags)
{
    QUEUE(r, op, io_uring_prep_recv(sqe, fd, buf, len, flags));
}

int
rl_uring_send(struct rl_ring *r, struct rl_op *op, int fd, const void *buf,
             unsigned len, int flags)
{
    QUEUE(r, op, io_uring_prep_send(sqe, fd, buf, len, flags));
}

int
rl_uring_recvmsg(struct rl_ring *r, struct rl_op *op, int fd,
                struct msghdr *msg, int flags)
{
    QUEUE(r, op, io_uring_prep_recvmsg(sqe, fd, msg, (unsigned)flags));
}

int
rl_uring_sendmsg(struct rl_ring *r, struct rl_op *op, int fd,
                const struct msghdr *msg, int flags)
{
    QUEUE(r, op, io_uring_prep_sendmsg(sqe, fd, msg, (unsigned)flags));
}

int
rl_uring_connect(struct rl_ring *r, struct rl_op *op, int fd,
                const struct sockaddr *addr, socklen_t len)
{
    QUEUE(r, op, io_uring_prep_connect(sqe, fd, addr, len));
}

int
rl_uring_accept(struct rl_ring *r, struct rl_op *op, int fd,
               struct sockaddr *addr, socklen_t *len)
{
    QUEUE(r, op, io_uring_prep_accept(sqe, fd, addr, len, SOCK_CLOEXEC));
}

int
rl_uring_accept_multishot(struct rl_ring *r, struct rl_op *op, int fd)
{
    QUEUE(r, op,
          io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC));
}

int
rl_uring_poll(struct rl_ring *r, struct rl_op *op, int fd, unsigned mask)
{
    QUEUE(r, op, io_uring_prep_poll_add(sqe, fd, mask));
}

static int
setup_buffers(struct rl_ring *r)
{
    unsigned count = 16, size = 128 * 1024;
    const char *want = getenv("RINGLOOP_RECV_BUFFERS"); /* "COUNTxSIZE" */
    if (want) {
        unsigned c, s;
        /* count: a power of two the kernel accepts; size: at least 1 KiB */
        if (sscanf(want, "%ux%u", &c, &s) == 2 && c && c <= 32768 &&
            (c & (c - 1)) == 0 && s >= 1024) {
            count = c;
            size = s;
        }
    }
    size_t ring_bytes = count * sizeof(struct io_uring_buf);
    void *ring_mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE,
                          MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (ring_mem == MAP_FAILED)
        return -errno;
    void *bufs = mmap(NULL, (size_t)count * size, PROT_READ | PROT_WRITE,
                      MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (bufs == MAP_FAILED) {
        int err = -errno;
        munmap(ring_mem, ring_bytes);
        return err;
    }
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (unsigned long)ring_mem;
    reg.ring_entries = count;
    reg.bgid = RECV_GROUP;
    int res = io_uring_register_buf_ring(&U(r)->uring, &reg, 0);
    if (res < 0) {
        munmap(ring_mem, ring_bytes);
        munmap(bufs, (size_t)count * size);
        return res;
    }
    U(r)->buf_ring = ring_mem;
    U(r)->bufs = bufs;
    U(r)->buf_count = count;
    U(r)->buf_size = size;
    io_uring_buf_ring_init(U(r)->buf_ring);
    int mask = io_uring_buf_ring_mask(count);
    for (unsigned i = 0; i < count; i++)
        io_uring_buf_ring_add(U(r)->buf_ring, U(r)->bufs + (size_t)i * size, size,
                              (unsigned short)i, mask, (int)i);
    io_uring_buf_ring_advance(U(r)->buf_ring, (int)count);
    return 0;
}

static void
prep_recv_buffered(struct io_uring_sqe *sqe, int fd)
{
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RECV_GROUP;
}

static int
ensure_buffers(struct rl_ring *r)
{
    if (RL_LIKELY(U(r)->buf_ring))
        return 0;
    if (U(r)->bufs_failed)
        return U(r)->bufs_failed;
    int res = setup_buffers(r);
    return res < 0 ? (U(r)->bufs_failed = res) : 0;
}

int
rl_uring_recv_multishot(struct rl_ring *r, struct rl_op *op, int fd)
{
    int res = ensure_buffers(r);
    if (res < 0)
        return res;
    QUEUE(r, op, prep_recv_buffered(sqe, fd));
}

static void
prep_recvmsg_buffered(struct io_uring_sqe *sqe, int fd, struct msghdr *msg)
{
    io_uring_prep_recvmsg_multishot(sqe, fd, msg, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RECV_GROUP;
}

int
rl_uring_recvmsg_multishot(struct rl_ring *r, struct rl_op *op, int fd,
                          struct msghdr *msg)
{
    int res = ensure_buffers(r);
    if (res < 0)
        return res;
    QUEUE(r, op, prep_recvmsg_buffered(sqe, fd, msg));
}

char *
rl_uring_buffer(struct rl_ring *r, unsigned id)
{
    return U(r)->bufs + (size_t)id * U(r)->buf_size;
}

void
rl_uring_buffer_recycle(struct rl_ring *r, unsigned id)
{
    io_uring_buf_ring_add(U(r)->buf_ring, rl_uring_buffer(r, id), U(r)->buf_size,
                          (unsigned short)id,
                          io_uring_buf_ring_mask(U(r)->buf_count), 0);
    io_uring_buf_ring_advance(U(r)->buf_ring, 1);
}

unsigned
rl_uring_buffer_size(const struct rl_ring *r)
{
    return U(r)->buf_ring ? U(r)->buf_size : 0;
}

int
rl_uring_needs_enter(struct rl_ring *r)
{
    if (io_uring_sq_ready(&U(r)->uring))
        return 1;
    unsigned kflags = IO_URING_READ_ONCE(*U(r)->uring.sq.kflags);
    if (kflags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW))
        return 1;
    /* Without a task-run flag the kernel gives no hint: always enter. */
    return !(U(r)->flags & IORING_SETUP_TASKRUN_FLAG);
}

int
rl_uring_submit_and_wait(struct rl_ring *r, int64_t timeout_ns)
{
    struct io_uring_cqe *cqe;
    int res;
    if (timeout_ns == 0) {
        res = io_uring_submit_and_get_events(&U(r)->uring);
    } else if (timeout_ns < 0) {
        res = io_uring_submit_and_wait(&U(r)->uring, 1);
    } else {
        struct __kernel_timespec ts = {
            .tv_sec = timeout_ns / 1000000000,
            .tv_nsec = timeout_ns % 1000000000,
        };
        res = io_uring_submit_and_wait_timeout(&U(r)->uring, &cqe, 1, &ts, NULL);
    }
    return res < 0 ? res : 0;
}

int
rl_uring_dispatch(struct rl_ring *r)
{
    int n = 0;
    struct io_uring_cqe *cqe;
    /* One CQE at a time: a completion may queue or cancel other ops. */
    while (io_uring_peek_cqe(&U(r)->uring, &cqe) == 0) {
        struct rl_op *op = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        unsigned flags = 0;
        if (cqe->flags & IORING_CQE_F_MORE)
            flags |= RL_OP_MORE;
        if (cqe->flags & IORING_CQE_F_BUFFER)
            flags |= RL_OP_BUFFER | (cqe->flags & 0xffff0000u);
        if (cqe->flags & IORING_CQE_F_SOCK_NONEMPTY)
            flags |= RL_OP_NONEMPTY;
        io_uring_cqe_seen(&U(r)->uring, cqe);
        if (op == NULL)
            continue; /* a failed cancel request: its target completes */
        if (!(flags & RL_OP_MORE))
            U(r)->inflight--;
        op->complete(op, res, flags);
        n++;
    }
    return n;
}

static void
free_buffers(struct rl_ring *r)
{
    if (U(r)->buf_ring)
        munmap(U(r)->buf_ring, U(r)->buf_count * sizeof(struct io_uring_buf));
    if (U(r)->bufs)
        munmap(U(r)->bufs, (size_t)U(r)->buf_count * U(r)->buf_size);
    U(r)->buf_ring = NULL;
    U(r)->bufs = NULL;
}

void
rl_uring_close(struct rl_ring *r)
{
    if (rl_uring_forked(r)) {
        /* The child's copy of the mappings was never inherited
         * (dontfork): only the descriptor is ours to close. */
        close(U(r)->uring.ring_fd);
        free_buffers(r);
        free(r);
        return;
    }
    if (U(r)->inflight == 0 || rl_uring_owned_elsewhere(r)) {
        /* Nothing in flight, or a single-issuer ring closed from a thread
         * that may not enter it. In the second case the kernel cancels
         * the pending ops as the ring dies: its task-work path sees the
         * dying context and fails them without copying into user memory
         * (io_should_terminate_tw), so their buffers are not written. */
        io_uring_queue_exit(&U(r)->uring);
        free_buffers(r);
        free(r);
        return;
    }
    struct io_uring_sqe *sqe = get_sqe(r);
    if (sqe) {
        io_uring_prep_cancel(sqe, NULL, IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data(sqe, NULL);
    }
    /* Deliver every final completion before the memory goes away. */
    while (U(r)->inflight) {
        int res = rl_uring_submit_and_wait(r, 1000000000);
        rl_uring_dispatch(r);
        if (res < 0 && res != -ETIME && res != -EINTR)
            rl_fatal("io_uring wait failed while closing: %s",
                     strerror(-res));
    }
    io_uring_queue_exit(&U(r)->uring);
    free_buffers(r);
    free(r);
}
