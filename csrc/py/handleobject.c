/*
 * handleobject.c - Handle and TimerHandle: a callback, its arguments and
 * its context, queued on a loop by call_soon / call_at and friends.
 *
 * Ownership: each loop queue a handle sits in (ready, timers, the
 * cross-thread queue) holds one reference to it; the handle holds its loop.
 * cancel() marks the handle, releases the callback and arguments (as
 * asyncio does) and takes a scheduled timer out of the heap at once.
 * A handle that runs keeps its own references to the callback and
 * arguments for the duration of the call, since the callback may cancel
 * its own handle.
 *
 * GC: a handle is not tracked while a loop queue owns it, so the collector
 * never walks the (possibly huge) ready queue or the timer heap; objects a
 * queued handle references simply count as reachable until it leaves the
 * queue. When a queue lets go of a handle that something else still
 * references (a Timeout holding its TimerHandle, say), the handle becomes
 * tracked, so cycles through it are collectable from then on
 * (rl_handle_release_queued).
 *
 * Freed handles are kept on a per-module freelist (up to FREELIST_MAX) and
 * re-initialized on reuse: this skips the allocator and, more importantly,
 * the generation-0 GC accounting that every new GC object pays, which
 * would otherwise trigger a collection every few hundred call_soon()s.
 *
 * Handles are not asyncio.Handle subclasses (as with uvloop); they offer
 * the same methods: cancel, cancelled, get_context, when (TimerHandle), _run.
 */
#include "py/module.h"

#include "core/clock.h"

static void
handle_clear_call(HandleObject *h)
{
    Py_CLEAR(h->callback);
    Py_CLEAR(h->args_tuple);
    for (Py_ssize_t i = 0; i < RL_INLINE_ARGS; i++)
        Py_CLEAR(h->args[i]);
    h->nargs = 0;
}

enum { FREELIST_MAX = 256 };

/* A zeroed, untracked handle of the given type. */
static HandleObject *
handle_alloc(rl_state *state, PyTypeObject *type)
{
    HandleObject *h = state->free_handles;
    if (h != NULL) {
        state->free_handles = (HandleObject *)h->loop;
        state->nfree_handles--;
        PyObject_Init((PyObject *)h, type); /* type reference, refcount 1 */
    } else {
        h = PyObject_GC_New(HandleObject, type);
        if (h == NULL)
            return NULL;
    }
    state->live_handles++;
    memset((char *)h + sizeof(PyObject), 0,
           sizeof(HandleObject) - sizeof(PyObject));
    return h;
}

void
rl_handle_release_queued(HandleObject *h)
{
    if (Py_REFCNT(h) > 1 && !PyObject_GC_IsTracked((PyObject *)h))
        PyObject_GC_Track(h);
    Py_DECREF(h);
}

void
rl_handle_free_freelist(rl_state *state)
{
    while (state->free_handles) {
        HandleObject *h = state->free_handles;
        state->free_handles = (HandleObject *)h->loop;
        PyObject_GC_Del(h);
    }
    state->nfree_handles = 0;
}

HandleObject *
rl_handle_new(rl_state *state, PyTypeObject *type, LoopObject *loop,
              PyObject *callback, PyObject *const *args, Py_ssize_t nargs,
              PyObject *context)
{
    HandleObject *h = handle_alloc(state, type);
    if (h == NULL)
        return NULL;
    rl_timer_init(&h->core.timer);
    h->loop = (LoopObject *)Py_NewRef(loop);
    h->callback = Py_NewRef(callback);
    if (nargs <= RL_INLINE_ARGS) {
        for (Py_ssize_t i = 0; i < nargs; i++)
            h->args[i] = Py_NewRef(args[i]);
    } else {
        h->args_tuple = PyTuple_New(nargs);
        if (h->args_tuple == NULL)
            goto fail;
        for (Py_ssize_t i = 0; i < nargs; i++)
            PyTuple_SET_ITEM(h->args_tuple, i, Py_NewRef(args[i]));
    }
    h->nargs = nargs;
    if (context == NULL || context == Py_None) {
        h->context = PyContext_CopyCurrent();
        if (h->context == NULL)
            goto fail;
    } else {
        h->context = Py_NewRef(context);
    }
    if (loop->debug) {
        /* The caller's frame is the current Python frame: no need to
         * drop a frame for call_soon itself, unlike asyncio. */
        PyObject *frame = (PyObject *)PyEval_GetFrame();
        h->source_traceback = PyObject_CallOneArg(
            state->extract_stack, frame ? frame : Py_None);
        if (h->source_traceback == NULL)
            goto fail;
    }
    return h;
fail:
    Py_DECREF(h);
    return NULL;
}

static PyObject *
handle_args_tuple(HandleObject *h)
{
    if (h->args_tuple)
        return Py_NewRef(h->args_tuple);
    if (h->callback == NULL)
        Py_RETURN_NONE;
    PyObject *t = PyTuple_New(h->nargs);
    if (t == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < h->nargs; i++)
        PyTuple_SET_ITEM(t, i, Py_NewRef(h->args[i]));
    return t;
}

