/*
 * sockops.c - SockOp, one sock_* call waiting on the loop's ring. Python
 * (ringloop/_sockets.py) checks the arguments and tries the socket call
 * once without waiting, exactly as asyncio does; when that would block it
 * asks SockOps (sockops_new.c) for a SockOp, which completes an asyncio
 * future (an _IOFuture) when the ring says so.
 *
 * Two ways to wait:
 *  - direct: the I/O itself is the ring operation (RECV into the result
 *    bytes or the caller's buffer, RECVMSG for recvfrom, SEND with
 *    MSG_WAITALL for sendall, ACCEPT);
 *  - polled: a single-shot POLL for readiness, then the socket method is
 *    called again, as asyncio's selector loop does (sendto, connect, the
 *    sendfile wait; recv/recvfrom/accept on rings without DEFER_TASKRUN,
 *    and recvfrom/accept on families other than IPv4/IPv6/Unix, whose
 *    addresses only the socket module converts). A direct operation that
 *    meets -EAGAIN falls back to polled.
 *
 * Cancellation never loses data:
 *  - _IOFuture.cancel() calls SockOp.cancel() at once, which asks the
 *    kernel to cancel before the loop next enters it (a done-callback
 *    would run an iteration later). A direct operation reaches the kernel
 *    only just before the loop enters it (deferred submission), after a
 *    last check that it was not cancelled.
 *  - On a DEFER_TASKRUN ring the kernel runs a receive's completion work
 *    only when the loop enters it, after that call's submissions, so a
 *    cancel queued since the last dispatch wins against data or a
 *    connection that arrived meanwhile: -ECANCELED, the data stays in the
 *    socket (research/io_uring_and_scheduler.md §A.4). Other rings may run
 *    that work at any system call: there receives wait with a POLL, which
 *    takes nothing, and the socket call is made only for a live future.
 *  - The completions of one io_uring_enter are all dispatched before any
 *    callback runs, so a receive that beat the cancel has settled its
 *    future first. Its task may still be cancelled before it takes the
 *    result (asyncio.wait_for's timeout, from a callback queued earlier):
 *    Task.cancel() then calls _IOFuture.cancel() on the done future, which
 *    gives the data or connection back to the socket for the next call
 *    (_sockets.py), as asyncio's selector loop would not have read it yet.
 *    A completion that arrives for a cancelled operation anyway (not
 *    expected on DEFER_TASKRUN rings) is given back the same way.
 *
 * Lifetime: a SockOp holds the future, the socket, its buffers (Py_buffer
 * or bytes) and the loop from creation until its final completion (or
 * until its deferred submission sees it cancelled), whatever happens to
 * the future. Then it drops them; the husk lives as long as the future's
 * _rl_op slot. While the loop is closing completions only release.
 * Threads: loop thread only.
 */
#include "py/sockops.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- settling the future ---------------------------------------------- */

static int
loop_gone(SockOpObject *op)
{
    return !op->loop->core_ready || op->loop->core.closing;
}

/* Drops everything the operation holds; the in-flight reference last. */
static void
release(SockOpObject *op)
{
    op->state = S_DONE;
    if (op->has_view) {
        op->has_view = 0;
        PyBuffer_Release(&op->view);
    }
    PyObject *refs[] = {op->fut, op->sock, op->obj, op->arg,
                        (PyObject *)op->loop};
    op->fut = op->sock = op->obj = op->arg = NULL;
    op->loop = NULL;
    for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++)
        Py_XDECREF(refs[i]);
    Py_DECREF(op); /* may free op */
}

/* Completes the future with value (a new reference), or with the
 * exception being raised when value is NULL. Never raises. */
static void
settle(SockOpObject *op, PyObject *value)
{
    PyObject *fn = op->ops->set_result, *arg = value;
    if (value == NULL) {
        fn = op->ops->set_exception;
        arg = rl_fetch_exception();
        if (arg == NULL)
            return;
    }
    PyObject *argv[] = {op->fut, arg};
    PyObject *r = PyObject_Vectorcall(fn, argv, 2, NULL);
    Py_DECREF(arg);
    if (r == NULL)
        rl_loop_completion_error(op->loop,
                                 "Exception in a socket operation's "
                                 "completion",
                                 "future", op->fut);
    Py_XDECREF(r);
}

