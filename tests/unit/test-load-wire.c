/* kestrel-load's wire helpers (src/tools/load-wire*.c): the checked number parser every reply
 * number goes through, and memcache and redis replies parsed from an evbuffer that fills up a
 * few bytes at a time. */
#include "config.h"

#include <string.h>

#include "load-wire.h"

static void test_parse_int(void)
{
  const struct { const gchar *s; gint64 min, max; gboolean ok; gint64 v; } cases[] = {
    { "0", 0, G_MAXINT32, TRUE, 0 },
    { "100", 0, G_MAXINT32, TRUE, 100 },
    { "2147483647", 0, G_MAXINT32, TRUE, G_MAXINT32 },
    { "2147483648", 0, G_MAXINT32, FALSE, 0 },
    { "007", 0, 10, TRUE, 7 },
    { "11", 0, 10, FALSE, 0 },
    { "5", 0, 0, FALSE, 0 },
    { "-1", -1, G_MAXINT32, TRUE, -1 },
    { "-2", -1, G_MAXINT32, FALSE, 0 },
    { "-1", 0, G_MAXINT32, FALSE, 0 },
    { "-0", 0, 10, FALSE, 0 },          /* no sign where negatives are not allowed */
    { "-0", -1, 10, TRUE, 0 },
    { "9223372036854775807", 0, G_MAXINT64, TRUE, G_MAXINT64 },
    { "9223372036854775808", 0, G_MAXINT64, FALSE, 0 },
    { "-9223372036854775808", G_MININT64, 0, TRUE, G_MININT64 },
    { "-9223372036854775809", G_MININT64, 0, FALSE, 0 },
    { "18446744073709551617", -1, G_MAXINT64, FALSE, 0 },
    { "-18446744073709551617", -1, G_MAXINT64, FALSE, 0 },
    { "", 0, 10, FALSE, 0 },
    { "-", -1, 10, FALSE, 0 },
    { "1x", 0, 10, FALSE, 0 },
    { " 1", 0, 10, FALSE, 0 },
    { "1 ", 0, 10, FALSE, 0 },
    { "+1", 0, 10, FALSE, 0 },
    { "0x1", 0, 100, FALSE, 0 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    gint64 v = 12345;
    gboolean ok = load_wire_parse_int(cases[i].s, cases[i].min, cases[i].max, &v);
    if (ok != cases[i].ok)
      g_error("'%s' in %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT ": %s", cases[i].s, cases[i].min,
              cases[i].max, ok ? "accepted" : "refused");
    g_assert_cmpint(v, ==, ok ? cases[i].v : 12345); /* untouched when refused */
  }
}

/* Feeds `reply` into the input `step` bytes at a time and parses it as the reply to a get;
 * returns the items' data joined by '|', or "error: ..." With `pieces`, every feed is a block
 * of its own in the evbuffer, so lines cross blocks; otherwise feeds join the last block. */
static gchar *parse_get_fed(const LoadWire *wire, const gchar *reply, gsize step, gboolean pieces)
{
  g_autoptr(GString) got = g_string_new(NULL);
  struct evbuffer *in = evbuffer_new();
  LoadWireParser p = { 0 };
  gsize len = strlen(reply), fed = 0;
  for (;;) {
    LoadWireEvent ev = { 0 };
    LoadWireStatus st = wire->parse(&p, in, LOAD_REQ_GET, &ev);
    if (st == LOAD_WIRE_ITEM) {
      g_string_append_printf(got, "%s%.*s", got->len ? "|" : "", (int)ev.len, ev.data);
    } else if (st == LOAD_WIRE_DONE) {
      g_assert_cmpuint(ev.count, ==, got->len ? 1 : 0);
      g_assert_cmpuint(evbuffer_get_length(in), ==, 0);
      g_assert_cmpuint(fed, ==, len);
      break;
    } else if (st == LOAD_WIRE_ERROR) {
      g_string_printf(got, "error: %s", ev.message);
      break;
    } else {
      g_assert_cmpuint(fed, <, len); /* MORE with everything fed: stuck */
      gsize n = MIN(step, len - fed);
      if (pieces)
        evbuffer_add_reference(in, reply + fed, n, NULL, NULL);
      else
        evbuffer_add(in, reply + fed, n);
      fed += n;
    }
  }
  evbuffer_free(in);
  return g_string_free(g_steal_pointer(&got), FALSE);
}

static gchar *parse_get(const LoadWire *wire, const gchar *reply, gsize step)
{
  return parse_get_fed(wire, reply, step, FALSE);
}

/* What a wire function wrote, as a string. */
static gchar *take_output(struct evbuffer *out)
{
  gsize len = evbuffer_get_length(out);
  gchar *s = g_malloc(len + 1);
  evbuffer_remove(out, s, len);
  s[len] = '\0';
  return s;
}

static void test_memcache_get(void)
{
  for (gsize step = 1; step <= 30; step += 7) {
    g_autofree gchar *hit = parse_get(&load_wire_memcache, "VALUE q 0 5\r\nhello\r\nEND\r\n", step);
    g_assert_cmpstr(hit, ==, "hello");
    g_autofree gchar *empty = parse_get(&load_wire_memcache, "END\r\n", step);
    g_assert_cmpstr(empty, ==, "");
  }
  g_autofree gchar *bad_len = parse_get(&load_wire_memcache, "VALUE q 0 -5\r\n", 64);
  g_assert_cmpstr(bad_len, ==, "error: VALUE q 0 -5");
  g_autofree gchar *huge = parse_get(&load_wire_memcache, "VALUE q 0 2147483648\r\n", 64);
  g_assert_cmpstr(huge, ==, "error: VALUE q 0 2147483648");
  g_autofree gchar *no_crlf = parse_get(&load_wire_memcache, "VALUE q 0 2\r\nabcd\r\n", 64);
  g_assert_cmpstr(no_crlf, ==, "error: data block not followed by CRLF");
}

/* Lines that cross the evbuffer's blocks (read in pieces) parse as lines in one block do. */
static void test_memcache_lines_across_blocks(void)
{
  const gchar *reply = "VALUE q 0 5\r\nhello\r\nEND\r\n";
  for (gsize step = 1; step <= 13; step++) {
    g_autofree gchar *hit = parse_get_fed(&load_wire_memcache, reply, step, TRUE);
    g_assert_cmpstr(hit, ==, "hello");
  }
  g_autofree gchar *bare_lf = parse_get_fed(&load_wire_memcache, "END\n", 2, TRUE);
  g_assert_cmpstr(bare_lf, ==, "");
  g_autofree gchar *bare_lf_one_block = parse_get(&load_wire_memcache, "END\n", 64);
  g_assert_cmpstr(bare_lf_one_block, ==, "");
}

/* Requests are built byte for byte as the protocol spells them. */
static void test_memcache_requests(void)
{
  struct evbuffer *out = evbuffer_new();
  const guint8 items[] = "abcdefgh";

  load_wire_memcache.put(out, "q1", items, 4, 2);
  g_autofree gchar *puts = take_output(out);
  g_assert_cmpstr(puts, ==, "set q1 0 0 4\r\nabcd\r\nset q1 0 0 4\r\nefgh\r\n");

  load_wire_memcache.put(out, "q", items, 0, 1);
  g_autofree gchar *empty = take_output(out);
  g_assert_cmpstr(empty, ==, "set q 0 0 0\r\n\r\n");

  g_autofree guint8 *big = g_malloc0(1234567);
  load_wire_memcache.put(out, "big", big, 1234567, 1);
  g_assert_cmpuint(evbuffer_get_length(out), ==, strlen("set big 0 0 1234567\r\n") + 1234567 + 2);
  g_autofree gchar *big_line = evbuffer_readln(out, NULL, EVBUFFER_EOL_CRLF_STRICT);
  g_assert_cmpstr(big_line, ==, "set big 0 0 1234567");
  evbuffer_drain(out, evbuffer_get_length(out));

  LoadGetSpec plain = { .block_ms = -1 };
  load_wire_memcache.get(out, "q", &plain);
  LoadGetSpec all = { .block_ms = 250, .xact = LOAD_GET_CLOSE | LOAD_GET_OPEN };
  load_wire_memcache.get(out, "q", &all);
  load_wire_memcache.flush(out, "q");
  g_autofree gchar *gets = take_output(out);
  g_assert_cmpstr(gets, ==, "get q\r\nget q/t=250/close/open\r\nflush q\r\n");

  /* a name longer than the line buffer still goes out whole */
  g_autofree gchar *long_name = g_strnfill(700, 'n');
  load_wire_memcache.get(out, long_name, &plain);
  g_autofree gchar *long_get = take_output(out);
  g_autofree gchar *want = g_strdup_printf("get %s\r\n", long_name);
  g_assert_cmpstr(long_get, ==, want);
  evbuffer_free(out);
}

static void test_redis_get(void)
{
  for (gsize step = 1; step <= 30; step += 7) {
    g_autofree gchar *hit = parse_get(&load_wire_redis, "$5\r\nhello\r\n", step);
    g_assert_cmpstr(hit, ==, "hello");
    g_autofree gchar *empty = parse_get(&load_wire_redis, "$-1\r\n", step);
    g_assert_cmpstr(empty, ==, "");
  }
  g_autofree gchar *bad = parse_get(&load_wire_redis, "$-2\r\n", 64);
  g_assert_true(g_str_has_prefix(bad, "error: "));
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/load-wire/parse-int", test_parse_int);
  g_test_add_func("/load-wire/memcache/get", test_memcache_get);
  g_test_add_func("/load-wire/memcache/lines-across-blocks", test_memcache_lines_across_blocks);
  g_test_add_func("/load-wire/memcache/requests", test_memcache_requests);
  g_test_add_func("/load-wire/redis/get", test_redis_get);
  return g_test_run();
}
