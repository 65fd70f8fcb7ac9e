/* What the two files of ingest's C scanner share: _keyscan.c (the KeySet and the module) lists the byte counts
 * of _keyscan_count.c among the module's functions. */
#ifndef MARGAY_KEYSCAN_H
#define MARGAY_KEYSCAN_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Hidden, like _columns.h's: the module's table reaches them directly, not through the shared object's PLT. */
__attribute__((visibility("hidden"))) PyObject *ks_count_newlines(PyObject *module, PyObject *arg);
__attribute__((visibility("hidden"))) PyObject *ks_count_records(PyObject *module, PyObject *arg);

#endif
