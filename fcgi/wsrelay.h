/*
 * wsrelay.h - the console relay between nginx and a desktop's QEMU VNC websocket.
 *
 * nginx checks the console ticket (auth_request to bicd) and proxies the upgraded request to
 * bic-consoled on a unix socket, with the desktop's address in X-BIC-Console-Target. The relay
 * connects there, passes the handshake through and then copies bytes both ways, reading the
 * websocket frame headers as they pass (RFC 6455, section 5.2). A client frame that is larger
 * than the limit, unmasked, or otherwise malformed ends the console: the relay sends the
 * browser a close frame (1009 "message too big" or 1002 "protocol error") and closes both
 * sides, before any byte of that frame reaches QEMU.
 */
#ifndef BIC_WSRELAY_H
#define BIC_WSRELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_TOO_BIG  1009

/* One direction's frame reader: only headers are looked at; payload bytes are counted. */
typedef struct ws_reader {
    bool strict;          /* client -> server: frames must be masked and within max_payload */
    uint64_t max_payload; /* strict only */
    unsigned char hdr[14];
    size_t hlen;          /* header bytes collected so far */
    uint64_t remain;      /* payload bytes left in the current frame */
    int close_code;       /* 0, or why the stream must end (sticky) */
    uint64_t frames;      /* complete headers seen */
    uint64_t largest;     /* largest payload length seen in a header */
} ws_reader;

void ws_reader_init(ws_reader *r, bool strict, uint64_t max_payload);

/*
 * Reads n bytes of the stream. Returns how many of them may be passed on: n, or, when a frame
 * header breaks the rules, the offset at which that frame's header began in buf (its earlier
 * bytes may have been passed on with an earlier call), with r->close_code set. Once
 * close_code is set every call returns 0.
 */
size_t ws_reader_feed(ws_reader *r, const unsigned char *buf, size_t n);

/* True between frames: a frame of our own may be inserted here. */
bool ws_reader_at_boundary(const ws_reader *r);

/* Writes a server-to-client close frame with code into out (4 bytes); returns 4. */
size_t ws_close_frame(unsigned char out[4], int code);

/*
 * Finds the X-BIC-Console-Target header in an HTTP request head of len bytes (ending with the
 * empty line), copies its value into target and removes the line from head. Returns the new
 * length, or -1 when the header is missing, repeated or too long.
 */
long wsrelay_take_target(char *head, size_t len, char *target, size_t target_len);

/* Parses "a.b.c.d:port" or "[v6]:port" (numeric only) into an address; 0 or -1. */
struct sockaddr_storage;
int wsrelay_parse_target(const char *target, struct sockaddr_storage *ss, unsigned *ss_len);

typedef struct wsrelay_config {
    const char *socket_path; /* unix socket nginx connects to */
    unsigned socket_mode;
    uint64_t max_frame;      /* largest client frame payload (bytes) */
    int max_consoles;        /* open consoles at once; one more gets 503 */
    int connect_timeout_ms;  /* to the desktop's websocket */
    int head_timeout_ms;     /* for the request head from nginx */
    const char *pidfile;
} wsrelay_config;

/* Serves until SIGTERM/SIGINT; returns 0, or 1 when it cannot start. */
int wsrelay_run(const wsrelay_config *cfg);

#endif
