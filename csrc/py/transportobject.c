/*
 * transportobject.c - StreamTransport, the C half of a TCP or Unix stream
 * transport. ringloop._transports.SocketTransport subclasses it and keeps
 * the cold paths (construction, repr, connection_lost, the destructor's
 * warning); everything per message is here. The type derives from
 * asyncio.Transport, so its first field is BaseTransport's `_extra` slot.
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
#include "py/module.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

enum {
    IOV_BATCH = 64,            /* chunks per SENDMSG */
    EAGER_SEND_MIN = 16384,    /* write() sizes tried with send(2) at once */
    LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5, /* asyncio.constants */
};

enum { RECV_IDLE, RECV_ARMED, RECV_CANCELLING };

typedef struct {
    PyObject *obj;    /* bytes that own the memory */
    const char *data; /* unsent part */
    Py_ssize_t len;
} Chunk;

typedef struct {
    PyObject_HEAD
    PyObject *extra; /* BaseTransport.__slots__ = ('_extra',): keep first */
    PyObject *weakreflist;
    LoopObject *loop;
    PyObject *sock;
    PyObject *protocol;
    PyObject *server;
    PyObject *empty_waiter;
    PyObject *data_received; /* bound method, Protocol */
    PyObject *get_buffer;    /* bound methods, BufferedProtocol */
    PyObject *buffer_updated;
    PyObject *held;  /* bytes received while paused (list), or NULL */
    int held_status; /* after the held bytes: 0, 1 = EOF, or -errno */
    int fd;
    int conn_lost;
    Py_ssize_t high_water, low_water;
    Chunk *q; /* write queue: a ring of chunks */
    size_t q_head, q_len, q_cap;
    Py_ssize_t q_bytes;
    size_t sending; /* chunks at the head that the send in flight covers */
    struct rl_op recv_op;
    struct rl_op send_op;
    struct rl_deferred flush;
    struct msghdr msg;
    struct iovec iov[IOV_BATCH];
    char recv_state;
    char send_inflight;
    char closing;
    char eof;        /* write_eof() called */
    char paused;     /* pause_reading() */
    char protocol_paused;
    char protocol_connected;
    char released;   /* connection_lost done: close the socket when idle */
    char rearm;      /* start receiving again when the cancel completes */
} TransportObject;

#define T_OF(field, ptr) rl_container_of(ptr, TransportObject, field)

static PyObject *Transport_close(TransportObject *t, PyObject *unused);

/* ---- helpers ---------------------------------------------------------- */

static int
loop_gone(TransportObject *t)
{
    return t->loop == NULL || t->loop->core.closing || t->loop->closed;
}

