/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A worker: libmicrohttpd's thread pool on the listening socket the parent
 * bound, the request read whole (64 KiB at most), routed to its module,
 * answered with the common headers (X-Worker, X-Cache, ETag, Location),
 * counted in the metrics. SIGTERM: stop accepting, let the requests in
 * flight finish, close the cache, exit.
 */
#include <errno.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "billgen.h"

int bg_worker_no;
static _Atomic int inflight;

typedef struct ctx {
    uint64_t t0;
    char *body;
    size_t len;
    int too_big;
} ctx;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const char *bg_query(const bg_req *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* ---- answers ---- */

static const char *title_of(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

void bg_problem(bg_resp *rs, int status, const char *detail, json_t *errors)
{
    /* RFC 9457: "about:blank" says the status and title say it all. */
    json_t *j =
        json_pack("{s:s, s:s, s:i, s:s, s:o}", "type", "about:blank", "title",
                  title_of(status), "status", status, "detail", detail,
                  "errors", errors ? errors : json_object());
    bg_json(rs, status, j);
    rs->ctype = "application/problem+json";
    rs->etag[0] = '\0';
}

void bg_json(bg_resp *rs, int status, json_t *j)
{
    free(rs->body);
    rs->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    rs->len = rs->body ? strlen(rs->body) : 0;
    rs->status = rs->body ? status : 500;
    rs->ctype = "application/json";
    json_decref(j);
}

void bg_body(bg_resp *rs, int status, const char *ctype, const void *buf,
             size_t len)
{
    free(rs->body);
    rs->body = malloc(len ? len : 1);
    if (!rs->body) {
        rs->len = 0;
        rs->status = 500;
        return;
    }
    memcpy(rs->body, buf, len);
    rs->len = len;
    rs->status = status;
    rs->ctype = ctype;
}

/* ---- routing ---- */

/* "/123" or "/123/bill": the id and what follows it. */
static int parse_id(const char *s, long long *id, const char **rest)
{
    if (*s != '/' || s[1] < '1' || s[1] > '9')
        return 0;
    char *end;
    errno = 0;
    *id = strtoll(s + 1, &end, 10);
    if (errno)
        return 0;
    *rest = end;
    return 1;
}

static const bg_module *const modules[] = {
    &bg_users_module, &bg_products_module, &bg_invoices_module};

static void method_not_allowed(bg_resp *rs, const char *allow)
{
    rs->allow = allow;
    bg_problem(rs, 405, "this method is not allowed here", NULL);
}

static void collection(const bg_module *m, bg_req *rq, bg_resp *rs)
{
    if (strcmp(rq->method, "GET") == 0)
        m->list(rq, rs);
    else if (strcmp(rq->method, "POST") == 0)
        m->create(rq, rs);
    else
        method_not_allowed(rs, "GET, POST");
}

typedef struct item_call {
    const bg_module *m;
    long long id;
} item_call;

static int compute_item(void *ud, char **body, size_t *len)
{
    const item_call *k = ud;
    sqlite3 *db = bg_db();
    json_t *j = NULL;
    int rc = db ? bg_load_row(db, k->m->item_sql, k->m->row, k->id, &j) : -1;
    if (rc == 0)
        return TC_ABSENT;
    return rc < 0 ? -1 : bg_dump(j, body, len);
}

static void item(const bg_module *m, bg_req *rq, bg_resp *rs, long long id)
{
    if (strcmp(rq->method, "GET") == 0) {
        char key[64];
        item_call k = {m, id};
        snprintf(key, sizeof(key), m->item_key, id);
        bg_cached(rq, rs, NULL, key, "application/json", compute_item, &k);
    } else if (strcmp(rq->method, "PUT") == 0) {
        m->update(rq, rs, id);
    } else if (strcmp(rq->method, "DELETE") == 0) {
        m->destroy(rs, id);
    } else {
        method_not_allowed(rs, "GET, PUT, DELETE");
    }
}

static void health(bg_resp *rs)
{
    sqlite3 *db = bg_db();
    sqlite3_stmt *st = db ? bg_sql(db, "SELECT 1") : NULL;
    int db_ok = st && sqlite3_step(st) == SQLITE_ROW;
    if (st)
        sqlite3_reset(st);
    if (!db_ok) {
        bg_json(rs, 503,
                json_pack("{s:s, s:i, s:s}", "status", "down", "worker",
                          bg_worker_no, "db", "unavailable"));
        return;
    }
    tc_cache *c = bg_cache();
    tc_health_info h;
    tc_stats_info s;
    memset(&h, 0, sizeof(h));
    memset(&s, 0, sizeof(s));
    tc_health(c, &h);
    tc_stats(c, &s);
    static const char *const breakers[] = {"closed", "open", "half-open"};
    int configured = c && h.l2_configured;
    int ok = !configured || (h.l2_connected && s.coherent);
    json_t *redis = json_pack(
        "{s:b, s:b, s:b, s:s}", "configured", configured, "connected",
        configured && h.l2_connected, "coherent", configured && s.coherent,
        "breaker",
        h.breaker >= 0 && h.breaker <= 2 ? breakers[h.breaker] : "closed");
    bg_json(rs, 200,
            json_pack("{s:s, s:i, s:s, s:o}", "status", ok ? "ok" : "degraded",
                      "worker", bg_worker_no, "db", "ok", "redis", redis));
}

static void metrics(bg_resp *rs)
{
    size_t len;
    char *text = bg_metrics_text(&len);
    if (!text) {
        bg_problem(rs, 500, "out of memory", NULL);
        return;
    }
    free(rs->body);
    rs->body = text;
    rs->len = len;
    rs->status = 200;
    rs->ctype = "text/plain; version=0.0.4";
}

/* Routes the request; returns the route's label for the metrics. */
static const char *route(bg_req *rq, bg_resp *rs, const char *url)
{
    int get = strcmp(rq->method, "GET") == 0;
    if (strcmp(url, "/health") == 0 || strcmp(url, "/metrics") == 0) {
        if (!get)
            method_not_allowed(rs, "GET");
        else if (url[1] == 'h') {
            health(rs);
        } else {
            metrics(rs);
        }
        return url;
    }
    for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]); i++) {
        const bg_module *m = modules[i];
        size_t n = strlen(m->prefix);
        if (strncmp(url, m->prefix, n) != 0)
            continue;
        const char *tail = url + n, *rest;
        long long id;
        if (*tail == '\0' || strcmp(tail, "/") == 0) {
            collection(m, rq, rs);
            return m->prefix;
        }
        if (!parse_id(tail, &id, &rest))
            break;
        if (*rest == '\0') {
            item(m, rq, rs, id);
            return m->item_route;
        }
        if (m == &bg_invoices_module && strcmp(rest, "/bill") == 0) {
            if (get)
                bg_bill(rq, rs, id);
            else
                method_not_allowed(rs, "GET");
            return "/api/invoices/{id}/bill";
        }
        break;
    }
    bg_problem(rs, 404, "no such route", NULL);
    return "other";
}

