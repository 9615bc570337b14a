/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test harness: private redis-server instances and a CUnit driver.
 * See harness.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* close_range, mkdtemp */
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "internal.h" /* the envelope of th_kill_links_and_set */

/* configure stores the path it found, or "" when it found none. */
#ifndef TC_REDIS_SERVER
#define TC_REDIS_SERVER ""
#endif

#define TH_START_ATTEMPTS 5
#define TH_READY_MS 5000   /* how long a server may take to answer PING */
#define TH_RESTART_MS 5000 /* how long a restart may wait for its port */
/* Leaves room for "/redis.sock" within sun_path's 108 bytes. */
#define TH_DIR_MAX 96
#define TH_EXTRA_MAX 16
/* Cluster nodes take their ports from here: below the kernel's ephemeral
   range (32768 and up), so that no client's local port can take a node's
   port, or its bus port (port + 10000), between a restart's kill and its
   bind. */
#define TH_BUS_PORT_LO 12000
#define TH_BUS_PORT_HI 22000
#define TH_BUS_OFFSET 10000

struct th_redis {
    pid_t pid;   /* 0 when not running */
    pid_t owner; /* the process that started it */
    int port;
    int frozen;
    int bus; /* a cluster node: port + TH_BUS_OFFSET must be free too */
    char dir[TH_DIR_MAX];
    char sock[TC_SOCKET_MAX];
    char log[TH_DIR_MAX + 16];
    char conf[TH_DIR_MAX + 16];    /* a config file read first, or "" */
    char pass[64];                 /* AUTH on every connection, or "" */
    char *extra[TH_EXTRA_MAX + 1]; /* more "--option value" arguments */
    struct th_redis *next;         /* in the registry */
};

/* ---- small helpers ---- */

uint64_t th_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static const char *server_path(void)
{
    return TC_REDIS_SERVER[0] ? TC_REDIS_SERVER : "redis-server";
}

/* ---- the registry: every server started, for the atexit handler ---- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static th_redis *reg_head;

static void remove_dir(const th_redis *r);

static void reg_cleanup(void)
{
    th_redis *r;

    pthread_mutex_lock(&reg_lock);
    for (r = reg_head; r; r = r->next) {
        /* A child the test forked inherits this handler and the registry:
           it must leave its parent's servers alone. */
        if (r->owner != getpid())
            continue;
        th_redis_kill(r);
        remove_dir(r);
    }
    pthread_mutex_unlock(&reg_lock);
}

static void reg_init(void)
{
    atexit(reg_cleanup);
}

static void reg_add(th_redis *r)
{
    pthread_once(&reg_once, reg_init);
    pthread_mutex_lock(&reg_lock);
    r->next = reg_head;
    reg_head = r;
    pthread_mutex_unlock(&reg_lock);
}

static void reg_remove(th_redis *r)
{
    th_redis **p;

    pthread_mutex_lock(&reg_lock);
    for (p = &reg_head; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            break;
        }
    }
    pthread_mutex_unlock(&reg_lock);
}

/* ---- the temporary directory ---- */

static int make_dir(th_redis *r)
{
    const char *base = getenv("TMPDIR");
    int n;

    /* The socket path must fit sun_path (108 bytes): a long TMPDIR would
       not leave room, so use /tmp then. */
    if (!base || !*base || strlen(base) > 64)
        base = "/tmp";
    n = snprintf(r->dir, sizeof r->dir, "%s/tc-redis-XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof r->dir || !mkdtemp(r->dir)) {
        fprintf(stderr, "th_redis: cannot create a directory in %s: %s\n",
                base, strerror(errno));
        return -1;
    }
    snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);
    snprintf(r->log, sizeof r->log, "%s/redis.log", r->dir);
    return 0;
}

static void remove_dir(const th_redis *r)
{
    DIR *d = opendir(r->dir);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
    rmdir(r->dir);
}

