/*
 * sched.c - the C runtime's workers (see sched.h): each runs C tasks from
 * its LIFO slot and local queue, pulls from the inject queue, steals half
 * of a random sibling's queue, polls its own ring between tasks, and parks
 * in that ring when it has nothing to run.
 *
 * Per tick: every 61st task comes from the inject queue first (fairness
 * for outside spawns); otherwise the LIFO slot (at most 3 in a row, then
 * its occupant goes to the back of the local queue), the local queue, a
 * batch from the inject queue. Every 128 tasks (the coop budget) the ring
 * is submitted and reaped without blocking, so completions and their
 * continuations are not starved by a busy queue.
 *
 * Parking: each worker keeps a read of its eventfd queued on its ring and
 * blocks in rl_ring_submit_and_wait(ring, -1), so both an unpark and any
 * completion of its own ops wake it. park_state (EMPTY/PARKED/NOTIFIED, as
 * Tokio's Parker) makes an unpark cost a system call only when the worker
 * is really parked: unpark swaps in NOTIFIED and writes the eventfd only
 * if it replaced PARKED; a worker about to park sees NOTIFIED and does not
 * block. Who to wake comes from sched_idle (at most one wake per batch of
 * new work, none while a worker is searching). No work is stranded: a
 * worker parks only with its LIFO slot, local queue and the inject queue
 * empty; outside spawns notify; and the last searcher to stop searching
 * (to park, or to run what it found) re-scans every queue afterwards.
 *
 * Shutdown: the inject queue is closed (outside spawns get -ESHUTDOWN from
 * then on, and every spawn accepted before stays queued), then every
 * worker is woken. A worker exits once shutdown has begun and it has no
 * task in its LIFO slot or local queue, the inject queue is empty, and its
 * ring has nothing in flight but the doorbell; it then closes its ring on
 * its own thread (which cancels the doorbell and delivers its completion).
 * Spawns made by tasks and completions on a worker are still accepted
 * during shutdown, so running pipelines finish; they land on that worker
 * (or the inject queue, which it drains) before it may exit.
 *
 * Start-up: the rings are opened by rl_sched_start and enabled by their
 * workers (single issuer), which report back before it returns, so a
 * failure is an error code, not an abort.
 *
 * Threads: rl_sched_spawn and rl_sched_stats from any thread; everything
 * with a struct rl_worker on that worker's thread; start/close/shutdown
 * by the owning thread. Workers never take the GIL.
 */
#define _GNU_SOURCE
#include "core/sched.h"
#include "core/common.h"
#include "core/ring.h"
#include "core/sched_idle.h"
#include "core/sched_inject.h"
#include "core/sched_queue.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum {
    GLOBAL_QUEUE_INTERVAL = 61, /* ticks between inject-first checks */
    BUDGET = 128,               /* tasks between non-blocking ring polls */
    MAX_LIFO_POLLS = 3,         /* LIFO tasks run in a row */
    MAX_INJECT_BATCH = 128,
};

enum { PARK_EMPTY, PARK_PARKED, PARK_NOTIFIED };

/* Counters written by their worker only: relaxed load + store, no RMW
 * (except wakeups, see below). */
typedef _Atomic unsigned long long counter;

static inline void
bump(counter *c, unsigned long long by)
{
    atomic_store_explicit(
        c, atomic_load_explicit(c, memory_order_relaxed) + by,
        memory_order_relaxed);
}

struct rl_worker {
    /* Own cache lines: the array is allocated 64-byte aligned. */
    _Alignas(64) struct rl_sched_queue queue;
    struct rl_sched *sched;
    struct rl_ring *ring;
    struct rl_task *lifo;
    unsigned index;
    unsigned lifo_polls; /* LIFO tasks run in a row */
    unsigned tick;
    unsigned budget; /* tasks since the last ring poll */
    uint32_t rng;
    int searching;
    int exiting;
    atomic_int park_state;
    int doorbell_fd;
    int doorbell_armed;
    struct rl_op doorbell_op;
    uint64_t doorbell_value;
    pthread_t thread;
    int started;
    struct {
        counter tasks, lifo, steals, stolen, injected, overflows, parks,
            polls;
        counter wakeups; /* the only one bumped by other threads (an RMW) */
    } stats;
};

