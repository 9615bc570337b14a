/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Input checks: the body (JSON object, size, content type), fields with
 * their types and ranges, dates, currencies, paging. Errors are collected
 * per field so one answer names every problem.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "billgen.h"

void bg_err(json_t *errs, const char *field, const char *msg)
{
    if (!json_object_get(errs, field)) /* the first problem per field */
        json_object_set_new(errs, field, json_string(msg));
}

void bg_need(json_t *errs, const char *field)
{
    bg_err(errs, field, "is required");
}

static int is_json_type(const char *ctype)
{
    if (!ctype)
        return 0;
    size_t n = strlen("application/json");
    if (strncasecmp(ctype, "application/json", n) != 0)
        return 0;
    const char *rest = ctype + n;
    while (*rest == ' ')
        rest++;
    return *rest == '\0' || *rest == ';';
}

json_t *bg_parse_body(bg_req *rq, bg_resp *rs)
{
    if (rq->body_too_big) {
        bg_problem(rs, 413, "the body is over 64 KiB", NULL);
        return NULL;
    }
    if (!is_json_type(rq->ctype)) {
        bg_problem(rs, 415, "the body must be application/json", NULL);
        return NULL;
    }
    json_error_t e;
    json_t *j = rq->body ? json_loadb(rq->body, rq->body_len,
                                      JSON_REJECT_DUPLICATES, &e)
                         : NULL;
    if (!j) {
        char detail[256];
        snprintf(detail, sizeof(detail), "malformed JSON: %s",
                 rq->body ? e.text : "no body");
        bg_problem(rs, 400, detail, NULL);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        bg_problem(rs, 400, "the body must be a JSON object", NULL);
        return NULL;
    }
    return j;
}

static int listed(const char *const *names, const char *k)
{
    for (; names && *names; names++)
        if (strcmp(*names, k) == 0)
            return 1;
    return 0;
}

void bg_check_fields(json_t *obj, const char *const *allowed,
                     const char *const *ignored, json_t *errs,
                     const char *prefix)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (listed(allowed, k) || listed(ignored, k))
            continue;
        char field[128];
        snprintf(field, sizeof(field), "%s%s", prefix, k);
        bg_err(errs, field, "unknown field");
    }
}

static int utf8_ok(const char *s, size_t n)
{
    /* jansson already rejects invalid UTF-8; NUL bytes ("\u0000") are
       what remains to refuse in a text column. */
    return strlen(s) == n;
}

int bg_get_str(json_t *obj, const char *name, size_t min, size_t max,
               const char **out, json_t *errs)
{
    json_t *v = json_object_get(obj, name);
    if (!v)
        return 0;
    if (!json_is_string(v)) {
        bg_err(errs, name, "must be a string");
        return -1;
    }
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    char msg[96];
    if (n < min || n > max) {
        snprintf(msg, sizeof(msg), "must be %zu to %zu bytes long", min, max);
        bg_err(errs, name, msg);
        return -1;
    }
    if (!utf8_ok(s, n)) {
        bg_err(errs, name, "must not contain NUL");
        return -1;
    }
    *out = s;
    return 1;
}

int bg_get_int(json_t *obj, const char *name, long long min, long long max,
               long long *out, json_t *errs)
{
    json_t *v = json_object_get(obj, name);
    if (!v)
        return 0;
    if (!json_is_integer(v)) {
        bg_err(errs, name, "must be an integer");
        return -1;
    }
    long long x = (long long)json_integer_value(v);
    if (x < min || x > max) {
        char msg[96];
        snprintf(msg, sizeof(msg), "must be between %lld and %lld", min, max);
        bg_err(errs, name, msg);
        return -1;
    }
    *out = x;
    return 1;
}

int bg_get_bool(json_t *obj, const char *name, int *out, json_t *errs)
{
    json_t *v = json_object_get(obj, name);
    if (!v)
        return 0;
    if (!json_is_boolean(v)) {
        bg_err(errs, name, "must be true or false");
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

int bg_is_currency(const char *s)
{
    return strlen(s) == 3 && isupper((unsigned char)s[0]) &&
           isupper((unsigned char)s[1]) && isupper((unsigned char)s[2]);
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static long days_from_civil(long y, long m, long d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int bg_parse_date(const char *s, long *days)
{
    int y, m, d;
    char tail;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return 0;
    if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3)
        return 0;
    static const int mdays[] = {31, 28, 31, 30, 31, 30,
                                31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || m < 1 || m > 12 || d < 1 ||
        d > mdays[m - 1] + (m == 2 && leap))
        return 0;
    *days = days_from_civil(y, m, d);
    return 1;
}

void bg_format_date(long days, char out[11])
{
    time_t t = (time_t)days * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

long bg_today(void)
{
    return (long)(time(NULL) / 86400);
}

/* A positive integer parameter; 1 present, 0 absent, -1 bad. */
static int query_num(bg_req *rq, const char *name, long long max,
                     long long *out)
{
    const char *s = bg_query(rq, name);
    if (!s)
        return 0;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || errno || x < 1 || x > max ||
        !isdigit((unsigned char)*s))
        return -1;
    *out = x;
    return 1;
}

int bg_page_args(bg_req *rq, bg_resp *rs, long long *page, long long *per_page)
{
    *page = 1;
    *per_page = 20;
    if (query_num(rq, "page", 1000000000LL, page) < 0) {
        bg_problem(rs, 400, "page must be an integer >= 1", NULL);
        return -1;
    }
    if (query_num(rq, "per_page", 100, per_page) < 0) {
        bg_problem(rs, 400, "per_page must be an integer from 1 to 100", NULL);
        return -1;
    }
    return 0;
}

int bg_query_id(bg_req *rq, const char *name, long long *out)
{
    return query_num(rq, name, INT64_MAX, out);
}

json_t *bg_page_json(json_t *items, long long page, long long per_page,
                     long long total)
{
    return json_pack("{s:o, s:I, s:I, s:I}", "items", items, "page",
                     (json_int_t)page, "per_page", (json_int_t)per_page,
                     "total", (json_int_t)total);
}

int bg_dump(json_t *j, char **body, size_t *len)
{
    *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!*body)
        return -1;
    *len = strlen(*body);
    return 0;
}

int bg_is_unique_violation(sqlite3 *db)
{
    return sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE;
}

int bg_refuse_if(bg_resp *rs, json_t *errs, const char *detail)
{
    if (json_object_size(errs) == 0) {
        json_decref(errs);
        return 0;
    }
    bg_problem(rs, 422, detail, errs);
    return -1;
}

void bg_taken(bg_resp *rs, const char *field, const char *detail)
{
    json_t *errs = json_object();
    bg_err(errs, field, "is already taken");
    bg_problem(rs, 409, detail, errs);
}
