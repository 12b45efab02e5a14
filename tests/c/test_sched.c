/*
 * test_sched.c - the C runtime end to end: start/shutdown, outside spawns,
 * the LIFO slot, tasks doing I/O on their worker's ring, park/unpark races
 * (a spawn as a worker parks must run), shutdown with queued tasks and ops
 * in flight, spawns racing shutdown (run or -ESHUTDOWN, never lost), and a
 * stress run of tasks spawning tasks plus outside injectors, each task
 * run exactly once. Sizes shrink under sanitizers (RL_STRESS_TASKS
 * overrides the stress size).
 */
#define _GNU_SOURCE
#include "core/ring.h"
#include "core/sched.h"
#include "check.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

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

#define container_of(p, T, m) ((T *)((char *)(p) - offsetof(T, m)))

static void
wait_until(atomic_uint *v, unsigned want)
{
    while (atomic_load(v) < want)
        sched_yield();
}

/* Tasks run so far by all workers. A task's count is bumped after it
 * returns, so callers wait for it rather than read it once. */
static unsigned long long
tasks_run(struct rl_sched *s)
{
    unsigned long long n = 0;
    for (unsigned i = 0; i < rl_sched_workers(s); i++) {
        struct rl_sched_stats st;
        rl_sched_stats(s, i, &st);
        n += st.tasks;
    }
    return n;
}

static void
wait_tasks_run(struct rl_sched *s, unsigned long long n)
{
    while (tasks_run(s) < n)
        sched_yield();
}

/* Start-up failing part-way (out of descriptors) returns -errno and
 * leaves nothing behind (ASan checks for leaks). */
static void
test_start_failure(void)
{
    struct rlimit old, low;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    int probe = dup(0); /* the lowest free descriptor */
    CHECK(probe >= 0);
    close(probe);
    low = old;
    low.rlim_cur = (rlim_t)probe + 3; /* room for a worker and a half */
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    struct rl_sched *s = NULL;
    int res = rl_sched_start(&s, 4);
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    CHECK(res == -EMFILE);
    int after = dup(0);
    CHECK(after == probe); /* every descriptor it opened was closed */
    close(after);
}

/* ---- outside spawns --------------------------------------------------- */

struct counted {
    struct rl_task task;
    atomic_int runs;
    atomic_uint *total;
    struct rl_worker *ran_on;
};

static void
counted_run(struct rl_task *t, struct rl_worker *w)
{
    struct counted *c = container_of(t, struct counted, task);
    c->ran_on = w;
    if (rl_sched_current() != w)
        abort();
    atomic_fetch_add(&c->runs, 1);
    atomic_fetch_add(c->total, 1);
}

static void
test_start_stop(void)
{
    for (unsigned n = 1; n <= 4; n++) {
        struct rl_sched *s;
        CHECK(rl_sched_start(&s, n) == 0);
        CHECK(rl_sched_workers(s) == n);
        CHECK(rl_sched_current() == NULL);
        rl_sched_shutdown(s);
    }
    struct rl_sched *s;
    CHECK(rl_sched_start(&s, 0) == -EINVAL);
}

static void
test_outside_spawns(void)
{
    enum { N = 5000 };
    struct counted *c = calloc(N, sizeof(*c));
    atomic_uint total = 0;
    struct rl_sched *s;
    CHECK(rl_sched_start(&s, 2) == 0);
    for (int i = 0; i < N; i++) {
        c[i].task.run = counted_run;
        c[i].total = &total;
        CHECK(rl_sched_spawn(s, &c[i].task) == 0);
    }
    wait_until(&total, N);
    int ok = 1;
    for (int i = 0; i < N; i++)
        ok &= atomic_load(&c[i].runs) == 1 && c[i].ran_on != NULL &&
              rl_worker_sched(c[i].ran_on) == s &&
              rl_worker_index(c[i].ran_on) < 2;
    CHECK(ok);
    wait_tasks_run(s, N);
    CHECK(tasks_run(s) == N);
    rl_sched_shutdown(s);
    free(c);
}

/* After rl_sched_close, outside spawns are refused and never run; tasks
 * on the workers may still spawn, and everything accepted runs. */
struct closer {
    struct rl_task task, child;
    atomic_uint *total;
    int child_res;
};

static void
closer_child(struct rl_task *t, struct rl_worker *w)
{
    atomic_fetch_add(container_of(t, struct closer, child)->total, 1);
}

