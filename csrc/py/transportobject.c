/*
 * transportobject.c - StreamTransport, the C half of a TCP or Unix stream
 * transport. ringloop._transports.SocketTransport subclasses it and keeps
 * the cold paths (construction, repr, connection_lost, the destructor's
 * warning); everything per message is here. The type derives from
 * asyncio's _FlowControlMixin (an asyncio.Transport, and what asyncio's
 * sendfile fallback requires), so its layout starts with their slots.
 *
 * Reading: while reading, one multishot receive fills the ring's receive
 * buffers; each completion copies its bytes out, returns the buffer and
 * calls protocol.data_received (or get_buffer + buffer_updated) straight
 * from completion dispatch. pause_reading cancels the receive, so the
 * kernel stops taking data off the socket; completions already in the
 * batch are held and delivered, in order, after resume_reading.
 *
 * Writing: write() appends to a queue of chunks and asks the loop to flush
 * before it next enters the kernel; a flush sends the queue as one SEND or
 * SENDMSG (MSG_WAITALL), with at most one send in flight. A large write on
 * an idle socket is first tried with send(2) directly (measured to matter
 * at 100 KiB, research/echo_ceiling.md).
 *
 * Lifetime: every op in flight holds a reference to the transport, and the
 * transport holds the socket, which it closes only after the final
 * completion of its ops (a pending op keeps the file open). The flush
 * holds a reference while queued. Threads: loop thread only.
 */
#include "py/transport.h"

#include <errno.h>

/* ---- helpers ---------------------------------------------------------- */

/* A protocol callback raised: asyncio's _fatal_error, or propagate
 * SystemExit/KeyboardInterrupt out of the loop. */
