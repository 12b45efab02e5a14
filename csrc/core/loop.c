/*
 * loop.c - one loop iteration in asyncio's _run_once order, and the
 * cross-thread doorbell (see loop.h).
 *
 * The doorbell is an eventfd with one read operation kept in flight on the
 * loop's ring. Producers write it only when the loop announced it is about
 * to sleep (the handshake in mpsc.h), so a busy loop pays no system call
 * for cross-thread work and a sleeping loop pays one write per sleep.
 */
#include "core/loop.h"
#include "core/clock.h"
#include "core/common.h"

#include <errno.h>
#include <math.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void arm_doorbell(struct rl_loop *loop);
static void run_deferred(struct rl_loop *loop);

static void
doorbell_complete(struct rl_op *op, int res, unsigned flags)
{
    struct rl_loop *loop = rl_container_of(op, struct rl_loop, doorbell_op);
    loop->doorbell_armed = 0;
    if (!loop->closing && res != -ECANCELED)
        arm_doorbell(loop);
}

static void
arm_doorbell(struct rl_loop *loop)
{
    if (rl_ring_read(loop->ring, &loop->doorbell_op, loop->doorbell_fd,
                     &loop->doorbell_value, sizeof(loop->doorbell_value)) == 0)
        loop->doorbell_armed = 1;
}

int
rl_loop_init(struct rl_loop *loop, const struct rl_loop_hooks *hooks)
{
    loop->hooks = hooks;
    loop->deferred = NULL;
    loop->stopping = 0;
    loop->closing = 0;
    loop->interrupted = 0;
    loop->doorbell_armed = 0;
    loop->doorbell_op.complete = doorbell_complete;
    rl_ready_init(&loop->ready);
    rl_timers_init(&loop->timers);
    rl_mpsc_init(&loop->remote);
    /* Blocking on purpose: io_uring may answer a read on an O_NONBLOCK
     * file with -EAGAIN instead of waiting for it, which would make the
     * doorbell spin. Producers never block on it: each write adds one to a
     * 64-bit counter that the loop keeps draining. */
    loop->doorbell_fd = eventfd(0, EFD_CLOEXEC);
    if (loop->doorbell_fd < 0)
        return -errno;
    int res = rl_ring_open(&loop->ring);
    if (res < 0) {
        close(loop->doorbell_fd);
        return res;
    }
    return 0;
}

void
rl_loop_fini(struct rl_loop *loop)
{
    loop->closing = 1;
    run_deferred(loop); /* owners see `closing` and only let go */
    if (loop->ring) {
        rl_ring_close(loop->ring);
        loop->ring = NULL;
    }
    if (loop->doorbell_fd >= 0) {
        close(loop->doorbell_fd);
        loop->doorbell_fd = -1;
    }
    rl_ready_free(&loop->ready);
    rl_timers_free(&loop->timers);
}

int
rl_loop_prepare_run(struct rl_loop *loop)
{
    int res = rl_ring_enable(loop->ring);
    if (res == -EEXIST && rl_ring_inflight(loop->ring) <= 1) {
        /* The ring belongs to a thread that ran this loop before. Only
         * the doorbell is in flight, so a fresh ring loses nothing. */
        struct rl_ring *fresh;
        res = rl_ring_open(&fresh);
        if (res < 0)
            return res;
        loop->closing = 1;
        rl_ring_close(loop->ring);
        loop->closing = 0;
        loop->ring = fresh;
        loop->doorbell_armed = 0;
        res = rl_ring_enable(loop->ring);
    }
    if (res < 0)
        return res;
    if (!loop->doorbell_armed)
        arm_doorbell(loop);
    return 0;
}

