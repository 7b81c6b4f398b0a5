/* test_httpc.c - the outbound HTTP client against a real nginx started for
 * the test (HTTP/1.1, cleartext HTTP/2 with prior knowledge, and HTTP/2 over
 * TLS with a throw-away certificate), plus sockets that refuse or never
 * answer.  Each test drives its own libev loop with a guard timer, so a
 * hang is a failure, never a stuck run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "http/httpc.h"

#define BIG_LEN (1024 * 1024)

static struct {
    char dir[64];
    pid_t pid;
    int p1, p2, p3; /* HTTP/1.1, h2c, h2 over TLS */
    char ca[128];
} ng = {.pid = -1};

/* ---- fixture: nginx */

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static bool port_open(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

    if (fd >= 0)
        close(fd);
    return ok;
}

static unsigned char big_byte(size_t i)
{
    return (unsigned char)((i * 7u) ^ (i >> 9));
}

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    int rc = 0;

    if (!f)
        return -1;
    if (fwrite(p, 1, n, f) != n)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static int stop_nginx(void **state);

static void show_nginx_log(void)
{
    char line[512];
    char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/error.log", ng.dir);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        fprintf(stderr, "nginx: %s", line);
    if (f)
        fclose(f);
}

static int start_nginx(void **state)
{
    char path[256];
    char cmd[512];
    char conf[4096];
    unsigned char *big;
    size_t i;
    int n;

    (void)state;
    signal(SIGPIPE, SIG_IGN);
    snprintf(ng.dir, sizeof(ng.dir), "/tmp/dz-httpc-XXXXXX");
    if (!mkdtemp(ng.dir))
        return -1;
    big = malloc(BIG_LEN);
    if (!big)
        return -1;
    for (i = 0; i < BIG_LEN; i++)
        big[i] = big_byte(i);
    snprintf(path, sizeof(path), "%s/big.bin", ng.dir);
    n = write_file(path, big, BIG_LEN);
    free(big);
    if (n)
        return -1;
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "
             "%s/key.pem -out %s/cert.pem -days 2 -subj /CN=127.0.0.1 -addext "
             "subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             ng.dir, ng.dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "test_httpc: openssl req failed\n");
        return -1;
    }
    snprintf(ng.ca, sizeof(ng.ca), "%s/cert.pem", ng.dir);
    ng.p1 = free_port();
    ng.p2 = free_port();
    ng.p3 = free_port();
    if (ng.p1 < 0 || ng.p2 < 0 || ng.p3 < 0 || ng.p1 == ng.p2 || ng.p2 == ng.p3 || ng.p1 == ng.p3)
        return -1;
    n = snprintf(
        conf, sizeof(conf),
        "daemon off; master_process off; worker_processes 1;\n"
        "pid %1$s/nginx.pid; error_log %1$s/error.log info;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        " access_log off; default_type application/octet-stream;\n"
        " client_body_temp_path %1$s/cbt; proxy_temp_path %1$s/pt; fastcgi_temp_path %1$s/ft;\n"
        " uwsgi_temp_path %1$s/ut; scgi_temp_path %1$s/st;\n"
        " keepalive_requests 10000; http2_max_requests 10000;\n"
        " server {\n"
        "  listen 127.0.0.1:%2$d; listen 127.0.0.1:%3$d http2; listen 127.0.0.1:%4$d ssl http2;\n"
        "  ssl_certificate %1$s/cert.pem; ssl_certificate_key %1$s/key.pem;\n"
        "  root %1$s;\n"
        "  location /echo { return 200 \"$request_method $request_uri $server_protocol "
        "$http_x_req\"; }\n"
        "  location /conn { return 200 \"$connection\"; }\n"
        "  location /post { client_body_buffer_size 1m; proxy_pass http://127.0.0.1:%2$d/sink;"
        " proxy_set_header X-Body $request_body; proxy_set_header Content-Length \"\";"
        " proxy_pass_request_body off; }\n"
        "  location /sink { return 200 \"$request_method:$http_x_body\"; }\n"
        "  location /hdr { add_header X-Multi a; add_header X-Multi b;"
        " add_header X-Test \" spaced \"; return 204; }\n"
        "  location /slow/ { alias %1$s/; limit_rate 64k; limit_rate_after 0; }\n"
        " }\n"
        "}\n",
        ng.dir, ng.p1, ng.p2, ng.p3);
    if (n <= 0 || (size_t)n >= sizeof(conf))
        return -1;
    snprintf(path, sizeof(path), "%s/nginx.conf", ng.dir);
    if (write_file(path, conf, (size_t)n))
        return -1;
    ng.pid = fork();
    if (ng.pid < 0)
        return -1;
    if (ng.pid == 0) {
        char errlog[128];
        int devnull = open("/dev/null", O_RDWR);

        /* nginx must not outlive a crashed or killed test */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        snprintf(errlog, sizeof(errlog), "%s/error.log", ng.dir);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execl("/usr/sbin/nginx", "nginx", "-p", ng.dir, "-c", path, "-e", errlog, (char *)NULL);
        execlp("nginx", "nginx", "-p", ng.dir, "-c", path, "-e", errlog, (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 100; i++) {
        if (port_open(ng.p1) && port_open(ng.p2) && port_open(ng.p3))
            return 0;
        if (waitpid(ng.pid, NULL, WNOHANG) == ng.pid) {
            fprintf(stderr, "test_httpc: nginx exited at start\n");
            show_nginx_log();
            ng.pid = -1;
            stop_nginx(NULL);
            return -1;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "test_httpc: nginx did not listen within 5 s\n");
    show_nginx_log();
    stop_nginx(NULL);
    return -1;
}

static int stop_nginx(void **state)
{
    char cmd[128];
    int i;

    (void)state;
    if (ng.pid > 0) {
        kill(ng.pid, SIGTERM);
        for (i = 0; i < 60 && waitpid(ng.pid, NULL, WNOHANG) != ng.pid; i++)
            sleep_ms(50);
        if (i == 60) {
            kill(ng.pid, SIGKILL);
            waitpid(ng.pid, NULL, 0);
        }
        ng.pid = -1;
    }
    if (getenv("DZ_TEST_DEBUG"))
        fprintf(stderr, "test_httpc: kept %s\n", ng.dir);
    else if (ng.dir[0] && strncmp(ng.dir, "/tmp/dz-httpc-", 14) == 0) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ng.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "test_httpc: could not remove %s\n", ng.dir);
    }
    return 0;
}

static char *url(int port, bool tls, const char *path)
{
    static char buf[8][256];
    static int next;
    char *u = buf[next++ % 8];

    snprintf(u, 256, "%s://127.0.0.1:%d%s", tls ? "https" : "http", port, path);
    return u;
}

/* ---- the loop harness */

struct res {
    struct dz_httpc *c;
    struct dz_httpc_xfer *x;
    int heads;
    int datas;
    int dones;
    int status;
    int result;
    bool data_before_head;
    struct dz_buf body;
    char hnames[16][32];
    char hvalues[16][64];
    size_t nh;
    bool bad_name;
    int datas_at_resume;
    /* hooks */
    void (*on_first_data)(struct res *r);
    void (*after_done)(struct res *r);
    void *user;
};

static struct ev_loop *loop;
static struct dz_httpc *cli;
static int pending;
static bool guard_fired;

/* n transfers will not call on_done (cancelled): stop when none is left */
static void settle(int n)
{
    pending -= n;
    if (pending == 0)
        ev_break(loop, EVBREAK_ALL);
}

static void r_init(struct res *r)
{
    memset(r, 0, sizeof(*r));
    r->status = -1;
    r->result = 1;
    dz_buf_init(&r->body, 4 * BIG_LEN);
}

