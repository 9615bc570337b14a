/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * /api/products: {id, sku, name, description, unit_price, currency,
 * tax_rate_bp, active}. A bill shows its products' SKUs, so a product
 * write also moves the "bills" group.
 */
#include <stdio.h>
#include <string.h>

#include "billgen.h"

static const char *const fields[] = {"sku",        "name",     "description",
                                     "unit_price", "currency", "tax_rate_bp",
                                     "active",     NULL};
static const char *const ignored[] = {"id", NULL};

#define COLUMNS                                                               \
    "id, sku, name, description, unit_price, currency, tax_rate_bp, active"

#define ITEM_SQL "SELECT " COLUMNS " FROM products WHERE id = ?"

static json_t *row_json(sqlite3 *db, sqlite3_stmt *st)
{
    (void)db;
    return json_pack("{s:I, s:s, s:s, s:s, s:I, s:s, s:I, s:b}", "id",
                     (json_int_t)sqlite3_column_int64(st, 0), "sku",
                     bg_col_text(st, 1), "name", bg_col_text(st, 2),
                     "description", bg_col_text(st, 3), "unit_price",
                     (json_int_t)sqlite3_column_int64(st, 4), "currency",
                     bg_col_text(st, 5), "tax_rate_bp",
                     (json_int_t)sqlite3_column_int64(st, 6), "active",
                     sqlite3_column_int(st, 7));
}

typedef struct input {
    const char *sku, *name, *description, *currency;
    long long unit_price, tax_rate_bp;
    int has_price, has_tax, has_active, active;
} input;

static int check(json_t *in, int create, input *p, bg_resp *rs)
{
    json_t *errs = json_object();
    memset(p, 0, sizeof(*p));
    bg_check_fields(in, fields, ignored, errs, "");
    bg_get_str(in, "sku", 1, 64, &p->sku, errs);
    bg_get_str(in, "name", 1, 200, &p->name, errs);
    bg_get_str(in, "description", 0, 2000, &p->description, errs);
    if (bg_get_str(in, "currency", 3, 3, &p->currency, errs) > 0 &&
        !bg_is_currency(p->currency))
        bg_err(errs, "currency", "must be an ISO 4217 code (3 capitals)");
    p->has_price =
        bg_get_int(in, "unit_price", 0, INT64_MAX, &p->unit_price, errs) > 0;
    p->has_tax =
        bg_get_int(in, "tax_rate_bp", 0, 10000, &p->tax_rate_bp, errs) > 0;
    p->has_active = bg_get_bool(in, "active", &p->active, errs) > 0;
    if (create) {
        static const char *const need[] = {"sku", "name", "unit_price",
                                           "currency"};
        for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
            if (!json_object_get(in, need[i]))
                bg_need(errs, need[i]);
    }
    return bg_refuse_if(rs, errs, "the product is not valid");
}

static void inval_product(long long id)
{
    bg_inval_key("product:%lld", id);
    bg_inval_group("products");
    bg_inval_group("bills");
}

/* Binds the input over the statement's parameters 1..7 (NULL = keep). */
static void bind(sqlite3_stmt *st, const input *p)
{
    if (p->sku)
        sqlite3_bind_text(st, 1, p->sku, -1, SQLITE_STATIC);
    if (p->name)
        sqlite3_bind_text(st, 2, p->name, -1, SQLITE_STATIC);
    if (p->description)
        sqlite3_bind_text(st, 3, p->description, -1, SQLITE_STATIC);
    if (p->has_price)
        sqlite3_bind_int64(st, 4, p->unit_price);
    if (p->currency)
        sqlite3_bind_text(st, 5, p->currency, -1, SQLITE_STATIC);
    if (p->has_tax)
        sqlite3_bind_int64(st, 6, p->tax_rate_bp);
    if (p->has_active)
        sqlite3_bind_int(st, 7, p->active);
}

/* Runs the INSERT or UPDATE in its own transaction and answers. */
static void write_row(bg_resp *rs, const input *p, long long id)
{
    sqlite3 *db = bg_db();
    if (!db || bg_begin(db) != 0) {
        bg_problem(rs, 503, "the database is busy", NULL);
        return;
    }
    sqlite3_stmt *st =
        id ? bg_sql(db, "UPDATE products SET sku = coalesce(?1, sku), "
                        "name = coalesce(?2, name), "
                        "description = coalesce(?3, description), "
                        "unit_price = coalesce(?4, unit_price), "
                        "currency = coalesce(?5, currency), "
                        "tax_rate_bp = coalesce(?6, tax_rate_bp), "
                        "active = coalesce(?7, active) WHERE id = ?8")
           : bg_sql(db, "INSERT INTO products (sku, name, description, "
                        "unit_price, currency, tax_rate_bp, active) VALUES "
                        "(?1, ?2, coalesce(?3, ''), ?4, ?5, coalesce(?6, 0), "
                        "coalesce(?7, 1))");
    int rc = SQLITE_ERROR;
    if (st) {
        bind(st, p);
        if (id)
            sqlite3_bind_int64(st, 8, id);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
    }
    if (rc != SQLITE_DONE) {
        int dup = bg_is_unique_violation(db);
        bg_rollback(db);
        if (dup)
            bg_taken(rs, "sku", "a product with this sku exists");
        else
            bg_problem(rs, 500, "the database failed", NULL);
        return;
    }
    long long at = id ? id : sqlite3_last_insert_rowid(db);
    json_t *j = NULL;
    int found = bg_load_row(db, ITEM_SQL, row_json, at, &j);
    if (found <= 0 || bg_commit(db) != 0) {
        json_decref(j);
        bg_rollback(db);
        if (found == 0)
            bg_problem(rs, 404, "no such product", NULL);
        else
            bg_problem(rs, 500, "the database failed", NULL);
        return;
    }
    inval_product(at);
    if (!id)
        snprintf(rs->location, sizeof(rs->location), "/api/products/%lld", at);
    bg_json(rs, id ? 200 : 201, j);
}

static void create(bg_req *rq, bg_resp *rs)
{
    json_t *in = bg_parse_body(rq, rs);
    input p;
    if (in && check(in, 1, &p, rs) == 0)
        write_row(rs, &p, 0);
    json_decref(in);
}

static void update(bg_req *rq, bg_resp *rs, long long id)
{
    json_t *in = bg_parse_body(rq, rs);
    input p;
    if (in && check(in, 0, &p, rs) == 0) {
        inval_product(id);
        write_row(rs, &p, id);
    }
    json_decref(in);
}

static void destroy(bg_resp *rs, long long id)
{
    static const bg_delete d = {
        "SELECT EXISTS (SELECT 1 FROM invoice_lines WHERE product_id = ?)",
        "DELETE FROM products WHERE id = ?",
        "the product is used on an invoice", inval_product};
    bg_delete_row(rs, id, &d);
}

static void list(bg_req *rq, bg_resp *rs)
{
    bg_page p = {.count_sql = "SELECT count(*) FROM products",
                 .page_sql = "SELECT " COLUMNS " FROM products ORDER BY id "
                             "LIMIT ? OFFSET ?",
                 .row = row_json};
    char key[96];
    if (bg_list_args(rq, rs, &p, key, sizeof(key)) == 0)
        bg_cached(rq, rs, "products", key, "application/json", bg_compute_page,
                  &p);
}

const bg_module bg_products_module = {
    "/api/products", "/api/products/{id}",
    "product:%lld",  ITEM_SQL,
    row_json,        list,
    create,          update,
    destroy,
};
