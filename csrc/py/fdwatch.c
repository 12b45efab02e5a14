/*
 * fdwatch.c - FdWatch: add_reader / add_writer for one loop, with the
 * level-triggered semantics of asyncio's selector loops.
 *
 * The watched fds live in an epoll set that this object owns, and one
 * single-shot POLL on the epoll fd sits on the loop's ring while anything
 * is watched. When it completes, epoll_wait(0) lists the ready fds and
 * their reader/writer Handles go to the ready queue, in the iteration
 * asyncio would run them; the poll is queued again just before the loop
 * next enters the kernel, after those callbacks ran, so an fd that is
 * still ready completes it again at once: level-triggered, once per
 * iteration.
 *
 * Why epoll and not one POLL_ADD per fd: a pending io_uring poll holds a
 * reference to the file, so closing a watched fd (even after removing the
 * reader, until the cancel reaches the kernel) would not close the socket
 * (research/io_uring_and_scheduler.md §A.5, pitfall 3). An epoll set holds
 * no such reference: closing a watched fd really closes it and drops it
 * from the set, as with asyncio. It also gives asyncio's errors for free
 * (EBADF, EPERM for regular files) and the same readiness mapping as
 * selectors.EpollSelector.
 *
 * Bookkeeping follows asyncio's _add_reader / _remove_reader: one entry
 * per fd with the union mask, replacing a callback cancels the old Handle,
 * an emptied entry leaves the epoll set, a failed change of the mask
 * forgets the fd and raises. The entry table is indexed by fd. One
 * deliberate difference: adding a callback for an fd already watched
 * always re-registers it with epoll, so an fd number that was closed
 * without remove_reader and now names another file gets watched (asyncio
 * silently watches nothing then).
 *
 * Lifetime: the poll in flight and the queued re-arm each hold a
 * reference to the FdWatch. close() (at loop close, after the ring was
 * drained) closes the epoll fd and drops every Handle. Threads: loop
 * thread only.
 */
#include "py/module.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

enum { EVENT_READ = 1, EVENT_WRITE = 2 }; /* selectors.EVENT_* */

typedef struct {
    HandleObject *reader;
    HandleObject *writer;
    PyObject *fileobj; /* as last given, for lookups by identity */
    unsigned events;   /* EVENT_READ | EVENT_WRITE; 0: not registered */
} FdEntry;

typedef struct {
    PyObject_HEAD
    LoopObject *loop;
    rl_state *state;
    int epfd; /* -1 until the first registration, and after close() */
    FdEntry *entries;
    int nentries;
    Py_ssize_t count; /* registered fds */
    struct epoll_event *ready;
    int nready;
    struct rl_op op;          /* the POLL on epfd */
    struct rl_deferred rearm; /* queue the poll before the next wait */
    char armed;
    char cancelling;
    char rearm_queued;
    char closed;
} FdWatchObject;

/* ---- arming the poll on the epoll fd ---------------------------------- */

static int
loop_gone(FdWatchObject *w)
{
    return w->loop == NULL || !w->loop->core_ready || w->loop->core.closing;
}

static void
schedule(FdWatchObject *w)
{
    if (w->rearm_queued || w->closed || loop_gone(w))
        return;
    w->rearm_queued = 1;
    Py_INCREF(w);
    rl_loop_defer(&w->loop->core, &w->rearm);
}

static void
rearm_run(struct rl_deferred *d)
{
    FdWatchObject *w = rl_container_of(d, FdWatchObject, rearm);
    w->rearm_queued = 0;
    if (!w->closed && !loop_gone(w) && w->epfd >= 0) {
        struct rl_ring *ring = w->loop->core.ring;
        if (w->count > 0 && !w->armed) {
            int res = rl_ring_poll(ring, &w->op, w->epfd, POLLIN);
            if (res == 0) {
                w->armed = 1;
                Py_INCREF(w); /* the poll's */
            } else {
                rl_set_oserror(res);
                rl_loop_completion_error(w->loop, "Cannot watch file "
                                         "descriptors for add_reader()",
                                         NULL, NULL);
            }
        } else if (w->count == 0 && w->armed && !w->cancelling) {
            /* Nothing watched: leave nothing in flight (a loop whose ring
             * has nothing in flight may move to another thread). */
            if (rl_ring_cancel(ring, &w->op) == 0)
                w->cancelling = 1;
        }
    }
    Py_DECREF(w); /* the queue's; may free w */
}

