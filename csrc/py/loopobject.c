/*
 * loopobject.c - the Loop type: the C half of ringloop.EventLoop.
 *
 * It owns the core loop (ring, ready queue, timers, cross-thread queue) and
 * implements the hot methods: call_soon, call_later, call_at,
 * call_soon_threadsafe, time, create_future, create_task, get_debug,
 * is_running, is_closed, stop, plus _run (iterate until stopped) and
 * _close_core. Cold paths (run_forever's setup, exception handling,
 * executors, async generators) live in python/ringloop/_loop.py.
 *
 * Threads: every method runs with the GIL held on the loop's thread,
 * except call_soon_threadsafe (any thread). The GIL is released only while
 * the ring may block.
 */
#include "py/module.h"

#include "core/clock.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LOOP(core_ptr) rl_container_of(core_ptr, LoopObject, core)
#define HANDLE(cb_ptr) rl_container_of(cb_ptr, HandleObject, core)

/* ---- core hooks ------------------------------------------------------- */

static int
run_debug(LoopObject *self, HandleObject *h)
{
    Py_XSETREF(self->current_handle, Py_NewRef((PyObject *)h));
    int64_t start = rl_clock_now_ns();
    int res = rl_handle_run(h);
    double took = (double)(rl_clock_now_ns() - start) / 1e9;
    Py_CLEAR(self->current_handle);
    if (res < 0)
        return res;
    PyObject *limit_obj =
        PyObject_GetAttr((PyObject *)self, self->state->str_slow_duration);
    double limit = limit_obj ? PyFloat_AsDouble(limit_obj) : 0.1;
    Py_XDECREF(limit_obj);
    if (PyErr_Occurred())
        return -1;
    if (took >= limit) {
        PyObject *seconds = PyFloat_FromDouble(took);
        PyObject *r = seconds ? PyObject_CallMethodObjArgs(
                                    (PyObject *)self, self->state->str_log_slow,
                                    (PyObject *)h, seconds, NULL)
                              : NULL;
        Py_XDECREF(seconds);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    return 0;
}

static int
hook_run(struct rl_loop *core, struct rl_callback *cb)
{
    LoopObject *self = LOOP(core);
    HandleObject *h = HANDLE(cb);
    int res = 0;
    if (!h->cancelled) /* asyncio skips cancelled handles the same way */
        res = self->debug ? run_debug(self, h) : rl_handle_run(h);
    rl_handle_release_queued(h);
    return res;
}

static void
hook_block_begin(struct rl_loop *core)
{
    LOOP(core)->blocked_tstate = PyEval_SaveThread();
}

static void
hook_block_end(struct rl_loop *core)
{
    PyEval_RestoreThread(LOOP(core)->blocked_tstate);
}

static int
hook_signalled(struct rl_loop *core)
{
    return PyErr_CheckSignals();
}

static const struct rl_loop_hooks loop_hooks = {
    .run = hook_run,
    .block_begin = hook_block_begin,
    .block_end = hook_block_end,
    .signalled = hook_signalled,
};

void
rl_loop_completion_error(LoopObject *loop, const char *message,
                         const char *context_key, PyObject *context)
{
    PyObject *exc = rl_fetch_exception();
    if (exc == NULL)
        return;
    if (PyErr_GivenExceptionMatches(exc, PyExc_SystemExit) ||
        PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt)) {
        if (loop->pending_exc == NULL) {
            loop->pending_exc = exc;
            loop->core.interrupted = 1;
        } else {
            Py_DECREF(exc);
        }
        return;
    }
    PyObject *ctx = Py_BuildValue("{s:s,s:O}", "message", message,
                                  "exception", exc);
    if (ctx && context_key && context &&
        PyDict_SetItemString(ctx, context_key, context) < 0)
        Py_CLEAR(ctx);
    PyObject *r = ctx ? PyObject_CallMethod((PyObject *)loop,
                                            "call_exception_handler", "O", ctx)
                      : NULL;
    if (r == NULL)
        PyErr_WriteUnraisable((PyObject *)loop);
    Py_XDECREF(r);
    Py_XDECREF(ctx);
    Py_DECREF(exc);
}

