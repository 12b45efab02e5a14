/*
 * datagram_send.c - a DatagramTransport's sending side: sendto() with
 * asyncio's checks, sent at once with sendto(2)/send(2) while nothing is
 * queued (as asyncio and uvloop do); on EAGAIN the datagram is copied to a
 * queue that the ring sends in order, one SENDMSG in flight, its bytes
 * and address owned by the queue's head until the final completion.
 * Flow control is asyncio's own _FlowControlMixin methods, called when
 * the queue crosses the limits. Loop thread only.
 */
#include "py/datagram.h"

#include <arpa/inet.h>
#include <errno.h>

/* ---- the queue -------------------------------------------------------- */

static int
queue_grow(DatagramObject *t)
{
    size_t cap = t->q_cap ? t->q_cap * 2 : 16;
    Dgram *q = PyMem_Malloc(cap * sizeof(Dgram));
    if (q == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < t->q_len; i++)
        q[i] = t->q[(t->q_head + i) % t->q_cap];
    PyMem_Free(t->q);
    t->q = q;
    t->q_cap = cap;
    t->q_head = 0;
    return 0;
}

void
dg_queue_pop(DatagramObject *t)
{
    Dgram *d = &t->q[t->q_head];
    t->q_bytes -= PyBytes_GET_SIZE(d->data) + t->header;
    Py_CLEAR(d->data);
    t->q_head = (t->q_head + 1) % t->q_cap;
    t->q_len--;
}

void
dg_queue_discard(DatagramObject *t)
{
    size_t keep = t->send_inflight ? 1 : 0;
    while (t->q_len > keep) {
        size_t last = (t->q_head + t->q_len - 1) % t->q_cap;
        t->q_bytes -= PyBytes_GET_SIZE(t->q[last].data) + t->header;
        Py_CLEAR(t->q[last].data);
        t->q_len--;
    }
}

/* Queues the head's SENDMSG if none is in flight. */
static void
send_next(DatagramObject *t)
{
    if (t->send_inflight || t->q_len == 0 || dg_loop_gone(t) || t->released)
        return;
    Dgram *d = &t->q[t->q_head];
    /* The address is copied: the queue may move while the send flies. */
    memcpy(&t->sname, &d->addr, d->addrlen);
    memset(&t->smsg, 0, sizeof(t->smsg));
    t->smsg.msg_name = d->addrlen ? &t->sname : NULL;
    t->smsg.msg_namelen = d->addrlen;
    t->siov.iov_base = PyBytes_AS_STRING(d->data);
    t->siov.iov_len = (size_t)PyBytes_GET_SIZE(d->data);
    t->smsg.msg_iov = &t->siov;
    t->smsg.msg_iovlen = 1;
    int res = rl_ring_sendmsg(t->loop->core.ring, &t->send_op, t->fd,
                              &t->smsg, 0);
    if (res < 0) {
        /* the ring is full of work: report it as a send error */
        dg_queue_pop(t);
        dg_error_received(t, res);
        return;
    }
    t->send_inflight = 1;
    Py_INCREF(t);
}