static void r_head(void *arg, int status, const struct dz_hdr *h, size_t n)
{
    struct res *r = arg;
    size_t i;

    r->heads++;
    r->status = status;
    for (i = 0; i < n; i++) {
        const char *p;

        for (p = h[i].name; *p; p++)
            if ((*p >= 'A' && *p <= 'Z') || *p == ':')
                r->bad_name = true;
        if (r->nh < 16) {
            snprintf(r->hnames[r->nh], 32, "%s", h[i].name);
            snprintf(r->hvalues[r->nh], 64, "%s", h[i].value);
            r->nh++;
        }
    }
}

static void r_data(void *arg, const void *p, size_t n)
{
    struct res *r = arg;

    if (!r->heads)
        r->data_before_head = true;
    r->datas++;
    assert_int_equal(dz_buf_append(&r->body, p, n), 0);
    if (r->datas == 1 && r->on_first_data)
        r->on_first_data(r);
}

static void r_done(void *arg, int result)
{
    struct res *r = arg;

    r->dones++;
    r->result = result;
    if (r->after_done)
        r->after_done(r);
    settle(1);
}

static const struct dz_httpc_callbacks CB = {r_head, r_data, r_done};

static const char *r_header(const struct res *r, const char *name, int nth)
{
    size_t i;

    for (i = 0; i < r->nh; i++)
        if (strcmp(r->hnames[i], name) == 0 && nth-- == 0)
            return r->hvalues[i];
    return NULL;
}

static void guard_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    guard_fired = true;
    ev_break(l, EVBREAK_ALL);
}

/* Run until pending reaches 0 (or max_ms passes: then fail). */
static void run(unsigned max_ms)
{
    ev_timer guard;

    guard_fired = false;
    ev_timer_init(&guard, guard_cb, max_ms / 1000.0, 0.);
    ev_timer_start(loop, &guard);
    if (pending > 0)
        ev_run(loop, 0);
    ev_timer_stop(loop, &guard);
    assert_false(guard_fired);
}

/* Run for a fixed time whatever happens (to see that nothing happens). */
static void run_for(unsigned ms)
{
    ev_timer guard;

    ev_timer_init(&guard, guard_cb, ms / 1000.0, 0.);
    ev_timer_start(loop, &guard);
    ev_run(loop, 0);
    ev_timer_stop(loop, &guard);
}

static int setup(void **state)
{
    (void)state;
    loop = ev_loop_new(EVFLAG_AUTO);
    if (!loop || dz_httpc_new(loop, &cli) != 0)
        return -1;
    pending = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    dz_httpc_free(cli);
    cli = NULL;
    ev_loop_destroy(loop);
    loop = NULL;
    return 0;
}

static struct dz_httpc_request req(const char *u, enum dz_httpc_version v)
{
    struct dz_httpc_request r = {.method = "GET", .url = u, .version = v};

    return r;
}

static void start_ok(struct res *r, const struct dz_httpc_request *q)
{
    r->c = cli;
    assert_int_equal(dz_httpc_start(cli, q, &CB, r, &r->x), 0);
    assert_non_null(r->x);
    pending++;
}

static void check_big(const struct res *r)
{
    size_t i;

    assert_int_equal(r->body.len, BIG_LEN);
    for (i = 0; i < BIG_LEN; i++)
        if ((unsigned char)r->body.data[i] != big_byte(i))
            fail_msg("body differs at byte %zu", i);
}

/* ---- tests */

static void test_get_each_version(void **state)
{
    static const struct dz_hdr h[] = {{"x-req", "hello"}, {"accept", "text/plain"}};
    struct dz_httpc_tls tls = {.ca_file = ng.ca};
    struct res r[3];
    struct dz_httpc_request q;
    int i;

    (void)state;
    for (i = 0; i < 3; i++)
        r_init(&r[i]);
    q = req(url(ng.p1, false, "/echo?x=1"), DZ_HTTPC_HTTP1);
    q.headers = h;
    q.nheaders = 2;
    start_ok(&r[0], &q);
    q.url = url(ng.p2, false, "/echo?x=2");
    q.version = DZ_HTTPC_H2C;
    start_ok(&r[1], &q);
    q.url = url(ng.p3, true, "/echo?x=3");
    q.version = DZ_HTTPC_H2;
    q.tls = &tls;
    start_ok(&r[2], &q);
    run(5000);
    assert_string_equal(dz_buf_cstr(&r[0].body), "GET /echo?x=1 HTTP/1.1 hello");
    assert_string_equal(dz_buf_cstr(&r[1].body), "GET /echo?x=2 HTTP/2.0 hello");
    assert_string_equal(dz_buf_cstr(&r[2].body), "GET /echo?x=3 HTTP/2.0 hello");
    for (i = 0; i < 3; i++) {
        assert_int_equal(r[i].result, 0);
        assert_int_equal(r[i].status, 200);
        assert_int_equal(r[i].heads, 1);
        assert_int_equal(r[i].dones, 1);
        assert_false(r[i].data_before_head);
        assert_false(r[i].bad_name);
        assert_non_null(r_header(&r[i], "server", 0));
        assert_string_equal(r_header(&r[i], "content-type", 0), "application/octet-stream");
        dz_buf_cleanup(&r[i].body);
    }
}

static void test_tls_unknown_ca_unavailable(void **state)
{
    struct res r;
    struct dz_httpc_request q = req(url(ng.p3, true, "/echo"), DZ_HTTPC_H2);

    (void)state;
    r_init(&r);
    start_ok(&r, &q); /* system trust store: the test certificate is unknown */
    run(5000);
    assert_int_equal(r.result, DZ_ERR_UNAVAILABLE);
    assert_int_equal(r.heads, 0);
    assert_int_equal(r.dones, 1);
}

static void test_streaming_body(void **state)
{
    struct res r[2];
    struct dz_httpc_request q;
    int i;

    (void)state;
    r_init(&r[0]);
    r_init(&r[1]);
    q = req(url(ng.p1, false, "/big.bin"), DZ_HTTPC_HTTP1);
    start_ok(&r[0], &q);
    q = req(url(ng.p2, false, "/big.bin"), DZ_HTTPC_H2C);
    start_ok(&r[1], &q);
    run(10000);
    for (i = 0; i < 2; i++) {
        assert_int_equal(r[i].result, 0);
        assert_int_equal(r[i].status, 200);
        assert_true(r[i].datas > 4); /* arrived in pieces */
        check_big(&r[i]);
        assert_string_equal(r_header(&r[i], "content-length", 0), "1048576");
        dz_buf_cleanup(&r[i].body);
    }
}

static void test_status_and_headers_pass_through(void **state)
{
    struct res r[3];
    struct dz_httpc_request q;

    (void)state;
    r_init(&r[0]);
    r_init(&r[1]);
    r_init(&r[2]);
    q = req(url(ng.p1, false, "/missing"), DZ_HTTPC_HTTP1);
    start_ok(&r[0], &q);
    q = req(url(ng.p2, false, "/hdr"), DZ_HTTPC_H2C);
    start_ok(&r[1], &q);
    q = req(url(ng.p1, false, "/hdr"), DZ_HTTPC_HTTP1);
    q.method = "HEAD";
    start_ok(&r[2], &q);
    run(5000);
    assert_int_equal(r[0].result, 0);
    assert_int_equal(r[0].status, 404);
    assert_non_null(strstr(dz_buf_cstr(&r[0].body), "404"));
    /* 204: head then done, no data; repeated headers kept in order and
     * values trimmed */
    assert_int_equal(r[1].result, 0);
    assert_int_equal(r[1].status, 204);
    assert_int_equal(r[1].heads, 1);
    assert_int_equal(r[1].datas, 0);
    assert_string_equal(r_header(&r[1], "x-multi", 0), "a");
    assert_string_equal(r_header(&r[1], "x-multi", 1), "b");
    assert_string_equal(r_header(&r[1], "x-test", 0), "spaced");
    assert_false(r[1].bad_name);
    assert_int_equal(r[2].status, 204);
    assert_int_equal(r[2].result, 0);
    dz_buf_cleanup(&r[0].body);
}

