/*
 * test_sched_queue.c - the scheduler's queues on their own: the bounded
 * local queue (FIFO, overflow of the oldest half, steal-half, and an owner
 * racing several stealers with every task taken exactly once), the inject
 * queue (batches, close, concurrent producers and consumers) and the idle
 * accounting (searching cap, notify only when nobody searches).
 */
#include "core/sched.h"
#include "core/sched_idle.h"
#include "core/sched_inject.h"
#include "core/sched_queue.h"
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

struct item {
    struct rl_task task;
    unsigned id;
    atomic_int taken;
};

static void
noop(struct rl_task *t, struct rl_worker *w)
{
}

static struct item *
items_new(unsigned n)
{
    struct item *it = calloc(n, sizeof(*it));
    for (unsigned i = 0; i < n; i++) {
        it[i].task.run = noop;
        it[i].id = i;
    }
    return it;
}

static unsigned
id_of(struct rl_task *t)
{
    return ((struct item *)t)->id;
}

static void
test_fifo_and_overflow(void)
{
    static struct rl_sched_queue q;
    rl_sched_queue_init(&q);
    struct item *it = items_new(300);
    unsigned n = 0;
    CHECK(rl_sched_queue_pop(&q) == NULL);
    CHECK(rl_sched_queue_room(&q) == RL_SCHED_QUEUE_CAP);
    int ok = 1;
    for (unsigned i = 0; i < RL_SCHED_QUEUE_CAP; i++)
        ok &= rl_sched_queue_push(&q, &it[i].task, &n) == NULL;
    CHECK(ok);
    CHECK(rl_sched_queue_len(&q) == RL_SCHED_QUEUE_CAP);
    CHECK(rl_sched_queue_room(&q) == 0);
    /* Full: the oldest half and the new task come back, in order. */
    struct rl_task *batch = rl_sched_queue_push(&q, &it[256].task, &n);
    CHECK(batch != NULL);
    CHECK(n == RL_SCHED_QUEUE_CAP / 2 + 1);
    unsigned count = 0;
    ok = 1;
    for (struct rl_task *t = batch; t; t = t->next, count++)
        ok &= id_of(t) == (count < 128 ? count : 256);
    CHECK(ok);
    CHECK(count == 129);
    CHECK(rl_sched_queue_len(&q) == 128);
    /* The rest pops in FIFO order, across the wrap of the ring. */
    for (unsigned i = 257; i < 300; i++)
        ok &= rl_sched_queue_push(&q, &it[i].task, &n) == NULL;
    unsigned expect = 128;
    struct rl_task *t;
    while ((t = rl_sched_queue_pop(&q))) {
        ok &= id_of(t) == expect;
        expect = expect == 255 ? 257 : expect + 1;
    }
    CHECK(ok);
    CHECK(expect == 300);
    free(it);
}

static void
test_steal_half(void)
{
    static struct rl_sched_queue src, dst;
    rl_sched_queue_init(&src);
    rl_sched_queue_init(&dst);
    struct item *it = items_new(10);
    unsigned n = 0;
    for (unsigned i = 0; i < 9; i++)
        rl_sched_queue_push(&src, &it[i].task, &n);
    struct rl_task *t = rl_sched_queue_steal_into(&src, &dst, &n);
    CHECK(t != NULL);
    CHECK(n == 5); /* half, rounded up */
    CHECK(t && id_of(t) == 4); /* the last stolen runs now */
    CHECK(rl_sched_queue_len(&dst) == 4);
    CHECK(rl_sched_queue_len(&src) == 4);
    CHECK(id_of(rl_sched_queue_pop(&dst)) == 0);
    CHECK(id_of(rl_sched_queue_pop(&src)) == 5);
    /* A single task can be stolen too. */
    static struct rl_sched_queue one, empty;
    rl_sched_queue_init(&one);
    rl_sched_queue_init(&empty);
    rl_sched_queue_push(&one, &it[9].task, &n);
    t = rl_sched_queue_steal_into(&one, &empty, &n);
    CHECK(t && id_of(t) == 9 && n == 1);
    CHECK(rl_sched_queue_len(&empty) == 0);
    CHECK(rl_sched_queue_steal_into(&one, &empty, &n) == NULL);
    free(it);
}

