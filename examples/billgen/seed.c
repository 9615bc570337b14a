/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `billgen seed`: deterministic demo data. A fixed-seed generator picks
 * names, prices and lines, so the same arguments on an empty database
 * give the same rows; amounts and numbers follow the service's own rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billgen.h"

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t next(void) /* xorshift64* */
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dULL;
}

static long pick(long n)
{
    return (long)(next() % (uint64_t)n);
}

static const char *const first[] = {"Ada",     "Alan",    "Grace",  "Linus",
                                    "Barbara", "Ken",     "Dennis", "Margaret",
                                    "Edsger",  "Frances", "John",   "Radia"};
static const char *const last[] = {
    "Lovelace", "Turing",   "Hopper",   "Torvalds", "Liskov", "Thompson",
    "Ritchie",  "Hamilton", "Dijkstra", "Allen",    "Backus", "Perlman"};
static const char *const adjective[] = {"Basic",  "Premium", "Compact",
                                        "Deluxe", "Eco",     "Pro"};
static const char *const noun[] = {"Widget",  "Gadget", "Service hour",
                                   "Licence", "Cable",  "Support plan"};
static const char *const currencies[] = {"EUR", "EUR", "EUR", "USD", "JPY"};
static const int tax_rates[] = {0, 700, 1900, 2000};
static const char *const statuses[] = {"draft", "issued", "paid", "void"};

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = SQLITE_DONE;
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int seed_users(sqlite3 *db, long n)
{
    char hash[128], name[64], email[96];
    /* One hash for every seeded user: Argon2 per user would take minutes
       for 10k users, and they share the demo password anyway. */
    if (bg_hash_password("billgen-demo", hash) != 0)
        return -1;
    sqlite3_stmt *st = bg_sql(db, "INSERT INTO users (name, email, role, "
                                  "password_hash) VALUES (?, ?, ?, ?)");
    sqlite3_stmt *max = bg_sql(db, "SELECT coalesce(max(id), 0) FROM users");
    if (!st || !max || sqlite3_step(max) != SQLITE_ROW)
        return -1;
    long base = (long)sqlite3_column_int64(max, 0);
    sqlite3_reset(max);
    for (long i = 1; i <= n; i++) {
        const char *f = first[pick(12)], *l = last[pick(12)];
        snprintf(name, sizeof(name), "%s %s", f, l);
        snprintf(email, sizeof(email), "%s.%s.%ld@example.com", f, l,
                 base + i);
        const char *role = i % 50 == 1   ? "admin"
                           : i % 10 == 2 ? "clerk"
                                         : "customer";
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, email, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, role, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
        if (step_done(st) != 0)
            return -1;
    }
    return 0;
}

static int seed_products(sqlite3 *db, long n)
{
    char sku[32], name[64], desc[128];
    sqlite3_stmt *st = bg_sql(
        db, "INSERT INTO products (sku, name, description, unit_price, "
            "currency, tax_rate_bp, active) VALUES (?, ?, ?, ?, ?, ?, 1)");
    sqlite3_stmt *max =
        bg_sql(db, "SELECT coalesce(max(id), 0) FROM products");
    if (!st || !max || sqlite3_step(max) != SQLITE_ROW)
        return -1;
    long base = (long)sqlite3_column_int64(max, 0);
    sqlite3_reset(max);
    for (long i = 1; i <= n; i++) {
        snprintf(sku, sizeof(sku), "SKU-%06ld", base + i);
        snprintf(name, sizeof(name), "%s %s", adjective[pick(6)],
                 noun[pick(6)]);
        snprintf(desc, sizeof(desc), "%s, item %ld of the catalogue", name,
                 base + i);
        sqlite3_bind_text(st, 1, sku, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, desc, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, 100 + pick(99900));
        sqlite3_bind_text(st, 5, currencies[pick(5)], -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 6, tax_rates[pick(4)]);
        if (step_done(st) != 0)
            return -1;
    }
    return 0;
}

typedef struct product {
    long long id, price, tax_bp;
    char currency[4], name[64];
} product;

static product *load_products(sqlite3 *db, long *n)
{
    sqlite3_stmt *st = bg_sql(db, "SELECT id, unit_price, tax_rate_bp, "
                                  "currency, name FROM products");
    size_t cap = 1024, k = 0;
    product *ps = malloc(cap * sizeof(*ps));
    if (!st || !ps) {
        free(ps);
        return NULL;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (k == cap) {
            product *np = realloc(ps, (cap *= 2) * sizeof(*ps));
            if (!np)
                break;
            ps = np;
        }
        ps[k].id = sqlite3_column_int64(st, 0);
        ps[k].price = sqlite3_column_int64(st, 1);
        ps[k].tax_bp = sqlite3_column_int64(st, 2);
        snprintf(ps[k].currency, 4, "%s", bg_col_text(st, 3));
        snprintf(ps[k].name, 64, "%s", bg_col_text(st, 4));
        k++;
    }
    sqlite3_reset(st);
    *n = (long)k;
    return ps;
}

