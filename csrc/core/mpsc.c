/*
 * mpsc.c - Vyukov's intrusive MPSC queue and the sleep handshake
 * (see mpsc.h for the protocol and who may call what).
 */
#include "core/mpsc.h"

void
rl_mpsc_init(struct rl_mpsc *q)
{
    atomic_store_explicit(&q->stub.next, NULL, memory_order_relaxed);
    atomic_store_explicit(&q->head, &q->stub, memory_order_relaxed);
    q->tail = &q->stub;
    atomic_store_explicit(&q->sleeping, 0, memory_order_relaxed);
}

static void
link_node(struct rl_mpsc *q, struct rl_mpsc_node *n)
{
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    /* acq_rel: release publishes n's contents to the consumer; acquire
     * orders us after the previous producer's exchange. */
    struct rl_mpsc_node *prev =
        atomic_exchange_explicit(&q->head, n, memory_order_acq_rel);
    /* release: the consumer's acquire load of prev->next sees n whole. */
    atomic_store_explicit(&prev->next, n, memory_order_release);
}

int
rl_mpsc_push(struct rl_mpsc *q, struct rl_mpsc_node *n)
{
    link_node(q, n);
    /* seq_cst: pairs with the fence in rl_mpsc_prepare_sleep. */
    atomic_thread_fence(memory_order_seq_cst);
    return atomic_exchange_explicit(&q->sleeping, 0, memory_order_relaxed);
}

struct rl_mpsc_node *
rl_mpsc_pop(struct rl_mpsc *q)
{
    struct rl_mpsc_node *tail = q->tail;
    struct rl_mpsc_node *next =
        atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &q->stub) {
        if (next == NULL)
            return NULL;
        q->tail = tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next) {
        q->tail = next;
        return tail;
    }
    if (tail != atomic_load_explicit(&q->head, memory_order_acquire))
        return NULL; /* a producer is between its exchange and its link */
    link_node(q, &q->stub);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next) {
        q->tail = next;
        return tail;
    }
    return NULL;
}

int
rl_mpsc_prepare_sleep(struct rl_mpsc *q)
{
    atomic_store_explicit(&q->sleeping, 1, memory_order_relaxed);
    /* seq_cst: pairs with the fence in rl_mpsc_push. */
    atomic_thread_fence(memory_order_seq_cst);
    if (!rl_mpsc_empty(q)) {
        atomic_store_explicit(&q->sleeping, 0, memory_order_relaxed);
        return 1;
    }
    return 0;
}
