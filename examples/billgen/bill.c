/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * GET /api/invoices/<id>/bill: the invoice as a printable HTML page, with
 * its customer and the SKU of each line's product. It shows a user and
 * products, so it is invalidated with them too (see users.c, products.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billgen.h"

typedef struct html {
    char *p;
    size_t len, cap;
    int failed;
} html;

static void grow(html *h, size_t more)
{
    if (h->failed || h->len + more < h->cap)
        return;
    size_t cap = (h->cap + more) * 2;
    char *np = realloc(h->p, cap);
    if (!np) {
        h->failed = 1;
        return;
    }
    h->p = np;
    h->cap = cap;
}

static void raw(html *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void raw(html *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        h->failed = 1;
    grow(h, (size_t)n + 1);
    if (h->failed)
        return;
    va_start(ap, fmt);
    vsnprintf(h->p + h->len, h->cap - h->len, fmt, ap);
    va_end(ap);
    h->len += (size_t)n;
}

/* Text from the database, escaped for HTML. */
static void text(html *h, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            raw(h, "&lt;");
            break;
        case '>':
            raw(h, "&gt;");
            break;
        case '&':
            raw(h, "&amp;");
            break;
        case '"':
            raw(h, "&quot;");
            break;
        case '\'':
            raw(h, "&#39;");
            break;
        default:
            raw(h, "%c", *s);
        }
    }
}

static void money(html *h, long long minor, const char *currency)
{
    char buf[48];
    bg_money(buf, sizeof(buf), minor, currency);
    raw(h, "%s", buf);
}

static const char style[] =
    "body{font-family:sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{padding:4px 8px;border-bottom:1px solid #ccc;text-align:left}"
    "td.n,th.n{text-align:right}"
    ".totals td{border:none}";

static void head(html *h, sqlite3_stmt *inv)
{
    raw(h, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>");
    text(h, bg_col_text(inv, 0));
    raw(h, "</title><style>%s</style></head><body><h1>Invoice ", style);
    text(h, bg_col_text(inv, 0));
    raw(h, "</h1><p>Status: ");
    text(h, bg_col_text(inv, 1));
    raw(h, "<br>Issued: ");
    text(h, bg_col_text(inv, 3));
    raw(h, "<br>Due: ");
    text(h, bg_col_text(inv, 4));
    raw(h, "</p><h2>Bill to</h2><p>");
    text(h, bg_col_text(inv, 10));
    raw(h, "<br>");
    text(h, bg_col_text(inv, 11));
    raw(h, "</p>");
}

/* 0, or -1 on a database failure. */
static int lines(html *h, sqlite3 *db, long long id, const char *cur)
{
    sqlite3_stmt *st = bg_sql(
        db, "SELECT l.description, coalesce(p.sku, ''), l.quantity, "
            "l.unit_price, l.discount_bp, l.tax_rate_bp, l.total "
            "FROM invoice_lines l LEFT JOIN products p ON p.id = l.product_id "
            "WHERE l.invoice_id = ? ORDER BY l.pos");
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    raw(h, "<table><tr><th>SKU</th><th>Description</th>"
           "<th class=n>Qty</th><th class=n>Unit price</th>"
           "<th class=n>Discount</th><th class=n>Tax</th>"
           "<th class=n>Total</th></tr>");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        raw(h, "<tr><td>");
        text(h, bg_col_text(st, 1));
        raw(h, "</td><td>");
        text(h, bg_col_text(st, 0));
        raw(h, "</td><td class=n>%lld</td><td class=n>",
            (long long)sqlite3_column_int64(st, 2));
        money(h, sqlite3_column_int64(st, 3), cur);
        raw(h, "</td><td class=n>%.2f %%</td><td class=n>%.2f %%</td>",
            sqlite3_column_int64(st, 4) / 100.0,
            sqlite3_column_int64(st, 5) / 100.0);
        raw(h, "<td class=n>");
        money(h, sqlite3_column_int64(st, 6), cur);
        raw(h, "</td></tr>");
    }
    sqlite3_reset(st);
    raw(h, "</table>");
    return rc == SQLITE_DONE ? 0 : -1;
}

static void totals(html *h, sqlite3_stmt *inv, const char *cur)
{
    static const char *const names[] = {"Subtotal", "Discount", "Tax",
                                        "Total"};
    raw(h, "<table class=totals>");
    for (int i = 0; i < 4; i++) {
        raw(h, "<tr><td class=n>%s</td><td class=n>", names[i]);
        if (i == 3)
            raw(h, "<strong>");
        money(h, sqlite3_column_int64(inv, 6 + i), cur);
        raw(h, " %s%s</td></tr>", cur, i == 3 ? "</strong>" : "");
    }
    raw(h, "</table>");
}

static int compute_bill(void *ud, char **body, size_t *len)
{
    long long id = *(const long long *)ud;
    sqlite3 *db = bg_db();
    sqlite3_stmt *inv =
        db ? bg_sql(db, "SELECT i.number, i.status, i.currency, "
                        "i.issue_date, i.due_date, i.notes, i.subtotal, "
                        "i.discount, i.tax, i.total, u.name, u.email "
                        "FROM invoices i JOIN users u ON u.id = i.customer_id "
                        "WHERE i.id = ?")
           : NULL;
    if (!inv)
        return -1;
    sqlite3_bind_int64(inv, 1, id);
    int rc = sqlite3_step(inv);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(inv);
        return rc == SQLITE_DONE ? TC_ABSENT : -1;
    }
    html h = {NULL, 0, 0, 0};
    char cur[4];
    snprintf(cur, sizeof(cur), "%s", bg_col_text(inv, 2));
    head(&h, inv);
    int lrc = lines(&h, db, id, cur);
    totals(&h, inv, cur);
    if (*bg_col_text(inv, 5)) {
        raw(&h, "<h2>Notes</h2><p>");
        text(&h, bg_col_text(inv, 5));
        raw(&h, "</p>");
    }
    raw(&h, "</body></html>\n");
    sqlite3_reset(inv);
    if (lrc != 0 || h.failed) {
        free(h.p);
        return -1;
    }
    *body = h.p;
    *len = h.len;
    return 0;
}

void bg_bill(bg_req *rq, bg_resp *rs, long long invoice_id)
{
    char rest[48];
    snprintf(rest, sizeof(rest), "bill:%lld", invoice_id);
    bg_cached(rq, rs, "bills", rest, "text/html; charset=utf-8", compute_bill,
              &invoice_id);
}
