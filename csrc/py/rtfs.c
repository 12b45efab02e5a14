/*
 * rtfs.c - ringloop.rt.fs's jobs. Normally each operation is a C task on
 * the scheduler's workers (core/fs_task.c: openat, statx, reads, writes,
 * fsync, close as io_uring ops on the worker's ring), its result crossing
 * to the loop once; a big file is read straight into a bytes object the
 * loop lends the task after its statx (one extra crossing, no copy). copy
 * (copy_file_range), and every operation when io_uring is refused, run as
 * plain system calls in the blocking pool instead.
 *
 * Invariants: a job owns its buffers (malloc'd memory or a lent bytes
 * object) and the data it writes (a Py_buffer held until the job is
 * released), so a cancelled future never frees memory the kernel or a
 * pool thread still writes into. An fd opened for a future that was
 * cancelled meanwhile, or whose loop closed, is closed, never leaked.
 *
 * Threads: fs_* module functions on the loop thread with the GIL; fs_run
 * on a pool thread; fsu_done on a worker (no GIL).
 */
#include "py/rtjob.h"

#include "core/fs_task.h"
#include "core/sched.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum fs_op { FS_READ_FILE, FS_WRITE_FILE, FS_OPEN, FS_READ, FS_WRITE,
             FS_CLOSE, FS_COPY, FS_FSYNC };

/* Files at least this big are read straight into a bytes object (the pool
 * thread takes the GIL once to allocate it); smaller ones into malloc'd
 * memory, copied once on delivery. */
#define FS_DIRECT_MIN (256 * 1024)

struct fs_req {
    enum fs_op op;
    const char *path, *path2; /* into obj[0], obj[1] (bytes) */
    int fd;                   /* FS_READ/WRITE/CLOSE/FSYNC input */
    int flags;                /* FS_OPEN / FS_WRITE_FILE open flags; FSYNC: datasync */
    unsigned mode;
    Py_ssize_t n;             /* FS_READ: how much, < 0 to EOF */
    Py_buffer data;           /* FS_WRITE(_FILE) input */
    int have_data;
    char *buf;                /* malloc'd result */
    size_t len, cap;
    PyObject *bytes;          /* direct result (big files) */
    size_t bytes_len;         /* bytes filled */
    long long res;            /* count or fd */
    int opened_fd;            /* FS_OPEN's fd, until handed over */
    int err, err_which;       /* errno and which path it concerns (1, 2) */
};

/* Reads fd to EOF (or `limit` bytes if >= 0) into r->buf (or r->bytes if
 * `direct`, sized `hint`). 0 or errno. */
static int
read_all(struct fs_req *r, int fd, size_t hint, long long limit, int direct)
{
    if (direct) {
        rl_job_gil_enter();
        r->bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)hint);
        if (r->bytes == NULL)
            PyErr_Clear();
        rl_job_gil_leave();
        if (r->bytes == NULL)
            direct = 0; /* fall back to malloc'd memory */
    }
    if (direct) {
        char *p = PyBytes_AS_STRING(r->bytes);
        while (r->bytes_len < hint) {
            ssize_t got = read(fd, p + r->bytes_len, hint - r->bytes_len);
            if (got < 0) {
                if (errno == EINTR)
                    continue;
                return errno;
            }
            if (got == 0)
                return 0;
            r->bytes_len += (size_t)got;
        }
        hint = 64 * 1024; /* the file grew: the rest goes to r->buf */
    }
    size_t want = hint ? hint + 1 : 64 * 1024;
    for (;;) {
        if (limit >= 0 && (long long)r->len >= limit)
            return 0;
        if (r->len == r->cap) {
            size_t ncap = r->cap ? r->cap * 2 : want;
            if (limit >= 0 && ncap > (size_t)limit)
                ncap = (size_t)limit;
            char *nb = realloc(r->buf, ncap ? ncap : 1);
            if (nb == NULL)
                return ENOMEM;
            r->buf = nb;
            r->cap = ncap;
        }
        size_t room = r->cap - r->len;
        ssize_t got = read(fd, r->buf + r->len, room);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (got == 0)
            return 0;
        r->len += (size_t)got;
    }
}

