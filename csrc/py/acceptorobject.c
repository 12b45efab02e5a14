/*
 * acceptorobject.c - Acceptor: one multishot accept on a listening socket.
 *
 * Acceptor(loop, sock, callback): start() queues the accept; each accepted
 * connection calls callback(fd) straight from completion dispatch (fd is a
 * new O_CLOEXEC descriptor the callback owns). When the accept ends with
 * an error, callback(-errno) is called and the acceptor is idle until
 * start() again. close() cancels the accept and closes the socket once the
 * kernel has let go of it (a pending accept keeps a listening socket
 * open, so closing it earlier would leave it accepting).
 *
 * Lifetime: while an accept is in flight it holds a reference to the
 * acceptor. Threads: loop thread only.
 */
#include "py/module.h"

#include <errno.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    LoopObject *loop;
    PyObject *sock;
    PyObject *callback;
    struct rl_op op;
    int fd;
    char armed;
    char closed;
} AcceptorObject;

static void
close_socket_when_idle(AcceptorObject *a)
{
    if (!a->closed || a->armed || a->sock == NULL)
        return;
    PyObject *sock = a->sock;
    a->sock = NULL;
    PyObject *r = PyObject_CallMethod(sock, "close", NULL);
    if (r == NULL)
        PyErr_WriteUnraisable(sock);
    Py_XDECREF(r);
    Py_DECREF(sock);
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
                                 "socket", a->sock ? a->sock : Py_None);
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
                                     "connection", "socket", a->sock);
    } else if (res != -ECANCELED) {
        report(a, res);
    }
    if (final) {
        close_socket_when_idle(a);
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
    if (a->armed && !loop_gone(a))
        rl_ring_cancel(a->loop->core.ring, &a->op);
    close_socket_when_idle(a);
    if (PyErr_Occurred())
        return NULL;
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
    a->loop = (LoopObject *)Py_NewRef(loop);
    a->sock = Py_NewRef(sock);
    a->callback = Py_NewRef(callback);
    a->fd = fd;
    a->op.complete = accept_complete;
    return (PyObject *)a;
}

static int
Acceptor_traverse(AcceptorObject *a, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(a));
    Py_VISIT(a->loop);
    Py_VISIT(a->sock);
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
    Py_CLEAR(a->sock);
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
     "Stop accepting; the socket closes when the kernel lets go of it."},
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
