/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * /api/users: {id, name, email, role}. The password is taken on writes,
 * stored as a libsodium hash, and never read back by anything here: no
 * query that feeds an answer or the cache selects password_hash.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "billgen.h"

static const char *const fields[] = {"name", "email", "role", "password",
                                     NULL};
static const char *const ignored[] = {"id", NULL};
static const char *const roles[] = {"admin", "clerk", "customer", NULL};

int bg_hash_password(const char *pw, char out[128])
{
    return crypto_pwhash_str(out, pw, strlen(pw),
                             crypto_pwhash_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0
               ? 0
               : -1;
}

#define ITEM_SQL "SELECT id, name, email, role FROM users WHERE id = ?"

static json_t *row_json(sqlite3 *db, sqlite3_stmt *st)
{
    (void)db;
    return json_pack("{s:I, s:s, s:s, s:s}", "id",
                     (json_int_t)sqlite3_column_int64(st, 0), "name",
                     bg_col_text(st, 1), "email", bg_col_text(st, 2), "role",
                     bg_col_text(st, 3));
}

static int valid_email(const char *s)
{
    const char *at = strchr(s, '@');
    return at && at != s && at[1] && !strchr(at + 1, '@') &&
           !strpbrk(s, " \t\r\n<>");
}

typedef struct input {
    const char *name, *email, *role, *password;
} input;

/* Checks a body; `create` requires what a POST needs. 0, or -1 after
   answering 422. */
static int check(json_t *in, int create, input *u, bg_resp *rs)
{
    json_t *errs = json_object();
    memset(u, 0, sizeof(*u));
    bg_check_fields(in, fields, ignored, errs, "");
    bg_get_str(in, "name", 1, 200, &u->name, errs);
    if (bg_get_str(in, "email", 3, 254, &u->email, errs) > 0 &&
        !valid_email(u->email))
        bg_err(errs, "email", "must be an email address");
    if (bg_get_str(in, "role", 1, 16, &u->role, errs) > 0) {
        int ok = 0;
        for (const char *const *r = roles; *r; r++)
            ok |= strcmp(*r, u->role) == 0;
        if (!ok)
            bg_err(errs, "role", "must be admin, clerk or customer");
    }
    bg_get_str(in, "password", 8, 1024, &u->password, errs);
    if (create) {
        if (!json_object_get(in, "name"))
            bg_need(errs, "name");
        if (!json_object_get(in, "email"))
            bg_need(errs, "email");
        if (!json_object_get(in, "password"))
            bg_need(errs, "password");
    }
    return bg_refuse_if(rs, errs, "the user is not valid");
}

/* Every bill that shows this user: its customer's invoices. */
static void inval_user(long long id)
{
    bg_inval_key("user:%lld", id);
    bg_inval_group("users");
    sqlite3 *db = bg_db();
    sqlite3_stmt *st =
        db ? bg_sql(db, "SELECT id FROM invoices WHERE customer_id = ?")
           : NULL;
    if (!st)
        return;
    sqlite3_bind_int64(st, 1, id);
    while (sqlite3_step(st) == SQLITE_ROW)
        bg_inval_bill(sqlite3_column_int64(st, 0));
    sqlite3_reset(st);
}

static void create(bg_req *rq, bg_resp *rs)
{
    json_t *in = bg_parse_body(rq, rs);
    input u;
    char hash[128];
    if (!in || check(in, 1, &u, rs) != 0)
        goto out;
    if (bg_hash_password(u.password, hash) != 0) {
        bg_problem(rs, 500, "cannot hash the password", NULL);
        goto out;
    }
    sqlite3 *db = bg_db();
    sqlite3_stmt *st = NULL;
    if (!db || bg_begin(db) != 0) {
        bg_problem(rs, 503, "the database is busy", NULL);
        goto out;
    }
    st = bg_sql(db, "INSERT INTO users (name, email, role, password_hash) "
                    "VALUES (?, ?, ?, ?)");
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 1, u.name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, u.email, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, u.role ? u.role : "customer", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        int dup = bg_is_unique_violation(db);
        bg_rollback(db);
        if (dup)
            bg_taken(rs, "email", "a user with this email exists");
        else
            bg_problem(rs, 500, "the database failed", NULL);
        goto out;
    }
    long long id = sqlite3_last_insert_rowid(db);
    json_t *j = NULL;
    if (bg_load_row(db, ITEM_SQL, row_json, id, &j) != 1 ||
        bg_commit(db) != 0) {
        json_decref(j);
        goto fail;
    }
    /* A GET of this id before it existed may have cached "absent". */
    bg_inval_key("user:%lld", id);
    bg_inval_group("users");
    snprintf(rs->location, sizeof(rs->location), "/api/users/%lld", id);
    bg_json(rs, 201, j);
    goto out;
fail:
    bg_rollback(db);
    bg_problem(rs, 500, "the database failed", NULL);
out:
    sodium_memzero(hash, sizeof(hash));
    json_decref(in);
}

