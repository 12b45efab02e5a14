/*
 * fs_task.h - file operations as C tasks on the scheduler's workers
 * (sched.h): each is a small state machine whose steps are io_uring ops on
 * the worker's ring (openat, statx, read/pread, write, fsync, close), e.g.
 * read_file = openat -> statx -> reads into a buffer the task owns -> close.
 * No Python here: the owner is told through t->done, on the worker.
 *
 * Lifetime: the owner keeps t (and path, the write data, a buffer it lent)
 * alive from rl_fs_task_spawn until t->done runs; one op at a time is in
 * flight and owns t's buffers until its completion. An fd the task opened
 * is closed by the task on every error path; on success (RL_FS_OPEN) or a
 * pause it stays open, owned by t (t->fd, t->own_fd) for the owner.
 *
 * Threads: rl_fs_task_init/spawn by the owner (any thread); the machine
 * runs on a worker; t->done on that worker. The owner reads results only
 * after done.
 */
#ifndef RL_FS_TASK_H
#define RL_FS_TASK_H

#include "core/sched.h"
#include "core/ring.h"

#include <linux/stat.h>
#include <stddef.h>
#include <stdint.h>

enum rl_fs_kind {
    RL_FS_READ_FILE,  /* path -> buf[len] (+ lent[lent_len]) */
    RL_FS_WRITE_FILE, /* path, flags, data[data_len] */
    RL_FS_OPEN,       /* path, flags, mode -> fd */
    RL_FS_READ,       /* fd, n (< 0: to EOF) -> buf[len] */
    RL_FS_WRITE,      /* fd, data[data_len] -> res = bytes written */
    RL_FS_CLOSE,      /* fd */
    RL_FS_FSYNC,      /* fd, datasync */
};

struct rl_fs_task {
    struct rl_task task;
    struct rl_op op;
    struct rl_worker *w;
    void (*done)(struct rl_fs_task *t);
    enum rl_fs_kind kind;
    int step;
    /* inputs */
    const char *path;
    int flags;
    unsigned mode;
    int datasync;
    long long n;
    const char *data;
    size_t data_len;
    size_t lend_min; /* READ_FILE: pause for a lent buffer from this size
                        (0: never) */
    /* state and results */
    int fd;
    int own_fd;          /* the task opened fd and must close it */
    int err;             /* errno of the first failure, or 0 */
    int paused;          /* READ_FILE: wants a buffer of t->size bytes */
    uint64_t size;       /* READ_FILE: size from statx */
    char *lent;          /* the owner's buffer (e.g. a bytes object's) */
    size_t lent_len;     /* filled in lent */
    char *buf;           /* malloc'd; the owner frees it after done */
    size_t len, cap;
    size_t done_bytes;   /* WRITE(_FILE): written so far */
    struct statx stx;
};

void rl_fs_task_init(struct rl_fs_task *t, enum rl_fs_kind kind,
                     void (*done)(struct rl_fs_task *t));

/* Starts t, or resumes a paused READ_FILE after the owner set t->lent
 * (t->size bytes). 0 or -errno (-ESHUTDOWN). */
int rl_fs_task_spawn(struct rl_sched *s, struct rl_fs_task *t);

#endif