static void test_post_body_and_methods(void **state)
{
    static const struct dz_hdr framing[] = {{"content-length", "5"},
                                            {"transfer-encoding", "chunked"},
                                            {"connection", "close"},
                                            {"expect", "100-continue"},
                                            {"content-type", "text/plain"}};
    char body[3000];
    char want[3100];
    struct res r[3];
    struct dz_httpc_request q;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(body); i++)
        body[i] = (char)('a' + i % 26);
    for (i = 0; i < 3; i++)
        r_init(&r[i]);
    q = req(url(ng.p1, false, "/post"), DZ_HTTPC_HTTP1);
    q.method = "POST";
    q.body = body;
    q.body_len = sizeof(body);
    /* the caller's framing headers are dropped: libcurl frames the body */
    q.headers = framing;
    q.nheaders = sizeof(framing) / sizeof(framing[0]);
    start_ok(&r[0], &q);
    q.url = url(ng.p2, false, "/post");
    q.version = DZ_HTTPC_H2C;
    q.method = "PUT";
    start_ok(&r[1], &q);
    memset(body, 'z', sizeof(body)); /* the body was copied at start */
    q.method = "POST";
    q.body = NULL;
    q.body_len = 0;
    q.headers = NULL;
    q.nheaders = 0;
    start_ok(&r[2], &q);
    run(5000);
    for (i = 0; i < sizeof(body); i++)
        body[i] = (char)('a' + i % 26);
    snprintf(want, sizeof(want), "POST:%.*s", (int)sizeof(body), body);
    assert_int_equal(r[0].status, 200);
    assert_string_equal(dz_buf_cstr(&r[0].body), want);
    snprintf(want, sizeof(want), "PUT:%.*s", (int)sizeof(body), body);
    assert_int_equal(r[1].status, 200);
    assert_string_equal(dz_buf_cstr(&r[1].body), want);
    assert_int_equal(r[2].status, 200);
    assert_string_equal(dz_buf_cstr(&r[2].body), "POST:");
    for (i = 0; i < 3; i++)
        dz_buf_cleanup(&r[i].body);
}

/* A listening socket that is never accepted: the connection succeeds (the
 * kernel queues it) and no answer ever comes. */
static void test_timeout(void **state)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct dz_httpc_request q;
    struct res r;
    double t0;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    r_init(&r);
    q = req(url(ntohs(a.sin_port), false, "/"), DZ_HTTPC_HTTP1);
    q.timeout_ms = 300;
    t0 = ev_time();
    start_ok(&r, &q);
    run(5000);
    assert_int_equal(r.result, DZ_ERR_TIMEOUT);
    assert_int_equal(r.heads, 0);
    assert_true(ev_time() - t0 >= 0.25);
    assert_true(ev_time() - t0 < 3.0);
    close(fd);
}

/* ---- a hostile HTTP/1.1 back end (the transport of lib/http/h1client.c) ----
 * A thread that answers each connection's first request with a canned
 * answer and keeps the connection open: a second request on it gets
 * "reused", a request on a new connection gets "fresh". */
struct rawsrv {
    int fd;
    int port;
    const char *first; /* the canned answer to the first request */
    int conns;
    pthread_t th;
};

static bool read_request(int fd)
{
    char b[4096];
    size_t n = 0;

    while (n < sizeof(b) - 1) {
        ssize_t k = recv(fd, b + n, sizeof(b) - 1 - n, 0);

        if (k <= 0)
            return false;
        n += (size_t)k;
        b[n] = '\0';
        if (strstr(b, "\r\n\r\n"))
            return true;
    }
    return false;
}

/* Sends s; at each SPLIT byte (not sent) it pauses briefly first, so that
 * the client most likely reads the answer in pieces (the assertions hold
 * whether it does or not). */
#define SPLIT "\x01"
static void say(int fd, const char *s)
{
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (;;) {
        size_t len = strcspn(s, SPLIT);
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

        (void)n;
        if (!s[len])
            return;
        s += len + 1;
        usleep(20000);
    }
}

static void *rawsrv_main(void *arg)
{
    static const char reused[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nreused";
    static const char fresh[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh";
    struct rawsrv *sv = arg;

    for (int i = 0; i < 2; i++) {
        int c = accept(sv->fd, NULL, NULL);

        if (c < 0)
            return NULL;
        sv->conns++;
        if (read_request(c)) {
            struct pollfd pf = {.fd = c, .events = POLLIN};

            say(c, i == 0 ? sv->first : fresh);
            /* Another request on this connection, or its end. */
            if (i == 0 && poll(&pf, 1, 3000) == 1 && read_request(c))
                say(c, reused);
        }
        close(c);
    }
    return NULL;
}

static void rawsrv_start(struct rawsrv *sv, const char *first)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);

    memset(sv, 0, sizeof(*sv));
    sv->first = first;
    sv->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(sv->fd >= 0);
    assert_int_equal(bind(sv->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(sv->fd, 8), 0);
    assert_int_equal(getsockname(sv->fd, (struct sockaddr *)&a, &al), 0);
    sv->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&sv->th, NULL, rawsrv_main, sv), 0);
}

static void rawsrv_stop(struct rawsrv *sv)
{
    shutdown(sv->fd, SHUT_RDWR); /* ends a pending accept */
    pthread_join(sv->th, NULL);
    close(sv->fd);
}

/* One GET to the raw server; the result, the body in r. */
static void raw_get(struct rawsrv *sv, struct res *r)
{
    struct dz_httpc_request q = req(url(sv->port, false, "/"), DZ_HTTPC_HTTP1);

    r_init(r);
    q.timeout_ms = 5000;
    start_ok(r, &q);
    run(8000);
}

static void test_hostile_http1_answers(void **state)
{
    static const struct {
        const char *answer;
        int result;
        bool head;
    } cases[] = {
        /* two lengths: which one would frame the next answer? */
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", DZ_ERR_UNAVAILABLE,
         false},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nab", DZ_ERR_UNAVAILABLE, false},
        {"HTTP/1.1 2xx OK\r\n\r\n", DZ_ERR_UNAVAILABLE, false},
        {"SSH-2.0-OpenSSH\r\n\r\n", DZ_ERR_UNAVAILABLE, false},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", DZ_ERR_UNAVAILABLE, false},
        /* a broken chunk after a good head */
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY\r\n0\r\n\r\n",
         DZ_ERR_UNAVAILABLE, true},
        /* the server closes in the middle of the body */
        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", DZ_ERR_UNAVAILABLE, true},
    };
    struct rawsrv sv;
    struct res r;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rawsrv_start(&sv, cases[i].answer);
        raw_get(&sv, &r);
        if (r.result != cases[i].result)
            print_error("case %zu: result %d\n", i, r.result);
        assert_int_equal(r.result, cases[i].result);
        assert_int_equal(r.heads, cases[i].head ? 1 : 0);
        dz_buf_cleanup(&r.body);
        rawsrv_stop(&sv);
    }
}

/* An answer followed by bytes nobody asked for (a smuggled second answer)
 * is delivered alone, and its connection is never used again; a clean
 * answer's connection is (the control: the test can see reuse). */
