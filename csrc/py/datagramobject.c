/*
 * datagramobject.c - DatagramTransport, the C half of a UDP or Unix
 * datagram transport. ringloop._datagram.DatagramTransport subclasses it
 * and keeps the cold paths (construction, repr, connection_lost, the
 * destructor's warning, addresses the socket module must resolve). The
 * type derives from asyncio's _FlowControlMixin and DatagramTransport, as
 * asyncio's selector transport does, so its layout starts with their
 * slots; the flow-control slots are shadowed by C fields that the mixin's
 * own Python methods read and write.
 *
 * Receiving: while reading, one multishot RECVMSG fills the ring's
 * receive buffers, one datagram (header, source address, payload) per
 * completion; each is turned into bytes and an address and given to
 * protocol.datagram_received straight from completion dispatch, and the
 * buffer goes back at once. It is queued again when the buffers ran dry
 * (-ENOBUFS) or the kernel ended it. Unix datagram sockets, whose
 * datagrams may be larger than a ring buffer, and rings without buffers
 * use single-shot RECVMSG into a private buffer of asyncio's max_size,
 * so no datagram is cut shorter than asyncio would cut it. Receive errors
 * (ICMP errors on connected sockets: ECONNREFUSED...) go to
 * protocol.error_received and receiving goes on, as in asyncio.
 * pause_reading cancels the receive; datagrams already completed are held
 * and delivered, in order, after resume_reading. Datagrams that complete
 * while callbacks are ready are held too and delivered by one callback
 * queued after them: asyncio's order (I/O callbacks of an iteration run
 * after the callbacks ready before it).
 *
 * Lifetime: every op in flight holds a reference to the transport, and the
 * transport holds the socket, which it closes only after the final
 * completion of its ops. The receive's msghdr and private buffer belong to
 * the receive until its final completion. Threads: loop thread only.
 */
#include "py/datagram.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>

static const char DATAGRAM_FAILED[] =
    "Exception in callback protocol.datagram_received()";
static const char ERROR_FAILED[] =
    "Exception in callback protocol.error_received()";

/* ---- helpers ---------------------------------------------------------- */

PyObject *
dg_call(DatagramObject *t, PyObject *bound, const char *name,
        PyObject *const *args, size_t nargs)
{
    if (bound != NULL)
        return PyObject_Vectorcall(bound, args, nargs, NULL);
    if (t->protocol == NULL)
        Py_RETURN_NONE;
    PyObject *fn = PyObject_GetAttrString(t->protocol, name);
    PyObject *r = fn ? PyObject_Vectorcall(fn, args, nargs, NULL) : NULL;
    Py_XDECREF(fn);
    return r;
}

void
dg_error_received(DatagramObject *t, int neg_errno)
{
    rl_set_oserror(neg_errno);
    PyObject *exc = rl_fetch_exception();
    PyObject *r = exc ? dg_call(t, t->error_received, "error_received",
                                &exc, 1)
                      : NULL;
    Py_XDECREF(exc);
    if (r == NULL && PyErr_Occurred())
        rl_loop_completion_error(t->loop, ERROR_FAILED, "transport",
                                 (PyObject *)t);
    Py_XDECREF(r);
}

/* A failure the transport does not survive: asyncio's _fatal_error. */
static void
fatal(DatagramObject *t, const char *message)
{
    PyObject *exc = rl_fetch_exception();
    if (exc == NULL)
        return;
    PyObject *r = PyObject_CallMethod((PyObject *)t, "_fatal_error", "Os",
                                      exc, message);
    Py_DECREF(exc);
    if (r == NULL)
        rl_loop_completion_error(t->loop, message, "transport", (PyObject *)t);
    Py_XDECREF(r);
}