static int
call_method0(DatagramObject *t, const char *name)
{
    PyObject *r = PyObject_CallMethod((PyObject *)t, name, NULL);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

void
dg_send_complete(struct rl_op *op, int res, unsigned flags)
{
    DatagramObject *t = DG_OF(send_op, op);
    (void)flags;
    t->send_inflight = 0;
    int live = !dg_loop_gone(t) && !t->released && t->protocol != NULL;
    if ((res == -EAGAIN || res == -EINTR) && live) {
        send_next(t); /* try the same datagram again */
    } else {
        dg_queue_pop(t);
        if (res < 0 && res != -ECANCELED && live)
            dg_error_received(t, res);
        live = live && !t->released;
        if (live && t->protocol_paused && t->q_bytes <= t->low_water &&
            call_method0(t, "_maybe_resume_protocol") < 0)
            rl_loop_completion_error(t->loop, "protocol.resume_writing() "
                                     "failed", "transport", (PyObject *)t);
        if (live && t->q_len > 0)
            send_next(t);
        else if (live && t->closing && t->q_len == 0 && !t->conn_lost)
            dg_connection_lost_now(t);
    }
    dg_maybe_close_socket(t);
    Py_DECREF(t);
}

/* Copies the datagram to the queue and starts sending it. */
static PyObject *
queue_push(DatagramObject *t, PyObject *data, const Py_buffer *view,
           const struct sockaddr_storage *addr, socklen_t addrlen)
{
    if (t->q_len == t->q_cap && queue_grow(t) < 0)
        return NULL;
    PyObject *copy = PyBytes_CheckExact(data)
                         ? Py_NewRef(data)
                         : PyBytes_FromStringAndSize(view->buf, view->len);
    if (copy == NULL)
        return NULL;
    Dgram *d = &t->q[(t->q_head + t->q_len) % t->q_cap];
    d->data = copy;
    d->addrlen = addrlen;
    if (addrlen)
        memcpy(&d->addr, addr, addrlen);
    t->q_len++;
    t->q_bytes += view->len + t->header;
    send_next(t);
    if (!t->protocol_paused && t->q_bytes > t->high_water &&
        call_method0(t, "_maybe_pause_protocol") < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ---- sendto ----------------------------------------------------------- */

static int
check_data(PyObject *data)
{
    if (PyBytes_Check(data) || PyByteArray_Check(data) ||
        PyMemoryView_Check(data))
        return 0;
    PyObject *name = PyType_GetName(Py_TYPE(data));
    if (name != NULL) {
        PyErr_Format(PyExc_TypeError,
                     "data argument must be a bytes-like object, not %R",
                     name);
        Py_DECREF(name);
    }
    return -1;
}

/* sendto(2)/send(2) now: None, or NULL with an exception; *queue = 1 if
 * the socket had no room. */
static PyObject *
send_now(DatagramObject *t, const Py_buffer *view,
         const struct sockaddr_storage *addr, socklen_t addrlen, int *queue)
{
    ssize_t n;
    do {
        n = addrlen ? sendto(t->fd, view->buf, (size_t)view->len, 0,
                             (const struct sockaddr *)addr, addrlen)
                    : send(t->fd, view->buf, (size_t)view->len, 0);
    } while (n < 0 && errno == EINTR);
    if (n >= 0)
        Py_RETURN_NONE;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        *queue = 1;
        Py_RETURN_NONE;
    }
    /* asyncio: OSError goes to protocol.error_received(), whose own
     * exception propagates to the caller */
    rl_set_oserror(-errno);
    PyObject *exc = rl_fetch_exception();
    if (exc == NULL)
        return NULL;
    PyObject *r = dg_call(t, t->error_received, "error_received", &exc, 1);
    Py_DECREF(exc);
    return r;
}

/* (host, port) whose host is the last source host's str: no parsing. */
static int
same_host_ipv4(DatagramObject *t, PyObject *addr, struct sockaddr_storage *ss,
               socklen_t *len)
{
    if (t->family != AF_INET || t->rhost_obj == NULL ||
        !PyTuple_CheckExact(addr) || PyTuple_GET_SIZE(addr) != 2 ||
        PyTuple_GET_ITEM(addr, 0) != t->rhost_obj ||
        !PyLong_CheckExact(PyTuple_GET_ITEM(addr, 1)))
        return -1;
    long port = PyLong_AsLong(PyTuple_GET_ITEM(addr, 1));
    if (port < 0 || port > 65535) {
        PyErr_Clear();
        return -1;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    a->sin_addr.s_addr = t->rhost_in;
    *len = sizeof(*a);
    return 0;
}

static PyObject *
sendto_impl(DatagramObject *t, PyObject *data, PyObject *addr, int resolved)
{
    if (check_data(data) < 0)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *r = NULL;
    struct sockaddr_storage ss;
    const struct sockaddr_storage *sa = NULL;
    socklen_t salen = 0;
    if (view.len == 0 && !t->send_empty) {
        r = Py_NewRef(Py_None);
        goto done;
    }
    if (t->address != NULL) {
        int same = addr == Py_None || addr == t->address;
        if (!same &&
            (same = PyObject_RichCompareBool(addr, t->address, Py_EQ)) < 0)
            goto done;
        if (!same) {
            PyErr_Format(PyExc_ValueError,
                         "Invalid address: must be None or %S", t->address);
            goto done;
        }
        addr = t->address;
    }
    if (t->conn_lost && t->address != NULL) {
        if (t->conn_lost >= 5 /* asyncio's LOG_THRESHOLD_FOR_CONNLOST_WRITES */
            && call_method0(t, "_warn_lost_send") < 0)
            goto done;
        t->conn_lost++;
        r = Py_NewRef(Py_None);
        goto done;
    }
    if (t->released || t->sock == NULL) {
        r = Py_NewRef(Py_None); /* the socket is gone */
        goto done;
    }
    if (!t->connected) {
        if (addr == t->saddr_obj && addr != NULL) {
            sa = &t->saddr;
            salen = t->saddr_len;
        } else if (same_host_ipv4(t, addr, &ss, &salen) == 0 ||
                   rl_sockaddr_from_py(t->family, addr, &ss, &salen) == 0) {
            sa = &ss;
            memcpy(&t->saddr, &ss, salen);
            t->saddr_len = salen;
            Py_XSETREF(t->saddr_obj, Py_NewRef(addr));
        } else if (resolved) {
            PyErr_SetString(PyExc_ValueError, "unsupported address");
            goto done;
        } else {
            /* host names and the rest: the socket module's way */
            r = PyObject_CallMethod((PyObject *)t, "_sendto_fallback", "OO",
                                    data, addr);
            goto done;
        }
    }
    int queue = t->q_len > 0 || resolved;
    if (!queue) {
        r = send_now(t, &view, sa, salen, &queue);
        if (r == NULL || !queue)
            goto done;
        Py_CLEAR(r);
    }
    r = queue_push(t, data, &view, sa, salen);
done:
    PyBuffer_Release(&view);
    return r;
}

PyObject *
Datagram_sendto(DatagramObject *t, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    PyObject *data = NULL, *addr = Py_None;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > 2 || nargs + nkw > 2 || nargs + nkw < 1)
        goto bad;
    if (nargs >= 1)
        data = args[0];
    if (nargs == 2)
        addr = args[1];
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(key, "addr") == 0 && nargs < 2)
            addr = args[nargs + i];
        else if (PyUnicode_CompareWithASCIIString(key, "data") == 0 &&
                 nargs < 1)
            data = args[nargs + i];
        else
            goto bad;
    }
    if (data == NULL)
        goto bad;
    return sendto_impl(t, data, addr, 0);
bad:
    PyErr_SetString(PyExc_TypeError,
                    "sendto() takes data and an optional addr");
    return NULL;
}

/* _sendto_queue(data, addr): queues a datagram whose address the socket
 * module resolved to a numeric one (the fallback's EAGAIN case). */
PyObject *
Datagram_sendto_resolved(DatagramObject *t, PyObject *args)
{
    PyObject *data, *addr;
    if (!PyArg_ParseTuple(args, "OO:_sendto_queue", &data, &addr))
        return NULL;
    return sendto_impl(t, data, addr, 1);
}

PyObject *
Datagram_get_write_buffer_size(DatagramObject *t, PyObject *unused)
{
    (void)unused;
    return PyLong_FromSsize_t(t->q_bytes);
}
