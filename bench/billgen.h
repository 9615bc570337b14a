/* SPDX-License-Identifier: BSD-3-Clause */
/* What the two files of the billgen scenario share: billgen_svc.c runs
   the billgen instances and talks to them, billgen.c measures them. */
#ifndef TC_BENCH_BILLGEN_H
#define TC_BENCH_BILLGEN_H

#include <stddef.h>
#include <sys/types.h>

#include "bench.h"

#define PATH_CAP 512
#define MAX_WORKERS 64 /* billgen's own limit */

typedef struct service {
    const char *name; /* "cached", "uncached" */
    pid_t pid;        /* the parent; also its process group; 0: gone */
    char addr[64];    /* as printed: 127.0.0.1, [::1] */
    char host[64];    /* for getaddrinfo: no brackets */
    int port, workers;
    char out[PATH_CAP], err[PATH_CAP]; /* its stdout and stderr */
} service;

typedef struct http_resp {
    int status;
    int worker; /* X-Worker; 0 if absent */
    char xcache[16];
    char etag[128];
    char *raw;  /* the whole response (free it) */
    char *body; /* into raw, NUL-terminated */
    size_t body_len;
} http_resp;

/* One worker's counters from its /metrics; seen: it answered. */
typedef struct counters {
    int seen;
    double queries, requests;
} counters;

/* ---- child processes ---- */
extern int svc_warned; /* set by svc_warn(): the service looked wrong */
/* A WARNING line in the progress and under the table; sets svc_warned. */
__attribute__((format(printf, 1, 2))) void svc_warn(const char *fmt, ...);
/* Forks and execs argv with envp, stdout to out and stderr to err, in a
   process group of its own; its pid, -1 if fork failed. */
pid_t svc_child(char *const argv[], char *const envp[], const char *out,
                const char *err);
/* SIGTERM, then wait (SIGKILL to the group past STOP_MS). Says what
   looked wrong unless quiet. Returns the parent's exit status, -1 if it
   did not exit by itself with one. */
int svc_stop(service *s, int quiet);
/* The last bytes of a file on stderr: why a child failed. */
void svc_tail(const char *path);

/* ---- a minimal HTTP/1.1 client: one request per connection ---- */
/* GET path (with one extra header line, or NULL) into r (release it with
   svc_resp_free, failed or not). 0, or -1 with a message in why. */
int svc_get(const service *s, const char *path, const char *extra,
            http_resp *r, char *why, size_t whycap);
/* Frees what svc_get left in r (r->raw); r itself is the caller's. */
void svc_resp_free(http_resp *r);

/* ---- starting an instance ---- */
/* Starts `bin serve` on db (--no-cache if no_cache), waits for its
   listening line and a 200 /health; stopped by tc-bench's exit handler
   until svc_stop. 0, or -1 with a warning. */
int svc_start(service *s, const char *bin, const char *db, char *const envp[],
              int no_cache);
/* The environment of the services: ours, REDIS_* replaced by REDIS_URL
   to the bench's server (*url, to free with the array). */
char **svc_env(const th_redis *r, char **url);

/* ---- /metrics ---- */
/* Fills w[1..workers] from /metrics until each worker has answered (or
   SCRAPE_TRIES). Returns how many answered; -1 if the metrics lack the
   counters. */
int svc_scrape(const service *s, counters *w);

#endif /* TC_BENCH_BILLGEN_H */
