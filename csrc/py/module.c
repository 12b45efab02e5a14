/*
 * module.c - ringloop._core: module state, multi-phase init, and the
 * asyncio objects the binding reuses (Future, Task, format helpers).
 */
#include "py/module.h"

PyMODINIT_FUNC PyInit__core(void);

static int
import_attr(PyObject **out, const char *module, const char *name)
{
    PyObject *m = PyImport_ImportModule(module);
    if (m == NULL)
        return -1;
    *out = PyObject_GetAttrString(m, name);
    Py_DECREF(m);
    return *out ? 0 : -1;
}

static int
module_exec(PyObject *module)
{
    rl_state *state = rl_get_state(module);
    if (import_attr(&state->Future, "asyncio", "Future") < 0 ||
        import_attr(&state->Task, "asyncio", "Task") < 0 ||
        import_attr(&state->format_callback_source, "asyncio.format_helpers",
                    "_format_callback_source") < 0 ||
        import_attr(&state->extract_stack, "asyncio.format_helpers",
                    "extract_stack") < 0)
        return -1;
    state->kwnames_loop = Py_BuildValue("(s)", "loop");
    state->kwnames_task = Py_BuildValue("(sss)", "loop", "name", "context");
    state->str_report_error =
        PyUnicode_InternFromString("_report_callback_error");
    state->str_log_slow = PyUnicode_InternFromString("_log_slow_callback");
    state->str_slow_duration =
        PyUnicode_InternFromString("slow_callback_duration");
    state->str_create_task_slow =
        PyUnicode_InternFromString("_create_task_slow");
    if (!state->kwnames_loop || !state->kwnames_task ||
        !state->str_report_error || !state->str_log_slow ||
        !state->str_slow_duration || !state->str_create_task_slow)
        return -1;
    if (rl_handle_setup_types(module, state) < 0 ||
        rl_loop_setup_type(module, state) < 0 ||
        rl_transport_setup_type(module, state) < 0 ||
        rl_acceptor_setup_type(module, state) < 0 ||
        rl_datagram_setup_type(module, state) < 0 ||
        rl_sock_setup_types(module) < 0 ||
        rl_pipewriter_setup_type(module) < 0)
        return -1;
    return 0;
}

static int
module_traverse(PyObject *module, visitproc visit, void *arg)
{
    rl_state *state = rl_get_state(module);
    Py_VISIT(state->LoopType);
    Py_VISIT(state->HandleType);
    Py_VISIT(state->TimerHandleType);
    Py_VISIT(state->TransportType);
    Py_VISIT(state->AcceptorType);
    Py_VISIT(state->DatagramType);
    Py_VISIT(state->BufferedProtocol);
    Py_VISIT(state->minus_one);
    Py_VISIT(state->Future);
    Py_VISIT(state->Task);
    Py_VISIT(state->format_callback_source);
    Py_VISIT(state->extract_stack);
    Py_VISIT(state->kwnames_loop);
    Py_VISIT(state->kwnames_task);
    Py_VISIT(state->str_report_error);
    Py_VISIT(state->str_log_slow);
    Py_VISIT(state->str_slow_duration);
    Py_VISIT(state->str_create_task_slow);
    return 0;
}

static int
module_clear(PyObject *module)
{
    rl_state *state = rl_get_state(module);
    Py_CLEAR(state->LoopType);
    Py_CLEAR(state->HandleType);
    Py_CLEAR(state->TimerHandleType);
    Py_CLEAR(state->TransportType);
    Py_CLEAR(state->AcceptorType);
    Py_CLEAR(state->DatagramType);
    Py_CLEAR(state->BufferedProtocol);
    Py_CLEAR(state->minus_one);
    Py_CLEAR(state->Future);
    Py_CLEAR(state->Task);
    Py_CLEAR(state->format_callback_source);
    Py_CLEAR(state->extract_stack);
    Py_CLEAR(state->kwnames_loop);
    Py_CLEAR(state->kwnames_task);
    Py_CLEAR(state->str_report_error);
    Py_CLEAR(state->str_log_slow);
    Py_CLEAR(state->str_slow_duration);
    Py_CLEAR(state->str_create_task_slow);
    rl_handle_free_freelist(state);
    return 0;
}

static void
module_free(void *module)
{
    module_clear((PyObject *)module);
}

static PyObject *
live_objects(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    rl_state *state = rl_get_state(module);
    return Py_BuildValue("{snsn}", "open_loops", state->open_loops,
                         "handles", state->live_handles);
}

static PyMethodDef module_methods[] = {
    {"_live_objects", live_objects, METH_NOARGS,
     "Counts of open loops and live handles (for leak checks)."},
    {NULL},
};

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    /* No Py_mod_multiple_interpreters / Py_mod_gil claims yet: neither
     * sub-interpreters with their own GIL nor free-threaded builds are
     * tested (the handle freelist and the GIL-as-lock rules assume one GIL). */
    {0, NULL},
};

PyModuleDef rl_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ringloop._core",
    .m_doc = "The C core of ringloop: an asyncio event loop on io_uring.",
    .m_size = sizeof(rl_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&rl_module);
}
