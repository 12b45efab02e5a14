/*
 * pipewriter.c - PipeWriter: writes one bytes object to a non-blocking
 * pipe (or socket, or character device) in the background, for the write
 * pipe transport in ringloop/_pipes.py.
 *
 * send(data, offset, callback) writes data[offset:] completely: a POLLOUT
 * poll on the loop's ring, then write(2) in C until the pipe is full,
 * then the poll again, and so on; Python is called once, at the end:
 * callback(nbytes_written, errno), errno 0 on success. A pipe holds 64 KiB,
 * so a 1 MiB write costs 16 polls and writes but one Python call (asyncio's
 * transport makes a Python callback, an os.write and a buffer shift per
 * readiness). The fd stays non-blocking, as asyncio leaves it; the kernel
 * never sees the buffer (write(2) copies it at once), so the only thing
 * the poll in flight needs alive is this object.
 *
 * Invariants: at most one send at a time (send() raises RuntimeError
 * otherwise). While a send is in progress the object holds the data, the
 * callback and one reference to itself for the deferred poll submission
 * or the poll in flight. cancel() drops the send: the callback is never
 * called, the references go when the poll's final completion arrives (or
 * when the deferred submission runs). While the loop is closing
 * completions only release.
 *
 * Threads: loop thread only.
 */
#include "py/module.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

enum { W_IDLE, W_QUEUED, W_POLLING };

typedef struct {
    PyObject_HEAD
    LoopObject *loop;
    int fd;
    char state;
    char cancelled; /* the send in progress was cancelled */
    PyObject *data;     /* bytes being written, NULL when idle */
    PyObject *callback; /* NULL when idle */
    Py_ssize_t offset;  /* next byte of data to write */
    Py_ssize_t start;   /* the offset the send started at */
    struct rl_op op;            /* the POLLOUT */
    struct rl_deferred submit;  /* queues the poll before the next wait */
} PipeWriterObject;

static int
loop_gone(PipeWriterObject *w)
{
    return !w->loop->core_ready || w->loop->core.closing;
}

/* Ends the send: drops data and callback, returns the callback (a new
 * reference) for the caller to call, or NULL. */
static PyObject *
end_send(PipeWriterObject *w)
{
    w->state = W_IDLE;
    Py_CLEAR(w->data);
    PyObject *cb = w->callback;
    w->callback = NULL;
    return cb;
}

static void
finish(PipeWriterObject *w, int neg_errno)
{
    Py_ssize_t n = w->offset - w->start;
    PyObject *cb = end_send(w);
    if (cb == NULL)
        return;
    PyObject *r = PyObject_CallFunction(cb, "ni", n, -neg_errno);
    if (r == NULL)
        rl_loop_completion_error(w->loop, "Exception in a pipe write's "
                                 "completion", NULL, NULL);
    Py_XDECREF(r);
    Py_DECREF(cb);
}

static void
schedule(PipeWriterObject *w)
{
    w->state = W_QUEUED;
    Py_INCREF(w); /* the deferred queue's */
    rl_loop_defer(&w->loop->core, &w->submit);
}

/* write(2) until done (0), the pipe is full (1) or an error (-errno).
 * A short write means the pipe is full: wait for room rather than make a
 * write(2) that can only say EAGAIN. */
static int
write_some(PipeWriterObject *w)
{
    const char *buf = PyBytes_AS_STRING(w->data);
    Py_ssize_t len = PyBytes_GET_SIZE(w->data);
    while (w->offset < len) {
        size_t want = (size_t)(len - w->offset);
        ssize_t n = write(w->fd, buf + w->offset, want);
        if (n >= 0) {
            w->offset += n;
            if ((size_t)n < want)
                return 1;
        } else if (errno == EAGAIN) {
            return 1;
        } else if (errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

static void
submit_run(struct rl_deferred *d)
{
    PipeWriterObject *w = rl_container_of(d, PipeWriterObject, submit);
    if (w->cancelled || loop_gone(w)) {
        PyObject *cb = end_send(w);
        Py_XDECREF(cb);
    } else {
        int res = rl_ring_poll(w->loop->core.ring, &w->op, w->fd, POLLOUT);
        if (res == 0) {
            w->state = W_POLLING;
            Py_INCREF(w); /* the poll's */
        } else {
            finish(w, res);
        }
    }
    Py_DECREF(w); /* the queue's; may free w */
}

static void
poll_complete(struct rl_op *op, int res, unsigned flags)
{
    (void)flags;
    PipeWriterObject *w = rl_container_of(op, PipeWriterObject, op);
    if (w->cancelled || loop_gone(w)) {
        PyObject *cb = end_send(w);
        Py_XDECREF(cb);
    } else if (res < 0) {
        finish(w, res);
    } else {
        /* Ready, or POLLERR/POLLHUP: write(2) says which (EPIPE). */
        int r = write_some(w);
        if (r == 1)
            schedule(w);
        else
            finish(w, r);
    }
    Py_DECREF(w); /* the poll's; may free w */
}

/* ---- methods -------------------------------------------------------- */

static PyObject *
PipeWriter_send(PipeWriterObject *w, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "send() takes data, offset and callback");
        return NULL;
    }
    if (!PyBytes_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "send() needs bytes");
        return NULL;
    }
    Py_ssize_t offset = PyNumber_AsSsize_t(args[1], PyExc_OverflowError);
    if (offset == -1 && PyErr_Occurred())
        return NULL;
    if (offset < 0 || offset > PyBytes_GET_SIZE(args[0])) {
        PyErr_SetString(PyExc_ValueError, "offset out of range");
        return NULL;
    }
    if (w->state != W_IDLE) {
        PyErr_SetString(PyExc_RuntimeError, "a send is in progress");
        return NULL;
    }
    if (loop_gone(w)) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return NULL;
    }
    w->data = Py_NewRef(args[0]);
    w->callback = Py_NewRef(args[2]);
    w->offset = w->start = offset;
    w->cancelled = 0;
    schedule(w);
    Py_RETURN_NONE;
}