/* Prints the end of the server's log: why it did not come up. */
void th_redis_dump_log(const th_redis *r)
{
    char buf[2048];
    FILE *f = fopen(r->log, "r");
    long size;
    size_t n;

    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    if (size > (long)sizeof buf - 1)
        fseek(f, size - ((long)sizeof buf - 1), SEEK_SET);
    else
        rewind(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "---- end of %s ----\n%s\n----\n", r->log, buf);
}

/* ---- starting a server ---- */

/* A port nobody listens on right now: bind port 0 and see what the kernel
   gave. Someone may take it before the server binds it; callers retry. */
static int pick_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd, port = -1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int port_free(int port)
{
    struct sockaddr_in a;
    int fd, ok;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* A port for a cluster node, its bus port free as well: at random in
   [TH_BUS_PORT_LO, TH_BUS_PORT_HI), where parallel test programs rarely
   meet (a clash makes the server exit, and the caller retries). */
static int pick_bus_port(void)
{
    static atomic_uint calls;
    uint32_t x = (uint32_t)getpid() * 2654435761u ^
                 (uint32_t)th_now_ms() * 40503u ^
                 atomic_fetch_add(&calls, 1) * 2246822519u;

    for (int i = 0; i < 500; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5; /* xorshift32 */
        int port =
            TH_BUS_PORT_LO + (int)(x % (TH_BUS_PORT_HI - TH_BUS_PORT_LO));
        if (port_free(port) && port_free(port + TH_BUS_OFFSET))
            return port;
    }
    return -1;
}

/* In the forked child: only async-signal-safe calls until exec. */
static void exec_server(char *const argv[], pid_t parent, const char *log)
{
    static const char msg[] = "th_redis: cannot exec redis-server\n";
    sigset_t none;
    int fd, s;
    ssize_t ignored;

    /* Die with the test, even when it is killed before atexit runs. The
       parent may already be gone before prctl: check. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(127);
    /* Ignored signals and the mask survive exec: start the server clean. */
    for (s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    fd = open("/dev/null", O_RDONLY);
    if (fd >= 0)
        dup2(fd, 0);
    /* Errors redis prints before it opens its logfile land there too. */
    fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    /* hiredis does not set close-on-exec: a test's connection inherited by
       the server would stay open after the test closes it. */
    if (close_range(3, ~0u, 0) != 0) {
        for (fd = 3; fd < 1024; fd++)
            close(fd);
    }
    execvp(argv[0], argv);
    ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(127);
}

static int spawn(th_redis *r)
{
    char port[16];
    /* One option and its value a line. */
    /* clang-format off */
    char *opts[] = {
        "--port", port,
        "--bind", "127.0.0.1",
        "--unixsocket", r->sock,
        "--unixsocketperm", "700",
        "--save", "",
        "--appendonly", "no",
        "--dir", r->dir,
        "--daemonize", "no",
        "--logfile", r->log};
    /* clang-format on */
    char *argv[2 + sizeof opts / sizeof *opts + TH_EXTRA_MAX + 1];
    pid_t parent = getpid(), pid;
    size_t n = 0;

    argv[n++] = (char *)server_path();
    /* A config file comes first (sentinel mode needs one, and rewrites
       it); the options after it override it. */
    if (r->conf[0])
        argv[n++] = r->conf;
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
        argv[n++] = opts[i];
    for (size_t i = 0; r->extra[i]; i++)
        argv[n++] = r->extra[i];
    argv[n] = NULL;
    snprintf(port, sizeof port, "%d", r->port);
    unlink(r->sock);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "th_redis: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0)
        exec_server(argv, parent, r->log);
    r->pid = pid;
    r->frozen = 0;
    return 0;
}

/* If the server has exited, reaps it and returns 1. */
static int reap_if_exited(th_redis *r)
{
    if (r->pid > 0 && waitpid(r->pid, NULL, WNOHANG) == r->pid) {
        r->pid = 0;
        return 1;
    }
    return r->pid <= 0;
}

/* The "process_id:" field of an INFO reply, or -1. */
static long info_pid(const char *info)
{
    const char *p = strstr(info, "process_id:");

    return p ? strtol(p + strlen("process_id:"), NULL, 10) : -1;
}

/* 1 if r's own server answers PING on its TCP port. The port may belong
   to some other server (taken between pick_port and our bind, with ours
   about to exit), hence the check of the pid. */
static int answers_ping(const th_redis *r)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    redisReply *rep;
    int ok;

    if (!c || c->err) {
        if (c)
            redisFree(c);
        return 0;
    }
    redisSetTimeout(c, tv);
    if (r->pass[0]) {
        rep = redisCommand(c, "AUTH %s", r->pass);
        if (rep)
            freeReplyObject(rep);
    }
    rep = redisCommand(c, "PING");
    ok = rep && rep->type == REDIS_REPLY_STATUS && !strcmp(rep->str, "PONG");
    if (rep)
        freeReplyObject(rep);
    if (ok) {
        rep = redisCommand(c, "INFO server");
        ok = rep && rep->type == REDIS_REPLY_STRING &&
             info_pid(rep->str) == (long)r->pid;
        if (rep)
            freeReplyObject(rep);
    }
    redisFree(c);
    return ok;
}

/* Starts the server on r->port and waits for it until deadline (ms).
   0: ready; -1: it exited (the port was busy, say), worth a retry;
   -2: fork failed, or no answer in time (then it is killed). */
static int launch(th_redis *r, uint64_t deadline)
{
    if (spawn(r) != 0)
        return -2;
    for (;;) {
        if (reap_if_exited(r))
            return -1;
        if (answers_ping(r))
            return 0;
        if (th_now_ms() >= deadline) {
            th_redis_kill(r);
            return -2;
        }
        sleep_ms(10);
    }
}

th_redis *th_redis_start(void)
{
    return th_redis_start_args(NULL);
}

static void free_extra(th_redis *r)
{
    for (size_t i = 0; r->extra[i]; i++)
        free(r->extra[i]);
}

/* Writes the config file a server reads first; sentinel mode rewrites
   it, hence a file of its own in the server's directory. */
static int write_conf(th_redis *r, const char *text)
{
    FILE *f;

    snprintf(r->conf, sizeof r->conf, "%s/redis.conf", r->dir);
    f = fopen(r->conf, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "th_redis: cannot write %s: %s\n", r->conf,
                strerror(errno));
        return -1;
    }
    return 0;
}

