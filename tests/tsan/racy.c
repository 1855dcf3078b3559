/* The TSan job's control: a deliberately racy extension.
 *
 * bump() increments a plain, unsynchronised C global.  Called from several Python threads
 * with the GIL off, that is a data race ThreadSanitizer must report; `make tsan` builds this
 * module exactly as ftsync's extensions are built (setuptools, the interpreter's sysconfig
 * flags) and fails unless the report appears.  If it does not, the job has stopped
 * instrumenting and its clean result means nothing.  Never shipped: it lives under tests/. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static long hits;  /* deliberately not atomic, not locked */

static PyObject *bump(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    hits++;
    return PyLong_FromLong(hits);
}

static PyMethodDef methods[] = {
    {"bump", bump, METH_NOARGS, "Increment a shared counter with no synchronisation (a data race)."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
#ifdef Py_GIL_DISABLED
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ftsync_racy", "TSan control: a data race on purpose.", 0, methods,
    slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_ftsync_racy(void) { return PyModuleDef_Init(&module); }
