/* SPDX-License-Identifier: BSD-3-Clause */
/* tiercache(1): the operator's command. Reads the command line (global
   options anywhere after the command), then runs one command. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "internal.h"

typedef struct command {
    const char *name;
    int (*run)(cli *k);
    int min_args, max_args;
    const char *usage; /* after "tiercache NAME" */
    const char *help;  /* what it does, its own options */
} command;

static const command commands[] = {
    {"health", cmd_health, 0, 0, "[--json]",
     "Connection, server version, client tracking, breaker, round trip.\n"
     "Exit 0 healthy, 1 degraded, 2 unreachable or refused.\n"},
    {"stats", cmd_stats, 0, 0, "[--json] [--sample N]",
     "Keys and memory of the namespace in Redis, value sizes, TTLs and\n"
     "the compressed share. Past N keys (1000) the figures come from a\n"
     "random sample of N keys and are scaled up.\n"},
    {"get", cmd_get, 1, 1, "KEY [--raw | --json]",
     "Decodes the value of KEY: payload, flags, expiry, compute time.\n"
     "--raw writes the payload bytes only (decompressed). Exit 1: no such "
     "key;\n"
     "65: the bytes are not a tiercache value.\n"},
    {"set", cmd_set, 2, 2, "KEY VALUE [--ttl MS]",
     "Stores VALUE under KEY (tc_set: other processes' L1s hear it).\n"
     "--ttl 0 or none: the default TTL.\n"},
    {"del", cmd_del, 1, 1, "KEY", "Deletes KEY and its lease (tc_del).\n"},
    {"del-prefix", cmd_del_prefix, 1, 1, "PREFIX",
     "Deletes every key starting with PREFIX (tc_del_prefix).\n"},
    {"flush", cmd_flush, 0, 0, "[--yes]",
     "Deletes every key of the namespace (tc_flush, never FLUSHDB). Asks\n"
     "first when stdin is a terminal, unless --yes.\n"},
    {"keys", cmd_keys, 0, 1, "[PATTERN] [--json]",
     "Lists the keys of the namespace matching the glob PATTERN (*).\n"},
    {"watch", cmd_watch, 0, 0, "",
     "Prints each invalidation of the namespace as it comes (client\n"
     "tracking and the <ns>:__tc:inval channel), a rate line on stderr\n"
     "every second; Ctrl-C prints the totals and exits 0.\n"},
    {"warm", cmd_warm, 1, 1, "FILE",
     "Stores the values of FILE (- for stdin), JSON lines\n"
     "{\"key\": \"...\", \"value\": \"...\", \"ttl_ms\": N}. The whole file "
     "is\n"
     "checked first: one bad line (exit 65, its number said) stores "
     "nothing.\n"},
    {"bench", cmd_bench, 0, 0, "[--json] [--count N]",
     "A short latency probe: N (2000) tc_get calls that go to Redis, and\n"
     "N PINGs on one connection, the floor; p50 and p99 of each.\n"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char global_help[] =
    "Connection (else the environment: REDIS_URL, REDIS_HOST, ..., "
    "TC_NAMESPACE):\n"
    "  --url URL          redis://[user:pass@]host[:port][/db], unix:///path\n"
    "  -h, --host HOST    -p, --port PORT    -n, --db N    -a, --pass "
    "PASSWORD\n"
    "  --user NAME        --socket PATH      --ns NAMESPACE\n"
    "  --sentinels H:P,.. [--master NAME]    --cluster H:P,..\n"
    "  -v, --verbose      the library's log lines on stderr\n"
    "Exit codes: 0 ok, 1 not found or degraded, 2 Redis unreachable or\n"
    "refusing, 3 other failure, 64 usage, 65 bad input data.\n";

static void usage_all(FILE *f)
{
    fprintf(f, "usage: tiercache COMMAND [options] [args]\n\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].usage);
    fprintf(f,
            "\n%s\n'tiercache COMMAND --help' for one command; man "
            "tiercache for all.\n",
            global_help);
}

static void usage_one(const command *c)
{
    printf("usage: tiercache %s %s\n\n%s\n%s", c->name, c->usage, c->help,
           global_help);
}

enum {
    O_URL = 256,
    O_NS,
    O_SENT,
    O_MASTER,
    O_CLUSTER,
    O_USER,
    O_SOCKET,
    O_JSON,
    O_RAW,
    O_YES,
    O_TTL,
    O_COUNT,
    O_HELP
};

static const struct option longopts[] = {
    {"url", 1, 0, O_URL},         {"host", 1, 0, 'h'},
    {"port", 1, 0, 'p'},          {"db", 1, 0, 'n'},
    {"pass", 1, 0, 'a'},          {"user", 1, 0, O_USER},
    {"socket", 1, 0, O_SOCKET},   {"ns", 1, 0, O_NS},
    {"sentinels", 1, 0, O_SENT},  {"master", 1, 0, O_MASTER},
    {"cluster", 1, 0, O_CLUSTER}, {"json", 0, 0, O_JSON},
    {"raw", 0, 0, O_RAW},         {"yes", 0, 0, O_YES},
    {"ttl", 1, 0, O_TTL},         {"count", 1, 0, O_COUNT},
    {"sample", 1, 0, O_COUNT},    {"verbose", 0, 0, 'v'},
    {"help", 0, 0, O_HELP},       {0, 0, 0, 0}};

/* A whole decimal number in lo..hi, or an exit code, said. */
static int number(cli *k, const char *opt, const char *s, uint64_t lo,
                  uint64_t hi, uint64_t *out)
{
    if (tc__parse_whole(s, lo, hi, out) == TC__NUM_OK)
        return 0;
    return cli_fail(k, CLI_USAGE, "%s: '%s' is not a number in %llu..%llu",
                    opt, s, (unsigned long long)lo, (unsigned long long)hi);
}

static int copy(cli *k, char *dst, size_t cap, const char *opt, const char *s)
{
    if (strlen(s) >= cap)
        return cli_fail(k, CLI_USAGE, "%s: longer than %zu bytes", opt,
                        cap - 1);
    strcpy(dst, s);
    return 0;
}

/* One option of the connection; 0 or an exit code. */
static int conn_option(cli *k, int ch, const char *a)
{
    tc_options *o = &k->opt;
    uint64_t v;
    char err[160];
    int rc = 0;
    /* A server named here wins over Sentinels or a Cluster from the
       environment, which would otherwise be used instead (a flush sent
       to the wrong Redis). */
    if (ch == O_URL || ch == 'h' || ch == 'p' || ch == O_SOCKET) {
        o->redis_sentinels = NULL;
        o->redis_cluster = NULL;
    }
    switch (ch) {
    case O_URL:
        if (tc__parse_redis_url(a, o, err, sizeof(err)) != TC_OK)
            return cli_fail(k, CLI_USAGE, "--url: %s", err);
        return 0;
    case 'h':
        o->redis_socket[0] = '\0'; /* the socket would win over it */
        return copy(k, o->redis_host, sizeof(o->redis_host), "--host", a);
    case 'p':
        o->redis_socket[0] = '\0';
        if (!(rc = number(k, "--port", a, 1, 65535, &v)))
            o->redis_port = (int)v;
        return rc;
    case 'n':
        if (!(rc = number(k, "--db", a, 0, 2147483647, &v)))
            o->redis_db = (int)v;
        return rc;
    case 'a':
        return copy(k, o->redis_password, sizeof(o->redis_password), "--pass",
                    a);
    case O_USER:
        return copy(k, o->redis_username, sizeof(o->redis_username), "--user",
                    a);
    case O_SOCKET:
        return copy(k, o->redis_socket, sizeof(o->redis_socket), "--socket",
                    a);
    case O_NS:
        return copy(k, o->ns, sizeof(o->ns), "--ns", a);
    case O_SENT:
        o->redis_sentinels = a;
        o->redis_cluster = NULL;
        return 0;
    case O_MASTER:
        o->sentinel_master = a;
        return 0;
    case O_CLUSTER:
        o->redis_cluster = a;
        o->redis_sentinels = NULL;
        return 0;
    }
    return -1;
}

static int option(cli *k, int ch, const char *a)
{
    uint64_t v;
    int rc = 0;
    switch (ch) {
    case O_JSON:
        k->json = 1;
        return 0;
    case O_RAW:
        k->raw = 1;
        return 0;
    case O_YES:
        k->yes = 1;
        return 0;
    case 'v':
        k->verbose = 1;
        return 0;
    case O_TTL:
        if (strcmp(a, "none") == 0)
            a = "0";
        if (!(rc = number(k, "--ttl", a, 0, UINT32_MAX, &v)))
            k->ttl_ms = (uint32_t)v;
        return rc;
    case O_COUNT:
        if (!(rc = number(k, "--count", a, 1, 10000000, &v)))
            k->count = (long)v;
        return rc;
    }
    rc = conn_option(k, ch, a);
    return rc < 0 ? cli_fail(k, CLI_USAGE, "unknown option") : rc;
}

static const command *find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Options and arguments after the command name; 0, or an exit code. */
static int parse(cli *k, const command *c, int argc, char **argv, int *help)
{
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":h:p:n:a:v", longopts, NULL)) !=
           -1) {
        if (ch == O_HELP) {
            *help = 1;
            return 0;
        }
        if (ch == '?' || ch == ':')
            return cli_fail(k, CLI_USAGE, "%s '%s' (see tiercache %s --help)",
                            ch == ':' ? "missing value for option"
                                      : "unknown option",
                            argv[optind - 1], c->name);
        int rc = option(k, ch, optarg);
        if (rc)
            return rc;
    }
    k->argc = argc - optind;
    k->argv = argv + optind;
    if (k->argc < c->min_args || k->argc > c->max_args)
        return cli_fail(k, CLI_USAGE, "%s arguments; usage: tiercache %s %s",
                        k->argc < c->min_args ? "missing" : "too many",
                        c->name, c->usage);
    return 0;
}

int main(int argc, char **argv)
{
    static cli k; /* zero: no --json, no TTL (the default) */
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage_all(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const command *c = find(argv[1]);
    k.cmd = argv[1];
    if (!c)
        return cli_fail(&k, CLI_USAGE,
                        "unknown command (tiercache --help lists them)");
    tc_options_init(&k.opt);
    int help = 0, rc = parse(&k, c, argc - 1, argv + 1, &help);
    if (help) {
        usage_one(c);
        return CLI_OK;
    }
    if (rc)
        return rc;
    rc = c->run(&k);
    tc_close(k.c);
    return rc;
}