/* ETag matching for If-None-Match: a list of tags, or "*". */
static int etag_matches(const char *inm, const char *etag)
{
    if (!inm || !etag[0])
        return 0;
    if (strcmp(inm, "*") == 0)
        return 1;
    size_t n = strlen(etag);
    for (const char *p = inm; (p = strstr(p, etag)) != NULL; p += n) {
        /* a weak W/"x" matches too (weak comparison for GET) */
        char after = p[n];
        if (after == '\0' || after == ',' || after == ' ')
            return 1;
    }
    return 0;
}

static enum MHD_Result send_resp(struct MHD_Connection *conn, bg_req *rq,
                                 bg_resp *rs)
{
    int not_modified = rs->status == 200 && strcmp(rq->method, "GET") == 0 &&
                       etag_matches(rq->if_none_match, rs->etag);
    if (not_modified || rs->status == 204) {
        free(rs->body);
        rs->body = NULL;
        rs->len = 0;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(
        rs->len, rs->body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(rs->body);
        return MHD_NO;
    }
    rs->body = NULL; /* MHD frees it */
    char worker[16];
    snprintf(worker, sizeof(worker), "%d", bg_worker_no);
    MHD_add_response_header(r, "X-Worker", worker);
    if (rs->len && rs->ctype)
        MHD_add_response_header(r, "Content-Type", rs->ctype);
    if (rs->xcache)
        MHD_add_response_header(r, "X-Cache", rs->xcache);
    if (rs->etag[0])
        MHD_add_response_header(r, "ETag", rs->etag);
    if (rs->location[0])
        MHD_add_response_header(r, "Location", rs->location);
    if (rs->allow)
        MHD_add_response_header(r, "Allow", rs->allow);
    if (rs->xcache)
        MHD_add_response_header(r, "Cache-Control", "no-cache");
    if (not_modified)
        rs->status = 304;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)rs->status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    ctx *x = *con_cls;
    if (!x) {
        x = calloc(1, sizeof(*x));
        if (!x)
            return MHD_NO;
        x->t0 = now_us();
        atomic_fetch_add(&inflight, 1);
        *con_cls = x;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (x->too_big || x->len + n > BG_BODY_MAX) {
            x->too_big = 1; /* read on, keep nothing */
            free(x->body);
            x->body = NULL;
            x->len = 0;
            return MHD_YES;
        }
        char *nb = realloc(x->body, x->len + n + 1);
        if (!nb)
            return MHD_NO;
        memcpy(nb + x->len, upload_data, n);
        x->body = nb;
        x->len += n;
        x->body[x->len] = '\0';
        return MHD_YES;
    }
    /* HEAD is GET without the body, which libmicrohttpd leaves out. */
    if (strcmp(method, "HEAD") == 0)
        method = "GET";
    bg_req rq = {
        .method = method,
        .conn = conn,
        .ctype =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"),
        .if_none_match = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     "If-None-Match"),
        .body = x->body,
        .body_len = x->len,
        .body_too_big = x->too_big,
    };
    bg_resp rs;
    memset(&rs, 0, sizeof(rs));
    rs.status = 500;
    const char *label = route(&rq, &rs, url);
    enum MHD_Result ret = send_resp(conn, &rq, &rs); /* 200 may become 304 */
    bg_metrics_record(method, label, rs.status, now_us() - x->t0);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)conn;
    (void)why;
    ctx *x = *con_cls;
    if (!x)
        return;
    free(x->body);
    free(x);
    *con_cls = NULL;
    atomic_fetch_sub(&inflight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fprintf(stderr, "billgen: worker %d: ", bg_worker_no);
    vfprintf(stderr, fmt, ap);
}

int bg_serve_worker(int listen_fd, int worker_no, int threads, int cache_on)
{
    bg_worker_no = worker_no;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    /* Blocked here, before any thread starts: every thread inherits the
       mask, and only this one waits for the signal. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (bg_cache_open(cache_on) != 0)
        return 2;
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        NULL, MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "billgen: worker %d: cannot start the server\n",
                worker_no);
        bg_cache_close();
        return 2;
    }
    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    /* Stop accepting; requests already read are answered. Idle
       keep-alive connections do not count as in flight. */
    MHD_quiesce_daemon(d);
    for (int i = 0; i < 1000 && atomic_load(&inflight) > 0; i++)
        usleep(10000);
    MHD_stop_daemon(d);
    bg_cache_close();
    return 0;
}
