/*
 * rt_spawn.c - ringloop.rt.spawn's fast path: create a task on the running
 * loop (via loop.create_task, so task factories and ringloop's C create_task
 * apply) and keep it strongly referenced until it is done.
 *
 * The strong set lives on the loop as the attribute `_rt_tasks`, a tuple
 * (set, set.discard) made on first use; each task gets the bound discard as
 * its done callback. The function's own state (asyncio's
 * _get_running_loop and interned names) is the tuple passed as its `self`
 * (PEP 687: nothing global). Called from Python, on the running loop's
 * thread, with the GIL held; works on any asyncio loop.
 */
#include "py/module.h"

enum { RT_GET_RUNNING_LOOP, RT_STR_TASKS, RT_STR_CREATE_TASK,
       RT_STR_ADD_DONE_CALLBACK, RT_NSTATE };

#define RT_MAX_KWARGS 6

/* The (set, set.discard) pair stored on `loop`, made on first use. */
static PyObject *
rt_live_pair(PyObject *loop, PyObject *name)
{
    PyObject *pair = PyObject_GetAttr(loop, name);
    if (pair != NULL || !PyErr_ExceptionMatches(PyExc_AttributeError))
        return pair;
    PyErr_Clear();
    PyObject *set = PySet_New(NULL);
    if (set == NULL)
        return NULL;
    PyObject *discard = PyObject_GetAttrString(set, "discard");
    if (discard != NULL)
        pair = PyTuple_Pack(2, set, discard);
    Py_DECREF(set);
    Py_XDECREF(discard);
    if (pair != NULL && PyObject_SetAttr(loop, name, pair) < 0)
        Py_CLEAR(pair);
    return pair;
}

static PyObject *
rt_spawn(PyObject *self, PyObject *const *args, size_t nargsf,
         PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError,
                     "spawn() takes 1 positional argument (%zd given)", nargs);
        return NULL;
    }
    if (nkw > RT_MAX_KWARGS) {
        PyErr_SetString(PyExc_TypeError, "spawn(): too many keyword arguments");
        return NULL;
    }
    PyObject *loop =
        PyObject_CallNoArgs(PyTuple_GET_ITEM(self, RT_GET_RUNNING_LOOP));
    if (loop == NULL)
        return NULL;
    if (loop == Py_None) {
        Py_DECREF(loop);
        PyErr_SetString(PyExc_RuntimeError,
                        "rt.spawn() needs a running event loop");
        return NULL;
    }
    PyObject *stack[2 + RT_MAX_KWARGS];
    stack[0] = loop;
    stack[1] = args[0];
    for (Py_ssize_t i = 0; i < nkw; i++)
        stack[2 + i] = args[1 + i];
    PyObject *task = PyObject_VectorcallMethod(
        PyTuple_GET_ITEM(self, RT_STR_CREATE_TASK), stack, 2, kwnames);
    PyObject *pair = task ? rt_live_pair(loop, PyTuple_GET_ITEM(self, RT_STR_TASKS))
                          : NULL;
    Py_DECREF(loop);
    if (pair == NULL)
        goto fail;
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 ||
        !PySet_Check(PyTuple_GET_ITEM(pair, 0))) {
        PyErr_SetString(PyExc_TypeError, "loop._rt_tasks is not rt's");
        goto fail;
    }
    if (PySet_Add(PyTuple_GET_ITEM(pair, 0), task) < 0)
        goto fail;
    PyObject *cb_args[2] = {task, PyTuple_GET_ITEM(pair, 1)};
    PyObject *r = PyObject_VectorcallMethod(
        PyTuple_GET_ITEM(self, RT_STR_ADD_DONE_CALLBACK), cb_args, 2, NULL);
    if (r == NULL)
        goto fail;
    Py_DECREF(r);
    Py_DECREF(pair);
    return task;
fail:
    Py_XDECREF(pair);
    Py_XDECREF(task);
    return NULL;
}

static PyMethodDef rt_spawn_def = {
    "spawn", (PyCFunction)(void (*)(void))rt_spawn,
    METH_FASTCALL | METH_KEYWORDS,
    "spawn(coro, /, *, name=None, context=None)\n--\n\n"
    "Run coro as a task on the running loop (loop.create_task) and return it.\n\n"
    "The runtime keeps the task alive until it finishes, even if the handle is\n"
    "dropped; an exception nobody retrieved goes to the loop's exception handler.\n"
    "Other keyword arguments are passed to loop.create_task."};

int
rl_rt_setup(PyObject *module)
{
    PyObject *events = PyImport_ImportModule("asyncio.events");
    if (events == NULL)
        return -1;
    PyObject *state = PyTuple_New(RT_NSTATE);
    if (state == NULL) {
        Py_DECREF(events);
        return -1;
    }
    PyTuple_SET_ITEM(state, RT_GET_RUNNING_LOOP,
                     PyObject_GetAttrString(events, "_get_running_loop"));
    PyTuple_SET_ITEM(state, RT_STR_TASKS, PyUnicode_InternFromString("_rt_tasks"));
    PyTuple_SET_ITEM(state, RT_STR_CREATE_TASK,
                     PyUnicode_InternFromString("create_task"));
    PyTuple_SET_ITEM(state, RT_STR_ADD_DONE_CALLBACK,
                     PyUnicode_InternFromString("add_done_callback"));
    Py_DECREF(events);
    for (int i = 0; i < RT_NSTATE; i++) {
        if (PyTuple_GET_ITEM(state, i) == NULL) {
            Py_DECREF(state);
            return -1;
        }
    }
    PyObject *fn = PyCFunction_NewEx(&rt_spawn_def, state, NULL);
    Py_DECREF(state);
    if (fn == NULL)
        return -1;
    int rc = PyModule_AddObjectRef(module, "_rt_spawn", fn);
    Py_DECREF(fn);
    return rc;
}
