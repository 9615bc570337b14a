/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * billgen: the BillGenerator reference service (users, products, invoices
 * over HTTP/JSON on SQLite), cached with tiercache. docs/billgen.md is its
 * contract.
 *
 * A worker process serves requests on libmicrohttpd's thread pool. Each
 * thread has its own SQLite connection (db.c); the worker has one
 * tc_cache shared by its threads (cache.c). A request is read whole into
 * a bg_req, handled by its module (users.c, products.c, invoices.c), and
 * answered from a bg_resp (server.c).
 */
#ifndef BILLGEN_H
#define BILLGEN_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "tiercache.h"

#define BG_BODY_MAX (64 * 1024)
#define BG_LIST_TTL_MS 300000
#define BG_ITEM_TTL_MS 300000

/* ---- one request and its answer (server.c) ---- */

typedef struct bg_req {
    const char *method;
    struct MHD_Connection *conn;
    const char *ctype;         /* Content-Type, NULL if none */
    const char *if_none_match; /* If-None-Match, NULL if none */
    char *body;                /* NUL-terminated, NULL if none */
    size_t body_len;
    int body_too_big;
} bg_req;

typedef struct bg_resp {
    int status;
    char *body; /* malloc'd, may be NULL */
    size_t len;
    const char *ctype;  /* static */
    const char *xcache; /* static; NULL: not a cached route */
    char etag[24];      /* "" for none */
    char location[64];  /* "" for none */
    const char *allow;  /* static; for 405 */
} bg_resp;

/* A query parameter, NULL if absent. */
const char *bg_query(const bg_req *rq, const char *name);

/* Answers with a problem+json body; `errors` (stolen, may be NULL) maps
   fields to messages. */
void bg_problem(bg_resp *rs, int status, const char *detail, json_t *errors);
/* Answers with `j` (stolen) as JSON. */
void bg_json(bg_resp *rs, int status, json_t *j);
/* Answers with the bytes of a cached or computed body (copied). */
void bg_body(bg_resp *rs, int status, const char *ctype, const void *buf,
             size_t len);

/* ---- the database (db.c) ---- */

/* Opens (creating and migrating) the database once, in the parent, before
   the workers start. 0 ok, -1 with a message on stderr. */
int bg_db_init(const char *path);
/* This thread's connection, opened on first use; NULL on failure. A
   thread that ends closes it; the main thread closes its own with
   bg_db_close (the last close checkpoints the WAL into the file). */
sqlite3 *bg_db(void);
void bg_db_close(void);
/* A prepared statement for `sql` (a string literal: its address is the
   cache key) on this thread's connection, reset and with its bindings
   cleared; counted as one query. NULL on failure. */
sqlite3_stmt *bg_sql(sqlite3 *db, const char *sql);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. 0 ok. */
int bg_begin(sqlite3 *db);
int bg_commit(sqlite3 *db);
void bg_rollback(sqlite3 *db);
/* The next invoice number of `year`, "INV-<year>-<6 digits>", inside the
   caller's write transaction. 0, or -1. */
int bg_next_number(sqlite3 *db, int year, char out[32]);
/* Queries run by this process so far. */
uint64_t bg_db_queries(void);
/* A column as text, "" for NULL. */
const char *bg_col_text(sqlite3_stmt *st, int col);

/* ---- the cache (cache.c) ---- */

/* What a cached route computes: a body, or "absent" (404). */
typedef int (*bg_compute_fn)(void *ud, char **body, size_t *len);

/* Opens this worker's cache from the environment; `enabled` 0: none.
   0 ok, -1 (logged). */
int bg_cache_open(int enabled);
void bg_cache_close(void);
tc_cache *bg_cache(void); /* NULL when caching is off */
/* Whether the environment configures Redis at all (REDIS_URL=none does
   not); -1 when it is malformed, with the message in err. */
int bg_cache_configured(char *err, size_t cap);

/* Serves `key` (built by the caller; a group key when group != NULL)
   through tc_fetch, or straight from fn without a cache. Sets the body
   (200, `ctype`), ETag and X-Cache; 404 for "absent", 500 on a failed
   computation. */
void bg_cached(bg_req *rq, bg_resp *rs, const char *group, const char *key,
               const char *ctype, bg_compute_fn fn, void *ud);

/* Invalidation: deletes an item key, a bill, or bumps a group. */
void bg_inval_key(const char *fmt, long long id);
void bg_inval_bill(long long invoice_id);
void bg_inval_group(const char *group);

/* ---- what the resources share (crud.c) ---- */

/* A row as JSON (NULL on failure); may run further queries on db. */
typedef json_t *(*bg_row_fn)(sqlite3 *db, sqlite3_stmt *st);
/* Runs `sql` with the id as parameter 1: 1 found (*out), 0 not found,
   -1 failed. */
int bg_load_row(sqlite3 *db, const char *sql, bg_row_fn row, long long id,
                json_t **out);

/* Runs `sql` with the id as parameter 1 and reads the first column of
   its row (SELECT EXISTS/count(*)): 1 non-zero, 0 zero, -1 failed or no
   row. */
int bg_exists(sqlite3 *db, const char *sql, long long id);

/* A page of a list: count_sql and page_sql take `args` (text) as their
   first parameters, page_sql then LIMIT and OFFSET. */