static int
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t put = write(fd, p, n);
        if (put < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += put;
        n -= (size_t)put;
    }
    return 0;
}

static void
fs_run(JobObject *j)
{
    struct fs_req *r = j->data;
    int fd = -1, fd2 = -1, err = 0;
    struct stat st;
    switch (r->op) {
    case FS_READ_FILE:
        fd = open(r->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            err = errno;
            break;
        }
        if (fstat(fd, &st) < 0) {
            err = errno;
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            err = EISDIR;
            break;
        }
        err = read_all(r, fd, S_ISREG(st.st_mode) ? (size_t)st.st_size : 0,
                       -1, S_ISREG(st.st_mode) && st.st_size >= FS_DIRECT_MIN);
        break;
    case FS_WRITE_FILE:
        fd = open(r->path, r->flags | O_CLOEXEC, 0666);
        if (fd < 0) {
            err = errno;
            break;
        }
        err = write_all(fd, r->data.buf, (size_t)r->data.len);
        break;
    case FS_OPEN:
        r->opened_fd = open(r->path, r->flags | O_CLOEXEC, r->mode);
        if (r->opened_fd < 0)
            err = errno;
        else if (fstat(r->opened_fd, &st) == 0 && S_ISDIR(st.st_mode) &&
                 (r->flags & O_ACCMODE) != O_RDONLY) {
            err = EISDIR;
        }
        r->res = r->opened_fd;
        break;
    case FS_READ:
        err = read_all(r, r->fd, r->n >= 0 ? (size_t)r->n : 0,
                       r->n >= 0 ? r->n : -1, 0);
        break;
    case FS_WRITE:
        err = write_all(r->fd, r->data.buf, (size_t)r->data.len);
        r->res = r->data.len;
        break;
    case FS_CLOSE:
        if (close(r->fd) < 0 && errno != EINTR)
            err = errno;
        break;
    case FS_FSYNC:
        if ((r->flags ? fdatasync(r->fd) : fsync(r->fd)) < 0)
            err = errno;
        break;
    case FS_COPY:
        fd = open(r->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0) {
            err = errno;
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            err = EISDIR;
            break;
        }
        fd2 = open(r->path2, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                   st.st_mode & 07777);
        if (fd2 < 0) {
            err = errno;
            r->err_which = 2;
            break;
        }
        for (;;) {
            ssize_t n = copy_file_range(fd, NULL, fd2, NULL, 1 << 30, 0);
            if (n > 0) {
                r->res += n;
                continue;
            }
            if (n == 0)
                break;
            if (errno == EINTR)
                continue;
            if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
                errno != EOPNOTSUPP) {
                err = errno;
                break;
            }
            char tmp[64 * 1024]; /* copy_file_range refused: plain copy */
            for (;;) {
                ssize_t got = read(fd, tmp, sizeof(tmp));
                if (got < 0 && errno == EINTR)
                    continue;
                if (got <= 0) {
                    err = got < 0 ? errno : 0;
                    break;
                }
                if ((err = write_all(fd2, tmp, (size_t)got)) != 0)
                    break;
                r->res += got;
            }
            break;
        }
        if (err == 0 && fchmod(fd2, st.st_mode & 07777) < 0)
            err = errno;
        if (err && !r->err_which)
            r->err_which = 2;
        break;
    }
    if (fd >= 0)
        close(fd);
    if (fd2 >= 0 && close(fd2) < 0 && err == 0)
        err = errno;
    r->err = err;
    if (err && r->op == FS_OPEN && r->opened_fd >= 0) {
        close(r->opened_fd);
        r->opened_fd = -1;
    }
}

