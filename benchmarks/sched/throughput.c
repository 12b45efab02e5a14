/*
 * throughput.c - C task throughput of the work-stealing scheduler
 * (csrc/core/sched.h) with 1 and 2 workers, interleaved, median of
 * repeats. Workloads:
 *   inject  independent tasks spawned from an outside thread (the inject
 *           queue, notify/park/unpark);
 *   chain   each task spawns its successor (the LIFO path, one at a time);
 *   tree    a binary fan-out tree: each task spawns two children (LIFO,
 *           local queue, overflow, steal-half);
 *   ping    an outside thread spawns one task and waits for it to run,
 *           again and again: the wake-up round trip to a parked runtime
 *           (eventfd write, the worker leaving its ring wait), what one
 *           job handed to an idle runtime costs.
 * Each with empty tasks and with tasks doing ~`work` rounds of arithmetic.
 * --busy adds a thread spinning on its own for the whole run (a busy
 * Python thread beside the runtime); its CPU time is not counted.
 * CPU/task is the process's CPU time (workers, the outside spawner,
 * the waiting main thread) per task: on a shared machine it is steadier
 * than tasks/s.
 *
 * Output: one line per workload and worker count (steals, parks and
 * wake-ups are those of the last repeat), and a JSON line per result on
 * stderr for the pytest wrapper. Nothing here asserts on speed; the
 * counts are checked (every task ran exactly once).
 */
#define _GNU_SOURCE
#include "core/sched.h"

#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define container_of(p, T, m) ((T *)((char *)(p) - offsetof(T, m)))

struct node {
    struct rl_task task;
    unsigned index;
    atomic_uchar runs;
};

struct bench {
    struct node *nodes;
    unsigned n;
    unsigned work;
    struct rl_sched *s;
    /* Per-worker done counters, each on its own line. */
    struct {
        _Atomic unsigned long long v;
        char pad[56];
    } done[8];
    atomic_ullong sink;
    sem_t ran; /* ping: posted by each task */
};

static struct bench B;

static void
do_work(unsigned rounds)
{
    if (!rounds)
        return;
    unsigned long long x = 88172645463325252ull;
    for (unsigned i = 0; i < rounds; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    atomic_store_explicit(&B.sink, x, memory_order_relaxed);
}

static void
finish(struct node *nd, struct rl_worker *w)
{
    atomic_store_explicit(&nd->runs, nd->runs + 1, memory_order_relaxed);
    _Atomic unsigned long long *c = &B.done[rl_worker_index(w)].v;
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_release);
}

static void
leaf_run(struct rl_task *t, struct rl_worker *w)
{
    struct node *nd = container_of(t, struct node, task);
    do_work(B.work);
    finish(nd, w);
}

static void
ping_run(struct rl_task *t, struct rl_worker *w)
{
    finish(container_of(t, struct node, task), w);
    sem_post(&B.ran);
}

static void
chain_run(struct rl_task *t, struct rl_worker *w)
{
    struct node *nd = container_of(t, struct node, task);
    do_work(B.work);
    if (nd->index + 1 < B.n)
        rl_sched_spawn(rl_worker_sched(w), &B.nodes[nd->index + 1].task);
    finish(nd, w);
}

static void
tree_run(struct rl_task *t, struct rl_worker *w)
{
    struct node *nd = container_of(t, struct node, task);
    do_work(B.work);
    for (unsigned c = 2 * nd->index + 1; c <= 2 * nd->index + 2; c++)
        if (c < B.n)
            rl_sched_spawn(rl_worker_sched(w), &B.nodes[c].task);
    finish(nd, w);
}

static unsigned long long
done_total(unsigned workers)
{
    unsigned long long n = 0;
    for (unsigned i = 0; i < workers; i++)
        n += atomic_load_explicit(&B.done[i].v, memory_order_acquire);
    return n;
}

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int busy;
static pthread_t busy_thread;
static atomic_int busy_stop;

static double
clock_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The process's CPU time, less the spinning thread's: the runtime's. */
static double
cpu_now(void)
{
    double t = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    clockid_t busy_clock;
    if (busy && pthread_getcpuclockid(busy_thread, &busy_clock) == 0)
        t -= clock_s(busy_clock);
    return t;
}

static void *
busy_main(void *arg)
{
    while (!atomic_load_explicit(&busy_stop, memory_order_relaxed))
        do_work(1000);
    return NULL;
}

enum kind { INJECT, CHAIN, TREE, PING };
static const char *kind_names[] = {"inject", "chain", "tree", "ping"};