void
dg_maybe_close_socket(DatagramObject *t)
{
    if (!t->released || t->recv_state != DG_RECV_IDLE || t->send_inflight ||
        t->sock == NULL)
        return;
    PyObject *sock = t->sock;
    t->sock = NULL;
    PyObject *r = PyObject_CallMethod(sock, "close", NULL);
    if (r == NULL)
        PyErr_WriteUnraisable(sock);
    Py_XDECREF(r);
    Py_DECREF(sock);
}

void
dg_connection_lost_now(DatagramObject *t)
{
    t->conn_lost++;
    PyObject *r = PyObject_CallMethod((PyObject *)t, "_call_connection_lost",
                                      "O", Py_None);
    if (r == NULL)
        rl_loop_completion_error(t->loop, "Exception in callback "
                                 "protocol.connection_lost()",
                                 "transport", (PyObject *)t);
    Py_XDECREF(r);
}

static int
is_reading(DatagramObject *t)
{
    return !t->closing && !t->paused;
}

/* ---- receiving -------------------------------------------------------- */

static void
start_receive(DatagramObject *t)
{
    if (t->recv_state == DG_RECV_CANCELLING) {
        t->rearm = 1;
        return;
    }
    if (t->recv_state != DG_RECV_IDLE || dg_loop_gone(t))
        return;
    struct rl_ring *ring = t->loop->core.ring;
    int res = -EINVAL;
    memset(&t->rmsg, 0, sizeof(t->rmsg));
    t->rmsg.msg_name = &t->rname;
    t->rmsg.msg_namelen = sizeof(t->rname);
    if (!t->single) {
        res = rl_ring_recvmsg_multishot(ring, &t->recv_op, t->fd, &t->rmsg);
        if (res < 0 && rl_ring_buffer_size(ring) == 0)
            t->single = 1; /* no receive buffers on this ring */
    }
    if (t->single) {
        if (t->rbuf == NULL && (t->rbuf = PyMem_Malloc(DG_MAX_SIZE)) == NULL)
            res = -ENOMEM;
        else {
            t->riov.iov_base = t->rbuf;
            t->riov.iov_len = DG_MAX_SIZE;
            t->rmsg.msg_iov = &t->riov;
            t->rmsg.msg_iovlen = 1;
            res = rl_ring_recvmsg(ring, &t->recv_op, t->fd, &t->rmsg, 0);
        }
    }
    if (res < 0) {
        rl_set_oserror(res);
        fatal(t, "Fatal read error on datagram transport");
        return;
    }
    t->recv_state = DG_RECV_ARMED;
    Py_INCREF(t);
}

static void
stop_receive(DatagramObject *t)
{
    t->rearm = 0;
    if (t->recv_state != DG_RECV_ARMED || dg_loop_gone(t))
        return;
    if (rl_ring_cancel(t->loop->core.ring, &t->recv_op) == 0)
        t->recv_state = DG_RECV_CANCELLING;
}

/* The source address as a Python object, reused while it repeats. */
static PyObject *
source_address(DatagramObject *t, const struct sockaddr *sa, socklen_t len)
{
    if (sa == NULL || len == 0)
        Py_RETURN_NONE;
    if (len > sizeof(t->raddr))
        len = sizeof(t->raddr);
    if (t->raddr_obj != NULL && len == t->raddr_len &&
        memcmp(sa, &t->raddr, len) == 0)
        return Py_NewRef(t->raddr_obj);
    PyObject *obj;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        if (t->rhost_obj == NULL || t->rhost_in != in->sin_addr.s_addr) {
            PyObject *host = rl_ipv4_to_py(in->sin_addr.s_addr);
            if (host == NULL)
                return NULL;
            Py_XSETREF(t->rhost_obj, host);
            t->rhost_in = in->sin_addr.s_addr;
        }
        obj = Py_BuildValue("(Oi)", t->rhost_obj, ntohs(in->sin_port));
    } else {
        obj = rl_sockaddr_to_py(sa, len);
    }
    if (obj != NULL) {
        memcpy(&t->raddr, sa, len);
        t->raddr_len = len;
        Py_XSETREF(t->raddr_obj, Py_NewRef(obj));
    }
    return obj;
}