static PyObject *
fs_finish(JobObject *j)
{
    struct fs_req *r = j->data;
    if (r->err) {
        PyObject *p = r->err_which == 2 ? j->obj[3] : j->obj[2];
        if (r->op == FS_READ || r->op == FS_WRITE || r->op == FS_CLOSE ||
            r->op == FS_FSYNC)
            p = NULL;
        return rl_job_oserror(r->err, p, NULL);
    }
    switch (r->op) {
    case FS_READ_FILE:
    case FS_READ:
        if (r->bytes) {
            PyObject *b = r->bytes;
            r->bytes = NULL;
            if (r->len == 0) {
                if ((size_t)PyBytes_GET_SIZE(b) != r->bytes_len &&
                    _PyBytes_Resize(&b, (Py_ssize_t)r->bytes_len) < 0)
                    return NULL;
                return b;
            }
            PyObject *tail = PyBytes_FromStringAndSize(r->buf, (Py_ssize_t)r->len);
            if (tail == NULL || _PyBytes_Resize(&b, (Py_ssize_t)r->bytes_len) < 0) {
                Py_XDECREF(tail);
                Py_XDECREF(b);
                return NULL;
            }
            PyBytes_ConcatAndDel(&b, tail);
            return b;
        }
        return PyBytes_FromStringAndSize(r->buf ? r->buf : "", (Py_ssize_t)r->len);
    case FS_OPEN:
        r->opened_fd = -1; /* handed over */
        return PyLong_FromLongLong(r->res);
    case FS_WRITE:
    case FS_COPY:
        return PyLong_FromLongLong(r->res);
    default:
        Py_RETURN_NONE;
    }
}

static void
fs_clear(JobObject *j)
{
    struct fs_req *r = j->data;
    if (r == NULL)
        return;
    j->data = NULL;
    if (r->opened_fd >= 0)
        close(r->opened_fd); /* opened for a future nobody awaits now */
    if (r->have_data)
        PyBuffer_Release(&r->data);
    Py_XDECREF(r->bytes);
    free(r->buf);
    free(r);
}

static const struct rl_job_kind fs_kind = {fs_run, fs_finish, fs_clear};

/* ---- the io_uring path: C tasks on the scheduler's workers ------------- */

static struct rl_sched *sched; /* process-wide, started on first use */
static int sched_refused;      /* io_uring unavailable: use the pool */

unsigned
rl_rtfs_workers(void)
{
    return sched ? rl_sched_workers(sched) : 0;
}

struct fsu {
    struct rl_fs_task t;
    JobObject *job;
    Py_buffer data;
    int have_data;
    PyObject *lent; /* bytes the task reads a big file into */
};

static void
fsu_done(struct rl_fs_task *t)
{
    rl_job_complete(rl_container_of(t, struct fsu, t)->job);
}

static int
fsu_spawn(JobObject *j)
{
    return rl_fs_task_spawn(sched, &((struct fsu *)j->data)->t);
}

/* Loop thread: a READ_FILE paused for a buffer gets a bytes object of the
 * file's size and goes on reading into it. */
static int
fsu_again(JobObject *j)
{
    struct fsu *u = j->data;
    if (!u->t.paused)
        return 0;
    u->t.paused = 0;
    PyObject *done = PyObject_CallMethod(j->fut, "done", NULL);
    int is_done = done ? PyObject_IsTrue(done) : 1;
    Py_XDECREF(done);
    PyErr_Clear();
    if (is_done)
        return 0; /* cancelled meanwhile: clear closes the fd */
    u->lent = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)u->t.size);
    if (u->lent == NULL) {
        PyErr_Clear();
        u->t.err = ENOMEM;
        return 0;
    }
    u->t.lent = PyBytes_AS_STRING(u->lent);
    int res = rl_fs_task_spawn(sched, &u->t);
    if (res < 0) {
        u->t.err = -res;
        return 0;
    }
    return 1;
}