th_redis *th_redis_start_spec(const th_redis_spec *sp)
{
    th_redis *r = calloc(1, sizeof *r);
    int attempt, rc = -1;
    size_t n = 0;

    if (!r || make_dir(r) != 0) {
        free(r);
        return NULL;
    }
    for (; sp->extra && sp->extra[n] && n < TH_EXTRA_MAX; n++)
        r->extra[n] = strdup(sp->extra[n]);
    if (sp->pass)
        snprintf(r->pass, sizeof r->pass, "%s", sp->pass);
    r->bus = sp->bus;
    r->owner = getpid();
    reg_add(r);
    if (sp->conf && write_conf(r, sp->conf) != 0) {
        th_redis_stop(r);
        return NULL;
    }
    for (attempt = 0; attempt < TH_START_ATTEMPTS && rc == -1; attempt++) {
        r->port = r->bus ? pick_bus_port() : pick_port();
        if (r->port <= 0 || r->port == 6379)
            continue;
        rc = launch(r, th_now_ms() + TH_READY_MS);
    }
    if (rc != 0) {
        fprintf(stderr, "th_redis_start: %s did not come up (port %d)\n",
                server_path(), r->port);
        th_redis_dump_log(r);
        th_redis_stop(r);
        return NULL;
    }
    return r;
}

th_redis *th_redis_start_args(const char *const *extra)
{
    th_redis_spec sp = {extra, NULL, NULL, 0};

    return th_redis_start_spec(&sp);
}