static int
call_soon(TransportObject *t, PyObject *fn, PyObject *arg)
{
    PyObject *r = PyObject_CallMethod((PyObject *)t->loop, "call_soon", "OO",
                                      fn, arg);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* Schedules self._call_connection_lost(exc). */
static int
schedule_connection_lost(TransportObject *t, PyObject *exc)
{
    PyObject *fn = PyObject_GetAttrString((PyObject *)t,
                                          "_call_connection_lost");
    if (fn == NULL)
        return -1;
    int res = call_soon(t, fn, exc ? exc : Py_None);
    Py_DECREF(fn);
    return res;
}

/* A protocol callback raised: asyncio's _fatal_error, or propagate
 * SystemExit/KeyboardInterrupt out of the loop. */
static void
protocol_failed(TransportObject *t, const char *message)
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
static void
os_failed(TransportObject *t, int neg_errno, const char *message)
{
    rl_set_oserror(neg_errno);
    protocol_failed(t, message);
}

/* The socket is closed once connection_lost ran and no op is in flight. */
static void
maybe_close_socket(TransportObject *t)
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

/* ---- reading ---------------------------------------------------------- */

static void
start_receive(TransportObject *t)
{
    if (t->recv_state == RECV_CANCELLING) {
        t->rearm = 1;
        return;
    }
    if (t->recv_state != RECV_IDLE || loop_gone(t))
        return;
    int res = rl_ring_recv_multishot(t->loop->core.ring, &t->recv_op, t->fd);
    if (res < 0) {
        os_failed(t, res, "Fatal read error on socket transport");
        return;
    }
    t->recv_state = RECV_ARMED;
    Py_INCREF(t);
}

static void
stop_receive(TransportObject *t)
{
    t->rearm = 0;
    if (t->recv_state != RECV_ARMED || loop_gone(t))
        return;
    if (rl_ring_cancel(t->loop->core.ring, &t->recv_op) == 0)
        t->recv_state = RECV_CANCELLING;
}

static int
is_reading(TransportObject *t)
{
    return !t->closing && !t->paused;
}

static void
on_eof(TransportObject *t)
{
    PyObject *keep = PyObject_CallMethod(t->protocol, "eof_received", NULL);
    if (keep == NULL) {
        protocol_failed(t, "Fatal error: protocol.eof_received() call "
                           "failed.");
        return;
    }
    int keep_open = PyObject_IsTrue(keep);
    Py_DECREF(keep);
    if (keep_open < 0) {
        protocol_failed(t, "Fatal error: protocol.eof_received() call "
                           "failed.");
        return;
    }
    if (!keep_open) {
        PyObject *r = Transport_close(t, NULL);
        if (r == NULL)
            protocol_failed(t, "Fatal error on transport");
        Py_XDECREF(r);
    }
}

/* Hands data to a BufferedProtocol, through as many buffers as it takes. */
static void
deliver_buffered(TransportObject *t, const char *data, Py_ssize_t len)
{
    while (len > 0 && !t->conn_lost) {
        PyObject *obj =
            PyObject_CallOneArg(t->get_buffer, t->loop->state->minus_one);
        Py_buffer view;
        if (obj == NULL) {
            protocol_failed(t, "Fatal error: protocol.get_buffer() call "
                               "failed.");
            return;
        }
        int res = PyObject_GetBuffer(obj, &view, PyBUF_WRITABLE);
        Py_DECREF(obj);
        if (res < 0) {
            protocol_failed(t, "Fatal error: protocol.get_buffer() call "
                               "failed.");
            return;
        }
        if (view.len == 0) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_RuntimeError,
                            "get_buffer() returned an empty buffer");
            protocol_failed(t, "Fatal error: protocol.get_buffer() call "
                               "failed.");
            return;
        }
        Py_ssize_t n = view.len < len ? view.len : len;
        memcpy(view.buf, data, (size_t)n);
        PyBuffer_Release(&view);
        data += n;
        len -= n;
        PyObject *nobj = PyLong_FromSsize_t(n);
        PyObject *r = nobj ? PyObject_CallOneArg(t->buffer_updated, nobj)
                           : NULL;
        Py_XDECREF(nobj);
        if (r == NULL) {
            protocol_failed(t, "Fatal error: protocol.buffer_updated() "
                               "call failed.");
            return;
        }
        Py_DECREF(r);
    }
}

static void
deliver(TransportObject *t, const char *data, Py_ssize_t len)
{
    if (t->data_received == NULL) {
        deliver_buffered(t, data, len);
        return;
    }
    PyObject *bytes = PyBytes_FromStringAndSize(data, len);
    PyObject *r = bytes ? PyObject_CallOneArg(t->data_received, bytes) : NULL;
    Py_XDECREF(bytes);
    if (r == NULL) {
        protocol_failed(t, "Fatal error: protocol.data_received() call "
                           "failed.");
        return;
    }
    Py_DECREF(r);
}

/* Data or an end that arrived while paused: keep it for resume_reading. */
static void
hold(TransportObject *t, const char *data, Py_ssize_t len, int status)
{
    if (len > 0) {
        PyObject *bytes = PyBytes_FromStringAndSize(data, len);
        if (bytes == NULL || (t->held == NULL && !(t->held = PyList_New(0))) ||
            PyList_Append(t->held, bytes) < 0) {
            Py_XDECREF(bytes);
            protocol_failed(t, "Fatal read error on socket transport");
            return;
        }
        Py_DECREF(bytes);
    }
    if (status)
        t->held_status = status;
}

static void
on_read_end(TransportObject *t, int status)
{
    if (status == 1) {
        on_eof(t);
    } else {
        os_failed(t, status, "Fatal read error on socket transport");
    }
}

