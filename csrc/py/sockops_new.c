/*
 * sockops_new.c - SockOps, the factory of socket operations: one instance
 * in ringloop._sockets, whose sock_* methods call it once a socket call
 * would block. Each method checks its arguments, fills in a SockOp
 * (sockops.c) and starts it: as a direct ring operation, or as a
 * readiness poll followed by the socket call (see sockops.c for which and
 * why). Also registers the module's socket types (rl_sock_setup_types).
 *
 * Threads: loop thread only (the methods run with the GIL held, on the
 * thread that runs the loop, as asyncio's do).
 */
#include "py/sockops.h"

#include <limits.h>
#include <poll.h>
#include <string.h>

/* The families whose addresses sockops.c converts itself (make_sockaddr). */
static int
family_converted(PyObject *sock)
{
    PyObject *f = PyObject_GetAttrString(sock, "family");
    long family = f ? PyLong_AsLong(f) : -1;
    Py_XDECREF(f);
    if (family == -1 && PyErr_Occurred()) {
        PyErr_Clear(); /* a socket-like object: wait the selector way */
        return 0;
    }
    return family == AF_INET || family == AF_INET6 || family == AF_UNIX;
}

/* Direct receives only where a cancel always beats the data (sockops.c). */
static int
ring_defers_taskrun(LoopObject *loop)
{
    return strcmp(rl_ring_describe(loop->core.ring),
                  "single_issuer|defer_taskrun") == 0;
}

/* ---- creating operations ------------------------------------------------ */

/* Common arguments (loop, fut, sock, fd, ...): a queued operation, or
 * NULL with an exception. */
static SockOpObject *
op_new(SockOpsObject *ops, PyObject *const *args, Py_ssize_t nargs,
       Py_ssize_t want, const char *name, int kind)
{
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments", name,
                     want);
        return NULL;
    }
    PyObject *loop = args[0];
    if (!PyObject_TypeCheck(loop, ops->state->LoopType)) {
        PyErr_SetString(PyExc_TypeError, "a ringloop loop is required");
        return NULL;
    }
    LoopObject *lp = (LoopObject *)loop;
    if (lp->closed || !lp->core_ready || lp->core.closing) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return NULL;
    }
    long fd = PyLong_AsLong(args[3]);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    if (fd < 0 || fd > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "Invalid file descriptor: %ld", fd);
        return NULL;
    }
    SockOpObject *op =
        (SockOpObject *)ops->OpType->tp_alloc(ops->OpType, 0);
    if (op == NULL)
        return NULL;
    rl_sockop_prepare(op);
    op->ops = (SockOpsObject *)Py_NewRef(ops);
    op->loop = (LoopObject *)Py_NewRef(loop);
    op->fut = Py_NewRef(args[1]);
    op->sock = Py_NewRef(args[2]);
    op->fd = (int)fd;
    op->kind = (char)kind;
    op->state = S_QUEUED;
    return op;
}

static PyObject *
fail(SockOpObject *op)
{
    /* not started: only Python's reference exists */
    op->state = S_DONE;
    Py_DECREF(op);
    return NULL;
}

static Py_ssize_t
size_arg(PyObject *obj)
{
    Py_ssize_t n = PyNumber_AsSsize_t(obj, PyExc_OverflowError);
    if (n < 0 && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "negative buffer size");
    return n;
}

static PyObject *
SockOps_recv(SockOpsObject *ops, PyObject *const *args, Py_ssize_t nargs)
{
    SockOpObject *op = op_new(ops, args, nargs, 5, "recv", K_RECV);
    if (op == NULL)
        return NULL;
    if ((op->len = size_arg(args[4])) < 0)
        return fail(op);
    if (!ring_defers_taskrun(op->loop) || op->len == 0)
        return rl_sockop_start(op, 1, POLLIN);
    op->obj = PyBytes_FromStringAndSize(NULL, op->len);
    if (op->obj == NULL)
        return fail(op);
    return rl_sockop_start(op, 0, 0);
}

static int
writable_view(SockOpObject *op, PyObject *buf, Py_ssize_t nbytes)
{
    if (PyObject_GetBuffer(buf, &op->view, PyBUF_WRITABLE) < 0)
        return -1;
    op->has_view = 1;
    if (nbytes > op->view.len) {
        PyErr_SetString(PyExc_ValueError,
                        "nbytes is greater than the length of the buffer");
        return -1;
    }
    op->len = nbytes ? nbytes : op->view.len;
    return 0;
}

static PyObject *
SockOps_recv_into(SockOpsObject *ops, PyObject *const *args,
                  Py_ssize_t nargs)
{
    SockOpObject *op = op_new(ops, args, nargs, 5, "recv_into", K_RECV_INTO);
    if (op == NULL)
        return NULL;
    op->arg = Py_NewRef(args[4]);
    if (!ring_defers_taskrun(op->loop))
        return rl_sockop_start(op, 1, POLLIN);
    if (writable_view(op, args[4], 0) < 0)
        return fail(op);
    return rl_sockop_start(op, 0, 0);
}

