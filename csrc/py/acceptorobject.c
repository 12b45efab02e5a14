/*
 * acceptorobject.c - Acceptor: one multishot accept on a listening socket.
 *
 * Acceptor(loop, sock, callback): start() queues the accept; each accepted
 * connection calls callback(fd) straight from completion dispatch (fd is a
 * new O_CLOEXEC descriptor the callback owns). When the accept ends with
 * an error, callback(-errno) is called and the acceptor is idle until
 * start() again.
 *
 * The acceptor works on its own duplicate of the socket's descriptor, so
 * the caller may close the socket object at once, as asyncio does. A
 * pending accept keeps the listening file open, so close() first shuts
 * the socket down (new connections are refused from that moment, as after
 * close(2)), cancels the accept, and closes the duplicate once the final
 * completion says the kernel has let go of it.
 *
 * Lifetime: while an accept is in flight it holds a reference to the
 * acceptor. Threads: loop thread only.
 */
#include "py/module.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    LoopObject *loop;
    PyObject *callback;
    struct rl_op op;
    int fd; /* our duplicate, -1 once closed */
    char armed;
    char closed;
} AcceptorObject;

static void
close_fd_when_idle(AcceptorObject *a)
{
    if (!a->closed || a->armed || a->fd < 0)
        return;
    close(a->fd);
    a->fd = -1;
}

static int
loop_gone(AcceptorObject *a)
{
    return a->loop->core.closing || a->loop->closed;
}

static void
report(AcceptorObject *a, int value)
{
    PyObject *arg = PyLong_FromLong(value);
    PyObject *r = arg ? PyObject_CallOneArg(a->callback, arg) : NULL;
    Py_XDECREF(arg);
    if (r == NULL)
        rl_loop_completion_error(a->loop, "Error on accepting a connection",
                                 NULL, NULL);
    Py_XDECREF(r);
}

static int start(AcceptorObject *a);

static void
accept_complete(struct rl_op *op, int res, unsigned flags)
{
    AcceptorObject *a = rl_container_of(op, AcceptorObject, op);
    int final = !(flags & RL_OP_MORE);
    if (final)
        a->armed = 0;
    if (a->closed || loop_gone(a)) {
        if (res >= 0)
            close(res); /* accepted as we stopped: not ours to keep */
    } else if (res >= 0) {
        report(a, res);
        if (final && !a->closed && start(a) < 0)
            rl_loop_completion_error(a->loop, "Error on accepting a "
                                     "connection", NULL, NULL);
    } else if (res != -ECANCELED) {
        report(a, res);
    }
    if (final) {
        close_fd_when_idle(a);
        Py_DECREF(a);
    }
}

static int
start(AcceptorObject *a)
{
    if (a->armed || a->closed || loop_gone(a))
        return 0;
    int res = rl_ring_accept_multishot(a->loop->core.ring, &a->op, a->fd);
    if (res < 0) {
        rl_set_oserror(res);
        return -1;
    }
    a->armed = 1;
    Py_INCREF(a);
    return 0;
}

static PyObject *
Acceptor_start(AcceptorObject *a, PyObject *Py_UNUSED(ignored))
{
    if (start(a) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Acceptor_close(AcceptorObject *a, PyObject *Py_UNUSED(ignored))
{
    if (a->closed)
        Py_RETURN_NONE;
    a->closed = 1;
    if (a->armed) {
        shutdown(a->fd, SHUT_RD); /* stop listening now */
        if (!loop_gone(a))
            rl_ring_cancel(a->loop->core.ring, &a->op);
    }
    close_fd_when_idle(a);
    Py_RETURN_NONE;
}

static PyObject *
Acceptor_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *loop, *sock, *callback;
    if (!PyArg_ParseTuple(args, "OOO:Acceptor", &loop, &sock, &callback))
        return NULL;
    rl_state *st = rl_state_by_type(type);
    if (!PyObject_TypeCheck(loop, st->LoopType)) {
        PyErr_SetString(PyExc_TypeError, "a ringloop loop is required");
        return NULL;
    }
    int fd = PyObject_AsFileDescriptor(sock);
    if (fd < 0)
        return NULL;
    AcceptorObject *a = (AcceptorObject *)type->tp_alloc(type, 0);
    if (a == NULL)
        return NULL;
    a->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (a->fd < 0) {
        Py_DECREF(a);
        return rl_set_oserror(-errno);
    }
    a->loop = (LoopObject *)Py_NewRef(loop);
    a->callback = Py_NewRef(callback);
    a->op.complete = accept_complete;
    return (PyObject *)a;
}

static int
Acceptor_traverse(AcceptorObject *a, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(a));
    Py_VISIT(a->loop);
    Py_VISIT(a->callback);
    return 0;
}

static int
Acceptor_clear(AcceptorObject *a)
{
    Py_CLEAR(a->callback);
    return 0;
}

static void
Acceptor_dealloc(AcceptorObject *a)
{
    PyTypeObject *tp = Py_TYPE(a);
    PyObject_GC_UnTrack(a);
    Acceptor_clear(a);
    a->closed = 1;
    close_fd_when_idle(a); /* never armed here: an accept holds a ref */
    Py_CLEAR(a->loop);
    tp->tp_free((PyObject *)a);
    Py_DECREF(tp);
}

static PyObject *
Acceptor_get_armed(AcceptorObject *a, void *c)
{
    return PyBool_FromLong(a->armed);
}

static PyGetSetDef Acceptor_getset[] = {
    {"armed", (getter)Acceptor_get_armed, NULL,
     "True while an accept is in flight.", NULL},
    {NULL},
};

static PyMethodDef Acceptor_methods[] = {
    {"start", (PyCFunction)Acceptor_start, METH_NOARGS,
     "Queue the multishot accept (no-op if queued or closed)."},
    {"close", (PyCFunction)Acceptor_close, METH_NOARGS,
     "Stop accepting now; the duplicate descriptor closes when the kernel "
     "lets go of it."},
    {NULL},
};

static PyType_Slot Acceptor_slots[] = {
    {Py_tp_doc, "A multishot accept on a listening socket."},
    {Py_tp_new, Acceptor_new},
    {Py_tp_methods, Acceptor_methods},
    {Py_tp_getset, Acceptor_getset},
    {Py_tp_traverse, Acceptor_traverse},
    {Py_tp_clear, Acceptor_clear},
    {Py_tp_dealloc, Acceptor_dealloc},
    {0, NULL},
};

static PyType_Spec Acceptor_spec = {
    .name = "ringloop._core.Acceptor",
    .basicsize = sizeof(AcceptorObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Acceptor_slots,
};

int
rl_acceptor_setup_type(PyObject *module, rl_state *state)
{
    state->AcceptorType =
        (PyTypeObject *)PyType_FromModuleAndSpec(module, &Acceptor_spec, NULL);
    if (state->AcceptorType == NULL ||
        PyModule_AddType(module, state->AcceptorType) < 0)
        return -1;
    return 0;
}