/* One owner pushing and popping, STEALERS stealing; every task must be
 * taken exactly once, by a pop, a steal or an overflow. */
enum { STEALERS = 3 };

static struct rl_sched_queue race_q;
static atomic_int race_done;
static unsigned race_n;
static struct item *race_items;

static void
take(struct rl_task *t)
{
    atomic_fetch_add_explicit(&((struct item *)t)->taken, 1,
                              memory_order_relaxed);
}

static void *
stealer(void *arg)
{
    struct rl_sched_queue *mine = calloc(1, sizeof(*mine));
    rl_sched_queue_init(mine);
    unsigned n;
    for (;;) {
        int done = atomic_load(&race_done);
        struct rl_task *t = rl_sched_queue_steal_into(&race_q, mine, &n);
        if (t) {
            take(t);
            while ((t = rl_sched_queue_pop(mine)))
                take(t);
        } else if (done) {
            break;
        }
    }
    free(mine);
    return NULL;
}

static void
test_concurrent_steal(void)
{
    race_n = SANITIZED ? 100000 : 2000000;
    race_items = items_new(race_n);
    rl_sched_queue_init(&race_q);
    atomic_store(&race_done, 0);
    pthread_t th[STEALERS];
    for (int i = 0; i < STEALERS; i++)
        pthread_create(&th[i], NULL, stealer, NULL);
    unsigned n, overflows = 0;
    for (unsigned i = 0; i < race_n; i++) {
        struct rl_task *batch =
            rl_sched_queue_push(&race_q, &race_items[i].task, &n);
        if (batch) {
            overflows++;
            for (struct rl_task *t = batch; t; t = t->next)
                take(t);
        }
        /* Pop now and then, so the queue both fills and drains. */
        if (i % 3 == 0) {
            struct rl_task *t = rl_sched_queue_pop(&race_q);
            if (t)
                take(t);
        }
    }
    struct rl_task *t;
    while ((t = rl_sched_queue_pop(&race_q)))
        take(t);
    atomic_store(&race_done, 1);
    for (int i = 0; i < STEALERS; i++)
        pthread_join(th[i], NULL);
    int ok = 1;
    for (unsigned i = 0; i < race_n; i++)
        ok &= atomic_load(&race_items[i].taken) == 1;
    CHECK(ok);
    printf("concurrent steal: %u tasks, %u overflows\n", race_n, overflows);
    free(race_items);
}

static void
test_inject_basic(void)
{
    struct rl_sched_inject q;
    CHECK(rl_sched_inject_init(&q) == 0);
    struct item *it = items_new(10);
    size_t n;
    CHECK(rl_sched_inject_pop(&q, 5, &n) == NULL && n == 0);
    for (unsigned i = 0; i < 3; i++)
        CHECK(rl_sched_inject_push(&q, &it[i].task) == 0);
    it[3].task.next = &it[4].task;
    rl_sched_inject_push_batch(&q, &it[3].task, &it[4].task, 2);
    CHECK(rl_sched_inject_len(&q) == 5);
    struct rl_task *t = rl_sched_inject_pop(&q, 2, &n);
    CHECK(n == 2 && id_of(t) == 0 && id_of(t->next) == 1 && !t->next->next);
    rl_sched_inject_close(&q);
    CHECK(rl_sched_inject_push(&q, &it[5].task) == -ESHUTDOWN);
    it[6].task.next = NULL;
    rl_sched_inject_push_batch(&q, &it[6].task, &it[6].task, 1);
    t = rl_sched_inject_pop(&q, 100, &n);
    CHECK(n == 4);
    unsigned expect[] = {2, 3, 4, 6}, i = 0;
    int ok = 1;
    for (; t; t = t->next)
        ok &= id_of(t) == expect[i++];
    CHECK(ok && i == 4);
    CHECK(rl_sched_inject_len(&q) == 0);
    rl_sched_inject_destroy(&q);
    free(it);
}

enum { INJ_PRODUCERS = 3, INJ_CONSUMERS = 2 };
static struct rl_sched_inject inj_q;
static struct item *inj_items;
static unsigned inj_per;
static atomic_uint inj_consumed;

