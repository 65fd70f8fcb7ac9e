/* The JSON text below the columns of the C parser into Arrow columns (_columns_json.c walks the records):
 * strings decoded and checked (UTF-8, escapes), and any value checked and dropped. */
#include "_columns.h"

static int hex4(const char *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (uint32_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= (uint32_t)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= (uint32_t)(c - 'A' + 10);
        } else {
            return DECLINE;
        }
    }
    *out = v;
    return OK;
}

/* The length of the UTF-8 sequence at p (a lead byte >= 0x80), 0 if it is not well-formed. */
static int utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    int n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) {
            lo = 0xA0;
        } else if (c == 0xED) {
            hi = 0x9F;
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) {
            lo = 0x90;
        } else if (c == 0xF4) {
            hi = 0x8F;
        }
    } else {
        return 0;
    }
    if (end - p < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (int i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF) {
            return 0;
        }
    }
    return n;
}

/* The first byte in [q, end) that ends a plain run of a string: '"', '\\', a control byte or a byte >= 0x80. */
static inline const char *plain_run(const char *q, const char *end) {
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i slash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (end - q >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)q);
        /* signed compare: bytes >= 0x80 are negative, so "v < 0x20" catches them with the control bytes */
        __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
                                       _mm_cmplt_epi8(v, space));
        int m = _mm_movemask_epi8(special);
        if (m != 0) {
            return q + __builtin_ctz((unsigned)m);
        }
        q += 16;
    }
#endif
    while (q < end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20 && (unsigned char)*q < 0x80) {
        q++;
    }
    return q;
}

/* p just past the opening quote; decodes into out, leaves *pp past the closing quote. */
int mc_parse_string(Buf *out, const char **pp, const char *end) {
    const char *p = *pp;
    for (;;) {
        const char *q = plain_run(p, end);
        if (q > p && put(out, p, (size_t)(q - p)) != OK) {
            return NOMEM;
        }
        p = q;
        if (p >= end) {
            return DECLINE;
        }
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *pp = p + 1;
            return OK;
        }
        if (c < 0x20) {
            return DECLINE;
        }
        if (c >= 0x80) {
            int n = utf8_len((const unsigned char *)p, (const unsigned char *)end);
            if (n == 0 || put(out, p, (size_t)n) != OK) {
                return n == 0 ? DECLINE : NOMEM;
            }
            p += n;
            continue;
        }
        /* a backslash */
        if (end - p < 2) {
            return DECLINE;
        }
        char e = p[1], ch;
        p += 2;
        switch (e) {
        case '"': ch = '"'; break;
        case '\\': ch = '\\'; break;
        case '/': ch = '/'; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (end - p < 4 || hex4(p, &cp) != OK || cp == 0) {
                return DECLINE;
            }
            p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return DECLINE;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) != OK || lo < 0xDC00 || lo > 0xDFFF) {
                    return DECLINE;
                }
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            char u[4];
            size_t n;
            if (cp < 0x80) {
                u[0] = (char)cp;
                n = 1;
            } else if (cp < 0x800) {
                u[0] = (char)(0xC0 | (cp >> 6));
                u[1] = (char)(0x80 | (cp & 0x3F));
                n = 2;
            } else if (cp < 0x10000) {
                u[0] = (char)(0xE0 | (cp >> 12));
                u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (char)(0x80 | (cp & 0x3F));
                n = 3;
            } else {
                u[0] = (char)(0xF0 | (cp >> 18));
                u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[3] = (char)(0x80 | (cp & 0x3F));
                n = 4;
            }
            if (put(out, u, n) != OK) {
                return NOMEM;
            }
            continue;
        }
        default:
            return DECLINE;
        }
        if (put(out, &ch, 1) != OK) {
            return NOMEM;
        }
    }
}

/* A lenient parse's string (p just past the opening quote; *pp left past the closing one): its bounds only, no
 * check of its bytes. What it says of a body read_json refuses does not matter (the conversion then fails and
 * looks at the lines one by one); of one read_json takes, the bounds are the same. */
static int skip_string_lax(const char **pp, const char *end) {
    const char *q = *pp;
    for (;;) {
#ifdef __SSE2__
        const __m128i quote = _mm_set1_epi8('"');
        const __m128i slash = _mm_set1_epi8('\\');
        const __m128i newline = _mm_set1_epi8('\n');
        while (end - q >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)q);
            int m = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
                                                   _mm_cmpeq_epi8(v, newline)));
            if (m != 0) {
                q += __builtin_ctz((unsigned)m);
                break;
            }
            q += 16;
        }