int
rl_call_soon_method(LoopObject *loop, PyObject *obj, const char *method,
                    PyObject *arg)
{
    PyObject *fn = PyObject_GetAttrString(obj, method);
    if (fn == NULL)
        return -1;
    PyObject *r = arg ? PyObject_CallMethod((PyObject *)loop, "call_soon",
                                            "OO", fn, arg)
                      : PyObject_CallMethod((PyObject *)loop, "call_soon",
                                            "O", fn);
    Py_DECREF(fn);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* ---- checks shared by the scheduling methods -------------------------- */

static int
check_closed(LoopObject *self)
{
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

static int
check_thread(LoopObject *self)
{
    if (self->thread_ident != 0 &&
        self->thread_ident != PyThread_get_thread_ident()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Non-thread-safe operation invoked on an event loop "
                        "other than the current one");
        return -1;
    }
    return 0;
}

/* asyncio checks callbacks in debug mode only; ringloop always rejects a
 * non-callable at once (cheap here, and far easier to debug). Debug mode
 * adds asyncio's coroutine-function check. */
static int
check_callback(LoopObject *self, PyObject *callback, const char *method)
{
    if (!PyCallable_Check(callback)) {
        if (PyCoro_CheckExact(callback))
            PyErr_Format(PyExc_TypeError,
                         "coroutines cannot be used with %s()", method);
        else
            PyErr_Format(PyExc_TypeError,
                         "a callable object was expected by %s(), got %R",
                         method, callback);
        return -1;
    }
    if (self->debug) {
        PyObject *r = PyObject_CallMethod((PyObject *)self, "_check_callback",
                                          "Os", callback, method);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    return 0;
}

/* Splits fastcall arguments `callback, *args, context=None` and checks
 * the loop and the callback. Returns 0 or -1. */
static int
parse_call_args(LoopObject *self, const char *method, PyObject *const *args,
                Py_ssize_t nargs, PyObject *kwnames, PyObject **context,
                int thread_checked)
{
    *context = NULL;
    if (kwnames != NULL) {
        Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t i = 0; i < nkw; i++) {
            PyObject *key = PyTuple_GET_ITEM(kwnames, i);
            if (!PyUnicode_Check(key) ||
                PyUnicode_CompareWithASCIIString(key, "context") != 0) {
                PyErr_Format(PyExc_TypeError,
                             "%s() got an unexpected keyword argument '%S'",
                             method, key);
                return -1;
            }
            *context = args[nargs + i];
        }
    }
    if (nargs < 1) {
        PyErr_Format(PyExc_TypeError,
                     "%s() missing required argument 'callback'", method);
        return -1;
    }
    if (check_closed(self) < 0)
        return -1;
    if (self->debug && thread_checked && check_thread(self) < 0)
        return -1;
    return check_callback(self, args[0], method);
}

/* ---- scheduling ------------------------------------------------------- */

static PyObject *
Loop_call_soon(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
               PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *context;
    if (parse_call_args(self, "call_soon", args, nargs, kwnames, &context,
                        1) < 0)
        return NULL;
    HandleObject *h =
        rl_handle_new(self->state, self->state->HandleType, self, args[0],
                      args + 1, nargs - 1, context);
    if (h == NULL)
        return NULL;
    if (rl_loop_call_soon(&self->core, &h->core) < 0) {
        Py_DECREF(h);
        return PyErr_NoMemory();
    }
    Py_INCREF(h); /* the ready queue's reference */
    return (PyObject *)h;
}

static PyObject *
schedule_at(LoopObject *self, double when, const char *method,
            PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *context;
    if (parse_call_args(self, method, args, nargs, kwnames, &context, 1) < 0)
        return NULL;
    if (isnan(when)) {
        PyErr_SetString(PyExc_ValueError, "timer deadline must not be NaN");
        return NULL;
    }
    HandleObject *h =
        rl_handle_new(self->state, self->state->TimerHandleType, self,
                      args[0], args + 1, nargs - 1, context);
    if (h == NULL)
        return NULL;
    h->when = when;
    if (rl_loop_call_at(&self->core, &h->core, when) < 0) {
        Py_DECREF(h);
        return PyErr_NoMemory();
    }
    Py_INCREF(h); /* the timer heap's reference */
    return (PyObject *)h;
}

/* call_at(when, ...) and call_later(delay, ...): the first argument is a
 * number of seconds, absolute or relative to now. */
static PyObject *
schedule_timer(LoopObject *self, const char *method, const char *arg_name,
               const char *none_message, int relative, PyObject *const *args,
               Py_ssize_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 1) {
        PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'",
                     method, arg_name);
        return NULL;
    }
    if (args[0] == Py_None) {
        PyErr_SetString(PyExc_TypeError, none_message);
        return NULL;
    }
    double when = PyFloat_AsDouble(args[0]);
    if (when == -1.0 && PyErr_Occurred())
        return NULL;
    if (relative)
        when += rl_clock_now_s();
    return schedule_at(self, when, method, args + 1, nargs - 1, kwnames);
}

