/* The parse of the C parser into Arrow columns: NDJSON bytes into the column tree (_columns.h); what it
 * accepts and declines is said in _columns.c, the strings it decodes and the values it drops are _columns_lex.c's. */
#include "_columns.h"

_Thread_local size_t mc_room;
_Thread_local int mc_over;

int mc_grow(Buf *b, size_t more) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more) {
        if (cap > SIZE_MAX / 2) {
            return NOMEM;
        }
        cap *= 2;
    }
    if (cap - b->cap > mc_room) {
        mc_over = 1;
        return NOMEM;
    }
    char *q = realloc(b->p, cap);
    if (q == NULL) {
        return NOMEM;
    }
    mc_room -= cap - b->cap;
    b->p = q;
    b->cap = cap;
    return OK;
}

int mc_push_null(Col *c) {
    switch (c->kind) {
    case K_SKIP:
        return OK;
    case K_INT: {
        int64_t zero = 0;
        if (put(&c->data, &zero, sizeof zero) != OK) {
            return NOMEM;
        }
        break;
    }
    case K_STR:
    case K_IP:
    case K_JSON:
    case K_TEXT:
        if (push_offset(&c->offs, c->data.len) != OK) {
            return DECLINE;
        }
        break;
    case K_MAP:
        if (push_offset(&c->offs, (size_t)c->fields[0].rows) != OK) {
            return DECLINE;
        }
        break;
    case K_BOOL:
        if (put_bit(&c->data, c->rows, 0) != OK) {
            return NOMEM;
        }
        break;
    case K_LIST:
        if (push_offset(&c->offs, (size_t)c->child->rows) != OK) {
            return DECLINE;
        }
        break;
    default:
        for (Py_ssize_t i = 0; i < c->nfields; i++) {
            int r = mc_push_null(&c->fields[i]);
            if (r != OK) {
                return r;
            }
        }
    }
    return push_bit(c, 0);
}

uint32_t mc_hash_key(const char *p, Py_ssize_t n) {
    uint32_t h = 2166136261u ^ (uint32_t)n;
    for (Py_ssize_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    }
    return h;
}

Py_ssize_t mc_find_field(const Col *s, const char *p, Py_ssize_t n) {
    uint32_t i = mc_hash_key(p, n) & s->mask;
    for (;;) {
        int32_t slot = s->table[i];
        if (slot == 0) {
            return -1;
        }
        const Col *f = &s->fields[slot - 1];
        if (f->key_len == n && memcmp(f->key, p, (size_t)n) == 0) {
            return slot - 1;
        }
        i = (i + 1) & s->mask;
    }
}

/* A JSON integer that fits int64, with no fraction or exponent. */
static inline int parse_int(int64_t *out, const char **pp, const char *end) {
    const char *p = *pp;
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9') {
        return DECLINE;
    }
    if (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9') {
        return DECLINE; /* a leading zero: not JSON */
    }
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (v > (limit - d) / 10) {
            return DECLINE;
        }
        v = v * 10 + d;
        p++;
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) {
        return DECLINE;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    *pp = p;
    return OK;
}

static int parse_object(Col *s, const char **pp, const char *end);

/* An integer or string value (not null) into c; *pp at its first byte, left past it. Inline in the record's
 * loop: most of a flow's values are these. */
static inline int scalar_value(Col *c, const char **pp, const char *end) {
    const char *p = *pp;
    int r;
    if (c->kind == K_INT) {
        int64_t v;
        if ((r = parse_int(&v, &p, end)) != OK) {
            return r;
        }
        if (put(&c->data, &v, sizeof v) != OK) {
            return NOMEM;
        }
    } else if (p < end && (*p == '-' || (*p >= '0' && *p <= '9')) && c->kind == K_STR) {
        /* an integer for text: read_json writes its digits as sent (those of -0 as 0; past 64 bits, floats:
           declined) */
        const char *from = p;
        int64_t v;
        if ((r = parse_int(&v, &p, end)) != OK) {
            return r;
        }
        if (v == 0 && *from == '-') {
            return DECLINE;
        }
        if (put(&c->data, from, (size_t)(p - from)) != OK) {
            return NOMEM;
        }
        if ((r = push_offset(&c->offs, c->data.len)) != OK) {
            return r;
        }
    } else {
        if (p >= end || *p != '"') {
            return DECLINE;
        }
        p++;
        size_t from = c->data.len;
        if ((r = mc_parse_string(&c->data, &p, end)) != OK) {
            return r;
        }
        if (c->kind == K_IP && !mc_ip_ok(c->data.p + from, c->data.len - from)) {
            return DECLINE; /* the conversion's check names it (ingest/ips.py) */
        }
        if ((r = push_offset(&c->offs, c->data.len)) != OK) {
            return r;
        }
    }
    *pp = p;
    return push_bit(c, 1);
}

