/* The column tree of the C parser into Arrow columns (_columns.c: the tree and Python; _columns_json.c: the
 * parse of records into it; _columns_lex.c: the JSON strings and dropped values below it; _columns_ip.c: the IP
 * addresses of K_IP columns) and the appends all use. */
#ifndef MARGAY_COLUMNS_H
#define MARGAY_COLUMNS_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* K_IP: a K_STR whose values must be IP addresses as OpenSearch's `ip` type takes them (mc_ip_ok), else the
 * parse declines. */
enum { K_INT = 1, K_STR = 2, K_LIST = 3, K_STRUCT = 4, K_SKIP = 5, K_MAP = 6, K_JSON = 7, K_TEXT = 8, K_BOOL = 9,
       K_IP = 10 };
/* A MAP(VARCHAR, VARCHAR) object with more keys declines (its repeated-key check compares each key with the
 * object's earlier ones). */
#define MAX_MAP_KEYS 64
/* A record whose brackets nest deeper declines (a JSON value's or a dropped key's; the declared shapes nest less):
 * the converter's bound on a stored document (parse.MAX_DEPTH), so a batch the parser takes needs no look for
 * too-deep lines. */
#define MAX_SKIP_DEPTH 64
enum { OK = 0, DECLINE = -1, NOMEM = -2 };
#define MAX_SPEC_DEPTH 6

typedef struct {
    char *p;
    size_t len, cap;
} Buf;

typedef struct Col Col;
struct Col {
    int kind;
    int depth; /* the brackets around its values in a record (the record's own included) */
    char *key; /* UTF-8, as the JSON key */
    Py_ssize_t key_len;
    Buf valid;  /* a bit per value, LSB first */
    Buf data;   /* K_INT: int64 values; K_STR: the strings' bytes; K_BOOL: a bit per value, LSB first */
    Buf offs;   /* K_STR, K_LIST, K_JSON: int32 offsets, one more than values; K_MAP: of its entries */
    Buf scratch; /* K_JSON: the strings skip_value decodes (checked, not kept) */
    Py_ssize_t rows, nulls;
    Col *child; /* K_LIST: the elements */
    Col *fields; /* K_STRUCT; K_MAP: its keys and values (two K_STR columns, no table) */
    Py_ssize_t nfields;
    int32_t *table; /* K_STRUCT: open addressing over fields, index + 1, 0 empty */
    uint32_t mask;
    Py_ssize_t filled; /* K_STRUCT's field: the struct value it was last set for (a repeated key declines) */
    Py_ssize_t after; /* K_STRUCT's field: the field that followed it in the last object (records list their
                         keys in one order: a compare with the guess spares the hash) */
    Py_ssize_t first; /* K_STRUCT: the first key of its last object (the same guess) */
    int lenient; /* a Parser made `lenient` (the look at a batch's IP fields alone, ingest/columns.py IpVouch): a
                    struct skips keys it does not know rather than declining, and values are skipped by their bounds
                    only (mc_skip_lax) */
    Py_ssize_t text; /* K_STRUCT's field: its K_TEXT twin (a field of the same struct) that takes the value's text
                        as sent, or -1 */
};

/* What the parse on this thread may still add to its column tree's buffers, and whether it asked for more (a
 * batch whose records are mostly nulls can make ~140 bytes of columns of each byte of its body: `{}` is a whole
 * flow row). mc_grow fails past it; the parse then declines, and the reader's way streams the batch. */
extern _Thread_local size_t mc_room;
extern _Thread_local int mc_over;


int mc_grow(Buf *b, size_t more);
int mc_push_null(Col *c);
uint32_t mc_hash_key(const char *p, Py_ssize_t n);
Py_ssize_t mc_find_field(const Col *s, const char *p, Py_ssize_t n);
/* Every record of [p, end) as one more value of root (a struct whose fields are the columns). */
int mc_parse_body(Col *root, const char *p, const char *end);
/* _columns_lex.c's, for _columns_json.c. Hidden: a call between the two files goes straight to the function, not
 * through the shared object's PLT (a flow record decodes ~100 strings). */
__attribute__((visibility("hidden"))) int mc_parse_string(Buf *out, const char **pp, const char *end);
__attribute__((visibility("hidden"))) int mc_skip_value(Buf *scratch, const char **pp, const char *end, int depth);
__attribute__((visibility("hidden"))) int mc_skip_lax(const char **pp, const char *end, int depth);
/* Whether [p, p + n) is an IP address as OpenSearch's `ip` type takes it (ingest/ips.py says which). */
__attribute__((visibility("hidden"))) int mc_ip_ok(const char *p, size_t n);

static inline int reserve(Buf *b, size_t more) {
    return b->len + more <= b->cap ? OK : mc_grow(b, more);
}

static inline int put(Buf *b, const void *src, size_t n) {
    if (reserve(b, n) != OK) {
        return NOMEM;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return OK;
}

/* Bit `at` of a bit-packed buffer (LSB first), `bytes` long: the buffer grows by a zero byte when it starts a byte. */
static inline int put_bit(Buf *b, Py_ssize_t at, int on) {
    size_t byte = (size_t)(at >> 3);
    if (byte >= b->len) {
        if (reserve(b, 1) != OK) {
            return NOMEM;
        }
        b->p[b->len++] = 0;
    }
    if (on) {
        b->p[byte] |= (char)(1u << (at & 7));
    }
    return OK;
}

/* One more value's validity bit (and its null count). */
static inline int push_bit(Col *c, int valid) {
    size_t byte = (size_t)(c->rows >> 3);
    if (byte >= c->valid.len) {
        if (reserve(&c->valid, 1) != OK) {
            return NOMEM;
        }
        c->valid.p[c->valid.len++] = 0;
    }
    if (valid) {
        c->valid.p[byte] |= (char)(1u << (c->rows & 7));
    } else {
        c->nulls++;
    }
    c->rows++;
    return OK;
}

static inline int push_offset(Buf *offs, size_t at) {
    if (at > INT32_MAX) {
        return DECLINE; /* past Arrow's 32-bit offsets: the reader's way instead */
    }
    int32_t o = (int32_t)at;
    return put(offs, &o, sizeof o);
}

static inline int is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

static inline const char *skip_ws(const char *p, const char *end) {
    while (p < end && is_ws(*p)) {
        p++;
    }
    return p;
}

static inline int same(const char *a, const char *b, Py_ssize_t n) {
    while (n >= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) {
            return 0;
        }
        a += 8;
        b += 8;
        n -= 8;
    }
    while (n > 0) {
        if (*a++ != *b++) {
            return 0;
        }
        n--;
    }
    return 1;
}

#endif