static void test_http1_no_reuse_after_extra_bytes(void **state)
{
    static const char smuggled[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                                   "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled";
    static const char clean[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    const char *firsts[] = {smuggled, clean};
    const char *seconds[] = {"fresh", "reused"};
    struct rawsrv sv;
    struct res r;

    (void)state;
    for (int i = 0; i < 2; i++) {
        rawsrv_start(&sv, firsts[i]);
        raw_get(&sv, &r);
        assert_int_equal(r.result, 0);
        assert_int_equal(r.body.len, 2);
        assert_memory_equal(dz_buf_cstr(&r.body), "ok", 2);
        dz_buf_cleanup(&r.body);
        raw_get(&sv, &r);
        assert_int_equal(r.result, 0);
        assert_string_equal(dz_buf_cstr(&r.body), seconds[i]);
        dz_buf_cleanup(&r.body);
        rawsrv_stop(&sv);
    }
}

/* Answers that arrive in pieces (the head cut inside a field, the body
 * and a chunk cut in two), and header fields larger than a transfer keeps
 * inline: delivered whole, and the connection is used again after each. */
static void test_http1_answer_in_pieces(void **state)
{
    static char big[1400];
    const char *answers[] = {
        "HTTP/1.1 200 OK\r\nContent-Le" SPLIT "ngth: 5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello" SPLIT "world",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "a\r\nhel" SPLIT "loworld\r\n0\r" SPLIT "\n\r\n",
        big,
    };
    const char *bodies[] = {"hello", "helloworld", "helloworld", "hello"};
    struct rawsrv sv;
    struct res r;
    char value[64];

    (void)state;
    memset(value, 'a', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    snprintf(big, sizeof(big),
             "HTTP/1.1 200 OK\r\nX-Big: %s%0900d\r\nX-After: yes\r\n"
             "Content-Length: 5\r\n\r\nhe" SPLIT "llo",
             value, 0);
    for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
        rawsrv_start(&sv, answers[i]);
        raw_get(&sv, &r);
        assert_int_equal(r.result, 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(dz_buf_cstr(&r.body), bodies[i]);
        if (answers[i] == big) {
            assert_true(r.nh >= 2);
            assert_string_equal(r.hnames[0], "x-big");
            assert_string_equal(r.hvalues[0], value); /* the first 63 bytes */
            assert_string_equal(r.hnames[1], "x-after");
            assert_string_equal(r.hvalues[1], "yes");
        }
        dz_buf_cleanup(&r.body);
        raw_get(&sv, &r);
        assert_int_equal(r.result, 0);
        assert_string_equal(dz_buf_cstr(&r.body), "reused");
        dz_buf_cleanup(&r.body);
        assert_int_equal(sv.conns, 1);
        rawsrv_stop(&sv);
    }
}

static void test_refused(void **state)
{
    int port = free_port();
    struct dz_httpc_request q;
    struct res r[2];

    (void)state;
    r_init(&r[0]);
    r_init(&r[1]);
    q = req(url(port, false, "/"), DZ_HTTPC_HTTP1);
    start_ok(&r[0], &q);
    q.version = DZ_HTTPC_H2C;
    start_ok(&r[1], &q);
    run(5000);
    assert_int_equal(r[0].result, DZ_ERR_UNAVAILABLE);
    assert_int_equal(r[1].result, DZ_ERR_UNAVAILABLE);
    assert_int_equal(r[0].heads + r[1].heads + r[0].datas + r[1].datas, 0);
}

static void test_max_response_bytes(void **state)
{
    struct dz_httpc_request q;
    struct res r[2];

    (void)state;
    r_init(&r[0]);
    r_init(&r[1]);
    q = req(url(ng.p1, false, "/big.bin"), DZ_HTTPC_HTTP1);
    q.max_response_bytes = 1000;
    start_ok(&r[0], &q);
    q.url = url(ng.p2, false, "/big.bin");
    q.version = DZ_HTTPC_H2C;
    q.max_response_bytes = BIG_LEN; /* exactly enough */
    start_ok(&r[1], &q);
    run(10000);
    assert_int_equal(r[0].result, DZ_ERR_TOOBIG);
    assert_true(r[0].body.len <= 1000);
    assert_int_equal(r[1].result, 0);
    check_big(&r[1]);
    dz_buf_cleanup(&r[0].body);
    dz_buf_cleanup(&r[1].body);
}

/* ---- cancel */

static struct res *victim;
static struct res spawned;

static void cancel_self_and_victim(struct res *r)
{
    struct dz_httpc_request q = req(url(ng.p1, false, "/echo?spawned"), DZ_HTTPC_HTTP1);

    dz_httpc_cancel(r->x);
    dz_httpc_cancel(victim->x);
    /* and starting from inside libcurl works */
    start_ok(&spawned, &q);
    settle(2); /* neither cancelled one will call on_done */
}

static void cancel_in_head(void *arg, int status, const struct dz_hdr *h, size_t n)
{
    struct res *r = arg;

    r_head(arg, status, h, n);
    dz_httpc_cancel(r->x);
    settle(1);
}

static void test_cancel_inside_callbacks(void **state)
{
    static const struct dz_httpc_callbacks head_cancels = {cancel_in_head, r_data, r_done};
    struct dz_httpc_request q;
    struct res a, b, c;

    (void)state;
    r_init(&a);
    r_init(&b);
    r_init(&c);
    r_init(&spawned);
    victim = &b;
    a.on_first_data = cancel_self_and_victim;
    q = req(url(ng.p1, false, "/slow/big.bin"), DZ_HTTPC_HTTP1);
    start_ok(&a, &q);
    q = req(url(ng.p2, false, "/slow/big.bin"), DZ_HTTPC_H2C);
    start_ok(&b, &q);
    q = req(url(ng.p2, false, "/big.bin"), DZ_HTTPC_H2C);
    assert_int_equal(dz_httpc_start(cli, &q, &head_cancels, &c, &c.x), 0);
    pending++;
    run(5000); /* ends when spawned is done */
    assert_int_equal(spawned.result, 0);
    assert_string_equal(dz_buf_cstr(&spawned.body), "GET /echo?spawned HTTP/1.1 ");
    run_for(300);
    assert_int_equal(a.datas, 1);
    assert_int_equal(a.dones + b.dones + c.dones, 0);
    assert_int_equal(c.heads, 1);
    assert_int_equal(c.datas, 0);
    dz_buf_cleanup(&a.body);
    dz_buf_cleanup(&b.body);
    dz_buf_cleanup(&spawned.body);
}

static void cancel_timer_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    struct res *r = w->data;

    (void)l;
    (void)revents;
    dz_httpc_cancel(r->x);
    r->user = r; /* mark: cancelled */
}

static void test_cancel_from_loop_and_at_once(void **state)
{
    struct dz_httpc_request q;
    struct res a, b, d;
    ev_timer t;

    (void)state;
    r_init(&a);
    r_init(&b);
    r_init(&d);
    q = req(url(ng.p2, false, "/slow/big.bin"), DZ_HTTPC_H2C);
    start_ok(&a, &q);
    pending--; /* will be cancelled */
    ev_timer_init(&t, cancel_timer_cb, 0.15, 0.);
    t.data = &a;
    ev_timer_start(loop, &t);
    /* cancelled before the loop ever ran */
    q = req(url(ng.p1, false, "/echo"), DZ_HTTPC_HTTP1);
    start_ok(&b, &q);
    dz_httpc_cancel(b.x);
    pending--;
    dz_httpc_cancel(NULL);
    /* something that does finish, so we know the loop ran */
    q = req(url(ng.p1, false, "/echo?d"), DZ_HTTPC_HTTP1);
    start_ok(&d, &q);
    run(5000);
    run_for(400);
    assert_ptr_equal(a.user, &a);
    assert_true(a.datas >= 1);
    assert_int_equal(a.dones, 0);
    assert_int_equal(b.heads + b.datas + b.dones, 0);
    assert_int_equal(d.result, 0);
    dz_buf_cleanup(&a.body);
    dz_buf_cleanup(&d.body);
}

/* ---- many at once, connection reuse, start from on_done */

static void test_many_concurrent(void **state)
{
    enum { N = 200 };
    struct res *r = calloc(2 * N, sizeof(*r));
    struct dz_httpc_request q;
    char path[64];
    char want[96];
    int i;

    (void)state;
    assert_non_null(r);
    for (i = 0; i < 2 * N; i++) {
        bool h2 = i >= N;

        r_init(&r[i]);
        snprintf(path, sizeof(path), "/echo?i=%d", i);
        q = req(url(h2 ? ng.p2 : ng.p1, false, path), h2 ? DZ_HTTPC_H2C : DZ_HTTPC_HTTP1);
        start_ok(&r[i], &q);
    }
    run(20000);
    for (i = 0; i < 2 * N; i++) {
        snprintf(want, sizeof(want), "GET /echo?i=%d %s ", i, i >= N ? "HTTP/2.0" : "HTTP/1.1");
        assert_int_equal(r[i].result, 0);
        assert_string_equal(dz_buf_cstr(&r[i].body), want);
        dz_buf_cleanup(&r[i].body);
    }
    free(r);
}

/* ---- the bound on open connections (dz_httpc_set_max_connections) */

/* A back end that counts its open connections and the most at once.  It
 * holds every answer until the first `gate` connections are open (so a
 * client without a bound has opened one per transfer by then), then
 * answers each request at once, keeping the connection alive. */
struct countsrv {
    int fd;
    int port;
    int gate;
    int wake[2];
    int open;     /* written by the server thread; read after the join */
    int max_open; /* the most connections open at once */
    int served;
    pthread_t th;
};

#define COUNTSRV_MAX 64

static void countsrv_answer(int fd)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    ssize_t n = send(fd, ok, sizeof(ok) - 1, MSG_NOSIGNAL);

    (void)n;
}

static void *countsrv_main(void *arg)
{
    struct countsrv *sv = arg;
    struct pollfd pf[COUNTSRV_MAX + 2];
    char got[COUNTSRV_MAX + 2][512];
    size_t len[COUNTSRV_MAX + 2] = {0};
    int waiting[COUNTSRV_MAX + 2] = {0}; /* whole requests not yet answered */
    size_t n = 2;
    bool gate_open = false;

    pf[0] = (struct pollfd){.fd = sv->fd, .events = POLLIN};
    pf[1] = (struct pollfd){.fd = sv->wake[0], .events = POLLIN};
    for (;;) {
        if (poll(pf, n, -1) < 0)
            continue;
        if (pf[1].revents)
            break;
        if ((pf[0].revents & POLLIN) && n < COUNTSRV_MAX + 2) {
            int c = accept(sv->fd, NULL, NULL);

            if (c >= 0) {
                pf[n] = (struct pollfd){.fd = c, .events = POLLIN};
                len[n] = 0;
                waiting[n] = 0;
                n++;
                sv->open++;
                if (sv->open > sv->max_open)
                    sv->max_open = sv->open;
                gate_open = gate_open || sv->open >= sv->gate;
            }
        }
        for (size_t i = 2; i < n; i++) {
            if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t k = recv(pf[i].fd, got[i] + len[i], sizeof(got[i]) - 1 - len[i], 0);
                char *end;

                if (k <= 0) {
                    close(pf[i].fd);
                    sv->open--;
                    pf[i] = pf[n - 1];
                    memcpy(got[i], got[n - 1], len[n - 1]);
                    len[i] = len[n - 1];
                    waiting[i] = waiting[n - 1];
                    n--;
                    i--;
                    continue;
                }
                len[i] += (size_t)k;
                got[i][len[i]] = '\0';
                while ((end = strstr(got[i], "\r\n\r\n")) != NULL) {
                    size_t used = (size_t)(end + 4 - got[i]);

                    waiting[i]++;
                    memmove(got[i], got[i] + used, len[i] - used + 1);
                    len[i] -= used;
                }
            }
        }
        for (size_t i = 2; gate_open && i < n; i++) {
            for (; waiting[i] > 0; waiting[i]--) {
                countsrv_answer(pf[i].fd);
                sv->served++;
            }
        }
    }
    for (size_t i = 2; i < n; i++)
        close(pf[i].fd);
    return NULL;
}