int th_redis_restart(th_redis *r)
{
    uint64_t deadline = th_now_ms() + TH_RESTART_MS;
    int rc;

    if (!r)
        return -1;
    th_redis_kill(r);
    /* The port can stay busy for a moment, e.g. when a client connecting
       while the server was down got it as its own local port. */
    while ((rc = launch(r, deadline)) == -1 && th_now_ms() < deadline)
        sleep_ms(50);
    if (rc != 0) {
        fprintf(stderr, "th_redis_restart: no server on port %d\n", r->port);
        th_redis_dump_log(r);
        return -1;
    }
    return 0;
}

/* ---- controlling a server ---- */

void th_redis_kill(th_redis *r)
{
    if (!r || r->pid <= 0)
        return;
    /* SIGKILL works on a stopped process too; SIGCONT is for tidiness. */
    if (r->frozen)
        kill(r->pid, SIGCONT);
    kill(r->pid, SIGKILL);
    while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    r->pid = 0;
    r->frozen = 0;
}

void th_redis_freeze(th_redis *r)
{
    pid_t got;
    int st;

    if (!r || r->pid <= 0 || r->frozen || kill(r->pid, SIGSTOP) != 0)
        return;
    r->frozen = 1;
    /* SIGSTOP takes effect asynchronously: wait until the server has
       stopped, so that the caller can count on it. */
    do {
        got = waitpid(r->pid, &st, WUNTRACED);
    } while (got < 0 && errno == EINTR);
    if (got == r->pid && !WIFSTOPPED(st)) {
        r->pid = 0; /* it died instead */
        r->frozen = 0;
    }
}

void th_redis_thaw(th_redis *r)
{
    if (!r || r->pid <= 0 || !r->frozen)
        return;
    kill(r->pid, SIGCONT);
    r->frozen = 0;
}

int th_kill_links_and_set(const th_redis *r, const char *rkey,
                          const char *value)
{
    tc__envelope e = {0,
                      tc__wall_ms() + 60000,
                      0,
                      (const unsigned char *)value,
                      strlen(value),
                      0};
    char *env;
    size_t elen;
    if (tc__env_encode(&e, &env, &elen) != TC_OK)
        return -1;
    redisContext *x = th_redis_connect(r);
    int rc = x ? 0 : -1;
    if (x) {
        redisAppendCommand(x, "MULTI");
        redisAppendCommand(x, "CLIENT KILL TYPE pubsub");
        redisAppendCommand(x, "SET %s %b", rkey, env, elen);
        redisAppendCommand(x, "EXEC");
        for (int i = 0; i < 4; i++) {
            redisReply *rep = NULL;
            if (redisGetReply(x, (void **)&rep) != REDIS_OK || !rep ||
                rep->type == REDIS_REPLY_ERROR)
                rc = -1;
            freeReplyObject(rep);
        }
        redisFree(x);
    }
    tc__free(env);
    return rc;
}

void th_redis_stop(th_redis *r)
{
    if (!r)
        return;
    th_redis_kill(r);
    reg_remove(r);
    remove_dir(r);
    free_extra(r);
    free(r);
}

int th_redis_port(const th_redis *r)
{
    return r ? r->port : -1;
}

const char *th_redis_socket(const th_redis *r)
{
    return r ? r->sock : NULL;
}

const char *th_redis_dir(const th_redis *r)
{
    return r ? r->dir : NULL;
}

pid_t th_redis_pid(const th_redis *r)
{
    return r ? r->pid : 0;
}

/* ---- talking to a server ---- */

redisContext *th_redis_connect(const th_redis *r)
{
    struct timeval tv = {1, 0};
    redisContext *c;

    if (!r)
        return NULL;
    c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (c && !c->err && redisSetTimeout(c, tv) == REDIS_OK) {
        /* A refused AUTH leaves the connection to tell NOAUTH later. */
        if (r->pass[0])
            freeReplyObject(redisCommand(c, "AUTH %s", r->pass));
        return c;
    }
    if (c)
        redisFree(c);
    return NULL;
}

redisReply *th_redis_cmd(const th_redis *r, const char *fmt, ...)
{
    redisContext *c = th_redis_connect(r);
    redisReply *rep;
    va_list ap;

    if (!c)
        return NULL;
    va_start(ap, fmt);
    rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return rep;
}

