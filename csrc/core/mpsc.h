/*
 * mpsc.h - the cross-thread queue: an intrusive lock-free MPSC queue
 * (Vyukov's) with a "wake the consumer only if it sleeps" handshake.
 *
 * Threads:
 *   - any thread may rl_mpsc_push();
 *   - only the consumer (the loop thread) calls rl_mpsc_pop(),
 *     rl_mpsc_prepare_sleep() and rl_mpsc_end_sleep().
 *
 * The handshake is Dekker-style: the consumer publishes `sleeping` and then
 * re-checks the queue; a producer publishes its node and then reads
 * `sleeping`. Both sides use seq_cst fences between the two steps, so at
 * least one of them sees the other: either the consumer finds the node and
 * does not block, or the producer sees `sleeping` and rings the doorbell.
 * rl_mpsc_push() returns 1 when the caller must ring the doorbell.
 *
 * A popped node may briefly be unavailable while a producer is between its
 * exchange and its link store; pop then returns NULL and the producer's
 * doorbell (or the consumer's next iteration) picks it up.
 */
#ifndef RL_MPSC_H
#define RL_MPSC_H

#include <stdatomic.h>
#include <stddef.h>

struct rl_mpsc_node {
    _Atomic(struct rl_mpsc_node *) next;
};

/* Producers' and the consumer's fields sit on separate cache lines. The
 * separation is padding, not _Alignas, because the queue lives inside
 * Python objects, which are only 16-byte aligned. */
struct rl_mpsc {
    _Atomic(struct rl_mpsc_node *) head; /* producers swap */
    atomic_int sleeping;
    char pad[64];
    struct rl_mpsc_node *tail; /* consumer only */
    struct rl_mpsc_node stub;
};

void rl_mpsc_init(struct rl_mpsc *q);

/* Any thread. Returns 1 if the consumer may be asleep and must be woken. */
int rl_mpsc_push(struct rl_mpsc *q, struct rl_mpsc_node *n);

/* Consumer only. The oldest node, or NULL. */
struct rl_mpsc_node *rl_mpsc_pop(struct rl_mpsc *q);

/* Consumer only: whether the queue looks empty (a racing push may be
 * in progress; the handshake covers that case). */
static inline int
rl_mpsc_empty(struct rl_mpsc *q)
{
    return q->tail == &q->stub &&
           atomic_load_explicit(&q->stub.next, memory_order_acquire) == NULL &&
           atomic_load_explicit(&q->head, memory_order_acquire) == &q->stub;
}

/* Consumer only, before blocking. Returns 0 if it may block, or 1 if work
 * arrived meanwhile (sleeping is then already cleared). */
int rl_mpsc_prepare_sleep(struct rl_mpsc *q);

/* Consumer only, after waking. */
static inline void
rl_mpsc_end_sleep(struct rl_mpsc *q)
{
    atomic_store_explicit(&q->sleeping, 0, memory_order_relaxed);
}

#endif