static void update(bg_req *rq, bg_resp *rs, long long id)
{
    json_t *in = bg_parse_body(rq, rs);
    input u;
    char hash[128] = "";
    if (!in || check(in, 0, &u, rs) != 0)
        goto out;
    if (u.password && bg_hash_password(u.password, hash) != 0) {
        bg_problem(rs, 500, "cannot hash the password", NULL);
        goto out;
    }
    sqlite3 *db = bg_db();
    if (!db) {
        bg_problem(rs, 503, "the database is unavailable", NULL);
        goto out;
    }
    inval_user(id);
    if (bg_begin(db) != 0) {
        bg_problem(rs, 503, "the database is busy", NULL);
        goto out;
    }
    sqlite3_stmt *st =
        bg_sql(db, "UPDATE users SET name = coalesce(?, name), "
                   "email = coalesce(?, email), role = coalesce(?, role), "
                   "password_hash = coalesce(?, password_hash) WHERE id = ?");
    if (!st) {
        bg_rollback(db);
        bg_problem(rs, 500, "the database failed", NULL);
        goto out;
    }
    if (u.name)
        sqlite3_bind_text(st, 1, u.name, -1, SQLITE_STATIC);
    if (u.email)
        sqlite3_bind_text(st, 2, u.email, -1, SQLITE_STATIC);
    if (u.role)
        sqlite3_bind_text(st, 3, u.role, -1, SQLITE_STATIC);
    if (hash[0])
        sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    json_t *j = NULL;
    int found =
        rc == SQLITE_DONE ? bg_load_row(db, ITEM_SQL, row_json, id, &j) : -1;
    if (rc != SQLITE_DONE && bg_is_unique_violation(db)) {
        bg_rollback(db);
        bg_taken(rs, "email", "a user with this email exists");
    } else if (found == 0) {
        bg_rollback(db);
        bg_problem(rs, 404, "no such user", NULL);
    } else if (found < 0 || bg_commit(db) != 0) {
        json_decref(j);
        bg_rollback(db);
        bg_problem(rs, 500, "the database failed", NULL);
    } else {
        inval_user(id);
        bg_json(rs, 200, j);
    }
out:
    sodium_memzero(hash, sizeof(hash));
    json_decref(in);
}

static void destroy(bg_resp *rs, long long id)
{
    static const bg_delete d = {
        "SELECT count(*) FROM invoices WHERE customer_id = ?",
        "DELETE FROM users WHERE id = ?", "the user has invoices", inval_user};
    bg_delete_row(rs, id, &d);
}

static void list(bg_req *rq, bg_resp *rs)
{
    bg_page p = {.count_sql = "SELECT count(*) FROM users",
                 .page_sql = "SELECT id, name, email, role FROM users "
                             "ORDER BY id LIMIT ? OFFSET ?",
                 .row = row_json};
    char key[96];
    if (bg_list_args(rq, rs, &p, key, sizeof(key)) == 0)
        bg_cached(rq, rs, "users", key, "application/json", bg_compute_page,
                  &p);
}

const bg_module bg_users_module = {
    "/api/users", "/api/users/{id}",
    "user:%lld",  ITEM_SQL,
    row_json,     list,
    create,       update,
    destroy,
};
