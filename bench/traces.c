/* SPDX-License-Identifier: BSD-3-Clause */
/* Trace files and synthetic traces: see traces.h. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "traces.h"

#define NO_ID UINT32_MAX
#define SYN_LEN 300000u /* accesses per synthetic trace */

/* ---- key -> dense id: open addressing on the 64-bit key ---- */

typedef struct idmap {
    int64_t *keys;
    uint32_t *ids; /* NO_ID: empty slot */
    size_t mask;   /* capacity - 1, a power of two minus one */
    uint32_t count;
} idmap;

static void idmap_init(idmap *m, size_t cap)
{
    m->keys = xcalloc(cap, sizeof(*m->keys));
    m->ids = xcalloc(cap, sizeof(*m->ids));
    memset(m->ids, 0xff, cap * sizeof(*m->ids));
    m->mask = cap - 1;
    m->count = 0;
}

static void idmap_free(idmap *m)
{
    free(m->keys);
    free(m->ids);
}

static void idmap_grow(idmap *m)
{
    idmap old = *m;
    idmap_init(m, 2 * (old.mask + 1));
    for (size_t i = 0; i <= old.mask; i++) {
        if (old.ids[i] == NO_ID)
            continue;
        uint64_t s = (uint64_t)old.keys[i];
        size_t j = (size_t)splitmix64(&s) & m->mask;
        while (m->ids[j] != NO_ID)
            j = (j + 1) & m->mask;
        m->keys[j] = old.keys[i];
        m->ids[j] = old.ids[i];
    }
    m->count = old.count;
    idmap_free(&old);
}

/* The id of key, a new one (the next free) if it is new. */
static uint32_t idmap_get(idmap *m, int64_t key)
{
    if ((size_t)m->count * 2 >= m->mask)
        idmap_grow(m);
    uint64_t s = (uint64_t)key;
    size_t j = (size_t)splitmix64(&s) & m->mask;
    while (m->ids[j] != NO_ID) {
        if (m->keys[j] == key)
            return m->ids[j];
        j = (j + 1) & m->mask;
    }
    if (m->count == NO_ID)
        die("trace: too many distinct keys");
    m->keys[j] = key;
    m->ids[j] = m->count;
    return m->count++;
}

/* ---- building a trace ---- */

typedef struct builder {
    trace *t;
    idmap map;
    size_t cap;
} builder;

static void build_start(builder *b, trace *t)
{
    memset(t, 0, sizeof(*t));
    b->t = t;
    b->cap = 1 << 16;
    t->ids = xcalloc(b->cap, sizeof(*t->ids));
    idmap_init(&b->map, 1 << 12);
}

static void build_add(builder *b, int64_t key)
{
    trace *t = b->t;
    if (t->n == b->cap) {
        b->cap *= 2;
        t->ids = xrealloc(t->ids, b->cap * sizeof(*t->ids));
    }
    t->ids[t->n++] = idmap_get(&b->map, key);
}

static void build_end(builder *b)
{
    b->t->nkeys = b->map.count;
    b->t->size_base = b->map.count;
    idmap_free(&b->map);
}

/* ---- reading files ---- */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* The whole of fd into a malloc'd, NUL-terminated buffer; -1 on a read
   error. */
static long slurp_fd(int fd, char **out, size_t *len)
{
    size_t cap = 1 << 20, n = 0;
    char *buf = xcalloc(cap, 1);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            free(buf);
            return -1;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (n == cap)
        buf = xrealloc(buf, cap + 1);
    buf[n] = '\0'; /* strtoll may look one byte past the last line */
    *out = buf;
    *len = n;
    return 0;
}

/* The decompressed bytes of path. */
static int slurp(const char *path, char **out, size_t *len)
{
    const char *tool = ends_with(path, ".gz")   ? "gzip"
                       : ends_with(path, ".xz") ? "xz"
                                                : NULL;
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "tc-bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!tool) {
        int fd = open(path, O_RDONLY);
        long rc = fd < 0 ? -1 : slurp_fd(fd, out, len);
        if (fd >= 0)
            close(fd);
        if (rc < 0)
            fprintf(stderr, "tc-bench: %s: %s\n", path, strerror(errno));
        return rc < 0 ? -1 : 0;
    }
    const char *argv[] = {tool, "-dc", "--", path, NULL};
    int fd;
    pid_t pid = spawn(argv, &fd);
    if (pid < 0) {
        fprintf(stderr, "tc-bench: %s: cannot run %s: %s\n", path, tool,
                strerror(errno));
        return -1;
    }
    long rc = slurp_fd(fd, out, len);
    close(fd);
    if (wait_exit(pid) != 0 || rc < 0) {
        fprintf(stderr, "tc-bench: %s: %s -dc failed\n", path, tool);
        if (rc == 0)
            free(*out);
        return -1;
    }
    return 0;
}