#endif
        while (q < end && *q != '"' && *q != '\\' && *q != '\n') {
            q++;
        }
        if (q >= end || *q == '\n') {
            return DECLINE;
        }
        if (*q == '"') {
            *pp = q + 1;
            return OK;
        }
        if (end - q < 2) {
            return DECLINE;
        }
        q += 2; /* an escape: the character after the backslash is no quote of the string's end */
    }
}

/* A lenient parse's value (*pp at its first byte): its bounds only, as skip_string_lax's. */
int mc_skip_lax(const char **pp, const char *end, int depth) {
    const char *p = *pp;
    if (p >= end) {
        return DECLINE;
    }
    if (*p == '"') {
        p++;
        if (skip_string_lax(&p, end) != OK) {
            return DECLINE;
        }
        *pp = p;
        return OK;
    }
    if (*p != '{' && *p != '[') { /* a number or a literal: up to what ends it */
        while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != '\n' && !is_ws(*p)) {
            p++;
        }
        if (p == *pp) {
            return DECLINE;
        }
        *pp = p;
        return OK;
    }
    int open = 0;
    while (p < end) {
        char c = *p++;
        if (c == '"') {
            if (skip_string_lax(&p, end) != OK) {
                return DECLINE;
            }
        } else if (c == '{' || c == '[') {
            if (depth + open >= MAX_SKIP_DEPTH) {
                return DECLINE;
            }
            open++;
        } else if (c == '}' || c == ']') {
            if (--open == 0) {
                *pp = p;
                return OK;
            }
        } else if (c == '\n') {
            return DECLINE;
        }
    }
    return DECLINE;
}

/* A JSON number of any form (a key the columns do not hold: read_json drops it, but refuses bad JSON). */
static int skip_number(const char **pp, const char *end) {
    const char *p = *pp;
    if (p < end && *p == '-') {
        p++;
    }
    if (p >= end || *p < '0' || *p > '9') {
        return DECLINE;
    }
    if (*p == '0') {
        p++;
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') {
            return DECLINE;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= end || *p < '0' || *p > '9') {
            return DECLINE;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    *pp = p;
    return OK;
}

/* Any JSON value, checked and dropped; `scratch` takes its strings. `depth`: the brackets around it in its
 * record; a bracket deeper than MAX_SKIP_DEPTH declines. A repeated key in a dropped object is not looked for:
 * the reader's verdict on it does not reach the columns (nor json()'s, for a JSON value: both keep both). (A lenient
 * parse takes its bounds only: mc_skip_lax.) */
int mc_skip_value(Buf *scratch, const char **pp, const char *end, int depth) {
    const char *p = *pp;
    int r;
    if (p >= end) {
        return DECLINE;
    }
    switch (*p) {
    case '"':
        p++;
        scratch->len = 0;
        if ((r = mc_parse_string(scratch, &p, end)) != OK) {
            return r;
        }
        break;
    case 't':
    case 'f':
    case 'n': {
        const char *word = *p == 't' ? "true" : *p == 'f' ? "false" : "null";
        size_t n = strlen(word);
        if ((size_t)(end - p) < n || memcmp(p, word, n) != 0) {
            return DECLINE;
        }
        p += n;
        break;
    }
    case '[':
    case '{': {
        char close = *p == '[' ? ']' : '}';
        int object = *p == '{';
        if (depth >= MAX_SKIP_DEPTH) {
            return DECLINE;
        }
        p = skip_ws(p + 1, end);
        if (p < end && *p == close) {
            p++;
            break;
        }
        for (;;) {
            if (object) {
                if (p >= end || *p != '"') {
                    return DECLINE;
                }
                p++;
                scratch->len = 0;
                if ((r = mc_parse_string(scratch, &p, end)) != OK) {
                    return r;
                }
                p = skip_ws(p, end);
                if (p >= end || *p != ':') {
                    return DECLINE;
                }
                p = skip_ws(p + 1, end);
            }
            if ((r = mc_skip_value(scratch, &p, end, depth + 1)) != OK) {
                return r;
            }
            p = skip_ws(p, end);
            if (p < end && *p == ',') {
                p = skip_ws(p + 1, end);
                continue;
            }
            if (p < end && *p == close) {
                p++;
                break;
            }
            return DECLINE;
        }
        break;
    }
    default:
        if ((r = skip_number(&p, end)) != OK) {
            return r;
        }
    }
    *pp = p;
    return OK;
}