/* One timed run; returns tasks/s, or -1 if a task ran other than once. */
static double
measure(enum kind kind, unsigned workers, unsigned n, unsigned work,
        double *cpu_per_task, struct rl_sched_stats *sum)
{
    memset(B.nodes, 0, n * sizeof(struct node));
    rl_task_run_fn fn = kind == INJECT ? leaf_run
                        : kind == CHAIN ? chain_run
                        : kind == PING  ? ping_run
                                        : tree_run;
    for (unsigned i = 0; i < n; i++) {
        B.nodes[i].task.run = fn;
        B.nodes[i].index = i;
    }
    B.n = n;
    B.work = work;
    for (unsigned i = 0; i < 8; i++)
        atomic_store(&B.done[i].v, 0);
    if (rl_sched_start(&B.s, workers) != 0) {
        fprintf(stderr, "rl_sched_start failed\n");
        exit(1);
    }
    /* Let the workers reach their first park. */
    struct timespec settle = {0, 5000000};
    nanosleep(&settle, NULL);
    double c0 = cpu_now(), t0 = now();
    if (kind == INJECT) {
        for (unsigned i = 0; i < n; i++)
            rl_sched_spawn(B.s, &B.nodes[i].task);
    } else if (kind == PING) {
        for (unsigned i = 0; i < n; i++) {
            rl_sched_spawn(B.s, &B.nodes[i].task);
            sem_wait(&B.ran);
        }
    } else {
        rl_sched_spawn(B.s, &B.nodes[0].task);
    }
    struct timespec tick = {0, 200000}; /* 0.2 ms: the waiter stays idle */
    while (done_total(workers) < n)
        nanosleep(&tick, NULL);
    double t1 = now(), c1 = cpu_now();
    memset(sum, 0, sizeof(*sum));
    for (unsigned i = 0; i < workers; i++) {
        struct rl_sched_stats st;
        rl_sched_stats(B.s, i, &st);
        sum->steals += st.steals;
        sum->stolen += st.stolen;
        sum->parks += st.parks;
        sum->wakeups += st.wakeups;
    }
    rl_sched_shutdown(B.s);
    for (unsigned i = 0; i < n; i++)
        if (B.nodes[i].runs != 1)
            return -1;
    *cpu_per_task = (c1 - c0) / n;
    return n / (t1 - t0);
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
    unsigned n = 1000000, repeats = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--busy"))
            busy = 1;
        else if (!strncmp(argv[i], "--n=", 4))
            n = (unsigned)strtoul(argv[i] + 4, NULL, 10);
        else if (!strncmp(argv[i], "--repeats=", 10))
            repeats = (unsigned)strtoul(argv[i] + 10, NULL, 10);
    }
    if (repeats < 1 || repeats > 64 || n < 16) {
        fprintf(stderr, "usage: %s [--n=N] [--repeats=R] [--busy]\n", argv[0]);
        return 2;
    }
    B.nodes = calloc(n, sizeof(struct node));
    sem_init(&B.ran, 0, 0);
    if (busy)
        pthread_create(&busy_thread, NULL, busy_main, NULL);
    static const unsigned works[] = {0, 200};
    int failed = 0;
    printf("%-7s %6s %8s %14s %14s %8s %9s %9s %9s %s\n", "tasks", "work",
           "workers", "tasks/s", "CPU/task", "scaling", "steals", "parks",
           "wakeups", busy ? "(busy thread)" : "");
    for (int k = INJECT; k <= PING; k++) {
        for (unsigned wi = 0; wi < (k == PING ? 1u : 2u); wi++) {
            unsigned work = works[wi];
            /* Heavier tasks: fewer of them, the same order of run time;
             * round trips are slow: fewer still. */
            unsigned count = k == PING ? (n / 200 > 16 ? n / 200 : 16)
                             : work    ? n / 4
                                       : n;
            double rate[2][64], cpu[2][64];
            struct rl_sched_stats st[2]; /* of the last repeat */
            for (unsigned r = 0; r < repeats; r++) {
                for (unsigned workers = 1; workers <= 2; workers++) {
                    double c = 0;
                    double x =
                        measure(k, workers, count, work, &c, &st[workers - 1]);
                    if (x < 0)
                        failed = 1;
                    rate[workers - 1][r] = x;
                    cpu[workers - 1][r] = c;
                }
            }
            double med[2], medcpu[2];
            for (int w = 0; w < 2; w++) {
                qsort(rate[w], repeats, sizeof(double), cmp_double);
                qsort(cpu[w], repeats, sizeof(double), cmp_double);
                med[w] = rate[w][repeats / 2];
                medcpu[w] = cpu[w][repeats / 2];
            }
            for (int w = 0; w < 2; w++) {
                printf("%-7s %6u %8d %12.2fM %12.0fns %7.2fx %9llu %9llu "
                       "%9llu\n",
                       kind_names[k], work, w + 1, med[w] / 1e6,
                       medcpu[w] * 1e9, med[w] / med[0], st[w].steals,
                       st[w].parks, st[w].wakeups);
            }
            for (int w = 0; w < 2; w++)
                fprintf(stderr,
                        "{\"kind\": \"%s\", \"work\": %u, \"workers\": %d, "
                        "\"tasks\": %u, \"tasks_per_s\": %.0f, "
                        "\"cpu_ns_per_task\": %.1f, \"busy\": %u}\n",
                        kind_names[k], work, w + 1, count, med[w],
                        medcpu[w] * 1e9, busy);
        }
    }
    if (busy) {
        atomic_store(&busy_stop, 1);
        pthread_join(busy_thread, NULL);
    }
    free(B.nodes);
    sem_destroy(&B.ran);
    if (failed)
        printf("FAILED: a task ran other than exactly once\n");
    return failed;
}