static int is_text(const char *buf, size_t len)
{
    for (size_t i = 0; i < len && i < 4096; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (!isdigit(ch) && !strchr(" \t\r\n*-+", ch))
            return 0;
    }
    return 1;
}

/* The integers on one line (at most max), or -1 if it holds anything
   else. A "*" line (LIRS: a separator) has none. */
static int parse_line(const char *s, const char *end, int64_t *v, int max)
{
    int n = 0;
    while (s < end) {
        while (s < end && (*s == ' ' || *s == '\t' || *s == '\r'))
            s++;
        if (s == end)
            break;
        if (*s == '*' && n == 0)
            return 0;
        char *stop;
        errno = 0;
        long long x = strtoll(s, &stop, 10);
        if (stop == s || errno || stop > end)
            return -1;
        if (n < max)
            v[n++] = x;
        s = stop;
    }
    return n;
}

static int parse_text(const char *path, const char *buf, size_t len, trace *t)
{
    builder b;
    int arc = -1; /* decided on the first line with a key */
    build_start(&b, t);
    for (const char *s = buf, *end; s < buf + len; s = end + 1) {
        end = memchr(s, '\n', (size_t)(buf + len - s));
        if (!end)
            end = buf + len;
        int64_t v[2];
        int n = parse_line(s, end, v, 2);
        if (n < 0) {
            fprintf(stderr, "tc-bench: %s: not a trace line: %.*s\n", path,
                    (int)(end - s < 60 ? end - s : 60), s);
            build_end(&b);
            trace_free(t);
            return -1;
        }
        if (n == 0)
            continue;
        if (arc < 0)
            arc = n >= 2;
        if (!arc)
            build_add(&b, v[0]);
        for (int64_t k = 0; arc && n >= 2 && k < v[1]; k++)
            build_add(&b, v[0] + k);
    }
    build_end(&b);
    return 0;
}

static int parse_binary(const char *path, const unsigned char *buf, size_t len,
                        trace *t)
{
    builder b;
    if (len % 4) {
        fprintf(stderr, "tc-bench: %s: %zu bytes, not int32 keys\n", path,
                len);
        return -1;
    }
    build_start(&b, t);
    for (size_t i = 0; i < len; i += 4) {
        uint32_t u = (uint32_t)buf[i] << 24 | (uint32_t)buf[i + 1] << 16 |
                     (uint32_t)buf[i + 2] << 8 | buf[i + 3];
        build_add(&b, (int32_t)u);
    }
    build_end(&b);
    return 0;
}

/* "dir/arc-oltp.gz" -> "arc-oltp" */
static void trace_name(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, cap, "%s", base);
    static const char *const exts[] = {".gz", ".xz", ".txt", ".trace", ".bin"};
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
        if (ends_with(out, exts[i]))
            out[strlen(out) - strlen(exts[i])] = '\0';
    for (char *p = out; *p; p++) /* it becomes part of metric names */
        if (!isalnum((unsigned char)*p) && !strchr("-._", *p))
            *p = '-';
}

int trace_load(const char *path, trace *t)
{
    char *buf;
    size_t len;
    if (slurp(path, &buf, &len) != 0)
        return -1;
    int rc = is_text(buf, len)
                 ? parse_text(path, buf, len, t)
                 : parse_binary(path, (unsigned char *)buf, len, t);
    free(buf);
    if (rc == 0 && t->n == 0) {
        fprintf(stderr, "tc-bench: %s: no accesses\n", path);
        trace_free(t);
        rc = -1;
    }
    if (rc == 0)
        trace_name(path, t->name, sizeof(t->name));
    return rc;
}

/* ---- synthetic traces ---- */

void trace_synthetic(int kind, trace *t)
{
    builder b;
    build_start(&b, t);
    if (kind == SYN_LOOP) {
        for (uint32_t i = 0; i < SYN_LEN; i++)
            build_add(&b, i % 3000);
        build_end(&b);
        snprintf(t->name, sizeof(t->name), "syn-loop3000");
        return;
    }
    uint32_t *z = zipf_sequence(SYN_LEN, 10000, 0.99, 7 + (uint64_t)kind);
    int64_t fresh = 1000000; /* scan keys: never seen before or after */
    for (uint32_t i = 0; i < SYN_LEN; i++) {
        build_add(&b, z[i]);
        for (int k = 0; kind == SYN_SCAN_ZIPF && i % 5000 == 4999 && k < 2000;
             k++)
            build_add(&b, fresh++);
    }
    free(z);
    build_end(&b);
    t->size_base = 10000; /* the Zipf keys: the scans are one-time */
    snprintf(t->name, sizeof(t->name), "%s",
             kind == SYN_ZIPF ? "syn-zipf0.99" : "syn-scan-zipf");
}

void trace_free(trace *t)
{
    free(t->ids);
    t->ids = NULL;
    t->n = 0;
}
