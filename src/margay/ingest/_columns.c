/* NDJSON records straight into Arrow columns: the typed read of ingest for log types whose declared columns
 * are integers, strings, string maps, JSON values, lists and structs of them (flows, L7, DNS, audit;
 * ingest/columns.py).
 *
 * DuckDB's read_json (the reader it replaces on this path) spends ~2.5 us of a 1.5 kB flow record's conversion
 * on the parse; this parser takes ~1 us, and it has no fixed cost per statement (binding read_json's 63 typed
 * columns cost a small group commit 5-7 ms).
 *
 * It accepts only what it can read exactly as read_json would and declines everything else, so that the caller
 * converts the batch the old way (which names bad lines): a value of another JSON type than its column's (a
 * float, -0 or an integer past 64 bits for a string -- an integer's digits are its text, as read_json writes
 * them --, a float or an integer past 64 bits for an integer, true/false anywhere), a key it does not know or
 * that repeats in one object, an escape in a key, \u0000 or a lone surrogate in a string, bytes that are not
 * UTF-8, a line that is not one object. Blank lines (spaces, tabs, CRs only) are skipped as the reader skips
 * them. Nesting is bounded by the declared types, and by MAX_SKIP_DEPTH inside a JSON value.
 *
 * A MAP(VARCHAR, VARCHAR) is an object of string (or integer, or null) values, its entries in the object's
 * order; a repeated key (read_json refuses it) or more than MAX_MAP_KEYS keys decline. A JSON value is kept as
 * its text as sent, checked as skip_value checks it; the SELECT normalizes it with json(), which writes it as
 * read_json does (minified, numbers and escapes as yyjson writes them).
 *
 * Parser(spec) where spec is a tuple of (key: str, kind: int, children: tuple) -- kind 1 BIGINT, 2 VARCHAR,
 * 3 a list (children: one (name, kind, children) for its elements), 4 a struct (children: its fields), 5 a key
 * whose value is checked and dropped (read_json's columns do not hold it; its column in the answer is None),
 * 6 MAP(VARCHAR, VARCHAR), 7 JSON (the value's text), 8 the text as sent of the field named before it (a slice
 * of the body, `null` included; null when the key is absent: what a plan keeps as sent), 9 BOOLEAN (true/false),
 * 10 VARCHAR of IP addresses (a string that is not one as OpenSearch's `ip` type takes it, or an integer,
 * declines: the conversion's check then names the line; mc_ip_ok in _columns_ip.c).
 * Parser(spec, lenient=True) skips the keys its spec lacks (their values checked, as dropped keys' are) instead
 * of declining: the look at a batch's IP fields alone (ingest/columns.py IpVouch).
 * parse(bodies: sequence of bytes-like) -> None (declined) or (rows, columns): per column, as Arrow lays it
 * out, (validity bytes or None, null count, then int64 values or value bits | int32 offsets + string bytes |
 * int32 offsets + the element column | a tuple of the field columns | int32 offsets + (keys, values) for a
 * map). The GIL is released while parsing.
 */
#include "_columns.h"

/* ---- the column tree: built from the spec, emptied per parse, handed to Python as bytes ---- */

/* Kept between parses while all of a parser's buffers hold at most this much (reallocating them per batch cost
 * ~10 % in page faults); a larger batch's are freed after it. */
#define KEEP_BYTES ((size_t)16 << 20)

/* A parse's buffers may hold at most ROOM_BYTES + ROOM_PER_BYTE * its bodies' bytes (mc_room), else it declines:
 * an attacker's 100 MB body of `{}` lines would otherwise take ~14 GB (and as much again handed to Python).
 * Real records take ~0.6 byte a byte (flows and L7 fixtures), at most twice that as capacity; a sparser batch
 * past 4 bytes a byte goes the reader's way (a 100 MB body may hold ~464 MB of columns here at most). */
#define ROOM_BYTES ((size_t)64 << 20)
#define ROOM_PER_BYTE 4