static void *
inj_producer(void *arg)
{
    unsigned base = (unsigned)(size_t)arg * inj_per;
    for (unsigned i = 0; i < inj_per; i++)
        rl_sched_inject_push(&inj_q, &inj_items[base + i].task);
    return NULL;
}

static void *
inj_consumer(void *arg)
{
    size_t n;
    while (atomic_load(&inj_consumed) < inj_per * INJ_PRODUCERS) {
        struct rl_task *t = rl_sched_inject_pop(&inj_q, 7, &n);
        for (; t; t = t->next)
            take(t);
        atomic_fetch_add(&inj_consumed, (unsigned)n);
    }
    return NULL;
}

static void
test_inject_concurrent(void)
{
    inj_per = SANITIZED ? 20000 : 300000;
    inj_items = items_new(inj_per * INJ_PRODUCERS);
    rl_sched_inject_init(&inj_q);
    pthread_t th[INJ_PRODUCERS + INJ_CONSUMERS];
    for (size_t i = 0; i < INJ_PRODUCERS; i++)
        pthread_create(&th[i], NULL, inj_producer, (void *)i);
    for (size_t i = 0; i < INJ_CONSUMERS; i++)
        pthread_create(&th[INJ_PRODUCERS + i], NULL, inj_consumer, NULL);
    for (int i = 0; i < INJ_PRODUCERS + INJ_CONSUMERS; i++)
        pthread_join(th[i], NULL);
    int ok = 1;
    for (unsigned i = 0; i < inj_per * INJ_PRODUCERS; i++)
        ok &= atomic_load(&inj_items[i].taken) == 1;
    CHECK(ok);
    CHECK(rl_sched_inject_len(&inj_q) == 0);
    rl_sched_inject_destroy(&inj_q);
    free(inj_items);
}

static void
test_idle(void)
{
    struct rl_sched_idle idle;
    CHECK(rl_sched_idle_init(&idle, 4) == 0);
    CHECK(rl_sched_idle_unparked(&idle) == 4);
    /* Nobody parked: nobody to wake. */
    CHECK(rl_sched_idle_worker_to_notify(&idle) == -1);
    /* At most half search. */
    CHECK(rl_sched_idle_to_searching(&idle) == 1);
    CHECK(rl_sched_idle_to_searching(&idle) == 1);
    CHECK(rl_sched_idle_to_searching(&idle) == 0);
    CHECK(rl_sched_idle_searching(&idle) == 2);
    /* Worker 3 parks as a non-searcher, worker 2 as a searcher. */
    CHECK(rl_sched_idle_to_parked(&idle, 3, 0) == 0);
    CHECK(rl_sched_idle_to_parked(&idle, 2, 1) == 0);
    CHECK(rl_sched_idle_unparked(&idle) == 2);
    /* Still a searcher: a spawn wakes nobody. */
    CHECK(rl_sched_idle_worker_to_notify(&idle) == -1);
    /* The last searcher parking must re-scan. */
    CHECK(rl_sched_idle_to_parked(&idle, 1, 1) == 1);
    CHECK(rl_sched_idle_searching(&idle) == 0);
    /* Now a spawn wakes exactly one sleeper, counted as searching. */
    int woken = rl_sched_idle_worker_to_notify(&idle);
    CHECK(woken >= 1 && woken <= 3);
    CHECK(rl_sched_idle_searching(&idle) == 1);
    CHECK(rl_sched_idle_worker_to_notify(&idle) == -1);
    CHECK(rl_sched_idle_from_parked(&idle, (unsigned)woken) == 1);
    /* A sleeper woken by its own I/O is unparked, not searching. */
    unsigned other = woken == 3 ? 2 : 3;
    CHECK(rl_sched_idle_from_parked(&idle, other) == 0);
    CHECK(rl_sched_idle_unparked(&idle) == 3);
    CHECK(rl_sched_idle_from_searching(&idle) == 1);
    rl_sched_idle_destroy(&idle);
}

int
main(void)
{
    test_fifo_and_overflow();
    test_steal_half();
    test_concurrent_steal();
    test_inject_basic();
    test_inject_concurrent();
    test_idle();
    return check_report("test_sched_queue");
}