static void countsrv_start(struct countsrv *sv, int gate)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);

    memset(sv, 0, sizeof(*sv));
    sv->gate = gate;
    assert_int_equal(pipe(sv->wake), 0);
    sv->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(sv->fd >= 0);
    assert_int_equal(bind(sv->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(sv->fd, 128), 0);
    assert_int_equal(getsockname(sv->fd, (struct sockaddr *)&a, &al), 0);
    sv->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&sv->th, NULL, countsrv_main, sv), 0);
}

static void countsrv_stop(struct countsrv *sv)
{
    assert_int_equal(write(sv->wake[1], "x", 1), 1);
    pthread_join(sv->th, NULL);
    close(sv->fd);
    close(sv->wake[0]);
    close(sv->wake[1]);
}

/* A burst of HTTP/1.1 transfers through libcurl (a host name: not
 * h1client's) over the client's bound: every one completes, queued for a
 * connection rather than failed, and the back end never has more than the
 * bound open at once. */
static void test_max_connections_queues(void **state)
{
    enum { CAP = 3, N = 24 };
    struct res r[N];
    struct countsrv sv;
    char u[96];
    int i;

    (void)state;
    countsrv_start(&sv, CAP);
    assert_int_equal(dz_httpc_set_max_connections(cli, CAP), 0);
    snprintf(u, sizeof(u), "http://localhost:%d/burst", sv.port);
    for (i = 0; i < N; i++) {
        struct dz_httpc_request q = req(u, DZ_HTTPC_HTTP1);

        r_init(&r[i]);
        start_ok(&r[i], &q);
    }
    run(20000);
    countsrv_stop(&sv);
    for (i = 0; i < N; i++) {
        assert_int_equal(r[i].result, 0);
        assert_int_equal(r[i].status, 200);
        assert_string_equal(dz_buf_cstr(&r[i].body), "ok");
        dz_buf_cleanup(&r[i].body);
    }
    assert_int_equal(sv.served, N);
    assert_true(sv.max_open >= 1);
    assert_in_range(sv.max_open, 1, CAP);
}

static void test_h2_multiplexes_on_one_connection(void **state)
{
    enum { N = 50 };
    struct res r[N];
    struct dz_httpc_request q = req(url(ng.p2, false, "/conn"), DZ_HTTPC_H2C);
    int i;

    (void)state;
    for (i = 0; i < N; i++) {
        r_init(&r[i]);
        start_ok(&r[i], &q);
    }
    run(5000);
    for (i = 0; i < N; i++) {
        assert_int_equal(r[i].result, 0);
        /* one connection (PIPEWAIT): nginx numbers connections */
        assert_string_equal(dz_buf_cstr(&r[i].body), dz_buf_cstr(&r[0].body));
    }
    for (i = 0; i < N; i++)
        dz_buf_cleanup(&r[i].body);
}

struct chain {
    struct res r[6];
    int next;
};

static struct chain chain;

static void chain_next(struct res *done)
{
    static const struct dz_hdr close_hdr[] = {{"connection", "close"}};
    struct dz_httpc_request q = req(url(ng.p1, false, "/conn"), DZ_HTTPC_HTTP1);

    (void)done;
    if (chain.next == 6)
        return;
    q.headers = close_hdr; /* dropped: must not stop keep-alive */
    q.nheaders = 1;
    chain.r[chain.next].after_done = chain_next;
    start_ok(&chain.r[chain.next], &q);
    chain.next++;
}

