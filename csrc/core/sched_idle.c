/*
 * sched_idle.c - parked/searching accounting (see sched_idle.h).
 */
#include "core/sched_idle.h"

#include <errno.h>
#include <stdlib.h>

#define UNPARKED_ONE (1u << 16)
#define SEARCHING_MASK 0xffffu

int
rl_sched_idle_init(struct rl_sched_idle *idle, unsigned workers)
{
    if (workers == 0 || workers >= SEARCHING_MASK)
        return -EINVAL;
    idle->workers = workers;
    idle->nsleepers = 0;
    idle->sleepers = calloc(workers, sizeof(*idle->sleepers));
    idle->sleeping = calloc(workers, sizeof(*idle->sleeping));
    if (!idle->sleepers || !idle->sleeping) {
        free(idle->sleepers);
        free(idle->sleeping);
        return -ENOMEM;
    }
    atomic_init(&idle->state, workers * UNPARKED_ONE);
    int res = pthread_mutex_init(&idle->lock, NULL);
    if (res) {
        free(idle->sleepers);
        free(idle->sleeping);
        return -res;
    }
    return 0;
}

void
rl_sched_idle_destroy(struct rl_sched_idle *idle)
{
    pthread_mutex_destroy(&idle->lock);
    free(idle->sleepers);
    free(idle->sleeping);
}

static int
should_notify(struct rl_sched_idle *idle)
{
    uint32_t s = atomic_load(&idle->state);
    return (s & SEARCHING_MASK) == 0 && (s >> 16) < idle->workers;
}

int
rl_sched_idle_worker_to_notify(struct rl_sched_idle *idle)
{
    /* Fast path without the lock: a busy runtime pays one load. */
    if (!should_notify(idle))
        return -1;
    pthread_mutex_lock(&idle->lock);
    int index = -1;
    if (should_notify(idle) && idle->nsleepers) {
        index = (int)idle->sleepers[--idle->nsleepers];
        idle->sleeping[index] = 0;
        /* The woken worker starts out searching. */
        atomic_fetch_add(&idle->state, UNPARKED_ONE + 1);
    }
    pthread_mutex_unlock(&idle->lock);
    return index;
}

int
rl_sched_idle_to_searching(struct rl_sched_idle *idle)
{
    uint32_t s = atomic_load(&idle->state);
    /* Sloppy cap at half, as Tokio: two workers may both pass. */
    if (2 * (s & SEARCHING_MASK) >= idle->workers && (s & SEARCHING_MASK))
        return 0;
    atomic_fetch_add(&idle->state, 1);
    return 1;
}

int
rl_sched_idle_from_searching(struct rl_sched_idle *idle)
{
    uint32_t prev = atomic_fetch_sub(&idle->state, 1);
    return (prev & SEARCHING_MASK) == 1;
}

int
rl_sched_idle_to_parked(struct rl_sched_idle *idle, unsigned index,
                        int searching)
{
    pthread_mutex_lock(&idle->lock);
    uint32_t prev = atomic_fetch_sub(&idle->state,
                                     UNPARKED_ONE + (searching ? 1u : 0u));
    idle->sleepers[idle->nsleepers++] = index;
    idle->sleeping[index] = 1;
    pthread_mutex_unlock(&idle->lock);
    return searching && (prev & SEARCHING_MASK) == 1;
}

int
rl_sched_idle_from_parked(struct rl_sched_idle *idle, unsigned index)
{
    pthread_mutex_lock(&idle->lock);
    if (!idle->sleeping[index]) {
        pthread_mutex_unlock(&idle->lock);
        return 1; /* a notifier took us off the list and counted us */
    }
    idle->sleeping[index] = 0;
    for (unsigned i = 0; i < idle->nsleepers; i++) {
        if (idle->sleepers[i] == index) {
            idle->sleepers[i] = idle->sleepers[--idle->nsleepers];
            break;
        }
    }
    atomic_fetch_add(&idle->state, UNPARKED_ONE);
    pthread_mutex_unlock(&idle->lock);
    return 0;
}