static PyObject *
Loop_call_at(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
             PyObject *kwnames)
{
    return schedule_timer(self, "call_at", "when", "when cannot be None", 0,
                          args, nargsf, kwnames);
}

static PyObject *
Loop_call_later(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
                PyObject *kwnames)
{
    return schedule_timer(self, "call_later", "delay",
                          "delay must not be None", 1, args, nargsf, kwnames);
}

static PyObject *
Loop_call_soon_threadsafe(LoopObject *self, PyObject *const *args,
                          Py_ssize_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *context;
    if (parse_call_args(self, "call_soon_threadsafe", args, nargs, kwnames,
                        &context, 0) < 0)
        return NULL;
    HandleObject *h =
        rl_handle_new(self->state, self->state->HandleType, self, args[0],
                      args + 1, nargs - 1, context);
    if (h == NULL)
        return NULL;
    Py_INCREF(h); /* the cross-thread queue's reference */
    rl_loop_call_soon_threadsafe(&self->core, &h->core);
    return (PyObject *)h;
}

static PyObject *
Loop_time(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble(rl_clock_now_s());
}

/* ---- futures and tasks ------------------------------------------------ */

static PyObject *
Loop_create_future(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *argv[] = {(PyObject *)self};
    return PyObject_Vectorcall(self->state->Future, argv, 0,
                               self->state->kwnames_loop);
}

static PyObject *
Loop_create_task(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
                 PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *name = Py_None, *context = Py_None;
    int fast = nargs == 1 && self->task_factory == NULL && !self->debug;
    if (fast && kwnames != NULL) {
        Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t i = 0; i < nkw && fast; i++) {
            PyObject *key = PyTuple_GET_ITEM(kwnames, i);
            if (PyUnicode_CompareWithASCIIString(key, "name") == 0)
                name = args[nargs + i];
            else if (PyUnicode_CompareWithASCIIString(key, "context") == 0)
                context = args[nargs + i];
            else
                fast = 0;
        }
    }
    if (!fast) {
        /* Task factories, extra keywords (eager_start, ...) and debug mode:
         * the running Python's own asyncio semantics, in Python. */
        PyObject *meth = PyObject_GetAttr((PyObject *)self,
                                          self->state->str_create_task_slow);
        if (meth == NULL)
            return NULL;
        PyObject *res = PyObject_Vectorcall(meth, args, nargsf, kwnames);
        Py_DECREF(meth);
        return res;
    }
    if (check_closed(self) < 0)
        return NULL;
    PyObject *argv[] = {args[0], (PyObject *)self, name, context};
    return PyObject_Vectorcall(self->state->Task, argv, 1,
                               self->state->kwnames_task);
}

