/*
 * test_queues.c - the ready ring (FIFO across growth and wrap-around) and
 * the cross-thread MPSC queue (several producers, every node delivered
 * exactly once and in per-producer order; the sleep handshake).
 */
#include "core/mpsc.h"
#include "core/ready.h"
#include "check.h"

#include <pthread.h>
#include <stdlib.h>

static void
test_ready_fifo(void)
{
    struct rl_ready q;
    rl_ready_init(&q);
    static int items[5000];
    int ok = 1, next_pop = 0;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 1000; i++)
            CHECK(rl_ready_push(&q, &items[round * 1000 + i]) == 0);
        for (int i = 0; i < 700; i++)
            ok &= rl_ready_pop(&q) == &items[next_pop++];
    }
    while (q.len)
        ok &= rl_ready_pop(&q) == &items[next_pop++];
    CHECK(ok);
    CHECK(next_pop == 5000);
    CHECK(rl_ready_pop(&q) == NULL);
    rl_ready_free(&q);
}

enum { PRODUCERS = 4, PER_PRODUCER = 200000 };

struct item {
    struct rl_mpsc_node node;
    int producer;
    int seq;
};

static struct rl_mpsc queue;
static struct item *items[PRODUCERS];

static void *
produce(void *arg)
{
    int p = (int)(long)arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        items[p][i].producer = p;
        items[p][i].seq = i;
        rl_mpsc_push(&queue, &items[p][i].node);
    }
    return NULL;
}

static void
test_mpsc_threads(void)
{
    rl_mpsc_init(&queue);
    pthread_t threads[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) {
        items[p] = calloc(PER_PRODUCER, sizeof(struct item));
        pthread_create(&threads[p], NULL, produce, (void *)(long)p);
    }
    int next[PRODUCERS] = {0}, total = 0, ordered = 1;
    while (total < PRODUCERS * PER_PRODUCER) {
        struct rl_mpsc_node *n = rl_mpsc_pop(&queue);
        if (n == NULL)
            continue;
        struct item *it = (struct item *)n;
        ordered &= it->seq == next[it->producer];
        next[it->producer]++;
        total++;
    }
    for (int p = 0; p < PRODUCERS; p++)
        pthread_join(threads[p], NULL);
    CHECK(ordered);
    CHECK(total == PRODUCERS * PER_PRODUCER);
    CHECK(rl_mpsc_pop(&queue) == NULL);
    CHECK(rl_mpsc_empty(&queue));
    for (int p = 0; p < PRODUCERS; p++)
        free(items[p]);
}

static void
test_sleep_handshake(void)
{
    struct rl_mpsc q;
    struct item a;
    rl_mpsc_init(&q);
    /* Not sleeping: a push needs no doorbell. */
    CHECK(rl_mpsc_push(&q, &a.node) == 0);
    /* Work is queued: the consumer must not sleep. */
    CHECK(rl_mpsc_prepare_sleep(&q) == 1);
    CHECK(rl_mpsc_pop(&q) == &a.node);
    /* Empty: the consumer may sleep, and the next push rings once. */
    CHECK(rl_mpsc_prepare_sleep(&q) == 0);
    CHECK(rl_mpsc_push(&q, &a.node) == 1);
    CHECK(rl_mpsc_pop(&q) == &a.node);
    rl_mpsc_end_sleep(&q);
}

int
main(void)
{
    test_ready_fifo();
    test_mpsc_threads();
    test_sleep_handshake();
    return check_report("test_queues");
}
