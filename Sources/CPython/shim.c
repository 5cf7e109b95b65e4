#include "CPython.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h>
#define WP_T_PYSSIZET T_PYSSIZET
#define WP_READONLY READONLY
#else
#define WP_T_PYSSIZET Py_T_PYSSIZET
#define WP_READONLY Py_READONLY
#endif
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

// __vectorcalloffset__ tells PyType_FromSpec where instances keep their
// vectorcall function (3.9+). tp_call is PyVectorcall_Call, for callers that
// come with a tuple.
static PyMemberDef callable_members[] = {
    {"__vectorcalloffset__", WP_T_PYSSIZET, offsetof(WPCallableObject, vectorcall), WP_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyObject *wp_callable_type(const char *name, destructor dealloc) {
    PyType_Slot slots[] = {
        {Py_tp_dealloc, (void *)dealloc},
        {Py_tp_call, (void *)PyVectorcall_Call},
        {Py_tp_members, callable_members},
        {0, NULL},
    };
    PyType_Spec spec = {
        strdup(name),  // a heap type's tp_name points here for the life of the process
        (int)sizeof(WPCallableObject),
        0,
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
        slots,
    };
    return PyType_FromSpec(&spec);
}

PyObject *wp_callable_new(PyObject *type, vectorcallfunc call) {
    PyTypeObject *t = (PyTypeObject *)type;
    PyObject *object = t->tp_alloc(t, 0);
    if (object == NULL) return NULL;
    ((WPCallableObject *)object)->context = NULL;
    ((WPCallableObject *)object)->vectorcall = call;
    return object;
}
