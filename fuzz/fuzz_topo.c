/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The node lists of REDIS_SENTINELS and REDIS_CLUSTER (topo.c), and the
 * topology tc_open derives from the options.
 *
 * Input: one control byte (the list's entry limit, the error buffer's
 * size, which fields tc__topo_of gets), then up to three NUL-separated
 * strings: the node list, the Sentinel master's name and its password.
 *
 * Checked: TC_OK or TC_EINVAL; an accepted list has 1..max entries, each
 * a non-empty NUL-terminated host without space, comma or bracket and a
 * port in 1..65535, and prints (tc__addr_str) to a list that parses back
 * to the same addresses; a refused one leaves a NUL-terminated message
 * within the buffer; tc__topo_of agrees with tc__addr_list on the list
 * and fills a NUL-terminated master name and password.
 */
#include "fuzz.h"
#include "internal.h"
#include "topo.h"

static void check_addr(const tc__addr *a)
{
    size_t hl = strnlen(a->host, sizeof(a->host));
    FZ_CHECK(hl > 0 && hl < sizeof(a->host));
    FZ_CHECK(a->port >= 1 && a->port <= 65535);
    for (size_t i = 0; i < hl; i++)
        FZ_CHECK((unsigned char)a->host[i] > ' ' && a->host[i] != ',' &&
                 a->host[i] != '[' && a->host[i] != ']');
}

/* Printed and parsed again: the same addresses. */
static void reprint(const tc__addr *a, size_t n)
{
    char *list = malloc(n * (TC_HOST_MAX + 16) + 1), err[120];
    tc__addr back[TC_NODES_MAX];
    size_t m = 0, len = 0;
    FZ_CHECK(list != NULL);
    list[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char one[TC_HOST_MAX + 16];
        tc__addr_str(&a[i], one, sizeof(one));
        len += (size_t)sprintf(list + len, "%s%s", i ? "," : "", one);
    }
    if (tc__addr_list(list, back, TC_NODES_MAX, &m, err, sizeof(err)) !=
        TC_OK) {
        fprintf(stderr, "reprinted \"%s\" refused: %s\n", list, err);
        FZ_CHECK(0);
    }
    FZ_CHECK(m == n);
    for (size_t i = 0; i < n; i++)
        FZ_CHECK(tc__addr_eq(&a[i], &back[i]));
    free(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t ctl = fz_byte(&in);
    size_t max = 1 + ctl % TC_NODES_MAX, cap = (size_t)(ctl >> 4) * 8;
    char *text = fz_str(&in, in.left);
    /* the strings after the list, within the copy */
    const char *list = text, *master = NULL, *pass = NULL;
    size_t rest = size > 0 ? size - 1 : 0, l0 = strlen(list);
    if (l0 < rest) {
        master = text + l0 + 1; /* data's NULs survive in the copy */
        size_t l1 = strnlen(master, rest - l0 - 1);
        if (l0 + 1 + l1 < rest)
            pass = master + l1 + 1;
    }

    tc__addr a[TC_NODES_MAX];
    char err[128];
    size_t n = 99;
    memset(err, 'x', sizeof(err));
    int rc = tc__addr_list(list, a, max, &n, err, cap);
    FZ_CHECK(rc == TC_OK || rc == TC_EINVAL);
    if (rc == TC_OK) {
        FZ_CHECK(n >= 1 && n <= max);
        for (size_t i = 0; i < n; i++)
            check_addr(&a[i]);
        reprint(a, n);
    } else {
        FZ_CHECK(n <= max);
        FZ_CHECK(cap == 0 ? err[0] == 'x' : memchr(err, 0, cap) != NULL);
    }

    /* The options' view: the same list, as sentinels or as a cluster. */
    tc_options o;
    memset(&o, 0, sizeof(o));
    if (ctl & 1)
        o.redis_cluster = list;
    else
        o.redis_sentinels = list;
    o.sentinel_master = master;
    o.sentinel_password = pass;
    o.redis_db = (ctl & 2) ? 3 : 0;
    if (ctl & 4)
        strcpy(o.redis_socket, "/tmp/redis.sock");
    tc__topo t;
    size_t full = 0;
    int all = tc__addr_list(list, a, TC_NODES_MAX, &full, NULL, 0);
    memset(err, 'x', sizeof(err));
    int trc = tc__topo_of(&o, &t, err, sizeof(err));
    FZ_CHECK(trc == TC_OK || trc == TC_EINVAL);
    FZ_CHECK(memchr(err, 0, sizeof(err)) != NULL || trc == TC_OK);
    if (!*list) {
        FZ_CHECK(trc == TC_OK && t.kind == TC__TOPO_SINGLE && t.n == 0);
    } else if (trc == TC_OK) {
        FZ_CHECK(all == TC_OK && t.n == full && !(ctl & 4));
        for (size_t i = 0; i < t.n; i++)
            FZ_CHECK(tc__addr_eq(&t.nodes[i], &a[i]));
        FZ_CHECK(t.kind == ((ctl & 1) ? TC__TOPO_CLUSTER : TC__TOPO_SENTINEL));
        FZ_CHECK(memchr(t.master, 0, sizeof(t.master)) != NULL);
        FZ_CHECK(memchr(t.sentinel_password, 0, sizeof(t.sentinel_password)) !=
                 NULL);
        if (t.kind == TC__TOPO_SENTINEL) {
            FZ_CHECK(t.master[0] != '\0');
            for (const char *p = t.master; *p; p++)
                FZ_CHECK((unsigned char)*p > ' ');
        }
    } else if (all == TC_OK && !(ctl & 4) && (ctl & 1) && !(ctl & 2)) {
        FZ_CHECK(0); /* a valid cluster list has nothing else to refuse */
    }
    free(text);
    return 0;
}