static int
is_exit_exception(void)
{
    return PyErr_ExceptionMatches(PyExc_SystemExit) ||
           PyErr_ExceptionMatches(PyExc_KeyboardInterrupt);
}

/* Reports an exception raised by a callback to the loop's handler. The
 * handler may itself raise SystemExit or KeyboardInterrupt, which then
 * propagates (-1), as asyncio's call_exception_handler lets them. */
static int
handle_report_error(HandleObject *h)
{
    PyObject *exc = rl_fetch_exception();
    PyObject *res = PyObject_CallMethodObjArgs(
        (PyObject *)h->loop, h->loop->state->str_report_error,
        (PyObject *)h, exc, NULL);
    Py_DECREF(exc);
    if (res != NULL) {
        Py_DECREF(res);
        return 0;
    }
    if (is_exit_exception())
        return -1;
    PyErr_WriteUnraisable((PyObject *)h);
    return 0;
}

int
rl_handle_run(HandleObject *h)
{
    /* The callback may cancel this handle: hold our own references. */
    PyObject *callback = Py_NewRef(h->callback);
    PyObject *args_tuple = Py_XNewRef(h->args_tuple);
    PyObject *inline_args[RL_INLINE_ARGS];
    PyObject *const *argv;
    Py_ssize_t nargs = h->nargs;
    if (args_tuple) {
        argv = &PyTuple_GET_ITEM(args_tuple, 0);
    } else {
        for (Py_ssize_t i = 0; i < nargs; i++)
            inline_args[i] = Py_NewRef(h->args[i]);
        argv = inline_args;
    }
    PyObject *context = Py_NewRef(h->context);

    PyObject *res = NULL;
    if (PyContext_Enter(context) == 0) {
        res = PyObject_Vectorcall(callback, argv, nargs, NULL);
        if (PyContext_Exit(context) < 0)
            Py_CLEAR(res);
    }

    Py_DECREF(context);
    if (!args_tuple)
        for (Py_ssize_t i = 0; i < nargs; i++)
            Py_DECREF(inline_args[i]);
    Py_XDECREF(args_tuple);
    Py_DECREF(callback);

    if (res != NULL) {
        Py_DECREF(res);
        return 0;
    }
    if (is_exit_exception())
        return -1;
    return handle_report_error(h);
}

/* ---- Python methods --------------------------------------------------- */

static PyObject *
Handle_cancel(HandleObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->cancelled)
        Py_RETURN_NONE;
    self->cancelled = 1;
    handle_clear_call(self);
    LoopObject *loop = self->loop;
    if (loop && loop->core_ready &&
        rl_loop_cancel_timer(&loop->core, &self->core))
        rl_handle_release_queued(self); /* the heap's; the caller holds one */
    Py_RETURN_NONE;
}

static PyObject *
Handle_cancelled(HandleObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->cancelled);
}

static PyObject *
Handle_get_context(HandleObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self->context ? self->context : Py_None);
}

static PyObject *
Handle_run(HandleObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->callback == NULL) /* cancelled, or cleared by the GC */
        Py_RETURN_NONE;
    if (rl_handle_run(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
TimerHandle_when(HandleObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble(self->when);
}

static PyObject *
Handle_get_callback(HandleObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->callback ? self->callback : Py_None);
}

static PyObject *
Handle_get_args(HandleObject *self, void *Py_UNUSED(closure))
{
    return handle_args_tuple(self);
}

static PyObject *
Handle_get_loop(HandleObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->loop ? (PyObject *)self->loop : Py_None);
}

static PyObject *
Handle_get_scheduled(HandleObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(rl_timer_queued(&self->core.timer));
}

static PyObject *
Handle_get_source_traceback(HandleObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->source_traceback ? self->source_traceback
                                            : Py_None);
}

static PyObject *
Handle_repr(HandleObject *self)
{
    rl_state *state = PyType_GetModuleState(Py_TYPE(self));
    const char *name = Py_TYPE(self)->tp_name;
    const char *dot = strrchr(name, '.');
    name = dot ? dot + 1 : name;
    PyObject *when = NULL;
    if (Py_IS_TYPE(self, state->TimerHandleType) ||
        PyObject_TypeCheck(self, state->TimerHandleType)) {
        when = PyUnicode_FromFormat(" when=%R", TimerHandle_when(self, NULL));
    } else {
        when = PyUnicode_FromString("");
    }
    if (when == NULL)
        return NULL;
    PyObject *res;
    if (self->cancelled || self->callback == NULL) {
        res = PyUnicode_FromFormat("<%s cancelled%U>", name, when);
    } else {
        PyObject *args = handle_args_tuple(self);
        PyObject *cb = args ? PyObject_CallFunctionObjArgs(
                                  state->format_callback_source,
                                  self->callback, args, NULL)
                            : NULL;
        Py_XDECREF(args);
        res = cb ? PyUnicode_FromFormat("<%s%U %U>", name, when, cb) : NULL;
        Py_XDECREF(cb);
    }
    Py_DECREF(when);
    return res;
}

