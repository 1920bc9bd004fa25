#include "wsrelay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- frame headers ---- */

void ws_reader_init(ws_reader *r, bool strict, uint64_t max_payload)
{
    memset(r, 0, sizeof(*r));
    r->strict = strict;
    r->max_payload = max_payload;
}

bool ws_reader_at_boundary(const ws_reader *r)
{
    return r->hlen == 0 && r->remain == 0 && !r->close_code;
}

size_t ws_close_frame(unsigned char out[4], int code)
{
    out[0] = 0x88; /* FIN, close */
    out[1] = 2;    /* unmasked: server to client */
    out[2] = (unsigned char)(code >> 8);
    out[3] = (unsigned char)(code & 0xff);
    return 4;
}

/* The header length once its first two bytes are known. */
static size_t header_need(const unsigned char *h)
{
    unsigned len7 = h[1] & 0x7f;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((h[1] & 0x80) ? 4 : 0);
}

/* The rules a client's frame must follow, checked on its first two bytes. */
static int check_start(const unsigned char *h)
{
    unsigned op = h[0] & 0x0f;
    if (h[0] & 0x70) return WS_CLOSE_PROTOCOL;     /* no extension was negotiated */
    if (!(h[1] & 0x80)) return WS_CLOSE_PROTOCOL;  /* a client must mask (RFC 6455 5.1) */
    if (op >= 3 && op <= 7) return WS_CLOSE_PROTOCOL;
    if (op >= 11) return WS_CLOSE_PROTOCOL;
    if (op & 0x8) { /* control frames: not fragmented, at most 125 bytes */
        if (!(h[0] & 0x80) || (h[1] & 0x7f) > 125) return WS_CLOSE_PROTOCOL;
    }
    return 0;
}

static uint64_t payload_length(const unsigned char *h)
{
    unsigned len7 = h[1] & 0x7f;
    if (len7 < 126) return len7;
    if (len7 == 126) return ((uint64_t)h[2] << 8) | h[3];
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | h[2 + i];
    return v;
}

size_t ws_reader_feed(ws_reader *r, const unsigned char *buf, size_t n)
{
    if (r->close_code) return 0;
    size_t i = 0;
    while (i < n) {
        if (r->remain) {
            uint64_t take = n - i;
            if (take > r->remain) take = r->remain;
            r->remain -= take;
            i += (size_t)take;
            continue;
        }
        /* a header: it began here, or (hlen > 0, i == 0) in an earlier call */
        size_t start = r->hlen ? 0 : i;
        while (i < n) {
            r->hdr[r->hlen++] = buf[i++];
            if (r->hlen == 2 && r->strict) {
                int code = check_start(r->hdr);
                if (code) {
                    r->close_code = code;
                    return start;
                }
            }
            if (r->hlen >= 2 && r->hlen == header_need(r->hdr)) break;
        }
        if (r->hlen < 2 || r->hlen < header_need(r->hdr)) break; /* more in the next call */
        uint64_t len = payload_length(r->hdr);
        if (r->strict) {
            if ((r->hdr[1] & 0x7f) == 127 && (len >> 63)) {
                r->close_code = WS_CLOSE_PROTOCOL;
                return start;
            }
            if (len > r->max_payload) {
                r->close_code = WS_CLOSE_TOO_BIG;
                if (len > r->largest) r->largest = len;
                return start;
            }
        }
        if (len > r->largest) r->largest = len;
        r->frames++;
        r->remain = len;
        r->hlen = 0;
    }
    return n;
}

/* ---- the request head from nginx ---- */

#define TARGET_HEADER "X-BIC-Console-Target:"

long wsrelay_take_target(char *head, size_t len, char *target, size_t target_len)
{
    size_t hl = strlen(TARGET_HEADER);
    long found = -1;
    size_t line_start = 0, cut_from = 0, cut_len = 0;
    /* the first line is the request line; headers follow, each ending with CRLF */
    for (size_t i = 0; i + 1 < len; i++) {
        if (head[i] != '\r' || head[i + 1] != '\n') continue;
        size_t next = i + 2;
        if (line_start > 0 && i - line_start >= hl && !strncasecmp(head + line_start, TARGET_HEADER, hl)) {
            if (found >= 0) return -1; /* twice */
            const char *v = head + line_start + hl;
            const char *end = head + i;
            while (v < end && (*v == ' ' || *v == '\t')) v++;
            while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
            size_t vl = (size_t)(end - v);
            if (!vl || vl >= target_len) return -1;
            memcpy(target, v, vl);
            target[vl] = '\0';
            found = 1;
            cut_from = line_start;
            cut_len = next - line_start;
        }
        line_start = next;
    }
    if (found < 0) return -1;
    memmove(head + cut_from, head + cut_from + cut_len, len - cut_from - cut_len);
    return (long)(len - cut_len);
}

