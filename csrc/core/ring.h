/*
 * ring.h - the loop's I/O backend, completion-style: queue an operation
 * with an rl_op, get rl_op.complete(op, res, flags) when the kernel is done.
 *
 * Two implementations: io_uring (ring_uring.c, the only file that includes
 * liburing.h) and epoll (ring_epoll.c) for where io_uring is refused;
 * ring.c picks one per ring at rl_ring_open (RINGLOOP_BACKEND).
 *
 * Op lifetime invariant: an rl_op and everything its operation points at
 * (buffers, addresses) stay alive from the call that queues it until its
 * final completion (a completion without RL_OP_MORE). Cancelling only asks
 * the kernel to finish early; the op's own completion is still delivered,
 * and is the only signal that the kernel is done with its memory.
 *
 * Threads: a ring is created on any thread, then used only by the thread
 * that enabled it (rl_ring_enable); a ring is never touched from a forked
 * child (rl_ring_close only closes the child's copy of the fd).
 */
#ifndef RL_RING_H
#define RL_RING_H

#include <stdint.h>
#include <sys/socket.h>

struct rl_ring;
struct rl_op;

/* Completion flags. RL_OP_MORE: more completions will follow for this op
 * (multishot). RL_OP_BUFFER: the data is in the ring's receive buffer
 * RL_OP_BUFFER_ID(flags), which the receiver returns with
 * rl_ring_buffer_recycle. RL_OP_NONEMPTY: the socket has more queued. */
#define RL_OP_MORE 1u
#define RL_OP_BUFFER 2u
#define RL_OP_NONEMPTY 4u
#define RL_OP_BUFFER_ID(flags) ((unsigned)(flags) >> 16)

typedef void (*rl_op_complete_fn)(struct rl_op *op, int res, unsigned flags);

struct rl_op {
    rl_op_complete_fn complete;
};

/* Creates a ring for a loop; any thread. 0 or -errno (-ENOSYS/-EPERM when
 * io_uring is unavailable). */
int rl_ring_open(struct rl_ring **out);

/* Backend selection: RINGLOOP_BACKEND unset or empty (io_uring, else epoll
 * when io_uring is refused), "io_uring" (refusal is an error) or "epoll". */
enum { RL_RING_AUTO, RL_RING_URING, RL_RING_EPOLL };
/* The backend RINGLOOP_BACKEND asks for, or -EINVAL for an unknown name. */
int rl_ring_backend_wanted(void);
/* "io_uring" or "epoll". */
const char *rl_ring_backend_name(const struct rl_ring *r);
/* Once per process, after rl_ring_open fell back to epoll on its own: the
 * -errno io_uring was refused with. 0 otherwise and on later calls. Any
 * thread. */
int rl_ring_fallback_notice(void);

/* Makes the calling thread the ring's owner; idempotent on the owner.
 * -EEXIST if another thread owns it, -EBADF in a forked child. */
int rl_ring_enable(struct rl_ring *r);

/* 1 if the ring was enabled by a thread other than the caller. */
int rl_ring_owned_elsewhere(const struct rl_ring *r);

/* 1 if the ring was created by another process (we are a fork child). */
int rl_ring_forked(const struct rl_ring *r);

/* Cancels every op, delivers their final completions, frees the ring.
 * In a fork child it only closes the inherited descriptor. */
void rl_ring_close(struct rl_ring *r);

/* Ops queued and not yet finally completed. */
unsigned rl_ring_inflight(const struct rl_ring *r);

/* A short description of the setup flags in effect, e.g. for tests
 * ("epoll" on the epoll backend). */
const char *rl_ring_describe(const struct rl_ring *r);

/* Queue operations: 0 or -errno. Nothing reaches the kernel before the next
 * rl_ring_submit_and_wait / rl_ring_poll. */
int rl_ring_read(struct rl_ring *r, struct rl_op *op, int fd, void *buf,
                 unsigned len);
int rl_ring_write(struct rl_ring *r, struct rl_op *op, int fd,
                  const void *buf, unsigned len);
int rl_ring_cancel(struct rl_ring *r, struct rl_op *op);

/* Files. Positioned reads/writes (offset >= 0); open returns the new fd
 * (flags as open(2), O_CLOEXEC added); path, statx buffer live until the
 * final completion. fsync with datasync != 0 is fdatasync. */
struct statx;
int rl_ring_pread(struct rl_ring *r, struct rl_op *op, int fd, void *buf,
                  unsigned len, uint64_t offset);
