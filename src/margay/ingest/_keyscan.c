/* The batch-wide undeclared-key look of ingest (ingest/keyscan.py), in one pass over the NDJSON bytes.
 *
 * For each line it walks only the top-level keys of the object and compares each with the declared set;
 * string values are skipped with memchr, nested values by bracket depth (skipping their strings). It does not
 * validate JSON -- DuckDB's reader does, and refuses the whole batch on a bad line -- it only has to agree
 * with DuckDB's json_keys on lines the reader accepts. Whatever it does not understand (a line that is not
 * one object, an escape in a key, a comment, a trailing comma, an object running past its line) makes it
 * answer UNSURE, and the caller asks DuckDB.
 *
 * KeySet(keys: tuple[str, ...]).scan(body: bytes-like) -> 0 (every top-level key declared), 1 (a top-level
 * key is not declared), 2 (unsure). The GIL is released while scanning. Beside it, count_newlines(body) and
 * count_records(body) (the lines that are not blank), both without the GIL (_keyscan_count.c).
 */
#include "_keyscan.h"
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum { CLEAN = 0, UNDECLARED = 1, UNSURE = 2 };

typedef struct {
    const char *ptr; /* the key's UTF-8 bytes, followed by '":' */
    Py_ssize_t len;  /* without the '":' */
    int plain;       /* no '"' or '\\' in it: the fast path may match it with its '":' */
} Key;

typedef struct {
    PyObject_HEAD
    PyObject *owner; /* the tuple of UTF-8 bytes the keys point into */
    Key *keys;
    Py_ssize_t nkeys;
    int32_t *table; /* open addressing: key index + 1, 0 empty */
    uint32_t mask;
} KeySet;

static uint32_t hash_key(const char *p, Py_ssize_t n) {
    uint32_t h = 2166136261u ^ (uint32_t)n;
    for (Py_ssize_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    }
    return h;
}

/* index of the key, or -1 */
static int32_t find_key(const KeySet *s, const char *p, Py_ssize_t n) {
    uint32_t i = hash_key(p, n) & s->mask;
    for (;;) {
        int32_t slot = s->table[i];
        if (slot == 0) {
            return -1;
        }
        const Key *k = &s->keys[slot - 1];
        if (k->len == n && memcmp(k->ptr, p, (size_t)n) == 0) {
            return slot - 1;
        }
        i = (i + 1) & s->mask;
    }
}

/* Whether a[0:n] == b[0:n]; `b` (a key) is padded with zeros to a multiple of 16 bytes, and `a` may be read
 * up to `end`. The keys of a record are compared with 16-byte loads where the body has room. */
static inline int same(const char *a, const char *b, Py_ssize_t n, const char *end) {
#ifdef __SSE2__
    if (end - a >= ((n + 15) & ~(Py_ssize_t)15)) {
        while (n > 0) {
            __m128i x = _mm_loadu_si128((const __m128i *)a);
            __m128i y = _mm_loadu_si128((const __m128i *)b);
            unsigned m = ~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) & 0xFFFFu;
            if (n < 16) {
                m &= (1u << n) - 1u;
            }
            if (m != 0) {
                return 0;
            }
            a += 16;
            b += 16;
            n -= 16;
        }
        return 1;
    }
#endif
    (void)end;
    return memcmp(a, b, (size_t)n) == 0;
}

/* What may end a number, true, false or null (1), and what may not be in one (2); 0 for the rest. */
static unsigned char scalar_class[256];

static void init_classes(void) {
    scalar_class[(unsigned char)','] = 1;
    scalar_class[(unsigned char)'}'] = 1;
    scalar_class[(unsigned char)' '] = 1;
    scalar_class[(unsigned char)'\t'] = 1;
    scalar_class[(unsigned char)'\r'] = 1;
    const char *bad = "\"{[]\n/";
    for (const char *c = bad; *c; c++) {
        scalar_class[(unsigned char)*c] = 2;
    }
}

static inline int is_ws(char c) {
    return (unsigned char)c <= ' ' && (c == ' ' || c == '\t' || c == '\r'); /* most bytes fail the first test */
}

/* The first '"' or '\\' in [q, end), or end. SSE2 (x86-64's baseline) takes 16 bytes a step: a flow
 * record's ~110 strings are mostly shorter than a memchr call is worth. */
static inline const char *quote_or_backslash(const char *q, const char *end) {
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i slash = _mm_set1_epi8('\\');
    while (end - q >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)q);
        int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)));
        if (m != 0) {
            return q + __builtin_ctz((unsigned)m);
        }
        q += 16;
    }
#endif
    while (q < end && *q != '"' && *q != '\\') {
        q++;
    }
    return q;
}

/* p at the opening quote; returns the closing quote (NULL when the string does not close before `end`), and
 * whether the string holds an escape. */