int wsrelay_parse_target(const char *target, struct sockaddr_storage *ss, unsigned *ss_len)
{
    char host[64];
    const char *colon;
    memset(ss, 0, sizeof(*ss));
    if (target[0] == '[') {
        const char *close = strchr(target, ']');
        if (!close || close[1] != ':' || (size_t)(close - target - 1) >= sizeof(host)) return -1;
        memcpy(host, target + 1, (size_t)(close - target - 1));
        host[close - target - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(target, ':');
        if (!colon || (size_t)(colon - target) >= sizeof(host)) return -1;
        memcpy(host, target, (size_t)(colon - target));
        host[colon - target] = '\0';
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 1 || port > 65535) return -1;
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *ss_len = sizeof(*v4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *ss_len = sizeof(*v6);
        return 0;
    }
    return -1;
}

/* ---- the relay ---- */

#define BUFSZ    (64 * 1024)
#define HEAD_MAX (8 * 1024)

enum { S_HEAD, S_CONNECTING, S_RELAY };
enum { SIDE_CLIENT, SIDE_UPSTREAM };

struct conn;
struct endpoint {
    struct conn *c;
    int side;
    int fd;
    uint32_t events; /* what epoll watches now */
};

struct conn {
    struct endpoint ep[2];
    int state;
    /* bytes read from one side, waiting to be written to the other */
    unsigned char c2u[BUFSZ];
    size_t c2u_off, c2u_len;
    unsigned char u2c[BUFSZ + 4]; /* + room for our close frame */
    size_t u2c_off, u2c_len;
    bool c_eof, u_eof;       /* that side sent everything */
    bool c_shut, u_shut;     /* we shut that side's write half */
    bool closing;            /* after a refused frame: flush u2c, then drain */
    bool draining;           /* our side is shut: read and drop what the client still sends */
    ws_reader cr, ur;
    bool u_head_done, u_passthrough;
    unsigned head_match;     /* bytes of "\r\n\r\n" matched in the upstream's answer */
    size_t u_head_len;
    char first_line[16];
    long long deadline_ms;   /* HEAD, CONNECTING and draining only */
    long long opened_ms;
    unsigned long long up_bytes, down_bytes;
    char target[80];
    const char *reason;
    bool dead;               /* closed; freed after the current batch of events */
    struct conn *prev, *next;
};

static volatile sig_atomic_t stopping;
static int epfd = -1;
static struct conn *conns, *graveyard;
static int nconns;
static const wsrelay_config *conf;

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logj(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logj(const char *level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    /* msg is built by this file only, from numbers, fixed words and a parsed address */
    fprintf(stderr, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"where\":\"bic-consoled\",%s}\n", when,
            ts.tv_nsec / 1000000, level, msg);
}

static void watch(struct endpoint *e, uint32_t events)
{
    if (e->fd < 0 || e->events == events) return;
    struct epoll_event ev = {.events = events, .data.ptr = e};
    epoll_ctl(epfd, EPOLL_CTL_MOD, e->fd, &ev);
    e->events = events;
}

static int add_fd(struct endpoint *e, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = e};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, e->fd, &ev) < 0) return -1;
    e->events = events;
    return 0;
}