/* One invoice for a random customer, 1 to 5 lines of products in the
   currency of the first one picked. */
static int seed_invoice(sqlite3 *db, const product *ps, long np,
                        long long users, long i)
{
    const product *first_p = &ps[pick(np)];
    int year = 2025 + (int)(i % 2);
    long day = pick(28) + 1, month = pick(12) + 1, days;
    char issue[11], due[11], number[32];
    snprintf(issue, sizeof(issue), "%04d-%02ld-%02ld", year, month, day);
    bg_parse_date(issue, &days);
    bg_format_date(days + 30, due);
    if (bg_next_number(db, year, number) != 0)
        return -1;
    sqlite3_stmt *inv = bg_sql(
        db, "INSERT INTO invoices (number, customer_id, status, currency, "
            "issue_date, due_date, notes, subtotal, discount, tax, total) "
            "VALUES (?, ?, ?, ?, ?, ?, '', 0, 0, 0, 0)");
    if (!inv)
        return -1;
    sqlite3_bind_text(inv, 1, number, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(inv, 2, 1 + (long long)pick((long)users));
    sqlite3_bind_text(inv, 3, statuses[i % 4], -1, SQLITE_STATIC);
    sqlite3_bind_text(inv, 4, first_p->currency, -1, SQLITE_STATIC);
    sqlite3_bind_text(inv, 5, issue, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(inv, 6, due, -1, SQLITE_TRANSIENT);
    if (step_done(inv) != 0)
        return -1;
    long long id = sqlite3_last_insert_rowid(db);
    sqlite3_stmt *line = bg_sql(
        db, "INSERT INTO invoice_lines (invoice_id, pos, product_id, "
            "description, quantity, unit_price, tax_rate_bp, discount_bp, "
            "subtotal, discount, tax, total) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!line)
        return -1;
    bg_amounts sum = {0, 0, 0, 0};
    long nlines = 1 + pick(5);
    for (long k = 0, tries = 0; k < nlines && tries < 50; tries++) {
        const product *p = k ? &ps[pick(np)] : first_p;
        if (strcmp(p->currency, first_p->currency) != 0)
            continue;
        long long qty = 1 + pick(20), disc = pick(4) == 0 ? 1000 : 0;
        bg_amounts a;
        bg_line_amounts(qty, p->price, disc, p->tax_bp, &a);
        bg_amounts_add(&sum, &a);
        long long v[] = {id,         k,          p->id,     0,
                         qty,        p->price,   p->tax_bp, disc,
                         a.subtotal, a.discount, a.tax,     a.total};
        for (int c = 0; c < 12; c++)
            if (c != 3)
                sqlite3_bind_int64(line, c + 1, v[c]);
        sqlite3_bind_text(line, 4, p->name, -1, SQLITE_TRANSIENT);
        if (step_done(line) != 0)
            return -1;
        k++;
    }
    sqlite3_stmt *tot =
        bg_sql(db, "UPDATE invoices SET subtotal = ?, discount = ?, "
                   "tax = ?, total = ? WHERE id = ?");
    if (!tot)
        return -1;
    sqlite3_bind_int64(tot, 1, sum.subtotal);
    sqlite3_bind_int64(tot, 2, sum.discount);
    sqlite3_bind_int64(tot, 3, sum.tax);
    sqlite3_bind_int64(tot, 4, sum.total);
    sqlite3_bind_int64(tot, 5, id);
    return step_done(tot);
}

static int seed_invoices(sqlite3 *db, long n)
{
    if (n == 0)
        return 0;
    long np = 0;
    product *ps = load_products(db, &np);
    sqlite3_stmt *st = bg_sql(db, "SELECT count(*) FROM users");
    long long users = 0;
    if (st && sqlite3_step(st) == SQLITE_ROW)
        users = sqlite3_column_int64(st, 0);
    if (st)
        sqlite3_reset(st);
    int rc = 0;
    if (!ps || np == 0 || users == 0) {
        fprintf(stderr, "billgen seed: invoices need users and products\n");
        rc = -1;
    }
    for (long i = 0; rc == 0 && i < n; i++)
        rc = seed_invoice(db, ps, np, users, i);
    free(ps);
    return rc;
}

int bg_seed(const char *db_path, long users, long products, long invoices)
{
    if (bg_db_init(db_path) != 0)
        return 1;
    sqlite3 *db = bg_db();
    if (!db || bg_begin(db) != 0)
        return 1;
    int rc = 0;
    if (seed_users(db, users) != 0 || seed_products(db, products) != 0 ||
        seed_invoices(db, invoices) != 0) {
        fprintf(stderr, "billgen seed: %s\n", sqlite3_errmsg(db));
        bg_rollback(db);
        rc = 1;
    } else if (bg_commit(db) != 0) {
        rc = 1;
    }
    bg_db_close();
    if (rc)
        return rc;
    printf("billgen: seeded %ld users, %ld products, %ld invoices into %s\n",
           users, products, invoices, db_path);
    return 0;
}
