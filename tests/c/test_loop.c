/*
 * test_loop.c - the core loop on a real ring: call_soon order and the
 * per-iteration snapshot, timers that never fire early, a sleeping loop
 * woken by another thread through the doorbell, bursty producers that keep
 * putting the loop to sleep and waking it (no lost wake-up: a lost one
 * hangs the test), and a clean close with the doorbell read still in
 * flight.
 */
#include "core/clock.h"
#include "core/common.h"
#include "core/loop.h"
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

struct work {
    struct rl_callback cb;
    int id;
    double due; /* for timers: the deadline given */
    double ran_at;
};

static int order[64], norder;
static int remote_expected, remote_seen; /* bursty test: stop after all */
static int late_or_early_ok = 1;

static int
run(struct rl_loop *loop, struct rl_callback *cb)
{
    struct work *w = rl_container_of(cb, struct work, cb);
    w->ran_at = rl_clock_now_s();
    if (w->due && w->ran_at < w->due)
        late_or_early_ok = 0;
    if (w->id == 1000) {
        if (++remote_seen == remote_expected)
            loop->stopping = 1;
        return 0;
    }
    order[norder++] = w->id;
    if (w->id == 99)
        loop->stopping = 1;
    return 0;
}

static void
nothing(struct rl_loop *loop)
{
}

static int
signalled(struct rl_loop *loop)
{
    return 0;
}

static const struct rl_loop_hooks hooks = {run, nothing, nothing, signalled};

/* Runs the loop until a callback stops it; returns the iterations made. */
static int
run_until_stopped(struct rl_loop *loop)
{
    int iterations = 0, ok = 1;
    CHECK(rl_loop_prepare_run(loop) == 0);
    while (!loop->stopping) {
        ok &= rl_loop_run_once(loop) == 0;
        iterations++;
    }
    CHECK(ok);
    loop->stopping = 0;
    return iterations;
}

static void
test_call_soon_and_timers(struct rl_loop *loop)
{
    static struct work w[6];
    double now = rl_clock_now_s();
    memset(w, 0, sizeof(w));
    for (int i = 0; i < 6; i++) {
        w[i].id = i;
        rl_timer_init(&w[i].cb.timer);
    }
    /* Timers 0..2 at +3ms, +1ms, +1ms; callbacks 3, 4 now; 5 stops. */
    w[0].due = now + 0.003;
    w[1].due = w[2].due = now + 0.001;
    for (int i = 0; i < 3; i++)
        CHECK(rl_loop_call_at(loop, &w[i].cb, w[i].due) == 0);
    CHECK(rl_loop_call_soon(loop, &w[3].cb) == 0);
    CHECK(rl_loop_call_soon(loop, &w[4].cb) == 0);
    w[5].id = 99;
    w[5].due = now + 0.005;
    CHECK(rl_loop_call_at(loop, &w[5].cb, w[5].due) == 0);
    norder = 0;
    run_until_stopped(loop);
    int expected[] = {3, 4, 1, 2, 0, 99};
    CHECK(norder == 6);
    CHECK(memcmp(order, expected, sizeof(expected)) == 0);
    CHECK(late_or_early_ok);
}

static struct rl_loop *shared_loop;
static struct work remote_work;

static void *
wake_later(void *arg)
{
    usleep(20000); /* let the loop go to sleep first */
    rl_loop_call_soon_threadsafe(shared_loop, &remote_work.cb);
    return NULL;
}

static void
test_doorbell_wakes_sleeping_loop(struct rl_loop *loop)
{
    /* No timers and nothing ready: the loop sleeps with no time limit
     * until the other thread's callback arrives. */
    shared_loop = loop;
    memset(&remote_work, 0, sizeof(remote_work));
    remote_work.id = 99;
    rl_timer_init(&remote_work.cb.timer);
    pthread_t t;
    pthread_create(&t, NULL, wake_later, NULL);
    norder = 0;
    int iterations = run_until_stopped(loop);
    pthread_join(t, NULL);
    CHECK(norder == 1 && order[0] == 99);
    /* The loop slept until woken: a doorbell that completes without
     * waiting would spin through thousands of iterations instead. */
    CHECK(iterations < 20);
}

enum { PRODUCERS = 4, PER_PRODUCER = 5000 };
static struct work bursty[PRODUCERS][PER_PRODUCER];

static void *
produce_bursts(void *arg)
{
    struct work *mine = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        rl_loop_call_soon_threadsafe(shared_loop, &mine[i].cb);
        if (i % 64 == 0)
            usleep(50); /* let the loop fall asleep again */
    }
    return NULL;
}

static void
test_bursty_producers(struct rl_loop *loop)
{
    shared_loop = loop;
    remote_expected = PRODUCERS * PER_PRODUCER;
    remote_seen = 0;
    pthread_t t[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) {
        for (int i = 0; i < PER_PRODUCER; i++) {
            bursty[p][i].id = 1000;
            rl_timer_init(&bursty[p][i].cb.timer);
        }
        pthread_create(&t[p], NULL, produce_bursts, bursty[p]);
    }
    run_until_stopped(loop);
    for (int p = 0; p < PRODUCERS; p++)
        pthread_join(t[p], NULL);
    CHECK(remote_seen == remote_expected);
}

int
main(void)
{
    struct rl_loop loop;
    int res = rl_loop_init(&loop, &hooks);
    if (res == -ENOSYS || res == -EPERM) {
        printf("test_loop: io_uring unavailable (%s)\n", strerror(-res));
        return 77;
    }
    CHECK(res == 0);
    test_call_soon_and_timers(&loop);
    test_doorbell_wakes_sleeping_loop(&loop);
    test_bursty_producers(&loop);
    CHECK(rl_ring_inflight(loop.ring) == 1); /* the doorbell read */
    rl_loop_fini(&loop);
    return check_report("test_loop");
}
