/*
 * ready.h - the ready queue: a growable FIFO ring of opaque item pointers.
 *
 * The loop runs a snapshot of it per iteration (asyncio's `ntodo`): items
 * pushed while the snapshot runs wait for the next iteration. Items are
 * owned by the caller (the binding holds a reference per queued item).
 *
 * Single-threaded: only the loop thread touches it.
 */
#ifndef RL_READY_H
#define RL_READY_H

#include <stddef.h>

struct rl_ready {
    void **buf;
    size_t head; /* index of the oldest item */
    size_t len;
    size_t mask; /* capacity - 1; capacity is a power of two or 0 */
};

void rl_ready_init(struct rl_ready *q);
void rl_ready_free(struct rl_ready *q);

/* Slow path of rl_ready_push: doubles the ring. 0 or -ENOMEM. */
int rl_ready_grow(struct rl_ready *q);

static inline int
rl_ready_push(struct rl_ready *q, void *item)
{
    if (q->buf == NULL || q->len > q->mask) {
        int r = rl_ready_grow(q);
        if (r < 0)
            return r;
    }
    q->buf[(q->head + q->len) & q->mask] = item;
    q->len++;
    return 0;
}

/* The oldest item, or NULL when empty. */
static inline void *
rl_ready_pop(struct rl_ready *q)
{
    if (q->len == 0)
        return NULL;
    void *item = q->buf[q->head];
    q->head = (q->head + 1) & q->mask;
    q->len--;
    return item;
}

#endif
