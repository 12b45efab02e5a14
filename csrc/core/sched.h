/*
 * sched.h - the C runtime: worker threads that run C tasks, in Tokio's
 * multi-thread scheduler shape (research/io_uring_and_scheduler.md Part B):
 * a bounded local queue and a LIFO slot per worker, a global inject queue,
 * steal-half, a bound on searching workers, a coop budget, and each worker
 * parked in its own ring.
 *
 * A task is a small state machine embedded in its owner's record. It runs
 * to its next wait and returns; if it queued an op on its worker's ring,
 * the op's completion runs later on that same worker (rings are
 * single-issuer), and continues the machine or spawns the task again.
 * Tasks never take the GIL: the binding hands results to a loop through
 * the loop's cross-thread queue (rl_loop_call_soon_threadsafe).
 *
 * Threads: rl_sched_spawn from any thread (a worker's own spawns go to its
 * LIFO slot); the rest of the worker API only from tasks and op
 * completions running on that worker. rl_sched_start/shutdown by one
 * owning thread.
 */
#ifndef RL_SCHED_H
#define RL_SCHED_H

struct rl_sched;
struct rl_worker;
struct rl_ring;
struct rl_task;

typedef void (*rl_task_run_fn)(struct rl_task *t, struct rl_worker *w);

struct rl_task {
    rl_task_run_fn run;
    struct rl_task *next; /* scheduler-owned while queued */
};

/* Starts `workers` worker threads (>= 1). 0 or -errno. */
int rl_sched_start(struct rl_sched **out, unsigned workers);

/* Queues t to run once on some worker; the caller keeps t alive until it
 * runs. Any thread. 0, or -ESHUTDOWN once shutdown has begun. */
int rl_sched_spawn(struct rl_sched *s, struct rl_task *t);

/* Stops accepting tasks, lets the workers finish every queued task and
 * every op in flight on their rings (final completions delivered), joins
 * them and frees the scheduler. Not from a worker. */
void rl_sched_shutdown(struct rl_sched *s);

/* The worker the calling thread is, or NULL on other threads. */
struct rl_worker *rl_sched_current(void);

/* The worker's ring for a task's I/O; completions run on this worker. */
struct rl_ring *rl_worker_ring(struct rl_worker *w);
struct rl_sched *rl_worker_sched(struct rl_worker *w);
unsigned rl_worker_index(const struct rl_worker *w);

unsigned rl_sched_workers(const struct rl_sched *s);

/* The first step of rl_sched_shutdown on its own: from its return on,
 * spawns from outside the workers get -ESHUTDOWN (spawns by tasks and
 * completions on a worker are still accepted, so running work finishes);
 * the workers keep running. Lets an owner stop its other threads' spawns
 * before it frees the scheduler. Any thread; idempotent. */
void rl_sched_close(struct rl_sched *s);

/* Counters of worker i since start, for tests and benchmarks: a snapshot
 * (cheap to keep: plain stores by the worker). Any thread. */
struct rl_sched_stats {
    unsigned long long tasks;     /* tasks run */
    unsigned long long lifo;      /* of which from the LIFO slot */
    unsigned long long steals;    /* successful steals from another worker */
    unsigned long long stolen;    /* tasks those steals took */
    unsigned long long injected;  /* tasks taken from the inject queue */
    unsigned long long overflows; /* halves moved to the inject queue */
    unsigned long long parks;     /* blocking waits in the worker's ring */
    unsigned long long polls;     /* non-blocking ring polls for the budget */
    unsigned long long wakeups;   /* doorbell writes aimed at it (by anyone) */
};
void rl_sched_stats(const struct rl_sched *s, unsigned i,
                    struct rl_sched_stats *out);

#endif