/* An object of string (integer, or null) values into a map's entries, in the object's order; *pp at '{'.
 * read_json refuses a repeated key, and turns a float, a bool, an object or a list into text: those decline, as
 * does a map of more than MAX_MAP_KEYS keys. */
static int parse_map(Col *m, const char **pp, const char *end) {
    Col *keys = &m->fields[0], *values = &m->fields[1];
    Py_ssize_t first = keys->rows;
    const int32_t *offs;
    const char *p = skip_ws(*pp + 1, end);
    int r;
    if (p < end && *p == '}') {
        *pp = p + 1;
        return push_offset(&m->offs, (size_t)keys->rows);
    }
    for (;;) {
        if (p >= end || *p != '"' || keys->rows - first >= MAX_MAP_KEYS) {
            return DECLINE;
        }
        p++;
        size_t from = keys->data.len;
        if ((r = mc_parse_string(&keys->data, &p, end)) != OK) {
            return r;
        }
        size_t n = keys->data.len - from;
        offs = (const int32_t *)keys->offs.p;
        for (Py_ssize_t k = first; k < keys->rows; k++) {
            if ((size_t)(offs[k + 1] - offs[k]) == n && memcmp(keys->data.p + offs[k], keys->data.p + from, n) == 0) {
                return DECLINE;
            }
        }
        if ((r = push_offset(&keys->offs, keys->data.len)) != OK || (r = push_bit(keys, 1)) != OK) {
            return r;
        }
        p = skip_ws(p, end);
        if (p >= end || *p != ':') {
            return DECLINE;
        }
        p = skip_ws(p + 1, end);
        if (p < end && *p == 'n') {
            if (end - p < 4 || memcmp(p, "null", 4) != 0) {
                return DECLINE;
            }
            p += 4;
            if ((r = mc_push_null(values)) != OK) {
                return r;
            }
        } else if ((r = scalar_value(values, &p, end)) != OK) {
            return r;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') {
            *pp = p + 1;
            return push_offset(&m->offs, (size_t)keys->rows);
        }
        return DECLINE;
    }
}

/* One value into c; *pp at its first byte (no white space), left past it. */
static int parse_value(Col *c, const char **pp, const char *end) {
    const char *p = *pp;
    if (p >= end) {
        return DECLINE;
    }
    if (*p == 'n') {
        if (end - p < 4 || memcmp(p, "null", 4) != 0) {
            return DECLINE;
        }
        *pp = p + 4;
        return mc_push_null(c);
    }
    int r;
    switch (c->kind) {
    case K_SKIP:
        if ((r = c->lenient ? mc_skip_lax(&p, end, c->depth) : mc_skip_value(&c->data, &p, end, c->depth)) != OK) {
            return r;
        }
        *pp = p;
        return OK;
    case K_INT:
    case K_STR:
    case K_IP:
        return scalar_value(c, pp, end);
    case K_JSON: {
        /* the value's own text: the conversion's SELECT writes it as read_json would (json(), minified) */
        const char *from = p;
        if ((r = mc_skip_value(&c->scratch, &p, end, c->depth)) != OK) {
            return r;
        }
        if (put(&c->data, from, (size_t)(p - from)) != OK) {
            return NOMEM;
        }
        if ((r = push_offset(&c->offs, c->data.len)) != OK) {
            return r;
        }
        break;
    }
    case K_BOOL: {
        int on = *p == 't';
        const char *word = on ? "true" : "false";
        size_t n = on ? 4 : 5;
        if ((*p != 't' && *p != 'f') || (size_t)(end - p) < n || memcmp(p, word, n) != 0) {
            return DECLINE; /* (read_json would turn some strings and numbers into booleans) */
        }
        if (put_bit(&c->data, c->rows, on) != OK) {
            return NOMEM;
        }
        p += n;
        break;
    }
    case K_MAP:
        if (*p != '{') {
            return DECLINE;
        }
        if ((r = parse_map(c, &p, end)) != OK) {
            return r;
        }
        break;
    case K_LIST:
        if (*p != '[') {
            return DECLINE;
        }
        p = skip_ws(p + 1, end);
        if (p < end && *p == ']') {
            p++;
        } else {
            for (;;) {
                if ((r = parse_value(c->child, &p, end)) != OK) {
                    return r;
                }
                p = skip_ws(p, end);
                if (p < end && *p == ',') {
                    p = skip_ws(p + 1, end);
                    continue;
                }
                if (p < end && *p == ']') {
                    p++;
                    break;
                }
                return DECLINE;
            }
        }
        if ((r = push_offset(&c->offs, (size_t)c->child->rows)) != OK) {
            return r;
        }
        break;
    default:
        if (*p != '{') {
            return DECLINE;
        }
        if ((r = parse_object(c, &p, end)) != OK) {
            return r;
        }
    }
    *pp = p;
    return push_bit(c, 1);
}