static void
closer_run(struct rl_task *t, struct rl_worker *w)
{
    struct closer *c = container_of(t, struct closer, task);
    c->child_res = rl_sched_spawn(rl_worker_sched(w), &c->child);
    atomic_fetch_add(c->total, 1);
}

static void
test_close(void)
{
    struct rl_sched *s;
    CHECK(rl_sched_start(&s, 2) == 0);
    atomic_uint total = 0;
    struct closer c = {.task.run = closer_run, .child.run = closer_child,
                       .total = &total, .child_res = 1};
    struct counted refused;
    memset(&refused, 0, sizeof(refused));
    refused.task.run = counted_run;
    refused.total = &total;
    CHECK(rl_sched_spawn(s, &c.task) == 0);
    rl_sched_close(s);
    rl_sched_close(s); /* idempotent */
    CHECK(rl_sched_spawn(s, &refused.task) == -ESHUTDOWN);
    rl_sched_shutdown(s);
    CHECK(c.child_res == 0);
    CHECK(atomic_load(&total) == 2);
    CHECK(atomic_load(&refused.runs) == 0);
}

/* ---- the LIFO slot ---------------------------------------------------- */

struct lifo_test;

struct lifo_child {
    struct rl_task task;
    char name;
    struct lifo_test *lt;
};

struct lifo_test {
    struct rl_task parent;
    struct lifo_child a, b, c;
    char order[8];
    atomic_uint next, n; /* next slot in order; children done */
    struct rl_worker *w[4];
};

static void
lifo_child_run(struct rl_task *t, struct rl_worker *w)
{
    struct lifo_child *ch = container_of(t, struct lifo_child, task);
    unsigned i = atomic_fetch_add(&ch->lt->next, 1);
    ch->lt->order[i] = ch->name;
    ch->lt->w[i] = w;
    atomic_fetch_add(&ch->lt->n, 1);
}

static void
lifo_parent(struct rl_task *t, struct rl_worker *w)
{
    struct lifo_test *lt = container_of(t, struct lifo_test, parent);
    struct rl_sched *s = rl_worker_sched(w);
    /* a, then b (a moves to the queue), then c (b moves): c runs next on
     * this worker, then a and b in FIFO order. */
    rl_sched_spawn(s, &lt->a.task);
    rl_sched_spawn(s, &lt->b.task);
    rl_sched_spawn(s, &lt->c.task);
    lt->w[3] = w;
}

static void
test_lifo(void)
{
    struct rl_sched *s;
    CHECK(rl_sched_start(&s, 1) == 0);
    struct lifo_test lt;
    memset(&lt, 0, sizeof(lt));
    lt.parent.run = lifo_parent;
    struct lifo_child *kids[] = {&lt.a, &lt.b, &lt.c};
    for (int i = 0; i < 3; i++) {
        kids[i]->task.run = lifo_child_run;
        kids[i]->name = (char)('a' + i);
        kids[i]->lt = &lt;
    }
    CHECK(rl_sched_spawn(s, &lt.parent) == 0);
    wait_until(&lt.n, 3);
    CHECK(memcmp(lt.order, "cab", 3) == 0);
    CHECK(lt.w[0] == lt.w[3]);
    struct rl_sched_stats st;
    rl_sched_stats(s, 0, &st);
    CHECK(st.lifo >= 1);
    rl_sched_shutdown(s);
}

/* A LIFO chain is bounded: a task that respawns itself forever from the
 * LIFO slot still lets queued tasks run. */
struct pingpong {
    struct rl_task self, other;
    atomic_int other_ran;
    atomic_uint total;
    unsigned rounds;
};

static void
pingpong_other(struct rl_task *t, struct rl_worker *w)
{
    struct pingpong *p = container_of(t, struct pingpong, other);
    atomic_store(&p->other_ran, 1);
}

static void
pingpong_self(struct rl_task *t, struct rl_worker *w)
{
    struct pingpong *p = container_of(t, struct pingpong, self);
    if (p->rounds++ == 0) {
        rl_sched_spawn(rl_worker_sched(w), &p->other); /* LIFO */
        rl_sched_spawn(rl_worker_sched(w), &p->self);  /* other -> queue */
        return;
    }
    if (!atomic_load(&p->other_ran) && p->rounds < 100000)
        rl_sched_spawn(rl_worker_sched(w), &p->self);
    else
        atomic_store(&p->total, 1);
}

