/*
 * transport_read.c - a StreamTransport's receiving side, straight from
 * completion dispatch: delivery to Protocol.data_received or
 * BufferedProtocol.get_buffer/buffer_updated, EOF, pause and resume (held
 * completions).
 *
 * Two modes. Small messages: one multishot receive into the ring's shared
 * buffers, copied out per completion (no re-arm per message). Large
 * messages (direct mode): one single-shot receive at a time straight into
 * the reader's memory - a fresh bytes for a Protocol, get_buffer()'s
 * buffer for a BufferedProtocol - which saves a copy through memory that
 * is cold at these sizes (research/echo_ceiling.md, 100 KiB). The target
 * belongs to the receive until its completion.
 */
#include "py/transport.h"

#include <errno.h>

static const char GET_BUFFER_FAILED[] =
    "Fatal error: protocol.get_buffer() call failed.";

void
tr_release_read_target(TransportObject *t)
{
    Py_CLEAR(t->rbytes);
    if (t->rview_held) {
        t->rview_held = 0;
        PyBuffer_Release(&t->rview);
    }
}

/* Queues one receive into the reader's memory: 0, -errno, or 1 with a
 * Python exception set. */
static int
start_direct(TransportObject *t)
{
    char *buf;
    Py_ssize_t len;
    if (t->data_received != NULL) {
        t->rbytes = PyBytes_FromStringAndSize(NULL, DIRECT_SIZE);
        if (t->rbytes == NULL)
            return 1;
        buf = PyBytes_AS_STRING(t->rbytes);
        len = DIRECT_SIZE;
    } else {
        PyObject *obj =
            PyObject_CallOneArg(t->get_buffer, t->loop->state->minus_one);
        int res = obj ? PyObject_GetBuffer(obj, &t->rview, PyBUF_WRITABLE)
                      : -1;
        Py_XDECREF(obj);
        if (res < 0)
            return 1;
        t->rview_held = 1;
        if (t->rview.len == 0) {
            tr_release_read_target(t);
            PyErr_SetString(PyExc_RuntimeError,
                            "get_buffer() returned an empty buffer");
            return 1;
        }
        buf = t->rview.buf;
        len = t->rview.len > (1 << 30) ? (1 << 30) : t->rview.len;
    }
    t->rstale = 0;
    int res = rl_ring_recv(t->loop->core.ring, &t->recv_op, t->fd, buf,
                           (unsigned)len, 0);
    if (res < 0)
        tr_release_read_target(t);
    return res;
}

void
tr_start_receive(TransportObject *t)
{
    if (t->recv_state == RECV_CANCELLING) {
        t->rearm = 1;
        return;
    }
    if (t->recv_state != RECV_IDLE || loop_gone(t))
        return;
    int direct = t->direct &&
                 t->loop->direct_receives < DIRECT_MAX_PENDING;
    int res = direct ? start_direct(t)
                     : rl_ring_recv_multishot(t->loop->core.ring, &t->recv_op,
                                              t->fd);
    if (res == 1) {
        tr_protocol_failed(t, GET_BUFFER_FAILED);
        return;
    }
    if (res < 0) {
        tr_os_failed(t, res, "Fatal read error on socket transport");
        return;
    }
    t->recv_state = RECV_ARMED;
    if (direct)
        t->loop->direct_receives++;
    Py_INCREF(t);
}

void
tr_stop_receive(TransportObject *t)
{
    t->rearm = 0;
    if (t->recv_state != RECV_ARMED || loop_gone(t))
        return;
    if (rl_ring_cancel(t->loop->core.ring, &t->recv_op) == 0)
        t->recv_state = RECV_CANCELLING;
}

int
tr_is_reading(TransportObject *t)
{
    return !t->closing && !t->paused;
}

static void
on_eof(TransportObject *t)
{
    PyObject *keep = PyObject_CallMethod(t->protocol, "eof_received", NULL);
    if (keep == NULL) {
        tr_protocol_failed(t, "Fatal error: protocol.eof_received() call "
                           "failed.");
        return;
    }
    int keep_open = PyObject_IsTrue(keep);
    Py_DECREF(keep);
    if (keep_open < 0) {
        tr_protocol_failed(t, "Fatal error: protocol.eof_received() call "
                           "failed.");
        return;
    }
    if (!keep_open) {
        PyObject *r = Transport_close(t, NULL);
        if (r == NULL)
            tr_protocol_failed(t, "Fatal error on transport");
        Py_XDECREF(r);
    }
}

static void hold(TransportObject *t, const char *data, Py_ssize_t len,
                 int status);
static void hold_bytes(TransportObject *t, PyObject *bytes, int status);

