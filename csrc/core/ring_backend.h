/*
 * ring_backend.h - what a ring backend implements (private to ring*.c).
 *
 * Every backend's ring starts with struct rl_ring, whose tag picks the
 * backend; ring.c turns each public rl_ring_* call into the matching
 * rl_uring_* (ring_uring.c) or rl_epoll_* (ring_epoll.c) call. The io_uring
 * path is the predicted branch. The contracts are those of ring.h.
 */
#ifndef RL_RING_BACKEND_H
#define RL_RING_BACKEND_H

#include "core/ring.h"

struct rl_ring {
    unsigned char backend; /* RL_RING_URING or RL_RING_EPOLL */
};

/* The header of a datagram in a receive buffer, as io_uring writes it
 * (struct io_uring_recvmsg_out): then msg_namelen bytes of address,
 * msg_controllen bytes of control data, then the payload. */
struct rl_recvmsg_out {
    uint32_t namelen;    /* the sender address's real length */
    uint32_t controllen; /* the control data's real length */
    uint32_t payloadlen; /* the datagram's real length */
    uint32_t flags;      /* msg_flags, e.g. MSG_TRUNC */
};

/* The backend functions: one list, declared once per backend. */
#define RL_RING_BACKEND_DECLARE(p)                                            \
    int p##_open(struct rl_ring **out);                                       \
    int p##_enable(struct rl_ring *r);                                        \
    int p##_owned_elsewhere(const struct rl_ring *r);                         \
    int p##_forked(const struct rl_ring *r);                                  \
    void p##_close(struct rl_ring *r);                                        \
    unsigned p##_inflight(const struct rl_ring *r);                           \
    const char *p##_describe(const struct rl_ring *r);                        \
    int p##_read(struct rl_ring *r, struct rl_op *op, int fd, void *buf,      \
                 unsigned len);                                               \
    int p##_write(struct rl_ring *r, struct rl_op *op, int fd,                \
                  const void *buf, unsigned len);                             \
    int p##_cancel(struct rl_ring *r, struct rl_op *op);                      \
    int p##_pread(struct rl_ring *r, struct rl_op *op, int fd, void *buf,     \
                  unsigned len, uint64_t offset);                             \
    int p##_pwrite(struct rl_ring *r, struct rl_op *op, int fd,               \
                   const void *buf, unsigned len, uint64_t offset);           \
    int p##_openat(struct rl_ring *r, struct rl_op *op, int dirfd,            \
                   const char *path, int flags, unsigned mode);               \
    int p##_close_fd(struct rl_ring *r, struct rl_op *op, int fd);            \
    int p##_statx(struct rl_ring *r, struct rl_op *op, int dirfd,             \
                  const char *path, int flags, unsigned mask,                 \
                  struct statx *out);                                         \
    int p##_fsync(struct rl_ring *r, struct rl_op *op, int fd, int datasync); \
    int p##_recv(struct rl_ring *r, struct rl_op *op, int fd, void *buf,      \
                 unsigned len, int flags);                                    \
    int p##_send(struct rl_ring *r, struct rl_op *op, int fd,                 \
                 const void *buf, unsigned len, int flags);                   \
    int p##_recvmsg(struct rl_ring *r, struct rl_op *op, int fd,              \
                    struct msghdr *msg, int flags);                           \
    int p##_sendmsg(struct rl_ring *r, struct rl_op *op, int fd,              \
                    const struct msghdr *msg, int flags);                     \
    int p##_connect(struct rl_ring *r, struct rl_op *op, int fd,              \
                    const struct sockaddr *addr, socklen_t len);              \
    int p##_accept(struct rl_ring *r, struct rl_op *op, int fd,               \
                   struct sockaddr *addr, socklen_t *len);                    \
    int p##_accept_multishot(struct rl_ring *r, struct rl_op *op, int fd);    \
    int p##_recv_multishot(struct rl_ring *r, struct rl_op *op, int fd);      \
    int p##_recvmsg_multishot(struct rl_ring *r, struct rl_op *op, int fd,    \
                              struct msghdr *msg);                            \
    int p##_poll(struct rl_ring *r, struct rl_op *op, int fd, unsigned mask); \
    char *p##_buffer(struct rl_ring *r, unsigned id);                         \
    void p##_buffer_recycle(struct rl_ring *r, unsigned id);                  \
    unsigned p##_buffer_size(const struct rl_ring *r);                        \
    int p##_submit_and_wait(struct rl_ring *r, int64_t timeout_ns);           \
    int p##_needs_enter(struct rl_ring *r);                                   \
    int p##_dispatch(struct rl_ring *r);

RL_RING_BACKEND_DECLARE(rl_uring)
RL_RING_BACKEND_DECLARE(rl_epoll)

#endif
