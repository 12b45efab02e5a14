/*
 * datagram_addr.c - socket addresses to and from the Python objects the
 * socket module uses, for the datagram transport's hot path: IPv4 (host,
 * port), IPv6 (host, port, flowinfo, scope_id), Unix paths (str, or bytes
 * for Linux abstract names). Anything else (host names, other families,
 * out-of-range values) is left to the socket module by the caller, so
 * errors stay exactly the socket module's. Pure functions; any thread
 * holding the GIL.
 */
#include "py/datagram.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>

PyObject *
rl_ipv4_to_py(uint32_t addr)
{
    /* inet_ntop's digits without its sprintf */
    const unsigned char *b = (const unsigned char *)&addr;
    char buf[16], *p = buf;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = '.';
    }
    return PyUnicode_FromStringAndSize(buf, p - buf - 1);
}

PyObject *
rl_sockaddr_to_py(const struct sockaddr *sa, socklen_t len)
{
    char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    if (sa == NULL || len == 0)
        Py_RETURN_NONE;
    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        return Py_BuildValue("(Ni)", rl_ipv4_to_py(a->sin_addr.s_addr),
                             ntohs(a->sin_port));
    }
    case AF_INET6: {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        /* The socket module formats with getnameinfo(NI_NUMERICHOST),
         * which names the scope ("fe80::1%eth0"); inet_ntop is the same
         * without a scope, and cheaper. */
        if (a->sin6_scope_id != 0
                ? getnameinfo(sa, len, host, sizeof(host), NULL, 0,
                              NI_NUMERICHOST) != 0
                : !inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host)))
            break;
        return Py_BuildValue("(siII)", host, ntohs(a->sin6_port),
                             (unsigned)ntohl(a->sin6_flowinfo),
                             (unsigned)a->sin6_scope_id);
    }
    case AF_UNIX: {
        const struct sockaddr_un *a = (const struct sockaddr_un *)sa;
        size_t n = len - offsetof(struct sockaddr_un, sun_path);
        if (len < offsetof(struct sockaddr_un, sun_path))
            n = 0;
        if (n > 0 && a->sun_path[0] == 0) /* Linux abstract namespace */
            return PyBytes_FromStringAndSize(a->sun_path, (Py_ssize_t)n);
        return PyUnicode_DecodeFSDefaultAndSize(
            a->sun_path, (Py_ssize_t)strnlen(a->sun_path, n));
    }
    default:
        break;
    }
    return Py_BuildValue("(iy#)", sa->sa_family, sa->sa_data,
                         (Py_ssize_t)sizeof(sa->sa_data));
}

/* A str host inet_pton accepts for `family`; -1 otherwise. */
static int
parse_host(int family, PyObject *host, void *out)
{
    if (!PyUnicode_Check(host))
        return -1;
    const char *s = PyUnicode_AsUTF8(host);
    if (s == NULL) {
        PyErr_Clear();
        return -1;
    }
    return inet_pton(family, s, out) == 1 ? 0 : -1;
}

/* An exact int in [0, max]; -1 otherwise. */
static long
small_int(PyObject *o, long max)
{
    if (!PyLong_CheckExact(o))
        return -1;
    int overflow;
    long v = PyLong_AsLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    return overflow || v < 0 || v > max ? -1 : v;
}

static int
from_inet(PyObject *addr, struct sockaddr_storage *out, socklen_t *len)
{
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    long port;
    if (!PyTuple_CheckExact(addr) || PyTuple_GET_SIZE(addr) != 2 ||
        (port = small_int(PyTuple_GET_ITEM(addr, 1), 65535)) < 0)
        return -1;
    memset(a, 0, sizeof(*a));
    if (parse_host(AF_INET, PyTuple_GET_ITEM(addr, 0), &a->sin_addr) < 0)
        return -1;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    *len = sizeof(*a);
    return 0;
}

static int
from_inet6(PyObject *addr, struct sockaddr_storage *out, socklen_t *len)
{
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
    Py_ssize_t n;
    long port, flowinfo = 0, scope = 0;
    if (!PyTuple_CheckExact(addr) || (n = PyTuple_GET_SIZE(addr)) < 2 ||
        n > 4 || (port = small_int(PyTuple_GET_ITEM(addr, 1), 65535)) < 0 ||
        (n > 2 &&
         (flowinfo = small_int(PyTuple_GET_ITEM(addr, 2), 0xfffff)) < 0) ||
        (n > 3 &&
         (scope = small_int(PyTuple_GET_ITEM(addr, 3), 0xffffffffL)) < 0))
        return -1;
    memset(a, 0, sizeof(*a));
    if (parse_host(AF_INET6, PyTuple_GET_ITEM(addr, 0), &a->sin6_addr) < 0)
        return -1;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    a->sin6_flowinfo = htonl((uint32_t)flowinfo);
    a->sin6_scope_id = (uint32_t)scope;
    *len = sizeof(*a);
    return 0;
}

static int
from_unix(PyObject *addr, struct sockaddr_storage *out, socklen_t *len)
{
    struct sockaddr_un *a = (struct sockaddr_un *)out;
    PyObject *path;
    if (PyUnicode_Check(addr)) {
        path = PyUnicode_EncodeFSDefault(addr);
        if (path == NULL) {
            PyErr_Clear();
            return -1;
        }
    } else if (PyBytes_Check(addr)) {
        path = Py_NewRef(addr);
    } else {
        return -1;
    }
    const char *p = PyBytes_AS_STRING(path);
    size_t n = (size_t)PyBytes_GET_SIZE(path);
    int abstract = n > 0 && p[0] == 0;
    int res = -1;
    /* a path needs room for its NUL; "" is left to the socket module */
    if (n > 0 && n + !abstract <= sizeof(a->sun_path)) {
        memset(a, 0, offsetof(struct sockaddr_un, sun_path));
        a->sun_family = AF_UNIX;
        memcpy(a->sun_path, p, n);
        if (!abstract)
            a->sun_path[n] = 0;
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                           !abstract);
        res = 0;
    }
    Py_DECREF(path);
    return res;
}

int
rl_sockaddr_from_py(int family, PyObject *addr, struct sockaddr_storage *out,
                    socklen_t *len)
{
    switch (family) {
    case AF_INET:
        return from_inet(addr, out, len);
    case AF_INET6:
        return from_inet6(addr, out, len);
    case AF_UNIX:
        return from_unix(addr, out, len);
    }
    return -1;
}
