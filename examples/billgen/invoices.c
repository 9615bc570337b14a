/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * /api/invoices: an invoice and its lines, amounts computed here (never
 * taken from the client), a number assigned inside the write transaction
 * from a per-year counter, and the status machine draft → issued → paid,
 * draft/issued → void.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billgen.h"

#define MAX_LINES 100

static const char *const fields[] = {"customer_id", "currency", "status",
                                     "issue_date",  "due_date", "notes",
                                     "lines",       NULL};
static const char *const ignored[] = {"id",  "number", "subtotal", "discount",
                                      "tax", "total",  NULL};
static const char *const line_fields[] = {"product_id", "quantity",
                                          "description", "discount_bp", NULL};
static const char *const line_ignored[] = {
    "unit_price", "tax_rate_bp", "subtotal", "discount", "tax", "total", NULL};
static const char *const statuses[] = {"draft", "issued", "paid", "void",
                                       NULL};

#define COLUMNS                                                               \
    "id, number, customer_id, status, currency, issue_date, due_date, "       \
    "notes, subtotal, discount, tax, total"
#define ITEM_SQL "SELECT " COLUMNS " FROM invoices WHERE id = ?"

/* ---- reading ---- */

static json_t *line_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                     "product_id", (json_int_t)sqlite3_column_int64(st, 0),
                     "description", bg_col_text(st, 1), "quantity",
                     (json_int_t)sqlite3_column_int64(st, 2), "unit_price",
                     (json_int_t)sqlite3_column_int64(st, 3), "tax_rate_bp",
                     (json_int_t)sqlite3_column_int64(st, 4), "discount_bp",
                     (json_int_t)sqlite3_column_int64(st, 5), "subtotal",
                     (json_int_t)sqlite3_column_int64(st, 6), "discount",
                     (json_int_t)sqlite3_column_int64(st, 7), "tax",
                     (json_int_t)sqlite3_column_int64(st, 8), "total",
                     (json_int_t)sqlite3_column_int64(st, 9));
}

static json_t *lines_json(sqlite3 *db, long long id)
{
    sqlite3_stmt *st =
        bg_sql(db, "SELECT product_id, description, quantity, unit_price, "
                   "tax_rate_bp, discount_bp, subtotal, discount, tax, total "
                   "FROM invoice_lines WHERE invoice_id = ? ORDER BY pos");
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, id);
    json_t *a = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(a, line_json(st));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(a);
        return NULL;
    }
    return a;
}

static json_t *row_json(sqlite3 *db, sqlite3_stmt *st)
{
    long long id = sqlite3_column_int64(st, 0);
    json_t *lines = lines_json(db, id);
    if (!lines)
        return NULL;
    return json_pack(
        "{s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:I}",
        "id", (json_int_t)id, "number", bg_col_text(st, 1), "customer_id",
        (json_int_t)sqlite3_column_int64(st, 2), "status", bg_col_text(st, 3),
        "currency", bg_col_text(st, 4), "issue_date", bg_col_text(st, 5),
        "due_date", bg_col_text(st, 6), "notes", bg_col_text(st, 7), "lines",
        lines, "subtotal", (json_int_t)sqlite3_column_int64(st, 8), "discount",
        (json_int_t)sqlite3_column_int64(st, 9), "tax",
        (json_int_t)sqlite3_column_int64(st, 10), "total",
        (json_int_t)sqlite3_column_int64(st, 11));
}

/* ---- input ---- */

typedef struct line_in {
    long long product_id, quantity, discount_bp;
    const char *description; /* NULL: the product's name */
} line_in;

typedef struct inv_in {
    long long customer_id;
    const char *currency, *status, *issue_date, *due_date, *notes;
    int has_customer, has_lines;
    size_t nlines;
    line_in lines[MAX_LINES];
} inv_in;

static int is_status(const char *s)
{
    for (const char *const *p = statuses; *p; p++)
        if (strcmp(*p, s) == 0)
            return 1;
    return 0;
}