static void
queue_handle(FdWatchObject *w, HandleObject *h)
{
    if (rl_loop_call_soon(&w->loop->core, &h->core) < 0) {
        PyErr_NoMemory();
        rl_loop_completion_error(w->loop, "Cannot schedule an I/O callback",
                                 NULL, NULL);
        return;
    }
    Py_INCREF(h); /* the ready queue's */
}

static uint32_t
epoll_mask(unsigned events)
{
    return (events & EVENT_READ ? EPOLLIN : 0) |
           (events & EVENT_WRITE ? EPOLLOUT : 0);
}

/* Unregisters `events` of fd after an epoll error or a cancelled Handle;
 * returns the removed Handles in *out (new references) for the caller to
 * release once it no longer touches the table. */
static void
entry_drop(FdWatchObject *w, int fd, unsigned events, PyObject **out)
{
    FdEntry *e = &w->entries[fd];
    unsigned mask = e->events & ~events;
    if (events & EVENT_READ) {
        out[0] = (PyObject *)e->reader;
        e->reader = NULL;
    }
    if (events & EVENT_WRITE) {
        out[1] = (PyObject *)e->writer;
        e->writer = NULL;
    }
    if (mask == 0) {
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
        out[2] = e->fileobj;
        e->fileobj = NULL;
        e->events = 0;
        w->count--;
    } else {
        struct epoll_event ev = {.events = epoll_mask(mask), .data.fd = fd};
        e->events = mask;
        epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev);
    }
}

/* asyncio's _process_events on what epoll_wait(0) reports now. */
static void
dispatch(FdWatchObject *w)
{
    int want = w->count > 0 ? (int)(w->count < 65536 ? w->count : 65536) : 1;
    if (want > w->nready) {
        struct epoll_event *r = realloc(w->ready, sizeof(*r) * want);
        if (r == NULL) {
            PyErr_NoMemory();
            rl_loop_completion_error(w->loop, "Cannot watch file "
                                     "descriptors", NULL, NULL);
            return;
        }
        w->ready = r;
        w->nready = want;
    }
    int n = epoll_wait(w->epfd, w->ready, want, 0);
    if (n < 0) {
        if (errno != EINTR) {
            rl_set_oserror(-errno);
            rl_loop_completion_error(w->loop, "epoll_wait failed", NULL,
                                     NULL);
        }
        return;
    }
    PyObject *dropped = NULL; /* cancelled Handles, released at the end */
    for (int i = 0; i < n; i++) {
        int fd = w->ready[i].data.fd;
        uint32_t ev = w->ready[i].events;
        if (fd < 0 || fd >= w->nentries || w->entries[fd].events == 0)
            continue;
        /* selectors.EpollSelector.select's mapping */
        unsigned mask = 0;
        if (ev & ~(uint32_t)EPOLLIN)
            mask |= EVENT_WRITE;
        if (ev & ~(uint32_t)EPOLLOUT)
            mask |= EVENT_READ;
        mask &= w->entries[fd].events;
        for (unsigned bit = EVENT_READ; bit <= EVENT_WRITE; bit <<= 1) {
            /* an error report may have run Python code that changed the
             * table: look again each time */
            if (!(mask & bit) || fd >= w->nentries ||
                w->entries[fd].events == 0)
                continue;
            FdEntry *e = &w->entries[fd];
            HandleObject *h = bit == EVENT_READ ? e->reader : e->writer;
            if (h == NULL)
                continue;
            if (!h->cancelled) {
                queue_handle(w, h);
                continue;
            }
            /* asyncio: a cancelled Handle unregisters itself here */
            PyObject *out[3] = {NULL, NULL, NULL};
            entry_drop(w, fd, bit, out);
            for (int k = 0; k < 3; k++) {
                if (out[k] == NULL)
                    continue;
                if (dropped == NULL)
                    dropped = PyList_New(0);
                if (dropped == NULL || PyList_Append(dropped, out[k]) < 0)
                    PyErr_Clear(); /* the reference is released below */
                Py_DECREF(out[k]);
            }
        }
    }
    Py_XDECREF(dropped);
}