static PyObject *
fsu_finish(JobObject *j)
{
    struct fsu *u = j->data;
    struct rl_fs_task *t = &u->t;
    if (t->err) {
        int has_path = t->kind == RL_FS_READ_FILE ||
                       t->kind == RL_FS_WRITE_FILE || t->kind == RL_FS_OPEN;
        return rl_job_oserror(t->err, has_path ? j->obj[2] : NULL, NULL);
    }
    switch (t->kind) {
    case RL_FS_READ_FILE:
    case RL_FS_READ:
        if (u->lent) {
            PyObject *b = u->lent;
            u->lent = NULL;
            if ((size_t)PyBytes_GET_SIZE(b) != t->lent_len &&
                _PyBytes_Resize(&b, (Py_ssize_t)t->lent_len) < 0)
                return NULL;
            if (t->len) {
                PyObject *tail = PyBytes_FromStringAndSize(t->buf,
                                                           (Py_ssize_t)t->len);
                if (tail == NULL) {
                    Py_DECREF(b);
                    return NULL;
                }
                PyBytes_ConcatAndDel(&b, tail);
            }
            return b;
        }
        return PyBytes_FromStringAndSize(t->buf ? t->buf : "",
                                         (Py_ssize_t)t->len);
    case RL_FS_OPEN:
        t->own_fd = 0; /* handed over */
        return PyLong_FromLong(t->fd);
    case RL_FS_WRITE:
        return PyLong_FromSize_t(t->done_bytes);
    default:
        Py_RETURN_NONE;
    }
}

static void
fsu_clear(JobObject *j)
{
    struct fsu *u = j->data;
    if (u == NULL)
        return;
    j->data = NULL;
    if (u->t.own_fd && u->t.fd >= 0)
        close(u->t.fd); /* opened for a future nobody awaits now */
    if (u->have_data)
        PyBuffer_Release(&u->data);
    Py_XDECREF(u->lent);
    free(u->t.buf);
    free(u);
}

static void
fsu_orphan(JobObject *j)
{
    struct fsu *u = j->data;
    if (u->t.own_fd && u->t.fd >= 0) {
        close(u->t.fd);
        u->t.own_fd = 0;
    }
}

static const struct rl_job_kind fsu_kind = {NULL, fsu_finish, fsu_clear,
                                            fsu_again, fsu_orphan};

static int
sched_get(void)
{
    if (sched == NULL && !sched_refused) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        int res = rl_sched_start(&sched, n > 2 ? (unsigned)(n - 1) : 1);
        if (res < 0) {
            sched = NULL;
            sched_refused = 1;
        }
    }
    return sched != NULL;
}

static const enum rl_fs_kind fsu_kinds[] = {
    [FS_READ_FILE] = RL_FS_READ_FILE, [FS_WRITE_FILE] = RL_FS_WRITE_FILE,
    [FS_OPEN] = RL_FS_OPEN,           [FS_READ] = RL_FS_READ,
    [FS_WRITE] = RL_FS_WRITE,         [FS_CLOSE] = RL_FS_CLOSE,
    [FS_FSYNC] = RL_FS_FSYNC,
};

/* Big files are read into a bytes object lent to the task (no copy). */
#define FSU_LEND_MIN (256 * 1024)

