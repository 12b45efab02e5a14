/*
 * rtjobobject.c - Job and Sink (see rtjob.h), the process-wide blocking
 * pool, and the Python-callable job kind behind rt.spawn_blocking,
 * rt.to_thread and ringloop's default executor.
 *
 * Pool threads keep one interpreter thread state each for their life (so
 * a call costs a GIL hand-off, not a thread-state creation) and drop it in
 * the pool's exit hook. The pool is shut down at interpreter exit (atexit,
 * from ringloop.rt._blocking) and reset in a fork child.
 *
 * Threads: module functions and Sink methods on a loop thread with the
 * GIL; job_run on pool threads.
 */
#include "py/rtjob.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

static struct rl_blocking_pool *pool; /* process-wide, created lazily */
static unsigned pool_max, pool_idle_ms = 10000, pool_spin_us = 0; /* spinning measured slower on a busy 2-CPU machine */
static _Thread_local PyThreadState *tl_tstate;

#if PY_VERSION_HEX >= 0x030D0000
#define RL_FINALIZING() Py_IsFinalizing()
#else
#define RL_FINALIZING() _Py_IsFinalizing()
#endif

/* ---- GIL on pool threads ---------------------------------------------- */

void
rl_job_gil_enter(void)
{
    if (tl_tstate) {
        PyEval_RestoreThread(tl_tstate);
    } else {
        PyGILState_Ensure();
        tl_tstate = PyThreadState_Get();
    }
}

void
rl_job_gil_leave(void)
{
    PyEval_SaveThread();
}

static void
pool_thread_exit(void)
{
    if (tl_tstate == NULL || RL_FINALIZING())
        return;
    PyEval_RestoreThread(tl_tstate);
    tl_tstate = NULL;
    PyGILState_Release(PyGILState_UNLOCKED);
}

/* asyncio's default executor size: min(32, cpu + 4). */
static void
default_max(void)
{
    if (pool_max == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        pool_max = (unsigned)(n > 0 ? (n + 4 < 32 ? n + 4 : 32) : 5);
    }
}

static int
pool_get(struct rl_blocking_pool **out)
{
    if (pool == NULL) {
        default_max();
        int res = rl_blocking_create(&pool, pool_max, pool_idle_ms,
                                     pool_spin_us);
        if (res < 0) {
            rl_set_oserror(res);
            return -1;
        }
        rl_blocking_set_exit_hook(pool, pool_thread_exit);
    }
    *out = pool;
    return 0;
}

PyObject *
rl_job_oserror(int err, PyObject *path, PyObject *path2)
{
    errno = err;
    if (path2)
        return PyErr_SetFromErrnoWithFilenameObjects(PyExc_OSError, path,
                                                     path2);
    return PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
}

/* ---- Sink ---------------------------------------------------------------- */

static void job_release(JobObject *j);
static void job_deliver(JobObject *j);
static void dispose_list(struct rl_sink_node *n);

#define JOB_OF(node) rl_container_of(node, JobObject, done)

static void
sink_notify_loop(struct rl_sink *core)
{
    SinkObject *self = rl_container_of(core, SinkObject, core);
    rl_loop_call_soon_threadsafe(&self->loop->core, &self->drain_h->core);
}

/* Sink(loop=None): a ringloop loop gets the cross-thread-queue kind. */
static PyObject *
Sink_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"loop", NULL};
    PyObject *loop = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Sink", kwlist, &loop))
        return NULL;
    rl_state *state = rl_state_by_type(type);
    int ringloop = loop != Py_None && PyObject_TypeCheck(loop, state->LoopType);
    SinkObject *self = (SinkObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    if (ringloop) {
        PyObject *drain = PyObject_GetAttrString((PyObject *)self, "drain");
        if (drain == NULL) {
            Py_DECREF(self);
            return NULL;
        }
        self->loop = (LoopObject *)Py_NewRef(loop);
        self->drain_h = rl_handle_new(state, state->HandleType,
                                      self->loop, drain, NULL, 0, NULL);
        Py_DECREF(drain);
        if (self->drain_h == NULL) {
            Py_DECREF(self);
            return NULL;
        }
        Py_INCREF(self->drain_h); /* taken in advance for the queue */
        if (!PyObject_GC_IsTracked((PyObject *)self->drain_h))
            PyObject_GC_Track(self->drain_h); /* the sink <-> loop cycle */
    }
    int res = rl_sink_init(&self->core, ringloop ? sink_notify_loop : NULL);
    if (res < 0) {
        Py_DECREF(self);
        return rl_set_oserror(res);
    }
    self->ready = 1;
    return (PyObject *)self;
}

