/*
 * rtdns.c - getaddrinfo as a job in the blocking pool, without the GIL:
 * ringloop.rt.resolve and ringloop's loop.getaddrinfo. The result is built
 * on the loop thread as socket.getaddrinfo builds it: a list of
 * (family, type, proto, canonname, sockaddr) with numeric host strings from
 * getnameinfo(NI_NUMERICHOST); the Python side turns family and type into
 * socket.AddressFamily / socket.SocketKind.
 *
 * Threads: dns_job on the loop thread with the GIL; dns_run on a pool
 * thread.
 */
#include "py/rtjob.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

struct dns_req {
    struct addrinfo hints;
    struct addrinfo *res;
    int gai, err;
};

static void
dns_run(JobObject *j)
{
    struct dns_req *r = j->data;
    const char *host = j->obj[0] ? PyBytes_AS_STRING(j->obj[0]) : NULL;
    const char *port = j->obj[1] ? PyBytes_AS_STRING(j->obj[1]) : NULL;
    errno = 0;
    r->gai = getaddrinfo(host, port, &r->hints, &r->res);
    r->err = errno;
}

static PyObject *
make_sockaddr(const struct sockaddr *sa, socklen_t len)
{
    char host[NI_MAXHOST];
    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *in = (const void *)sa;
        if (getnameinfo(sa, len, host, sizeof(host), NULL, 0, NI_NUMERICHOST))
            return PyErr_Format(PyExc_OSError, "getnameinfo failed");
        return Py_BuildValue("(si)", host, ntohs(in->sin_port));
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        if (getnameinfo(sa, len, host, sizeof(host), NULL, 0, NI_NUMERICHOST))
            return PyErr_Format(PyExc_OSError, "getnameinfo failed");
        return Py_BuildValue("(siII)", host, ntohs(in6->sin6_port),
                             ntohl(in6->sin6_flowinfo), in6->sin6_scope_id);
    }
    default:
        return Py_BuildValue("(iy#)", sa->sa_family, sa->sa_data,
                             (Py_ssize_t)sizeof(sa->sa_data));
    }
}

static PyObject *
dns_finish(JobObject *j)
{
    struct dns_req *r = j->data;
    if (r->gai != 0) {
        if (r->gai == EAI_SYSTEM) {
            errno = r->err;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        /* socket.gaierror, as socket.getaddrinfo raises it */
        PyObject *socket = PyImport_ImportModule("socket");
        PyObject *gaierror = socket ? PyObject_GetAttrString(socket, "gaierror") : NULL;
        Py_XDECREF(socket);
        if (gaierror == NULL)
            return NULL;
        PyObject *v = Py_BuildValue("(is)", r->gai, gai_strerror(r->gai));
        if (v)
            PyErr_SetObject(gaierror, v);
        Py_XDECREF(v);
        Py_DECREF(gaierror);
        return NULL;
    }
    PyObject *list = PyList_New(0);
    for (struct addrinfo *ai = r->res; list && ai; ai = ai->ai_next) {
        PyObject *addr = make_sockaddr(ai->ai_addr, ai->ai_addrlen);
        PyObject *item =
            addr ? Py_BuildValue("(iiisO)", ai->ai_family, ai->ai_socktype,
                                 ai->ai_protocol,
                                 ai->ai_canonname ? ai->ai_canonname : "",
                                 addr)
                 : NULL;
        Py_XDECREF(addr);
        if (item == NULL || PyList_Append(list, item) < 0)
            Py_CLEAR(list);
        Py_XDECREF(item);
    }
    return list;
}

static void
dns_clear(JobObject *j)
{
    struct dns_req *r = j->data;
    if (r == NULL)
        return;
    j->data = NULL;
    if (r->res)
        freeaddrinfo(r->res);
    free(r);
}

static const struct rl_job_kind dns_kind = {dns_run, dns_finish, dns_clear};

/* dns_job(sink, fut, host: bytes|None, port: bytes|None, family, type,
 *         proto, flags) -> fut */
static PyObject *
dns_job(PyObject *module, PyObject *args)
{
    PyObject *sink, *fut, *host, *port;
    int family, type, proto, flags;
    if (!PyArg_ParseTuple(args, "OOOOiiii:dns_job", &sink, &fut, &host, &port,
                          &family, &type, &proto, &flags))
        return NULL;
    if ((host != Py_None && !PyBytes_Check(host)) ||
        (port != Py_None && !PyBytes_Check(port))) {
        PyErr_SetString(PyExc_TypeError, "dns_job: host and port are bytes");
        return NULL;
    }
    JobObject *j = rl_job_new(module, &dns_kind, sink, fut);
    if (j == NULL)
        return NULL;
    struct dns_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        Py_DECREF(j);
        return PyErr_NoMemory();
    }
    j->data = r;
    r->hints.ai_family = family;
    r->hints.ai_socktype = type;
    r->hints.ai_protocol = proto;
    r->hints.ai_flags = flags;
    j->obj[0] = host == Py_None ? NULL : Py_NewRef(host);
    j->obj[1] = port == Py_None ? NULL : Py_NewRef(port);
    if (rl_job_submit(j) < 0) {
        Py_DECREF(j);
        return NULL;
    }
    Py_DECREF(j);
    return Py_NewRef(fut);
}

static PyMethodDef rtdns_functions[] = {
    {"dns_job", dns_job, METH_VARARGS,
     "dns_job(sink, fut, host, port, family, type, proto, flags) -> fut"},
    {NULL}};

int
rl_rtdns_setup(PyObject *module)
{
    return PyModule_AddFunctions(module, rtdns_functions);
}
