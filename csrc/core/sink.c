/*
 * sink.c - completions handed to a loop through an eventfd (see sink.h).
 */
#include "core/sink.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

int
rl_sink_init(struct rl_sink *s, void (*notify)(struct rl_sink *s))
{
    s->head = s->tail = NULL;
    s->signalled = 0;
    s->closed = 0;
    s->notify = notify;
    s->efd = -1;
    if (notify == NULL) {
        s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->efd < 0)
            return -errno;
    }
    pthread_mutex_init(&s->lock, NULL);
    return 0;
}

int
rl_sink_push(struct rl_sink *s, struct rl_sink_node *n)
{
    n->next = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->closed) {
        pthread_mutex_unlock(&s->lock);
        return -EPIPE;
    }
    if (s->tail)
        s->tail->next = n;
    else
        s->head = n;
    s->tail = n;
    if (!s->signalled) {
        s->signalled = 1;
        if (s->notify) {
            s->notify(s);
        } else {
            uint64_t one = 1;
            ssize_t w = write(s->efd, &one, sizeof(one));
            (void)w; /* cannot fail for a live eventfd below its maximum */
        }
    }
    pthread_mutex_unlock(&s->lock);
    return 0;
}

struct rl_sink_node *
rl_sink_take(struct rl_sink *s)
{
    pthread_mutex_lock(&s->lock);
    struct rl_sink_node *n = s->head;
    s->head = s->tail = NULL;
    if (s->signalled && !s->closed) {
        if (s->efd >= 0) {
            uint64_t v;
            ssize_t r = read(s->efd, &v, sizeof(v));
            (void)r; /* EAGAIN is fine: nothing to clear */
        }
        s->signalled = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

struct rl_sink_node *
rl_sink_close(struct rl_sink *s, int *signalled)
{
    pthread_mutex_lock(&s->lock);
    struct rl_sink_node *n = s->head;
    s->head = s->tail = NULL;
    *signalled = s->signalled;
    if (!s->closed) {
        s->closed = 1;
        if (s->efd >= 0)
            close(s->efd);
        s->efd = -1;
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

void
rl_sink_fini(struct rl_sink *s)
{
    pthread_mutex_destroy(&s->lock);
}
