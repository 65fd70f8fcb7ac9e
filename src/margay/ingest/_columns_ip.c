/* IP addresses as OpenSearch's `ip` type takes them, for the C parser into Arrow columns' K_IP columns (ingest/ips.py
 * says which: InetAddresses.forString of org.opensearch.common.network, ASCII digits only). */
#include "_columns.h"

static inline int is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Exactly a dotted quad: four decimal octets 0-255, none with a leading zero. */
static int v4_ok(const char *p, const char *end) {
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (p >= end || *p != '.') {
                return 0;
            }
            p++;
        }
        const char *d = p;
        unsigned v = 0;
        while (p < end && *p >= '0' && *p <= '9' && p - d < 3) {
            v = v * 10 + (unsigned)(*p - '0');
            p++;
        }
        if (p == d || v > 255 || (*d == '0' && p - d > 1)) {
            return 0;
        }
    }
    return p == end;
}

/* A hextet: hex digits, any number of leading zeros, at most ffff. */
static int hextet_ok(const char *p, const char *end) {
    if (p == end) {
        return 0;
    }
    while (end - p > 1 && *p == '0') {
        p++;
    }
    return end - p <= 4;
}

int mc_ip_ok(const char *s, size_t n) {
    const char *end = s + n, *pct = NULL, *p;
    int colon = 0, dot = 0;
    for (p = s; p < end; p++) { /* what OpenSearch looks at first: up to a scope id's '%' */
        if (*p == '.') {
            dot = 1;
        } else if (*p == ':') {
            if (dot) {
                return 0; /* a colon after a dot */
            }
            colon = 1;
        } else if (*p == '%') {
            pct = p;
            break;
        } else if (!is_hex(*p)) {
            return 0;
        }
    }
    if (!colon) {
        return dot && pct == NULL && v4_ok(s, end);
    }
    /* IPv6: the parts between colons (at most 9: eight hextets and a '::'); a dotted quad last counts as two */
    const char *addr_end = end;
    int quad = 0;
    if (dot) {
        const char *last = end - 1;
        while (*last != ':') {
            last--;
        }
        if (!v4_ok(last + 1, end)) {
            return 0; /* (a scope id after a dotted quad too) */
        }
        addr_end = last;
        quad = 2;
    } else if (pct != NULL) {
        if (pct == end - 1) {
            return 0; /* an empty scope id */
        }
        addr_end = pct;
    }
    const char *from[10], *to[10];
    int parts = 0;
    for (p = s;; p++) {
        if (p == addr_end || *p == ':') {
            if (parts + quad >= 9) {
                return 0;
            }
            from[parts] = parts ? to[parts - 1] + 1 : s;
            to[parts++] = p;
            if (p == addr_end) {
                break;
            }
        }
    }
    int total = parts + quad;
    if (total < 3) {
        return 0;
    }
    /* one empty part inside (not first or last) is the '::'; an empty first or last part must touch it */
    int skip = -1;
    for (int i = 1; i < total - 1; i++) {
        if (i < parts && from[i] == to[i]) {
            if (skip >= 0) {
                return 0;
            }
            skip = i;
        }
    }
    int hi = total, lo = 0;
    if (skip >= 0) {
        hi = skip;
        lo = total - skip - 1;
        if (from[0] == to[0] && --hi != 0) {
            return 0;
        }
        if (!quad && from[parts - 1] == to[parts - 1] && --lo != 0) {
            return 0;
        }
        if (hi + lo > 7) {
            return 0; /* the '::' stands for at least one zero hextet */
        }
    } else if (total != 8) {
        return 0;
    }
    for (int i = 0; i < total; i++) {
        if ((i < hi || i >= total - lo) && i < parts && !hextet_ok(from[i], to[i])) {
            return 0;
        }
    }
    return 1;
}