static void
poll_complete(struct rl_op *op, int res, unsigned flags)
{
    FdWatchObject *w = rl_container_of(op, FdWatchObject, op);
    w->armed = 0;
    w->cancelling = 0;
    if (!w->closed && !loop_gone(w) && w->epfd >= 0) {
        if (res >= 0) {
            dispatch(w);
            schedule(w);
        } else if (res == -ECANCELED) {
            schedule(w);
        } else {
            rl_set_oserror(res);
            rl_loop_completion_error(w->loop, "Cannot watch file "
                                     "descriptors for add_reader()",
                                     NULL, NULL);
        }
    }
    Py_DECREF(w); /* the poll's; may free w */
}

/* ---- the table -------------------------------------------------------- */

static int
entries_reserve(FdWatchObject *w, int fd)
{
    if (fd < w->nentries)
        return 0;
    int n = w->nentries ? w->nentries : 64;
    while (n <= fd)
        n = n > INT32_MAX / 2 ? fd + 1 : n * 2;
    FdEntry *e = realloc(w->entries, sizeof(*e) * (size_t)n);
    if (e == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(e + w->nentries, 0, sizeof(*e) * (size_t)(n - w->nentries));
    w->entries = e;
    w->nentries = n;
    return 0;
}

/* selectors._fileobj_to_fd, then (as selectors' _fileobj_lookup) a
 * search by identity among registered file objects when that fails, so a
 * closed socket can still be removed. -1 with ValueError set. */
static int
lookup_fd(FdWatchObject *w, PyObject *fileobj)
{
    long fd;
    if (PyLong_Check(fileobj)) {
        fd = PyLong_AsLong(fileobj);
        if (fd == -1 && PyErr_Occurred())
            return -1;
    } else {
        PyObject *r = PyObject_CallMethod(fileobj, "fileno", NULL);
        PyObject *n = r ? PyNumber_Long(r) : NULL;
        Py_XDECREF(r);
        if (n == NULL) {
            if (PyErr_ExceptionMatches(PyExc_AttributeError) ||
                PyErr_ExceptionMatches(PyExc_TypeError) ||
                PyErr_ExceptionMatches(PyExc_ValueError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError, "Invalid file object: %R",
                             fileobj);
            }
            goto search;
        }
        fd = PyLong_AsLong(n);
        Py_DECREF(n);
        if (fd == -1 && PyErr_Occurred())
            return -1;
    }
    if (fd < 0) {
        PyErr_Format(PyExc_ValueError, "Invalid file descriptor: %ld", fd);
        goto search;
    }
    if (fd > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError,
                        "file descriptor is greater than maximum");
        return -1;
    }
    return (int)fd;
search:
    if (PyErr_ExceptionMatches(PyExc_ValueError)) {
        for (int i = 0; i < w->nentries; i++) {
            if (w->entries[i].events && w->entries[i].fileobj == fileobj) {
                PyErr_Clear();
                return i;
            }
        }
    }
    return -1;
}

/* ---- Python methods --------------------------------------------------- */

