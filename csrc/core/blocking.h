/*
 * blocking.h - the blocking pool: threads that run jobs which may block
 * (Python callables given to spawn_blocking/to_thread/run_in_executor, C
 * jobs such as getaddrinfo and file system calls). Tokio's shape: capped,
 * grown on demand, idle threads retire after a timeout; a thread that just
 * finished a job spins briefly before parking, and a submission wakes a
 * parked thread only when no spinning thread can take the job.
 *
 * A job runs exactly once on some pool thread, or is removed by
 * rl_blocking_cancel before it starts; a started job cannot be stopped.
 * The pool never touches a job after calling its run function (run may
 * free it).
 *
 * Threads: every function may be called from any thread, except that
 * rl_blocking_shutdown must not be called from a pool thread. The pool
 * takes no Python lock; jobs that need the GIL take it themselves.
 */
#ifndef RL_BLOCKING_H
#define RL_BLOCKING_H

struct rl_blocking_pool;
struct rl_blocking_job;

typedef void (*rl_blocking_run_fn)(struct rl_blocking_job *job);

struct rl_blocking_job {
    rl_blocking_run_fn run;
    struct rl_blocking_job *next, *prev; /* pool-owned while queued */
    int queued;
};

/* A pool of at most max_threads threads (>= 1); idle threads exit after
 * idle_ms; a thread that finished a job spins up to spin_us before parking.
 * No thread starts before the first submission. 0 or -errno. */
int rl_blocking_create(struct rl_blocking_pool **out, unsigned max_threads,
                       unsigned idle_ms, unsigned spin_us);

/* Queues job; starts a thread if none is free and the cap allows.
 * 0, -ESHUTDOWN after shutdown, or -errno if no thread could be started
 * and none exists. */
int rl_blocking_submit(struct rl_blocking_pool *p, struct rl_blocking_job *job);

/* Takes the oldest queued job, or NULL: a pool thread that just finished a
 * job may run the next one itself (it then counts as started). */
struct rl_blocking_job *rl_blocking_take(struct rl_blocking_pool *p);

/* Removes job if it has not started: 1 if removed (it will never run),
 * 0 if it has started or finished. */
int rl_blocking_cancel(struct rl_blocking_pool *p, struct rl_blocking_job *job);

/* Called on each pool thread just before it exits (e.g. to drop a
 * per-thread interpreter state); set before the first submission. */
void rl_blocking_set_exit_hook(struct rl_blocking_pool *p, void (*hook)(void));

/* Changes the cap (>= 1) and the idle timeout; existing threads above the
 * cap retire when idle. */
void rl_blocking_configure(struct rl_blocking_pool *p, unsigned max_threads,
                           unsigned idle_ms, unsigned spin_us);

struct rl_blocking_stats {
    unsigned threads; /* alive */
    unsigned idle;    /* parked or spinning */
    unsigned queued;  /* jobs not yet started */
    unsigned max_threads;
};
void rl_blocking_stats(struct rl_blocking_pool *p, struct rl_blocking_stats *out);

/* Stops accepting jobs, lets the threads run every queued job, waits for
 * them to exit and frees the pool. Not from a pool thread. */
void rl_blocking_shutdown(struct rl_blocking_pool *p);

/* In a forked child: forgets the parent's threads (they do not exist in
 * the child) and frees nothing that a parent thread might hold; the pool
 * is usable again. Call only in the child, single-threaded. */
void rl_blocking_after_fork(struct rl_blocking_pool *p);

#endif
