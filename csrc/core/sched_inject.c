/*
 * sched_inject.c - the global inject queue (see sched_inject.h).
 * The mutex orders the list; len is stored seq_cst inside it so that a
 * spawner's push and its following read of the idle state form a Dekker
 * pair with a parking worker's idle update and its read of len.
 */
#include "core/sched_inject.h"
#include "core/sched.h"

#include <errno.h>

int
rl_sched_inject_init(struct rl_sched_inject *q)
{
    q->head = q->tail = NULL;
    q->closed = 0;
    atomic_init(&q->len, 0);
    return -pthread_mutex_init(&q->lock, NULL);
}

void
rl_sched_inject_destroy(struct rl_sched_inject *q)
{
    pthread_mutex_destroy(&q->lock);
}

static void
append_locked(struct rl_sched_inject *q, struct rl_task *first,
              struct rl_task *last, size_t n)
{
    if (q->tail)
        q->tail->next = first;
    else
        q->head = first;
    q->tail = last;
    atomic_store(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) +
                              n);
}

int
rl_sched_inject_push(struct rl_sched_inject *q, struct rl_task *t)
{
    t->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->closed) {
        pthread_mutex_unlock(&q->lock);
        return -ESHUTDOWN;
    }
    append_locked(q, t, t, 1);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

void
rl_sched_inject_push_batch(struct rl_sched_inject *q, struct rl_task *first,
                           struct rl_task *last, size_t n)
{
    last->next = NULL;
    pthread_mutex_lock(&q->lock);
    append_locked(q, first, last, n);
    pthread_mutex_unlock(&q->lock);
}

struct rl_task *
rl_sched_inject_pop(struct rl_sched_inject *q, size_t max, size_t *n)
{
    pthread_mutex_lock(&q->lock);
    struct rl_task *first = q->head, *last = NULL, *t = first;
    size_t count = 0;
    while (t && count < max) {
        last = t;
        t = t->next;
        count++;
    }
    if (count) {
        q->head = t;
        if (!t)
            q->tail = NULL;
        last->next = NULL;
        atomic_store(&q->len,
                     atomic_load_explicit(&q->len, memory_order_relaxed) -
                         count);
    }
    pthread_mutex_unlock(&q->lock);
    *n = count;
    return count ? first : NULL;
}

void
rl_sched_inject_close(struct rl_sched_inject *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    pthread_mutex_unlock(&q->lock);
}