static void
recv_complete(struct rl_op *op, int res, unsigned flags)
{
    TransportObject *t = T_OF(recv_op, op);
    struct rl_ring *ring = t->loop->core.ring;
    const char *data = NULL;
    if (flags & RL_OP_BUFFER)
        data = rl_ring_buffer(ring, RL_OP_BUFFER_ID(flags));
    int final = !(flags & RL_OP_MORE);
    if (final)
        t->recv_state = RECV_IDLE;
    int status = res > 0 ? 0 : res == 0 ? 1 : res; /* 1: EOF */

    if (loop_gone(t) || t->conn_lost || t->protocol == NULL) {
        /* closing: drop it */
    } else if (res == -ECANCELED || res == -ENOBUFS) {
        /* cancelled by pause/close, or the buffers ran dry: the loop
         * returns buffers as it copies, so receiving again works */
        if (res == -ENOBUFS || t->rearm) {
            t->rearm = 0;
            if (is_reading(t))
                start_receive(t);
        }
    } else if (t->paused || t->held != NULL) {
        hold(t, data, res > 0 ? res : 0, status);
    } else if (res > 0) {
        deliver(t, data, res);
        if (final && is_reading(t))
            start_receive(t); /* the kernel ended the multishot early */
    } else {
        on_read_end(t, status);
    }
    if (data)
        rl_ring_buffer_recycle(ring, RL_OP_BUFFER_ID(flags));
    if (final) {
        maybe_close_socket(t);
        Py_DECREF(t);
    }
}

/* Delivers what arrived while paused, then receives again. */
static PyObject *
Transport_deliver_held(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    while (t->held != NULL && !t->paused && !t->conn_lost) {
        PyObject *held = t->held;
        int status = t->held_status;
        t->held = NULL;
        t->held_status = 0;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(held); i++) {
            PyObject *b = PyList_GET_ITEM(held, i);
            if (t->paused || t->conn_lost) { /* paused again: keep the rest */
                hold(t, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), 0);
                continue;
            }
            deliver(t, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b));
        }
        Py_DECREF(held);
        if (status) {
            if (t->paused || t->conn_lost)
                hold(t, NULL, 0, status);
            else
                on_read_end(t, status);
            Py_RETURN_NONE;
        }
    }
    if (PyErr_Occurred())
        return NULL;
    if (t->held == NULL && is_reading(t) && !t->conn_lost)
        start_receive(t);
    Py_RETURN_NONE;
}

