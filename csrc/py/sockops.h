/*
 * sockops.h - the socket operation record (SockOp) shared by sockops.c,
 * which runs an operation on the ring, and sockops_new.c, the SockOps
 * factory that _sockets.py calls to create one. Private to those files.
 */
#ifndef RL_PY_SOCKOPS_H
#define RL_PY_SOCKOPS_H

#include "py/module.h"

#include <sys/socket.h>
#include <sys/uio.h>

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

/* sockops.c: the SockOp type's spec; rl_sockop_prepare sets the ring
 * callbacks of a new record; rl_sockop_start hands a filled-in record to
 * the loop (it reaches the kernel just before the loop next enters it)
 * and returns a new reference for Python. */
extern PyType_Spec rl_sockop_spec;
void rl_sockop_prepare(SockOpObject *op);
PyObject *rl_sockop_start(SockOpObject *op, int polled, short poll_mask);

#endif
