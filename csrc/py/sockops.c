/*
 * sockops.c - the waiting half of the loop's sock_* methods. Python
 * (ringloop/_sockets.py) checks the arguments and tries the call once
 * without waiting, exactly as asyncio does; when that would block, it asks
 * SockOps for an operation record (SockOp) that completes an asyncio
 * future when the ring says so.
 *
 * Two ways to wait:
 *  - direct: the I/O itself is the ring operation (RECV into the result
 *    bytes or the caller's buffer, RECVMSG for recvfrom, SEND with
 *    MSG_WAITALL for sendall, ACCEPT);
 *  - polled: a single-shot POLL for readiness, then the socket method is
 *    called again, as asyncio's selector loop does (sendto, connect, the
 *    sendfile wait; recv/recvfrom/accept on rings without DEFER_TASKRUN,
 *    and recvfrom/accept on families other than IPv4/IPv6/Unix, whose
 *    addresses only the socket module converts).
 *
 * Cancellation never loses data: the future is an _IOFuture whose
 * cancel() calls SockOp.cancel() at once, which asks the kernel to cancel
 * the operation before the loop next enters it. A direct operation is
 * handed to the kernel only just before the loop enters it (deferred
 * submission), after a last check that it was not cancelled. On a
 * DEFER_TASKRUN ring the kernel runs a receive's completion work only
 * when the loop enters it, after the submissions of that same call, so a
 * cancel queued after the last dispatch always wins against data or a
 * connection that arrived meanwhile: -ECANCELED, and the data stays in
 * the socket (research/io_uring_and_scheduler.md §A.4). Completions of
 * one io_uring_enter are all dispatched before any callback runs, so a
 * completion that beat the cancel has already settled the future, which
 * then cannot be cancelled. Other rings may run that work at any system
 * call, so there receives wait with a POLL, which takes nothing from the
 * socket, and the socket call is made only for a future not cancelled.
 *
 * Lifetime: a SockOp holds the future, the socket, its buffers (Py_buffer
 * or bytes) and the loop from creation until its final completion (or
 * until its deferred submission sees it cancelled), whatever happens to
 * the future. Then it drops them; the husk lives as long as the future's
 * _rl_op slot. While the loop is closing completions only release.
 * Threads: loop thread only.
 */
#include "py/module.h"

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

enum op_kind {
    K_RECV,
    K_RECV_INTO,
    K_RECVFROM,
    K_RECVFROM_INTO,
    K_SEND,
    K_ACCEPT,
    K_SENDTO,
    K_CONNECT,
    K_WAIT_WRITABLE,
};

enum op_state { S_QUEUED, S_INFLIGHT, S_DONE };

enum { SEND_CHUNK = 1 << 30 }; /* bytes per SEND (its length is 32-bit) */

typedef struct {
    PyObject_HEAD
    rl_state *state;
    PyTypeObject *OpType;
    PyObject *socket_type;   /* socket.socket */
    PyObject *set_result;    /* asyncio.Future.set_result */
    PyObject *set_exception; /* asyncio.Future.set_exception */
} SockOpsObject;

typedef struct {
    PyObject_HEAD
    struct rl_op op;
    struct rl_deferred submit;
    SockOpsObject *ops;
    LoopObject *loop;
    PyObject *fut;
    PyObject *sock;
    PyObject *obj; /* result bytes; sendto's data; accept's (family,
                      type, proto) */
    PyObject *arg; /* recv_into's buffer; sendto's/connect's address */
    Py_buffer view;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct msghdr msg;
    struct iovec iov;
    Py_ssize_t len;  /* bytes asked for, or to send */
    Py_ssize_t done; /* sendall: bytes sent so far */
    int fd;
    short poll_mask;
    char kind;
    char state;
    char polled; /* waiting for readiness, not doing the I/O */
    char has_view;
    char cancelled;
} SockOpObject;

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

/* The families whose addresses make_sockaddr converts. */
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

/* ---- the ring operations ------------------------------------------------ */

/* Direct receives only where a cancel always beats the data (above). */
static int
ring_defers_taskrun(LoopObject *loop)
{
    return strcmp(rl_ring_describe(loop->core.ring),
                  "single_issuer|defer_taskrun") == 0;
}

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