/* Hands data to a BufferedProtocol, through as many buffers as it takes;
 * if the protocol pauses reading meanwhile, the rest is held for
 * resume_reading (asyncio reads no further once paused: the rest of a
 * STARTTLS line's segment belongs to the protocol start_tls swaps in). */
static void
deliver_buffered(TransportObject *t, const char *data, Py_ssize_t len)
{
    while (len > 0 && !t->conn_lost) {
        if (t->paused) {
            hold(t, data, len, 0);
            return;
        }
        PyObject *obj =
            PyObject_CallOneArg(t->get_buffer, t->loop->state->minus_one);
        Py_buffer view;
        if (obj == NULL) {
            tr_protocol_failed(t, GET_BUFFER_FAILED);
            return;
        }
        int res = PyObject_GetBuffer(obj, &view, PyBUF_WRITABLE);
        Py_DECREF(obj);
        if (res < 0) {
            tr_protocol_failed(t, GET_BUFFER_FAILED);
            return;
        }
        if (view.len == 0) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_RuntimeError,
                            "get_buffer() returned an empty buffer");
            tr_protocol_failed(t, GET_BUFFER_FAILED);
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
            tr_protocol_failed(t, "Fatal error: protocol.buffer_updated() "
                               "call failed.");
            return;
        }
        Py_DECREF(r);
    }
}

/* Hands a bytes object to the protocol: as is to data_received, copied
 * into a BufferedProtocol's buffers. */
static void
deliver_bytes(TransportObject *t, PyObject *bytes)
{
    if (t->data_received == NULL) {
        deliver_buffered(t, PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes));
        return;
    }
    PyObject *r = PyObject_CallOneArg(t->data_received, bytes);
    if (r == NULL) {
        tr_protocol_failed(t, "Fatal error: protocol.data_received() call "
                           "failed.");
        return;
    }
    Py_DECREF(r);
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
        tr_protocol_failed(t, "Fatal error: protocol.data_received() call "
                           "failed.");
        return;
    }
    Py_DECREF(r);
}

/* Data or an end that must wait its turn (must_hold): keep it for
 * _deliver_held. */
static void
hold(TransportObject *t, const char *data, Py_ssize_t len, int status)
{
    PyObject *bytes = NULL;
    if (len > 0 && !(bytes = PyBytes_FromStringAndSize(data, len))) {
        tr_protocol_failed(t, "Fatal read error on socket transport");
        return;
    }
    hold_bytes(t, bytes, status);
    Py_XDECREF(bytes);
}

/* hold() for data already in a bytes object of its own (or NULL). The
 * first hold while not paused queues the one _deliver_held that delivers
 * it and whatever is held after it (paused, resume_reading queues it):
 * held != NULL while not paused means that call is queued. */
static void
hold_bytes(TransportObject *t, PyObject *bytes, int status)
{
    int first = t->held == NULL;
    if ((first && !(t->held = PyList_New(0))) ||
        (bytes != NULL && PyList_Append(t->held, bytes) < 0)) {
        tr_protocol_failed(t, "Fatal read error on socket transport");
        return;
    }
    if (status)
        t->held_status = status;
    if (first && !t->paused &&
        rl_call_soon_method(t->loop, (PyObject *)t, "_deliver_held", NULL) <
            0)
        tr_protocol_failed(t, "Fatal read error on socket transport");
}

/* A completion waits its turn while reading is paused, while earlier data
 * is still held, and while callbacks are ready: asyncio runs an
 * iteration's I/O callbacks after the callbacks ready before them. */
static int
must_hold(TransportObject *t)
{
    return t->paused || t->held != NULL || t->loop->core.ready.len != 0;
}

static void
on_read_end(TransportObject *t, int status)
{
    if (status == 1) {
        on_eof(t);
    } else {
        tr_os_failed(t, status, "Fatal read error on socket transport");
    }
}

/* A direct receive's completion: the data is already in its target,
 * which the caller took from the transport (a new receive may start here
 * with a new target). `stale`: the protocol changed since the receive
 * started, so the target is the old protocol's and the data is copied to
 * the new one. Consumes `bytes` and releases `view`. */