/* An object into the fields of s (as its value number s->rows); *pp at '{'. Fields it lacks are null. */
static int parse_object(Col *s, const char **pp, const char *end) {
    const char *p = skip_ws(*pp + 1, end);
    Py_ssize_t row = s->rows;
    Py_ssize_t next = s->first;
    Py_ssize_t *hint = &s->first;
    int r;
    if (p < end && *p == '}') {
        p++;
    } else {
        for (;;) {
            if (p >= end || *p != '"') {
                return DECLINE;
            }
            const char *k = ++p;
            Py_ssize_t i = -1;
            if (next >= 0 && next < s->nfields) { /* the guess: its bytes and a closing quote */
                const Col *g = &s->fields[next];
                if (end - k > g->key_len && k[g->key_len] == '"' && same(g->key, k, g->key_len)) {
                    i = next;
                    p = k + g->key_len;
                }
            }
            if (i < 0) {
                while (p < end && *p != '"' && *p != '\\' && *p != '\n') {
                    p++;
                }
                if (p >= end || *p != '"') {
                    return DECLINE; /* unclosed, or an escape in a key */
                }
                i = mc_find_field(s, k, p - k);
                *hint = i;
            }
            if (i < 0) {
                if (!s->lenient) {
                    return DECLINE; /* not declared: the reader's way keeps it (or refuses it) */
                }
                p = skip_ws(p + 1, end); /* a lenient parse: a key of no interest, its value checked and dropped */
                if (p >= end || *p != ':') {
                    return DECLINE;
                }
                p = skip_ws(p + 1, end);
                if ((r = mc_skip_lax(&p, end, s->depth + 1)) != OK) {
                    return r;
                }
                next = -1;
                goto next_key;
            }
            Col *f = &s->fields[i];
            if (f->filled == row) {
                return DECLINE; /* a key twice in one object */
            }
            f->filled = row;
            hint = &f->after;
            next = f->after;
            p = skip_ws(p + 1, end);
            if (p >= end || *p != ':') {
                return DECLINE;
            }
            p = skip_ws(p + 1, end);
            const char *from = p;
            if ((f->kind == K_INT || f->kind == K_STR || f->kind == K_IP) && p < end && *p != 'n'
                    ? (r = scalar_value(f, &p, end)) != OK
                    : (r = parse_value(f, &p, end)) != OK) {
                return r;
            }
            if (f->text >= 0) { /* the value's text as sent too (`null` included): a slice of the body */
                Col *t = &s->fields[f->text];
                t->filled = row;
                if (put(&t->data, from, (size_t)(p - from)) != OK) {
                    return NOMEM;
                }
                if ((r = push_offset(&t->offs, t->data.len)) != OK || (r = push_bit(t, 1)) != OK) {
                    return r;
                }
            }
        next_key:
            p = skip_ws(p, end);
            if (p < end && *p == ',') {
                p = skip_ws(p + 1, end);
                continue;
            }
            if (p < end && *p == '}') {
                p++;
                break;
            }
            return DECLINE;
        }
    }
    for (Py_ssize_t i = 0; i < s->nfields; i++) {
        Col *f = &s->fields[i];
        if (f->filled != row) {
            f->filled = row;
            if ((r = mc_push_null(f)) != OK) {
                return r;
            }
        }
    }
    *pp = p;
    return OK;
}

/* Every record of [p, end) as one more value of the root struct (its validity is not kept). */
int mc_parse_body(Col *root, const char *p, const char *end) {
    /* No parse step passes a '\n' (white space here is ' ', '\t' and '\r'; a string refuses control bytes), so
       each record is parsed up to the body's end, not its line's: no search for the line's end first. */
    while (p < end) {
        const char *q = skip_ws(p, end);
        if (q == end) {
            break;
        }
        if (*q == '\n') {
            p = q + 1;
            continue;
        }
        int r;
        if (*q != '{') {
            return DECLINE;
        }
        if ((r = parse_object(root, &q, end)) != OK) {
            return r;
        }
        q = skip_ws(q, end);
        if (q < end) {
            if (*q != '\n') {
                return DECLINE;
            }
            q++;
        }
        root->rows++;
        p = q;
    }
    return OK;
}