static void test_keepalive_and_start_from_on_done(void **state)
{
    int i;

    (void)state;
    memset(&chain, 0, sizeof(chain));
    for (i = 0; i < 6; i++)
        r_init(&chain.r[i]);
    chain_next(NULL);
    run(5000);
    assert_int_equal(chain.next, 6);
    for (i = 0; i < 6; i++) {
        assert_int_equal(chain.r[i].result, 0);
        assert_string_equal(dz_buf_cstr(&chain.r[i].body), dz_buf_cstr(&chain.r[0].body));
    }
    for (i = 0; i < 6; i++)
        dz_buf_cleanup(&chain.r[i].body);
}

/* ---- pause */

static void pause_first(struct res *r)
{
    assert_int_equal(dz_httpc_pause(r->x, true), 0);
}

static void resume_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    struct res *r = w->data;

    (void)l;
    (void)revents;
    r->datas_at_resume = r->datas;
    assert_int_equal(dz_httpc_pause(r->x, false), 0);
    /* resuming is asynchronous: no data inside the call */
    assert_int_equal(r->datas, r->datas_at_resume);
}

/* A paused transfer keeps what its read left unread: here a 1-byte chunk
 * delivered, then a pause with a 32 KB chunk (more than a body read's
 * buffer) still in the bytes the head's read took. */