static void
direct_complete(TransportObject *t, int res, PyObject *bytes,
                Py_buffer *view, int stale)
{
    int status = res > 0 ? 0 : res == 0 ? 1 : res; /* 1: EOF */
    PyObject *r = NULL;
    const char *failed = NULL;
    if (loop_gone(t) || t->conn_lost || t->protocol == NULL) {
        /* closing: drop it */
    } else if (res == -ECANCELED) {
        if (t->rearm && tr_is_reading(t)) {
            t->rearm = 0;
            tr_start_receive(t);
        }
        t->rearm = 0;
    } else if (must_hold(t)) {
        if (bytes != NULL && res > 0) {
            /* the fresh bytes is the data: keep it, no copy */
            if (_PyBytes_Resize(&bytes, res) < 0)
                tr_protocol_failed(t, "Fatal read error on socket transport");
            else
                hold_bytes(t, bytes, status);
        } else {
            hold(t, view ? (const char *)view->buf : NULL,
                 res > 0 ? res : 0, status);
        }
    } else if (res > 0 && stale) {
        deliver(t, bytes ? PyBytes_AS_STRING(bytes) : (const char *)view->buf,
                res);
        if (tr_is_reading(t) && !t->conn_lost && t->held == NULL)
            tr_start_receive(t);
    } else if (res > 0) {
        if (bytes != NULL) {
            failed = "Fatal error: protocol.data_received() call failed.";
            if (_PyBytes_Resize(&bytes, res) == 0)
                r = PyObject_CallOneArg(t->data_received, bytes);
        } else {
            failed = "Fatal error: protocol.buffer_updated() call failed.";
            PyBuffer_Release(view);
            view = NULL;
            PyObject *n = PyLong_FromLong(res);
            r = n ? PyObject_CallOneArg(t->buffer_updated, n) : NULL;
            Py_XDECREF(n);
        }
        if (r == NULL) {
            tr_protocol_failed(t, failed);
        } else {
            Py_DECREF(r);
            if (res < DIRECT_LEAVE)
                t->direct = 0;
            if (tr_is_reading(t) && !t->conn_lost)
                tr_start_receive(t);
        }
    } else {
        on_read_end(t, status);
    }
    Py_XDECREF(bytes);
    if (view != NULL)
        PyBuffer_Release(view);
}

void
tr_recv_complete(struct rl_op *op, int res, unsigned flags)
{
    TransportObject *t = T_OF(recv_op, op);
    if (t->rbytes != NULL || t->rview_held) {
        PyObject *bytes = t->rbytes;
        Py_buffer view = t->rview;
        int had_view = t->rview_held;
        int stale = t->rstale;
        t->rbytes = NULL;
        t->rview_held = 0;
        t->recv_state = RECV_IDLE;
        t->loop->direct_receives--;
        direct_complete(t, res, bytes, had_view ? &view : NULL, stale);
        tr_maybe_close_socket(t);
        Py_DECREF(t);
        return;
    }
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
            if (tr_is_reading(t))
                tr_start_receive(t);
        }
    } else if (must_hold(t)) {
        hold(t, data, res > 0 ? res : 0, status);
    } else if (res > 0) {
        deliver(t, data, res);
        unsigned bufsize = rl_ring_buffer_size(ring);
        int large = (unsigned)res >= (bufsize < DIRECT_ENTER ? bufsize
                                                             : DIRECT_ENTER);
        if (large && !t->conn_lost) {
            /* Large messages: read them in place. Switch now if a direct
             * slot is free; else the next receive decides. */
            t->direct = 1;
            if (t->recv_state == RECV_ARMED &&
                t->loop->direct_receives < DIRECT_MAX_PENDING) {
                tr_stop_receive(t);
                t->rearm = 1;
            }
        }
        if (final && tr_is_reading(t) && !t->conn_lost)
            tr_start_receive(t); /* the kernel ended the multishot early */
    } else {
        on_read_end(t, status);
    }
    if (data)
        rl_ring_buffer_recycle(ring, RL_OP_BUFFER_ID(flags));
    if (final) {
        tr_maybe_close_socket(t);
        Py_DECREF(t);
    }
}

/* Delivers what arrived while paused, then receives again. */
PyObject *
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
                hold_bytes(t, b, 0);
                continue;
            }
            deliver_bytes(t, b);
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
    if (t->held == NULL && tr_is_reading(t) && !t->conn_lost)
        tr_start_receive(t);
    Py_RETURN_NONE;
}

PyObject *
Transport_start_reading(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    if (tr_is_reading(t) && !t->conn_lost && t->protocol != NULL)
        tr_start_receive(t);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

PyObject *
Transport_pause_reading(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    if (!tr_is_reading(t))
        Py_RETURN_NONE;
    t->paused = 1;
    tr_stop_receive(t);
    Py_RETURN_NONE;
}

PyObject *
Transport_resume_reading(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    if (t->closing || !t->paused)
        Py_RETURN_NONE;
    t->paused = 0;
    /* Like asyncio, data flows again from the next iteration on. */
    if (rl_call_soon_method(t->loop, (PyObject *)t, "_deliver_held", NULL) < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyObject *
Transport_is_reading(TransportObject *t, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(tr_is_reading(t));
}

