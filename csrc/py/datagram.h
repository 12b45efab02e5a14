/*
 * datagram.h - the DatagramTransport object shared by its three files:
 * datagramobject.c (the type, receiving, closing, attributes),
 * datagram_send.c (sendto, the send queue, flow control hooks) and
 * datagram_addr.c (socket addresses to and from Python objects). See
 * datagramobject.c for the design and the lifetime rules.
 */
#ifndef RL_PY_DATAGRAM_H
#define RL_PY_DATAGRAM_H

#include "py/module.h"

#include <sys/socket.h>
#include <sys/uio.h>

enum { DG_RECV_IDLE, DG_RECV_ARMED, DG_RECV_CANCELLING };

/* asyncio's max_size for a datagram transport's receives: also the
 * private buffer of the single-shot mode (see datagramobject.c). */
enum { DG_MAX_SIZE = 256 * 1024 };

typedef struct {
    PyObject *data; /* bytes */
    struct sockaddr_storage addr;
    socklen_t addrlen; /* 0: the socket is connected, send() */
} Dgram;

typedef struct {
    PyObject_HEAD
    /* The slots of the Python bases come first: BaseTransport's _extra,
     * then _FlowControlMixin's four, which this type shadows with its own
     * attributes (they stay NULL). */
    PyObject *extra;
    PyObject *unused_flow_slots[4];
    PyObject *weakreflist;
    LoopObject *loop;
    PyObject *sock;
    PyObject *protocol;
    PyObject *address;           /* remote address given, or NULL */
    PyObject *datagram_received; /* bound methods of the protocol */
    PyObject *error_received;
    PyObject *held; /* (data, addr) received while paused, or NULL */
    /* The last source address turned into a Python object (reused while
     * the next datagram comes from the same peer) and the last
     * destination object parsed by sendto (reused if given again). */
    PyObject *raddr_obj;
    struct sockaddr_storage raddr;
    socklen_t raddr_len;
    PyObject *saddr_obj;
    struct sockaddr_storage saddr;
    socklen_t saddr_len;
    /* IPv4: the last source host as a str, for many peers on one host;
     * sendto() given that same str skips parsing it. */
    PyObject *rhost_obj;
    uint32_t rhost_in; /* its address, network order */
    int fd;
    int family;
    int conn_lost;
    Py_ssize_t high_water, low_water;
    Py_ssize_t q_bytes;  /* get_write_buffer_size() */
    Py_ssize_t header;   /* bytes counted per queued datagram */
    Dgram *q;            /* send queue: a ring of datagrams */
    size_t q_head, q_len, q_cap;
    struct rl_op recv_op;
    struct rl_op send_op;
    struct msghdr rmsg;  /* the receive's: room for the source address */
    struct sockaddr_storage rname;
    struct iovec riov;   /* single-shot mode: rbuf */
    char *rbuf;
    struct msghdr smsg;  /* the send in flight (the queue's head) */
    struct sockaddr_storage sname;
    struct iovec siov;
    char recv_state;
    char send_inflight;
    char closing;
    char paused;
    char protocol_paused;
    char protocol_connected;
    char released; /* connection_lost done: close the socket when idle */
    char rearm;    /* receive again when the cancel completes */
    char connected; /* peername is set: send() */
    char send_empty; /* sendto(b"") sends an empty datagram (3.12.?+) */
    char single;   /* single-shot receives into rbuf (see datagramobject.c) */
    char deliver_pending; /* _deliver_held is scheduled */
} DatagramObject;

#define DG_OF(field, ptr) rl_container_of(ptr, DatagramObject, field)

static inline int
dg_loop_gone(DatagramObject *t)
{
    return t->loop == NULL || t->loop->core.closing || t->loop->closed;
}

/* datagramobject.c */
/* Calls the protocol's method: the bound method cached by set_protocol,
 * or (the protocol has no such attribute) looked up now, so it fails
 * where asyncio's would: when called. None if there is no protocol. */
PyObject *dg_call(DatagramObject *t, PyObject *bound, const char *name,
                  PyObject *const *args, size_t nargs);
/* Calls protocol.error_received(OSError(-neg_errno)) from a completion. */
void dg_error_received(DatagramObject *t, int neg_errno);
void dg_maybe_close_socket(DatagramObject *t);
/* Schedules self._call_connection_lost(None) (close after the drain). */
void dg_connection_lost_now(DatagramObject *t);

/* datagram_send.c */
void dg_send_complete(struct rl_op *op, int res, unsigned flags);
void dg_queue_pop(DatagramObject *t);
/* Drops queued datagrams no send covers (the send in flight keeps its). */
void dg_queue_discard(DatagramObject *t);
PyObject *Datagram_sendto(DatagramObject *t, PyObject *const *args,
                          Py_ssize_t nargs, PyObject *kwnames);
PyObject *Datagram_sendto_resolved(DatagramObject *t, PyObject *args);
PyObject *Datagram_get_write_buffer_size(DatagramObject *t, PyObject *unused);

/* datagram_addr.c */
/* A Python address as the socket module gives it (None if len is 0). */
PyObject *rl_sockaddr_to_py(const struct sockaddr *sa, socklen_t len);
/* An IPv4 address as a str, as the socket module formats it. */
PyObject *rl_ipv4_to_py(uint32_t addr_network_order);
/* Parses a numeric address object for a socket of `family`: 0, or -1 if
 * it is not one this fast path handles (no exception set). */
int rl_sockaddr_from_py(int family, PyObject *addr,
                        struct sockaddr_storage *out, socklen_t *len);

#endif