static PyObject *
SockOps_recvfrom(SockOpsObject *ops, PyObject *const *args,
                 Py_ssize_t nargs)
{
    SockOpObject *op = op_new(ops, args, nargs, 5, "recvfrom", K_RECVFROM);
    if (op == NULL)
        return NULL;
    if ((op->len = size_arg(args[4])) < 0)
        return fail(op);
    if (!ring_defers_taskrun(op->loop) || op->len == 0 ||
        !family_converted(op->sock))
        return rl_sockop_start(op, 1, POLLIN);
    op->obj = PyBytes_FromStringAndSize(NULL, op->len);
    if (op->obj == NULL)
        return fail(op);
    return rl_sockop_start(op, 0, 0);
}

static PyObject *
SockOps_recvfrom_into(SockOpsObject *ops, PyObject *const *args,
                      Py_ssize_t nargs)
{
    SockOpObject *op =
        op_new(ops, args, nargs, 6, "recvfrom_into", K_RECVFROM_INTO);
    if (op == NULL)
        return NULL;
    op->arg = Py_NewRef(args[4]);
    if ((op->len = size_arg(args[5])) < 0)
        return fail(op);
    if (!ring_defers_taskrun(op->loop) || !family_converted(op->sock))
        return rl_sockop_start(op, 1, POLLIN);
    if (writable_view(op, args[4], op->len) < 0)
        return fail(op);
    return rl_sockop_start(op, 0, 0);
}

static PyObject *
SockOps_sendall(SockOpsObject *ops, PyObject *const *args, Py_ssize_t nargs)
{
    SockOpObject *op = op_new(ops, args, nargs, 6, "sendall", K_SEND);
    if (op == NULL)
        return NULL;
    if ((op->done = size_arg(args[5])) < 0)
        return fail(op);
    if (PyObject_GetBuffer(args[4], &op->view, PyBUF_SIMPLE) < 0)
        return fail(op);
    op->has_view = 1;
    op->len = op->view.len;
    if (op->done > op->len) {
        PyErr_SetString(PyExc_ValueError, "more sent than the data holds");
        return fail(op);
    }
    return rl_sockop_start(op, 0, 0);
}

static PyObject *
SockOps_sendto(SockOpsObject *ops, PyObject *const *args, Py_ssize_t nargs)
{
    SockOpObject *op = op_new(ops, args, nargs, 6, "sendto", K_SENDTO);
    if (op == NULL)
        return NULL;
    op->obj = Py_NewRef(args[4]);
    op->arg = Py_NewRef(args[5]);
    return rl_sockop_start(op, 1, POLLOUT);
}

static PyObject *
SockOps_connect(SockOpsObject *ops, PyObject *const *args, Py_ssize_t nargs)
{
    SockOpObject *op = op_new(ops, args, nargs, 5, "connect", K_CONNECT);
    if (op == NULL)
        return NULL;
    op->arg = Py_NewRef(args[4]);
    return rl_sockop_start(op, 1, POLLOUT);
}

static PyObject *
SockOps_accept(SockOpsObject *ops, PyObject *const *args, Py_ssize_t nargs)
{
    SockOpObject *op = op_new(ops, args, nargs, 4, "accept", K_ACCEPT);
    if (op == NULL)
        return NULL;
    if (!ring_defers_taskrun(op->loop) || !family_converted(op->sock))
        return rl_sockop_start(op, 1, POLLIN);
    PyObject *f = PyObject_GetAttrString(op->sock, "family");
    PyObject *t = f ? PyObject_GetAttrString(op->sock, "type") : NULL;
    PyObject *p = t ? PyObject_GetAttrString(op->sock, "proto") : NULL;
    op->obj = p ? PyTuple_Pack(3, f, t, p) : NULL;
    Py_XDECREF(f);
    Py_XDECREF(t);
    Py_XDECREF(p);
    if (op->obj == NULL)
        return fail(op);
    return rl_sockop_start(op, 0, 0);
}

static PyObject *
SockOps_wait_writable(SockOpsObject *ops, PyObject *const *args,
                      Py_ssize_t nargs)
{
    SockOpObject *op =
        op_new(ops, args, nargs, 4, "wait_writable", K_WAIT_WRITABLE);
    if (op == NULL)
        return NULL;
    return rl_sockop_start(op, 1, POLLOUT);
}

