/*
 * test_wsrelay.c - fcgi/wsrelay.c: the console relay's websocket frame reader (RFC 6455 5.2),
 * the target header nginx adds, and target addresses.
 */
#include "bic_test.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include "wsrelay.h"


/* A client frame header (masked unless told otherwise) for a payload of len bytes. */
static size_t header(unsigned char *out, unsigned opcode, bool fin, bool mask, uint64_t len)
{
    size_t n = 0;
    out[n++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    unsigned char m = mask ? 0x80 : 0;
    if (len < 126) {
        out[n++] = (unsigned char)(m | len);
    } else if (len <= 0xffff) {
        out[n++] = m | 126;
        out[n++] = (unsigned char)(len >> 8);
        out[n++] = (unsigned char)len;
    } else {
        out[n++] = m | 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (unsigned char)(len >> (8 * i));
    }
    if (mask) {
        memcpy(out + n, "\x11\x22\x33\x44", 4);
        n += 4;
    }
    return n;
}

static void small_frames_pass_whole(void **state)
{
    (void)state;
    ws_reader r;
    ws_reader_init(&r, true, 1024);
    unsigned char buf[256];
    size_t n = header(buf, 2, true, true, 10);
    memset(buf + n, 'a', 10);
    n += 10;
    n += header(buf + n, 9, true, true, 0); /* a ping */
    assert_int_equal(ws_reader_feed(&r, buf, n), n);
    assert_int_equal(r.close_code, 0);
    assert_int_equal(r.frames, 2);
    assert_true(ws_reader_at_boundary(&r));
}

static void frames_split_byte_by_byte(void **state)
{
    (void)state;
    ws_reader r;
    ws_reader_init(&r, true, 70000);
    unsigned char buf[70100];
    size_t n = header(buf, 2, true, true, 300);
    memset(buf + n, 'b', 300);
    n += 300;
    size_t h2 = header(buf + n, 0, true, true, 70000); /* a continuation of 16-bit length... */
    buf[n] = 0x82;                                     /* ...made a binary frame of 64-bit length */
    n += h2;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ws_reader_feed(&r, buf + i, 1), 1);
        if (i == 303 + 3) assert_false(ws_reader_at_boundary(&r)); /* inside the second header */
    }
    assert_int_equal(r.frames, 2);
    assert_int_equal(r.remain, 70000);
    assert_int_equal(r.largest, 70000);
}

static void a_frame_above_the_limit_is_refused_before_its_header(void **state)
{
    (void)state;
    ws_reader r;
    ws_reader_init(&r, true, 1000);
    unsigned char buf[64];
    size_t n = header(buf, 2, true, true, 1000); /* exactly the limit: fine */
    assert_int_equal(ws_reader_feed(&r, buf, n), n);
    unsigned char body[1000] = {0};
    assert_int_equal(ws_reader_feed(&r, body, sizeof(body)), sizeof(body));
    /* a good frame, then one byte too big, in one read: only the good one may pass */
    size_t a = header(buf, 2, true, true, 3);
    memcpy(buf + a, "xyz", 3);
    a += 3;
    size_t b = header(buf + a, 2, true, true, 1001);
    assert_int_equal(ws_reader_feed(&r, buf, a + b), a);
    assert_int_equal(r.close_code, WS_CLOSE_TOO_BIG);
    assert_int_equal(r.largest, 1001);
    assert_false(ws_reader_at_boundary(&r));
    /* sticky: nothing more passes */
    assert_int_equal(ws_reader_feed(&r, buf, a), 0);
}

static void a_huge_length_split_across_reads(void **state)
{
    (void)state;
    ws_reader r;
    ws_reader_init(&r, true, 256 * 1024);
    unsigned char buf[16];
    size_t n = header(buf, 2, true, true, 1ULL << 40);
    assert_int_equal(ws_reader_feed(&r, buf, 5), 5); /* the header is not complete yet */
    assert_int_equal(r.close_code, 0);
    assert_int_equal(ws_reader_feed(&r, buf + 5, n - 5), 0); /* it began in the earlier read */
    assert_int_equal(r.close_code, WS_CLOSE_TOO_BIG);
}

