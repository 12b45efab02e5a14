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

PyObject *
rl_set_oserror_msg(int neg_errno, const char *message)
{
    PyObject *args = Py_BuildValue("(is)", -neg_errno, message);
    if (args != NULL) {
        PyErr_SetObject(PyExc_OSError, args); /* OSError picks the subclass */
        Py_DECREF(args);
    }
    return NULL;
}