static void
deliver(DatagramObject *t, const char *data, Py_ssize_t len,
        const struct sockaddr *sa, socklen_t salen)
{
    PyObject *args[2];
    args[0] = PyBytes_FromStringAndSize(data, len);
    args[1] = args[0] ? source_address(t, sa, salen) : NULL;
    PyObject *r = NULL;
    if (args[1] == NULL) {
        /* out of memory: reported below */
    } else if (t->paused || t->held != NULL || t->loop->core.ready.len) {
        /* Held while paused; and while callbacks are ready, after them,
         * as asyncio runs the I/O callbacks of an iteration after those
         * already ready. */
        PyObject *item = PyTuple_Pack(2, args[0], args[1]);
        if (item && (t->held || (t->held = PyList_New(0))) &&
            PyList_Append(t->held, item) == 0)
            r = Py_NewRef(Py_None);
        Py_XDECREF(item);
        if (r && !t->paused && !t->deliver_pending) {
            if (rl_call_soon_method(t->loop, (PyObject *)t,
                                    "_deliver_held", NULL) < 0)
                Py_CLEAR(r);
            else
                t->deliver_pending = 1;
        }
    } else {
        r = dg_call(t, t->datagram_received, "datagram_received", args, 2);
    }
    Py_XDECREF(args[0]);
    Py_XDECREF(args[1]);
    if (r == NULL)
        rl_loop_completion_error(t->loop, DATAGRAM_FAILED, "transport",
                                 (PyObject *)t);
    Py_XDECREF(r);
}

/* A receive error: the kind that reports and goes on, or the end. */
static void
on_receive_error(DatagramObject *t, int res)
{
    if (res == -EBADF || res == -ENOTSOCK || res == -EFAULT ||
        res == -ENOMEM) {
        rl_set_oserror(res);
        fatal(t, "Fatal read error on datagram transport");
    } else {
        dg_error_received(t, res);
    }
}

static void
recv_complete(struct rl_op *op, int res, unsigned flags)
{
    DatagramObject *t = DG_OF(recv_op, op);
    struct rl_ring *ring = t->loop->core.ring;
    char *buf = NULL;
    if (flags & RL_OP_BUFFER)
        buf = rl_ring_buffer(ring, RL_OP_BUFFER_ID(flags));
    int final = !(flags & RL_OP_MORE);
    if (final)
        t->recv_state = DG_RECV_IDLE;

    if (dg_loop_gone(t) || t->conn_lost || t->protocol == NULL) {
        /* closing: drop it */
    } else if (res == -ECANCELED || res == -ENOBUFS) {
        /* cancelled by pause, or the buffers ran dry: they come back as
         * the loop copies, so receiving again works */
        if (res == -ENOBUFS)
            t->rearm = 1;
    } else if (res == -EINVAL && !t->single) {
        t->single = 1; /* a kernel without multishot RECVMSG */
        t->rearm = 1;
    } else if (res < 0) {
        on_receive_error(t, res);
        t->rearm = 1;
    } else if (buf != NULL) {
        struct rl_datagram d;
        if (rl_ring_datagram(&t->rmsg, buf, (unsigned)res, &d) == 0)
            deliver(t, d.data, d.len, d.name, d.namelen);
        t->rearm = final;
    } else if (t->single) {
        deliver(t, t->rbuf, res, t->rmsg.msg_namelen ? t->rmsg.msg_name
                                                      : NULL,
                t->rmsg.msg_namelen);
        t->rearm = 1;
    }
    if (buf)
        rl_ring_buffer_recycle(ring, RL_OP_BUFFER_ID(flags));
    if (final) {
        if (t->rearm && is_reading(t) && !t->conn_lost &&
            t->protocol != NULL) {
            t->rearm = 0;
            start_receive(t);
        }
        t->rearm = 0;
        dg_maybe_close_socket(t);
        Py_DECREF(t);
    }
}

