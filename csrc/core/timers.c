/*
 * timers.c - 4-ary min-heap of timers (see timers.h for the contract).
 *
 * A 4-ary heap halves the depth of a binary one and keeps a node's children
 * in one or two cache lines, which matters for the 1M-timer churn case.
 */
#include "core/timers.h"

#include <errno.h>
#include <stdlib.h>

enum { ARITY = 4, INITIAL_CAP = 64 };

static inline int
entry_less(const struct rl_timer_entry *a, const struct rl_timer_entry *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static inline void
place(struct rl_timers *h, uint32_t i, struct rl_timer_entry e)
{
    h->v[i] = e;
    e.timer->index = i;
}

static void
sift_up(struct rl_timers *h, uint32_t i, struct rl_timer_entry e)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / ARITY;
        if (!entry_less(&e, &h->v[parent]))
            break;
        place(h, i, h->v[parent]);
        i = parent;
    }
    place(h, i, e);
}

static void
sift_down(struct rl_timers *h, uint32_t i, struct rl_timer_entry e)
{
    for (;;) {
        uint32_t first = i * ARITY + 1;
        if (first >= h->len)
            break;
        uint32_t last = first + ARITY < h->len ? first + ARITY : h->len;
        uint32_t best = first;
        for (uint32_t c = first + 1; c < last; c++)
            if (entry_less(&h->v[c], &h->v[best]))
                best = c;
        if (!entry_less(&h->v[best], &e))
            break;
        place(h, i, h->v[best]);
        i = best;
    }
    place(h, i, e);
}

void
rl_timers_init(struct rl_timers *h)
{
    h->v = NULL;
    h->len = h->cap = 0;
    h->next_seq = 0;
}

void
rl_timers_free(struct rl_timers *h)
{
    for (uint32_t i = 0; i < h->len; i++)
        h->v[i].timer->index = RL_TIMER_NOT_QUEUED;
    free(h->v);
    rl_timers_init(h);
}

int
rl_timers_add(struct rl_timers *h, struct rl_timer *t, double when)
{
    if (h->len == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : INITIAL_CAP;
        struct rl_timer_entry *v = realloc(h->v, (size_t)cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    struct rl_timer_entry e = {when, h->next_seq++, t};
    sift_up(h, h->len++, e);
    return 0;
}

void
rl_timers_remove(struct rl_timers *h, struct rl_timer *t)
{
    uint32_t i = t->index;
    if (i == RL_TIMER_NOT_QUEUED)
        return;
    t->index = RL_TIMER_NOT_QUEUED;
    struct rl_timer_entry last = h->v[--h->len];
    if (i == h->len)
        return;
    /* The last entry fills the hole; it may belong above or below it. */
    if (i > 0 && entry_less(&last, &h->v[(i - 1) / ARITY]))
        sift_up(h, i, last);
    else
        sift_down(h, i, last);
}

struct rl_timer *
rl_timers_pop_due(struct rl_timers *h, double now)
{
    if (h->len == 0 || h->v[0].when > now)
        return NULL;
    struct rl_timer *t = h->v[0].timer;
    rl_timers_remove(h, t);
    return t;
}
