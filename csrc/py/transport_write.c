/*
 * transport_write.c - a StreamTransport's sending side: the queue of
 * chunks, the flush before the loop's next kernel entry (one SEND or
 * SENDMSG in flight), the eager send(2) for large writes on an idle
 * socket, write_eof, and asyncio's write-buffer flow control.
 */
#include "py/transport.h"

#include <errno.h>

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
    if (PyErr_ExceptionMatches(PyExc_SystemExit) ||
        PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        rl_loop_completion_error(t->loop, message, NULL, NULL);
        return;
    }
    /* asyncio's _FlowControlMixin reports it with transport and protocol */
    PyObject *exc = rl_fetch_exception();
    PyObject *ctx = Py_BuildValue("{s:s,s:O,s:O,s:O}", "message", message,
                                  "exception", exc, "transport", t,
                                  "protocol", t->protocol);
    r = ctx ? PyObject_CallMethod((PyObject *)t->loop,
                                  "call_exception_handler", "O", ctx)
            : NULL;
    if (r == NULL)
        PyErr_WriteUnraisable((PyObject *)t);
    Py_XDECREF(r);
    Py_XDECREF(ctx);
    Py_XDECREF(exc);
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

PyObject *
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

PyObject *
Transport_get_write_buffer_limits(TransportObject *t, PyObject *unused)
{
    return Py_BuildValue("(nn)", t->low_water, t->high_water);
}

PyObject *
Transport_get_write_buffer_size(TransportObject *t, PyObject *unused)
{
    return PyLong_FromSsize_t(t->q_bytes);
}

/* ---- writing ---------------------------------------------------------- */

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

void
tr_queue_pop(TransportObject *t)
{
    Chunk *c = chunk_at(t, 0);
    PyObject *obj = c->obj;
    t->q_head = (t->q_head + 1) & (t->q_cap - 1);
    t->q_len--;
    Py_DECREF(obj);
}

/* Drops queued data that no send covers (the one in flight keeps its own
 * chunks until its completion). */
void
tr_queue_discard(TransportObject *t)
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
        tr_os_failed(t, res, "Fatal write error on socket transport");
        return;
    }
    t->sending = n;
    t->send_inflight = 1;
    Py_INCREF(t);
}

void
tr_flush_run(struct rl_deferred *d)
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

void
tr_send_complete(struct rl_op *op, int res, unsigned flags)
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
                tr_queue_pop(t);
            } else {
                c->data += sent;
                c->len -= sent;
                sent = 0;
            }
        }
    } else {
        for (size_t i = 0; i < covered && t->q_len > 0; i++)
            tr_queue_pop(t);
    }
    if (loop_gone(t) || t->conn_lost || t->protocol == NULL) {
        /* aborted or closing: nothing to report */
    } else if (res < 0) {
        tr_queue_discard(t);
        rl_set_oserror(res);
        PyObject *exc = rl_fetch_exception();
        fail_empty_waiter(t, exc);
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
        tr_protocol_failed(t, "Fatal write error on socket transport");
    } else {
        maybe_resume_protocol(t); /* may write more */
        if (t->q_len > 0)
            start_send(t);
        else
            on_drained(t);
    }
    tr_maybe_close_socket(t);
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
    tr_os_failed(t, -errno, "Fatal write error on socket transport");
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

PyObject *
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

PyObject *
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

PyObject *
Transport_write_eof(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    if (t->closing || t->eof)
        Py_RETURN_NONE;
    t->eof = 1;
    if (t->q_len == 0 && shutdown(t->fd, SHUT_WR) < 0)
        return rl_set_oserror(-errno);
    Py_RETURN_NONE;
}

PyObject *
Transport_can_write_eof(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    Py_RETURN_TRUE;
}

