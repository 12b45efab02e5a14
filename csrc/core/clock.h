/*
 * clock.h - the loop clock: CLOCK_MONOTONIC in nanoseconds.
 *
 * This is the clock of time.monotonic(), so loop.time() agrees with it.
 */
#ifndef RL_CLOCK_H
#define RL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t
rl_clock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The loop clock in seconds, as loop.time() reports it. Timers compare
 * their deadlines against this exact value, so a callback never runs
 * before loop.time() >= when. */
static inline double
rl_clock_now_s(void)
{
    return (double)rl_clock_now_ns() / 1e9;
}

#endif