typedef struct bg_page {
    const char *count_sql, *page_sql;
    bg_row_fn row;
    const char *args[4];
    int nargs;
    long long page, per_page;
} bg_page;
/* A bg_compute_fn over a bg_page: {items, page, per_page, total}. */
int bg_compute_page(void *ud, char **body, size_t *len);
/* page/per_page into p and the list's cache key "list:page=..&per_page=..";
   -1 after answering 400. */
int bg_list_args(bg_req *rq, bg_resp *rs, bg_page *p, char *key, size_t cap);

/* DELETE of one row, refused with 409 while used_sql (parameter: the id)
   finds a reference; `inval` runs before the write and after the commit. */
typedef struct bg_delete {
    const char *used_sql, *delete_sql, *in_use;
    void (*inval)(long long id);
} bg_delete;
void bg_delete_row(bg_resp *rs, long long id, const bg_delete *d);

/* ---- the modules ---- */

/* A resource: its routes, its item key, and its handlers; server.c routes
   to them and serves item GETs through the cache. */
typedef struct bg_module {
    const char *prefix;     /* "/api/users" */
    const char *item_route; /* "/api/users/{id}", the metrics label */
    const char *item_key;   /* "user:%lld" */
    const char *item_sql;   /* one row by id (parameter 1) */
    bg_row_fn row;          /* that row as JSON */
    void (*list)(bg_req *rq, bg_resp *rs);
    void (*create)(bg_req *rq, bg_resp *rs);
    void (*update)(bg_req *rq, bg_resp *rs, long long id);
    void (*destroy)(bg_resp *rs, long long id);
} bg_module;

extern const bg_module bg_users_module, bg_products_module, bg_invoices_module;
void bg_bill(bg_req *rq, bg_resp *rs, long long invoice_id);

/* ---- validation (validate.c) ---- */

/* Parses a JSON object body; answers 400/415/413 itself and returns NULL
   on failure. */
json_t *bg_parse_body(bg_req *rq, bg_resp *rs);
/* Unknown fields: every key of obj not in `allowed` or `ignored` (both
   NULL-terminated) gets an error in errs. */
void bg_check_fields(json_t *obj, const char *const *allowed,
                     const char *const *ignored, json_t *errs,
                     const char *prefix);
/* Field checks: 1 when present and valid (value in *out), 0 when absent,
   -1 when invalid (error recorded). */
int bg_get_str(json_t *obj, const char *name, size_t min, size_t max,
               const char **out, json_t *errs);
int bg_get_int(json_t *obj, const char *name, long long min, long long max,
               long long *out, json_t *errs);
int bg_get_bool(json_t *obj, const char *name, int *out, json_t *errs);
void bg_err(json_t *errs, const char *field, const char *msg);
/* 0 when errs is empty (freed); else answers 422 with it and -1. */
int bg_refuse_if(bg_resp *rs, json_t *errs, const char *detail);
/* Answers 409 naming the field that must be unique. */
void bg_taken(bg_resp *rs, const char *field, const char *detail);
/* Required field missing. */
void bg_need(json_t *errs, const char *field);
int bg_is_currency(const char *s);
/* YYYY-MM-DD that is a real date: days since 1970-01-01 in *days. */
int bg_parse_date(const char *s, long *days);
void bg_format_date(long days, char out[11]);
long bg_today(void);
/* page/per_page from the query: 0, or -1 after answering 400. */
int bg_page_args(bg_req *rq, bg_resp *rs, long long *page,
                 long long *per_page);
/* {items, page, per_page, total}; items stolen. */
json_t *bg_page_json(json_t *items, long long page, long long per_page,
                     long long total);
/* The body as compact JSON, malloc'd, for a compute callback. 0 or -1;
   `j` is stolen. */
int bg_dump(json_t *j, char **body, size_t *len);
/* Whether the last statement failed on a UNIQUE constraint. */
int bg_is_unique_violation(sqlite3 *db);
/* An id from the query (customer_id): 1 present, 0 absent, -1 bad. */
int bg_query_id(bg_req *rq, const char *name, long long *out);

/* ---- money (money.c) ---- */

typedef struct bg_amounts {
    long long subtotal, discount, tax, total;
} bg_amounts;
/* A line's amounts; 0, or -1 when one would not fit in int64. */
int bg_line_amounts(long long quantity, long long unit_price,
                    long long discount_bp, long long tax_rate_bp,
                    bg_amounts *out);
/* sum += add; 0, or -1 on overflow. */
int bg_amounts_add(bg_amounts *sum, const bg_amounts *add);
/* Minor units as text with the currency's exponent ("12.34"). */
void bg_money(char *out, size_t cap, long long minor, const char *currency);

/* ---- metrics (metrics.c) ---- */

void bg_metrics_record(const char *method, const char *route, int status,
                       uint64_t micros);
/* The Prometheus text: tiercache stats, then billgen's. malloc'd. */
char *bg_metrics_text(size_t *len);

/* ---- the worker (server.c) and seed (seed.c) ---- */

extern int bg_worker_no;
int bg_serve_worker(int listen_fd, int worker_no, int threads, int cache_on);
int bg_seed(const char *db_path, long users, long products, long invoices);

/* Password hashing with libsodium; the hash is never cached or sent. */
int bg_hash_password(const char *pw, char out[128]);

#endif /* BILLGEN_H */