struct rl_sched {
    unsigned nworkers;
    struct rl_worker *workers;
    struct rl_sched_inject inject;
    struct rl_sched_idle idle;
    atomic_int shutdown;
    /* Outside spawns still inside rl_sched_spawn: shutdown frees nothing
     * before they have left. */
    atomic_int spawning;
    /* Start-up: workers report whether their ring could be enabled. */
    pthread_mutex_t start_lock;
    pthread_cond_t start_cond;
    unsigned start_reported; /* under start_lock */
    int start_error;         /* under start_lock: first -errno */
};

static _Thread_local struct rl_worker *current;

/* ---- waking ---------------------------------------------------------- */

static void
unpark(struct rl_worker *w)
{
    /* seq_cst swap: pairs with the worker's CAS to PARKED. */
    if (atomic_exchange(&w->park_state, PARK_NOTIFIED) == PARK_PARKED) {
        uint64_t one = 1;
        ssize_t n = write(w->doorbell_fd, &one, sizeof(one));
        (void)n; /* cannot fail for a live eventfd and an 8-byte write */
        atomic_fetch_add_explicit(&w->stats.wakeups, 1, memory_order_relaxed);
    }
}

/* New work is somewhere: wake one parked worker unless one is searching. */
static void
notify_parked(struct rl_sched *s)
{
    int index = rl_sched_idle_worker_to_notify(&s->idle);
    if (index >= 0)
        unpark(&s->workers[index]);
}

/* The last searcher stopped searching (it parks, or runs what it found):
 * re-scan, so work queued while it searched (by someone who saw it
 * searching and did not notify) gets a worker. */
static void
notify_if_work_pending(struct rl_sched *s)
{
    for (unsigned i = 0; i < s->nworkers; i++) {
        if (rl_sched_queue_len(&s->workers[i].queue)) {
            notify_parked(s);
            return;
        }
    }
    if (rl_sched_inject_len(&s->inject))
        notify_parked(s);
}

/* ---- the doorbell ---------------------------------------------------- */

static void arm_doorbell(struct rl_worker *w);

static void
doorbell_complete(struct rl_op *op, int res, unsigned flags)
{
    struct rl_worker *w = rl_container_of(op, struct rl_worker, doorbell_op);
    w->doorbell_armed = 0;
    if (!w->exiting && res != -ECANCELED)
        arm_doorbell(w);
}

static void
arm_doorbell(struct rl_worker *w)
{
    if (rl_ring_read(w->ring, &w->doorbell_op, w->doorbell_fd,
                     &w->doorbell_value, sizeof(w->doorbell_value)) == 0)
        w->doorbell_armed = 1;
}

/* ---- queues ---------------------------------------------------------- */

/* Back of the local queue; a full queue moves half to the inject queue. */
static void
push_local(struct rl_worker *w, struct rl_task *t)
{
    unsigned n;
    struct rl_task *batch = rl_sched_queue_push(&w->queue, t, &n);
    if (batch) {
        rl_sched_inject_push_batch(&w->sched->inject, batch, t, n);
        bump(&w->stats.overflows, 1);
    }
}

/* A batch from the inject queue: runs the first, queues the rest. */
static struct rl_task *
pull_inject(struct rl_worker *w)
{
    struct rl_sched *s = w->sched;
    size_t len = rl_sched_inject_len(&s->inject);
    if (!len)
        return NULL;
    size_t max = len / s->nworkers + 1;
    size_t room = rl_sched_queue_room(&w->queue) + 1;
    if (max > room)
        max = room;
    if (max > MAX_INJECT_BATCH)
        max = MAX_INJECT_BATCH;
    size_t n;
    struct rl_task *first = rl_sched_inject_pop(&s->inject, max, &n);
    if (!first)
        return NULL;
    bump(&w->stats.injected, n);
    for (struct rl_task *t = first->next, *next; t; t = next) {
        next = t->next;
        push_local(w, t);
    }
    if (n > 1) /* stealable work: let a parked worker share it */
        notify_parked(s);
    return first;
}

