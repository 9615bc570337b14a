/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the three resources share: one row by id, a page of rows, and a
 * DELETE refused while something references the row.
 */
#include <stdio.h>

#include "billgen.h"

int bg_load_row(sqlite3 *db, const char *sql, bg_row_fn row, long long id,
                json_t **out)
{
    sqlite3_stmt *st = bg_sql(db, sql);
    *out = NULL;
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = row(db, st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return *out ? 1 : -1;
    return rc == SQLITE_DONE ? 0 : -1;
}

int bg_compute_page(void *ud, char **body, size_t *len)
{
    const bg_page *p = ud;
    sqlite3 *db = bg_db();
    sqlite3_stmt *st = db ? bg_sql(db, p->count_sql) : NULL;
    if (!st)
        return -1;
    for (int i = 0; i < p->nargs; i++)
        sqlite3_bind_text(st, i + 1, p->args[i], -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    long long total = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    if (total < 0 || !(st = bg_sql(db, p->page_sql)))
        return -1;
    for (int i = 0; i < p->nargs; i++)
        sqlite3_bind_text(st, i + 1, p->args[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, p->nargs + 1, p->per_page);
    sqlite3_bind_int64(st, p->nargs + 2, (p->page - 1) * p->per_page);
    json_t *items = json_array();
    json_t *j = NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW &&
           (j = p->row(db, st)) != NULL)
        json_array_append_new(items, j);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(items);
        return -1;
    }
    return bg_dump(bg_page_json(items, p->page, p->per_page, total), body,
                   len);
}

int bg_list_args(bg_req *rq, bg_resp *rs, bg_page *p, char *key, size_t cap)
{
    if (bg_page_args(rq, rs, &p->page, &p->per_page) != 0)
        return -1;
    snprintf(key, cap, "list:page=%lld&per_page=%lld", p->page, p->per_page);
    return 0;
}

int bg_exists(sqlite3 *db, const char *sql, long long id)
{
    sqlite3_stmt *st = bg_sql(db, sql);
    int used = -1;
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_ROW)
            used = sqlite3_column_int64(st, 0) != 0;
        sqlite3_reset(st);
    }
    return used;
}

void bg_delete_row(bg_resp *rs, long long id, const bg_delete *d)
{
    sqlite3 *db = bg_db();
    if (!db || bg_begin(db) != 0) {
        bg_problem(rs, 503, "the database is busy", NULL);
        return;
    }
    int used = d->used_sql ? bg_exists(db, d->used_sql, id) : 0;
    if (used != 0) {
        bg_rollback(db);
        bg_problem(rs, used > 0 ? 409 : 500,
                   used > 0 ? d->in_use : "the database failed", NULL);
        return;
    }
    d->inval(id); /* before the write, and again after the commit */
    sqlite3_stmt *st = bg_sql(db, d->delete_sql);
    int rc = SQLITE_ERROR;
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
    }
    int gone = rc == SQLITE_DONE ? sqlite3_changes(db) : -1;
    if (gone <= 0 || bg_commit(db) != 0) {
        bg_rollback(db);
        bg_problem(rs, gone == 0 ? 404 : 500,
                   gone == 0 ? "no such resource" : "the database failed",
                   NULL);
        return;
    }
    d->inval(id);
    rs->status = 204;
}