static size_t col_capacity(const Col *c) {
    size_t n = c->valid.cap + c->data.cap + c->offs.cap + c->scratch.cap;
    if (c->child != NULL) {
        n += col_capacity(c->child);
    }
    for (Py_ssize_t i = 0; i < c->nfields; i++) {
        n += col_capacity(&c->fields[i]);
    }
    return n;
}

static void buf_reset(Buf *b, int keep) {
    if (!keep) {
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
    b->len = 0;
}

/* Empty: the buffers' lengths to 0, and freed unless `keep` (and small enough to keep). */
static void col_clear(Col *c, int keep) {
    buf_reset(&c->valid, keep);
    buf_reset(&c->data, keep);
    buf_reset(&c->offs, keep);
    buf_reset(&c->scratch, keep);
    c->rows = c->nulls = 0;
    c->filled = -1;
    if (c->child != NULL) {
        col_clear(c->child, keep);
    }
    for (Py_ssize_t i = 0; i < c->nfields; i++) {
        col_clear(&c->fields[i], keep);
    }
}

static int col_start(Col *c) {
    if (c->kind == K_STR || c->kind == K_IP || c->kind == K_LIST || c->kind == K_JSON || c->kind == K_TEXT ||
        c->kind == K_MAP) {
        if (push_offset(&c->offs, 0) != OK) {
            return NOMEM;
        }
    }
    if (c->child != NULL && col_start(c->child) != OK) {
        return NOMEM;
    }
    for (Py_ssize_t i = 0; i < c->nfields; i++) {
        if (col_start(&c->fields[i]) != OK) {
            return NOMEM;
        }
    }
    return OK;
}

static void col_free(Col *c) {
    col_clear(c, 0);
    free(c->key);
    if (c->child != NULL) {
        col_free(c->child);
        free(c->child);
    }
    for (Py_ssize_t i = 0; i < c->nfields; i++) {
        col_free(&c->fields[i]);
    }
    free(c->fields);
    free(c->table);
}

static int col_build(Col *c, PyObject *spec, int depth);

static void col_lenient(Col *c) {
    c->lenient = 1;
    if (c->child != NULL) {
        col_lenient(c->child);
    }
    for (Py_ssize_t i = 0; i < c->nfields; i++) {
        col_lenient(&c->fields[i]);
    }
}

/* A map's entries: its keys and its values, two string columns. */
static int map_build(Col *m) {
    static const char *names[2] = {"key", "value"};
    m->fields = calloc(2, sizeof(Col));
    if (m->fields == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    m->nfields = 2;
    for (int i = 0; i < 2; i++) {
        Col *f = &m->fields[i];
        f->kind = K_STR;
        f->filled = -1;
        f->key_len = (Py_ssize_t)strlen(names[i]);
        f->key = malloc((size_t)f->key_len + 1);
        if (f->key == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(f->key, names[i], (size_t)f->key_len + 1);
    }
    return 0;
}

static int fields_build(Col *s, PyObject *children, int depth) {
    Py_ssize_t n = PyTuple_GET_SIZE(children);
    if (n == 0 || n > 4096) {
        PyErr_SetString(PyExc_ValueError, "a struct needs 1 to 4096 fields");
        return -1;
    }
    uint32_t size = 8;
    while (size < (uint32_t)n * 4) {
        size <<= 1;
    }
    s->fields = calloc((size_t)n, sizeof(Col));
    s->table = calloc(size, sizeof(int32_t));
    if (s->fields == NULL || s->table == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->mask = size - 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        s->nfields = i + 1; /* what col_free must free, should this one fail */
        if (col_build(&s->fields[i], PyTuple_GET_ITEM(children, i), depth + 1) < 0) {
            return -1;
        }
        Col *f = &s->fields[i];
        Py_ssize_t twin = mc_find_field(s, f->key, f->key_len);
        if (f->kind == K_TEXT) { /* not a key of its own: its field's value's text */
            if (twin < 0 || s->fields[twin].text >= 0) {
                PyErr_SetString(PyExc_ValueError, "a text column follows its field, once");
                return -1;
            }
            s->fields[twin].text = i;
            continue;
        }
        if (twin >= 0) {
            PyErr_SetString(PyExc_ValueError, "a field name repeats");
            return -1;
        }
        uint32_t h = mc_hash_key(f->key, f->key_len) & s->mask;
        while (s->table[h] != 0) {
            h = (h + 1) & s->mask;
        }
        s->table[h] = (int32_t)(i + 1);
    }
    return 0;
}

static int col_build(Col *c, PyObject *spec, int depth) {
    PyObject *name, *children;
    int kind;
    c->filled = -1;
    c->text = -1;
    c->depth = depth;
    if (depth > MAX_SPEC_DEPTH) {
        PyErr_SetString(PyExc_ValueError, "the spec nests too deep");
        return -1;
    }
    if (!PyTuple_Check(spec) || !PyArg_ParseTuple(spec, "UiO!", &name, &kind, &PyTuple_Type, &children)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "a spec entry is (name, kind, children)");
        }
        return -1;
    }
    Py_ssize_t n;
    const char *utf8 = PyUnicode_AsUTF8AndSize(name, &n);
    if (utf8 == NULL) {
        return -1;
    }
    c->key = malloc((size_t)n + 1);
    if (c->key == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(c->key, utf8, (size_t)n + 1);
    c->key_len = n;
    c->kind = kind;
    switch (kind) {
    case K_INT:
    case K_STR:
    case K_IP:
    case K_SKIP:
    case K_JSON:
    case K_TEXT:
    case K_BOOL:
        return 0;
    case K_MAP:
        return map_build(c);
    case K_LIST:
        if (PyTuple_GET_SIZE(children) != 1) {
            PyErr_SetString(PyExc_ValueError, "a list has one element type");
            return -1;
        }
        c->child = calloc(1, sizeof(Col));
        if (c->child == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        return col_build(c->child, PyTuple_GET_ITEM(children, 0), depth + 1);
    case K_STRUCT:
        return fields_build(c, children, depth);
    default:
        PyErr_SetString(PyExc_ValueError, "unknown column kind");
        return -1;
    }
}

static PyObject *buf_bytes(const Buf *b) {
    return PyBytes_FromStringAndSize(b->p ? b->p : "", (Py_ssize_t)b->len);
}

static PyObject *col_out(const Col *c) {
    PyObject *valid;
    if (c->kind == K_SKIP) {
        return Py_NewRef(Py_None);
    }
    if (c->nulls) {
        valid = buf_bytes(&c->valid);
        if (valid == NULL) {
            return NULL;
        }
    } else {
        valid = Py_NewRef(Py_None);
    }
    switch (c->kind) {
    case K_INT:
    case K_BOOL:
        return Py_BuildValue("(NnN)", valid, c->nulls, buf_bytes(&c->data));
    case K_STR:
    case K_IP:
    case K_JSON:
    case K_TEXT:
        return Py_BuildValue("(NnNN)", valid, c->nulls, buf_bytes(&c->offs), buf_bytes(&c->data));
    case K_MAP:
        return Py_BuildValue("(NnN(NN))", valid, c->nulls, buf_bytes(&c->offs), col_out(&c->fields[0]),
                             col_out(&c->fields[1]));
    case K_LIST:
        return Py_BuildValue("(NnNN)", valid, c->nulls, buf_bytes(&c->offs), col_out(c->child));
    default: {
        PyObject *fields = PyTuple_New(c->nfields);
        if (fields == NULL) {
            Py_DECREF(valid);
            return NULL;
        }
        for (Py_ssize_t i = 0; i < c->nfields; i++) {
            PyObject *f = col_out(&c->fields[i]);
            if (f == NULL) {
                Py_DECREF(valid);
                Py_DECREF(fields);
                return NULL;
            }
            PyTuple_SET_ITEM(fields, i, f);
        }
        return Py_BuildValue("(NnN)", valid, c->nulls, fields);
    }
    }
}

typedef struct {
    PyObject_HEAD
    Col root; /* a struct whose fields are the columns */
    int ready;
    PyThread_type_lock lock; /* one parse at a time: the tree is the parse's scratch */
} Parser;

static int Parser_init(Parser *self, PyObject *args, PyObject *kwds) {
    PyObject *spec;
    int lenient = 0;
    static char *kwlist[] = {"spec", "lenient", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!|p", kwlist, &PyTuple_Type, &spec, &lenient)) {
        return -1;
    }
    if (self->ready || self->lock != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Parser is already initialised");
        return -1;
    }
    self->lock = PyThread_allocate_lock();
    if (self->lock == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->root.kind = K_STRUCT;
    self->root.filled = -1;
    self->root.text = -1;
    if (fields_build(&self->root, spec, 0) < 0) {
        return -1;
    }
    if (lenient) {
        col_lenient(&self->root);
    }
    self->ready = 1;
    return 0;
}

static PyObject *Parser_parse(Parser *self, PyObject *arg) {
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Parser was not initialised");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(arg, "parse() takes a sequence of bytes-like bodies");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t nb = PySequence_Fast_GET_SIZE(seq);
    Py_buffer *views = PyMem_Calloc((size_t)(nb ? nb : 1), sizeof(Py_buffer));
    if (views == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    Py_ssize_t got = 0;
    PyObject *result = NULL;
    for (; got < nb; got++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, got), &views[got], PyBUF_SIMPLE) < 0) {
            goto done;
        }
    }
    int r = OK;
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    size_t room = ROOM_BYTES, held = col_capacity(&self->root);
    for (Py_ssize_t i = 0; i < nb; i++) {
        size_t more = (size_t)views[i].len;
        room = more > (SIZE_MAX - room) / ROOM_PER_BYTE ? SIZE_MAX : room + more * ROOM_PER_BYTE;
    }
    mc_room = room > held ? room - held : 0; /* (this thread's: the parse runs on it) */
    mc_over = 0;
    col_clear(&self->root, 1);
    r = col_start(&self->root);
    for (Py_ssize_t i = 0; i < nb && r == OK; i++) {
        const char *p = views[i].buf;
        r = mc_parse_body(&self->root, p, p + views[i].len);
    }
    if (r == NOMEM && mc_over) {
        r = DECLINE; /* past its room, not out of memory */
    }
    Py_END_ALLOW_THREADS
    if (r == OK) {
        PyObject *cols = PyTuple_New(self->root.nfields);
        if (cols != NULL) {
            Py_ssize_t i = 0;
            for (; i < self->root.nfields; i++) {
                PyObject *c = col_out(&self->root.fields[i]);
                if (c == NULL) {
                    break;
                }
                PyTuple_SET_ITEM(cols, i, c);
            }
            if (i == self->root.nfields) {
                result = Py_BuildValue("(nN)", self->root.rows, cols);
            } else {
                Py_DECREF(cols);
            }
        }
    } else if (r == NOMEM) {
        PyErr_NoMemory();
    } else {
        result = Py_NewRef(Py_None);
    }
    col_clear(&self->root, col_capacity(&self->root) <= KEEP_BYTES); /* the values do not outlive the parse */
    PyThread_release_lock(self->lock);
done:
    for (Py_ssize_t i = 0; i < got; i++) {
        PyBuffer_Release(&views[i]);
    }
    PyMem_Free(views);
    Py_DECREF(seq);
    return result;
}

static void Parser_dealloc(Parser *self) {
    col_free(&self->root);
    if (self->lock != NULL) {
        PyThread_free_lock(self->lock);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Parser_methods[] = {
    {"parse", (PyCFunction)Parser_parse, METH_O,
     "parse(bodies) -> None (declined: convert the old way) or (rows, columns) in Arrow's layout"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ParserType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "margay.ingest._columns.Parser",
    .tp_basicsize = sizeof(Parser),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A log type's declared columns, and the parse of NDJSON bodies into them.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Parser_init,
    .tp_dealloc = (destructor)Parser_dealloc,
    .tp_methods = Parser_methods,
};

static struct PyModuleDef columns_module = {
    PyModuleDef_HEAD_INIT, "_columns", "NDJSON records into Arrow columns, in C (see ingest/columns.py).", -1,
    NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__columns(void) {
    if (PyType_Ready(&ParserType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&columns_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&ParserType);
    if (PyModule_AddObject(m, "Parser", (PyObject *)&ParserType) < 0) {
        Py_DECREF(&ParserType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