static void conn_free(struct conn *c)
{
    long long secs = (now_ms() - c->opened_ms) / 1000;
    if (c->state == S_RELAY || c->reason)
        logj(!c->reason || !strcmp(c->reason, "browser_closed") || !strcmp(c->reason, "desktop_closed")
                 ? "info"
                 : "warn",
             "\"msg\":\"console closed\",\"target\":\"%s\",\"reason\":\"%s\",\"seconds\":%lld,"
             "\"bytes_to_desktop\":%llu,\"bytes_to_browser\":%llu,\"client_frames\":%llu,"
             "\"largest_client_frame\":%llu",
             c->target[0] ? c->target : "-", c->reason ? c->reason : "closed", secs, c->up_bytes,
             c->down_bytes, (unsigned long long)c->cr.frames, (unsigned long long)c->cr.largest);
    for (int s = 0; s < 2; s++)
        if (c->ep[s].fd >= 0) close(c->ep[s].fd); /* also leaves the epoll set */
    if (c->prev) c->prev->next = c->next;
    else conns = c->next;
    if (c->next) c->next->prev = c->prev;
    nconns--;
    /* later events of this batch may still name it: freed once the batch is done */
    c->dead = true;
    c->next = graveyard;
    graveyard = c;
}

static void bury(void)
{
    while (graveyard) {
        struct conn *c = graveyard;
        graveyard = c->next;
        free(c);
    }
}

/* Before the upgrade: an HTTP answer to nginx, then the end. */
static void refuse(struct conn *c, const char *status, const char *reason)
{
    char resp[160];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
    ssize_t w = write(c->ep[SIDE_CLIENT].fd, resp, (size_t)n);
    (void)w; /* best effort: nginx answers the browser with its own page if this is lost */
    c->reason = reason;
    conn_free(c);
}

static void update(struct conn *c)
{
    struct endpoint *ce = &c->ep[SIDE_CLIENT], *ue = &c->ep[SIDE_UPSTREAM];
    uint32_t cev = 0, uev = 0;
    if (c->state == S_HEAD || c->draining) {
        cev = EPOLLIN;
    } else if (c->state == S_CONNECTING) {
        uev = EPOLLOUT;
    } else {
        if (!c->c_eof && !c->closing && c->c2u_len == 0) cev |= EPOLLIN;
        if (c->u2c_len > c->u2c_off) cev |= EPOLLOUT;
        if (!c->u_eof && !c->closing && c->u2c_len == 0) uev |= EPOLLIN;
        if (c->c2u_len > c->c2u_off) uev |= EPOLLOUT;
    }
    watch(ce, cev);
    watch(ue, uev);
}

static void start_draining(struct conn *c);

/* After a refused client frame: no more to QEMU; a close frame to the browser if it fits. */
static void refuse_frame(struct conn *c)
{
    int code = c->cr.close_code;
    c->reason = code == WS_CLOSE_TOO_BIG ? "frame_too_big" : "protocol_error";
    logj("warn",
         "\"msg\":\"console frame refused\",\"target\":\"%s\",\"code\":%d,\"frame_bytes\":%llu,"
         "\"limit\":%llu",
         c->target, code, (unsigned long long)c->cr.largest, (unsigned long long)conf->max_frame);
    if (c->ep[SIDE_UPSTREAM].fd >= 0) {
        close(c->ep[SIDE_UPSTREAM].fd);
        c->ep[SIDE_UPSTREAM].fd = -1;
    }
    c->c2u_off = c->c2u_len = 0;
    c->closing = true;
    c->c_eof = true;
    if (c->u_head_done && !c->u_passthrough && ws_reader_at_boundary(&c->ur))
        c->u2c_len += ws_close_frame(c->u2c + c->u2c_len, code);
    else if (c->u2c_len == c->u2c_off)
        start_draining(c); /* mid-frame from QEMU: no room for ours, just the end */
    update(c);
}

/* The upstream's answer head, then its frames (read only to know where they end). */
static void scan_upstream(struct conn *c, const unsigned char *b, size_t n)
{
    size_t i = 0;
    while (!c->u_head_done && i < n) {
        if (c->u_head_len < sizeof(c->first_line) - 1) c->first_line[c->u_head_len] = (char)b[i];
        c->u_head_len++;
        static const char end[] = "\r\n\r\n";
        c->head_match = b[i] == (unsigned char)end[c->head_match] ? c->head_match + 1
                        : b[i] == '\r'                           ? 1
                                                                 : 0;
        i++;
        if (c->head_match == 4) {
            c->u_head_done = true;
            /* anything but a switch to websocket is passed on as it is */
            c->u_passthrough = strncmp(c->first_line, "HTTP/1.1 101", 12) != 0;
        }
    }
    if (c->u_head_done && !c->u_passthrough && i < n) ws_reader_feed(&c->ur, b + i, n - i);
}