static void protocol_errors(void **state)
{
    (void)state;
    struct {
        const char *what;
        unsigned char b0, b1;
    } cases[] = {
        {"unmasked", 0x82, 0x05},
        {"reserved bit", 0xc2, 0x85},
        {"reserved data opcode", 0x83, 0x85},
        {"reserved control opcode", 0x8b, 0x80},
        {"fragmented ping", 0x09, 0x80},
        {"long close", 0x88, 0x80 | 126},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ws_reader r;
        ws_reader_init(&r, true, 1 << 20);
        unsigned char buf[8] = {cases[i].b0, cases[i].b1, 0, 0, 0, 0, 0, 0};
        unsigned char ok[8];
        size_t lead = header(ok, 1, true, true, 0); /* an empty text frame first */
        unsigned char all[16];
        memcpy(all, ok, lead);
        memcpy(all + lead, buf, sizeof(buf));
        size_t got = ws_reader_feed(&r, all, lead + sizeof(buf));
        if (got != lead || r.close_code != WS_CLOSE_PROTOCOL)
            test_fail("%s: passed %zu (want %zu), code %d", cases[i].what, got, lead, r.close_code);
    }
    /* a 64-bit length with the top bit set */
    ws_reader r;
    ws_reader_init(&r, true, UINT64_MAX);
    unsigned char top[14] = {0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    assert_int_equal(ws_reader_feed(&r, top, sizeof(top)), 0);
    assert_int_equal(r.close_code, WS_CLOSE_PROTOCOL);
}

static void the_servers_direction_is_only_followed(void **state)
{
    (void)state;
    ws_reader r;
    ws_reader_init(&r, false, UINT64_MAX);
    unsigned char buf[300000];
    size_t n = header(buf, 2, true, false, 200000); /* unmasked and big: fine from QEMU */
    memset(buf + n, 0, 200000);
    assert_int_equal(ws_reader_feed(&r, buf, n + 100000), n + 100000);
    assert_false(ws_reader_at_boundary(&r));
    assert_int_equal(ws_reader_feed(&r, buf + n + 100000, 100000), 100000);
    assert_true(ws_reader_at_boundary(&r));
    unsigned char close[4];
    assert_int_equal(ws_close_frame(close, WS_CLOSE_TOO_BIG), 4);
    assert_memory_equal(close, "\x88\x02\x03\xf1", 4);
}

static void the_target_header_is_taken_out(void **state)
{
    (void)state;
    char head[] = "GET / HTTP/1.1\r\nHost: x\r\nx-bic-console-target:  10.0.0.5:5701 \r\n"
                  "Upgrade: websocket\r\n\r\n";
    char target[80];
    long n = wsrelay_take_target(head, strlen(head), target, sizeof(target));
    assert_true(n > 0);
    assert_string_equal(target, "10.0.0.5:5701");
    head[n] = '\0';
    assert_string_equal(head, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n");

    char none[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(wsrelay_take_target(none, strlen(none), target, sizeof(target)), -1);
    char twice[] = "GET / HTTP/1.1\r\nX-BIC-Console-Target: 1.2.3.4:1\r\n"
                   "X-BIC-Console-Target: 5.6.7.8:2\r\n\r\n";
    assert_int_equal(wsrelay_take_target(twice, strlen(twice), target, sizeof(target)), -1);
    char empty[] = "GET / HTTP/1.1\r\nX-BIC-Console-Target:   \r\n\r\n";
    assert_int_equal(wsrelay_take_target(empty, strlen(empty), target, sizeof(target)), -1);
    /* the request line is not a header */
    char line[] = "X-BIC-Console-Target: 1.2.3.4:1\r\nHost: x\r\n\r\n";
    assert_int_equal(wsrelay_take_target(line, strlen(line), target, sizeof(target)), -1);
}

static void targets_are_numeric_addresses(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    unsigned len;
    assert_int_equal(wsrelay_parse_target("127.0.0.1:5701", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 5701);
    assert_int_equal(wsrelay_parse_target("[::1]:6000", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    const char *bad[] = {"localhost:5701", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
                         "127.0.0.1:12x", "[::1]6000", "::1:6000x", ":5701", "1.2.3.4:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (wsrelay_parse_target(bad[i], &ss, &len) != -1) test_fail("%s was accepted", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small_frames_pass_whole),
        cmocka_unit_test(frames_split_byte_by_byte),
        cmocka_unit_test(a_frame_above_the_limit_is_refused_before_its_header),
        cmocka_unit_test(a_huge_length_split_across_reads),
        cmocka_unit_test(protocol_errors),
        cmocka_unit_test(the_servers_direction_is_only_followed),
        cmocka_unit_test(the_target_header_is_taken_out),
        cmocka_unit_test(targets_are_numeric_addresses),
    };
    return cmocka_run_group_tests_name("wsrelay", tests, NULL, NULL);
}