static PyObject *
Datagram_deliver_held(DatagramObject *t, PyObject *Py_UNUSED(ignored))
{
    t->deliver_pending = 0;
    while (t->held != NULL && !t->paused && !t->conn_lost) {
        PyObject *held = t->held;
        t->held = NULL;
        Py_ssize_t n = PyList_GET_SIZE(held);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *item = PyList_GET_ITEM(held, i);
            if (t->paused || t->conn_lost) { /* paused again: keep the rest */
                PyObject *rest = PyList_GetSlice(held, i, n);
                if (rest && t->held && PyList_SetSlice(t->held, 0, 0, rest))
                    Py_CLEAR(rest);
                if (rest && !t->held)
                    t->held = Py_NewRef(rest);
                Py_XDECREF(rest);
                break;
            }
            PyObject *r = dg_call(t, t->datagram_received,
                                  "datagram_received",
                                  &PyTuple_GET_ITEM(item, 0), 2);
            if (r == NULL)
                rl_loop_completion_error(t->loop, DATAGRAM_FAILED,
                                         "transport", (PyObject *)t);
            Py_XDECREF(r);
        }
        Py_DECREF(held);
    }
    if (PyErr_Occurred())
        return NULL;
    if (t->held == NULL && is_reading(t) && !t->conn_lost &&
        t->protocol != NULL)
        start_receive(t);
    Py_RETURN_NONE;
}