static int
Handle_traverse(HandleObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->loop);
    Py_VISIT(self->callback);
    Py_VISIT(self->context);
    Py_VISIT(self->args_tuple);
    for (Py_ssize_t i = 0; i < RL_INLINE_ARGS; i++)
        Py_VISIT(self->args[i]);
    Py_VISIT(self->source_traceback);
    return 0;
}

static int
Handle_clear(HandleObject *self)
{
    handle_clear_call(self);
    Py_CLEAR(self->context);
    Py_CLEAR(self->source_traceback);
    Py_CLEAR(self->loop);
    return 0;
}

static void
Handle_dealloc(HandleObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    /* Both handle types are made with their module: this is its state. */
    rl_state *state = PyType_GetModuleState(tp);
    if (PyObject_GC_IsTracked((PyObject *)self))
        PyObject_GC_UnTrack(self);
    Handle_clear(self);
    state->live_handles--;
    if (state->nfree_handles < FREELIST_MAX) {
        self->loop = (LoopObject *)state->free_handles;
        state->free_handles = self;
        state->nfree_handles++;
    } else {
        tp->tp_free((PyObject *)self);
    }
    Py_DECREF(tp);
}

static PyMethodDef Handle_methods[] = {
    {"cancel", (PyCFunction)Handle_cancel, METH_NOARGS,
     "cancel($self, /)\n--\n\nCancel the call; a no-op if it already ran."},
    {"cancelled", (PyCFunction)Handle_cancelled, METH_NOARGS,
     "cancelled($self, /)\n--\n\nWhether cancel() was called."},
    {"get_context", (PyCFunction)Handle_get_context, METH_NOARGS,
     "get_context($self, /)\n--\n\nThe contextvars.Context the call runs in."},
    {"_run", (PyCFunction)Handle_run, METH_NOARGS, NULL},
    {NULL},
};

static PyGetSetDef Handle_getset[] = {
    {"_callback", (getter)Handle_get_callback, NULL, NULL, NULL},
    {"_args", (getter)Handle_get_args, NULL, NULL, NULL},
    {"_loop", (getter)Handle_get_loop, NULL, NULL, NULL},
    {"_source_traceback", (getter)Handle_get_source_traceback, NULL, NULL,
     NULL},
    {NULL},
};

static PyMemberDef Handle_members[] = {
    {"_cancelled", T_BOOL, offsetof(HandleObject, cancelled), READONLY, NULL},
    {"_context", T_OBJECT, offsetof(HandleObject, context), READONLY, NULL},
    {NULL},
};

static PyType_Slot Handle_slots[] = {
    {Py_tp_doc, "A callback scheduled on a ringloop event loop."},
    {Py_tp_methods, Handle_methods},
    {Py_tp_getset, Handle_getset},
    {Py_tp_members, Handle_members},
    {Py_tp_repr, Handle_repr},
    {Py_tp_traverse, Handle_traverse},
    {Py_tp_clear, Handle_clear},
    {Py_tp_dealloc, Handle_dealloc},
    {0, NULL},
};

static PyType_Spec Handle_spec = {
    .name = "ringloop._core.Handle",
    .basicsize = sizeof(HandleObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE |
             Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Handle_slots,
};

static PyMethodDef TimerHandle_methods[] = {
    {"when", (PyCFunction)TimerHandle_when, METH_NOARGS,
     "when($self, /)\n--\n\nThe loop time the callback is scheduled for."},
    {NULL},
};

static PyGetSetDef TimerHandle_getset[] = {
    {"_scheduled", (getter)Handle_get_scheduled, NULL, NULL, NULL},
    {NULL},
};

static PyMemberDef TimerHandle_members[] = {
    {"_when", T_DOUBLE, offsetof(HandleObject, when), READONLY, NULL},
    {NULL},
};

static PyType_Slot TimerHandle_slots[] = {
    {Py_tp_doc, "A callback scheduled for a given loop time."},
    {Py_tp_methods, TimerHandle_methods},
    {Py_tp_getset, TimerHandle_getset},
    {Py_tp_members, TimerHandle_members},
    {Py_tp_traverse, Handle_traverse},
    {Py_tp_clear, Handle_clear},
    {Py_tp_dealloc, Handle_dealloc},
    {0, NULL},
};

static PyType_Spec TimerHandle_spec = {
    .name = "ringloop._core.TimerHandle",
    .basicsize = sizeof(HandleObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = TimerHandle_slots,
};

int
rl_handle_setup_types(PyObject *module, rl_state *state)
{
    state->HandleType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &Handle_spec, NULL);
    if (state->HandleType == NULL ||
        PyModule_AddType(module, state->HandleType) < 0)
        return -1;
    state->TimerHandleType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &TimerHandle_spec, (PyObject *)state->HandleType);
    if (state->TimerHandleType == NULL ||
        PyModule_AddType(module, state->TimerHandleType) < 0)
        return -1;
    return 0;
}
