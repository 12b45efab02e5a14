/*
 * rtjob.h - off-loop jobs for ringloop.rt and their hand-off to a loop.
 *
 * A Job is a Python object that runs once in the blocking pool
 * (core/blocking.h) and delivers its result to an asyncio.Future on the
 * loop that created it, through that loop's Sink (core/sink.h, an eventfd
 * watched with loop.add_reader, so any asyncio loop works). A kind supplies
 * three functions:
 *   run     pool thread; without the GIL unless the kind takes it;
 *   finish  loop thread, GIL held: the result (new reference) or NULL with
 *           an exception set; called only if the future is still pending;
 *   clear   GIL held: frees the payload, e.g. closes an fd nobody took.
 * The pool holds one reference to the job from submission until the job is
 * delivered, cancelled before it started, or disposed of because its loop
 * closed; whatever the job's memory the pool thread may touch lives until
 * then (a cancelled future only detaches).
 *
 * Threads: rl_job_submit on the loop thread with the GIL; everything else
 * as above.
 */
#ifndef RL_PY_RTJOB_H
#define RL_PY_RTJOB_H

#include "py/module.h"

#include "core/blocking.h"
#include "core/sink.h"

typedef struct JobObject JobObject;

struct rl_job_kind {
    void (*run)(JobObject *j);
    PyObject *(*finish)(JobObject *j);
    void (*clear)(JobObject *j);
    /* Optional, loop thread: called first on delivery; 1 if the job went
     * back to work (not delivered now), 0 to deliver. */
    int (*again)(JobObject *j);
    /* Optional, any thread, no GIL: the loop closed before delivery; free
     * OS resources now (e.g. close an fd), the rest waits for the GIL. */
    void (*orphan)(JobObject *j);
};

/* On a ringloop loop the sink queues drain_h (a Handle calling
 * sink.drain) on the loop's cross-thread queue instead of using an eventfd
 * (no fd watch: the loop stays free to move to another thread). While the
 * sink is open and unsignalled, the sink holds one extra reference to
 * drain_h, taken in advance for the queue (producers cannot take one
 * without the GIL). */
typedef struct {
    PyObject_HEAD
    struct rl_sink core;
    LoopObject *loop;        /* ringloop loop, or NULL (eventfd) */
    HandleObject *drain_h;   /* ringloop only */
    Py_ssize_t pending;      /* jobs submitted and not yet released */
    char ready; /* core initialised */
    char closed;
} SinkObject;

struct JobObject {
    PyObject_HEAD
    struct rl_blocking_job job;
    struct rl_sink_node done;
    const struct rl_job_kind *kind;
    SinkObject *sink;
    PyObject *fut;
    PyObject *done_cb;   /* registered on fut, to remove a job not started */
    PyObject *obj[4];    /* the kind's Python references */
    void *data;          /* the kind's C payload, freed by clear */
};

/* A new job of `kind` for future `fut` on `sink` (a Sink). */
JobObject *rl_job_new(PyObject *module, const struct rl_job_kind *kind,
                      PyObject *sink, PyObject *fut);
/* Queues j in the pool; the pool takes its own reference. 0 or -1. */
int rl_job_submit(JobObject *j);
/* The same for a job that runs elsewhere (a C task on the scheduler):
 * spawn(j) starts it (0 or -errno); when it is done, its thread calls
 * rl_job_complete(j). */
int rl_job_start(JobObject *j, int (*spawn)(JobObject *j));
/* Any thread, no GIL needed: hands a finished job to its loop (or, if the
 * loop closed, to a list freed later with the GIL). */
void rl_job_complete(JobObject *j);
/* rtfs.c: the scheduler's worker count (0 until started). */
unsigned rl_rtfs_workers(void);

/* For a kind's run: take and give back the GIL on a pool thread. */
void rl_job_gil_enter(void);
void rl_job_gil_leave(void);

/* OSError for errno `err` with filename `path` (may be NULL); NULL. */
PyObject *rl_job_oserror(int err, PyObject *path, PyObject *path2);

int rl_rtjob_setup(PyObject *module);
int rl_rtfs_setup(PyObject *module);
int rl_rtdns_setup(PyObject *module);

#endif