static PyObject *
Datagram_start_reading(DatagramObject *t, PyObject *Py_UNUSED(ignored))
{
    if (is_reading(t) && !t->conn_lost && t->protocol != NULL)
        start_receive(t);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Datagram_pause_reading(DatagramObject *t, PyObject *Py_UNUSED(ignored))
{
    if (!is_reading(t))
        Py_RETURN_NONE;
    t->paused = 1;
    stop_receive(t);
    Py_RETURN_NONE;
}

static PyObject *
Datagram_resume_reading(DatagramObject *t, PyObject *Py_UNUSED(ignored))
{
    if (t->closing || !t->paused)
        Py_RETURN_NONE;
    t->paused = 0;
    /* Like asyncio, datagrams flow again from the next iteration on. */
    if (rl_call_soon_method(t->loop, (PyObject *)t, "_deliver_held", NULL) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Datagram_is_reading(DatagramObject *t, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(is_reading(t));
}

/* ---- closing ---------------------------------------------------------- */

static PyObject *
Datagram_close(DatagramObject *t, PyObject *Py_UNUSED(ignored))
{
    if (t->closing)
        Py_RETURN_NONE;
    t->closing = 1;
    stop_receive(t);
    if (t->q_len == 0) {
        t->conn_lost++;
        if (rl_call_soon_method(t->loop, (PyObject *)t,
                                "_call_connection_lost", Py_None) < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
force_close(DatagramObject *t, PyObject *exc)
{
    if (t->conn_lost)
        Py_RETURN_NONE;
    if (t->q_len > 0) {
        dg_queue_discard(t);
        if (t->send_inflight && !dg_loop_gone(t))
            rl_ring_cancel(t->loop->core.ring, &t->send_op);
    }
    if (!t->closing) {
        t->closing = 1;
        stop_receive(t);
    }
    t->conn_lost++;
    if (rl_call_soon_method(t->loop, (PyObject *)t,
                            "_call_connection_lost", exc ? exc : Py_None) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Datagram_abort(DatagramObject *t, PyObject *Py_UNUSED(ignored))
{
    return force_close(t, NULL);
}

static PyObject *
Datagram_force_close(DatagramObject *t, PyObject *exc)
{
    return force_close(t, exc == Py_None ? NULL : exc);
}

static PyObject *
Datagram_is_closing(DatagramObject *t, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(t->closing);
}

/* After connection_lost: the socket closes as soon as no op is in flight
 * (now, or at the last final completion). */
static PyObject *
Datagram_release(DatagramObject *t, PyObject *Py_UNUSED(ignored))
{
    t->released = 1;
    if (t->send_inflight && !dg_loop_gone(t))
        rl_ring_cancel(t->loop->core.ring, &t->send_op);
    stop_receive(t);
    dg_maybe_close_socket(t);
    Py_CLEAR(t->protocol);
    Py_CLEAR(t->datagram_received);
    Py_CLEAR(t->error_received);
    Py_CLEAR(t->held);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

/* ---- protocol --------------------------------------------------------- */

static PyObject *
Datagram_set_protocol(DatagramObject *t, PyObject *protocol)
{
    /* A missing method fails when called, as in asyncio (see dg_call). */
    PyObject *dr = PyObject_GetAttrString(protocol, "datagram_received");
    if (dr == NULL && PyErr_ExceptionMatches(PyExc_AttributeError))
        PyErr_Clear();
    PyObject *er = PyErr_Occurred()
                       ? NULL
                       : PyObject_GetAttrString(protocol, "error_received");
    if (er == NULL && PyErr_ExceptionMatches(PyExc_AttributeError))
        PyErr_Clear();
    if (PyErr_Occurred()) {
        Py_XDECREF(dr);
        Py_XDECREF(er);
        return NULL;
    }
    Py_XSETREF(t->datagram_received, dr);
    Py_XSETREF(t->error_received, er);
    Py_XSETREF(t->protocol, Py_NewRef(protocol));
    t->protocol_connected = 1;
    Py_RETURN_NONE;
}

static PyObject *
Datagram_get_protocol(DatagramObject *t, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(t->protocol ? t->protocol : Py_None);
}

/* _setup(loop, sock, protocol, address, connected, send_empty, header) */
static PyObject *
Datagram_setup(DatagramObject *t, PyObject *args)
{
    PyObject *loop, *sock, *protocol, *address;
    int connected, send_empty;
    Py_ssize_t header;
    if (!PyArg_ParseTuple(args, "OOOOppn:_setup", &loop, &sock, &protocol,
                          &address, &connected, &send_empty, &header))
        return NULL;
    rl_state *st = rl_state_by_type(Py_TYPE(t));
    if (!PyObject_TypeCheck(loop, st->LoopType)) {
        PyErr_SetString(PyExc_TypeError, "a ringloop loop is required");
        return NULL;
    }
    int fd = PyObject_AsFileDescriptor(sock);
    if (fd < 0)
        return NULL;
    PyObject *family = PyObject_GetAttrString(sock, "family");
    long fam = family ? PyLong_AsLong(family) : -1;
    Py_XDECREF(family);
    if (fam == -1 && PyErr_Occurred())
        return NULL;
    t->fd = fd;
    t->family = (int)fam;
    t->single = fam == AF_UNIX;
    t->connected = (char)connected;
    t->send_empty = (char)send_empty;
    t->header = header;
    Py_XSETREF(t->loop, (LoopObject *)Py_NewRef(loop));
    Py_XSETREF(t->sock, Py_NewRef(sock));
    Py_XSETREF(t->address, address == Py_None ? NULL : Py_NewRef(address));
    t->high_water = 64 * 1024;
    t->low_water = 16 * 1024;
    return Datagram_set_protocol(t, protocol);
}

/* ---- attributes ------------------------------------------------------- */

static PyObject *
get_or_none(PyObject *obj, int visible)
{
    return Py_NewRef(obj && visible ? obj : Py_None);
}

static PyObject *
Datagram_get(DatagramObject *t, void *c)
{
    switch ((intptr_t)c) {
    case 0: return get_or_none((PyObject *)t->loop, !t->released);
    case 1: return get_or_none(t->sock, !t->released);
    case 2: return get_or_none(t->protocol, 1);
    case 3: return get_or_none(t->address, 1);
    case 4: return PyBool_FromLong(t->closing);
    case 5: return PyBool_FromLong(t->paused);
    case 6: return PyLong_FromLong(t->conn_lost);
    case 7: return PyLong_FromLong(t->fd);
    case 8: return PyUnicode_FromString(
                t->recv_state == DG_RECV_ARMED ? "polling" : "idle");
    case 9: return PyBool_FromLong(t->send_inflight || t->q_len > 0);
    case 10: return PyBool_FromLong(t->protocol_paused);
    case 11: return PyBool_FromLong(t->protocol_connected);
    }
    Py_RETURN_NONE;
}

static int
Datagram_set_flag(DatagramObject *t, PyObject *v, void *c)
{
    int b = v ? PyObject_IsTrue(v) : 0;
    if (b < 0)
        return -1;
    if ((intptr_t)c == 10)
        t->protocol_paused = (char)b;
    else
        t->protocol_connected = (char)b;
    return 0;
}

static PyGetSetDef Datagram_getset[] = {
    {"_loop", (getter)Datagram_get, NULL, NULL, (void *)0},
    {"_sock", (getter)Datagram_get, NULL, NULL, (void *)1},
    {"_protocol", (getter)Datagram_get, NULL, NULL, (void *)2},
    {"_address", (getter)Datagram_get, NULL, NULL, (void *)3},
    {"_closing", (getter)Datagram_get, NULL, NULL, (void *)4},
    {"_paused", (getter)Datagram_get, NULL, NULL, (void *)5},
    {"_conn_lost", (getter)Datagram_get, NULL, NULL, (void *)6},
    {"_sock_fd", (getter)Datagram_get, NULL, NULL, (void *)7},
    {"_read_state", (getter)Datagram_get, NULL, NULL, (void *)8},
    {"_sending", (getter)Datagram_get, NULL, NULL, (void *)9},
    {"_protocol_paused", (getter)Datagram_get, (setter)Datagram_set_flag,
     NULL, (void *)10},
    {"_protocol_connected", (getter)Datagram_get, (setter)Datagram_set_flag,
     NULL, (void *)11},
    {NULL},
};

static PyMemberDef Datagram_members[] = {
    {"_high_water", T_PYSSIZET, offsetof(DatagramObject, high_water), 0,
     NULL},
    {"_low_water", T_PYSSIZET, offsetof(DatagramObject, low_water), 0, NULL},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(DatagramObject, weakreflist),
     READONLY, NULL},
    {NULL},
};

/* ---- object protocol -------------------------------------------------- */

static PyObject *
Datagram_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    DatagramObject *t = (DatagramObject *)type->tp_alloc(type, 0);
    if (t == NULL)
        return NULL;
    t->fd = -1;
    t->recv_op.complete = recv_complete;
    t->send_op.complete = dg_send_complete;
    return (PyObject *)t;
}

static int
Datagram_traverse(DatagramObject *t, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(t));
    Py_VISIT(t->extra);
    Py_VISIT(t->loop);
    Py_VISIT(t->sock);
    Py_VISIT(t->protocol);
    Py_VISIT(t->address);
    Py_VISIT(t->datagram_received);
    Py_VISIT(t->error_received);
    Py_VISIT(t->held);
    return 0;
}

static int
Datagram_clear(DatagramObject *t)
{
    Py_CLEAR(t->extra);
    Py_CLEAR(t->protocol);
    Py_CLEAR(t->datagram_received);
    Py_CLEAR(t->error_received);
    Py_CLEAR(t->held);
    /* loop and sock stay until dealloc: ops in flight need them, and an op
     * in flight keeps the transport alive anyway. */
    return 0;
}

static void
Datagram_dealloc(DatagramObject *t)
{
    PyTypeObject *tp = Py_TYPE(t);
    PyObject_GC_UnTrack(t);
    if (t->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)t);
    Datagram_clear(t);
    while (t->q_len > 0)
        dg_queue_pop(t);
    PyMem_Free(t->q);
    PyMem_Free(t->rbuf);
    Py_CLEAR(t->address);
    Py_CLEAR(t->raddr_obj);
    Py_CLEAR(t->saddr_obj);
    Py_CLEAR(t->rhost_obj);
    Py_CLEAR(t->sock);
    Py_CLEAR(t->loop);
    tp->tp_free((PyObject *)t);
    Py_DECREF(tp);
}

static PyMethodDef Datagram_methods[] = {
    {"sendto", (PyCFunction)(void (*)(void))Datagram_sendto,
     METH_FASTCALL | METH_KEYWORDS,
     "sendto($self, data, addr=None, /)\n--\n\n"
     "Send a datagram; never blocks."},
    {"close", (PyCFunction)Datagram_close, METH_NOARGS, NULL},
    {"abort", (PyCFunction)Datagram_abort, METH_NOARGS, NULL},
    {"_force_close", (PyCFunction)Datagram_force_close, METH_O, NULL},
    {"is_closing", (PyCFunction)Datagram_is_closing, METH_NOARGS, NULL},
    {"is_reading", (PyCFunction)Datagram_is_reading, METH_NOARGS, NULL},
    {"pause_reading", (PyCFunction)Datagram_pause_reading, METH_NOARGS,
     NULL},
    {"resume_reading", (PyCFunction)Datagram_resume_reading, METH_NOARGS,
     NULL},
    {"set_protocol", (PyCFunction)Datagram_set_protocol, METH_O, NULL},
    {"get_protocol", (PyCFunction)Datagram_get_protocol, METH_NOARGS, NULL},
    {"get_write_buffer_size", (PyCFunction)Datagram_get_write_buffer_size,
     METH_NOARGS, NULL},
    {"_setup", (PyCFunction)Datagram_setup, METH_VARARGS, NULL},
    {"_start_reading", (PyCFunction)Datagram_start_reading, METH_NOARGS,
     NULL},
    {"_deliver_held", (PyCFunction)Datagram_deliver_held, METH_NOARGS, NULL},
    {"_release", (PyCFunction)Datagram_release, METH_NOARGS, NULL},
    {"_sendto_queue", (PyCFunction)Datagram_sendto_resolved, METH_VARARGS,
     NULL},
    {NULL},
};

static PyType_Slot Datagram_slots[] = {
    {Py_tp_doc, "The C half of ringloop's datagram transport."},
    {Py_tp_new, Datagram_new},
    {Py_tp_methods, Datagram_methods},
    {Py_tp_getset, Datagram_getset},
    {Py_tp_members, Datagram_members},
    {Py_tp_traverse, Datagram_traverse},
    {Py_tp_clear, Datagram_clear},
    {Py_tp_dealloc, Datagram_dealloc},
    {0, NULL},
};

static PyType_Spec Datagram_spec = {
    .name = "ringloop._core.DatagramTransport",
    .basicsize = sizeof(DatagramObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = Datagram_slots,
};

int
rl_datagram_setup_type(PyObject *module, rl_state *state)
{
    PyObject *transports = PyImport_ImportModule("asyncio.transports");
    if (transports == NULL)
        return -1;
    PyObject *bases = Py_BuildValue(
        "(NN)", PyObject_GetAttrString(transports, "_FlowControlMixin"),
        PyObject_GetAttrString(transports, "DatagramTransport"));
    Py_DECREF(transports);
    if (bases == NULL)
        return -1;
    PyTypeObject *flow = (PyTypeObject *)PyTuple_GET_ITEM(bases, 0);
    if (flow->tp_basicsize != (Py_ssize_t)offsetof(DatagramObject,
                                                   weakreflist)) {
        Py_DECREF(bases);
        PyErr_SetString(PyExc_ImportError,
                        "asyncio's _FlowControlMixin has an unexpected "
                        "layout");
        return -1;
    }
    state->DatagramType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &Datagram_spec, bases);
    Py_DECREF(bases);
    if (state->DatagramType == NULL ||
        PyModule_AddType(module, state->DatagramType) < 0)
        return -1;
    return 0;
}