static void
test_lifo_bounded(void)
{
    struct rl_sched *s;
    CHECK(rl_sched_start(&s, 1) == 0);
    struct pingpong p;
    memset(&p, 0, sizeof(p));
    p.self.run = pingpong_self;
    p.other.run = pingpong_other;
    CHECK(rl_sched_spawn(s, &p.self) == 0);
    wait_until(&p.total, 1);
    CHECK(atomic_load(&p.other_ran) == 1);
    CHECK(p.rounds <= 10); /* MAX_LIFO_POLLS plus a little */
    rl_sched_shutdown(s);
}

/* ---- ring I/O from tasks --------------------------------------------- */

/* Reads `want` bytes from a pipe, one ring read per step; the completion
 * continues the machine by spawning the task again. */
struct reader {
    struct rl_task task;
    struct rl_op op;
    int fd;
    char buf[64];
    unsigned got, want;
    int res;
    struct rl_worker *w;
    atomic_int wrong_worker;
    atomic_uint done;
};

static void
reader_complete(struct rl_op *op, int res, unsigned flags)
{
    struct reader *r = container_of(op, struct reader, op);
    if (rl_sched_current() != r->w)
        atomic_store(&r->wrong_worker, 1);
    if (res <= 0) {
        r->res = res;
        atomic_store(&r->done, 1);
        return;
    }
    r->got += (unsigned)res;
    if (r->got >= r->want) {
        atomic_store(&r->done, 1);
        return;
    }
    /* Continue as a task (from a completion: this worker's LIFO slot). */
    if (rl_sched_spawn(rl_worker_sched(r->w), &r->task) != 0)
        atomic_store(&r->wrong_worker, 1);
}

static void
reader_run(struct rl_task *t, struct rl_worker *w)
{
    struct reader *r = container_of(t, struct reader, task);
    if (r->w && r->w != w)
        atomic_store(&r->wrong_worker, 1);
    r->w = w;
    int res = rl_ring_read(rl_worker_ring(w), &r->op, r->fd, r->buf + r->got,
                           r->want - r->got);
    if (res < 0) {
        r->res = res;
        atomic_store(&r->done, 1);
    }
}

static void
reader_init(struct reader *r, int fd, unsigned want)
{
    memset(r, 0, sizeof(*r));
    r->task.run = reader_run;
    r->op.complete = reader_complete;
    r->fd = fd;
    r->want = want;
}

static void
test_ring_io(void)
{
    struct rl_sched *s;
    CHECK(rl_sched_start(&s, 2) == 0);
    int p[2];
    CHECK(pipe(p) == 0);
    struct reader r;
    reader_init(&r, p[0], 6);
    CHECK(rl_sched_spawn(s, &r.task) == 0);
    /* Written in two parts: two completions, the task continues between. */
    CHECK(write(p[1], "abc", 3) == 3);
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    CHECK(write(p[1], "def", 3) == 3);
    wait_until(&r.done, 1);
    CHECK(r.res == 0);
    CHECK(r.got == 6 && memcmp(r.buf, "abcdef", 6) == 0);
    CHECK(atomic_load(&r.wrong_worker) == 0);
    rl_sched_shutdown(s);
    close(p[0]);
    close(p[1]);
}

/* ---- the coop budget -------------------------------------------------- */

/* A task that respawns itself until told to stop keeps its worker busy
 * forever; ring completions and outside spawns must still get through
 * (the budget's ring poll, the inject queue's turn every 61 ticks). */
struct spinner {
    struct rl_task task;
    atomic_int stop;
    unsigned long long rounds;
};

static void
spinner_run(struct rl_task *t, struct rl_worker *w)
{
    struct spinner *sp = container_of(t, struct spinner, task);
    sp->rounds++;
    if (!atomic_load_explicit(&sp->stop, memory_order_relaxed))
        rl_sched_spawn(rl_worker_sched(w), &sp->task);
}

