/*
 * sched_idle.h - which workers are parked and which are searching for
 * work, so a new task wakes at most one worker, and only when nobody is
 * already looking (Tokio's idle.rs; research io_uring_and_scheduler.md
 * §B.1 "Searching / idle").
 *
 * state packs unparked << 16 | searching, updated with seq_cst RMWs: the
 * notify check of a spawner (after it queued a task) and the parking of
 * the last searcher (before it re-scans the queues) form a Dekker pair, so
 * either the spawner wakes someone or the parker sees the task.
 * Searching workers are capped at half the workers (rounded up, at least
 * one). The sleeper list and each worker's `sleeping` mark are under lock.
 *
 * Threads: to_searching, from_searching, to_parked and from_parked by the
 * worker concerned; worker_to_notify from any thread.
 */
#ifndef RL_SCHED_IDLE_H
#define RL_SCHED_IDLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct rl_sched_idle {
    _Atomic uint32_t state; /* unparked << 16 | searching */
    unsigned workers;
    pthread_mutex_t lock;
    unsigned nsleepers;      /* under lock */
    unsigned *sleepers;      /* under lock: parked worker indices */
    unsigned char *sleeping; /* under lock: per worker, in sleepers */
};

/* All workers start unparked and not searching. 0 or -errno. */
int rl_sched_idle_init(struct rl_sched_idle *idle, unsigned workers);
void rl_sched_idle_destroy(struct rl_sched_idle *idle);

/* A parked worker to wake for new work, already counted as unparked and
 * searching; or -1 if someone is searching or nobody is parked. */
int rl_sched_idle_worker_to_notify(struct rl_sched_idle *idle);

/* 1 if the worker may start searching (it is then counted), 0 if half
 * the workers are searching already. */
int rl_sched_idle_to_searching(struct rl_sched_idle *idle);

/* A searcher found work. 1 if it was the last searcher: the caller then
 * wakes another worker to keep looking (the ramp-up chain). */
int rl_sched_idle_from_searching(struct rl_sched_idle *idle);

/* Worker `index` is about to park; searching says whether it was
 * counted as searching. 1 if it was the last searcher: the caller must
 * then re-scan every queue and notify if work is pending. */
int rl_sched_idle_to_parked(struct rl_sched_idle *idle, unsigned index,
                            int searching);

/* Worker `index` woke up. 1 if a notifier woke it (it is counted as
 * searching), 0 if it woke on its own (I/O, spurious) and is now counted
 * unparked, not searching. */
int rl_sched_idle_from_parked(struct rl_sched_idle *idle, unsigned index);

/* Any thread: the counters, a snapshot. */
static inline unsigned
rl_sched_idle_searching(struct rl_sched_idle *idle)
{
    return atomic_load(&idle->state) & 0xffffu;
}

static inline unsigned
rl_sched_idle_unparked(struct rl_sched_idle *idle)
{
    return atomic_load(&idle->state) >> 16;
}

#endif