static void start_connect(struct conn *c)
{
    struct sockaddr_storage ss;
    unsigned len;
    if (wsrelay_parse_target(c->target, &ss, &len) < 0) {
        refuse(c, "502 Bad Gateway", "bad_target");
        return;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        refuse(c, "503 Service Unavailable", "no_socket");
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->ep[SIDE_UPSTREAM].fd = fd;
    if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
        refuse(c, "502 Bad Gateway", "connect_failed");
        return;
    }
    if (add_fd(&c->ep[SIDE_UPSTREAM], EPOLLOUT) < 0) {
        refuse(c, "503 Service Unavailable", "epoll");
        return;
    }
    c->state = S_CONNECTING;
    c->deadline_ms = now_ms() + conf->connect_timeout_ms;
    update(c);
}

static void read_head(struct conn *c)
{
    int fd = c->ep[SIDE_CLIENT].fd;
    ssize_t n = read(fd, c->c2u + c->c2u_len, HEAD_MAX - c->c2u_len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        c->reason = "client_gone";
        conn_free(c);
        return;
    }
    size_t old = c->c2u_len;
    c->c2u_len += (size_t)n;
    size_t from = old >= 3 ? old - 3 : 0;
    unsigned char *end = memmem(c->c2u + from, c->c2u_len - from, "\r\n\r\n", 4);
    if (!end) {
        if (c->c2u_len >= HEAD_MAX) refuse(c, "431 Request Header Fields Too Large", "head_too_large");
        return;
    }
    size_t head_len = (size_t)(end - c->c2u) + 4, extra = c->c2u_len - head_len;
    long nl = wsrelay_take_target((char *)c->c2u, head_len, c->target, sizeof(c->target));
    if (nl < 0) {
        refuse(c, "400 Bad Request", "no_target");
        return;
    }
    memmove(c->c2u + nl, c->c2u + head_len, extra);
    /* a client that sends frames before the answer: they are read like any other */
    size_t ok = ws_reader_feed(&c->cr, c->c2u + nl, extra);
    c->c2u_len = (size_t)nl + ok;
    c->c2u_off = 0;
    if (c->cr.close_code) {
        refuse(c, "400 Bad Request", "protocol_error");
        return;
    }
    start_connect(c);
}

static void finish_connect(struct conn *c)
{
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(c->ep[SIDE_UPSTREAM].fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        logj("warn", "\"msg\":\"console target unreachable\",\"target\":\"%s\",\"errno\":%d",
             c->target, err);
        refuse(c, "502 Bad Gateway", "connect_failed");
        return;
    }
    c->state = S_RELAY;
    update(c);
}

/* Both directions ended and were flushed: done. */
static bool finished(struct conn *c)
{
    return c->c_eof && c->u_eof && c->c2u_len == c->c2u_off && c->u2c_len == c->u2c_off;
}

/*
 * QEMU's side ended (or failed): close it at once, so that a hung-up socket cannot wake the
 * loop again, drop what was still on its way there, and end the browser's side once what
 * came from QEMU is delivered.
 */
static void close_upstream(struct conn *c)
{
    struct endpoint *ue = &c->ep[SIDE_UPSTREAM];
    if (ue->fd >= 0) {
        close(ue->fd);
        ue->fd = -1;
        ue->events = 0;
    }
    c->u_eof = true;
    c->c2u_off = c->c2u_len = 0;
    if (!c->reason) c->reason = "desktop_closed";
    if (c->u2c_len == c->u2c_off && !c->c_shut) {
        shutdown(c->ep[SIDE_CLIENT].fd, SHUT_WR);
        c->c_shut = true;
    }
}

/*
 * The close frame is out: shut our sending side and read what the client still had in
 * flight (the rest of a refused frame) before closing. Closing a socket with unread input
 * resets the connection, and the reset can overtake the close frame.
 */
static void start_draining(struct conn *c)
{
    shutdown(c->ep[SIDE_CLIENT].fd, SHUT_WR);
    c->c_shut = true;
    c->draining = true;
    c->deadline_ms = now_ms() + 2000;
    update(c);
}

