/*
 * transport.h - the StreamTransport object shared by its three files:
 * transportobject.c (the type, closing, attributes), transport_read.c
 * (receiving and delivering to the protocol) and transport_write.c (the
 * write queue, sends and flow control). See transportobject.c for the
 * design and the lifetime rules.
 */
#ifndef RL_PY_TRANSPORT_H
#define RL_PY_TRANSPORT_H

#include "py/module.h"

#include <sys/socket.h>
#include <sys/uio.h>

enum {
    IOV_BATCH = 64,            /* chunks per SENDMSG */
    EAGER_SEND_MIN = 16384,    /* write() sizes tried with send(2) at once */
    /* Large reads go straight into the reader's memory (direct mode):
     * entered after a buffered completion of DIRECT_ENTER bytes (or one
     * that filled a whole receive buffer, if those are smaller), left
     * after a direct read under DIRECT_LEAVE; a Protocol reads into a
     * fresh bytes of DIRECT_SIZE (asyncio's max_size). */
    DIRECT_ENTER = 65536,
    DIRECT_LEAVE = 16384,
    DIRECT_SIZE = 256 * 1024,
    /* At most this many direct receives per loop at once (4 MiB of
     * targets at most): with many connections streaming, the others
     * stay on the shared buffer ring, whose memory stays cache-hot. */
    DIRECT_MAX_PENDING = 16,
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
    /* The slots of the Python bases come first: BaseTransport's _extra,
     * then _FlowControlMixin's four, which this type shadows with its own
     * attributes (they stay NULL). */
    PyObject *extra;
    PyObject *unused_flow_slots[4];
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
    char direct;     /* direct mode (see DIRECT_ENTER) */
    char rview_held; /* rview is the target of the receive in flight */
    char rstale;     /* set_protocol() since the direct receive started */
    PyObject *rbytes; /* bytes the direct receive in flight fills */
    Py_buffer rview;  /* get_buffer()'s memory it fills (BufferedProtocol) */
} TransportObject;

#define T_OF(field, ptr) rl_container_of(ptr, TransportObject, field)

static inline int
loop_gone(TransportObject *t)
{
    return t->loop == NULL || t->loop->core.closing || t->loop->closed;
}

/* transportobject.c */
/* A protocol callback raised: asyncio's _fatal_error, or propagate
 * SystemExit/KeyboardInterrupt out of the loop. */
void tr_protocol_failed(TransportObject *t, const char *message);
/* An OSError from -errno, given to _fatal_error. */
void tr_os_failed(TransportObject *t, int neg_errno, const char *message);
/* Closes the socket once connection_lost ran and no op is in flight. */
void tr_maybe_close_socket(TransportObject *t);
PyObject *Transport_close(TransportObject *t, PyObject *unused);

/* transport_read.c */
void tr_start_receive(TransportObject *t);
void tr_stop_receive(TransportObject *t);
int tr_is_reading(TransportObject *t);
void tr_recv_complete(struct rl_op *op, int res, unsigned flags);
/* Releases a direct-read target (transport dealloc). */
void tr_release_read_target(TransportObject *t);
PyObject *Transport_deliver_held(TransportObject *t, PyObject *unused);
PyObject *Transport_start_reading(TransportObject *t, PyObject *unused);
PyObject *Transport_pause_reading(TransportObject *t, PyObject *unused);
PyObject *Transport_resume_reading(TransportObject *t, PyObject *unused);
PyObject *Transport_is_reading(TransportObject *t, PyObject *unused);

/* transport_write.c */
void tr_send_complete(struct rl_op *op, int res, unsigned flags);
void tr_flush_run(struct rl_deferred *d);
void tr_queue_pop(TransportObject *t);
/* Drops queued data no send covers (the send in flight keeps its own). */
void tr_queue_discard(TransportObject *t);
PyObject *Transport_set_write_buffer_limits(TransportObject *t, PyObject *args,
                                           PyObject *kwds);
PyObject *Transport_get_write_buffer_limits(TransportObject *t,
                                           PyObject *unused);
PyObject *Transport_get_write_buffer_size(TransportObject *t,
                                         PyObject *unused);
PyObject *Transport_write(TransportObject *t, PyObject *data);
PyObject *Transport_writelines(TransportObject *t, PyObject *lines);
PyObject *Transport_write_eof(TransportObject *t, PyObject *unused);
PyObject *Transport_can_write_eof(TransportObject *t, PyObject *unused);

#endif
