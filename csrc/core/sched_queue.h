/*
 * sched_queue.h - a worker's bounded local run queue (256 slots): one
 * producer (the owning worker), many consumers (the owner pops, other
 * workers steal half). Tokio's queue.rs shape, research
 * io_uring_and_scheduler.md §B.1/§B.4.
 *
 * head packs two 32-bit indices: low = `real` (the next task to pop),
 * high = `steal` (the start of the batch a stealer is still copying;
 * steal == real when nobody steals). tail is written by the owner only.
 * Invariants: the owner never writes a slot in [steal, tail); a stealer
 * reads slots only after its claiming CAS on head; at most one stealer at a
 * time (a second one sees steal != real and gives up). 32-bit indices wrap
 * harmlessly (all arithmetic is modular).
 *
 * Threads: push, pop and room by the owner only; steal_into by any worker
 * into the queue it owns; len from any thread (a snapshot).
 */
#ifndef RL_SCHED_QUEUE_H
#define RL_SCHED_QUEUE_H

#include <stdatomic.h>
#include <stdint.h>

struct rl_task;

#define RL_SCHED_QUEUE_CAP 256u

/* Owner and stealers' fields on separate cache lines (padding, as the
 * queue is embedded in calloc'ed worker records). */
struct rl_sched_queue {
    _Atomic uint64_t head; /* steal << 32 | real */
    char pad0[64 - sizeof(uint64_t)];
    _Atomic uint32_t tail;
    char pad1[64 - sizeof(uint32_t)];
    /* Relaxed atomics: free on x86/arm64, and a stealer that loses its
     * CAS may have read a slot the owner is rewriting. */
    _Atomic(struct rl_task *) slot[RL_SCHED_QUEUE_CAP];
};

void rl_sched_queue_init(struct rl_sched_queue *q);

/* Owner. Queues t at the back. If the queue is full, returns instead the
 * tasks the caller must move to the inject queue, linked through next and
 * ending with t: the oldest half of the queue and t, or only t while a
 * stealer is freeing room; *n is their count. NULL when t was queued. */
struct rl_task *rl_sched_queue_push(struct rl_sched_queue *q, struct rl_task *t,
                                    unsigned *n);

/* Owner. The oldest task, or NULL. */
struct rl_task *rl_sched_queue_pop(struct rl_sched_queue *q);

/* Takes half (rounded up, at most 128) of src's tasks into dst, which the
 * caller owns, and returns one of them to run now (the rest are queued in
 * dst), *n the count taken. NULL if src is empty, another stealer is busy
 * on src, or dst is more than half full. */
struct rl_task *rl_sched_queue_steal_into(struct rl_sched_queue *src,
                                          struct rl_sched_queue *dst,
                                          unsigned *n);

/* Owner: free slots (at least this many pushes succeed). */
unsigned rl_sched_queue_room(const struct rl_sched_queue *q);

/* Any thread: tasks queued, a snapshot. */
unsigned rl_sched_queue_len(const struct rl_sched_queue *q);

#endif
