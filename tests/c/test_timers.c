/*
 * test_timers.c - the timer heap: asyncio ordering (earliest first, FIFO
 * among equal deadlines), removal from any position, and a randomized
 * comparison against a sorted reference.
 */
#include "core/timers.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>

enum { N = 20000 };

static struct rl_timer timers[N];
static double deadline[N];
static int alive[N];

static int
index_of(struct rl_timer *t)
{
    return (int)(t - timers);
}

static void
test_fifo_among_equals(void)
{
    struct rl_timers h;
    rl_timers_init(&h);
    for (int i = 0; i < 100; i++) {
        rl_timer_init(&timers[i]);
        rl_timers_add(&h, &timers[i], i % 2 ? 5 : 7);
    }
    int expect_odd = 1, last = -1, ok = 1;
    struct rl_timer *t;
    while ((t = rl_timers_pop_due(&h, 100)) != NULL) {
        int i = index_of(t);
        if (expect_odd && i % 2 == 0) {
            expect_odd = 0;
            last = -1;
        }
        ok &= (i % 2 == (expect_odd ? 1 : 0)) && i > last;
        last = i;
    }
    CHECK(ok);
    CHECK(h.len == 0);
    rl_timers_free(&h);
}

static void
test_not_early(void)
{
    struct rl_timers h;
    rl_timers_init(&h);
    rl_timer_init(&timers[0]);
    rl_timers_add(&h, &timers[0], 1000);
    CHECK(rl_timers_pop_due(&h, 999) == NULL);
    CHECK(rl_timers_pop_due(&h, 1000) == &timers[0]);
    CHECK(!rl_timer_queued(&timers[0]));
    rl_timers_free(&h);
}

static void
test_sub_nanosecond_order(void)
{
    /* Deadlines a few ulps apart keep their order, whatever the
     * insertion order. */
    struct rl_timers h;
    rl_timers_init(&h);
    double base = 123456.789;
    double later = nextafter(nextafter(base, 1e9), 1e9);
    rl_timer_init(&timers[0]);
    rl_timer_init(&timers[1]);
    rl_timers_add(&h, &timers[0], later);
    rl_timers_add(&h, &timers[1], base);
    CHECK(rl_timers_pop_due(&h, later) == &timers[1]);
    CHECK(rl_timers_pop_due(&h, later) == &timers[0]);
    rl_timers_free(&h);
}

static void
test_random_against_reference(void)
{
    struct rl_timers h;
    rl_timers_init(&h);
    srand(7);
    for (int i = 0; i < N; i++) {
        rl_timer_init(&timers[i]);
        deadline[i] = rand() % 1000;
        rl_timers_add(&h, &timers[i], deadline[i]);
        alive[i] = 1;
    }
    /* Remove a third of them from arbitrary positions. */
    for (int i = 0; i < N; i += 3) {
        rl_timers_remove(&h, &timers[i]);
        alive[i] = 0;
    }
    rl_timers_remove(&h, &timers[0]); /* removing twice is a no-op */
    double prev_when = -1;
    int prev_index = -1, popped = 0, ordered = 1;
    struct rl_timer *t;
    while ((t = rl_timers_pop_due(&h, 1000)) != NULL) {
        int i = index_of(t);
        ordered &= alive[i];
        ordered &= deadline[i] > prev_when ||
                   (deadline[i] == prev_when && i > prev_index);
        prev_when = deadline[i];
        prev_index = i;
        alive[i] = 0;
        popped++;
    }
    CHECK(ordered);
    CHECK(popped == N - (N + 2) / 3);
    rl_timers_free(&h);
}

int
main(void)
{
    test_fifo_among_equals();
    test_not_early();
    test_sub_nanosecond_order();
    test_random_against_reference();
    return check_report("test_timers");
}
