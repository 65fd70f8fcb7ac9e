/* The byte counts of ingest's C scanner (the module _keyscan; its table of functions is in _keyscan.c): a batch's
 * newlines and its records, without the GIL. */
#include "_keyscan.h"
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The newlines of a batch: 16 bytes a step (memchr for the tail), without the GIL (bytes.count compares byte by byte: ~0.8 us
   a 1.5 kB record, as much as the whole key scan). */
PyObject *ks_count_newlines(PyObject *module, PyObject *arg) {
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Py_ssize_t n = 0;
    const char *p = view.buf;
    const char *end = p + view.len;
    Py_BEGIN_ALLOW_THREADS
#ifdef __SSE2__
    /* Each step subtracts the compare's -1s from 16 byte counters, summed (psadbw) before any can wrap. */
    const __m128i nl = _mm_set1_epi8('\n');
    const __m128i zero = _mm_setzero_si128();
    while (end - p >= 16) {
        __m128i acc = zero;
        for (int i = 0; i < 255 && end - p >= 16; i++, p += 16) {
            acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)p), nl));
        }
        __m128i sums = _mm_sad_epu8(acc, zero);
        n += _mm_cvtsi128_si32(sums) + _mm_cvtsi128_si32(_mm_srli_si128(sums, 8));
    }
#endif
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(n);
}

/* The records of a batch: its lines that hold a byte other than ASCII whitespace (what bytes.strip() keeps;
   the reader skips the others), without the GIL. A group commit needs each batch's count to map its rows back
   (ingest/group.py); Python's numbering of the non-blank lines cost ~0.76 us a 1.5 kB record, this a memchr a
   line. */
PyObject *ks_count_records(PyObject *module, PyObject *arg) {
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Py_ssize_t n = 0;
    const char *p = view.buf;
    const char *end = p + view.len;
    Py_BEGIN_ALLOW_THREADS
    while (p < end) {
        /* Py_ISSPACE's set: ' ', \t, \n, \v, \f, \r */
        while (p < end && (*p == ' ' || (*p >= '\t' && *p <= '\r' && *p != '\n'))) {
            p++;
        }
        if (p == end) {
            break;
        }
        if (*p == '\n') {
            p++;
            continue;
        }
        n++;
        p = memchr(p, '\n', (size_t)(end - p));
        if (p == NULL) {
            break;
        }
        p++;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(n);
}