static struct rl_task *
next_task(struct rl_worker *w)
{
    struct rl_task *t;
    if (++w->tick % GLOBAL_QUEUE_INTERVAL == 0 &&
        rl_sched_inject_len(&w->sched->inject)) {
        size_t n;
        t = rl_sched_inject_pop(&w->sched->inject, 1, &n);
        if (t) {
            bump(&w->stats.injected, 1);
            return t;
        }
    }
    if (w->lifo) {
        t = w->lifo;
        w->lifo = NULL;
        if (w->lifo_polls < MAX_LIFO_POLLS) {
            w->lifo_polls++;
            bump(&w->stats.lifo, 1);
            return t;
        }
        /* A LIFO chain ran long enough: let the queue have a turn. No
         * notify: with an empty queue we pop it right back, and waking a
         * sibling would only make a sequential chain migrate. */
        push_local(w, t);
    }
    w->lifo_polls = 0;
    t = rl_sched_queue_pop(&w->queue);
    if (t)
        return t;
    return pull_inject(w);
}

static uint32_t
next_random(struct rl_worker *w)
{
    uint32_t x = w->rng; /* xorshift32 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return w->rng = x;
}

static struct rl_task *
steal_work(struct rl_worker *w)
{
    struct rl_sched *s = w->sched;
    if (!w->searching) {
        if (!rl_sched_idle_to_searching(&s->idle))
            return NULL;
        w->searching = 1;
    }
    unsigned n = s->nworkers, start = next_random(w) % n;
    for (unsigned i = 0; i < n; i++) {
        struct rl_worker *victim = &s->workers[(start + i) % n];
        if (victim == w)
            continue;
        unsigned count;
        struct rl_task *t =
            rl_sched_queue_steal_into(&victim->queue, &w->queue, &count);
        if (t) {
            bump(&w->stats.steals, 1);
            bump(&w->stats.stolen, count);
            return t;
        }
    }
    return pull_inject(w);
}

/* ---- running --------------------------------------------------------- */

/* Submits queued ops and delivers ready completions, without blocking. */
static int
poll_ring(struct rl_worker *w)
{
    if (rl_ring_needs_enter(w->ring))
        rl_ring_submit_and_wait(w->ring, 0);
    return rl_ring_dispatch(w->ring);
}

static void
run_task(struct rl_worker *w, struct rl_task *t)
{
    if (w->searching) {
        w->searching = 0;
        /* The last searcher found work: if more is queued (a stolen
         * batch, spawns that counted on us while we searched), wake
         * another worker to take it. Tokio wakes one unconditionally;
         * looking first saves a wake-up per job handed to an idle
         * runtime. The re-scan follows our seq_cst decrement, so a
         * spawner either saw no searcher (and notified itself) or its
         * task is visible to the scan. */
        if (rl_sched_idle_from_searching(&w->sched->idle))
            notify_if_work_pending(w->sched);
    }
    t->run(t, w);
    bump(&w->stats.tasks, 1);
    if (++w->budget >= BUDGET) {
        w->budget = 0;
        bump(&w->stats.polls, 1);
        poll_ring(w);
    }
}

static int
may_exit(struct rl_worker *w)
{
    struct rl_sched *s = w->sched;
    return atomic_load(&s->shutdown) && !w->lifo &&
           rl_sched_queue_len(&w->queue) == 0 &&
           rl_sched_inject_len(&s->inject) == 0 &&
           rl_ring_inflight(w->ring) <= (unsigned)w->doorbell_armed;
}

static void
park(struct rl_worker *w)
{
    struct rl_sched *s = w->sched;
    if (rl_sched_idle_to_parked(&s->idle, w->index, w->searching))
        notify_if_work_pending(s);
    w->searching = 0;
    if (!w->doorbell_armed)
        arm_doorbell(w);
    int expected = PARK_EMPTY;
    /* seq_cst: pairs with unpark's swap (no lost wake-up). */
    if (atomic_compare_exchange_strong(&w->park_state, &expected,
                                       PARK_PARKED)) {
        bump(&w->stats.parks, 1);
        /* Without a doorbell (the queue refused it) nap, never hang. */
        int res = rl_ring_submit_and_wait(w->ring,
                                          w->doorbell_armed ? -1 : 1000000);
        if (res < 0 && res != -ETIME && res != -EINTR && res != -EAGAIN &&
            res != -EBUSY)
            rl_fatal("sched: worker %u ring wait failed: %s", w->index,
                     strerror(-res));
    }
    /* A swap, not a store: reading an unparker's NOTIFIED synchronizes
     * with it, so what it published before (the shutdown flag, drained
     * queues) is visible to the checks that follow. An unpark that still
     * saw PARKED after we woke only costs a spurious wake-up later. */
    atomic_exchange(&w->park_state, PARK_EMPTY);
    w->searching = rl_sched_idle_from_parked(&s->idle, w->index);
    rl_ring_dispatch(w->ring);
}

static void *
worker_main(void *arg)
{
    struct rl_worker *w = arg;
    current = w;
    char name[16];
    snprintf(name, sizeof(name), "rl-worker-%u", w->index);
    pthread_setname_np(pthread_self(), name);
    int res = rl_ring_enable(w->ring);
    struct rl_sched *s = w->sched;
    pthread_mutex_lock(&s->start_lock);
    if (res < 0 && s->start_error == 0)
        s->start_error = res;
    s->start_reported++;
    pthread_cond_signal(&s->start_cond);
    pthread_mutex_unlock(&s->start_lock);
    if (res < 0) {
        current = NULL;
        return NULL; /* rl_sched_start shuts down and reports res */
    }
    arm_doorbell(w);
    for (;;) {
        struct rl_task *t = next_task(w);
        if (!t) {
            w->budget = 0;
            if (poll_ring(w) > 0)
                continue; /* completions may have spawned tasks */
            t = steal_work(w);
        }
        if (t) {
            run_task(w, t);
            continue;
        }
        if (may_exit(w))
            break;
        park(w);
    }
    if (w->searching)
        rl_sched_idle_from_searching(&w->sched->idle);
    /* Siblings that parked while work remained (ops in flight, tasks
     * we then ran) re-check whether they may exit too. */
    for (unsigned i = 0; i < w->sched->nworkers; i++)
        if (i != w->index)
            unpark(&w->sched->workers[i]);
    w->exiting = 1;
    rl_ring_close(w->ring); /* cancels the doorbell, delivers it */
    w->ring = NULL;
    current = NULL;
    return NULL;
}

/* ---- the API --------------------------------------------------------- */

int
rl_sched_spawn(struct rl_sched *s, struct rl_task *t)
{
    struct rl_worker *w = current;
    if (w && w->sched == s) {
        /* From a task or completion on this worker: the LIFO slot; the
         * previous occupant becomes stealable. */
        struct rl_task *prev = w->lifo;
        w->lifo = t;
        if (prev) {
            push_local(w, prev);
            notify_parked(s);
        }
        return 0;
    }
    atomic_fetch_add(&s->spawning, 1);
    int res = rl_sched_inject_push(&s->inject, t);
    if (res == 0)
        notify_parked(s);
    atomic_fetch_sub_explicit(&s->spawning, 1, memory_order_release);
    return res;
}

static void
free_sched(struct rl_sched *s)
{
    for (unsigned i = 0; i < s->nworkers; i++) {
        struct rl_worker *w = &s->workers[i];
        if (w->ring)
            rl_ring_close(w->ring);
        if (w->doorbell_fd >= 0)
            close(w->doorbell_fd);
    }
    rl_sched_idle_destroy(&s->idle);
    rl_sched_inject_destroy(&s->inject);
    pthread_cond_destroy(&s->start_cond);
    pthread_mutex_destroy(&s->start_lock);
    free(s->workers);
    free(s);
}

void
rl_sched_close(struct rl_sched *s)
{
    rl_sched_inject_close(&s->inject);
}

static void
stop_and_join(struct rl_sched *s)
{
    rl_sched_inject_close(&s->inject);
    atomic_store(&s->shutdown, 1);
    for (unsigned i = 0; i < s->nworkers; i++)
        if (s->workers[i].started)
            unpark(&s->workers[i]);
    for (unsigned i = 0; i < s->nworkers; i++) {
        if (s->workers[i].started)
            pthread_join(s->workers[i].thread, NULL);
        s->workers[i].started = 0;
    }
    /* A spawn accepted just before the close may still be notifying. */
    while (atomic_load_explicit(&s->spawning, memory_order_acquire))
        sched_yield();
}

int
rl_sched_start(struct rl_sched **out, unsigned workers)
{
    if (workers == 0)
        return -EINVAL;
    struct rl_sched *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->nworkers = workers;
    atomic_init(&s->shutdown, 0);
    atomic_init(&s->spawning, 0);
    /* Default attributes: these cannot fail on Linux. */
    pthread_mutex_init(&s->start_lock, NULL);
    pthread_cond_init(&s->start_cond, NULL);
    int res = -ENOMEM;
    s->workers = aligned_alloc(64, ((workers * sizeof(struct rl_worker) +
                                     63) / 64) * 64);
    if (!s->workers)
        goto fail_alloc;
    memset(s->workers, 0, workers * sizeof(struct rl_worker));
    for (unsigned i = 0; i < workers; i++)
        s->workers[i].doorbell_fd = -1;
    res = rl_sched_inject_init(&s->inject);
    if (res < 0)
        goto fail_inject;
    res = rl_sched_idle_init(&s->idle, workers);
    if (res < 0)
        goto fail_idle;
    for (unsigned i = 0; i < workers; i++) {
        struct rl_worker *w = &s->workers[i];
        rl_sched_queue_init(&w->queue);
        w->sched = s;
        w->index = i;
        w->rng = 0x9e3779b9u * (i + 1);
        w->doorbell_op.complete = doorbell_complete;
        atomic_init(&w->park_state, PARK_EMPTY);
        /* Blocking on purpose (see loop.c): io_uring may answer a read of
         * an O_NONBLOCK file with -EAGAIN instead of waiting. */
        w->doorbell_fd = eventfd(0, EFD_CLOEXEC);
        if (w->doorbell_fd < 0) {
            res = -errno;
            goto fail_workers;
        }
        res = rl_ring_open(&w->ring);
        if (res < 0)
            goto fail_workers;
    }
    /* Workers take no signals: the process's handlers run elsewhere. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 0; i < workers; i++) {
        res = -pthread_create(&s->workers[i].thread, NULL, worker_main,
                              &s->workers[i]);
        if (res < 0)
            break;
        s->workers[i].started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* Wait until every started worker owns its ring (or failed to). */
    pthread_mutex_lock(&s->start_lock);
    unsigned started = 0;
    for (unsigned i = 0; i < workers; i++)
        started += s->workers[i].started;
    while (s->start_reported < started)
        pthread_cond_wait(&s->start_cond, &s->start_lock);
    if (res == 0)
        res = s->start_error;
    pthread_mutex_unlock(&s->start_lock);
    if (res < 0) {
        stop_and_join(s);
        free_sched(s);
        return res;
    }
    *out = s;
    return 0;

fail_workers:
    free_sched(s);
    return res;
fail_idle:
    rl_sched_inject_destroy(&s->inject);
fail_inject:
    free(s->workers);
fail_alloc:
    pthread_cond_destroy(&s->start_cond);
    pthread_mutex_destroy(&s->start_lock);
    free(s);
    return res;
}

void
rl_sched_shutdown(struct rl_sched *s)
{
    if (current)
        rl_fatal("rl_sched_shutdown called from a worker");
    stop_and_join(s);
    free_sched(s);
}

struct rl_worker *
rl_sched_current(void)
{
    return current;
}

struct rl_ring *
rl_worker_ring(struct rl_worker *w)
{
    return w->ring;
}

struct rl_sched *
rl_worker_sched(struct rl_worker *w)
{
    return w->sched;
}

unsigned
rl_worker_index(const struct rl_worker *w)
{
    return w->index;
}

unsigned
rl_sched_workers(const struct rl_sched *s)
{
    return s->nworkers;
}

void
rl_sched_stats(const struct rl_sched *s, unsigned i,
               struct rl_sched_stats *out)
{
    struct rl_worker *w = &s->workers[i];
#define GET(f) out->f = atomic_load_explicit(&w->stats.f, memory_order_relaxed)
    GET(tasks);
    GET(lifo);
    GET(steals);
    GET(stolen);
    GET(injected);
    GET(overflows);
    GET(parks);
    GET(polls);
    GET(wakeups);
#undef GET
}