static void
op_complete(struct rl_op *rop, int res, unsigned flags)
{
    SockOpObject *op = rl_container_of(rop, SockOpObject, op);
    if (op->cancelled || loop_gone(op)) {
        if (op->kind == K_ACCEPT && !op->polled && res >= 0)
            close(res); /* accepted as it was cancelled: not ours */
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
    case K_SEND:
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
        value = Py_NewRef(Py_None);
        break;
    case K_ACCEPT:
        value = make_accepted(op, res);
        break;
    default:
        value = Py_NewRef(Py_None);
        break;
    }
    settle(op, value);
    release(op);
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
static PyType_Spec SockOp_spec = {
    .name = "ringloop._core._SockOp",
    .basicsize = sizeof(SockOpObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = SockOp_slots,
};

/* ---- SockOps: the factory ---------------------------------------------- */

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
    op->op.complete = op_complete;
    op->submit.run = submit_run;
    op->ops = (SockOpsObject *)Py_NewRef(ops);
    op->loop = (LoopObject *)Py_NewRef(loop);
    op->fut = Py_NewRef(args[1]);
    op->sock = Py_NewRef(args[2]);
    op->fd = (int)fd;
    op->kind = (char)kind;
    op->state = S_QUEUED;
    return op;
}

/* Hands a prepared operation to the loop: it reaches the kernel just
 * before the loop next enters it. Returns a new reference for Python. */
static PyObject *
op_start(SockOpObject *op, int polled, short poll_mask)
{
    op->polled = (char)polled;
    op->poll_mask = poll_mask;
    Py_INCREF(op); /* the in-flight reference, dropped by release() */
    rl_loop_defer(&op->loop->core, &op->submit);
    return (PyObject *)op;
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
        return op_start(op, 1, POLLIN);
    op->obj = PyBytes_FromStringAndSize(NULL, op->len);
    if (op->obj == NULL)
        return fail(op);
    return op_start(op, 0, 0);
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
        return op_start(op, 1, POLLIN);
    if (writable_view(op, args[4], 0) < 0)
        return fail(op);
    return op_start(op, 0, 0);
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
        return op_start(op, 1, POLLIN);
    op->obj = PyBytes_FromStringAndSize(NULL, op->len);
    if (op->obj == NULL)
        return fail(op);
    return op_start(op, 0, 0);
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
        return op_start(op, 1, POLLIN);
    if (writable_view(op, args[4], op->len) < 0)
        return fail(op);
    return op_start(op, 0, 0);
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
    return op_start(op, 0, 0);
}

static PyObject *
SockOps_sendto(SockOpsObject *ops, PyObject *const *args, Py_ssize_t nargs)
{
    SockOpObject *op = op_new(ops, args, nargs, 6, "sendto", K_SENDTO);
    if (op == NULL)
        return NULL;
    op->obj = Py_NewRef(args[4]);
    op->arg = Py_NewRef(args[5]);
    return op_start(op, 1, POLLOUT);
}

static PyObject *
SockOps_connect(SockOpsObject *ops, PyObject *const *args, Py_ssize_t nargs)
{
    SockOpObject *op = op_new(ops, args, nargs, 5, "connect", K_CONNECT);
    if (op == NULL)
        return NULL;
    op->arg = Py_NewRef(args[4]);
    return op_start(op, 1, POLLOUT);
}

static PyObject *
SockOps_accept(SockOpsObject *ops, PyObject *const *args, Py_ssize_t nargs)
{
    SockOpObject *op = op_new(ops, args, nargs, 4, "accept", K_ACCEPT);
    if (op == NULL)
        return NULL;
    if (!ring_defers_taskrun(op->loop) || !family_converted(op->sock))
        return op_start(op, 1, POLLIN);
    PyObject *f = PyObject_GetAttrString(op->sock, "family");
    PyObject *t = f ? PyObject_GetAttrString(op->sock, "type") : NULL;
    PyObject *p = t ? PyObject_GetAttrString(op->sock, "proto") : NULL;
    op->obj = p ? PyTuple_Pack(3, f, t, p) : NULL;
    Py_XDECREF(f);
    Py_XDECREF(t);
    Py_XDECREF(p);
    if (op->obj == NULL)
        return fail(op);
    return op_start(op, 0, 0);
}

static PyObject *
SockOps_wait_writable(SockOpsObject *ops, PyObject *const *args,
                      Py_ssize_t nargs)
{
    SockOpObject *op =
        op_new(ops, args, nargs, 4, "wait_writable", K_WAIT_WRITABLE);
    if (op == NULL)
        return NULL;
    return op_start(op, 1, POLLOUT);
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
    if (add_type(module, &SockOp_spec) < 0 ||
        add_type(module, &SockOps_spec) < 0 ||
        rl_fdwatch_setup_type(module) < 0)
        return -1;
    return 0;
}