static PyObject *
FdWatch_add(FdWatchObject *w, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "add(fileobj, event, callback, args)");
        return NULL;
    }
    PyObject *fileobj = args[0], *cbargs = args[3];
    long event = PyLong_AsLong(args[1]);
    if (event == -1 && PyErr_Occurred())
        return NULL;
    if ((event != EVENT_READ && event != EVENT_WRITE) ||
        !PyTuple_Check(cbargs)) {
        PyErr_SetString(PyExc_ValueError, "bad event or arguments");
        return NULL;
    }
    if (w->closed || loop_gone(w)) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return NULL;
    }
    int fd = lookup_fd(w, fileobj);
    if (fd < 0)
        return NULL;
    if (w->epfd < 0) {
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (w->epfd < 0)
            return rl_set_oserror(-errno);
    }
    if (entries_reserve(w, fd) < 0)
        return NULL;
    FdEntry *e = &w->entries[fd];
    unsigned mask = e->events | (unsigned)event;
    struct epoll_event ev = {.events = epoll_mask(mask), .data.fd = fd};
    if (e->events == 0) {
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            return rl_set_oserror(-errno);
    } else if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
        int err = errno;
        /* ENOENT: the file registered under this number was closed, and
         * the number may now name another file: register that one. */
        if (err == ENOENT && epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
            err = 0;
        if (err != 0 && (mask != e->events || err != EBADF)) {
            /* asyncio: a failed modify unregisters the fd and raises */
            PyObject *out[3] = {(PyObject *)e->reader,
                                (PyObject *)e->writer, e->fileobj};
            memset(e, 0, sizeof(*e));
            w->count--;
            for (int k = 0; k < 3; k++)
                Py_XDECREF(out[k]);
            schedule(w);
            return rl_set_oserror(-err);
        }
    }
    HandleObject *h = rl_handle_new(
        w->state, w->state->HandleType, w->loop, args[2],
        &PyTuple_GET_ITEM(cbargs, 0), PyTuple_GET_SIZE(cbargs), NULL);
    if (h == NULL) {
        if (e->events == 0)
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
        return NULL;
    }
    /* Kept outside any loop queue: visible to the GC (handleobject.c). */
    if (!PyObject_GC_IsTracked((PyObject *)h))
        PyObject_GC_Track((PyObject *)h);
    e = &w->entries[fd]; /* rl_handle_new may have run Python code */
    if (e->events == 0)
        w->count++;
    HandleObject **slot = event == EVENT_READ ? &e->reader : &e->writer;
    HandleObject *old = *slot;
    *slot = (HandleObject *)Py_NewRef(h);
    PyObject *old_fileobj = e->fileobj;
    e->fileobj = Py_NewRef(fileobj);
    e->events = mask;
    schedule(w);
    Py_XDECREF(old_fileobj);
    if (old != NULL) {
        PyObject *r = PyObject_CallMethod((PyObject *)old, "cancel", NULL);
        Py_DECREF(old);
        if (r == NULL) {
            Py_DECREF(h);
            return NULL;
        }
        Py_DECREF(r);
    }
    return (PyObject *)h;
}

static PyObject *
FdWatch_remove(FdWatchObject *w, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "remove(fileobj, event)");
        return NULL;
    }
    long event = PyLong_AsLong(args[1]);
    if (event == -1 && PyErr_Occurred())
        return NULL;
    if (event != EVENT_READ && event != EVENT_WRITE) {
        PyErr_SetString(PyExc_ValueError, "bad event");
        return NULL;
    }
    int fd = lookup_fd(w, args[0]);
    if (fd < 0)
        return NULL;
    if (fd >= w->nentries || w->entries[fd].events == 0)
        Py_RETURN_FALSE;
    FdEntry *e = &w->entries[fd];
    unsigned mask = e->events & ~(unsigned)event;
    PyObject *out[3] = {NULL, NULL, NULL};
    if (mask == 0) {
        /* as EpollSelector.unregister: errors (a closed fd) ignored */
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
        out[0] = (PyObject *)e->reader;
        out[1] = (PyObject *)e->writer;
        out[2] = e->fileobj;
        memset(e, 0, sizeof(*e));
        w->count--;
        schedule(w);
    } else if (mask != e->events) {
        struct epoll_event ev = {.events = epoll_mask(mask), .data.fd = fd};
        if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
            /* asyncio: a failed modify unregisters the fd and raises */
            int err = errno;
            out[0] = (PyObject *)e->reader;
            out[1] = (PyObject *)e->writer;
            out[2] = e->fileobj;
            memset(e, 0, sizeof(*e));
            w->count--;
            schedule(w);
            for (int k = 0; k < 3; k++)
                Py_XDECREF(out[k]);
            return rl_set_oserror(-err);
        }
        e->events = mask;
        if (event == EVENT_READ) {
            out[0] = (PyObject *)e->reader;
            e->reader = NULL;
        } else {
            out[1] = (PyObject *)e->writer;
            e->writer = NULL;
        }
    }
    PyObject *h = out[event == EVENT_READ ? 0 : 1];
    int had = h != NULL;
    PyObject *r = had ? PyObject_CallMethod(h, "cancel", NULL) : Py_None;
    for (int k = 0; k < 3; k++)
        Py_XDECREF(out[k]);
    if (r == NULL)
        return NULL;
    if (had)
        Py_DECREF(r);
    return PyBool_FromLong(had);
}

static void
drop_entries(FdWatchObject *w)
{
    FdEntry *entries = w->entries;
    int n = w->nentries;
    w->entries = NULL;
    w->nentries = 0;
    w->count = 0;
    for (int i = 0; i < n; i++) {
        Py_XDECREF(entries[i].reader);
        Py_XDECREF(entries[i].writer);
        Py_XDECREF(entries[i].fileobj);
    }
    free(entries);
}