int64_t
rl_loop_next_timeout(struct rl_loop *loop, double now)
{
    double when;
    if (!rl_timers_peek(&loop->timers, &when) || isinf(when))
        return -1;
    if (when <= now)
        return 0;
    /* Rounded up; should rounding still wake us a hair early, the next
     * iteration just waits again. Capped at a day per wait. */
    double ns = ceil((when - now) * 1e9);
    return ns < 1 ? 1 : ns > 864e11 ? (int64_t)864e11 : (int64_t)ns;
}

static void
run_deferred(struct rl_loop *loop)
{
    while (loop->deferred) {
        struct rl_deferred *d = loop->deferred;
        loop->deferred = d->next;
        d->queued = 0;
        d->run(d);
    }
}

static int
wait_for_events(struct rl_loop *loop)
{
    run_deferred(loop);
    int64_t timeout = 0;
    if (loop->ready.len == 0 && !loop->stopping) {
        timeout = rl_loop_next_timeout(loop, rl_clock_now_s());
        if (timeout != 0 && rl_mpsc_prepare_sleep(&loop->remote))
            timeout = 0;
    }
    int res = 0;
    if (timeout != 0) {
        loop->hooks->block_begin(loop);
        res = rl_ring_submit_and_wait(loop->ring, timeout);
        loop->hooks->block_end(loop);
        rl_mpsc_end_sleep(&loop->remote);
    } else if (rl_ring_needs_enter(loop->ring)) {
        res = rl_ring_submit_and_wait(loop->ring, 0);
    }
    if (res == -EINTR)
        return loop->hooks->signalled(loop);
    if (res < 0 && res != -ETIME && res != -EBUSY && res != -EAGAIN)
        return res;
    return 0;
}

int
rl_loop_run_once(struct rl_loop *loop)
{
    int res = wait_for_events(loop);
    if (res < 0)
        return res;
    rl_ring_dispatch(loop->ring);
    if (RL_UNLIKELY(loop->interrupted)) {
        loop->interrupted = 0;
        return -1;
    }

    res = rl_loop_take_remote(loop);
    if (res < 0)
        return res;

    double now = rl_clock_now_s();
    struct rl_timer *t;
    while ((t = rl_timers_pop_due(&loop->timers, now)) != NULL) {
        res = rl_ready_push(&loop->ready,
                            rl_container_of(t, struct rl_callback, timer));
        if (res < 0)
            return res;
    }

    /* Run only what is ready now: callbacks they schedule wait for the
     * next iteration, as in asyncio. */
    for (size_t todo = loop->ready.len; todo > 0; todo--) {
        struct rl_callback *cb = rl_ready_pop(&loop->ready);
        if (loop->hooks->run(loop, cb) < 0)
            return -1;
    }
    return 0;
}

int
rl_loop_take_remote(struct rl_loop *loop)
{
    struct rl_mpsc_node *node;
    while ((node = rl_mpsc_pop(&loop->remote)) != NULL) {
        struct rl_callback *cb =
            rl_container_of(node, struct rl_callback, remote);
        int res = rl_ready_push(&loop->ready, cb);
        if (res < 0)
            return res;
    }
    return 0;
}

void
rl_loop_call_soon_threadsafe(struct rl_loop *loop, struct rl_callback *cb)
{
    if (rl_mpsc_push(&loop->remote, &cb->remote)) {
        uint64_t one = 1;
        ssize_t n = write(loop->doorbell_fd, &one, sizeof(one));
        (void)n; /* cannot fail for a live eventfd and an 8-byte write */
    }
}

struct rl_callback *
rl_loop_take_queued(struct rl_loop *loop)
{
    struct rl_callback *cb = rl_ready_pop(&loop->ready);
    if (cb)
        return cb;
    double when;
    struct rl_timer *t = rl_timers_peek(&loop->timers, &when);
    if (t) {
        rl_timers_remove(&loop->timers, t);
        return rl_container_of(t, struct rl_callback, timer);
    }
    struct rl_mpsc_node *node = rl_mpsc_pop(&loop->remote);
    return node ? rl_container_of(node, struct rl_callback, remote) : NULL;
}
