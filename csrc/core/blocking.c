/*
 * blocking.c - the blocking pool (see blocking.h).
 *
 * One mutex guards the queue and the counters. Threads are detached; the
 * pool counts them and rl_blocking_shutdown waits for the count to reach
 * zero. `nqueued` is also read without the lock by spinning threads, as a
 * hint only: every decision is re-checked under the lock.
 *
 * Wake-up rule (submit): a job needs a thread only if the spinning threads
 * are fewer than the queued jobs. A spinning thread that gives up re-checks
 * the queue under the lock before it parks, so a job queued while it was
 * leaving the spin is never lost.
 *
 * Threads are named "rl-blocking" (top, gdb, and the tests tell them from
 * threads a test started by that name).
 */
#define _GNU_SOURCE
#include "core/blocking.h"

#include "core/common.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

struct rl_blocking_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;   /* parked threads wait here */
    pthread_cond_t exited; /* shutdown waits here for threads == 0 */
    struct rl_blocking_job *head, *tail;
    atomic_uint nqueued;
    unsigned threads;
    unsigned parked;
    unsigned spinning;
    unsigned max_threads;
    unsigned idle_ms;
    unsigned spin_us;
    int shutdown;
    void (*exit_hook)(void);
};

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Lock held. */
static struct rl_blocking_job *
take_job(struct rl_blocking_pool *p)
{
    struct rl_blocking_job *j = p->head;
    if (j == NULL)
        return NULL;
    p->head = j->next;
    if (p->head)
        p->head->prev = NULL;
    else
        p->tail = NULL;
    j->next = j->prev = NULL;
    j->queued = 0;
    atomic_fetch_sub_explicit(&p->nqueued, 1, memory_order_relaxed);
    return j;
}

/* Spins (without the lock) until a job looks available or spin_us pass.
 * Returns 1 if one looked available. */
static int
spin_for_work(struct rl_blocking_pool *p, unsigned spin_us)
{
    if (spin_us == 0)
        return 0;
    int64_t deadline = now_ns() + (int64_t)spin_us * 1000;
    for (unsigned i = 0;; i++) {
        if (atomic_load_explicit(&p->nqueued, memory_order_relaxed) > 0)
            return 1;
        if ((i & 63) == 63 && now_ns() >= deadline)
            return 0;
        cpu_relax();
    }
}

static int start_thread(struct rl_blocking_pool *p);