static void drain(struct conn *c)
{
    static unsigned char sink[BUFSZ];
    for (;;) {
        ssize_t n = read(c->ep[SIDE_CLIENT].fd, sink, sizeof(sink));
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        conn_free(c); /* the client's end, or an error */
        return;
    }
}

/* Writes what waits in buf[*off, *len) to fd, adding what went out to *count: -1 on a write
   error, 1 when all of it is out (*off and *len back to 0), 0 while some is left. */
static int flush_pending(int fd, const unsigned char *buf, size_t *off, size_t *len,
                         unsigned long long *count)
{
    ssize_t n = write(fd, buf + *off, *len - *off);
    if (n < 0 && errno != EAGAIN && errno != EINTR) return -1;
    if (n > 0) {
        *off += (size_t)n;
        *count += (unsigned long long)n;
    }
    if (*off < *len) return 0;
    *off = *len = 0;
    return 1;
}

static void on_client(struct conn *c, uint32_t ev)
{
    int fd = c->ep[SIDE_CLIENT].fd;
    if (c->state == S_HEAD) {
        read_head(c);
        return;
    }
    if (c->draining) {
        drain(c);
        return;
    }
    if (ev & (EPOLLERR | EPOLLHUP)) { /* nginx closed both directions: nothing can reach it */
        c->reason = c->reason ? c->reason : "browser_closed";
        conn_free(c);
        return;
    }
    if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && c->u2c_len > c->u2c_off) {
        int f = flush_pending(fd, c->u2c, &c->u2c_off, &c->u2c_len, &c->down_bytes);
        if (f < 0) {
            c->reason = c->reason ? c->reason : "browser_gone";
            conn_free(c);
            return;
        }
        if (f > 0) {
            if (c->closing) {
                start_draining(c);
                return;
            }
            if (c->u_eof && !c->c_shut) {
                shutdown(fd, SHUT_WR);
                c->c_shut = true;
            }
        }
    }
    if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->c_eof && !c->closing && c->c2u_len == 0) {
        ssize_t n = read(fd, c->c2u, BUFSZ);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            c->reason = "browser_gone";
            conn_free(c);
            return;
        }
        if (n == 0) {
            c->c_eof = true;
            if (!c->reason) c->reason = "browser_closed";
            if (!c->u_shut && c->ep[SIDE_UPSTREAM].fd >= 0) {
                shutdown(c->ep[SIDE_UPSTREAM].fd, SHUT_WR);
                c->u_shut = true;
            }
        } else if (n > 0) {
            size_t ok = ws_reader_feed(&c->cr, c->c2u, (size_t)n);
            c->c2u_off = 0;
            c->c2u_len = c->ep[SIDE_UPSTREAM].fd >= 0 ? ok : 0; /* QEMU's side is gone: dropped */
            if (c->cr.close_code) {
                refuse_frame(c);
                return;
            }
        }
    }
    if (finished(c)) {
        conn_free(c);
        return;
    }
    update(c);
}

static void on_upstream(struct conn *c, uint32_t ev)
{
    int fd = c->ep[SIDE_UPSTREAM].fd;
    if (c->state == S_CONNECTING) {
        finish_connect(c);
        return;
    }
    if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && c->c2u_len > c->c2u_off) {
        int f = flush_pending(fd, c->c2u, &c->c2u_off, &c->c2u_len, &c->up_bytes);
        if (f < 0) {
            c->reason = "desktop_gone";
            conn_free(c);
            return;
        }
        if (f > 0) {
            if (c->c_eof && !c->u_shut) {
                shutdown(fd, SHUT_WR);
                c->u_shut = true;
            }
        }
    }
    if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->u_eof && c->u2c_len == 0) {
        ssize_t n = read(fd, c->u2c, BUFSZ);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            c->reason = "desktop_gone";
            close_upstream(c);
        } else if (n == 0) {
            close_upstream(c);
        } else if (n > 0) {
            scan_upstream(c, c->u2c, (size_t)n);
            c->u2c_off = 0;
            c->u2c_len = (size_t)n;
        }
    } else if ((ev & (EPOLLHUP | EPOLLERR)) && !c->u_eof) {
        /* hung up while the browser still has to take what we hold: it is not read again */
        close_upstream(c);
    }
    if (finished(c)) {
        conn_free(c);
        return;
    }
    update(c);
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) logj("error", "\"msg\":\"accept failed\",\"errno\":%d", errno);
            return;
        }
        struct conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->ep[SIDE_CLIENT] = (struct endpoint){c, SIDE_CLIENT, fd, 0};
        c->ep[SIDE_UPSTREAM] = (struct endpoint){c, SIDE_UPSTREAM, -1, 0};
        c->opened_ms = now_ms();
        c->deadline_ms = c->opened_ms + conf->head_timeout_ms;
        ws_reader_init(&c->cr, true, conf->max_frame);
        ws_reader_init(&c->ur, false, UINT64_MAX);
        c->next = conns;
        if (conns) conns->prev = c;
        conns = c;
        nconns++;
        if (add_fd(&c->ep[SIDE_CLIENT], EPOLLIN) < 0) {
            c->reason = "epoll";
            conn_free(c);
            continue;
        }
        if (nconns > conf->max_consoles) refuse(c, "503 Service Unavailable", "too_many_consoles");
    }
}