static PyObject *
FdWatch_close(FdWatchObject *w, PyObject *Py_UNUSED(ignored))
{
    if (w->closed)
        Py_RETURN_NONE;
    w->closed = 1;
    if (w->armed && !w->cancelling && !loop_gone(w) &&
        rl_ring_cancel(w->loop->core.ring, &w->op) == 0)
        w->cancelling = 1;
    /* A poll still in flight holds the epoll file, not the fd number. */
    if (w->epfd >= 0) {
        close(w->epfd);
        w->epfd = -1;
    }
    drop_entries(w);
    Py_RETURN_NONE;
}

static PyObject *
FdWatch_len(FdWatchObject *w, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(w->count);
}

/* ---- object protocol -------------------------------------------------- */

static PyObject *
FdWatch_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *loop;
    if (!PyArg_ParseTuple(args, "O:FdWatch", &loop))
        return NULL;
    rl_state *st = rl_state_by_type(type);
    if (!PyObject_TypeCheck(loop, st->LoopType)) {
        PyErr_SetString(PyExc_TypeError, "a ringloop loop is required");
        return NULL;
    }
    FdWatchObject *w = (FdWatchObject *)type->tp_alloc(type, 0);
    if (w == NULL)
        return NULL;
    w->loop = (LoopObject *)Py_NewRef(loop);
    w->state = st;
    w->epfd = -1;
    w->op.complete = poll_complete;
    w->rearm.run = rearm_run;
    return (PyObject *)w;
}

static int
FdWatch_traverse(FdWatchObject *w, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(w));
    Py_VISIT(w->loop);
    for (int i = 0; i < w->nentries; i++) {
        Py_VISIT(w->entries[i].reader);
        Py_VISIT(w->entries[i].writer);
        Py_VISIT(w->entries[i].fileobj);
    }
    return 0;
}

static int
FdWatch_clear(FdWatchObject *w)
{
    /* Never reached while a poll or a re-arm is queued: those hold
     * references the collector cannot see. */
    drop_entries(w);
    return 0;
}

static void
FdWatch_dealloc(FdWatchObject *w)
{
    PyTypeObject *tp = Py_TYPE(w);
    PyObject_GC_UnTrack(w);
    drop_entries(w);
    free(w->ready);
    if (w->epfd >= 0)
        close(w->epfd);
    Py_CLEAR(w->loop);
    tp->tp_free((PyObject *)w);
    Py_DECREF(tp);
}

static PyMethodDef FdWatch_methods[] = {
    {"add", (PyCFunction)(void (*)(void))FdWatch_add, METH_FASTCALL,
     "add(fileobj, event, callback, args) -> Handle\n\n"
     "Watch fileobj for event (1 read, 2 write); replaces and cancels the "
     "previous Handle for that event."},
    {"remove", (PyCFunction)(void (*)(void))FdWatch_remove, METH_FASTCALL,
     "remove(fileobj, event) -> bool\n\n"
     "Stop watching fileobj for event; True if a callback was removed."},
    {"close", (PyCFunction)FdWatch_close, METH_NOARGS,
     "Stop watching everything and close the epoll descriptor."},
    {"count", (PyCFunction)FdWatch_len, METH_NOARGS,
     "Number of watched file descriptors."},
    {NULL},
};

static PyType_Slot FdWatch_slots[] = {
    {Py_tp_doc, "add_reader/add_writer bookkeeping for one loop."},
    {Py_tp_new, FdWatch_new},
    {Py_tp_methods, FdWatch_methods},
    {Py_tp_traverse, FdWatch_traverse},
    {Py_tp_clear, FdWatch_clear},
    {Py_tp_dealloc, FdWatch_dealloc},
    {0, NULL},
};

static PyType_Spec FdWatch_spec = {
    .name = "ringloop._core.FdWatch",
    .basicsize = sizeof(FdWatchObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = FdWatch_slots,
};

int
rl_fdwatch_setup_type(PyObject *module)
{
    PyObject *tp = PyType_FromModuleAndSpec(module, &FdWatch_spec, NULL);
    if (tp == NULL)
        return -1;
    int res = PyModule_AddType(module, (PyTypeObject *)tp);
    Py_DECREF(tp);
    return res;
}
