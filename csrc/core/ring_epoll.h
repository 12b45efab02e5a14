/*
 * ring_epoll.h - the epoll backend's private types, shared by ring_epoll.c
 * (requests, waiting, the completion queue) and ring_epoll_try.c (one
 * non-blocking try of each kind of op, the receive buffers). Only those two
 * files include it; the threading rules are ring.h's.
 */
#ifndef RL_RING_EPOLL_H
#define RL_RING_EPOLL_H

#include "core/ring_backend.h"

#include <sys/socket.h>
#include <sys/types.h>

#define E(r) ((struct rl_epoll *)(r))

enum {
    MAX_EVENTS = 256,
    MULTISHOT_CAP = 16, /* completions per op per wake-up */
};

enum kind {
    K_READ, K_WRITE, K_RECV, K_SEND, K_RECVMSG, K_SENDMSG, K_CONNECT,
    K_ACCEPT, K_ACCEPT_MS, K_RECV_MS, K_RECVMSG_MS, K_POLL, K_CANCEL,
    K_PREAD, K_PWRITE, K_OPENAT, K_CLOSE, K_STATX, K_FSYNC,
};

/* What an attempt left behind. */
enum { ST_DONE, ST_WAIT, ST_RETRY };

struct req {
    struct rl_op *op;
    struct req *next, *prev; /* submission list or the fd's waiters */
    struct req *hnext;       /* op hash chain, while waiting */
    unsigned char kind;
    unsigned char blocking;   /* the fd is in blocking mode */
    unsigned char connecting; /* connect: in progress */
    int fd;
    int flags;
    void *buf;
    unsigned len, done;
    uint64_t offset;
    struct msghdr *msg;     /* recvmsg, sendmsg, recvmsg_multishot */
    struct msghdr *own_msg; /* sendmsg's advanced copy after a short send */
    const struct sockaddr *addr;
    socklen_t addrlen, *addrlenp;
    struct sockaddr *out_addr;
    const char *path;
    unsigned mode;
    struct statx *stx;
};

struct fdent {
    struct req *head, *tail; /* waiters, oldest first */
    struct fdent *pnext;     /* on the retry list */
    unsigned char registered, retry;
};

struct cqe {
    struct rl_op *op;
    int res;
    unsigned flags;
};

struct rl_epoll {
    struct rl_ring base; /* first: ring.c routes on its tag */
    int epfd;
    pid_t pid, owner_tid;
    unsigned inflight;
    unsigned waiting; /* requests on fd lists */
    struct req *sq_head, *sq_tail;
    struct req *free_reqs;
    struct fdent **fds;
    int nfds;
    struct fdent *retry;
    struct req **hash;
    unsigned hash_size, hash_count;
    struct cqe *cq;
    size_t cq_len, cq_cap, cq_head;
    /* Receive buffers */
    char *bufs;
    unsigned buf_count, buf_size;
    unsigned *free_ids, nfree;
    int bufs_failed;
};

/* Queues a completion for rl_epoll_dispatch. */
void rl_epoll_push(struct rl_epoll *e, struct rl_op *op, int res,
                   unsigned flags);

/* ring_epoll_try.c */
/* The readiness q waits for: an EPOLL* mask. */
unsigned rl_epoll_wants(const struct req *q);
/* One try of socket/pipe op q; revents: the readiness seen (EPOLLIN |
 * EPOLLOUT on a first try). ST_DONE: its final completion is queued. */
int rl_epoll_attempt(struct rl_epoll *e, struct req *q, unsigned revents);
/* Runs file op q now and queues its completion. */
void rl_epoll_run_file_op(struct rl_epoll *e, struct req *q);
/* Maps the receive buffers on first use: 0 or -errno (remembered). */
int rl_epoll_ensure_buffers(struct rl_epoll *e);

#endif