static void
settle_errno(SockOpObject *op, int neg_errno)
{
    rl_set_oserror(neg_errno);
    settle(op, NULL);
}

/* ---- socket addresses --------------------------------------------------- */

/* A received address as the socket module returns it (makesockaddr in
 * CPython's socketmodule.c) for the families that use direct operations. */
static PyObject *
make_sockaddr(const struct sockaddr_storage *ss, socklen_t len)
{
    if (len == 0)
        Py_RETURN_NONE;
    switch (ss->ss_family) {
    case AF_INET: {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        char host[INET_ADDRSTRLEN];
        if (inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host)) == NULL)
            return PyErr_SetFromErrno(PyExc_OSError);
        return Py_BuildValue("(si)", host, (int)ntohs(a->sin_port));
    }
    case AF_INET6: {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        char host[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host)) == NULL)
            return PyErr_SetFromErrno(PyExc_OSError);
        return Py_BuildValue("(siII)", host, (int)ntohs(a->sin6_port),
                             (unsigned)ntohl(a->sin6_flowinfo),
                             (unsigned)a->sin6_scope_id);
    }
    case AF_UNIX: {
        const struct sockaddr_un *a = (const struct sockaddr_un *)ss;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t n = len > off ? len - off : 0;
        if (n > sizeof(a->sun_path))
            n = sizeof(a->sun_path);
        if (n > 0 && a->sun_path[0] == 0) /* Linux abstract namespace */
            return PyBytes_FromStringAndSize(a->sun_path, (Py_ssize_t)n);
        /* NUL-terminated: the storage was zeroed and is larger */
        return PyUnicode_DecodeFSDefault(a->sun_path);
    }
    default: {
        const struct sockaddr *sa = (const struct sockaddr *)ss;
        return Py_BuildValue("(iy#)", (int)sa->sa_family, sa->sa_data,
                             (Py_ssize_t)sizeof(sa->sa_data));
    }
    }
}

/* ---- the ring operations ------------------------------------------------ */

static int
queue_send(SockOpObject *op)
{
    Py_ssize_t left = op->len - op->done;
    unsigned n = left > SEND_CHUNK ? SEND_CHUNK : (unsigned)left;
    return rl_ring_send(op->loop->core.ring, &op->op, op->fd,
                        (const char *)op->view.buf + op->done, n,
                        MSG_WAITALL | MSG_NOSIGNAL);
}

static int
queue_recvmsg(SockOpObject *op, void *buf, size_t len)
{
    memset(&op->addr, 0, sizeof(op->addr));
    memset(&op->msg, 0, sizeof(op->msg));
    op->iov.iov_base = buf;
    op->iov.iov_len = len;
    op->msg.msg_name = &op->addr;
    op->msg.msg_namelen = sizeof(op->addr);
    op->msg.msg_iov = &op->iov;
    op->msg.msg_iovlen = 1;
    return rl_ring_recvmsg(op->loop->core.ring, &op->op, op->fd, &op->msg,
                           0);
}

static unsigned
clamp_len(Py_ssize_t len)
{
    return len > (Py_ssize_t)0x7fffffff ? 0x7fffffffu : (unsigned)len;
}

static int
queue_io(SockOpObject *op)
{
    struct rl_ring *ring = op->loop->core.ring;
    if (op->polled)
        return rl_ring_poll(ring, &op->op, op->fd, (unsigned)op->poll_mask);
    switch (op->kind) {
    case K_RECV:
        return rl_ring_recv(ring, &op->op, op->fd,
                            PyBytes_AS_STRING(op->obj), clamp_len(op->len),
                            0);
    case K_RECV_INTO:
        return rl_ring_recv(ring, &op->op, op->fd, op->view.buf,
                            clamp_len(op->len), 0);
    case K_RECVFROM:
        return queue_recvmsg(op, PyBytes_AS_STRING(op->obj),
                             (size_t)op->len);
    case K_RECVFROM_INTO:
        return queue_recvmsg(op, op->view.buf, (size_t)op->len);
    case K_SEND:
        return queue_send(op);
    case K_ACCEPT:
        memset(&op->addr, 0, sizeof(op->addr));
        op->addrlen = sizeof(op->addr);
        return rl_ring_accept(ring, &op->op, op->fd,
                              (struct sockaddr *)&op->addr, &op->addrlen);
    default:
        return -EINVAL;
    }
}