/* Fills j for the io_uring path from the parsed request r (consumed). */
static int
fsu_prepare(JobObject *j, struct fs_req *r)
{
    struct fsu *u = calloc(1, sizeof(*u));
    if (u == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    rl_fs_task_init(&u->t, fsu_kinds[r->op], fsu_done);
    u->job = j;
    u->t.path = r->path;
    u->t.flags = r->flags;
    u->t.mode = r->mode;
    u->t.datasync = r->flags;
    u->t.n = r->n;
    u->t.fd = r->fd;
    u->t.lend_min = r->op == FS_READ_FILE ? FSU_LEND_MIN : 0;
    if (r->have_data) {
        u->data = r->data; /* moved */
        u->have_data = 1;
        r->have_data = 0;
        u->t.data = u->data.buf;
        u->t.data_len = (size_t)u->data.len;
    }
    free(r);
    j->data = u;
    j->kind = &fsu_kind;
    return 0;
}

/* fs_job(sink, fut, op, path, path2, fd, flags, mode, n, data) -> fut
 * path/path2: path-like objects or None (kept as given, for errors). */
static PyObject *
fs_job(PyObject *module, PyObject *args)
{
    PyObject *sink, *fut, *path, *path2, *data;
    int op, fd, flags;
    unsigned mode;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OOiOOiiInO:fs_job", &sink, &fut, &op, &path,
                          &path2, &fd, &flags, &mode, &n, &data))
        return NULL;
    if (op < FS_READ_FILE || op > FS_FSYNC) {
        PyErr_SetString(PyExc_ValueError, "bad fs op");
        return NULL;
    }
    JobObject *j = rl_job_new(module, &fs_kind, sink, fut);
    if (j == NULL)
        return NULL;
    struct fs_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        Py_DECREF(j);
        return PyErr_NoMemory();
    }
    j->data = r;
    r->op = (enum fs_op)op;
    r->fd = fd;
    r->flags = flags;
    r->mode = mode;
    r->n = n;
    r->opened_fd = -1;
    PyObject *paths[2] = {path, path2};
    for (int i = 0; i < 2; i++) {
        if (paths[i] == Py_None)
            continue;
        if (!PyUnicode_FSConverter(paths[i], &j->obj[i]))
            goto fail;
        if (strlen(PyBytes_AS_STRING(j->obj[i])) !=
            (size_t)PyBytes_GET_SIZE(j->obj[i])) {
            PyErr_SetString(PyExc_ValueError, "embedded null byte");
            goto fail;
        }
        j->obj[2 + i] = Py_NewRef(paths[i]);
    }
    r->path = j->obj[0] ? PyBytes_AS_STRING(j->obj[0]) : NULL;
    r->path2 = j->obj[1] ? PyBytes_AS_STRING(j->obj[1]) : NULL;
    if (data != Py_None) {
        if (PyObject_GetBuffer(data, &r->data, PyBUF_SIMPLE) < 0)
            goto fail;
        r->have_data = 1;
    }
    if (op != FS_COPY && sched_get()) {
        if (fsu_prepare(j, r) < 0)
            goto fail;
        if (rl_job_start(j, fsu_spawn) < 0)
            goto fail;
    } else if (rl_job_submit(j) < 0) {
        goto fail;
    }
    Py_DECREF(j);
    return Py_NewRef(fut);
fail:
    j->kind->clear(j);
    Py_DECREF(j);
    return NULL;
}

static PyObject *
fs_shutdown(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    struct rl_sched *s = sched;
    sched = NULL;
    if (s) {
        Py_BEGIN_ALLOW_THREADS
        rl_sched_shutdown(s);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyObject *
fs_after_fork(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    sched = NULL; /* the parent's workers do not exist here */
    Py_RETURN_NONE;
}

static PyMethodDef rtfs_functions[] = {
    {"fs_shutdown", fs_shutdown, METH_NOARGS,
     "Finishes the file tasks in flight, stops the workers (at exit)."},
    {"fs_after_fork", fs_after_fork, METH_NOARGS,
     "Forgets the parent's workers in a fork child."},
    {"fs_job", fs_job, METH_VARARGS,
     "fs_job(sink, fut, op, path, path2, fd, flags, mode, n, data) -> fut"},
    {NULL}};

int
rl_rtfs_setup(PyObject *module)
{
    if (PyModule_AddFunctions(module, rtfs_functions) < 0)
        return -1;
    static const struct { const char *name; int value; } ops[] = {
        {"FS_READ_FILE", FS_READ_FILE}, {"FS_WRITE_FILE", FS_WRITE_FILE},
        {"FS_OPEN", FS_OPEN}, {"FS_READ", FS_READ}, {"FS_WRITE", FS_WRITE},
        {"FS_CLOSE", FS_CLOSE}, {"FS_COPY", FS_COPY}, {"FS_FSYNC", FS_FSYNC}};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (PyModule_AddIntConstant(module, ops[i].name, ops[i].value) < 0)
            return -1;
    return 0;
}