static PyObject *
PipeWriter_cancel(PipeWriterObject *w, PyObject *Py_UNUSED(ignored))
{
    if (w->state == W_IDLE || w->cancelled)
        Py_RETURN_FALSE;
    w->cancelled = 1;
    /* The callback must not run, nor keep anything alive meanwhile. */
    Py_CLEAR(w->callback);
    if (w->state == W_POLLING && !loop_gone(w))
        rl_ring_cancel(w->loop->core.ring, &w->op);
    Py_RETURN_TRUE;
}

static PyObject *
PipeWriter_pending(PipeWriterObject *w, PyObject *Py_UNUSED(ignored))
{
    if (w->state == W_IDLE || w->cancelled)
        return PyLong_FromLong(0);
    return PyLong_FromSsize_t(PyBytes_GET_SIZE(w->data) - w->offset);
}

/* ---- object protocol ------------------------------------------------ */

static PyObject *
PipeWriter_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *loop;
    int fd;
    if (kwds != NULL && PyDict_GET_SIZE(kwds) != 0) {
        PyErr_SetString(PyExc_TypeError, "PipeWriter takes no keywords");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "Oi:PipeWriter", &loop, &fd))
        return NULL;
    rl_state *st = rl_state_by_type(type);
    if (!PyObject_TypeCheck(loop, st->LoopType)) {
        PyErr_SetString(PyExc_TypeError, "a ringloop loop is required");
        return NULL;
    }
    PipeWriterObject *w = (PipeWriterObject *)type->tp_alloc(type, 0);
    if (w == NULL)
        return NULL;
    w->loop = (LoopObject *)Py_NewRef(loop);
    w->fd = fd;
    w->op.complete = poll_complete;
    w->submit.run = submit_run;
    return (PyObject *)w;
}

static int
PipeWriter_traverse(PipeWriterObject *w, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(w));
    Py_VISIT(w->loop);
    Py_VISIT(w->data);
    Py_VISIT(w->callback);
    return 0;
}

static int
PipeWriter_clear(PipeWriterObject *w)
{
    /* Never reached during a send: the queued submission or the poll
     * holds a reference the collector cannot see. */
    Py_CLEAR(w->data);
    Py_CLEAR(w->callback);
    return 0;
}

static void
PipeWriter_dealloc(PipeWriterObject *w)
{
    PyTypeObject *tp = Py_TYPE(w);
    PyObject_GC_UnTrack(w);
    PipeWriter_clear(w);
    Py_CLEAR(w->loop);
    tp->tp_free((PyObject *)w);
    Py_DECREF(tp);
}

static PyMethodDef PipeWriter_methods[] = {
    {"send", (PyCFunction)(void (*)(void))PipeWriter_send, METH_FASTCALL,
     "send(data: bytes, offset, callback)\n\n"
     "Write data[offset:] completely in the background, then call "
     "callback(nbytes, errno) once."},
    {"cancel", (PyCFunction)PipeWriter_cancel, METH_NOARGS,
     "Drop the send in progress (its callback is never called); True if "
     "there was one."},
    {"pending", (PyCFunction)PipeWriter_pending, METH_NOARGS,
     "Bytes of the send in progress not written yet."},
    {NULL},
};

static PyType_Slot PipeWriter_slots[] = {
    {Py_tp_doc, "PipeWriter(loop, fd): background writes to a pipe."},
    {Py_tp_new, PipeWriter_new},
    {Py_tp_methods, PipeWriter_methods},
    {Py_tp_traverse, PipeWriter_traverse},
    {Py_tp_clear, PipeWriter_clear},
    {Py_tp_dealloc, PipeWriter_dealloc},
    {0, NULL},
};

static PyType_Spec PipeWriter_spec = {
    .name = "ringloop._core.PipeWriter",
    .basicsize = sizeof(PipeWriterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = PipeWriter_slots,
};

int
rl_pipewriter_setup_type(PyObject *module)
{
    PyObject *tp = PyType_FromModuleAndSpec(module, &PipeWriter_spec, NULL);
    if (tp == NULL)
        return -1;
    int res = PyModule_AddType(module, (PyTypeObject *)tp);
    Py_DECREF(tp);
    return res;
}