static void
test_budget(void)
{
    struct rl_sched *s;
    CHECK(rl_sched_start(&s, 1) == 0);
    struct spinner sp;
    memset(&sp, 0, sizeof(sp));
    sp.task.run = spinner_run;
    int p[2];
    CHECK(pipe(p) == 0);
    struct reader r;
    reader_init(&r, p[0], 3);
    /* The reader queues its read first, then the spinner takes over. */
    CHECK(rl_sched_spawn(s, &r.task) == 0);
    CHECK(rl_sched_spawn(s, &sp.task) == 0);
    CHECK(write(p[1], "abc", 3) == 3);
    wait_until(&r.done, 1); /* the completion ran beside the spinner */
    CHECK(r.got == 3 && memcmp(r.buf, "abc", 3) == 0);
    /* Outside spawns run too, and cost no wake-up (no system call): the
     * only worker is busy, so nobody is parked. */
    enum { N = 1000 };
    struct counted *c = calloc(N, sizeof(*c));
    atomic_uint total = 0;
    struct rl_sched_stats before, after;
    rl_sched_stats(s, 0, &before);
    for (int i = 0; i < N; i++) {
        c[i].task.run = counted_run;
        c[i].total = &total;
        CHECK(rl_sched_spawn(s, &c[i].task) == 0);
    }
    wait_until(&total, N);
    rl_sched_stats(s, 0, &after);
    CHECK(after.wakeups == before.wakeups);
    free(c);
    atomic_store(&sp.stop, 1);
    rl_sched_shutdown(s);
    CHECK(sp.rounds > 0);
    close(p[0]);
    close(p[1]);
}

/* ---- park/unpark races ----------------------------------------------- */

struct poster {
    struct rl_task task;
    sem_t *sem;
};

static void
poster_run(struct rl_task *t, struct rl_worker *w)
{
    sem_post(container_of(t, struct poster, task)->sem);
}

struct racer_arg {
    struct rl_sched *s;
    unsigned rounds;
};

/* Spawn one task, wait until it ran, repeat: each spawn meets workers
 * that are parking, parked or just woken. A lost wake-up hangs here. */
static void *
pingpong_spawner(void *arg)
{
    struct racer_arg *a = arg;
    sem_t sem;
    sem_init(&sem, 0, 0);
    struct poster p = {.task.run = poster_run, .sem = &sem};
    for (unsigned i = 0; i < a->rounds; i++) {
        if (rl_sched_spawn(a->s, &p.task) != 0)
            abort();
        sem_wait(&sem);
    }
    sem_destroy(&sem);
    return NULL;
}

static void
test_park_races(void)
{
    unsigned rounds = SANITIZED ? 2000 : 20000;
    for (unsigned workers = 1; workers <= 3; workers++) {
        struct rl_sched *s;
        CHECK(rl_sched_start(&s, workers) == 0);
        struct racer_arg a = {s, rounds};
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, pingpong_spawner, &a);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        /* A task's count is bumped after it returns: wait for the last. */
        unsigned long long parks, tasks;
        do {
            parks = tasks = 0;
            for (unsigned i = 0; i < workers; i++) {
                struct rl_sched_stats st;
                rl_sched_stats(s, i, &st);
                parks += st.parks;
                tasks += st.tasks;
            }
        } while (tasks < 2ull * rounds && sched_yield() == 0);
        CHECK(tasks == 2ull * rounds);
        CHECK(parks > 0); /* the workers really slept in their rings */
        rl_sched_shutdown(s);
    }
}

/* ---- shutdown with work in flight ------------------------------------- */

static void *
late_writer(void *arg)
{
    int *fds = arg;
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
    for (int i = 0; i < 4; i++)
        if (write(fds[i], "xyzw", 4) != 4)
            abort();
    return NULL;
}

static void
test_shutdown_in_flight(void)
{
    enum { QUEUED = 20000, READERS = 4 };
    struct rl_sched *s;
    CHECK(rl_sched_start(&s, 2) == 0);
    /* Readers whose data arrives only after shutdown has begun. */
    int p[READERS][2], wfds[READERS];
    struct reader r[READERS];
    for (int i = 0; i < READERS; i++) {
        CHECK(pipe(p[i]) == 0);
        wfds[i] = p[i][1];
        reader_init(&r[i], p[i][0], 4);
        CHECK(rl_sched_spawn(s, &r[i].task) == 0);
    }
    /* And many tasks still queued when shutdown starts. */
    struct counted *c = calloc(QUEUED, sizeof(*c));
    atomic_uint total = 0;
    for (int i = 0; i < QUEUED; i++) {
        c[i].task.run = counted_run;
        c[i].total = &total;
        CHECK(rl_sched_spawn(s, &c[i].task) == 0);
    }
    pthread_t th;
    pthread_create(&th, NULL, late_writer, wfds);
    rl_sched_shutdown(s); /* returns once the reads completed */
    pthread_join(th, NULL);
    CHECK(atomic_load(&total) == QUEUED);
    int ok = 1;
    for (int i = 0; i < QUEUED; i++)
        ok &= atomic_load(&c[i].runs) == 1;
    CHECK(ok);
    for (int i = 0; i < READERS; i++) {
        CHECK(atomic_load(&r[i].done) == 1);
        CHECK(r[i].got == 4 && memcmp(r[i].buf, "xyzw", 4) == 0);
        close(p[i][0]);
        close(p[i][1]);
    }
    free(c);
}