/* Requeues from a completion; on failure settles and releases. */
static void
requeue(SockOpObject *op)
{
    int res = queue_io(op);
    if (res < 0) {
        settle_errno(op, res);
        release(op);
    }
}

/* Switches to waiting for readiness (a direct op answered -EAGAIN). */
static void
wait_ready(SockOpObject *op)
{
    op->polled = 1;
    op->poll_mask = op->kind == K_SEND ? POLLOUT : POLLIN;
    requeue(op);
}

static void
submit_run(struct rl_deferred *d)
{
    SockOpObject *op = rl_container_of(d, SockOpObject, submit);
    if (op->cancelled || loop_gone(op)) {
        release(op); /* never reached the kernel */
        return;
    }
    int res = queue_io(op);
    if (res < 0) {
        settle_errno(op, res);
        release(op);
        return;
    }
    op->state = S_INFLIGHT;
}

/* ---- completions -------------------------------------------------------- */

static PyObject *
call_method(PyObject *obj, const char *name, const char *fmt, ...)
{
    /* cold path: the polled operations only */
    PyObject *meth = PyObject_GetAttrString(obj, name);
    if (meth == NULL)
        return NULL;
    va_list va;
    va_start(va, fmt);
    PyObject *args = fmt ? Py_VaBuildValue(fmt, va) : PyTuple_New(0);
    va_end(va);
    PyObject *res = NULL;
    if (args != NULL) {
        if (!PyTuple_Check(args)) {
            PyObject *t = PyTuple_Pack(1, args);
            Py_SETREF(args, t);
        }
        if (args != NULL)
            res = PyObject_Call(meth, args, NULL);
    }
    Py_XDECREF(args);
    Py_DECREF(meth);
    return res;
}

/* asyncio's _sock_connect_cb: the outcome of a non-blocking connect. */
static PyObject *
connect_result(SockOpObject *op)
{
    PyObject *r = call_method(op->sock, "getsockopt", "(ii)", SOL_SOCKET,
                              SO_ERROR);
    long err = r ? PyLong_AsLong(r) : -1;
    Py_XDECREF(r);
    if (err == -1 && PyErr_Occurred())
        return NULL;
    if (err == 0)
        Py_RETURN_NONE;
    PyObject *msg = PyUnicode_FromFormat("Connect call failed %S", op->arg);
    PyObject *exc = msg ? PyObject_CallFunction(PyExc_OSError, "lO", err, msg)
                        : NULL;
    Py_XDECREF(msg);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

/* The socket call a polled operation makes once the fd is ready. */
static PyObject *
try_call(SockOpObject *op)
{
    switch (op->kind) {
    case K_RECV:
        return call_method(op->sock, "recv", "(n)", op->len);
    case K_RECV_INTO:
        return call_method(op->sock, "recv_into", "(O)", op->arg);
    case K_RECVFROM:
        return call_method(op->sock, "recvfrom", "(n)", op->len);
    case K_RECVFROM_INTO:
        return call_method(op->sock, "recvfrom_into", "(On)", op->arg,
                           op->len);
    case K_SENDTO:
        return call_method(op->sock, "sendto", "(OiO)", op->obj, 0,
                           op->arg);
    case K_CONNECT:
        return connect_result(op);
    case K_ACCEPT: {
        PyObject *res = call_method(op->sock, "accept", NULL);
        if (res == NULL)
            return NULL;
        if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 2) {
            Py_DECREF(res);
            PyErr_SetString(PyExc_TypeError, "accept() must return a pair");
            return NULL;
        }
        PyObject *r = call_method(PyTuple_GET_ITEM(res, 0), "setblocking",
                                  "(O)", Py_False);
        if (r == NULL) {
            Py_DECREF(res);
            return NULL;
        }
        Py_DECREF(r);
        return res;
    }
    default: /* K_WAIT_WRITABLE */
        Py_RETURN_NONE;
    }
}

