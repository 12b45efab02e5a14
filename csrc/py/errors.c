/*
 * errors.c - the one place that turns core -errno results into exceptions.
 */
#include "py/module.h"

#include <errno.h>

PyObject *
rl_set_oserror(int neg_errno)
{
    errno = -neg_errno;
    return PyErr_SetFromErrno(PyExc_OSError); /* picks the OSError subclass */
}