/* ---- the stress: trees of tasks plus outside injectors ---------------- */

/* Task i spawns tasks 2i+1 and 2i+2 of its tree (from the worker: the
 * LIFO path, overflow, stealing); injectors spawn roots from outside. */
struct node {
    struct rl_task task;
    unsigned index;
    struct tree *tree;
    atomic_int runs;
};

struct tree {
    struct node *nodes;
    unsigned size;
    atomic_uint *total;
};

static void
node_run(struct rl_task *t, struct rl_worker *w)
{
    struct node *n = container_of(t, struct node, task);
    atomic_fetch_add_explicit(&n->runs, 1, memory_order_relaxed);
    struct tree *tr = n->tree;
    for (unsigned c = 2 * n->index + 1; c <= 2 * n->index + 2; c++)
        if (c < tr->size && rl_sched_spawn(rl_worker_sched(w),
                                           &tr->nodes[c].task) != 0)
            abort(); /* worker spawns are never refused */
    atomic_fetch_add_explicit(tr->total, 1, memory_order_relaxed);
}

enum { INJECTORS = 2 };

struct injector {
    struct rl_sched *s;
    struct tree *trees;
    unsigned ntrees;
    atomic_uint accepted; /* trees whose root was accepted */
    int stop_on_refusal;
};

static void *
injector_main(void *arg)
{
    struct injector *in = arg;
    for (unsigned i = 0; i < in->ntrees; i++) {
        int res = rl_sched_spawn(in->s, &in->trees[i].nodes[0].task);
        if (res == -ESHUTDOWN && in->stop_on_refusal)
            break;
        if (res != 0)
            abort();
        atomic_fetch_add(&in->accepted, 1);
    }
    return NULL;
}

static unsigned
stress_size(void)
{
    const char *env = getenv("RL_STRESS_TASKS");
    if (env && *env)
        return (unsigned)strtoul(env, NULL, 10);
    return SANITIZED ? 200000 : 2000000;
}

static void
make_trees(struct tree *trees, unsigned ntrees, unsigned size,
           atomic_uint *total)
{
    for (unsigned i = 0; i < ntrees; i++) {
        trees[i].size = size;
        trees[i].total = total;
        trees[i].nodes = calloc(size, sizeof(struct node));
        for (unsigned j = 0; j < size; j++) {
            trees[i].nodes[j].task.run = node_run;
            trees[i].nodes[j].index = j;
            trees[i].nodes[j].tree = &trees[i];
        }
    }
}

static void
test_stress(unsigned workers)
{
    unsigned total_tasks = stress_size();
    unsigned ntrees = 64 * INJECTORS; /* per injector: 64 trees */
    unsigned size = total_tasks / ntrees;
    atomic_uint total = 0;
    struct tree *trees = calloc(ntrees, sizeof(*trees));
    make_trees(trees, ntrees, size, &total);
    struct rl_sched *s;
    CHECK(rl_sched_start(&s, workers) == 0);
    struct injector in[INJECTORS];
    pthread_t th[INJECTORS];
    for (int i = 0; i < INJECTORS; i++) {
        in[i].s = s;
        in[i].trees = trees + i * (ntrees / INJECTORS);
        in[i].ntrees = ntrees / INJECTORS;
        in[i].stop_on_refusal = 0;
        atomic_init(&in[i].accepted, 0);
        pthread_create(&th[i], NULL, injector_main, &in[i]);
    }
    for (int i = 0; i < INJECTORS; i++)
        pthread_join(th[i], NULL);
    wait_until(&total, ntrees * size);
    wait_tasks_run(s, (unsigned long long)ntrees * size);
    struct rl_sched_stats sum = {0};
    for (unsigned i = 0; i < workers; i++) {
        struct rl_sched_stats st;
        rl_sched_stats(s, i, &st);
        sum.tasks += st.tasks;
        sum.lifo += st.lifo;
        sum.steals += st.steals;
        sum.stolen += st.stolen;
        sum.overflows += st.overflows;
        sum.parks += st.parks;
    }
    rl_sched_shutdown(s);
    int ok = 1;
    for (unsigned i = 0; i < ntrees; i++)
        for (unsigned j = 0; j < size; j++)
            ok &= atomic_load(&trees[i].nodes[j].runs) == 1;
    CHECK(ok);
    CHECK(atomic_load(&total) == ntrees * size);
    CHECK(sum.tasks == (unsigned long long)ntrees * size);
    printf("stress, %u workers: %u tasks, lifo %llu, steals %llu (%llu "
           "tasks), overflows %llu, parks %llu\n",
           workers, ntrees * size, sum.lifo, sum.steals, sum.stolen,
           sum.overflows, sum.parks);
    for (unsigned i = 0; i < ntrees; i++)
        free(trees[i].nodes);
    free(trees);
}