void
tr_protocol_failed(TransportObject *t, const char *message)
{
    if (PyErr_ExceptionMatches(PyExc_SystemExit) ||
        PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        rl_loop_completion_error(t->loop, message, NULL, NULL);
        return;
    }
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

/* An OSError from -errno, given to _fatal_error. */
void
tr_os_failed(TransportObject *t, int neg_errno, const char *message)
{
    rl_set_oserror(neg_errno);
    tr_protocol_failed(t, message);
}

/* The socket is closed once connection_lost ran and no op is in flight. */
void
tr_maybe_close_socket(TransportObject *t)
{
    if (!t->released || t->recv_state != RECV_IDLE || t->send_inflight ||
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
/* ---- closing ---------------------------------------------------------- */

PyObject *
Transport_close(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    if (t->closing)
        Py_RETURN_NONE;
    t->closing = 1;
    tr_stop_receive(t);
    if (t->q_len == 0) {
        t->conn_lost++;
        if (rl_call_soon_method(t->loop, (PyObject *)t,
                                "_call_connection_lost", Py_None) < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
force_close(TransportObject *t, PyObject *exc)
{
    if (t->conn_lost)
        Py_RETURN_NONE;
    if (t->q_len > 0) {
        tr_queue_discard(t);
        if (t->send_inflight && !loop_gone(t))
            rl_ring_cancel(t->loop->core.ring, &t->send_op);
    }
    if (!t->closing) {
        t->closing = 1;
        tr_stop_receive(t);
    }
    t->conn_lost++;
    if (rl_call_soon_method(t->loop, (PyObject *)t,
                            "_call_connection_lost", exc ? exc : Py_None) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Transport_abort(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    return force_close(t, NULL);
}

static PyObject *
Transport_force_close(TransportObject *t, PyObject *exc)
{
    return force_close(t, exc);
}

static PyObject *
Transport_is_closing(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(t->closing);
}

/* After connection_lost: the socket closes as soon as no op is in flight
 * (now, or at the last final completion). */
static PyObject *
Transport_release(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    t->released = 1;
    if (t->send_inflight && !loop_gone(t))
        rl_ring_cancel(t->loop->core.ring, &t->send_op);
    tr_stop_receive(t);
    tr_maybe_close_socket(t);
    Py_CLEAR(t->protocol);
    Py_CLEAR(t->data_received);
    Py_CLEAR(t->get_buffer);
    Py_CLEAR(t->buffer_updated);
    Py_CLEAR(t->held);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

/* ---- protocol --------------------------------------------------------- */

static PyObject *
Transport_set_protocol(TransportObject *t, PyObject *protocol)
{
    rl_state *st = t->loop ? t->loop->state
                           : rl_state_by_type(Py_TYPE(t));
    int buffered = PyObject_IsInstance(protocol, st->BufferedProtocol);
    if (buffered < 0)
        return NULL;
    PyObject *dr = NULL, *gb = NULL, *bu = NULL;
    if (buffered) {
        gb = PyObject_GetAttrString(protocol, "get_buffer");
        bu = gb ? PyObject_GetAttrString(protocol, "buffer_updated") : NULL;
        if (bu == NULL) {
            Py_XDECREF(gb);
            return NULL;
        }
    } else {
        dr = PyObject_GetAttrString(protocol, "data_received");
        if (dr == NULL)
            return NULL;
    }
    if (t->rbytes != NULL || t->rview_held)
        t->rstale = 1; /* the direct receive in flight fills the old one's */
    Py_XSETREF(t->data_received, dr);
    Py_XSETREF(t->get_buffer, gb);
    Py_XSETREF(t->buffer_updated, bu);
    Py_XSETREF(t->protocol, Py_NewRef(protocol));
    t->protocol_connected = 1;
    Py_RETURN_NONE;
}

static PyObject *
Transport_get_protocol(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(t->protocol ? t->protocol : Py_None);
}

/* _setup(loop, sock, protocol, server): what __init__ needs from C. */
static PyObject *
Transport_setup(TransportObject *t, PyObject *args)
{
    PyObject *loop, *sock, *protocol, *server;
    if (!PyArg_ParseTuple(args, "OOOO:_setup", &loop, &sock, &protocol,
                          &server))
        return NULL;
    rl_state *st = rl_state_by_type(Py_TYPE(t));
    if (!PyObject_TypeCheck(loop, st->LoopType)) {
        PyErr_SetString(PyExc_TypeError, "a ringloop loop is required");
        return NULL;
    }
    int fd = PyObject_AsFileDescriptor(sock);
    if (fd < 0)
        return NULL;
    t->fd = fd;
    Py_XSETREF(t->loop, (LoopObject *)Py_NewRef(loop));
    Py_XSETREF(t->sock, Py_NewRef(sock));
    Py_XSETREF(t->server, server == Py_None ? NULL : Py_NewRef(server));
    t->high_water = 64 * 1024;
    t->low_water = 16 * 1024;
    return Transport_set_protocol(t, protocol);
}

/* ---- attributes ------------------------------------------------------- */

static PyObject *
get_or_none(PyObject *obj, int visible)
{
    return Py_NewRef(obj && visible ? obj : Py_None);
}

static PyObject *
Transport_get_loop(TransportObject *t, void *c)
{
    return get_or_none((PyObject *)t->loop, !t->released);
}

static PyObject *
Transport_get_sock(TransportObject *t, void *c)
{
    return get_or_none(t->sock, !t->released);
}

static PyObject *
Transport_get_server(TransportObject *t, void *c)
{
    return get_or_none(t->server, 1);
}

static int
Transport_set_server(TransportObject *t, PyObject *v, void *c)
{
    Py_XSETREF(t->server, v == NULL || v == Py_None ? NULL : Py_NewRef(v));
    return 0;
}

static PyObject *
Transport_get_protocol_attr(TransportObject *t, void *c)
{
    return get_or_none(t->protocol, 1);
}

static PyObject *
Transport_get_flag(TransportObject *t, void *c)
{
    switch ((intptr_t)c) {
    case 0: return PyBool_FromLong(t->closing);
    case 1: return PyBool_FromLong(t->eof);
    case 2: return PyBool_FromLong(t->paused);
    case 3: return PyBool_FromLong(t->protocol_paused);
    case 4: return PyBool_FromLong(t->protocol_connected);
    case 5: return PyLong_FromLong(t->conn_lost);
    case 6: return PyLong_FromLong(t->fd);
    case 7: return PyUnicode_FromString(
                t->recv_state == RECV_ARMED ? "polling" : "idle");
    case 8: return PyBool_FromLong(t->send_inflight);
    }
    Py_RETURN_NONE;
}

static int
Transport_set_protocol_connected(TransportObject *t, PyObject *v, void *c)
{
    int b = v ? PyObject_IsTrue(v) : 0;
    if (b < 0)
        return -1;
    t->protocol_connected = (char)b;
    return 0;
}

static PyGetSetDef Transport_getset[] = {
    {"_loop", (getter)Transport_get_loop, NULL, NULL, NULL},
    {"_sock", (getter)Transport_get_sock, NULL, NULL, NULL},
    {"_server", (getter)Transport_get_server, (setter)Transport_set_server,
     NULL, NULL},
    {"_protocol", (getter)Transport_get_protocol_attr, NULL, NULL, NULL},
    {"_closing", (getter)Transport_get_flag, NULL, NULL, (void *)0},
    {"_eof", (getter)Transport_get_flag, NULL, NULL, (void *)1},
    {"_paused", (getter)Transport_get_flag, NULL, NULL, (void *)2},
    {"_protocol_paused", (getter)Transport_get_flag, NULL, NULL, (void *)3},
    {"_protocol_connected", (getter)Transport_get_flag,
     (setter)Transport_set_protocol_connected, NULL, (void *)4},
    {"_conn_lost", (getter)Transport_get_flag, NULL, NULL, (void *)5},
    {"_sock_fd", (getter)Transport_get_flag, NULL, NULL, (void *)6},
    {"_read_state", (getter)Transport_get_flag, NULL, NULL, (void *)7},
    {"_sending", (getter)Transport_get_flag, NULL, NULL, (void *)8},
    {NULL},
};

static PyMemberDef Transport_members[] = {
    {"_empty_waiter", T_OBJECT, offsetof(TransportObject, empty_waiter), 0,
     NULL},
    {"_high_water", T_PYSSIZET, offsetof(TransportObject, high_water),
     READONLY, NULL},
    {"_low_water", T_PYSSIZET, offsetof(TransportObject, low_water), READONLY,
     NULL},
    {"__weaklistoffset__", T_PYSSIZET,
     offsetof(TransportObject, weakreflist), READONLY, NULL},
    {NULL},
};

/* ---- object protocol -------------------------------------------------- */

static PyObject *
Transport_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    TransportObject *t = (TransportObject *)type->tp_alloc(type, 0);
    if (t == NULL)
        return NULL;
    t->fd = -1;
    t->recv_op.complete = tr_recv_complete;
    t->send_op.complete = tr_send_complete;
    t->flush.run = tr_flush_run;
    return (PyObject *)t;
}

static int
Transport_traverse(TransportObject *t, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(t));
    Py_VISIT(t->extra);
    Py_VISIT(t->loop);
    Py_VISIT(t->sock);
    Py_VISIT(t->protocol);
    Py_VISIT(t->server);
    Py_VISIT(t->empty_waiter);
    Py_VISIT(t->data_received);
    Py_VISIT(t->get_buffer);
    Py_VISIT(t->buffer_updated);
    Py_VISIT(t->held);
    return 0;
}

static int
Transport_clear(TransportObject *t)
{
    Py_CLEAR(t->extra);
    Py_CLEAR(t->protocol);
    Py_CLEAR(t->server);
    Py_CLEAR(t->empty_waiter);
    Py_CLEAR(t->data_received);
    Py_CLEAR(t->get_buffer);
    Py_CLEAR(t->buffer_updated);
    Py_CLEAR(t->held);
    /* loop and sock stay until dealloc: ops in flight need them, and an op
     * in flight keeps the transport alive anyway. */
    return 0;
}

static void
Transport_dealloc(TransportObject *t)
{
    PyTypeObject *tp = Py_TYPE(t);
    PyObject_GC_UnTrack(t);
    if (t->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)t);
    Transport_clear(t);
    tr_release_read_target(t);
    t->q_bytes = 0;
    while (t->q_len > 0)
        tr_queue_pop(t);
    PyMem_Free(t->q);
    Py_CLEAR(t->sock);
    Py_CLEAR(t->loop);
    tp->tp_free((PyObject *)t);
    Py_DECREF(tp);
}

static PyMethodDef Transport_methods[] = {
    {"write", (PyCFunction)Transport_write, METH_O,
     "write($self, data, /)\n--\n\nQueue data to send; never blocks."},
    {"writelines", (PyCFunction)Transport_writelines, METH_O, NULL},
    {"write_eof", (PyCFunction)Transport_write_eof, METH_NOARGS, NULL},
    {"can_write_eof", (PyCFunction)Transport_can_write_eof, METH_NOARGS,
     NULL},
    {"close", (PyCFunction)Transport_close, METH_NOARGS, NULL},
    {"abort", (PyCFunction)Transport_abort, METH_NOARGS, NULL},
    {"_force_close", (PyCFunction)Transport_force_close, METH_O, NULL},
    {"is_closing", (PyCFunction)Transport_is_closing, METH_NOARGS, NULL},
    {"is_reading", (PyCFunction)Transport_is_reading, METH_NOARGS, NULL},
    {"pause_reading", (PyCFunction)Transport_pause_reading, METH_NOARGS,
     NULL},
    {"resume_reading", (PyCFunction)Transport_resume_reading, METH_NOARGS,
     NULL},
    {"set_protocol", (PyCFunction)Transport_set_protocol, METH_O, NULL},
    {"get_protocol", (PyCFunction)Transport_get_protocol, METH_NOARGS, NULL},
    {"set_write_buffer_limits",
     (PyCFunction)(void (*)(void))Transport_set_write_buffer_limits,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"_set_write_buffer_limits",
     (PyCFunction)(void (*)(void))Transport_set_write_buffer_limits,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"get_write_buffer_limits",
     (PyCFunction)Transport_get_write_buffer_limits, METH_NOARGS, NULL},
    {"get_write_buffer_size", (PyCFunction)Transport_get_write_buffer_size,
     METH_NOARGS, NULL},
    {"_setup", (PyCFunction)Transport_setup, METH_VARARGS, NULL},
    {"_start_reading", (PyCFunction)Transport_start_reading, METH_NOARGS,
     NULL},
    {"_deliver_held", (PyCFunction)Transport_deliver_held, METH_NOARGS, NULL},
    {"_release", (PyCFunction)Transport_release, METH_NOARGS, NULL},
    {NULL},
};

static PyType_Slot Transport_slots[] = {
    {Py_tp_doc, "The C half of ringloop's socket stream transport."},
    {Py_tp_new, Transport_new},
    {Py_tp_methods, Transport_methods},
    {Py_tp_getset, Transport_getset},
    {Py_tp_members, Transport_members},
    {Py_tp_traverse, Transport_traverse},
    {Py_tp_clear, Transport_clear},
    {Py_tp_dealloc, Transport_dealloc},
    {0, NULL},
};

static PyType_Spec Transport_spec = {
    .name = "ringloop._core.StreamTransport",
    .basicsize = sizeof(TransportObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = Transport_slots,
};

int
rl_transport_setup_type(PyObject *module, rl_state *state)
{
    PyObject *transports = PyImport_ImportModule("asyncio.transports");
    PyObject *protocols = PyImport_ImportModule("asyncio.protocols");
    PyObject *base = transports ? PyObject_GetAttrString(transports,
                                                         "_FlowControlMixin")
                                : NULL;
    state->BufferedProtocol =
        protocols ? PyObject_GetAttrString(protocols, "BufferedProtocol")
                  : NULL;
    state->minus_one = PyLong_FromLong(-1);
    Py_XDECREF(transports);
    Py_XDECREF(protocols);
    if (base == NULL || state->BufferedProtocol == NULL ||
        state->minus_one == NULL) {
        Py_XDECREF(base);
        return -1;
    }
    if (((PyTypeObject *)base)->tp_basicsize !=
        (Py_ssize_t)offsetof(TransportObject, weakreflist)) {
        Py_DECREF(base);
        PyErr_SetString(PyExc_ImportError,
                        "asyncio's _FlowControlMixin has an unexpected "
                        "layout");
        return -1;
    }
    state->TransportType =
        (PyTypeObject *)PyType_FromModuleAndSpec(module, &Transport_spec,
                                                 base);
    Py_DECREF(base);
    if (state->TransportType == NULL ||
        PyModule_AddType(module, state->TransportType) < 0)
        return -1;
    return 0;
}
