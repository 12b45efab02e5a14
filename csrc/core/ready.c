/*
 * ready.c - growth of the ready ring (see ready.h).
 */
#include "core/ready.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { INITIAL_CAP = 256 };

void
rl_ready_init(struct rl_ready *q)
{
    q->buf = NULL;
    q->head = q->len = 0;
    q->mask = 0;
}

void
rl_ready_free(struct rl_ready *q)
{
    free(q->buf);
    rl_ready_init(q);
}

int
rl_ready_grow(struct rl_ready *q)
{
    size_t cap = q->buf ? (q->mask + 1) * 2 : INITIAL_CAP;
    void **buf = malloc(cap * sizeof(*buf));
    if (!buf)
        return -ENOMEM;
    /* Unwrap the old ring into the start of the new one. */
    for (size_t i = 0; i < q->len; i++)
        buf[i] = q->buf[(q->head + i) & q->mask];
    free(q->buf);
    q->buf = buf;
    q->head = 0;
    q->mask = cap - 1;
    return 0;
}
