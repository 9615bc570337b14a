/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The database: one SQLite file in WAL mode, created and migrated once by
 * the parent, then one connection per thread (a connection must not be
 * used by two threads at once), each with its prepared statements.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billgen.h"

typedef struct stmt {
    const char *sql; /* a string literal: its address is the key */
    sqlite3_stmt *st;
} stmt;

typedef struct conn {
    sqlite3 *h;
    size_t n, cap;
    stmt *stmts;
} conn;

static char *db_path;
static pthread_key_t conn_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t queries;

static const char *const schema =
    "CREATE TABLE users ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " email TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    " role TEXT NOT NULL,"
    " password_hash TEXT NOT NULL);"
    "CREATE TABLE products ("
    " id INTEGER PRIMARY KEY,"
    " sku TEXT NOT NULL UNIQUE,"
    " name TEXT NOT NULL,"
    " description TEXT NOT NULL,"
    " unit_price INTEGER NOT NULL,"
    " currency TEXT NOT NULL,"
    " tax_rate_bp INTEGER NOT NULL,"
    " active INTEGER NOT NULL);"
    "CREATE TABLE invoices ("
    " id INTEGER PRIMARY KEY,"
    " number TEXT NOT NULL UNIQUE,"
    " customer_id INTEGER NOT NULL REFERENCES users(id),"
    " status TEXT NOT NULL,"
    " currency TEXT NOT NULL,"
    " issue_date TEXT NOT NULL,"
    " due_date TEXT NOT NULL,"
    " notes TEXT NOT NULL,"
    " subtotal INTEGER NOT NULL, discount INTEGER NOT NULL,"
    " tax INTEGER NOT NULL, total INTEGER NOT NULL);"
    "CREATE INDEX invoices_customer ON invoices(customer_id);"
    "CREATE INDEX invoices_status ON invoices(status);"
    "CREATE TABLE invoice_lines ("
    " invoice_id INTEGER NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,"
    " pos INTEGER NOT NULL,"
    " product_id INTEGER NOT NULL REFERENCES products(id),"
    " description TEXT NOT NULL,"
    " quantity INTEGER NOT NULL, unit_price INTEGER NOT NULL,"
    " tax_rate_bp INTEGER NOT NULL, discount_bp INTEGER NOT NULL,"
    " subtotal INTEGER NOT NULL, discount INTEGER NOT NULL,"
    " tax INTEGER NOT NULL, total INTEGER NOT NULL,"
    " PRIMARY KEY (invoice_id, pos));"
    "CREATE INDEX lines_product ON invoice_lines(product_id);"
    /* The last number given per year: bumped inside the transaction that
       creates an invoice, so numbers are gapless. */
    "CREATE TABLE invoice_counters ("
    " year INTEGER PRIMARY KEY, last INTEGER NOT NULL);";

static int exec(sqlite3 *h, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &err) == SQLITE_OK)
        return 0;
    fprintf(stderr, "billgen: sqlite: %s\n", err ? err : "error");
    sqlite3_free(err);
    return -1;
}

static sqlite3 *open_conn(const char *path)
{
    sqlite3 *h = NULL;
    int flags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &h, flags, NULL) != SQLITE_OK) {
        fprintf(stderr, "billgen: %s: %s\n", path,
                h ? sqlite3_errmsg(h) : "cannot open");
        sqlite3_close(h);
        return NULL;
    }
    /* A writer waits for another's transaction instead of failing. */
    sqlite3_busy_timeout(h, 10000);
    if (exec(h, "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;") != 0) {
        sqlite3_close(h);
        return NULL;
    }
    return h;
}

static int migrate(sqlite3 *h)
{
    sqlite3_stmt *st = NULL;
    int version = -1;
    if (sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version < 0)
        return -1;
    if (version >= 1)
        return 0;
    if (exec(h, "BEGIN IMMEDIATE") != 0)
        return -1;
    if (exec(h, schema) != 0 || exec(h, "PRAGMA user_version=1") != 0) {
        exec(h, "ROLLBACK");
        return -1;
    }
    return exec(h, "COMMIT");
}

static void conn_free(void *p)
{
    conn *c = p;
    for (size_t i = 0; i < c->n; i++)
        sqlite3_finalize(c->stmts[i].st);
    free(c->stmts);
    sqlite3_close(c->h);
    free(c);
}

static void make_key(void)
{
    pthread_key_create(&conn_key, conn_free);
}

int bg_db_init(const char *path)
{
    free(db_path);
    db_path = strdup(path);
    if (!db_path)
        return -1;
    sqlite3 *h = open_conn(path);
    if (!h)
        return -1;
    int rc = exec(h, "PRAGMA journal_mode=WAL");
    if (rc == 0)
        rc = migrate(h);
    sqlite3_close(h);
    return rc;
}

static conn *this_conn(void)
{
    pthread_once(&key_once, make_key);
    conn *c = pthread_getspecific(conn_key);
    if (c || !db_path)
        return c;
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->h = open_conn(db_path);
    if (!c->h || pthread_setspecific(conn_key, c) != 0) {
        sqlite3_close(c->h);
        free(c);
        return NULL;
    }
    return c;
}

void bg_db_close(void)
{
    pthread_once(&key_once, make_key);
    conn *c = pthread_getspecific(conn_key);
    if (c) {
        pthread_setspecific(conn_key, NULL);
        conn_free(c);
    }
}

sqlite3 *bg_db(void)
{
    conn *c = this_conn();
    return c ? c->h : NULL;
}

sqlite3_stmt *bg_sql(sqlite3 *db, const char *sql)
{
    conn *c = this_conn();
    if (!c || c->h != db)
        return NULL;
    atomic_fetch_add_explicit(&queries, 1, memory_order_relaxed);
    for (size_t i = 0; i < c->n; i++) {
        if (c->stmts[i].sql == sql) {
            sqlite3_reset(c->stmts[i].st);
            sqlite3_clear_bindings(c->stmts[i].st);
            return c->stmts[i].st;
        }
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        stmt *ns = realloc(c->stmts, cap * sizeof(*ns));
        if (!ns)
            return NULL;
        c->stmts = ns;
        c->cap = cap;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
                           NULL) != SQLITE_OK) {
        fprintf(stderr, "billgen: sqlite prepare: %s\n", sqlite3_errmsg(db));
        return NULL;
    }
    c->stmts[c->n++] = (stmt){sql, st};
    return st;
}

int bg_begin(sqlite3 *db)
{
    return sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
               ? 0
               : -1;
}

int bg_commit(sqlite3 *db)
{
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
        return 0;
    bg_rollback(db);
    return -1;
}

void bg_rollback(sqlite3 *db)
{
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

uint64_t bg_db_queries(void)
{
    return atomic_load_explicit(&queries, memory_order_relaxed);
}

const char *bg_col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}

/* The counter moves inside the caller's transaction, so it moves only if
   the invoice is committed: numbers have no gaps. */
int bg_next_number(sqlite3 *db, int year, char out[32])
{
    sqlite3_stmt *st = bg_sql(
        db, "INSERT INTO invoice_counters (year, last) VALUES (?, 1) "
            "ON CONFLICT (year) DO UPDATE SET last = last + 1 RETURNING last");
    if (!st)
        return -1;
    sqlite3_bind_int(st, 1, year);
    int rc = sqlite3_step(st);
    long long n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    if (n < 1 || n > 999999)
        return -1;
    snprintf(out, 32, "INV-%04d-%06lld", year, n);
    return 0;
}
