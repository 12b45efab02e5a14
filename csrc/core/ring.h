/*
 * ring.h - the loop's I/O backend, completion-style: queue an operation
 * with an rl_op, get rl_op.complete(op, res, flags) when the kernel is done.
 *
 * io_uring is the implementation (ring.c is the only file that includes
 * liburing.h); an epoll backend can implement this same interface.
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

struct rl_ring;
struct rl_op;

/* Completion flag: more completions will follow for this op (multishot). */
#define RL_OP_MORE 1u

typedef void (*rl_op_complete_fn)(struct rl_op *op, int res, unsigned flags);

struct rl_op {
    rl_op_complete_fn complete;
};

/* Creates a ring for a loop; any thread. 0 or -errno (-ENOSYS/-EPERM when
 * io_uring is unavailable). */
int rl_ring_open(struct rl_ring **out);

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

/* A short description of the setup flags in effect, e.g. for tests. */
const char *rl_ring_describe(const struct rl_ring *r);

/* Queue operations: 0 or -errno. Nothing reaches the kernel before the next
 * rl_ring_submit_and_wait / rl_ring_poll. */
int rl_ring_read(struct rl_ring *r, struct rl_op *op, int fd, void *buf,
                 unsigned len);
int rl_ring_cancel(struct rl_ring *r, struct rl_op *op);

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
