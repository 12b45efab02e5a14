/*
 * sched_inject.h - the scheduler's global inject queue: tasks spawned from
 * outside the workers, and the halves that full local queues overflow.
 * An intrusive FIFO list (rl_task.next) under a mutex, as in Tokio, with
 * its length readable without the lock.
 *
 * Closing (shutdown) makes rl_sched_inject_push refuse new tasks with
 * -ESHUTDOWN; tasks already queued stay and are still popped, and the
 * workers' own overflow (rl_sched_inject_push_batch) is always accepted.
 *
 * Threads: every function from any thread.
 */
#ifndef RL_SCHED_INJECT_H
#define RL_SCHED_INJECT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

struct rl_task;

struct rl_sched_inject {
    pthread_mutex_t lock;
    struct rl_task *head, *tail; /* under lock */
    int closed;                  /* under lock */
    atomic_size_t len; /* written under lock; read without it (seq_cst) */
};

int rl_sched_inject_init(struct rl_sched_inject *q);
void rl_sched_inject_destroy(struct rl_sched_inject *q);

/* Appends t: 0, or -ESHUTDOWN once closed. */
int rl_sched_inject_push(struct rl_sched_inject *q, struct rl_task *t);

/* Appends a list linked through next (n tasks, ending with last->next ==
 * NULL), even when closed. */
void rl_sched_inject_push_batch(struct rl_sched_inject *q,
                                struct rl_task *first, struct rl_task *last,
                                size_t n);

/* Removes up to max tasks (max >= 1) from the front: a list linked through
 * next, or NULL if empty; *n their count. */
struct rl_task *rl_sched_inject_pop(struct rl_sched_inject *q, size_t max,
                                    size_t *n);

void rl_sched_inject_close(struct rl_sched_inject *q);

/* Tasks queued: a snapshot. seq_cst, because the parking handshake
 * (sched.c) pairs it with the idle state. */
static inline size_t
rl_sched_inject_len(struct rl_sched_inject *q)
{
    return atomic_load(&q->len);
}

#endif