/* ---- running ---------------------------------------------------------- */

static PyObject *
Loop_get_debug(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->debug);
}

static PyObject *
Loop_is_running(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->running);
}

static PyObject *
Loop_is_closed(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->closed);
}

static PyObject *
Loop_stop(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    self->core.stopping = 1;
    Py_RETURN_NONE;
}

static PyObject *
Loop_run(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_closed(self) < 0)
        return NULL;
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError,
                        "This event loop is already running");
        return NULL;
    }
    int res = rl_loop_prepare_run(&self->core);
    if (res == -EBADF) {
        PyErr_SetString(PyExc_RuntimeError,
                        "this event loop was created by the parent process "
                        "before fork(); create a new loop in the child");
        return NULL;
    }
    if (res == -EEXIST) {
        PyErr_SetString(PyExc_RuntimeError,
                        "this event loop has I/O in flight on the thread "
                        "that last ran it; run it on that thread");
        return NULL;
    }
    if (res < 0)
        return rl_set_oserror(res);
    self->running = 1;
    do {
        res = rl_loop_run_once(&self->core);
    } while (res == 0 && !self->core.stopping);
    self->running = 0;
    self->core.stopping = 0;
    if (self->pending_exc) {
        /* A completion stashed SystemExit/KeyboardInterrupt. */
        PyObject *exc = self->pending_exc;
        self->pending_exc = NULL;
        if (res == -1 && PyErr_Occurred()) {
            Py_DECREF(exc); /* something newer is already propagating */
        } else {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        return NULL;
    }
    if (res == -1)
        return NULL;
    if (res < 0)
        return rl_set_oserror(res);
    Py_RETURN_NONE;
}

/* Drops every queued callback. The loop is marked closed first: a
 * callback's finalizer that schedules more work gets "loop is closed". */
static void
drop_queued(LoopObject *self)
{
    if (!self->core_ready)
        return;
    struct rl_callback *cb;
    while ((cb = rl_loop_take_queued(&self->core)) != NULL)
        rl_handle_release_queued(HANDLE(cb));
}

static void
close_core(LoopObject *self)
{
    self->closed = 1;
    drop_queued(self);
    if (self->core_ready) {
        self->core_ready = 0;
        rl_loop_fini(&self->core);
        self->state->open_loops--;
    }
}

static PyObject *
Loop_close_core(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Cannot close a running event loop");
        return NULL;
    }
    close_core(self);
    Py_RETURN_NONE;
}

static PyObject *
Loop_ring_info(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_closed(self) < 0)
        return NULL;
    return Py_BuildValue("{sssI}", "setup",
                         rl_ring_describe(self->core.ring), "inflight",
                         rl_ring_inflight(self->core.ring));
}

/* ---- attributes used by asyncio's own helpers ------------------------- */

static PyObject *
Loop_get_debug_attr(LoopObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->debug);
}

static int
Loop_set_debug_attr(LoopObject *self, PyObject *value,
                    void *Py_UNUSED(closure))
{
    int v = value ? PyObject_IsTrue(value) : 0;
    if (v < 0)
        return -1;
    self->debug = (char)v;
    return 0;
}

static PyObject *
Loop_get_thread_id(LoopObject *self, void *Py_UNUSED(closure))
{
    if (self->thread_ident == 0)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLong(self->thread_ident);
}

static int
Loop_set_thread_id(LoopObject *self, PyObject *value,
                   void *Py_UNUSED(closure))
{
    if (value == NULL || value == Py_None) {
        self->thread_ident = 0;
        return 0;
    }
    unsigned long v = PyLong_AsUnsignedLong(value);
    if (v == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    self->thread_ident = v;
    return 0;
}

static PyObject *
Loop_get_task_factory(LoopObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->task_factory ? self->task_factory : Py_None);
}

