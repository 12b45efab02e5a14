/*
 * fs_task.c - the file-operation state machines (see fs_task.h).
 *
 * Each step queues one op on the current worker's ring with t->op; the
 * completion (same worker) feeds the result to the next step. Errors keep
 * the first errno and route through closing an fd the task opened.
 */
#define _GNU_SOURCE /* AT_EMPTY_PATH */
#include "core/fs_task.h"

#include "core/common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

enum { S_START, S_OPEN_DONE, S_STAT_DONE, S_RESUME, S_READ_DONE,
       S_WRITE_DONE, S_CLOSE_DONE, S_SYNC_DONE };

#define CHUNK_MAX (1u << 30)
#define GROW_MIN (64 * 1024)

static void step(struct rl_fs_task *t, int res);

static void
on_complete(struct rl_op *op, int res, unsigned flags)
{
    (void)flags;
    step(rl_container_of(op, struct rl_fs_task, op), res);
}

static void
on_run(struct rl_task *task, struct rl_worker *w)
{
    struct rl_fs_task *t = rl_container_of(task, struct rl_fs_task, task);
    t->w = w;
    step(t, 0);
}

void
rl_fs_task_init(struct rl_fs_task *t, enum rl_fs_kind kind,
                void (*done)(struct rl_fs_task *t))
{
    *t = (struct rl_fs_task){0};
    t->task.run = on_run;
    t->op.complete = on_complete;
    t->done = done;
    t->kind = kind;
    t->fd = -1;
}

int
rl_fs_task_spawn(struct rl_sched *s, struct rl_fs_task *t)
{
    t->paused = 0;
    return rl_sched_spawn(s, &t->task);
}

static unsigned
chunk(size_t n)
{
    return n > CHUNK_MAX ? CHUNK_MAX : (unsigned)n;
}

/* The next read: into the lent buffer while it has room, else into buf
 * (grown as needed). */
static int
queue_read(struct rl_fs_task *t, struct rl_ring *r)
{
    t->step = S_READ_DONE;
    if (t->lent && t->lent_len < t->size)
        return rl_ring_pread(r, &t->op, t->fd, t->lent + t->lent_len,
                             chunk(t->size - t->lent_len), t->lent_len);
    if (t->kind == RL_FS_READ && t->n >= 0) {
        t->cap = (size_t)t->n;
        if ((t->buf = malloc(t->cap)) == NULL)
            return -ENOMEM;
        return rl_ring_read(r, &t->op, t->fd, t->buf, chunk(t->cap));
    }
    if (t->len == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : GROW_MIN;
        if (t->cap == 0 && !t->lent && t->size + 1 > ncap)
            ncap = t->size + 1; /* one read, then one that sees EOF */
        char *nb = realloc(t->buf, ncap);
        if (nb == NULL)
            return -ENOMEM;
        t->buf = nb;
        t->cap = ncap;
    }
    if (t->kind == RL_FS_READ)
        return rl_ring_read(r, &t->op, t->fd, t->buf + t->len,
                            chunk(t->cap - t->len));
    return rl_ring_pread(r, &t->op, t->fd, t->buf + t->len,
                         chunk(t->cap - t->len), t->lent_len + t->len);
}

static int
queue_write(struct rl_fs_task *t, struct rl_ring *r)
{
    t->step = S_WRITE_DONE;
    return rl_ring_write(r, &t->op, t->fd, t->data + t->done_bytes,
                         chunk(t->data_len - t->done_bytes));
}

static int
queue_close(struct rl_fs_task *t, struct rl_ring *r)
{
    t->step = S_CLOSE_DONE;
    t->own_fd = 0;
    return rl_ring_close_fd(r, &t->op, t->fd);
}

static void
fail(struct rl_fs_task *t, int res)
{
    if (t->err == 0)
        t->err = -res;
}

/* Advances the machine by one completion (res), queueing the next op or
 * finishing. Returns 1 when finished, or the result of queueing. */
static int
advance(struct rl_fs_task *t, struct rl_ring *r, int res)
{
    switch (t->step) {
    case S_START:
        switch (t->kind) {
        case RL_FS_READ_FILE:
        case RL_FS_WRITE_FILE:
        case RL_FS_OPEN:
            t->step = S_OPEN_DONE;
            return rl_ring_openat(
                r, &t->op, AT_FDCWD, t->path,
                t->kind == RL_FS_READ_FILE ? O_RDONLY : t->flags,
                t->kind == RL_FS_OPEN ? t->mode : 0666);
        case RL_FS_READ:
            return t->n == 0 ? 1 : queue_read(t, r);
        case RL_FS_WRITE:
            return t->data_len == 0 ? 1 : queue_write(t, r);
        case RL_FS_CLOSE:
            t->step = S_CLOSE_DONE;
            return rl_ring_close_fd(r, &t->op, t->fd);
        case RL_FS_FSYNC:
            t->step = S_SYNC_DONE;
            return rl_ring_fsync(r, &t->op, t->fd, t->datasync);
        }
        return 1;
    case S_OPEN_DONE:
        if (res < 0) {
            fail(t, res);
            return 1;
        }
        t->fd = res;
        t->own_fd = 1;
        if (t->kind == RL_FS_OPEN)
            return 1;
        if (t->kind == RL_FS_WRITE_FILE)
            return t->data_len ? queue_write(t, r) : queue_close(t, r);
        t->step = S_STAT_DONE;
        return rl_ring_statx(r, &t->op, t->fd, "", AT_EMPTY_PATH,
                             STATX_TYPE | STATX_SIZE, &t->stx);
    case S_STAT_DONE:
        if (res < 0) {
            fail(t, res);
            return queue_close(t, r);
        }
        if (S_ISDIR(t->stx.stx_mode)) {
            t->err = EISDIR;
            return queue_close(t, r);
        }
        if (S_ISREG(t->stx.stx_mode))
            t->size = t->stx.stx_size;
        if (t->lend_min && S_ISREG(t->stx.stx_mode) &&
            t->size >= t->lend_min) {
            t->paused = 1; /* the owner lends a buffer and resumes t */
            t->step = S_RESUME;
            t->done(t);
            return 0;
        }
        return queue_read(t, r);
    case S_RESUME:
        return queue_read(t, r);
    case S_READ_DONE:
        if (res <= 0) { /* error or EOF */
            if (res < 0)
                fail(t, res);
            return t->kind == RL_FS_READ_FILE ? queue_close(t, r) : 1;
        }
        if (t->lent && t->lent_len < t->size)
            t->lent_len += (size_t)res;
        else
            t->len += (size_t)res;
        if (t->kind == RL_FS_READ && t->n >= 0)
            return 1; /* one read, like FileIO.read(n) */
        return queue_read(t, r);
    case S_WRITE_DONE:
        if (res < 0)
            fail(t, res);
        else if (res == 0)
            t->err = EIO; /* no progress */
        else if ((t->done_bytes += (size_t)res) < t->data_len)
            return queue_write(t, r);
        return t->kind == RL_FS_WRITE_FILE ? queue_close(t, r) : 1;
    case S_CLOSE_DONE:
    case S_SYNC_DONE:
        if (res < 0 && res != -EINTR)
            fail(t, res);
        return 1;
    }
    return 1;
}

static void
step(struct rl_fs_task *t, int res)
{
    int q = advance(t, rl_worker_ring(t->w), res);
    if (q < 0) { /* could not queue the next op (ring full, no memory) */
        fail(t, q);
        if (t->own_fd) {
            close(t->fd);
            t->own_fd = 0;
        }
        q = 1;
    }
    if (q == 1)
        t->done(t);
}
