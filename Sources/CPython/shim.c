#include "CPython.h"

#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

int wp_tune_malloc(int mmap_threshold, int trim_threshold) {
#if defined(__GLIBC__)
    if (getenv("MALLOC_MMAP_THRESHOLD_") != NULL || getenv("MALLOC_TRIM_THRESHOLD_") != NULL ||
        getenv("GLIBC_TUNABLES") != NULL) {
        return 0;
    }
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1;
#else
    (void)mmap_threshold;
    (void)trim_threshold;
    return 0;
#endif
}

static PyModuleDef module_def;

PyObject *wp_module_create(const char *name, const char *doc, PyMethodDef *methods) {
    PyModuleDef def = {
        PyModuleDef_HEAD_INIT,
        name,
        doc,
        -1,
        methods,
    };
    module_def = def;
    return PyModule_Create(&module_def);
}

int wp_log(PyObject *logger, const char *method, PyObject *message, PyObject *exc) {
    PyObject *func = PyObject_GetAttrString(logger, method);
    if (func == NULL) return -1;
    PyObject *args = PyTuple_Pack(1, message);
    PyObject *kwargs = NULL;
    if (exc != NULL) {
        kwargs = Py_BuildValue("{s:O}", "exc_info", exc);
    }
    PyObject *result = NULL;
    if (args != NULL && (exc == NULL || kwargs != NULL)) {
        result = PyObject_Call(func, args, kwargs);
    }
    Py_DECREF(func);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    if (result == NULL) return -1;
    Py_DECREF(result);
    return 0;
}

PyObject *wp_err_fetch(void) {
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

void wp_err_restore(PyObject *exc) {
    if (exc == NULL) return;
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyObject *type = (PyObject *)Py_TYPE(exc);
    Py_INCREF(type);
    PyObject *tb = PyException_GetTraceback(exc);
    PyErr_Restore(type, exc, tb);
#endif
}

int wp_exception_matches(PyObject *exc, PyObject *type) {
    return exc != NULL && PyErr_GivenExceptionMatches(exc, type);
}