static PyObject *
Transport_start_reading(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    if (is_reading(t) && !t->conn_lost && t->protocol != NULL)
        start_receive(t);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Transport_pause_reading(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    if (!is_reading(t))
        Py_RETURN_NONE;
    t->paused = 1;
    stop_receive(t);
    Py_RETURN_NONE;
}

static PyObject *
Transport_resume_reading(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    if (t->closing || !t->paused)
        Py_RETURN_NONE;
    t->paused = 0;
    /* Like asyncio, data flows again from the next iteration on. */
    PyObject *fn = PyObject_GetAttrString((PyObject *)t, "_deliver_held");
    if (fn == NULL)
        return NULL;
    PyObject *r = PyObject_CallMethod((PyObject *)t->loop, "call_soon", "O",
                                      fn);
    Py_DECREF(fn);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static PyObject *
Transport_is_reading(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(is_reading(t));
}

/* ---- flow control ----------------------------------------------------- */

static void
flow_call(TransportObject *t, const char *method)
{
    PyObject *r = PyObject_CallMethod(t->protocol, method, NULL);
    if (r != NULL) {
        Py_DECREF(r);
        return;
    }
    char message[64];
    snprintf(message, sizeof(message), "protocol.%s() failed", method);
    rl_loop_completion_error(t->loop, message, "transport", (PyObject *)t);
}

static void
maybe_pause_protocol(TransportObject *t)
{
    if (t->q_bytes <= t->high_water || t->protocol_paused)
        return;
    t->protocol_paused = 1;
    flow_call(t, "pause_writing");
}

static void
maybe_resume_protocol(TransportObject *t)
{
    if (t->protocol_paused && t->q_bytes <= t->low_water) {
        t->protocol_paused = 0;
        flow_call(t, "resume_writing");
    }
}

static PyObject *
Transport_set_write_buffer_limits(TransportObject *t, PyObject *args,
                                  PyObject *kwds)
{
    static char *kwlist[] = {"high", "low", NULL};
    PyObject *high_obj = Py_None, *low_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:set_write_buffer_limits",
                                     kwlist, &high_obj, &low_obj))
        return NULL;
    Py_ssize_t high, low;
    if (high_obj == Py_None) {
        if (low_obj == Py_None) {
            high = 64 * 1024;
        } else {
            if ((low = PyNumber_AsSsize_t(low_obj, NULL)) == -1 &&
                PyErr_Occurred())
                return NULL;
            high = 4 * low;
        }
    } else if ((high = PyNumber_AsSsize_t(high_obj, NULL)) == -1 &&
               PyErr_Occurred()) {
        return NULL;
    }
    if (low_obj == Py_None)
        low = high / 4 - (high % 4 < 0); /* Python's floor division */
    else if ((low = PyNumber_AsSsize_t(low_obj, NULL)) == -1 &&
             PyErr_Occurred())
        return NULL;
    if (!(high >= low && low >= 0)) {
        PyErr_Format(PyExc_ValueError,
                     "high (%zd) must be >= low (%zd) must be >= 0", high,
                     low);
        return NULL;
    }
    t->high_water = high;
    t->low_water = low;
    if (t->protocol != NULL && t->loop != NULL)
        maybe_pause_protocol(t);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Transport_get_write_buffer_limits(TransportObject *t, PyObject *unused)
{
    return Py_BuildValue("(nn)", t->low_water, t->high_water);
}

static PyObject *
Transport_get_write_buffer_size(TransportObject *t, PyObject *unused)
{
    return PyLong_FromSsize_t(t->q_bytes);
}

/* ---- writing ---------------------------------------------------------- */

static void send_complete(struct rl_op *op, int res, unsigned flags);

static Chunk *
chunk_at(TransportObject *t, size_t i)
{
    return &t->q[(t->q_head + i) & (t->q_cap - 1)];
}

static int
queue_push(TransportObject *t, PyObject *obj, const char *data, Py_ssize_t len)
{
    if (t->q_len == t->q_cap) {
        size_t cap = t->q_cap ? t->q_cap * 2 : 8;
        Chunk *q = PyMem_Malloc(cap * sizeof(Chunk));
        if (q == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (size_t i = 0; i < t->q_len; i++)
            q[i] = *chunk_at(t, i);
        PyMem_Free(t->q);
        t->q = q;
        t->q_cap = cap;
        t->q_head = 0;
    }
    Chunk *c = &t->q[(t->q_head + t->q_len) & (t->q_cap - 1)];
    c->obj = Py_NewRef(obj);
    c->data = data;
    c->len = len;
    t->q_len++;
    t->q_bytes += len;
    return 0;
}

static void
queue_pop(TransportObject *t)
{
    Chunk *c = chunk_at(t, 0);
    PyObject *obj = c->obj;
    t->q_head = (t->q_head + 1) & (t->q_cap - 1);
    t->q_len--;
    Py_DECREF(obj);
}

/* Drops queued data that no send covers (the one in flight keeps its own
 * chunks until its completion). */
static void
queue_discard(TransportObject *t)
{
    while (t->q_len > t->sending) {
        size_t last = t->q_len - 1;
        Chunk *c = chunk_at(t, last);
        PyObject *obj = c->obj;
        t->q_len--;
        Py_DECREF(obj);
    }
    t->q_bytes = 0;
}

static void
start_send(TransportObject *t)
{
    if (t->send_inflight || t->q_len == 0 || t->conn_lost || loop_gone(t))
        return;
    size_t n = t->q_len < IOV_BATCH ? t->q_len : IOV_BATCH;
    int res;
    if (n == 1) {
        Chunk *c = chunk_at(t, 0);
        size_t len = (size_t)c->len > (1u << 30) ? (1u << 30) : (size_t)c->len;
        res = rl_ring_send(t->loop->core.ring, &t->send_op, t->fd, c->data,
                           (unsigned)len, MSG_WAITALL | MSG_NOSIGNAL);
    } else {
        for (size_t i = 0; i < n; i++) {
            Chunk *c = chunk_at(t, i);
            t->iov[i].iov_base = (void *)c->data;
            t->iov[i].iov_len = (size_t)c->len;
        }
        memset(&t->msg, 0, sizeof(t->msg));
        t->msg.msg_iov = t->iov;
        t->msg.msg_iovlen = n;
        res = rl_ring_sendmsg(t->loop->core.ring, &t->send_op, t->fd, &t->msg,
                              MSG_WAITALL | MSG_NOSIGNAL);
    }
    if (res < 0) {
        os_failed(t, res, "Fatal write error on socket transport");
        return;
    }
    t->sending = n;
    t->send_inflight = 1;
    Py_INCREF(t);
}

static void
flush_run(struct rl_deferred *d)
{
    TransportObject *t = T_OF(flush, d);
    start_send(t);
    if (PyErr_Occurred())
        PyErr_WriteUnraisable((PyObject *)t);
    Py_DECREF(t);
}

static void
schedule_flush(TransportObject *t)
{
    if (!t->flush.queued && !t->send_inflight) {
        Py_INCREF(t);
        rl_loop_defer(&t->loop->core, &t->flush);
    }
}

/* The queue drained: what asyncio does when its buffer empties. */
static void
on_drained(TransportObject *t)
{
    if (t->empty_waiter != NULL && t->empty_waiter != Py_None) {
        PyObject *r = PyObject_CallMethod(t->empty_waiter, "set_result", "O",
                                          Py_None);
        if (r == NULL)
            rl_loop_completion_error(t->loop, "sendfile waiter failed",
                                     "transport", (PyObject *)t);
        Py_XDECREF(r);
    }
    if (t->closing) {
        PyObject *r = PyObject_CallMethod((PyObject *)t,
                                          "_call_connection_lost", "O",
                                          Py_None);
        if (r == NULL)
            rl_loop_completion_error(t->loop, "connection_lost() failed",
                                     "transport", (PyObject *)t);
        Py_XDECREF(r);
    } else if (t->eof) {
        shutdown(t->fd, SHUT_WR);
    }
}

static void
fail_empty_waiter(TransportObject *t, PyObject *exc)
{
    if (t->empty_waiter == NULL || t->empty_waiter == Py_None)
        return;
    PyObject *r = PyObject_CallMethod(t->empty_waiter, "set_exception", "O",
                                      exc);
    if (r == NULL)
        PyErr_Clear();
    Py_XDECREF(r);
}

static void
send_complete(struct rl_op *op, int res, unsigned flags)
{
    TransportObject *t = T_OF(send_op, op);
    size_t covered = t->sending;
    t->send_inflight = 0;
    t->sending = 0;
    if (res >= 0 && !t->conn_lost) {
        /* Drop what was sent; a short count leaves the rest queued. */
        Py_ssize_t sent = res;
        t->q_bytes -= sent;
        while (sent > 0 && t->q_len > 0) {
            Chunk *c = chunk_at(t, 0);
            if (c->len <= sent) {
                sent -= c->len;
                queue_pop(t);
            } else {
                c->data += sent;
                c->len -= sent;
                sent = 0;
            }
        }
    } else {
        for (size_t i = 0; i < covered && t->q_len > 0; i++)
            queue_pop(t);
    }
    if (loop_gone(t) || t->conn_lost || t->protocol == NULL) {
        /* aborted or closing: nothing to report */
    } else if (res < 0) {
        queue_discard(t);
        rl_set_oserror(res);
        PyObject *exc = rl_fetch_exception();
        fail_empty_waiter(t, exc);
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
        protocol_failed(t, "Fatal write error on socket transport");
    } else {
        maybe_resume_protocol(t); /* may write more */
        if (t->q_len > 0)
            start_send(t);
        else
            on_drained(t);
    }
    maybe_close_socket(t);
    Py_DECREF(t);
}

/* Tries send(2) at once for a large write on an idle socket. Returns the
 * bytes sent, or -1 after reporting a fatal error. */
static Py_ssize_t
eager_send(TransportObject *t, const char *data, Py_ssize_t len)
{
    ssize_t n = send(t->fd, data, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    os_failed(t, -errno, "Fatal write error on socket transport");
    return -1;
}

static int
write_checks(TransportObject *t, const char *method)
{
    if (t->eof) {
        PyErr_Format(PyExc_RuntimeError, "Cannot call %s() after write_eof()",
                     method);
        return -1;
    }
    if (t->empty_waiter != NULL && t->empty_waiter != Py_None) {
        PyErr_Format(PyExc_RuntimeError,
                     "unable to %s; sendfile is in progress", method);
        return -1;
    }
    return 0;
}

/* Queues one bytes-like object; 0, or -1 with an exception set. */
static int
write_one(TransportObject *t, PyObject *data)
{
    PyObject *owned;
    if (PyBytes_CheckExact(data)) {
        owned = Py_NewRef(data);
    } else if (PyByteArray_Check(data) || PyMemoryView_Check(data) ||
               PyBytes_Check(data)) {
        owned = PyBytes_FromObject(data); /* the caller may change it */
        if (owned == NULL)
            return -1;
    } else {
        PyErr_Format(PyExc_TypeError,
                     "data argument must be a bytes-like object, not %.100s",
                     Py_TYPE(data)->tp_name);
        return -1;
    }
    Py_ssize_t len = PyBytes_GET_SIZE(owned);
    const char *buf = PyBytes_AS_STRING(owned);
    int res = 0;
    if (len >= EAGER_SEND_MIN && t->q_len == 0 && !t->send_inflight) {
        Py_ssize_t n = eager_send(t, buf, len);
        if (n < 0 || n == len) {
            Py_DECREF(owned);
            return PyErr_Occurred() ? -1 : 0;
        }
        buf += n;
        len -= n;
    }
    res = queue_push(t, owned, buf, len);
    Py_DECREF(owned);
    return res;
}

static int
conn_lost_write(TransportObject *t)
{
    if (t->conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES) {
        PyObject *r = PyObject_CallMethod((PyObject *)t, "_warn_lost_write",
                                          NULL);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    t->conn_lost++;
    return 0;
}

static PyObject *
Transport_write(TransportObject *t, PyObject *data)
{
    if (!PyBytes_Check(data) && !PyByteArray_Check(data) &&
        !PyMemoryView_Check(data)) {
        PyErr_Format(PyExc_TypeError,
                     "data argument must be a bytes-like object, not '%.100s'",
                     Py_TYPE(data)->tp_name);
        return NULL;
    }
    if (write_checks(t, "write") < 0)
        return NULL;
    Py_ssize_t size = PyObject_Length(data);
    if (size <= 0)
        return size < 0 ? NULL : Py_NewRef(Py_None);
    if (t->conn_lost) {
        if (conn_lost_write(t) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    if (write_one(t, data) < 0)
        return NULL;
    if (t->q_len > 0 && !t->conn_lost) {
        schedule_flush(t);
        maybe_pause_protocol(t);
    }
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Transport_writelines(TransportObject *t, PyObject *lines)
{
    if (write_checks(t, "writelines") < 0)
        return NULL;
    PyObject *it = PyObject_GetIter(lines);
    if (it == NULL)
        return NULL;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        int res = 0;
        if (!t->conn_lost) {
            /* a memoryview per item, as asyncio: other types raise */
            PyObject *view = PyMemoryView_FromObject(item);
            res = view ? write_one(t, view) : -1;
            Py_XDECREF(view);
        }
        Py_DECREF(item);
        if (res < 0) {
            Py_DECREF(it);
            return NULL;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    if (t->q_len > 0 && !t->conn_lost) {
        schedule_flush(t);
        maybe_pause_protocol(t);
    }
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Transport_write_eof(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    if (t->closing || t->eof)
        Py_RETURN_NONE;
    t->eof = 1;
    if (t->q_len == 0 && shutdown(t->fd, SHUT_WR) < 0)
        return rl_set_oserror(-errno);
    Py_RETURN_NONE;
}

static PyObject *
Transport_can_write_eof(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    Py_RETURN_TRUE;
}

/* ---- closing ---------------------------------------------------------- */

static PyObject *
Transport_close(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    if (t->closing)
        Py_RETURN_NONE;
    t->closing = 1;
    stop_receive(t);
    if (t->q_len == 0) {
        t->conn_lost++;
        if (schedule_connection_lost(t, NULL) < 0)
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
        queue_discard(t);
        if (t->send_inflight && !loop_gone(t))
            rl_ring_cancel(t->loop->core.ring, &t->send_op);
    }
    if (!t->closing) {
        t->closing = 1;
        stop_receive(t);
    }
    t->conn_lost++;
    if (schedule_connection_lost(t, exc) < 0)
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
    stop_receive(t);
    maybe_close_socket(t);
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
    t->recv_op.complete = recv_complete;
    t->send_op.complete = send_complete;
    t->flush.run = flush_run;
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
    t->q_bytes = 0;
    while (t->q_len > 0)
        queue_pop(t);
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
                                                         "Transport")
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
                        "asyncio.Transport has an unexpected layout");
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