static void check_line(json_t *l, size_t i, line_in *out, json_t *errs)
{
    char pre[32], f[64];
    snprintf(pre, sizeof(pre), "lines[%zu].", i);
    if (!json_is_object(l)) {
        snprintf(f, sizeof(f), "lines[%zu]", i);
        bg_err(errs, f, "must be an object");
        return;
    }
    bg_check_fields(l, line_fields, line_ignored, errs, pre);
    /* The helpers name fields without the prefix: check into a scratch
       object and move its messages over. */
    json_t *e = json_object();
    out->discount_bp = 0;
    out->description = NULL;
    if (bg_get_int(l, "product_id", 1, INT64_MAX, &out->product_id, e) == 0)
        bg_need(e, "product_id");
    if (bg_get_int(l, "quantity", 1, INT64_MAX, &out->quantity, e) == 0)
        bg_need(e, "quantity");
    bg_get_str(l, "description", 0, 2000, &out->description, e);
    bg_get_int(l, "discount_bp", 0, 10000, &out->discount_bp, e);
    const char *k;
    json_t *v;
    json_object_foreach(e, k, v)
    {
        snprintf(f, sizeof(f), "%s%s", pre, k);
        bg_err(errs, f, json_string_value(v));
    }
    json_decref(e);
}

/* Shape and ranges; what needs the database is checked in the write. */
static void check(json_t *in, int create, inv_in *v, json_t *errs)
{
    memset(v, 0, sizeof(*v));
    bg_check_fields(in, fields, ignored, errs, "");
    v->has_customer =
        bg_get_int(in, "customer_id", 1, INT64_MAX, &v->customer_id, errs) > 0;
    if (bg_get_str(in, "currency", 3, 3, &v->currency, errs) > 0 &&
        !bg_is_currency(v->currency))
        bg_err(errs, "currency", "must be an ISO 4217 code (3 capitals)");
    if (bg_get_str(in, "status", 1, 16, &v->status, errs) > 0) {
        if (!is_status(v->status))
            bg_err(errs, "status", "must be draft, issued, paid or void");
        else if (create && strcmp(v->status, "draft") != 0)
            bg_err(errs, "status", "a new invoice is a draft");
    }
    long days;
    if (bg_get_str(in, "issue_date", 10, 10, &v->issue_date, errs) > 0 &&
        !bg_parse_date(v->issue_date, &days))
        bg_err(errs, "issue_date", "must be a date YYYY-MM-DD");
    if (bg_get_str(in, "due_date", 10, 10, &v->due_date, errs) > 0 &&
        !bg_parse_date(v->due_date, &days))
        bg_err(errs, "due_date", "must be a date YYYY-MM-DD");
    bg_get_str(in, "notes", 0, 2000, &v->notes, errs);
    json_t *lines = json_object_get(in, "lines");
    if (lines && !json_is_array(lines)) {
        bg_err(errs, "lines", "must be an array");
    } else if (lines && json_array_size(lines) > MAX_LINES) {
        bg_err(errs, "lines", "at most 100 lines");
    } else if (lines) {
        v->has_lines = 1;
        v->nlines = json_array_size(lines);
        for (size_t i = 0; i < v->nlines; i++)
            check_line(json_array_get(lines, i), i, &v->lines[i], errs);
    }
    if (create && !v->has_customer && !json_object_get(in, "customer_id"))
        bg_need(errs, "customer_id");
    if (create && !json_object_get(in, "currency"))
        bg_need(errs, "currency");
}

/* ---- writing ---- */

/* The invoice as stored, for a PUT: what the request does not change
   (the sums too, when it keeps the lines). */
typedef struct current {
    char status[16], currency[4], issue_date[11], due_date[11];
    long long customer_id;
    bg_amounts sums;
} current;

/* Writes the lines of invoice `id` (the old ones gone first) and their
   sums into *sum. 0, -1 on a database failure; problems with the input
   go to errs. */