static PyObject *
SockOps_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "SockOps() takes no arguments");
        return NULL;
    }
    PyObject *module = PyType_GetModuleByDef(type, &rl_module);
    if (module == NULL)
        return NULL;
    SockOpsObject *ops = (SockOpsObject *)type->tp_alloc(type, 0);
    if (ops == NULL)
        return NULL;
    ops->state = rl_get_state(module);
    ops->OpType = (PyTypeObject *)PyObject_GetAttrString(module, "_SockOp");
    PyObject *socket_mod = PyImport_ImportModule("socket");
    if (socket_mod != NULL) {
        ops->socket_type = PyObject_GetAttrString(socket_mod, "socket");
        Py_DECREF(socket_mod);
    }
    ops->set_result = PyObject_GetAttrString(ops->state->Future,
                                             "set_result");
    ops->set_exception = PyObject_GetAttrString(ops->state->Future,
                                                "set_exception");
    if (!ops->OpType || !ops->socket_type || !ops->set_result ||
        !ops->set_exception) {
        Py_DECREF(ops);
        return NULL;
    }
    return (PyObject *)ops;
}

static int
SockOps_traverse(SockOpsObject *ops, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(ops));
    Py_VISIT(ops->OpType);
    Py_VISIT(ops->socket_type);
    Py_VISIT(ops->set_result);
    Py_VISIT(ops->set_exception);
    return 0;
}

static int
SockOps_clear(SockOpsObject *ops)
{
    Py_CLEAR(ops->OpType);
    Py_CLEAR(ops->socket_type);
    Py_CLEAR(ops->set_result);
    Py_CLEAR(ops->set_exception);
    return 0;
}

static void
SockOps_dealloc(SockOpsObject *ops)
{
    PyTypeObject *tp = Py_TYPE(ops);
    PyObject_GC_UnTrack(ops);
    SockOps_clear(ops);
    tp->tp_free((PyObject *)ops);
    Py_DECREF(tp);
}

#define FASTCALL(fn) (PyCFunction)(void (*)(void))(fn), METH_FASTCALL

static PyMethodDef SockOps_methods[] = {
    {"recv", FASTCALL(SockOps_recv),
     "recv(loop, fut, sock, fd, nbytes) -> op: fut gets sock.recv(nbytes)."},
    {"recv_into", FASTCALL(SockOps_recv_into),
     "recv_into(loop, fut, sock, fd, buf) -> op: fut gets sock.recv_into(buf)."},
    {"recvfrom", FASTCALL(SockOps_recvfrom),
     "recvfrom(loop, fut, sock, fd, bufsize) -> op: fut gets "
     "sock.recvfrom(bufsize)."},
    {"recvfrom_into", FASTCALL(SockOps_recvfrom_into),
     "recvfrom_into(loop, fut, sock, fd, buf, nbytes) -> op: fut gets "
     "sock.recvfrom_into(buf, nbytes)."},
    {"sendall", FASTCALL(SockOps_sendall),
     "sendall(loop, fut, sock, fd, data, sent) -> op: sends data[sent:]; "
     "fut gets None."},
    {"sendto", FASTCALL(SockOps_sendto),
     "sendto(loop, fut, sock, fd, data, address) -> op: once writable, fut "
     "gets sock.sendto(data, 0, address)."},
    {"connect", FASTCALL(SockOps_connect),
     "connect(loop, fut, sock, fd, address) -> op: the outcome of a "
     "connect() in progress."},
    {"accept", FASTCALL(SockOps_accept),
     "accept(loop, fut, sock, fd) -> op: fut gets (conn, address), conn "
     "non-blocking."},
    {"wait_writable", FASTCALL(SockOps_wait_writable),
     "wait_writable(loop, fut, sock, fd) -> op: fut gets None once fd is "
     "writable."},
    {NULL},
};

static PyType_Slot SockOps_slots[] = {
    {Py_tp_doc, "Creates the socket operations of the loops' sock_* "
                "methods (one instance in ringloop._sockets)."},
    {Py_tp_new, SockOps_new},
    {Py_tp_methods, SockOps_methods},
    {Py_tp_traverse, SockOps_traverse},
    {Py_tp_clear, SockOps_clear},
    {Py_tp_dealloc, SockOps_dealloc},
    {0, NULL},
};

static PyType_Spec SockOps_spec = {
    .name = "ringloop._core.SockOps",
    .basicsize = sizeof(SockOpsObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = SockOps_slots,
};

static int
add_type(PyObject *module, PyType_Spec *spec)
{
    PyObject *tp = PyType_FromModuleAndSpec(module, spec, NULL);
    if (tp == NULL)
        return -1;
    int res = PyModule_AddType(module, (PyTypeObject *)tp);
    Py_DECREF(tp);
    return res;
}

int
rl_sock_setup_types(PyObject *module)
{
    if (add_type(module, &rl_sockop_spec) < 0 ||
        add_type(module, &SockOps_spec) < 0 ||
        rl_fdwatch_setup_type(module) < 0)
        return -1;
    return 0;
}