static void
dispose_list(struct rl_sink_node *n)
{
    while (n) {
        struct rl_sink_node *next = n->next;
        job_release(JOB_OF(n));
        n = next;
    }
}

static PyObject *
Sink_drain(SinkObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->ready || self->closed)
        Py_RETURN_NONE;
    struct rl_sink_node *n = rl_sink_take(&self->core);
    if (self->drain_h)
        Py_INCREF(self->drain_h); /* for its next time in the queue */
    while (n) {
        struct rl_sink_node *next = n->next;
        job_deliver(JOB_OF(n));
        n = next;
    }
    Py_RETURN_NONE;
}

static void
sink_close(SinkObject *self)
{
    if (!self->ready || self->closed)
        return;
    self->closed = 1;
    int signalled;
    struct rl_sink_node *n = rl_sink_close(&self->core, &signalled);
    HandleObject *h = self->drain_h;
    self->drain_h = NULL;
    if (h) {
        if (!signalled)
            Py_DECREF(h); /* the reference taken in advance for the queue */
        Py_DECREF(h); /* if queued, the loop's queue still holds one */
    }
    dispose_list(n);
}

static PyObject *
Sink_close(SinkObject *self, PyObject *Py_UNUSED(ignored))
{
    sink_close(self);
    Py_RETURN_NONE;
}

static PyObject *
Sink_fileno(SinkObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->ready || self->closed || self->core.efd < 0) {
        PyErr_SetString(PyExc_ValueError, "sink has no file descriptor");
        return NULL;
    }
    return PyLong_FromLong(self->core.efd);
}

static PyObject *
Sink_pending(SinkObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(self->pending);
}

/* GC: a ringloop sink and its loop refer to each other (the loop's
 * _ringloop_sink attribute, the sink's drain handle). Jobs in flight hold
 * the sink from C, so a sink the collector finds unreachable has none. */
static int
Sink_traverse(SinkObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->loop);
    Py_VISIT(self->drain_h);
    if (self->drain_h && !self->core.signalled)
        Py_VISIT(self->drain_h); /* the reference taken for the queue */
    return 0;
}

static int
Sink_clear(SinkObject *self)
{
    sink_close(self);
    Py_CLEAR(self->loop);
    return 0;
}

