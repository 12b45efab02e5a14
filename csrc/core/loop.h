/*
 * loop.h - the single-threaded loop core: ready queue, timers, the
 * cross-thread queue and its doorbell, and one iteration in asyncio's
 * _run_once order. Knows nothing about Python: the binding supplies hooks to
 * run a callback, to release/retake its lock around blocking waits, and to
 * check for signals.
 *
 * Every queued unit of work is an rl_callback embedded in a binding object.
 * The binding holds one reference per queue the callback sits in; the core
 * only moves pointers between queues.
 *
 * Threads: everything here runs on the loop thread, except
 * rl_loop_call_soon_threadsafe(), which any thread may call.
 */
#ifndef RL_LOOP_H
#define RL_LOOP_H

#include "core/common.h"
#include "core/mpsc.h"
#include "core/ready.h"
#include "core/ring.h"
#include "core/timers.h"

#include <stdint.h>

struct rl_loop;

struct rl_callback {
    struct rl_timer timer;      /* in loop->timers while scheduled */
    struct rl_mpsc_node remote; /* in loop->remote while in flight */
};

/* Work to run just before the loop next hands its queue to the kernel, so
 * that everything one iteration produced goes out in one batch (e.g. a
 * transport's writes coalesced into one send). The owner keeps d alive
 * while it is queued. */
struct rl_deferred {
    struct rl_deferred *next;
    void (*run)(struct rl_deferred *d);
    int queued;
};

struct rl_loop_hooks {
    /* Runs a ready callback. 0, or -1 to end the iteration at once (the
     * binding has an exception to propagate). */
    int (*run)(struct rl_loop *loop, struct rl_callback *cb);
    /* Called around a wait that may block (release and retake the GIL). */
    void (*block_begin)(struct rl_loop *loop);
    void (*block_end)(struct rl_loop *loop);
    /* Called when a wait was interrupted by a signal. 0 or -1 as run(). */
    int (*signalled)(struct rl_loop *loop);
};

struct rl_loop {
    struct rl_ring *ring;
    const struct rl_loop_hooks *hooks;
    struct rl_ready ready;
    struct rl_timers timers;
    struct rl_mpsc remote;
    struct rl_deferred *deferred; /* LIFO list, run before each wait */
    int stopping;
    int closing;
    int interrupted; /* a completion asked to end the iteration (-1) */
    int doorbell_fd; /* eventfd other threads write when the loop sleeps */
    int doorbell_armed;
    uint64_t doorbell_value;
    struct rl_op doorbell_op;
};

/* 0 or -errno (-ENOSYS/-EPERM when io_uring is unavailable). */
int rl_loop_init(struct rl_loop *loop, const struct rl_loop_hooks *hooks);

/* Frees the ring and queues. The binding first empties the queues with
 * rl_loop_take_queued() so it can drop its references. */
void rl_loop_fini(struct rl_loop *loop);

/* On the thread about to run the loop: takes ownership of the ring and
 * arms the doorbell. 0, -EBADF in a fork child, -EEXIST if another thread
 * owns a ring that still has operations in flight. */
int rl_loop_prepare_run(struct rl_loop *loop);

/* One iteration: wait for I/O (or the next timer, or nothing if work is
 * ready), deliver completions, take cross-thread callbacks, move due
 * timers, then run the callbacks that were ready at that point.
 * 0, -1 from a hook, or -errno. */
int rl_loop_run_once(struct rl_loop *loop);

/* Moves callbacks queued by other threads to the ready queue. 0 or -ENOMEM. */
int rl_loop_take_remote(struct rl_loop *loop);

/* Queues cb to run on the next iteration. Callbacks that other threads
 * queued before this call go first, so call_soon_threadsafe and call_soon
 * keep one FIFO order, as in asyncio. 0 or -ENOMEM. */
static inline int
rl_loop_call_soon(struct rl_loop *loop, struct rl_callback *cb)
{
    if (RL_UNLIKELY(!rl_mpsc_empty(&loop->remote))) {
        int res = rl_loop_take_remote(loop);
        if (res < 0)
            return res;
    }
    return rl_ready_push(&loop->ready, cb);
}

/* Queues cb to run once the loop clock reaches `when` (seconds, never NaN). */
static inline int
rl_loop_call_at(struct rl_loop *loop, struct rl_callback *cb, double when)
{
    return rl_timers_add(&loop->timers, &cb->timer, when);
}

/* Unqueues a scheduled timer; 1 if it was queued (the binding then drops
 * the timers' reference), else 0. */
static inline int
rl_loop_cancel_timer(struct rl_loop *loop, struct rl_callback *cb)
{
    if (!rl_timer_queued(&cb->timer))
        return 0;
    rl_timers_remove(&loop->timers, &cb->timer);
    return 1;
}

/* Queues d to run before the next wait; no-op if already queued. */
static inline void
rl_loop_defer(struct rl_loop *loop, struct rl_deferred *d)
{
    if (!d->queued) {
        d->queued = 1;
        d->next = loop->deferred;
        loop->deferred = d;
    }
}

/* Any thread: queues cb for the loop and wakes it if it sleeps. */
void rl_loop_call_soon_threadsafe(struct rl_loop *loop, struct rl_callback *cb);

/* Removes and returns any queued callback (ready, timers, cross-thread),
 * or NULL when all queues are empty. */
struct rl_callback *rl_loop_take_queued(struct rl_loop *loop);

/* Nanoseconds to wait for the earliest timer (0 if it is due), or -1 if
 * there is none (or it is at infinity). */
int64_t rl_loop_next_timeout(struct rl_loop *loop, double now);

#endif