static void sweep(long long now)
{
    for (struct conn *c = conns, *next; c; c = next) {
        next = c->next;
        if (c->draining && now > c->deadline_ms) {
            conn_free(c);
            continue;
        }
        if ((c->state == S_HEAD || c->state == S_CONNECTING) && now > c->deadline_ms)
            refuse(c, c->state == S_HEAD ? "408 Request Timeout" : "504 Gateway Timeout",
                   c->state == S_HEAD ? "head_timeout" : "connect_timeout");
    }
}

int wsrelay_run(const wsrelay_config *cfg)
{
    conf = cfg;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(cfg->socket_path) >= sizeof(sa.sun_path)) {
        logj("error", "\"msg\":\"socket path too long\"");
        return 1;
    }
    strcpy(sa.sun_path, cfg->socket_path);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    unlink(cfg->socket_path); /* a stale socket from a crash would make bind fail */
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1024) < 0) {
        logj("error", "\"msg\":\"cannot listen\",\"errno\":%d", errno);
        return 1;
    }
    if (chmod(cfg->socket_path, (mode_t)cfg->socket_mode) < 0)
        logj("warn", "\"msg\":\"chmod of the socket failed\",\"errno\":%d", errno);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    static struct endpoint listener = {NULL, -1, -1, 0};
    listener.fd = lfd;
    if (epfd < 0 || add_fd(&listener, EPOLLIN) < 0) {
        logj("error", "\"msg\":\"epoll failed\",\"errno\":%d", errno);
        return 1;
    }
    struct sigaction act = {0};
    act.sa_handler = on_stop;
    sigemptyset(&act.sa_mask);
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    act.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &act, NULL);
    if (cfg->pidfile && *cfg->pidfile) {
        FILE *f = fopen(cfg->pidfile, "w");
        if (f) {
            fprintf(f, "%ld\n", (long)getpid());
            fclose(f);
        }
    }
    logj("info",
         "\"msg\":\"bic-consoled listening\",\"socket\":\"%s\",\"max_frame\":%llu,"
         "\"max_consoles\":%d",
         cfg->socket_path, (unsigned long long)cfg->max_frame, cfg->max_consoles);
    long long last_sweep = now_ms();
    struct epoll_event evs[128];
    while (!stopping) {
        int n = epoll_wait(epfd, evs, 128, 500);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < n; i++) {
            struct endpoint *e = evs[i].data.ptr;
            if (e == &listener) {
                accept_all(lfd);
                continue;
            }
            if (e->c->dead) continue; /* closed earlier in this batch */
            if (e->side == SIDE_CLIENT) on_client(e->c, evs[i].events);
            else on_upstream(e->c, evs[i].events);
        }
        long long now = now_ms();
        if (now - last_sweep >= 500) {
            sweep(now);
            last_sweep = now;
        }
        bury();
    }
    while (conns) {
        conns->reason = "shutdown";
        conn_free(conns);
    }
    bury();
    close(lfd);
    close(epfd);
    unlink(cfg->socket_path);
    if (cfg->pidfile && *cfg->pidfile) unlink(cfg->pidfile);
    logj("info", "\"msg\":\"bic-consoled stopped\"");
    return 0;
}
