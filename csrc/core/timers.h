/*
 * timers.h - the loop's timers: a 4-ary min-heap ordered by (when, seq).
 *
 * Ordering is asyncio's: the earliest deadline first, and FIFO among equal
 * deadlines (seq is a per-heap counter assigned at insertion). Deadlines are
 * loop-clock seconds as doubles, the very values asyncio's TimerHandle
 * compares, so distinct deadlines closer than a nanosecond keep their
 * order. The heap stores the keys inline next to the
 * timer pointer so that sifting compares without touching the timers; each
 * timer records its slot so that removal is O(log n).
 *
 * Single-threaded: only the loop thread touches a heap.
 */
#ifndef RL_TIMERS_H
#define RL_TIMERS_H

#include <stddef.h>
#include <stdint.h>

#define RL_TIMER_NOT_QUEUED UINT32_MAX

struct rl_timer {
    uint32_t index; /* slot in the heap, or RL_TIMER_NOT_QUEUED */
};

struct rl_timer_entry {
    double when;
    uint64_t seq;
    struct rl_timer *timer;
};

struct rl_timers {
    struct rl_timer_entry *v;
    uint32_t len;
    uint32_t cap;
    uint64_t next_seq;
};

void rl_timers_init(struct rl_timers *h);
void rl_timers_free(struct rl_timers *h);

static inline void
rl_timer_init(struct rl_timer *t)
{
    t->index = RL_TIMER_NOT_QUEUED;
}

static inline int
rl_timer_queued(const struct rl_timer *t)
{
    return t->index != RL_TIMER_NOT_QUEUED;
}

/* Queues t (which must not be queued) to fire at `when`. 0 or -ENOMEM. */
int rl_timers_add(struct rl_timers *h, struct rl_timer *t, double when);

/* Unqueues t if it is queued. */
void rl_timers_remove(struct rl_timers *h, struct rl_timer *t);

/* The earliest timer and its deadline, or NULL when there is none. */
static inline struct rl_timer *
rl_timers_peek(const struct rl_timers *h, double *when)
{
    if (h->len == 0)
        return NULL;
    *when = h->v[0].when;
    return h->v[0].timer;
}

/* Unqueues and returns the earliest timer if its deadline is <= now. */
struct rl_timer *rl_timers_pop_due(struct rl_timers *h, double now);

#endif
