/*
 * sink.h - where finished off-loop work waits for its loop: a list of
 * completions and an eventfd the loop watches (add_reader), so that any
 * asyncio loop can take results from threads that never touch Python.
 *
 * Producers (pool threads) rl_sink_push a completion; the consumer is
 * signalled (the eventfd written, or the owner's notify hook called, e.g.
 * to queue a drain callback on a ringloop loop's cross-thread queue) only
 * when the list goes from empty-and-unsignalled to non-empty, so a burst of
 * completions costs the loop one wake-up and one drain.
 * Once the consumer closed the sink, push refuses (-EPIPE) and the
 * producer disposes of its completion itself.
 *
 * Threads: rl_sink_push from any thread; init, take, close and fini only
 * from the consumer (the loop's thread). The lock makes push and close
 * mutually exclusive, so a producer never writes to a closed eventfd.
 */
#ifndef RL_SINK_H
#define RL_SINK_H

#include <pthread.h>

struct rl_sink_node {
    struct rl_sink_node *next;
};

struct rl_sink {
    pthread_mutex_t lock;
    void (*notify)(struct rl_sink *s); /* NULL: the eventfd */
    struct rl_sink_node *head, *tail;
    int efd;
    int signalled; /* the eventfd holds a wake-up not yet consumed */
    int closed;
};

/* With notify NULL, signals through an eventfd (efd); else calls notify
 * (with the sink's lock held; it must not block) and efd is -1.
 * 0 or -errno. */
int rl_sink_init(struct rl_sink *s, void (*notify)(struct rl_sink *s));

/* Any thread. 0, or -EPIPE if the sink is closed (n was not queued). */
int rl_sink_push(struct rl_sink *s, struct rl_sink_node *n);

/* Consumer: clears the signal and returns the whole list, oldest first
 * (NULL if empty). */
struct rl_sink_node *rl_sink_take(struct rl_sink *s);

/* Consumer: refuses further pushes and closes the eventfd; returns what
 * was still queued, for the consumer to dispose of, and sets *signalled
 * to whether a signal was outstanding. Idempotent. */
struct rl_sink_node *rl_sink_close(struct rl_sink *s, int *signalled);

/* Consumer, after close, once no producer can hold a pointer to s. */
void rl_sink_fini(struct rl_sink *s);

#endif