static int write_lines(sqlite3 *db, long long id, const inv_in *v,
                       const char *currency, bg_amounts *sum, json_t *errs)
{
    sqlite3_stmt *del =
        bg_sql(db, "DELETE FROM invoice_lines WHERE invoice_id = ?");
    if (!del)
        return -1;
    sqlite3_bind_int64(del, 1, id);
    int rc = sqlite3_step(del);
    sqlite3_reset(del);
    if (rc != SQLITE_DONE)
        return -1;
    memset(sum, 0, sizeof(*sum));
    for (size_t i = 0; i < v->nlines; i++) {
        const line_in *l = &v->lines[i];
        char f[64];
        sqlite3_stmt *p = bg_sql(db, "SELECT currency, unit_price, "
                                     "tax_rate_bp, name, active FROM "
                                     "products WHERE id = ?");
        if (!p)
            return -1;
        sqlite3_bind_int64(p, 1, l->product_id);
        if (sqlite3_step(p) != SQLITE_ROW) {
            sqlite3_reset(p);
            snprintf(f, sizeof(f), "lines[%zu].product_id", i);
            bg_err(errs, f, "no such product");
            continue;
        }
        char name[256];
        snprintf(name, sizeof(name), "%s", bg_col_text(p, 3));
        int same = strcmp(bg_col_text(p, 0), currency) == 0;
        long long price = sqlite3_column_int64(p, 1);
        long long tax_bp = sqlite3_column_int64(p, 2);
        int active = sqlite3_column_int(p, 4);
        sqlite3_reset(p);
        snprintf(f, sizeof(f), "lines[%zu].product_id", i);
        if (!same)
            bg_err(errs, f, "the product's currency is not the invoice's");
        if (!active)
            bg_err(errs, f, "the product is not active");
        bg_amounts a;
        if (bg_line_amounts(l->quantity, price, l->discount_bp, tax_bp, &a) !=
                0 ||
            bg_amounts_add(sum, &a) != 0) {
            snprintf(f, sizeof(f), "lines[%zu].quantity", i);
            bg_err(errs, f, "the amounts would overflow");
            continue;
        }
        if (json_object_size(errs))
            continue; /* refused anyway: check the other lines */
        sqlite3_stmt *ins = bg_sql(
            db, "INSERT INTO invoice_lines (invoice_id, pos, product_id, "
                "description, quantity, unit_price, tax_rate_bp, "
                "discount_bp, subtotal, discount, tax, total) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        if (!ins)
            return -1;
        sqlite3_bind_int64(ins, 1, id);
        sqlite3_bind_int64(ins, 2, (long long)i);
        sqlite3_bind_int64(ins, 3, l->product_id);
        sqlite3_bind_text(ins, 4, l->description ? l->description : name, -1,
                          SQLITE_TRANSIENT);
        sqlite3_bind_int64(ins, 5, l->quantity);
        sqlite3_bind_int64(ins, 6, price);
        sqlite3_bind_int64(ins, 7, tax_bp);
        sqlite3_bind_int64(ins, 8, l->discount_bp);
        sqlite3_bind_int64(ins, 9, a.subtotal);
        sqlite3_bind_int64(ins, 10, a.discount);
        sqlite3_bind_int64(ins, 11, a.tax);
        sqlite3_bind_int64(ins, 12, a.total);
        rc = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (rc != SQLITE_DONE)
            return -1;
    }
    return 0;
}

static void inval_invoice(long long id)
{
    bg_inval_key("invoice:%lld", id);
    bg_inval_bill(id);
    bg_inval_group("invoices");
}

/* The transitions a PUT may make; the same status again is allowed. */
static int may_move(const char *from, const char *to)
{
    if (strcmp(from, to) == 0)
        return 1;
    if (strcmp(from, "draft") == 0)
        return strcmp(to, "issued") == 0 || strcmp(to, "void") == 0;
    if (strcmp(from, "issued") == 0)
        return strcmp(to, "paid") == 0 || strcmp(to, "void") == 0;
    return 0;
}

/* Checks a PUT against the stored invoice `cur`. */
static void check_change(sqlite3 *db, long long id, const inv_in *v,
                         const current *cur, json_t *errs)
{
    int draft = strcmp(cur->status, "draft") == 0;
    if (v->status && !may_move(cur->status, v->status)) {
        char msg[96];
        snprintf(msg, sizeof(msg), "cannot move from %s to %s", cur->status,
                 v->status);
        bg_err(errs, "status", msg);
    }
    if (!draft) {
        if (v->has_lines)
            bg_err(errs, "lines", "only a draft may change its lines");
        if (v->has_customer && v->customer_id != cur->customer_id)
            bg_err(errs, "customer_id", "only a draft may change it");
        if (v->currency && strcmp(v->currency, cur->currency) != 0)
            bg_err(errs, "currency", "only a draft may change it");
        if (v->issue_date && strcmp(v->issue_date, cur->issue_date) != 0)
            bg_err(errs, "issue_date", "only a draft may change it");
    }
    if (v->issue_date && strncmp(v->issue_date, cur->issue_date, 4) != 0)
        bg_err(errs, "issue_date", "must stay in the invoice number's year");
    /* A new currency over the lines kept: their products must have it. */
    if (draft && v->currency && !v->has_lines) {
        sqlite3_stmt *st = bg_sql(
            db, "SELECT count(*) FROM invoice_lines l JOIN products p ON "
                "p.id = l.product_id WHERE l.invoice_id = ? AND "
                "p.currency <> ?");
        if (st) {
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_text(st, 2, v->currency, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW &&
                sqlite3_column_int64(st, 0) > 0)
                bg_err(errs, "currency",
                       "the invoice's lines have another currency");
            sqlite3_reset(st);
        }
    }
}

static int load_current(sqlite3 *db, long long id, current *cur)
{
    sqlite3_stmt *st =
        bg_sql(db, "SELECT status, currency, issue_date, due_date, "
                   "customer_id, subtotal, discount, tax, total "
                   "FROM invoices WHERE id = ?");
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(cur->status, sizeof(cur->status), "%s", bg_col_text(st, 0));
        snprintf(cur->currency, sizeof(cur->currency), "%s",
                 bg_col_text(st, 1));
        snprintf(cur->issue_date, sizeof(cur->issue_date), "%s",
                 bg_col_text(st, 2));
        snprintf(cur->due_date, sizeof(cur->due_date), "%s",
                 bg_col_text(st, 3));
        cur->customer_id = sqlite3_column_int64(st, 4);
        cur->sums.subtotal = sqlite3_column_int64(st, 5);
        cur->sums.discount = sqlite3_column_int64(st, 6);
        cur->sums.tax = sqlite3_column_int64(st, 7);
        cur->sums.total = sqlite3_column_int64(st, 8);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* The dates after the request: defaults, and due not before issue. */
static void settle_dates(const inv_in *v, current *cur, json_t *errs)
{
    long issue, due;
    if (v->issue_date)
        snprintf(cur->issue_date, sizeof(cur->issue_date), "%s",
                 v->issue_date);
    if (!cur->issue_date[0])
        bg_format_date(bg_today(), cur->issue_date);
    if (!bg_parse_date(cur->issue_date, &issue))
        return; /* reported by check() */
    if (v->due_date)
        snprintf(cur->due_date, sizeof(cur->due_date), "%s", v->due_date);
    if (!cur->due_date[0])
        bg_format_date(issue + 30, cur->due_date);
    if (bg_parse_date(cur->due_date, &due) && due < issue)
        bg_err(errs, "due_date", "must not be before issue_date");
}

/* Writes the invoice row (INSERT when id is 0) with the request's fields
   over `cur`. 0, or -1 on a database failure. */
static int write_row(sqlite3 *db, long long *id, const inv_in *v,
                     const current *cur, const bg_amounts *sum)
{
    char number[32];
    sqlite3_stmt *st;
    if (*id == 0) {
        if (bg_next_number(db, atoi(cur->issue_date), number) != 0)
            return -1;
        st = bg_sql(db, "INSERT INTO invoices (number, customer_id, status, "
                        "currency, issue_date, due_date, notes, subtotal, "
                        "discount, tax, total) VALUES (?9, ?1, ?2, ?3, ?4, "
                        "?5, coalesce(?6, ''), ?7, ?8, ?10, ?11)");
    } else {
        st = bg_sql(db, "UPDATE invoices SET customer_id = ?1, status = ?2, "
                        "currency = ?3, issue_date = ?4, due_date = ?5, "
                        "notes = coalesce(?6, notes), subtotal = ?7, "
                        "discount = ?8, tax = ?10, total = ?11 "
                        "WHERE id = ?12");
    }
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1,
                       v->has_customer ? v->customer_id : cur->customer_id);
    sqlite3_bind_text(st, 2, v->status ? v->status : cur->status, -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 3, v->currency ? v->currency : cur->currency, -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 4, cur->issue_date, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, cur->due_date, -1, SQLITE_STATIC);
    if (v->notes)
        sqlite3_bind_text(st, 6, v->notes, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, sum->subtotal);
    sqlite3_bind_int64(st, 8, sum->discount);
    sqlite3_bind_int64(st, 10, sum->tax);
    sqlite3_bind_int64(st, 11, sum->total);
    if (*id == 0)
        sqlite3_bind_text(st, 9, number, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 12, *id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -1;
    if (*id == 0)
        *id = sqlite3_last_insert_rowid(db);
    return 0;
}

/* The body of POST (id 0) and PUT, in one transaction. */
static void save(bg_req *rq, bg_resp *rs, long long id)
{
    json_t *in = bg_parse_body(rq, rs);
    if (!in)
        return;
    int created = id == 0;
    inv_in *v = malloc(sizeof(*v));
    json_t *errs = json_object();
    sqlite3 *db = bg_db();
    if (!v || !db) {
        bg_problem(rs, 500, "out of memory or no database", NULL);
        goto out;
    }
    check(in, id == 0, v, errs);
    if (json_object_size(errs)) {
        bg_problem(rs, 422, "the invoice is not valid", errs);
        errs = NULL;
        goto out;
    }
    if (id)
        inval_invoice(id);
    if (bg_begin(db) != 0) {
        bg_problem(rs, 503, "the database is busy", NULL);
        goto out;
    }
    current cur;
    memset(&cur, 0, sizeof(cur));
    int found = 1;
    if (id) {
        found = load_current(db, id, &cur);
        if (found == 1)
            check_change(db, id, v, &cur, errs);
    } else {
        snprintf(cur.status, sizeof(cur.status), "draft");
        snprintf(cur.currency, sizeof(cur.currency), "%s", v->currency);
    }
    if (found != 1) {
        bg_rollback(db);
        bg_problem(rs, found == 0 ? 404 : 500,
                   found == 0 ? "no such invoice" : "the database failed",
                   NULL);
        goto out;
    }
    settle_dates(v, &cur, errs);
    if (v->has_customer &&
        bg_exists(db, "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)",
                  v->customer_id) != 1)
        bg_err(errs, "customer_id", "no such user");
    bg_amounts sum = cur.sums; /* a PUT that keeps its lines */
    const char *currency = v->currency ? v->currency : cur.currency;
    int dbrc = 0;
    if (!json_object_size(errs) && id == 0)
        dbrc = write_row(db, &id, v, &cur, &sum); /* the id for the lines */
    if (dbrc == 0 && !json_object_size(errs)) {
        if (v->has_lines)
            dbrc = write_lines(db, id, v, currency, &sum, errs);
    }
    if (dbrc == 0 && !json_object_size(errs))
        dbrc = write_row(db, &id, v, &cur, &sum);
    json_t *j = NULL;
    if (dbrc == 0 && !json_object_size(errs) &&
        bg_load_row(db, ITEM_SQL, row_json, id, &j) != 1)
        dbrc = -1;
    if (dbrc != 0 || json_object_size(errs) || bg_commit(db) != 0) {
        json_decref(j);
        bg_rollback(db);
        if (json_object_size(errs)) {
            bg_problem(rs, 422, "the invoice is not valid", errs);
            errs = NULL;
        } else {
            bg_problem(rs, 500, "the database failed", NULL);
        }
        goto out;
    }
    inval_invoice(id);
    if (created)
        snprintf(rs->location, sizeof(rs->location), "/api/invoices/%lld", id);
    bg_json(rs, created ? 201 : 200, j);
out:
    json_decref(errs);
    json_decref(in);
    free(v);
}

static void create(bg_req *rq, bg_resp *rs)
{
    save(rq, rs, 0);
}

static void update(bg_req *rq, bg_resp *rs, long long id)
{
    save(rq, rs, id);
}

static void destroy(bg_resp *rs, long long id)
{
    static const bg_delete d = {NULL, "DELETE FROM invoices WHERE id = ?",
                                NULL, inval_invoice};
    bg_delete_row(rs, id, &d);
}

static void list(bg_req *rq, bg_resp *rs)
{
    bg_page p = {.row = row_json};
    char key[192], base[96];
    long long customer = 0;
    const char *status = bg_query(rq, "status");
    if (status && !is_status(status)) {
        bg_problem(rs, 400, "status must be draft, issued, paid or void",
                   NULL);
        return;
    }
    int has_customer = bg_query_id(rq, "customer_id", &customer);
    if (has_customer < 0) {
        bg_problem(rs, 400, "customer_id must be an integer >= 1", NULL);
        return;
    }
    if (bg_list_args(rq, rs, &p, base, sizeof(base)) != 0)
        return;
    char cid[24] = "";
    if (has_customer)
        snprintf(cid, sizeof(cid), "%lld", customer);
    /* One statement per combination of filters: "(? IS NULL OR ...)"
       would make SQLite scan the table instead of using an index. */
    static const char *const sql[4][2] = {
        {"SELECT count(*) FROM invoices",
         "SELECT " COLUMNS " FROM invoices ORDER BY id LIMIT ? OFFSET ?"},
        {"SELECT count(*) FROM invoices WHERE status = ?",
         "SELECT " COLUMNS " FROM invoices WHERE status = ? ORDER BY id "
         "LIMIT ? OFFSET ?"},
        {"SELECT count(*) FROM invoices WHERE customer_id = ?",
         "SELECT " COLUMNS " FROM invoices WHERE customer_id = ? ORDER BY id "
         "LIMIT ? OFFSET ?"},
        {"SELECT count(*) FROM invoices WHERE status = ? AND customer_id = ?",
         "SELECT " COLUMNS " FROM invoices WHERE status = ? AND "
         "customer_id = ? ORDER BY id LIMIT ? OFFSET ?"},
    };
    int v = (status ? 1 : 0) + (has_customer ? 2 : 0);
    p.count_sql = sql[v][0];
    p.page_sql = sql[v][1];
    if (status)
        p.args[p.nargs++] = status;
    if (has_customer)
        p.args[p.nargs++] = cid;
    snprintf(key, sizeof(key), "%s&status=%s&customer_id=%s", base,
             status ? status : "", cid);
    bg_cached(rq, rs, "invoices", key, "application/json", bg_compute_page,
              &p);
}

const bg_module bg_invoices_module = {
    "/api/invoices", "/api/invoices/{id}",
    "invoice:%lld",  ITEM_SQL,
    row_json,        list,
    create,          update,
    destroy,
};