static void
Sink_dealloc(SinkObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    /* Jobs hold a reference to their sink: none is in flight now. */
    sink_close(self);
    if (self->ready)
        rl_sink_fini(&self->core);
    Py_XDECREF(self->loop);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyMethodDef Sink_methods[] = {
    {"drain", (PyCFunction)Sink_drain, METH_NOARGS,
     "Delivers the results of finished jobs (the loop's reader callback)."},
    {"close", (PyCFunction)Sink_close, METH_NOARGS,
     "Refuses further results, closes the eventfd, drops queued results."},
    {"fileno", (PyCFunction)Sink_fileno, METH_NOARGS,
     "The eventfd to watch with add_reader (not for a ringloop loop's sink)."},
    {"pending", (PyCFunction)Sink_pending, METH_NOARGS,
     "Jobs submitted through this sink and not yet delivered or dropped."},
    {NULL}};

static PyType_Slot Sink_slots[] = {
    {Py_tp_new, Sink_new},
    {Py_tp_dealloc, Sink_dealloc},
    {Py_tp_traverse, Sink_traverse},
    {Py_tp_clear, Sink_clear},
    {Py_tp_methods, Sink_methods},
    {Py_tp_doc, "Where a loop receives results of off-loop jobs."},
    {0, NULL}};

static PyType_Spec Sink_spec = {
    .name = "ringloop._core.Sink",
    .basicsize = sizeof(SinkObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Sink_slots,
};

/* ---- Job ----------------------------------------------------------------- */

static PyObject *str_done, *str_set_result, *str_set_exception,
    *str_add_done_callback, *str_remove_done_callback;

/* Frees the payload and the pool's reference. GIL held. */
static void
job_release(JobObject *j)
{
    if (j->sink)
        j->sink->pending--;
    if (j->kind->clear)
        j->kind->clear(j);
    for (int i = 0; i < 4; i++)
        Py_CLEAR(j->obj[i]);
    Py_CLEAR(j->done_cb);
    Py_CLEAR(j->fut);
    Py_CLEAR(j->sink);
    Py_DECREF(j);
}

/* Jobs finished after their loop closed, waiting for the GIL to be freed
 * (by the next submission or at shutdown): workers never take the GIL. */
static pthread_mutex_t graveyard_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rl_sink_node *graveyard;

void
rl_job_complete(JobObject *j)
{
    if (rl_sink_push(&j->sink->core, &j->done) < 0) {
        if (j->kind->orphan)
            j->kind->orphan(j);
        pthread_mutex_lock(&graveyard_lock);
        j->done.next = graveyard;
        graveyard = &j->done;
        pthread_mutex_unlock(&graveyard_lock);
    }
}

/* GIL held. */
static void
graveyard_empty(void)
{
    if (graveyard == NULL) /* racy peek; a late arrival waits for next time */
        return;
    pthread_mutex_lock(&graveyard_lock);
    struct rl_sink_node *n = graveyard;
    graveyard = NULL;
    pthread_mutex_unlock(&graveyard_lock);
    dispose_list(n);
}

#define job_complete rl_job_complete

static const struct rl_job_kind call_kind;
static void call_once(JobObject *j);

/* While a pool thread holds the GIL it runs the next queued Python calls
 * too, for up to this long: a GIL hand-off costs more than a short call. */
#define CALL_BATCH_NS 50000

static int64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
job_run(struct rl_blocking_job *bj)
{
    JobObject *j = rl_container_of(bj, JobObject, job);
    if (j->kind != &call_kind) {
        j->kind->run(j);
        job_complete(j);
        return;
    }
    rl_job_gil_enter();
    int64_t until = mono_ns() + CALL_BATCH_NS;
    for (;;) {
        call_once(j);
        job_complete(j);
        if (mono_ns() >= until || pool == NULL)
            break;
        struct rl_blocking_job *next = rl_blocking_take(pool);
        if (next == NULL)
            break;
        j = rl_container_of(next, JobObject, job);
        if (next->run != job_run || j->kind != &call_kind) {
            rl_job_gil_leave();
            next->run(next);
            return;
        }
    }
    rl_job_gil_leave();
}

static void
job_deliver(JobObject *j)
{
    PyObject *fut = j->fut;
    if (j->kind->again && j->kind->again(j) > 0)
        return;
    if (j->done_cb) {
        PyObject *r = PyObject_CallMethodOneArg(fut, str_remove_done_callback,
                                                j->done_cb);
        if (r == NULL)
            PyErr_Clear();
        Py_XDECREF(r);
    }
    PyObject *done = PyObject_CallMethodNoArgs(fut, str_done);
    int is_done = done ? PyObject_IsTrue(done) : -1;
    Py_XDECREF(done);
    if (is_done != 0) {
        if (is_done < 0)
            PyErr_WriteUnraisable(fut);
        job_release(j);
        return;
    }
    PyObject *res = j->kind->finish(j);
    PyObject *r;
    if (res) {
        r = PyObject_CallMethodOneArg(fut, str_set_result, res);
        Py_DECREF(res);
    } else {
        PyObject *exc = rl_fetch_exception();
        r = PyObject_CallMethodOneArg(fut, str_set_exception, exc);
        Py_XDECREF(exc);
        if (r == NULL) { /* e.g. StopIteration: asyncio refuses it */
            exc = rl_fetch_exception();
            r = PyObject_CallMethodOneArg(fut, str_set_exception, exc);
            Py_XDECREF(exc);
        }
    }
    if (r == NULL)
        PyErr_WriteUnraisable(fut);
    Py_XDECREF(r);
    job_release(j);
}

/* The future's done callback: a cancelled future takes its job out of the
 * pool's queue if it has not started. */
static PyObject *
Job_on_done(JobObject *self, PyObject *Py_UNUSED(fut))
{
    if (self->fut == NULL || pool == NULL)
        Py_RETURN_NONE;
    if (rl_blocking_cancel(pool, &self->job)) {
        Py_INCREF(self);
        job_release(self); /* the pool's reference */
        Py_DECREF(self);
    }
    Py_RETURN_NONE;
}

static void
Job_dealloc(JobObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->data && self->kind->clear)
        self->kind->clear(self); /* never submitted */
    for (int i = 0; i < 4; i++)
        Py_XDECREF(self->obj[i]);
    Py_XDECREF(self->done_cb);
    Py_XDECREF(self->fut);
    Py_XDECREF(self->sink);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyMethodDef Job_methods[] = {
    {"_on_done", (PyCFunction)Job_on_done, METH_O, NULL},
    {NULL}};

static PyType_Slot Job_slots[] = {
    {Py_tp_dealloc, Job_dealloc},
    {Py_tp_methods, Job_methods},
    {Py_tp_doc, "An off-loop job (internal)."},
    {0, NULL}};

static PyType_Spec Job_spec = {
    .name = "ringloop._core.Job",
    .basicsize = sizeof(JobObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Job_slots,
};

static PyTypeObject *JobType, *SinkType; /* set once by rl_rtjob_setup */

JobObject *
rl_job_new(PyObject *module, const struct rl_job_kind *kind, PyObject *sink,
           PyObject *fut)
{
    (void)module;
    if (!PyObject_TypeCheck(sink, SinkType)) {
        PyErr_SetString(PyExc_TypeError, "expected a Sink");
        return NULL;
    }
    JobObject *j = PyObject_New(JobObject, JobType);
    if (j == NULL)
        return NULL;
    memset(&j->job, 0, sizeof(*j) - offsetof(JobObject, job));
    Py_INCREF(JobType);
    j->job.run = job_run;
    j->kind = kind;
    j->sink = (SinkObject *)Py_NewRef(sink);
    j->fut = Py_NewRef(fut);
    return j;
}

static int
pool_spawn(JobObject *j)
{
    struct rl_blocking_pool *p;
    if (pool_get(&p) < 0)
        return -1;
    int res = rl_blocking_submit(p, &j->job);
    if (res < 0) {
        rl_set_oserror(res);
        return -1;
    }
    return 0;
}

static int
job_start(JobObject *j, int (*spawn)(JobObject *j), int py_errors)
{
    graveyard_empty();
    if (j->sink->closed) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    if (spawn == pool_spawn) {
        /* A pool job not started yet leaves the queue when its future is
         * cancelled; a C task cannot be unqueued, so it needs no callback. */
        j->done_cb = PyObject_GetAttrString((PyObject *)j, "_on_done");
        if (j->done_cb == NULL)
            return -1;
        PyObject *r = PyObject_CallMethodOneArg(
            j->fut, str_add_done_callback, j->done_cb);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    Py_INCREF(j); /* the pool's (or the task's) */
    j->sink->pending++;
    int res = spawn(j);
    if (res < 0) {
        j->sink->pending--;
        Py_DECREF(j);
        if (!py_errors)
            rl_set_oserror(res);
        return -1;
    }
    return 0;
}

int
rl_job_submit(JobObject *j)
{
    return job_start(j, pool_spawn, 1);
}

int
rl_job_start(JobObject *j, int (*spawn)(JobObject *j))
{
    return job_start(j, spawn, 0);
}

/* ---- Python callables ---------------------------------------------------- */

enum { CALL_FN, CALL_ARGS, CALL_KWARGS, CALL_CTX };
/* After run: obj[CALL_FN] holds the result, obj[CALL_ARGS] the exception. */

/* GIL held. */
static void
call_once(JobObject *j)
{
    PyObject *ctx = j->obj[CALL_CTX];
    int entered = ctx && PyContext_Enter(ctx) == 0;
    PyObject *res = NULL;
    if (ctx == NULL || entered)
        res = PyObject_Call(j->obj[CALL_FN], j->obj[CALL_ARGS],
                            j->obj[CALL_KWARGS]);
    PyObject *exc = res ? NULL : rl_fetch_exception();
    if (entered && PyContext_Exit(ctx) < 0 && exc == NULL) {
        Py_CLEAR(res);
        exc = rl_fetch_exception();
    }
    Py_SETREF(j->obj[CALL_FN], res);
    Py_SETREF(j->obj[CALL_ARGS], exc);
    Py_CLEAR(j->obj[CALL_KWARGS]);
}

static void
call_run(JobObject *j)
{
    rl_job_gil_enter();
    call_once(j);
    rl_job_gil_leave();
}

static PyObject *
call_finish(JobObject *j)
{
    if (j->obj[CALL_FN])
        return Py_NewRef(j->obj[CALL_FN]);
    PyObject *exc = j->obj[CALL_ARGS];
    if (exc == NULL) {
        PyErr_SetString(PyExc_SystemError, "blocking job lost its result");
        return NULL;
    }
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    return NULL;
}

static const struct rl_job_kind call_kind = {call_run, call_finish, NULL};

/* blocking_call(sink, fut, fn, args, kwargs, context) -> fut */
static PyObject *
blocking_call(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "blocking_call takes 6 arguments");
        return NULL;
    }
    if (!PyTuple_Check(args[3]) ||
        (args[4] != Py_None && !PyDict_Check(args[4])) ||
        (args[5] != Py_None && !PyContext_CheckExact(args[5]))) {
        PyErr_SetString(PyExc_TypeError, "blocking_call: bad arguments");
        return NULL;
    }
    JobObject *j = rl_job_new(module, &call_kind, args[0], args[1]);
    if (j == NULL)
        return NULL;
    j->obj[CALL_FN] = Py_NewRef(args[2]);
    j->obj[CALL_ARGS] = Py_NewRef(args[3]);
    j->obj[CALL_KWARGS] = args[4] == Py_None ? NULL : Py_NewRef(args[4]);
    j->obj[CALL_CTX] = args[5] == Py_None ? NULL : Py_NewRef(args[5]);
    int res = rl_job_submit(j);
    Py_DECREF(j);
    return res < 0 ? NULL : Py_NewRef(args[1]);
}

static PyObject *
blocking_configure(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"max_threads", "idle_ms", "spin_us", NULL};
    default_max();
    unsigned max = pool_max, idle = pool_idle_ms, spin = pool_spin_us;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|III", kwlist, &max,
                                     &idle, &spin))
        return NULL;
    if (max == 0) {
        PyErr_SetString(PyExc_ValueError, "max_threads must be at least 1");
        return NULL;
    }
    pool_max = max;
    pool_idle_ms = idle;
    pool_spin_us = spin;
    if (pool)
        rl_blocking_configure(pool, max, idle, spin);
    Py_RETURN_NONE;
}