static inline const char *skip_string(const char *p, const char *end, int *escaped) {
    const char *q = p + 1;
    for (;;) {
        q = quote_or_backslash(q, end);
        if (q >= end) {
            return NULL;
        }
        if (*q == '"') {
            return q;
        }
        *escaped = 1;
        if (end - q <= 2) {
            return NULL; /* the body ends at the backslash or its character: no room for a closing quote */
        }
        q += 2; /* the escaped character: '"' or '\\' among others; \uXXXX's digits hold neither */
    }
}

/* Per-line scan state: the key that followed each key in the last record (most records list the same keys
 * in the same order, so a memcmp against the prediction usually spares the hash). */
static int scan(const KeySet *s, const char *p, const char *end, int32_t *next_of, int32_t *first) {
    while (p < end) {
        /* one line */
        while (p < end && (is_ws(*p) || *p == '\n')) {
            p++;
        }
        if (p >= end) {
            break;
        }
        if (*p != '{') {
            return UNSURE;
        }
        p++;
        int32_t prev = -1;
        int expect_key = 1; /* right after '{' a '}' may close it */
        for (;;) {
            while (p < end && is_ws(*p)) {
                p++;
            }
            if (p >= end) {
                return UNSURE;
            }
            if (*p == '}' && expect_key == 1) { /* the empty object */
                p++;
                break;
            }
            if (*p != '"') {
                return UNSURE; /* a trailing comma, a comment, anything odd */
            }
            int escaped = 0;
            const char *q;
            int32_t guess = prev < 0 ? *first : next_of[prev];
            const Key *g = guess >= 0 ? &s->keys[guess] : NULL;
            if (g != NULL && g->plain && end - p > g->len + 2 && same(p + 1, g->ptr, g->len + 2, end)) {
                /* the predicted key, its closing quote and the colon: no search, no hash */
                prev = guess;
                p += g->len + 3;
            } else {
                q = skip_string(p, end, &escaped);
                if (q == NULL) {
                    return UNSURE;
                }
                const char *kp = p + 1;
                Py_ssize_t kn = q - kp;
                if (escaped) {
                    return UNSURE; /* json_keys decodes escapes in keys: DuckDB decides */
                }
                int32_t idx = find_key(s, kp, kn);
                if (idx < 0) {
                    return UNDECLARED; /* the caller converts with `_extra`: no need to look further */
                }
                if (prev < 0) {
                    *first = idx;
                } else {
                    next_of[prev] = idx;
                }
                prev = idx;
                p = q + 1;
                while (p < end && is_ws(*p)) {
                    p++;
                }
                if (p >= end || *p != ':') {
                    return UNSURE;
                }
                p++;
            }
            while (p < end && is_ws(*p)) {
                p++;
            }
            if (p >= end) {
                return UNSURE;
            }
            /* the value */
            char c = *p;
            if (c == '"') {
                q = skip_string(p, end, &escaped);
                if (q == NULL) {
                    return UNSURE;
                }
                p = q + 1;
            } else if (c == '{' || c == '[') {
                Py_ssize_t depth = 0; /* bounded by the body's length: no overflow */
                for (;;) {
                    if (p >= end) {
                        return UNSURE;
                    }
                    c = *p;
                    if (c == '"') {
                        q = skip_string(p, end, &escaped);
                        if (q == NULL) {
                            return UNSURE;
                        }
                        p = q + 1;
                        continue;
                    }
                    if (c == '{' || c == '[') {
                        depth++;
                    } else if (c == '}' || c == ']') {
                        if (--depth == 0) {
                            p++;
                            break;
                        }
                    } else if (c == '\n' || c == '/') {
                        return UNSURE;
                    }
                    p++;
                }
            } else {
                /* a number, true, false, null (or NaN/Infinity, which the reader may allow) */
                unsigned char k = 0;
                while (p < end && (k = scalar_class[(unsigned char)*p]) == 0) {
                    p++;
                }
                if (k == 2) {
                    return UNSURE;
                }
            }
            while (p < end && is_ws(*p)) {
                p++;
            }
            if (p >= end) {
                return UNSURE;
            }
            if (*p == ',') {
                p++;
                expect_key = 2; /* a key must follow */
                continue;
            }
            if (*p == '}') {
                p++;
                break;
            }
            return UNSURE;
        }
        /* nothing but whitespace may follow the object on its line */
        while (p < end && is_ws(*p)) {
            p++;
        }
        if (p < end) {
            if (*p != '\n') {
                return UNSURE;
            }
            p++;
        }
    }
    return CLEAN;
}