static void
ready_complete(SockOpObject *op, int res)
{
    if (op->kind == K_SEND) {
        op->polled = 0; /* writable again: resume sending */
        requeue(op);
        return;
    }
    PyObject *value = try_call(op);
    if (value == NULL) {
        if (PyErr_ExceptionMatches(PyExc_BlockingIOError) ||
            PyErr_ExceptionMatches(PyExc_InterruptedError)) {
            PyErr_Clear();
            if (res >= 0) {
                requeue(op); /* not ready after all: wait again */
                return;
            }
            rl_set_oserror(res); /* the poll itself failed */
        } else if (PyErr_ExceptionMatches(PyExc_SystemExit) ||
                   PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
            /* asyncio lets these out of the loop and keeps waiting */
            rl_loop_completion_error(op->loop, "Exception in a socket "
                                     "operation", NULL, NULL);
            requeue(op);
            return;
        }
    }
    settle(op, value);
    release(op);
}

static PyObject *
make_accepted(SockOpObject *op, int fd)
{
    PyObject *conn = PyObject_CallFunction(
        op->ops->socket_type, "OOOi", PyTuple_GET_ITEM(op->obj, 0),
        PyTuple_GET_ITEM(op->obj, 1), PyTuple_GET_ITEM(op->obj, 2), fd);
    if (conn == NULL) {
        close(fd);
        return NULL;
    }
    PyObject *r = PyObject_CallMethod(conn, "setblocking", "O", Py_False);
    PyObject *addr = r ? make_sockaddr(&op->addr, op->addrlen) : NULL;
    Py_XDECREF(r);
    PyObject *res = addr ? PyTuple_Pack(2, conn, addr) : NULL;
    Py_XDECREF(addr);
    if (res == NULL) {
        PyObject *exc = rl_fetch_exception();
        PyObject *c = PyObject_CallMethod(conn, "close", NULL);
        if (c == NULL)
            PyErr_Clear();
        Py_XDECREF(c);
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    Py_DECREF(conn);
    return res;
}

static PyObject *
received_bytes(SockOpObject *op, int res)
{
    if (res < op->len && _PyBytes_Resize(&op->obj, res) < 0) {
        op->obj = NULL;
        return NULL;
    }
    return Py_NewRef(op->obj);
}

static PyObject *
with_address(SockOpObject *op, PyObject *first)
{
    if (first == NULL)
        return NULL;
    PyObject *addr = make_sockaddr(&op->addr, op->msg.msg_namelen);
    PyObject *res = addr ? PyTuple_Pack(2, first, addr) : NULL;
    Py_XDECREF(addr);
    Py_DECREF(first);
    return res;
}

static PyObject *direct_result(SockOpObject *op, int res);

static const char *const kind_names[] = {
    [K_RECV] = "recv",           [K_RECV_INTO] = "recv_into",
    [K_RECVFROM] = "recvfrom",   [K_RECVFROM_INTO] = "recvfrom_into",
    [K_ACCEPT] = "accept",
};

/* A receive that completed although it was cancelled (not expected on a
 * DEFER_TASKRUN ring, see the top of this file): what it took goes back
 * to the socket, for the next call (_sockets.SocketsMixin). */
static void
give_back(SockOpObject *op, int res)
{
    if (op->kind > K_ACCEPT || op->kind == K_SEND)
        return;
    PyObject *value = direct_result(op, res);
    PyObject *r = NULL;
    if (value != NULL) {
        r = PyObject_CallMethod((PyObject *)op->loop, "_sock_unread_push",
                                "OsOO", op->sock, kind_names[(int)op->kind],
                                value, op->arg ? op->arg : Py_None);
        Py_DECREF(value);
    }
    if (r == NULL)
        rl_loop_completion_error(op->loop, "Cannot give back data received "
                                 "by a cancelled socket operation",
                                 NULL, NULL);
    Py_XDECREF(r);
}

static void
op_complete(struct rl_op *rop, int res, unsigned flags)
{
    SockOpObject *op = rl_container_of(rop, SockOpObject, op);
    if (loop_gone(op)) {
        if (op->kind == K_ACCEPT && !op->polled && res >= 0)
            close(res); /* accepted as the loop closed: not ours */
        release(op);
        return;
    }
    if (op->cancelled) {
        if (!op->polled && res >= 0)
            give_back(op, res);
        release(op);
        return;
    }
    if (op->polled) {
        ready_complete(op, res);
        return;
    }
    if (res == -EAGAIN || res == -EINTR) {
        wait_ready(op);
        return;
    }
    if (res < 0) {
        settle_errno(op, res);
        release(op);
        return;
    }
    if (op->kind == K_SEND) {
        op->done += res;
        if (op->done < op->len) {
            /* an error cut the send short, or it was 1 GiB: go on; the
             * next send reports the error */
            if (res == 0)
                wait_ready(op);
            else
                requeue(op);
            return;
        }
    }
    settle(op, direct_result(op, res));
    release(op);
}

/* The value a direct operation's future gets for a result res >= 0. */
static PyObject *
direct_result(SockOpObject *op, int res)
{
    PyObject *value;
    switch (op->kind) {
    case K_RECV:
        value = received_bytes(op, res);
        break;
    case K_RECV_INTO:
        value = PyLong_FromLong(res);
        break;
    case K_RECVFROM:
        value = with_address(op, received_bytes(op, res));
        break;
    case K_RECVFROM_INTO:
        value = with_address(op, PyLong_FromLong(res));
        break;
    case K_ACCEPT:
        value = make_accepted(op, res);
        break;
    default: /* K_SEND */
        value = Py_NewRef(Py_None);
        break;
    }
    return value;
}

/* ---- SockOp ------------------------------------------------------------- */

static PyObject *
SockOp_cancel(SockOpObject *op, PyObject *Py_UNUSED(ignored))
{
    if (op->state == S_DONE || op->cancelled)
        Py_RETURN_NONE;
    op->cancelled = 1;
    /* queued: its deferred submission drops it; in flight: the cancel
     * goes to the kernel ahead of anything that could complete it */
    if (op->state == S_INFLIGHT && !loop_gone(op))
        rl_ring_cancel(op->loop->core.ring, &op->op);
    Py_RETURN_NONE;
}

static PyObject *
SockOp_get_done(SockOpObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(op->state == S_DONE);
}

static PyObject *
SockOp_get_direct(SockOpObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(!op->polled);
}

static void
SockOp_dealloc(SockOpObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    /* Only released operations get here: in flight they hold themselves. */
    if (op->has_view)
        PyBuffer_Release(&op->view);
    Py_XDECREF(op->fut);
    Py_XDECREF(op->sock);
    Py_XDECREF(op->obj);
    Py_XDECREF(op->arg);
    Py_XDECREF(op->loop);
    Py_XDECREF(op->ops);
    tp->tp_free((PyObject *)op);
    Py_DECREF(tp);
}

static PyMethodDef SockOp_methods[] = {
    {"cancel", (PyCFunction)SockOp_cancel, METH_NOARGS,
     "Ask the kernel to stop the operation; its resources are released "
     "when its final completion arrives."},
    {NULL},
};

static PyGetSetDef SockOp_getset[] = {
    {"done", (getter)SockOp_get_done, NULL,
     "True once the operation released its resources.", NULL},
    {"direct", (getter)SockOp_get_direct, NULL,
     "True if the I/O itself is the ring operation (not a poll).", NULL},
    {NULL},
};

static PyType_Slot SockOp_slots[] = {
    {Py_tp_doc, "A socket operation in flight on a loop's ring."},
    {Py_tp_methods, SockOp_methods},
    {Py_tp_getset, SockOp_getset},
    {Py_tp_dealloc, SockOp_dealloc},
    {0, NULL},
};

/* Not collected by the GC: an operation in flight is a root (the kernel
 * may write its buffers), and a released one holds nothing. */
PyType_Spec rl_sockop_spec = {
    .name = "ringloop._core._SockOp",
    .basicsize = sizeof(SockOpObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = SockOp_slots,
};

/* ---- for the factory (sockops_new.c) --------------------------------- */

void
rl_sockop_prepare(SockOpObject *op)
{
    op->op.complete = op_complete;
    op->submit.run = submit_run;
}

/* Hands a prepared operation to the loop: it reaches the kernel just
 * before the loop next enters it. Returns a new reference for Python. */
PyObject *
rl_sockop_start(SockOpObject *op, int polled, short poll_mask)
{
    op->polled = (char)polled;
    op->poll_mask = poll_mask;
    Py_INCREF(op); /* the in-flight reference, dropped by release() */
    rl_loop_defer(&op->loop->core, &op->submit);
    return (PyObject *)op;
}