int rl_ring_pwrite(struct rl_ring *r, struct rl_op *op, int fd,
                   const void *buf, unsigned len, uint64_t offset);
int rl_ring_openat(struct rl_ring *r, struct rl_op *op, int dirfd,
                   const char *path, int flags, unsigned mode);
int rl_ring_close_fd(struct rl_ring *r, struct rl_op *op, int fd);
int rl_ring_statx(struct rl_ring *r, struct rl_op *op, int dirfd,
                  const char *path, int flags, unsigned mask,
                  struct statx *out);
int rl_ring_fsync(struct rl_ring *r, struct rl_op *op, int fd, int datasync);

/* Sockets. Stream sends are MSG_WAITALL: a short count means an error
 * stopped the send part-way. Keep at most one send in flight per stream
 * socket: two could interleave. */
int rl_ring_recv(struct rl_ring *r, struct rl_op *op, int fd, void *buf,
                 unsigned len, int flags);
int rl_ring_send(struct rl_ring *r, struct rl_op *op, int fd, const void *buf,
                 unsigned len, int flags);
int rl_ring_recvmsg(struct rl_ring *r, struct rl_op *op, int fd,
                    struct msghdr *msg, int flags);
int rl_ring_sendmsg(struct rl_ring *r, struct rl_op *op, int fd,
                    const struct msghdr *msg, int flags);
int rl_ring_connect(struct rl_ring *r, struct rl_op *op, int fd,
                    const struct sockaddr *addr, socklen_t len);
/* One connection; addr/len may be NULL. The new fd is O_CLOEXEC. */
int rl_ring_accept(struct rl_ring *r, struct rl_op *op, int fd,
                   struct sockaddr *addr, socklen_t *len);
/* One completion per accepted connection (res = the new fd) until it fails
 * or is cancelled. */
int rl_ring_accept_multishot(struct rl_ring *r, struct rl_op *op, int fd);
/* One completion per arrival of data into the ring's receive buffers
 * (RL_OP_BUFFER), until EOF (res 0), an error, or -ENOBUFS when the
 * buffers ran out: then recycle and queue it again. */
int rl_ring_recv_multishot(struct rl_ring *r, struct rl_op *op, int fd);
/* Datagram sockets: one completion per datagram, its header, source
 * address and payload in one of the ring's receive buffers (RL_OP_BUFFER),
 * until an error, or -ENOBUFS as for rl_ring_recv_multishot. msg gives
 * the room for the address (msg_namelen; msg_controllen 0) and lives until
 * the final completion. rl_ring_datagram parses such a buffer. */
int rl_ring_recvmsg_multishot(struct rl_ring *r, struct rl_op *op, int fd,
                              struct msghdr *msg);
struct rl_datagram {
    struct sockaddr *name; /* NULL for an unnamed sender (e.g. unix) */
    socklen_t namelen;
    char *data;
    unsigned len;
    int truncated; /* the datagram was larger than the buffer */
};
/* 0, or -EINVAL if the buffer is not a valid datagram. */
int rl_ring_datagram(const struct msghdr *msg, char *buf, unsigned res,
                     struct rl_datagram *out);
/* Single-shot readiness: completes with the ready POLL* mask. */
int rl_ring_poll(struct rl_ring *r, struct rl_op *op, int fd, unsigned mask);

/* The ring's receive buffers: created with the first multishot receive.
 * A buffer belongs to the receiver from its completion until recycled. */
char *rl_ring_buffer(struct rl_ring *r, unsigned id);
void rl_ring_buffer_recycle(struct rl_ring *r, unsigned id);
/* Size of each receive buffer, or 0 if they could not be set up. */
unsigned rl_ring_buffer_size(const struct rl_ring *r);

/* Submits queued operations and, if timeout_ns != 0, waits until a
 * completion arrives or timeout_ns passes (-1: no limit). May block: the
 * caller releases its locks (the GIL) around it. 0, -ETIME, -EINTR or
 * -errno. Completions are delivered by rl_ring_dispatch, not here. */
int rl_ring_submit_and_wait(struct rl_ring *r, int64_t timeout_ns);

/* 1 if submitting or reaping needs a system call, 0 if nothing is pending
 * (lets a busy loop skip io_uring_enter when it has nothing to do). */
int rl_ring_needs_enter(struct rl_ring *r);

/* Delivers every available completion; returns how many. */
int rl_ring_dispatch(struct rl_ring *r);

#endif