/* ---- options ---- */

/* Defaults, minus what could point elsewhere than a private server. */
static void base_options(tc_options *o)
{
    static atomic_uint counter;

    tc_options_init(o);
    o->redis_host[0] = '\0';
    o->redis_socket[0] = '\0';
    o->redis_db = 0;
    o->redis_username[0] = '\0';
    o->redis_password[0] = '\0';
    o->redis_sentinels = NULL;
    o->sentinel_master = NULL;
    o->sentinel_password = NULL;
    o->redis_cluster = NULL;
    snprintf(o->ns, sizeof o->ns, "t%ld_%u", (long)getpid(),
             atomic_fetch_add(&counter, 1));
    o->log_level = TC_LOG_ERROR;
}

void th_options(const th_redis *r, tc_options *o)
{
    base_options(o);
    if (r) {
        snprintf(o->redis_host, sizeof o->redis_host, "127.0.0.1");
        o->redis_port = r->port;
    }
}

void th_options_unix(const th_redis *r, tc_options *o)
{
    base_options(o);
    if (r)
        snprintf(o->redis_socket, sizeof o->redis_socket, "%s", r->sock);
}

tc_cache *th_open(const th_redis *r, const char *ns,
                  void (*tweak)(tc_options *o))
{
    tc_options o;
    tc_cache *c = NULL;

    th_options(r, &o);
    if (ns)
        snprintf(o.ns, sizeof o.ns, "%s", ns);
    if (tweak)
        tweak(&o);
    int rc = tc_open(&c, &o);
    if (rc != TC_OK)
        fprintf(stderr, "th_open: tc_open (namespace %s): %s\n", o.ns,
                tc_err_name(rc));
    CU_ASSERT_FATAL(rc == TC_OK);
    return c;
}

/* ---- the CUnit driver ---- */

static int add_tests(const char *suite, const th_test *tests)
{
    CU_pSuite s = CU_add_suite(suite, NULL, NULL);

    if (!s)
        return -1;
    /* TC_TEST_ONLY=name runs the tests whose names contain it. */
    const char *only = getenv("TC_TEST_ONLY");
    for (; tests && tests->name; tests++) {
        if (only && *only && !strstr(tests->name, only))
            continue;
        if (!CU_add_test(s, tests->name, tests->fn))
            return -1;
    }
    return 0;
}

int th_run(const char *suite, const th_test *tests)
{
    int ok = 0;

    /* Unbuffered, so the output of a test that crashes is not lost. */
    setvbuf(stdout, NULL, _IONBF, 0);
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (add_tests(suite, tests) == 0 && CU_basic_run_tests() == CUE_SUCCESS) {
        ok = CU_get_number_of_tests_run() > 0 &&
             CU_get_number_of_tests_failed() == 0 &&
             CU_get_number_of_failures() == 0 &&
             CU_get_number_of_failure_records() == 0;
        if (CU_get_number_of_tests_run() == 0)
            fprintf(stderr, "%s: no test ran\n", suite);
    } else {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
    }
    CU_cleanup_registry();
    return ok ? 0 : 1;
}

/* Under ThreadSanitizer: the fork tests fork processes that have threads
   (a prefork server does exactly that) and start threads in the child.
   TSan refuses that by default; the tests need it. Unused otherwise. */
__attribute__((visibility("default"))) const char *
__tsan_default_options(void);
__attribute__((visibility("default"))) const char *__tsan_default_options(void)
{
    return "die_after_fork=0";
}

th_redis *th_srv;

int th_run_redis(const char *suite, const th_test *tests)
{
    th_srv = th_redis_start();
    if (!th_srv)
        return 1;
    int rc = th_run(suite, tests);
    th_redis_stop(th_srv);
    return rc;
}

int th_get_str(tc_cache *c, const char *key, char *buf, size_t cap)
{
    size_t len = 0;
    int rc = tc_get_into(c, key, buf, cap - 1, &len);
    buf[rc == TC_OK ? len : 0] = '\0';
    return rc;
}
