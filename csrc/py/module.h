/*
 * module.h - ringloop._core module state and the declarations shared by the
 * binding files (one file per Python type, CPython style).
 *
 * All state lives in rl_state (PEP 687: multi-phase init, heap types).
 * Objects that need it often cache a pointer to it; that is safe because an
 * instance holds its type and a heap type holds its module.
 */
#ifndef RL_PY_MODULE_H
#define RL_PY_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "core/common.h"
#include "core/loop.h"

typedef struct {
    PyTypeObject *LoopType;
    PyTypeObject *HandleType;
    PyTypeObject *TimerHandleType;
    PyTypeObject *TransportType;      /* StreamTransport */
    PyTypeObject *AcceptorType;
    PyTypeObject *DatagramType;       /* DatagramTransport */
    PyObject *BufferedProtocol;       /* asyncio.BufferedProtocol */
    PyObject *minus_one;              /* get_buffer(-1) */
    PyObject *Future;                 /* asyncio.Future */
    PyObject *Task;                   /* asyncio.Task */
    PyObject *format_callback_source; /* asyncio.format_helpers */
    PyObject *extract_stack;          /* asyncio.format_helpers */
    PyObject *kwnames_loop;           /* ("loop",) */
    PyObject *kwnames_task;           /* ("loop", "name", "context") */
    PyObject *str_report_error;       /* "_report_callback_error" */
    PyObject *str_log_slow;           /* "_log_slow_callback" */
    PyObject *str_slow_duration;      /* "slow_callback_duration" */
    PyObject *str_create_task_slow;   /* "_create_task_slow" */
    struct HandleObject *free_handles; /* freelist, linked through ->loop */
    int nfree_handles;
    Py_ssize_t open_loops;   /* for leak checks in the tests */
    Py_ssize_t live_handles;
} rl_state;

extern PyModuleDef rl_module;

static inline rl_state *
rl_get_state(PyObject *module)
{
    return (rl_state *)PyModule_GetState(module);
}

static inline rl_state *
rl_state_by_type(PyTypeObject *tp)
{
    return rl_get_state(PyType_GetModuleByDef(tp, &rl_module));
}

/* The Loop object: the C half of ringloop.EventLoop. */
typedef struct {
    PyObject_HEAD
    struct rl_loop core;
    rl_state *state;
    PyObject *task_factory;
    PyObject *current_handle;
    PyThreadState *blocked_tstate; /* saved while the ring may block */
    PyObject *pending_exc; /* SystemExit/KeyboardInterrupt from a completion */
    int direct_receives;   /* transports' direct receives in flight */
    unsigned long thread_ident;    /* thread running the loop, or 0 */
    char debug;
    char closed;
    char running;
    char core_ready; /* rl_loop_init succeeded and fini not yet run */
} LoopObject;

/* A callback queued on a loop: Handle, and TimerHandle for call_at. */
enum { RL_INLINE_ARGS = 3 };

typedef struct HandleObject {
    PyObject_HEAD
    struct rl_callback core;
    LoopObject *loop;
    PyObject *callback; /* NULL once cancelled */
    PyObject *context;
    PyObject *args_tuple; /* arguments beyond RL_INLINE_ARGS, else NULL */
    PyObject *args[RL_INLINE_ARGS];
    Py_ssize_t nargs;
    PyObject *source_traceback; /* debug mode only */
    double when;                /* TimerHandle: the deadline given */
    char cancelled;
} HandleObject;

/* handleobject.c */
int rl_handle_setup_types(PyObject *module, rl_state *state);
void rl_handle_free_freelist(rl_state *state);
HandleObject *rl_handle_new(rl_state *state, PyTypeObject *type,
                            LoopObject *loop, PyObject *callback,
                            PyObject *const *args, Py_ssize_t nargs,
                            PyObject *context);
/* Drops a loop queue's reference to h (see handleobject.c on GC). */
void rl_handle_release_queued(HandleObject *h);
/* Runs the callback (h must not be cancelled) in its context. 0, or -1
 * when SystemExit or
 * KeyboardInterrupt must propagate; other errors go to the loop's
 * exception handler. */
int rl_handle_run(HandleObject *h);

/* transportobject.c, acceptorobject.c */
int rl_transport_setup_type(PyObject *module, rl_state *state);
int rl_acceptor_setup_type(PyObject *module, rl_state *state);
/* datagramobject.c */
int rl_datagram_setup_type(PyObject *module, rl_state *state);

/* loopobject.c */
int rl_loop_setup_type(PyObject *module, rl_state *state);
/* For completion handlers, which run outside any Handle: takes the
 * exception being raised. SystemExit and KeyboardInterrupt end the
 * iteration and propagate from run_forever (as from a Handle); anything
 * else goes to the loop's exception handler with `message` and the
 * optional context object under `context_key`. */
void rl_loop_completion_error(LoopObject *loop, const char *message,
                              const char *context_key, PyObject *context);
/* Schedules obj.<method>(arg), or obj.<method>() if arg is NULL, with
 * loop.call_soon: the protocol callbacks that asyncio defers. 0, or -1
 * with an exception set. */
int rl_call_soon_method(LoopObject *loop, PyObject *obj, const char *method,
                        PyObject *arg);

/* The exception being raised, as one object (PyErr_GetRaisedException). */
static inline PyObject *
rl_fetch_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

/* errors.c: raises the OSError subclass for a negative errno; NULL. */
PyObject *rl_set_oserror(int neg_errno);
/* The same with our own message instead of strerror's. */
PyObject *rl_set_oserror_msg(int neg_errno, const char *message);

/* sockops*.c, fdwatch.c: the sock_* operations (SockOps, _SockOp) and
 * add_reader/add_writer (FdWatch); rl_sock_setup_types (sockops_new.c)
 * adds all three types to the module. */
int rl_sock_setup_types(PyObject *module);
int rl_fdwatch_setup_type(PyObject *module);
/* pipewriter.c: PipeWriter, the write pipe transport's background writes */
int rl_pipewriter_setup_type(PyObject *module);

/* rt_spawn.c: ringloop.rt.spawn's fast path (_core._rt_spawn) */
int rl_rt_setup(PyObject *module);

#endif