static PyObject *
blocking_stats(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    default_max();
    struct rl_blocking_stats st = {0, 0, 0, pool_max};
    if (pool)
        rl_blocking_stats(pool, &st);
    return Py_BuildValue("{sIsIsIsIsI}", "threads", st.threads, "idle",
                         st.idle, "queued", st.queued, "max_threads",
                         st.max_threads, "workers", rl_rtfs_workers());
}

static PyObject *
blocking_shutdown(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    struct rl_blocking_pool *p = pool;
    pool = NULL;
    if (p) {
        Py_BEGIN_ALLOW_THREADS
        rl_blocking_shutdown(p);
        Py_END_ALLOW_THREADS
    }
    graveyard_empty();
    Py_RETURN_NONE;
}

static PyObject *
blocking_after_fork(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    tl_tstate = NULL;
    if (pool)
        rl_blocking_after_fork(pool);
    Py_RETURN_NONE;
}

static PyMethodDef rtjob_functions[] = {
    {"blocking_call", (PyCFunction)(void (*)(void))blocking_call,
     METH_FASTCALL,
     "blocking_call(sink, fut, fn, args, kwargs, context) -> fut\n\n"
     "Runs fn(*args, **kwargs) in the blocking pool; the result goes to fut "
     "through sink."},
    {"blocking_configure", (PyCFunction)(void (*)(void))blocking_configure,
     METH_VARARGS | METH_KEYWORDS,
     "blocking_configure(max_threads=, idle_ms=, spin_us=)"},
    {"blocking_stats", blocking_stats, METH_NOARGS, "The pool's counters."},
    {"blocking_shutdown", blocking_shutdown, METH_NOARGS,
     "Runs queued jobs, joins the pool's threads (at exit)."},
    {"blocking_after_fork", blocking_after_fork, METH_NOARGS,
     "Resets the pool in a fork child."},
    {NULL}};

int
rl_rtjob_setup(PyObject *module)
{
#define INTERN(var, s)                                                         \
    if (var == NULL && (var = PyUnicode_InternFromString(s)) == NULL)          \
        return -1;
    INTERN(str_done, "done");
    INTERN(str_set_result, "set_result");
    INTERN(str_set_exception, "set_exception");
    INTERN(str_add_done_callback, "add_done_callback");
    INTERN(str_remove_done_callback, "remove_done_callback");
#undef INTERN
    JobType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Job_spec, NULL);
    if (JobType == NULL || PyModule_AddType(module, JobType) < 0)
        return -1;
    SinkType =
        (PyTypeObject *)PyType_FromModuleAndSpec(module, &Sink_spec, NULL);
    if (SinkType == NULL || PyModule_AddType(module, SinkType) < 0)
        return -1;
    return PyModule_AddFunctions(module, rtjob_functions);
}