static void *
pool_thread(void *arg)
{
    struct rl_blocking_pool *p = arg;
    pthread_setname_np(pthread_self(), "rl-blocking");
    pthread_mutex_lock(&p->lock);
    for (;;) {
        /* Surplus after a lower cap (rl_blocking_configure): leave at once,
         * before taking a job, so the cap holds for what is queued now. */
        if (p->threads > p->max_threads)
            break;
        struct rl_blocking_job *j = take_job(p);
        if (j) {
            pthread_mutex_unlock(&p->lock);
            j->run(j); /* may free j */
            pthread_mutex_lock(&p->lock);
            if (p->head == NULL && !p->shutdown &&
                p->threads <= p->max_threads) {
                unsigned spin_us = p->spin_us;
                p->spinning++;
                pthread_mutex_unlock(&p->lock);
                spin_for_work(p, spin_us);
                pthread_mutex_lock(&p->lock);
                p->spinning--;
            }
            continue;
        }
        if (p->shutdown)
            break;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += p->idle_ms / 1000;
        until.tv_nsec += (long)(p->idle_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        p->parked++;
        int res = pthread_cond_timedwait(&p->work, &p->lock, &until);
        p->parked--;
        if (res == ETIMEDOUT && p->head == NULL)
            break; /* idle too long: retire */
    }
    if (p->exit_hook) {
        pthread_mutex_unlock(&p->lock);
        p->exit_hook();
        pthread_mutex_lock(&p->lock);
    }
    p->threads--;
    /* A job queued while the hook ran found this thread still counted. */
    if (p->head && !p->shutdown && p->threads < p->max_threads &&
        p->parked == 0)
        (void)start_thread(p);
    if (p->threads == 0)
        pthread_cond_broadcast(&p->exited);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Lock held. */
static int
start_thread(struct rl_blocking_pool *p)
{
    pthread_attr_t attr;
    pthread_t tid;
    int res = pthread_attr_init(&attr);
    if (res != 0)
        return -res;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    res = pthread_create(&tid, &attr, pool_thread, p);
    pthread_attr_destroy(&attr);
    if (res != 0)
        return -res;
    p->threads++;
    return 0;
}

int
rl_blocking_create(struct rl_blocking_pool **out, unsigned max_threads,
                   unsigned idle_ms, unsigned spin_us)
{
    struct rl_blocking_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, &ca);
    pthread_cond_init(&p->exited, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&p->nqueued, 0);
    p->max_threads = max_threads ? max_threads : 1;
    p->idle_ms = idle_ms;
    p->spin_us = spin_us;
    *out = p;
    return 0;
}

void
rl_blocking_set_exit_hook(struct rl_blocking_pool *p, void (*hook)(void))
{
    p->exit_hook = hook;
}

int
rl_blocking_submit(struct rl_blocking_pool *p, struct rl_blocking_job *job)
{
    pthread_mutex_lock(&p->lock);
    if (p->shutdown) {
        pthread_mutex_unlock(&p->lock);
        return -ESHUTDOWN;
    }
    job->next = NULL;
    job->prev = p->tail;
    job->queued = 1;
    if (p->tail)
        p->tail->next = job;
    else
        p->head = job;
    p->tail = job;
    unsigned queued =
        atomic_fetch_add_explicit(&p->nqueued, 1, memory_order_relaxed) + 1;
    int res = 0;
    if (p->spinning < queued) {
        if (p->parked > 0) {
            pthread_cond_signal(&p->work);
        } else if (p->threads < p->max_threads) {
            res = start_thread(p);
            if (res < 0 && p->threads > 0)
                res = 0; /* an existing thread will get to it */
        }
    }
    if (res < 0) {
        p->tail = job->prev;
        if (p->tail)
            p->tail->next = NULL;
        else
            p->head = NULL;
        job->queued = 0;
        atomic_fetch_sub_explicit(&p->nqueued, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&p->lock);
    return res;
}

struct rl_blocking_job *
rl_blocking_take(struct rl_blocking_pool *p)
{
    if (atomic_load_explicit(&p->nqueued, memory_order_relaxed) == 0)
        return NULL;
    pthread_mutex_lock(&p->lock);
    struct rl_blocking_job *j = take_job(p);
    pthread_mutex_unlock(&p->lock);
    return j;
}

int
rl_blocking_cancel(struct rl_blocking_pool *p, struct rl_blocking_job *job)
{
    pthread_mutex_lock(&p->lock);
    int removed = job->queued;
    if (removed) {
        if (job->prev)
            job->prev->next = job->next;
        else
            p->head = job->next;
        if (job->next)
            job->next->prev = job->prev;
        else
            p->tail = job->prev;
        job->next = job->prev = NULL;
        job->queued = 0;
        atomic_fetch_sub_explicit(&p->nqueued, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&p->lock);
    return removed;
}

void
rl_blocking_configure(struct rl_blocking_pool *p, unsigned max_threads,
                      unsigned idle_ms, unsigned spin_us)
{
    pthread_mutex_lock(&p->lock);
    p->max_threads = max_threads ? max_threads : 1;
    p->idle_ms = idle_ms;
    p->spin_us = spin_us;
    pthread_cond_broadcast(&p->work); /* let surplus or idle threads re-check */
    pthread_mutex_unlock(&p->lock);
}

void
rl_blocking_stats(struct rl_blocking_pool *p, struct rl_blocking_stats *out)
{
    pthread_mutex_lock(&p->lock);
    out->threads = p->threads;
    out->idle = p->parked + p->spinning;
    out->queued = atomic_load_explicit(&p->nqueued, memory_order_relaxed);
    out->max_threads = p->max_threads;
    pthread_mutex_unlock(&p->lock);
}

void
rl_blocking_shutdown(struct rl_blocking_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->shutdown = 1;
    pthread_cond_broadcast(&p->work);
    while (p->threads > 0)
        pthread_cond_wait(&p->exited, &p->lock);
    pthread_mutex_unlock(&p->lock);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->exited);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

void
rl_blocking_after_fork(struct rl_blocking_pool *p)
{
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->exited, NULL);
    p->head = p->tail = NULL; /* the parent's queued jobs are the parent's */
    atomic_store(&p->nqueued, 0);
    p->threads = p->parked = p->spinning = 0;
}