/* Closing while trees are growing and injectors are still spawning:
 * every accepted root's whole tree runs, refused roots never run. */
static void
test_shutdown_race(void)
{
    unsigned ntrees = 200 * INJECTORS, size = SANITIZED ? 255 : 2047;
    for (int round = 0; round < (SANITIZED ? 3 : 10); round++) {
        atomic_uint total = 0;
        struct tree *trees = calloc(ntrees, sizeof(*trees));
        make_trees(trees, ntrees, size, &total);
        struct rl_sched *s;
        CHECK(rl_sched_start(&s, 2) == 0);
        struct injector in[INJECTORS];
        pthread_t th[INJECTORS];
        for (int i = 0; i < INJECTORS; i++) {
            in[i].s = s;
            in[i].trees = trees + i * (ntrees / INJECTORS);
            in[i].ntrees = ntrees / INJECTORS;
            in[i].stop_on_refusal = 1;
            atomic_init(&in[i].accepted, 0);
            pthread_create(&th[i], NULL, injector_main, &in[i]);
        }
        /* Let some of the injections through first, then close while
         * the injectors keep spawning and the trees keep growing. The
         * injectors stop at their first refusal; only then may the
         * scheduler be freed. */
        while (atomic_load(&in[0].accepted) < (unsigned)round * 10)
            sched_yield();
        rl_sched_close(s);
        for (int i = 0; i < INJECTORS; i++)
            pthread_join(th[i], NULL);
        rl_sched_shutdown(s);
        int ok = 1;
        for (int i = 0; i < INJECTORS; i++) {
            unsigned acc = atomic_load(&in[i].accepted);
            for (unsigned k = 0; k < in[i].ntrees; k++)
                for (unsigned j = 0; j < size; j++)
                    ok &= atomic_load(&in[i].trees[k].nodes[j].runs) ==
                          (k < acc ? 1 : 0);
        }
        CHECK(ok);
        for (unsigned i = 0; i < ntrees; i++)
            free(trees[i].nodes);
        free(trees);
    }
}

/* Shutdown right after spawning trees: the trees are still growing (worker
 * spawns during shutdown, overflow into the inject queue, stealing) when
 * the workers start to exit; every node runs exactly once. */
static void
test_shutdown_growing(void)
{
    unsigned ntrees = 8, size = SANITIZED ? 2047 : 16383;
    for (unsigned workers = 1; workers <= 4; workers++) {
        for (int round = 0; round < 3; round++) {
            atomic_uint total = 0;
            struct tree trees[8];
            make_trees(trees, ntrees, size, &total);
            struct rl_sched *s;
            CHECK(rl_sched_start(&s, workers) == 0);
            for (unsigned i = 0; i < ntrees; i++)
                CHECK(rl_sched_spawn(s, &trees[i].nodes[0].task) == 0);
            rl_sched_shutdown(s);
            CHECK(atomic_load(&total) == ntrees * size);
            int ok = 1;
            for (unsigned i = 0; i < ntrees; i++) {
                for (unsigned j = 0; j < size; j++)
                    ok &= atomic_load(&trees[i].nodes[j].runs) == 1;
                free(trees[i].nodes);
            }
            CHECK(ok);
        }
    }
}

int
main(void)
{
    struct rl_ring *probe;
    int res = rl_ring_open(&probe);
    if (res == -ENOSYS || res == -EPERM) {
        printf("io_uring unavailable: %s\n", strerror(-res));
        return 77;
    }
    if (res == 0)
        rl_ring_close(probe);
    test_start_stop();
    test_start_failure();
    test_outside_spawns();
    test_close();
    test_lifo();
    test_lifo_bounded();
    test_ring_io();
    test_budget();
    test_park_races();
    test_shutdown_in_flight();
    test_shutdown_race();
    test_shutdown_growing();
    test_stress(1);
    test_stress(2);
    test_stress(4);
    return check_report("test_sched");
}