static PyObject *KeySet_scan(KeySet *self, PyObject *arg) {
    if (self->table == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "KeySet was not initialised");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    int32_t stack_next[512];
    int32_t *next_of = stack_next;
    if (self->nkeys > 512) {
        next_of = PyMem_RawMalloc(sizeof(int32_t) * (size_t)self->nkeys);
        if (next_of == NULL) {
            PyBuffer_Release(&view);
            return PyErr_NoMemory();
        }
    }
    for (Py_ssize_t i = 0; i < self->nkeys; i++) {
        next_of[i] = -1;
    }
    int32_t first = -1;
    int r;
    const char *p = view.buf;
    Py_BEGIN_ALLOW_THREADS
    r = scan(self, p, p + view.len, next_of, &first);
    Py_END_ALLOW_THREADS
    if (next_of != stack_next) {
        PyMem_RawFree(next_of);
    }
    PyBuffer_Release(&view);
    return PyLong_FromLong(r);
}

/* Back to the uninitialised state (scan refuses it, __init__ may run again): no half-built set answers. */
static void KeySet_forget(KeySet *self) {
    PyMem_Free(self->keys);
    PyMem_Free(self->table);
    self->keys = NULL;
    self->table = NULL;
    self->nkeys = 0;
    self->mask = 0;
    Py_CLEAR(self->owner);
}

static int KeySet_init(KeySet *self, PyObject *args, PyObject *kwds) {
    PyObject *keys;
    static char *kwlist[] = {"keys", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!", kwlist, &PyTuple_Type, &keys)) {
        return -1;
    }
    if (self->owner != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "KeySet is already initialised");
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(keys);
    if (n > (Py_ssize_t)1 << 24) { /* the table's size below must not overflow */
        PyErr_SetString(PyExc_ValueError, "too many keys");
        return -1;
    }
    uint32_t size = 8;
    while (size < (uint32_t)n * 4) {
        size <<= 1;
    }
    self->owner = PyTuple_New(n);
    self->keys = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Key));
    self->table = PyMem_Calloc(size, sizeof(int32_t));
    if (self->owner == NULL || self->keys == NULL || self->table == NULL) {
        if (self->owner != NULL) {
            PyErr_NoMemory();
        }
        goto fail;
    }
    self->mask = size - 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(keys, i);
        if (!PyUnicode_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "keys must be str");
            goto fail;
        }
        Py_ssize_t kn;
        const char *utf8 = PyUnicode_AsUTF8AndSize(item, &kn);
        if (utf8 == NULL) {
            goto fail;
        }
        Py_ssize_t padded = (kn + 2 + 15) & ~(Py_ssize_t)15;
        PyObject *b = PyBytes_FromStringAndSize(NULL, padded);
        if (b == NULL) {
            goto fail;
        }
        PyTuple_SET_ITEM(self->owner, i, b);
        char *kp = PyBytes_AS_STRING(b);
        memcpy(kp, utf8, (size_t)kn);
        kp[kn] = '"';
        kp[kn + 1] = ':';
        memset(kp + kn + 2, 0, (size_t)(padded - kn - 2));
        if (find_key(self, kp, kn) >= 0) {
            continue; /* a duplicate: the first one stands */
        }
        self->keys[self->nkeys].ptr = kp;
        self->keys[self->nkeys].len = kn;
        self->keys[self->nkeys].plain = memchr(kp, '"', (size_t)kn) == NULL && memchr(kp, '\\', (size_t)kn) == NULL;
        uint32_t h = hash_key(kp, kn) & self->mask;
        while (self->table[h] != 0) {
            h = (h + 1) & self->mask;
        }
        self->table[h] = (int32_t)(self->nkeys + 1);
        self->nkeys++;
    }
    return 0;
fail:
    KeySet_forget(self);
    return -1;
}

static void KeySet_dealloc(KeySet *self) {
    KeySet_forget(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef KeySet_methods[] = {
    {"scan", (PyCFunction)KeySet_scan, METH_O,
     "scan(body) -> 0 every top-level key declared, 1 an undeclared key, 2 unsure"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject KeySetType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "margay.ingest._keyscan.KeySet",
    .tp_basicsize = sizeof(KeySet),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The declared top-level keys of a log type, and the scan of NDJSON batches against them.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)KeySet_init,
    .tp_dealloc = (destructor)KeySet_dealloc,
    .tp_methods = KeySet_methods,
};

static PyMethodDef keyscan_functions[] = {
    {"count_newlines", (PyCFunction)ks_count_newlines, METH_O, "count_newlines(body) -> the number of b'\\n' in body"},
    {"count_records", (PyCFunction)ks_count_records, METH_O,
     "count_records(body) -> the number of lines of body holding a byte that is not ASCII whitespace"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef keyscan_module = {
    PyModuleDef_HEAD_INIT, "_keyscan", "The undeclared-key look of ingest, in C (see ingest/keyscan.py).", -1,
    keyscan_functions, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__keyscan(void) {
    init_classes();
    if (PyType_Ready(&KeySetType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&keyscan_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&KeySetType);
    if (PyModule_AddObject(m, "KeySet", (PyObject *)&KeySetType) < 0) {
        Py_DECREF(&KeySetType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
