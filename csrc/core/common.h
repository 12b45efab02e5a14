/*
 * common.h - small helpers shared by every core file.
 *
 * The core never includes Python.h. Functions return >= 0 on success and
 * -errno on failure; rl_fatal() is only for states that cannot happen.
 */
#ifndef RL_COMMON_H
#define RL_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define RL_LIKELY(x)   __builtin_expect(!!(x), 1)
#define RL_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define rl_container_of(ptr, type, member)                                     \
    ((type *)((char *)(ptr) - offsetof(type, member)))

/* Prints the message and aborts. For impossible states only, never for I/O
 * errors. */
__attribute__((noreturn, format(printf, 1, 2))) void rl_fatal(const char *fmt,
                                                               ...);

#endif