static void test_pause_keeps_a_large_unread_rest(void **state)
{
    static char answer[128 + 0x8000];
    struct dz_httpc_request q;
    struct rawsrv sv;
    struct res r;
    ev_timer t;
    int n;

    (void)state;
    n = snprintf(answer, sizeof(answer),
                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n8000\r\n");
    memset(answer + n, 'b', 0x8000);
    memcpy(answer + n + 0x8000, "\r\n0\r\n\r\n", 8);
    answer[n + 0x8000 + 8] = '\0';
    rawsrv_start(&sv, answer);
    q = req(url(sv.port, false, "/"), DZ_HTTPC_HTTP1);
    q.timeout_ms = 5000;
    r_init(&r);
    r.on_first_data = pause_first;
    start_ok(&r, &q);
    ev_timer_init(&t, resume_cb, 0.05, 0.);
    t.data = &r;
    ev_timer_start(loop, &t);
    run(8000);
    assert_int_equal(r.result, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.datas_at_resume, 1);
    assert_int_equal(r.body.len, 1 + 0x8000);
    assert_int_equal(r.body.data[0], 'a');
    assert_int_equal(r.body.data[0x8000], 'b');
    dz_buf_cleanup(&r.body);
    rawsrv_stop(&sv);
}

static void test_pause_resume(void **state)
{
    struct res r[2];
    ev_timer t[2];
    int i;

    (void)state;
    for (i = 0; i < 2; i++) {
        struct dz_httpc_request q =
            req(url(i ? ng.p2 : ng.p1, false, "/big.bin"), i ? DZ_HTTPC_H2C : DZ_HTTPC_HTTP1);

        r_init(&r[i]);
        r[i].on_first_data = pause_first;
        start_ok(&r[i], &q);
        ev_timer_init(&t[i], resume_cb, 0.3, 0.);
        t[i].data = &r[i];
        ev_timer_start(loop, &t[i]);
    }
    /* 1 MiB on loopback: well under a second once resumed (a transfer
     * stuck in libcurl's buffers would run into the guard) */
    run(3000);
    for (i = 0; i < 2; i++) {
        /* nothing arrived during the 300 ms pause after the first piece */
        assert_int_equal(r[i].datas_at_resume, 1);
        assert_int_equal(r[i].result, 0);
        check_big(&r[i]);
        dz_buf_cleanup(&r[i].body);
    }
    assert_int_equal(dz_httpc_pause(NULL, true), DZ_ERR_STATE);
}

/* ---- fetch */

struct fres {
    int result, status, calls;
    size_t n;
    char body[128];
    size_t len;
    bool has_ct;
};

static void fetch_done(void *arg, int result, int status, const struct dz_hdr *h, size_t n,
                       const unsigned char *body, size_t len)
{
    struct fres *f = arg;
    size_t i;

    f->calls++;
    f->result = result;
    f->status = status;
    f->n = n;
    f->len = len;
    if (body)
        snprintf(f->body, sizeof(f->body), "%.*s", (int)(len < 127 ? len : 127), body);
    for (i = 0; i < n; i++)
        if (strcmp(h[i].name, "content-type") == 0)
            f->has_ct = true;
    settle(1);
}

static void test_fetch(void **state)
{
    struct fres f[3];
    struct dz_httpc_request q;

    (void)state;
    memset(f, 0, sizeof(f));
    q = req(url(ng.p2, false, "/echo?f"), DZ_HTTPC_H2C);
    assert_int_equal(dz_httpc_fetch(cli, &q, fetch_done, &f[0], NULL), 0);
    q = req(url(ng.p1, false, "/big.bin"), DZ_HTTPC_HTTP1);
    q.max_response_bytes = 4096;
    assert_int_equal(dz_httpc_fetch(cli, &q, fetch_done, &f[1], NULL), 0);
    q.max_response_bytes = 0; /* default cap: 1 MiB, exactly the file */
    assert_int_equal(dz_httpc_fetch(cli, &q, fetch_done, &f[2], NULL), 0);
    assert_int_equal(dz_httpc_fetch(cli, &q, NULL, &f[2], NULL), DZ_ERR_INVAL);
    pending += 3;
    run(10000);
    assert_int_equal(f[0].calls, 1);
    assert_int_equal(f[0].result, 0);
    assert_int_equal(f[0].status, 200);
    assert_string_equal(f[0].body, "GET /echo?f HTTP/2.0 ");
    assert_true(f[0].has_ct);
    assert_int_equal(f[1].result, DZ_ERR_TOOBIG);
    assert_int_equal(f[1].status, 0);
    assert_int_equal(f[1].n, 0);
    assert_int_equal(f[1].len, 0);
    assert_int_equal(f[2].result, 0);
    assert_int_equal(f[2].len, BIG_LEN);
}

static void test_blocking(void **state)
{
    struct dz_httpc_request q = req(url(ng.p1, false, "/echo?b"), DZ_HTTPC_HTTP1);
    struct dz_buf b;
    int status = -1;

    (void)state;
    dz_buf_init(&b, 4096);
    assert_int_equal(dz_http_fetch_blocking(&q, &status, &b), 0);
    assert_int_equal(status, 200);
    assert_string_equal(dz_buf_cstr(&b), "GET /echo?b HTTP/1.1 ");
    dz_buf_reset(&b);
    q.url = url(ng.p2, false, "/echo?b2");
    q.version = DZ_HTTPC_H2C;
    assert_int_equal(dz_http_fetch_blocking(&q, &status, &b), 0);
    assert_string_equal(dz_buf_cstr(&b), "GET /echo?b2 HTTP/2.0 ");
    dz_buf_reset(&b);
    q.url = url(ng.p1, false, "/big.bin"); /* over the buffer's own bound */
    q.version = DZ_HTTPC_HTTP1;
    assert_int_equal(dz_http_fetch_blocking(&q, &status, &b), DZ_ERR_TOOBIG);
    assert_int_equal(status, 0);
    dz_buf_init(&b, 4 * BIG_LEN);
    q.max_response_bytes = 10;
    assert_int_equal(dz_http_fetch_blocking(&q, &status, &b), DZ_ERR_TOOBIG);
    q.url = url(free_port(), false, "/");
    q.max_response_bytes = 0;
    assert_int_equal(dz_http_fetch_blocking(&q, &status, &b), DZ_ERR_UNAVAILABLE);
    q.url = "gopher://127.0.0.1/";
    assert_int_equal(dz_http_fetch_blocking(&q, &status, &b), DZ_ERR_INVAL);
    dz_buf_cleanup(&b);
}

static void test_bad_requests(void **state)
{
    static const struct dz_hdr crlf[] = {{"x-a", "1\r\nx-injected: 1"}};
    static const struct dz_hdr lf[] = {{"x-a", "1\nx"}};
    static const struct dz_hdr sp[] = {{"bad name", "1"}};
    static const struct dz_hdr pseudo[] = {{":path", "/x"}};
    static const struct dz_hdr empty[] = {{"", "1"}};
    static const struct dz_hdr nullv[] = {{"x-a", NULL}};
    struct res r;
    struct dz_httpc_xfer *x = (struct dz_httpc_xfer *)&r;
    struct dz_httpc_request q;
    char longurl[DZ_HTTPC_MAX_URL + 64];
    const char *bad_urls[] = {"",
                              "ftp://127.0.0.1/",
                              "http://",
                              "http//127.0.0.1/",
                              "http://127.0.0.1/a b",
                              "http://127.0.0.1/\x01",
                              "http://127.0.0.1/\xc3\xa9",
                              "file:///etc/passwd",
                              longurl};
    size_t i;

    (void)state;
    r_init(&r);
    memcpy(longurl, "http://127.0.0.1/", 17);
    memset(longurl + 17, 'a', sizeof(longurl) - 18);
    longurl[sizeof(longurl) - 1] = '\0';
    for (i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        q = req(bad_urls[i], DZ_HTTPC_HTTP1);
        x = (struct dz_httpc_xfer *)&r;
        assert_int_equal(dz_httpc_start(cli, &q, &CB, &r, &x), DZ_ERR_INVAL);
        assert_null(x);
    }
    q = req(NULL, DZ_HTTPC_HTTP1);
    assert_int_equal(dz_httpc_start(cli, &q, &CB, &r, &x), DZ_ERR_INVAL);
    assert_int_equal(dz_httpc_start(cli, NULL, &CB, &r, &x), DZ_ERR_INVAL);
    assert_int_equal(dz_httpc_start(NULL, &q, &CB, &r, &x), DZ_ERR_INVAL);
    q = req(url(ng.p3, true, "/"), DZ_HTTPC_H2C); /* h2c is cleartext only */
    assert_int_equal(dz_httpc_start(cli, &q, &CB, &r, &x), DZ_ERR_INVAL);
    q = req(url(ng.p1, false, "/"), (enum dz_httpc_version)7);
    assert_int_equal(dz_httpc_start(cli, &q, &CB, &r, &x), DZ_ERR_INVAL);
    q = req(url(ng.p1, false, "/"), DZ_HTTPC_HTTP1);
    q.method = "GE T";
    assert_int_equal(dz_httpc_start(cli, &q, &CB, &r, &x), DZ_ERR_INVAL);
    q.method = "";
    assert_int_equal(dz_httpc_start(cli, &q, &CB, &r, &x), DZ_ERR_INVAL);
    q.method = "GET\r\nX: y";
    assert_int_equal(dz_httpc_start(cli, &q, &CB, &r, &x), DZ_ERR_INVAL);
    q.method = "POST";
    q.body_len = 3;
    assert_int_equal(dz_httpc_start(cli, &q, &CB, &r, &x), DZ_ERR_INVAL);
    q.body_len = 0;
    q.nheaders = 1;
    assert_int_equal(dz_httpc_start(cli, &q, &CB, &r, &x), DZ_ERR_INVAL); /* headers NULL */
    q.headers = crlf;
    assert_int_equal(dz_httpc_start(cli, &q, &CB, &r, &x), DZ_ERR_INVAL);
    q.headers = lf;
    assert_int_equal(dz_httpc_start(cli, &q, &CB, &r, &x), DZ_ERR_INVAL);
    q.headers = sp;
    assert_int_equal(dz_httpc_start(cli, &q, &CB, &r, &x), DZ_ERR_INVAL);
    q.headers = pseudo;
    assert_int_equal(dz_httpc_start(cli, &q, &CB, &r, &x), DZ_ERR_INVAL);
    q.headers = empty;
    assert_int_equal(dz_httpc_start(cli, &q, &CB, &r, &x), DZ_ERR_INVAL);
    q.headers = nullv;
    assert_int_equal(dz_httpc_start(cli, &q, &CB, &r, &x), DZ_ERR_INVAL);
    assert_int_equal(dz_http_fetch_blocking(&q, NULL, &r.body), DZ_ERR_INVAL);
    /* nothing was started: no callback ever comes */
    run_for(100);
    assert_int_equal(r.heads + r.datas + r.dones, 0);
}

static void test_free_with_transfers_in_flight(void **state)
{
    struct res r[10];
    int i;

    (void)state;
    for (i = 0; i < 10; i++) {
        struct dz_httpc_request q = req(url(i % 2 ? ng.p1 : ng.p2, false, "/slow/big.bin"),
                                        i % 2 ? DZ_HTTPC_HTTP1 : DZ_HTTPC_H2C);

        r_init(&r[i]);
        start_ok(&r[i], &q);
    }
    run_for(200);
    dz_httpc_free(cli);
    cli = NULL;
    /* every watcher is gone: the loop has nothing left to wait for */
    assert_int_equal(ev_run(loop, EVRUN_NOWAIT), 0);
    for (i = 0; i < 10; i++) {
        assert_int_equal(r[i].dones, 0);
        dz_buf_cleanup(&r[i].body);
    }
    {
        struct dz_httpc *other = (struct dz_httpc *)&r;

        assert_int_equal(dz_httpc_new(NULL, &other), DZ_ERR_INVAL);
        assert_null(other);
    }
    assert_int_equal(dz_httpc_new(loop, &cli), 0); /* for teardown */
}

/* ---- the header line splitter (pure; also fuzzed) */

static void test_header_line(void **state)
{
    static const struct {
        const char *in;
        enum dz_http_line kind;
        const char *name;
        const char *value;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\n", DZ_HTTP_LINE_STATUS, NULL, NULL},
        {"HTTP/2 204 \r\n", DZ_HTTP_LINE_STATUS, NULL, NULL},
        {"Content-Type: text/plain\r\n", DZ_HTTP_LINE_HEADER, "Content-Type", "text/plain"},
        {"x:  \t padded \t \r\n", DZ_HTTP_LINE_HEADER, "x", "padded"},
        {"x:\r\n", DZ_HTTP_LINE_HEADER, "x", ""},
        {"x: a:b c\n", DZ_HTTP_LINE_HEADER, "x", "a:b c"},
        {"x: caf\xc3\xa9\r\n", DZ_HTTP_LINE_HEADER, "x", "caf\xc3\xa9"},
        {"\r\n", DZ_HTTP_LINE_SKIP, NULL, NULL},
        {"", DZ_HTTP_LINE_SKIP, NULL, NULL},
        {" folded continuation\r\n", DZ_HTTP_LINE_SKIP, NULL, NULL},
        {"\tfolded\r\n", DZ_HTTP_LINE_SKIP, NULL, NULL},
        {"no colon here\r\n", DZ_HTTP_LINE_SKIP, NULL, NULL},
        {": empty name\r\n", DZ_HTTP_LINE_SKIP, NULL, NULL},
        {"bad name: v\r\n", DZ_HTTP_LINE_SKIP, NULL, NULL},
        {"bad\x01: v\r\n", DZ_HTTP_LINE_SKIP, NULL, NULL},
        {"x: a\rb\r\n", DZ_HTTP_LINE_SKIP, NULL, NULL},
        {"x: a\x7f\r\n", DZ_HTTP_LINE_SKIP, NULL, NULL},
        {"x: a\x01b\r\n", DZ_HTTP_LINE_SKIP, NULL, NULL},
        {"HTTP", DZ_HTTP_LINE_SKIP, NULL, NULL},
    };
    const char *v = (const char *)1;
    size_t nl = 9;
    size_t vl = 9;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum dz_http_line k = dz_http_header_line(cases[i].in, strlen(cases[i].in), &nl, &v, &vl);

        assert_int_equal(k, cases[i].kind);
        if (k == DZ_HTTP_LINE_HEADER) {
            assert_int_equal(nl, strlen(cases[i].name));
            assert_memory_equal(cases[i].in, cases[i].name, nl);
            assert_int_equal(vl, strlen(cases[i].value));
            assert_memory_equal(v, cases[i].value, vl);
        } else {
            assert_int_equal(nl, 0);
            assert_int_equal(vl, 0);
            assert_null(v);
        }
    }
    /* a NUL inside the value (libcurl passes lengths, not strings) */
    assert_int_equal(dz_http_header_line("x: a\0b\r\n", 8, &nl, &v, &vl), DZ_HTTP_LINE_SKIP);
}

