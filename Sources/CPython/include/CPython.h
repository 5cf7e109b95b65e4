// The only C in the project: Python.h plus small wrappers for the parts of the
// CPython API that Swift cannot import (macros, variadic functions, static data).
#ifndef WAITRESS_CPYTHON_SHIM_H
#define WAITRESS_CPYTHON_SHIM_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

// A Python object that carries one opaque pointer to a retained Swift object.
typedef struct {
    PyObject_HEAD
    void *context;
} WPNativeObject;

// A callable with a target like WPNativeObject's, called through vectorcall
// (PEP 590): a call from Python builds no argument tuple.
typedef struct {
    PyObject_HEAD
    void *context;
    vectorcallfunc vectorcall;
} WPCallableObject;

// A type of such callables (not subclassable, no GC): dealloc frees instances.
PyObject *wp_callable_type(const char *name, destructor dealloc);
// A new instance whose calls go to `call`, with no target yet.
PyObject *wp_callable_new(PyObject *type, vectorcallfunc call);
static inline Py_ssize_t wp_vectorcall_nargs(size_t nargsf) { return PyVectorcall_NARGS(nargsf); }

static inline PyObject *wp_none(void) { return Py_None; }
static inline PyObject *wp_true(void) { return Py_True; }
static inline PyObject *wp_false(void) { return Py_False; }
static inline PyObject *wp_new_none(void) { Py_INCREF(Py_None); return Py_None; }
static inline PyObject *wp_new_bool(int v) { return PyBool_FromLong(v); }

static inline void wp_incref(PyObject *o) { Py_INCREF(o); }
static inline void wp_decref(PyObject *o) { Py_DECREF(o); }
static inline void wp_xdecref(PyObject *o) { Py_XDECREF(o); }
static inline PyTypeObject *wp_type(PyObject *o) { return Py_TYPE(o); }

static inline int wp_is_bytes(PyObject *o) { return PyBytes_Check(o); }
static inline int wp_is_unicode(PyObject *o) { return PyUnicode_Check(o); }
static inline int wp_is_tuple(PyObject *o) { return PyTuple_Check(o); }
static inline int wp_is_list(PyObject *o) { return PyList_Check(o); }
static inline int wp_is_exact_list(PyObject *o) { return PyList_CheckExact(o); }
static inline int wp_is_exact_tuple(PyObject *o) { return PyTuple_CheckExact(o); }
static inline int wp_is_long(PyObject *o) { return PyLong_Check(o); }
static inline int wp_is_dict(PyObject *o) { return PyDict_Check(o); }
static inline int wp_type_check(PyObject *o, PyObject *type) { return PyObject_TypeCheck(o, (PyTypeObject *)type); }

static inline Py_ssize_t wp_bytes_size(PyObject *o) { return PyBytes_GET_SIZE(o); }
static inline char *wp_bytes_data(PyObject *o) { return PyBytes_AS_STRING(o); }
// The bytes object whose data wp_bytes_data returned (BorrowedBytes.swift).
static inline PyObject *wp_bytes_owner(void *data) {
    return (PyObject *)((char *)data - offsetof(PyBytesObject, ob_sval));
}
static inline Py_ssize_t wp_list_size(PyObject *o) { return PyList_GET_SIZE(o); }
static inline PyObject *wp_list_item(PyObject *o, Py_ssize_t i) { return PyList_GET_ITEM(o, i); }
static inline Py_ssize_t wp_tuple_size(PyObject *o) { return PyTuple_GET_SIZE(o); }
static inline PyObject *wp_tuple_item(PyObject *o, Py_ssize_t i) { return PyTuple_GET_ITEM(o, i); }

// The UTF-8 bytes of an all-ASCII str without copying, or NULL if it has other
// characters (callers then encode as latin-1, as Waitress does for headers).
static inline const char *wp_unicode_ascii(PyObject *o, Py_ssize_t *size) {
    if (!PyUnicode_IS_ASCII(o)) return NULL;
    *size = PyUnicode_GET_LENGTH(o);
    return (const char *)PyUnicode_DATA(o);
}

// Calls with one or two positional arguments through vectorcall (3.9+): no
// argument tuple, and no tuple unpacking for callees that take vectorcall
// (Python functions, types such as io.BytesIO).
static inline PyObject *wp_call1(PyObject *callable, PyObject *a) {
    PyObject *args[2] = {NULL, a};
    return PyObject_Vectorcall(callable, args + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}
static inline PyObject *wp_call2(PyObject *callable, PyObject *a, PyObject *b) {
    PyObject *args[3] = {NULL, a, b};
    return PyObject_Vectorcall(callable, args + 1, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

// glibc malloc tuning for the serving process (see Engine.run); returns 0 when
// the platform has no mallopt or the user set MALLOC_* variables.
int wp_tune_malloc(int mmap_threshold, int trim_threshold);

// Builds a module from a static definition (PyModuleDef_HEAD_INIT is a macro).
PyObject *wp_module_create(const char *name, const char *doc, PyMethodDef *methods);

// Calls logger.<method>(message, exc_info=exc) where exc may be NULL.
int wp_log(PyObject *logger, const char *method, PyObject *message, PyObject *exc);

// PyErr_Fetch/Restore are deprecated in 3.12 but the replacement does not exist
// in 3.9-3.11: one place chooses.
PyObject *wp_err_fetch(void);          // new reference to the raised exception or NULL
void wp_err_restore(PyObject *exc);    // steals the reference
int wp_exception_matches(PyObject *exc, PyObject *type);

static const unsigned long wp_tpflags_default = Py_TPFLAGS_DEFAULT;
static const unsigned long wp_tpflags_basetype = Py_TPFLAGS_BASETYPE;

// Allocates an instance of a type made by PyType_FromSpec (tp_alloc).
static inline PyObject *wp_alloc(PyTypeObject *type) { return type->tp_alloc(type, 0); }
// Frees an instance and drops the reference it held on its heap type.
static inline void wp_free(PyObject *self) {
    PyTypeObject *type = Py_TYPE(self);
    type->tp_free(self);
    Py_DECREF(type);
}
static inline void **wp_context_slot(PyObject *self) { return &((WPNativeObject *)self)->context; }

#endif
