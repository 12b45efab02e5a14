/*
 * sched_queue.c - the bounded SPMC local run queue with steal-half (see
 * sched_queue.h for the protocol and who calls what).
 *
 * Orderings: the owner publishes a slot with a release store of tail that
 * stealers read with acquire; a stealer's claim and release of a batch are
 * acq_rel CASes on head, which the owner reads with acquire before it
 * reuses slots. Pops are CASes too (a stealer may race for the same task).
 */
#include "core/sched_queue.h"
#include "core/sched.h"

#include <stddef.h>

#define MASK (RL_SCHED_QUEUE_CAP - 1)
#define HALF (RL_SCHED_QUEUE_CAP / 2)

static inline uint32_t
real_of(uint64_t h)
{
    return (uint32_t)h;
}

static inline uint32_t
steal_of(uint64_t h)
{
    return (uint32_t)(h >> 32);
}

static inline uint64_t
pack(uint32_t steal, uint32_t real)
{
    return ((uint64_t)steal << 32) | real;
}

static inline struct rl_task *
slot_get(const struct rl_sched_queue *q, uint32_t i)
{
    return atomic_load_explicit(&((struct rl_sched_queue *)q)->slot[i & MASK],
                                memory_order_relaxed);
}

static inline void
slot_set(struct rl_sched_queue *q, uint32_t i, struct rl_task *t)
{
    atomic_store_explicit(&q->slot[i & MASK], t, memory_order_relaxed);
}

void
rl_sched_queue_init(struct rl_sched_queue *q)
{
    atomic_store_explicit(&q->head, 0, memory_order_relaxed);
    atomic_store_explicit(&q->tail, 0, memory_order_relaxed);
    for (unsigned i = 0; i < RL_SCHED_QUEUE_CAP; i++)
        slot_set(q, i, NULL);
}

struct rl_task *
rl_sched_queue_push(struct rl_sched_queue *q, struct rl_task *t, unsigned *n)
{
    /* Our own tail: relaxed. */
    uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    /* acquire: a stealer's release of slots happens before we reuse them. */
    uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    for (;;) {
        uint32_t steal = steal_of(h), real = real_of(h);
        if (tail - steal < RL_SCHED_QUEUE_CAP) {
            slot_set(q, tail, t);
            /* release: the slot is written before stealers see tail. */
            atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
            return NULL;
        }
        if (steal != real) {
            /* Full while a stealer copies: it is about to free room, so
             * only t goes to the inject queue. */
            t->next = NULL;
            *n = 1;
            return t;
        }
        /* Full, no stealer: claim the oldest half by moving head past it.
         * release on success is not needed for the slots (we read them);
         * acquire on failure re-reads a stealer's progress. */
        if (!atomic_compare_exchange_weak_explicit(
                &q->head, &h, pack(real + HALF, real + HALF),
                memory_order_acquire, memory_order_acquire))
            continue;
        struct rl_task *first = slot_get(q, real), *last = first;
        for (uint32_t i = 1; i < HALF; i++) {
            struct rl_task *x = slot_get(q, real + i);
            last->next = x;
            last = x;
        }
        last->next = t;
        t->next = NULL;
        *n = HALF + 1;
        return first;
    }
}

struct rl_task *
rl_sched_queue_pop(struct rl_sched_queue *q)
{
    uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    for (;;) {
        uint32_t steal = steal_of(h), real = real_of(h);
        if (real == atomic_load_explicit(&q->tail, memory_order_relaxed))
            return NULL;
        /* Without a stealer both indices move; with one, only real. */
        uint64_t next = steal == real ? pack(real + 1, real + 1)
                                      : pack(steal, real + 1);
        /* acq_rel: orders our slot read after the claim, and against a
         * stealer's claim of the same slot. */
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, next,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire))
            return slot_get(q, real);
    }
}

struct rl_task *
rl_sched_queue_steal_into(struct rl_sched_queue *src,
                          struct rl_sched_queue *dst, unsigned *n)
{
    uint32_t dtail = atomic_load_explicit(&dst->tail, memory_order_relaxed);
    uint32_t dsteal =
        steal_of(atomic_load_explicit(&dst->head, memory_order_acquire));
    if (dtail - dsteal > HALF)
        return NULL; /* no room for a half batch */

    uint64_t h = atomic_load_explicit(&src->head, memory_order_acquire);
    uint64_t claimed;
    uint32_t count;
    for (;;) {
        uint32_t steal = steal_of(h), real = real_of(h);
        if (steal != real)
            return NULL; /* another stealer is copying */
        /* acquire: pairs with the owner's release of tail (slot writes). */
        uint32_t stail = atomic_load_explicit(&src->tail, memory_order_acquire);
        count = stail - real;
        count -= count / 2;
        if (count == 0)
            return NULL;
        if (count > HALF)
            count = HALF;
        /* Claim [real, real + count) for us; steal stays at real so the
         * owner will not overwrite those slots until we release them. */
        claimed = pack(steal, real + count);
        if (atomic_compare_exchange_weak_explicit(&src->head, &h, claimed,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire))
            break;
    }
    uint32_t first = steal_of(claimed);
    for (uint32_t i = 0; i < count; i++)
        slot_set(dst, dtail + i, slot_get(src, first + i));
    /* Release the batch: steal := real (the owner may have popped more). */
    h = claimed;
    for (;;) {
        uint64_t done = pack(real_of(h), real_of(h));
        if (atomic_compare_exchange_weak_explicit(&src->head, &h, done,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire))
            break;
    }
    *n = count;
    struct rl_task *ret = slot_get(dst, dtail + count - 1);
    if (count > 1) /* release: publish the copied slots to dst's stealers */
        atomic_store_explicit(&dst->tail, dtail + count - 1,
                              memory_order_release);
    return ret;
}

unsigned
rl_sched_queue_room(const struct rl_sched_queue *q)
{
    uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint64_t h = atomic_load_explicit(&((struct rl_sched_queue *)q)->head,
                                      memory_order_acquire);
    return RL_SCHED_QUEUE_CAP - (tail - steal_of(h));
}

unsigned
rl_sched_queue_len(const struct rl_sched_queue *q)
{
    struct rl_sched_queue *m = (struct rl_sched_queue *)q;
    uint64_t h = atomic_load_explicit(&m->head, memory_order_acquire);
    uint32_t tail = atomic_load_explicit(&m->tail, memory_order_acquire);
    uint32_t len = tail - real_of(h);
    /* A stale head read after a newer tail can only look longer; clamp. */
    return len > RL_SCHED_QUEUE_CAP ? RL_SCHED_QUEUE_CAP : len;
}