/* ---- against darvaza's own HTTP/2 engine (lib/http/httpd.c), the server of
 * the peers and of the gateway itself: h2c with prior knowledge only */

static void engine_request(struct dz_req *r, void *wdata)
{
    char body[256];
    size_t len = 0;
    const struct dz_hdr h[] = {{"x-echo", "yes"}, {"content-type", "text/plain"}};
    int n;

    (void)wdata;
    dz_req_body(r, &len);
    n = snprintf(body, sizeof(body), "%s %s %zu", dz_req_method(r), dz_req_path(r), len);
    dz_req_respond(r, 200, h, 2, body, (size_t)n);
}

static void test_against_darvaza_engine(void **state)
{
    enum { N = 100 };
    struct dz_listener_conf lc = {.host = "127.0.0.1", .port = 0};
    struct dz_httpd_conf conf = {.listeners = &lc, .nlisteners = 1, .workers = 1};
    struct dz_httpd *h = NULL;
    struct res *r = calloc(N + 1, sizeof(*r));
    char path[64];
    char want[96];
    int port;
    int i;

    (void)state;
    assert_non_null(r);
    dz_httpd_limits_default(&conf.limits);
    conf.handlers.on_request = engine_request;
    assert_int_equal(dz_httpd_new(&conf, &h), 0);
    assert_int_equal(dz_httpd_start(h), 0);
    port = dz_httpd_port(h, 0);
    for (i = 0; i < N; i++) {
        struct dz_httpc_request q;

        r_init(&r[i]);
        snprintf(path, sizeof(path), "/e?i=%d", i);
        q = req(url(port, false, path), DZ_HTTPC_H2C);
        if (i % 2) {
            q.method = "POST";
            q.body = path;
            q.body_len = strlen(path);
        }
        start_ok(&r[i], &q);
    }
    run(10000);
    for (i = 0; i < N; i++) {
        snprintf(path, sizeof(path), "/e?i=%d", i);
        snprintf(want, sizeof(want), "%s %s %zu", i % 2 ? "POST" : "GET", path,
                 i % 2 ? strlen(path) : 0);
        assert_int_equal(r[i].result, 0);
        assert_int_equal(r[i].status, 200);
        assert_string_equal(r_header(&r[i], "x-echo", 0), "yes");
        assert_string_equal(dz_buf_cstr(&r[i].body), want);
        dz_buf_cleanup(&r[i].body);
    }
    /* the burst shared one connection, and a later request reuses it */
    assert_int_equal(dz_httpd_open_connections(h), 1);
    {
        struct dz_httpc_request q = req(url(port, false, "/again"), DZ_HTTPC_H2C);

        r_init(&r[N]);
        start_ok(&r[N], &q);
        run(5000);
        assert_string_equal(dz_buf_cstr(&r[N].body), "GET /again 0");
        assert_int_equal(dz_httpd_open_connections(h), 1);
        dz_buf_cleanup(&r[N].body);
    }
    dz_httpc_free(cli); /* closes the connection before the server drains */
    cli = NULL;
    assert_int_equal(dz_httpc_new(loop, &cli), 0);
    dz_httpd_drain(h, 2000);
    dz_httpd_free(h);
    free(r);
}

/* ---- a transfer cancelled mid-answer lets go of the back end's stream */

static atomic_int held_closed; /* streams of engine_hold closed by the client */

static void held_close(struct dz_req *r, void *arg)
{
    (void)r;
    (void)arg;
    atomic_fetch_add(&held_closed, 1);
}

/* The head and a first part of the body, then nothing: a back end in the
 * middle of a slow answer, which it holds until its client lets go. */
static void engine_hold(struct dz_req *r, void *wdata)
{
    static const char part[1024];
    const struct dz_hdr h[] = {{"content-type", "application/octet-stream"}};

    (void)wdata;
    dz_req_on_close(r, held_close, NULL);
    if (dz_req_start(r, 200, h, 1) == 0)
        dz_req_write(r, part, sizeof(part));
}

static void cancel_in_data(struct res *r)
{
    dz_httpc_cancel(r->x);
    settle(1);
}

static void held_closed_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    if (atomic_load(&held_closed) > 0)
        ev_break(l, EVBREAK_ALL);
}

/*
 * Cancelled from inside its on_data (as the forwarder does with an answer
 * it refuses), an HTTP/2 transfer's stream is let go at the back end: the
 * engine sees it closed.  libcurl 7.88 submits the RST_STREAM but does not
 * send it (curl #17611): before, the stream stayed open, the back end
 * holding its answer, as long as the idle connection lived.
 */
static void test_cancel_lets_go_of_h2_stream(void **state)
{
    struct dz_listener_conf lc = {.host = "127.0.0.1", .port = 0};
    struct dz_httpd_conf conf = {.listeners = &lc, .nlisteners = 1, .workers = 1};
    struct dz_httpd *h = NULL;
    struct dz_httpc_request q;
    struct res a;
    ev_timer poll;

    (void)state;
    atomic_store(&held_closed, 0);
    dz_httpd_limits_default(&conf.limits);
    conf.handlers.on_request = engine_hold;
    assert_int_equal(dz_httpd_new(&conf, &h), 0);
    assert_int_equal(dz_httpd_start(h), 0);
    r_init(&a);
    a.on_first_data = cancel_in_data;
    q = req(url(dz_httpd_port(h, 0), false, "/hold"), DZ_HTTPC_H2C);
    start_ok(&a, &q);
    run(5000); /* until it is cancelled */
    assert_int_equal(a.datas, 1);
    ev_timer_init(&poll, held_closed_cb, 0.01, 0.01);
    ev_timer_start(loop, &poll);
    run_for(5000); /* a bound: ends as soon as the engine saw the close */
    ev_timer_stop(loop, &poll);
    assert_int_equal(atomic_load(&held_closed), 1);
    assert_int_equal(a.dones, 0);
    dz_buf_cleanup(&a.body);
    dz_httpc_free(cli);
    cli = NULL;
    assert_int_equal(dz_httpc_new(loop, &cli), 0);
    dz_httpd_drain(h, 2000);
    dz_httpd_free(h);
}

int main(void)
{
    if (getenv("DZ_TEST_DEBUG"))
        dz_log_set_level(DZ_LOG_DEBUG);
    if (getenv("DZ_TEST_FILTER"))
        cmocka_set_test_filter(getenv("DZ_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_each_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_unknown_ca_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streaming_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_and_headers_pass_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_body_and_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_response_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_inside_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_from_loop_and_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_lets_go_of_h2_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_connections_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_http1_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http1_no_reuse_after_extra_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http1_answer_in_pieces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_h2_multiplexes_on_one_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_and_start_from_on_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_keeps_a_large_unread_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_transfers_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_against_darvaza_engine, setup, teardown),
        cmocka_unit_test(test_header_line),
    };

    return cmocka_run_group_tests(tests, start_nginx, stop_nginx);
}