static int
Loop_set_task_factory(LoopObject *self, PyObject *value,
                      void *Py_UNUSED(closure))
{
    Py_XSETREF(self->task_factory,
               value == Py_None ? NULL : Py_XNewRef(value));
    return 0;
}

static PyObject *
Loop_get_current_handle(LoopObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->current_handle ? self->current_handle : Py_None);
}

static PyObject *
Loop_get_closed(LoopObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->closed);
}

static PyObject *
Loop_get_stopping(LoopObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->core.stopping);
}

/* ---- object protocol -------------------------------------------------- */

static PyObject *
Loop_get_backend(LoopObject *self, void *Py_UNUSED(closure))
{
    if (self->core.ring == NULL)
        Py_RETURN_NONE;
    return PyUnicode_FromString(rl_ring_backend_name(self->core.ring));
}

/* One WARNING per process when io_uring was refused and epoll took over. */
static int
log_fallback(void)
{
    int why = rl_ring_fallback_notice();
    if (why == 0)
        return 0;
    PyObject *logging = PyImport_ImportModule("logging");
    PyObject *logger =
        logging ? PyObject_CallMethod(logging, "getLogger", "s", "ringloop")
                : NULL;
    PyObject *res =
        logger ? PyObject_CallMethod(
                     logger, "warning", "ssi",
                     "io_uring is unavailable (%s, errno %d): using the epoll "
                     "backend; set RINGLOOP_BACKEND=epoll to silence this",
                     strerror(-why), -why)
               : NULL;
    Py_XDECREF(res);
    Py_XDECREF(logger);
    Py_XDECREF(logging);
    return res ? 0 : -1;
}

static PyObject *
Loop_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    int want = rl_ring_backend_wanted();
    if (want < 0) {
        PyObject *name = PyUnicode_DecodeFSDefault(getenv("RINGLOOP_BACKEND"));
        if (name != NULL)
            PyErr_Format(PyExc_ValueError,
                         "RINGLOOP_BACKEND must be 'io_uring' or 'epoll' (or "
                         "unset), not %R",
                         name);
        Py_XDECREF(name);
        return NULL;
    }
    LoopObject *self = (LoopObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->state = rl_state_by_type(type);
    int res = rl_loop_init(&self->core, &loop_hooks);
    if (res < 0) {
        self->closed = 1;
        Py_DECREF(self);
        if (want == RL_RING_URING && res != -EMFILE && res != -ENFILE)
            return rl_set_oserror_msg(
                res, "io_uring is unavailable here (kernel older than 5.1, "
                     "kernel.io_uring_disabled set, or a seccomp profile such "
                     "as Docker's default blocks it) and RINGLOOP_BACKEND="
                     "io_uring forbids the epoll fallback");
        return rl_set_oserror(res);
    }
    if (log_fallback() < 0)
        PyErr_WriteUnraisable(NULL); /* a broken logging setup */
    self->core_ready = 1;
    self->state->open_loops++;
    return (PyObject *)self;
}

static int
Loop_traverse(LoopObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->task_factory);
    Py_VISIT(self->current_handle);
    /* Queued handles are untracked (handleobject.c): nothing to visit. */
    return 0;
}

static int
Loop_clear(LoopObject *self)
{
    Py_CLEAR(self->task_factory);
    Py_CLEAR(self->current_handle);
    Py_CLEAR(self->pending_exc);
    if (!self->running)
        drop_queued(self);
    return 0;
}

static void
Loop_dealloc(LoopObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Loop_clear(self);
    close_core(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

#define FASTCALL_KW (METH_FASTCALL | METH_KEYWORDS)

static PyMethodDef Loop_methods[] = {
    {"call_soon", (PyCFunction)(void (*)(void))Loop_call_soon, FASTCALL_KW,
     "call_soon($self, callback, /, *args, context=None)\n--\n\n"
     "Run callback(*args) on the next iteration; returns a Handle."},
    {"call_later", (PyCFunction)(void (*)(void))Loop_call_later, FASTCALL_KW,
     "call_later($self, delay, callback, /, *args, context=None)\n--\n\n"
     "Run callback(*args) after delay seconds; returns a TimerHandle."},
    {"call_at", (PyCFunction)(void (*)(void))Loop_call_at, FASTCALL_KW,
     "call_at($self, when, callback, /, *args, context=None)\n--\n\n"
     "Run callback(*args) at loop time when; returns a TimerHandle."},
    {"call_soon_threadsafe",
     (PyCFunction)(void (*)(void))Loop_call_soon_threadsafe, FASTCALL_KW,
     "call_soon_threadsafe($self, callback, /, *args, context=None)\n--\n\n"
     "Like call_soon(), callable from any thread; wakes the loop."},
    {"time", (PyCFunction)Loop_time, METH_NOARGS,
     "time($self, /)\n--\n\nThe loop clock: time.monotonic() seconds."},
    {"create_future", (PyCFunction)Loop_create_future, METH_NOARGS,
     "create_future($self, /)\n--\n\nA new asyncio.Future bound to the loop."},
    {"create_task", (PyCFunction)(void (*)(void))Loop_create_task,
     FASTCALL_KW,
     "create_task($self, coro, /, *, name=None, context=None, **kwargs)\n"
     "--\n\nSchedule a coroutine as an asyncio.Task."},
    {"get_debug", (PyCFunction)Loop_get_debug, METH_NOARGS, NULL},
    {"is_running", (PyCFunction)Loop_is_running, METH_NOARGS, NULL},
    {"is_closed", (PyCFunction)Loop_is_closed, METH_NOARGS, NULL},
    {"stop", (PyCFunction)Loop_stop, METH_NOARGS,
     "stop($self, /)\n--\n\nStop after the current iteration."},
    {"_run", (PyCFunction)Loop_run, METH_NOARGS,
     "Iterate until stop() is called (run_forever without its set-up)."},
    {"_close_core", (PyCFunction)Loop_close_core, METH_NOARGS,
     "Drop queued callbacks, drain the ring and free it."},
    {"_ring_info", (PyCFunction)Loop_ring_info, METH_NOARGS,
     "The ring's setup flags and the number of operations in flight."},
    {NULL},
};

static PyGetSetDef Loop_getset[] = {
    {"_debug", (getter)Loop_get_debug_attr, (setter)Loop_set_debug_attr, NULL,
     NULL},
    {"_thread_id", (getter)Loop_get_thread_id, (setter)Loop_set_thread_id,
     NULL, NULL},
    {"_task_factory", (getter)Loop_get_task_factory,
     (setter)Loop_set_task_factory, NULL, NULL},
    {"_current_handle", (getter)Loop_get_current_handle, NULL, NULL, NULL},
    {"_closed", (getter)Loop_get_closed, NULL, NULL, NULL},
    {"_stopping", (getter)Loop_get_stopping, NULL, NULL, NULL},
    {"_backend", (getter)Loop_get_backend, NULL, NULL, NULL},
    {NULL},
};

static PyType_Slot Loop_slots[] = {
    {Py_tp_doc, "The C core of ringloop.EventLoop."},
    {Py_tp_new, Loop_new},
    {Py_tp_methods, Loop_methods},
    {Py_tp_getset, Loop_getset},
    {Py_tp_traverse, Loop_traverse},
    {Py_tp_clear, Loop_clear},
    {Py_tp_dealloc, Loop_dealloc},
    {0, NULL},
};

static PyType_Spec Loop_spec = {
    .name = "ringloop._core.Loop",
    .basicsize = sizeof(LoopObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Loop_slots,
};

int
rl_loop_setup_type(PyObject *module, rl_state *state)
{
    state->LoopType =
        (PyTypeObject *)PyType_FromModuleAndSpec(module, &Loop_spec, NULL);
    if (state->LoopType == NULL ||
        PyModule_AddType(module, state->LoopType) < 0)
        return -1;
    return 0;
}
