/* Unit tests of the memcache request parser (SPEC 2). */
#include <string.h>

#include "memcache/memcache-parse.h"

#define MAX_DATA 1024

static KqParseResult
parse_len(const char *buf, gsize len, KqMcRequest *req, gsize *consumed)
{
  return kq_mc_parse(buf, len, MAX_DATA, req, consumed);
}

static KqParseResult
parse(const char *s, KqMcRequest *req, gsize *consumed)
{
  return parse_len(s, strlen(s), req, consumed);
}

/* Parses s[0..len), expects one whole OK request of the given command using all of it. */
static void
expect_ok_len(const char *s, gsize len, KqMcCommand command, KqMcRequest *req)
{
  gsize consumed = 12345;

  g_assert_cmpint(parse_len(s, len, req, &consumed), ==, KQ_PARSE_OK);
  g_assert_cmpint(req->command, ==, command);
  g_assert_cmpuint(consumed, ==, len);
  g_assert_null(req->error);
}

static void
expect_ok(const char *s, KqMcCommand command, KqMcRequest *req)
{
  expect_ok_len(s, strlen(s), command, req);
}

static void
expect_error(const char *s, gsize expect_consumed, gboolean close_after, const char *error)
{
  KqMcRequest req;
  gsize consumed = 12345;

  g_assert_cmpint(parse(s, &req, &consumed), ==, KQ_PARSE_CLIENT_ERROR);
  g_assert_cmpuint(consumed, ==, expect_consumed);
  g_assert_cmpint(req.close_after, ==, close_after);
  g_assert_nonnull(req.error);
  if (error != NULL)
    g_assert_cmpstr(req.error, ==, error);
}

static void
assert_queue(const KqMcRequest *req, const char *queue)
{
  g_assert_nonnull(req->queue);
  g_assert_cmpmem(req->queue, req->queue_len, queue, strlen(queue));
}

static void
assert_args(const KqMcRequest *req, const char *args)
{
  if (args == NULL) {
    g_assert_null(req->args);
    g_assert_cmpuint(req->args_len, ==, 0);
    return;
  }
  g_assert_nonnull(req->args);
  g_assert_cmpmem(req->args, req->args_len, args, strlen(args));
}

static void
test_decimal(void)
{
  guint64 v = 7;

  g_assert_true(kq_parse_decimal("0", 1, 10, &v));
  g_assert_cmpuint(v, ==, 0);
  g_assert_true(kq_parse_decimal("000042", 6, 42, &v));
  g_assert_cmpuint(v, ==, 42);
  g_assert_false(kq_parse_decimal("43", 2, 42, &v));
  g_assert_true(kq_parse_decimal("18446744073709551615", 20, G_MAXUINT64, &v));
  g_assert_cmpuint(v, ==, G_MAXUINT64);
  g_assert_false(kq_parse_decimal("18446744073709551616", 20, G_MAXUINT64, &v));
  g_assert_false(kq_parse_decimal("99999999999999999999999", 23, G_MAXUINT64, &v));
  g_assert_true(kq_parse_decimal("2147483647", 10, G_MAXINT32, &v));
  g_assert_false(kq_parse_decimal("2147483648", 10, G_MAXINT32, &v));
  g_assert_false(kq_parse_decimal("", 0, G_MAXUINT64, &v));
  g_assert_false(kq_parse_decimal("-1", 2, G_MAXUINT64, &v));
  g_assert_false(kq_parse_decimal("+1", 2, G_MAXUINT64, &v));
  g_assert_false(kq_parse_decimal(" 1", 2, G_MAXUINT64, &v));
  g_assert_false(kq_parse_decimal("1a", 2, G_MAXUINT64, &v));
  g_assert_false(kq_parse_decimal("1\0", 2, G_MAXUINT64, &v));
  /* Only the given length counts. */
  g_assert_true(kq_parse_decimal("12x", 2, G_MAXUINT64, &v));
  g_assert_cmpuint(v, ==, 12);
}

static void
test_set(void)
{
  KqMcRequest req;

  expect_ok("set work 7 0 5\r\nhello\r\n", KQ_MC_SET, &req);
  assert_queue(&req, "work");
  g_assert_cmpuint(req.flags, ==, 7);
  g_assert_cmpint(req.exptime, ==, 0);
  g_assert_cmpmem(req.data, req.data_len, "hello", 5);
  g_assert_false(req.close_after);

  /* Bare \n ends the line; the data still needs \r\n. Data may hold \r\n and NULs. */
  expect_ok_len("set q 0 1000000 4\n\r\n\0x\r\n", 24, KQ_MC_SET, &req);
  g_assert_cmpint(req.exptime, ==, 1000000);
  g_assert_cmpmem(req.data, req.data_len, "\r\n\0x", 4);

  expect_ok("set q 0 0 0\r\n\r\n", KQ_MC_SET, &req);
  g_assert_cmpuint(req.data_len, ==, 0);
  g_assert_nonnull(req.data);

  /* Extra words (memcache's noreply) are ignored, as Kestrel did. */
  expect_ok("set q 0 0 1 noreply\r\nx\r\n", KQ_MC_SET, &req);
  assert_queue(&req, "q");
}

static void
test_set_numbers(void)
{
  KqMcRequest req;

  expect_ok("set q 4294967295 0 1\r\nx\r\n", KQ_MC_SET, &req);
  g_assert_cmpuint(req.flags, ==, G_MAXUINT32);
  expect_ok("set q 0 4294967295 1\r\nx\r\n", KQ_MC_SET, &req);
  g_assert_cmpint(req.exptime, ==, G_MAXUINT32);
  /* Kestrel accepted a negative exptime: the item is already expired. */
  expect_ok("set q 0 -1 1\r\nx\r\n", KQ_MC_SET, &req);
  g_assert_cmpint(req.exptime, ==, -1);
  expect_ok("set q 0 -2147483648 1\r\nx\r\n", KQ_MC_SET, &req);
  g_assert_cmpint(req.exptime, ==, G_MININT32);

  /* A bad flags/exptime with a good <bytes>: the block is dropped and the connection kept. */
  static const char *const bad[] = {
    "set q 4294967296 0 1\r\nx\r\n",
    "set q -1 0 1\r\nx\r\n",
    "set q x 0 1\r\nx\r\n",
    "set q 0 4294967296 1\r\nx\r\n",
    "set q 0 -2147483649 1\r\nx\r\n",
    "set q 0 - 1\r\nx\r\n",
    "set q 0 --1 1\r\nx\r\n",
    "set q 0 1e3 1\r\nx\r\n",
    "set q 0 99999999999999999999999 1\r\nx\r\n",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++)
    expect_error(bad[i], strlen(bad[i]), FALSE, "bad command line format");
}

static void
test_set_bad_length(void)
{
  /* <bytes> unusable: only the line is dropped and the connection is closed. */
  expect_error("set q 0 0 -1\r\nx\r\n", 14, TRUE, "bad data length");
  expect_error("set q 0 0 x\r\n", 13, TRUE, "bad data length");
  expect_error("set q 0 0 99999999999999999999999\r\n", 35, TRUE, "bad data length");
  expect_error("set q 0 0 18446744073709551615\r\n", 32, TRUE, "object too large");
  /* Too large is reported at once, before any data arrives. */
  expect_error("set q 0 0 1025\r\n", 16, TRUE, "object too large");
  expect_error("set q 0 0\r\n", 11, TRUE, "bad command line format");
  expect_error("set q\r\n", 7, TRUE, "bad command line format");
  expect_error("set\r\n", 5, TRUE, "bad command line format");
}

static void
test_set_max_data(void)
{
  KqMcRequest req;
  gsize consumed;
  GString *s = g_string_new("set q 0 0 1024\r\n");

  for (int i = 0; i < MAX_DATA; i++)
    g_string_append_c(s, 'a' + i % 26);
  g_string_append(s, "\r\n");
  g_assert_cmpint(parse_len(s->str, s->len, &req, &consumed), ==, KQ_PARSE_OK);
  g_assert_cmpuint(consumed, ==, s->len);
  g_assert_cmpuint(req.data_len, ==, MAX_DATA);

  /* A max_data of 0 still takes empty items. */
  g_assert_cmpint(kq_mc_parse("set q 0 0 0\r\n\r\n", 15, 0, &req, &consumed), ==, KQ_PARSE_OK);
  g_assert_cmpint(kq_mc_parse("set q 0 0 1\r\n", 13, 0, &req, &consumed), ==,
                  KQ_PARSE_CLIENT_ERROR);
  /* A huge max_data must not overflow the length arithmetic. */
  g_assert_cmpint(kq_mc_parse("set q 0 0 18446744073709551615\r\nab", 34, G_MAXSIZE, &req,
                              &consumed), ==, KQ_PARSE_NEED_MORE);
  g_assert_cmpuint(consumed, ==, 0);
  g_assert_cmpuint(req.awaiting, ==, 0); /* too long to say */
  g_string_free(s, TRUE);
}

static void
test_set_bad_chunk(void)
{
  expect_error("set q 0 0 3\r\nabcd\r\n", 18, TRUE, "bad data chunk");
  expect_error("set q 0 0 3\r\nabc\n\n", 18, TRUE, "bad data chunk");
  expect_error("set q 0 0 3\r\nabc\r\r", 18, TRUE, "bad data chunk");
  expect_error("set q 0 0 0\r\nxx", 15, TRUE, "bad data chunk");
  /* Not decided until both bytes after the data are there. */
  KqMcRequest req;
  gsize consumed;
  g_assert_cmpint(parse("set q 0 0 3\r\nabcd", &req, &consumed), ==, KQ_PARSE_NEED_MORE);
  g_assert_cmpuint(consumed, ==, 0);
}

/* A set still arriving tells the whole request's length once its line is whole (so the
 * connection can make room for all of it at once); nothing else does. */
static void
test_set_awaiting(void)
{
  KqMcRequest req;
  gsize consumed;

  g_assert_cmpint(parse("set q 0 0 10\r\nabc", &req, &consumed), ==, KQ_PARSE_NEED_MORE);
  g_assert_cmpuint(req.awaiting, ==, strlen("set q 0 0 10\r\n") + 10 + 2);
  g_assert_cmpint(parse("set q 0 0 10\r\n0123456789\r", &req, &consumed), ==,
                  KQ_PARSE_NEED_MORE);
  g_assert_cmpuint(req.awaiting, ==, strlen("set q 0 0 10\r\n") + 10 + 2);
  g_assert_cmpint(parse("set  q 0 0 1000\r\n", &req, &consumed), ==, KQ_PARSE_NEED_MORE);
  g_assert_cmpuint(req.awaiting, ==, strlen("set  q 0 0 1000\r\n") + 1000 + 2);
  /* the line is not whole yet, or no set */
  g_assert_cmpint(parse("set q 0 0 10", &req, &consumed), ==, KQ_PARSE_NEED_MORE);
  g_assert_cmpuint(req.awaiting, ==, 0);
  g_assert_cmpint(parse("get q", &req, &consumed), ==, KQ_PARSE_NEED_MORE);
  g_assert_cmpuint(req.awaiting, ==, 0);
  g_assert_cmpint(parse("set q 0 0 3\r\nabc\r\n", &req, &consumed), ==, KQ_PARSE_OK);
  g_assert_cmpuint(req.awaiting, ==, 0);
}

static void
test_get(void)
{
  KqMcRequest req;

  expect_ok("get work\r\n", KQ_MC_GET, &req);
  assert_queue(&req, "work");
  g_assert_cmpint(req.timeout_ms, ==, -1);
  g_assert_false(req.open || req.close || req.abort || req.peek);

  expect_ok("gets work\r\n", KQ_MC_GET, &req);
  assert_queue(&req, "work");

  expect_ok("get work/t=0\r\n", KQ_MC_GET, &req);
  g_assert_cmpint(req.timeout_ms, ==, 0);
  expect_ok("get work/t=2147483647\r\n", KQ_MC_GET, &req);
  g_assert_cmpint(req.timeout_ms, ==, G_MAXINT32);
  /* A deadline already passed (Kestrel's toInt took the sign): no waiting. */
  expect_ok("get work/t=-5/open\r\n", KQ_MC_GET, &req);
  g_assert_cmpint(req.timeout_ms, ==, 0);
  g_assert_true(req.open);

  /* The last t= wins; empty options and unknown ones are ignored, as in Kestrel. */
  expect_ok("get q/t=5/t=9//\r\n", KQ_MC_GET, &req);
  g_assert_cmpint(req.timeout_ms, ==, 9);
  assert_queue(&req, "q");
  expect_ok("get q/\r\n", KQ_MC_GET, &req);
  assert_queue(&req, "q");
  expect_ok("get q/fanout/OPEN/x=1\r\n", KQ_MC_GET, &req);
  g_assert_false(req.open);

  /* A second key is ignored (Kestrel read only the first). */
  expect_ok("get a b\r\n", KQ_MC_GET, &req);
  assert_queue(&req, "a");

  /* The queue name is not validated here: the engine owns naming rules. */
  expect_ok("get q.x~y\r\n", KQ_MC_GET, &req);
  assert_queue(&req, "q.x~y");
}

/* Builds "get q/<opts in the order given by perm>" and checks the flags. */
static void
check_option_order(const char *const *opts, guint nopts)
{
  guint perm[4] = { 0, 1, 2, 3 };
  guint count = 0;

  /* All permutations via Heap's algorithm, iterative form. */
  guint c[4] = { 0 };
  for (guint i = 0;;) {
    GString *s = g_string_new("get name");
    for (guint k = 0; k < nopts; k++)
      g_string_append_printf(s, "/%s", opts[perm[k]]);
    g_string_append(s, "\r\n");

    KqMcRequest req;
    gsize consumed;
    g_assert_cmpint(parse(s->str, &req, &consumed), ==, KQ_PARSE_OK);
    g_assert_cmpuint(consumed, ==, s->len);
    assert_queue(&req, "name");
    for (guint k = 0; k < nopts; k++) {
      const char *o = opts[k];
      if (g_str_has_prefix(o, "t="))
        g_assert_cmpint(req.timeout_ms, ==, g_ascii_strtoll(o + 2, NULL, 10));
      else if (strcmp(o, "open") == 0)
        g_assert_true(req.open);
      else if (strcmp(o, "close") == 0)
        g_assert_true(req.close);
      else if (strcmp(o, "abort") == 0)
        g_assert_true(req.abort);
      else if (strcmp(o, "peek") == 0)
        g_assert_true(req.peek);
    }
    g_string_free(s, TRUE);
    count++;

    while (i < nopts && c[i] >= i) {
      c[i] = 0;
      i++;
    }
    if (i >= nopts)
      break;
    guint j = (i % 2) ? c[i] : 0;
    guint t = perm[j];
    perm[j] = perm[i];
    perm[i] = t;
    c[i]++;
    i = 0;
  }
  guint factorial = 1;
  for (guint k = 2; k <= nopts; k++)
    factorial *= k;
  g_assert_cmpuint(count, ==, factorial);
}

static void
test_get_option_orders(void)
{
  static const char *const open_close[] = { "t=250", "open", "close" };
  static const char *const peek[] = { "peek", "t=10" };
  static const char *const abort_[] = { "abort", "t=3" };
  static const char *const open_only[] = { "open" };

  check_option_order(open_close, 3);
  check_option_order(open_close + 1, 2);
  check_option_order(peek, 2);
  check_option_order(abort_, 2);
  check_option_order(open_only, 1);
}

static void
test_get_bad_options(void)
{
  static const char *const conflicting[] = {
    "get q/peek/open\r\n", "get q/open/peek\r\n", "get q/peek/close\r\n",
    "get q/close/peek\r\n", "get q/abort/open\r\n", "get q/open/abort\r\n",
    "get q/abort/close\r\n", "get q/close/abort\r\n", "get q/peek/abort\r\n",
    "get q/abort/peek\r\n", "get q/t=1/close/open/peek\r\n",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(conflicting); i++)
    expect_error(conflicting[i], strlen(conflicting[i]), TRUE, "conflicting get options");

  static const char *const empty_name[] = { "get /open\r\n", "get /\r\n", "get //t=1\r\n" };
  for (gsize i = 0; i < G_N_ELEMENTS(empty_name); i++)
    expect_error(empty_name[i], strlen(empty_name[i]), TRUE, "queue name required");

  static const char *const bad_timeout[] = {
    "get q/t=\r\n", "get q/t=-\r\n", "get q/t=--1\r\n", "get q/t=abc\r\n", "get q/t=2147483648\r\n",
    "get q/t=99999999999999999999999\r\n", "get q/t=1x/open\r\n", "get q/t= 1\r\n",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(bad_timeout); i++)
    expect_error(bad_timeout[i], strlen(bad_timeout[i]), TRUE, "bad timeout");

  expect_error("get\r\n", 5, FALSE, "queue name required");
  expect_error("gets   \r\n", 9, FALSE, "queue name required");
}

static void
test_monitor(void)
{
  KqMcRequest req;

  expect_ok("monitor q 10\r\n", KQ_MC_MONITOR, &req);
  assert_queue(&req, "q");
  g_assert_cmpint(req.seconds, ==, 10);
  g_assert_cmpint(req.count, ==, -1);
  expect_ok("monitor q 0 100\r\n", KQ_MC_MONITOR, &req);
  g_assert_cmpint(req.seconds, ==, 0);
  g_assert_cmpint(req.count, ==, 100);

  expect_error("monitor q\r\n", 11, FALSE, "queue name and seconds required");
  expect_error("monitor\r\n", 9, FALSE, "queue name and seconds required");
  /* Kestrel's toInt: negative seconds have passed already; negative max items: no limit. */
  expect_ok("monitor q -1 -5\r\n", KQ_MC_MONITOR, &req);
  g_assert_cmpint(req.seconds, ==, -1);
  g_assert_cmpint(req.count, ==, -1);
  expect_ok("monitor q -2147483648\r\n", KQ_MC_MONITOR, &req);
  g_assert_cmpint(req.seconds, ==, G_MININT32);
  expect_error("monitor q -2147483649\r\n", 23, FALSE, "bad seconds");
  expect_error("monitor q 2147483648\r\n", 22, FALSE, "bad seconds");
  expect_error("monitor q -\r\n", 13, FALSE, "bad seconds");
  expect_error("monitor q 1 x\r\n", 15, FALSE, "bad max items");
  expect_error("monitor q 1 --5\r\n", 17, FALSE, "bad max items");
}

static void
test_confirm(void)
{
  KqMcRequest req;

  expect_ok("confirm q 2\r\n", KQ_MC_CONFIRM, &req);
  assert_queue(&req, "q");
  g_assert_cmpint(req.count, ==, 2);
  expect_error("confirm q\r\n", 11, FALSE, "queue name and count required");
  expect_error("confirm q two\r\n", 15, FALSE, "bad count");
  expect_ok("confirm q -2\r\n", KQ_MC_CONFIRM, &req);
  g_assert_cmpint(req.count, ==, -2);
  expect_error("confirm q -\r\n", 13, FALSE, "bad count");
  expect_error("confirm q 99999999999\r\n", 23, FALSE, "bad count");
}

static void
test_queue_commands(void)
{
  KqMcRequest req;

  expect_ok("delete q\r\n", KQ_MC_DELETE, &req);
  assert_queue(&req, "q");
  expect_ok("flush q\r\n", KQ_MC_FLUSH, &req);
  assert_queue(&req, "q");
  expect_ok("flush_expired q\r\n", KQ_MC_FLUSH_EXPIRED, &req);
  assert_queue(&req, "q");

  expect_error("delete\r\n", 8, FALSE, "queue name required");
  expect_error("flush\r\n", 7, FALSE, "queue name required");
  expect_error("flush_expired \r\n", 16, FALSE, "queue name required");
}

static void
test_server_commands(void)
{
  static const struct {
    const char *line;
    KqMcCommand command;
  } cases[] = {
    { "flush_all\r\n", KQ_MC_FLUSH_ALL },
    { "flush_all_expired\r\n", KQ_MC_FLUSH_ALL_EXPIRED },
    { "stats\r\n", KQ_MC_STATS },
    { "dump_stats\r\n", KQ_MC_DUMP_STATS },
    { "dump_config\r\n", KQ_MC_DUMP_CONFIG },
    { "status\r\n", KQ_MC_STATUS },
    { "version\r\n", KQ_MC_VERSION },
    { "reload\r\n", KQ_MC_RELOAD },
    { "shutdown\r\n", KQ_MC_SHUTDOWN },
    { "quit\r\n", KQ_MC_QUIT },
    { "stats extra words\r\n", KQ_MC_STATS },
  };
  KqMcRequest req;

  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    expect_ok(cases[i].line, cases[i].command, &req);
    g_assert_null(req.queue);
    assert_args(&req, NULL);
  }
}

static void
test_args(void)
{
  KqMcRequest req;

  expect_ok("dump_stats a b  c\r\n", KQ_MC_DUMP_STATS, &req);
  assert_args(&req, "a b  c");
  expect_ok("dump_stats   one   \r\n", KQ_MC_DUMP_STATS, &req);
  assert_args(&req, "one");
  expect_ok("dump_stats a b c d e f g h\r\n", KQ_MC_DUMP_STATS, &req);
  assert_args(&req, "a b c d e f g h");
  expect_ok("status readonly\r\n", KQ_MC_STATUS, &req);
  assert_args(&req, "readonly");
  expect_ok("status UP ignored\r\n", KQ_MC_STATUS, &req);
  assert_args(&req, "UP");
}

static void
test_case_insensitive(void)
{
  KqMcRequest req;

  expect_ok("GET Q/open\r\n", KQ_MC_GET, &req);
  assert_queue(&req, "Q");
  g_assert_true(req.open);
  expect_ok("SeT q 0 0 1\r\nx\r\n", KQ_MC_SET, &req);
  expect_ok("FLUSH_ALL_EXPIRED\r\n", KQ_MC_FLUSH_ALL_EXPIRED, &req);
  expect_ok("Dump_Config\r\n", KQ_MC_DUMP_CONFIG, &req);
  expect_ok("GETS q\r\n", KQ_MC_GET, &req);
  expect_ok("QUIT\r\n", KQ_MC_QUIT, &req);
}

static void
test_spacing(void)
{
  KqMcRequest req;

  expect_ok("get q\n", KQ_MC_GET, &req);
  expect_ok("  get    q   \r\n", KQ_MC_GET, &req);
  assert_queue(&req, "q");
  expect_ok("set  q  1  2  3 \nabc\r\n", KQ_MC_SET, &req);
  assert_queue(&req, "q");
  g_assert_cmpuint(req.flags, ==, 1);
  g_assert_cmpint(req.exptime, ==, 2);
  /* Only one \r is a line ending; a tab is part of a word. */
  expect_error("get\tq\r\n", 7, TRUE, "unknown command");
}

static void
test_unknown(void)
{
  expect_error("add q 0 0 1\r\n", 13, TRUE, "unknown command");
  expect_error("getx q\r\n", 8, TRUE, "unknown command");
  expect_error("ge\r\n", 4, TRUE, "unknown command");
  expect_error("\r\n", 2, TRUE, "unknown command");
  expect_error("\n", 1, TRUE, "unknown command");
  expect_error("   \r\n", 5, TRUE, "unknown command");
  expect_error("flush_all_expiredx\r\n", 20, TRUE, "unknown command");

  KqMcRequest req;
  gsize consumed;
  g_assert_cmpint(parse_len("\0get q\r\n", 8, &req, &consumed), ==, KQ_PARSE_CLIENT_ERROR);
  g_assert_cmpuint(consumed, ==, 8);
  g_assert_true(req.close_after);
}

static void
test_long_line(void)
{
  KqMcRequest req;
  gsize consumed;
  char *buf = g_malloc(KQ_MC_MAX_LINE + 100);

  memset(buf, 'a', KQ_MC_MAX_LINE + 100);
  g_assert_cmpint(parse_len(buf, KQ_MC_MAX_LINE - 1, &req, &consumed), ==, KQ_PARSE_NEED_MORE);
  g_assert_cmpuint(consumed, ==, 0);
  g_assert_cmpint(parse_len(buf, KQ_MC_MAX_LINE, &req, &consumed), ==, KQ_PARSE_CLIENT_ERROR);
  g_assert_cmpuint(consumed, ==, KQ_MC_MAX_LINE);
  g_assert_true(req.close_after);
  g_assert_cmpstr(req.error, ==, "line too long");
  g_assert_cmpint(parse_len(buf, KQ_MC_MAX_LINE + 100, &req, &consumed), ==,
                  KQ_PARSE_CLIENT_ERROR);
  g_assert_cmpuint(consumed, ==, KQ_MC_MAX_LINE + 100);

  /* The longest accepted line: KQ_MC_MAX_LINE bytes with its \n. */
  memcpy(buf, "get ", 4);
  buf[KQ_MC_MAX_LINE - 1] = '\n';
  g_assert_cmpint(parse_len(buf, KQ_MC_MAX_LINE + 100, &req, &consumed), ==, KQ_PARSE_OK);
  g_assert_cmpuint(consumed, ==, KQ_MC_MAX_LINE);
  g_assert_cmpuint(req.queue_len, ==, KQ_MC_MAX_LINE - 5);
  /* One byte more is too long, even if the \n follows right after. */
  buf[KQ_MC_MAX_LINE - 1] = 'a';
  buf[KQ_MC_MAX_LINE] = '\n';
  g_assert_cmpint(parse_len(buf, KQ_MC_MAX_LINE + 1, &req, &consumed), ==,
                  KQ_PARSE_CLIENT_ERROR);
  g_free(buf);
}

static const char *const valid_requests[] = {
  "set work 7 0 5\r\nhello\r\n",
  "set q 0 0 0\r\n\r\n",
  "set q 0 0 4\n\r\n\r\n\r\n",
  "get work/t=100/open\r\n",
  "gets q\n",
  "monitor q 10 5\r\n",
  "confirm q 1\r\n",
  "delete q\r\n",
  "flush q\r\n",
  "flush_all\r\n",
  "flush_expired q\r\n",
  "flush_all_expired\r\n",
  "stats\r\n",
  "dump_stats a b\r\n",
  "dump_config\r\n",
  "status\r\n",
  "status quiescent\r\n",
  "version\r\n",
  "reload\r\n",
  "shutdown\r\n",
  "quit\r\n",
};

static void
test_prefixes(void)
{
  for (gsize i = 0; i < G_N_ELEMENTS(valid_requests); i++) {
    const char *s = valid_requests[i];
    gsize len = strlen(s);
    for (gsize k = 0; k < len; k++) {
      KqMcRequest req;
      gsize consumed = 99;
      /* A heap copy of exactly k bytes, so a read past the end is caught under ASan. */
      char *copy = g_memdup2(s, k);
      g_assert_cmpint(parse_len(copy, k, &req, &consumed), ==, KQ_PARSE_NEED_MORE);
      g_assert_cmpuint(consumed, ==, 0);
      g_free(copy);
    }
    KqMcRequest req;
    gsize consumed;
    g_assert_cmpint(parse_len(s, len, &req, &consumed), ==, KQ_PARSE_OK);
    g_assert_cmpuint(consumed, ==, len);
  }
}

/* "noreply" is noted as the last word of set, delete and flush_all, nowhere else. */
static void
test_noreply(void)
{
  static const struct {
    const char *line;
    KqMcCommand command;
    gboolean noreply;
  } cases[] = {
    { "set q 0 0 1 noreply\r\na\r\n", KQ_MC_SET, TRUE },
    { "set q 0 0 1\r\na\r\n", KQ_MC_SET, FALSE },
    { "set q 0 0 1 NOREPLY\r\na\r\n", KQ_MC_SET, FALSE },
    { "delete q noreply\r\n", KQ_MC_DELETE, TRUE },
    { "delete q 0 noreply\r\n", KQ_MC_DELETE, TRUE },
    { "delete q\r\n", KQ_MC_DELETE, FALSE },
    { "delete noreply\r\n", KQ_MC_DELETE, FALSE }, /* a queue named noreply */
    { "flush_all noreply\r\n", KQ_MC_FLUSH_ALL, TRUE },
    { "flush_all 0 noreply\r\n", KQ_MC_FLUSH_ALL, TRUE },
    { "flush_all 0\r\n", KQ_MC_FLUSH_ALL, FALSE },
    { "flush noreply\r\n", KQ_MC_FLUSH, FALSE },
    { "get q noreply\r\n", KQ_MC_GET, FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    KqMcRequest req;
    expect_ok(cases[i].line, cases[i].command, &req);
    g_assert_cmpint(req.noreply, ==, cases[i].noreply);
  }
}

/* A get keeps its whole key, options included, beside the queue name. */
static void
test_get_key(void)
{
  KqMcRequest req;

  expect_ok("get jobs/t=500/open\r\n", KQ_MC_GET, &req);
  assert_queue(&req, "jobs");
  g_assert_cmpmem(req.key, req.key_len, "jobs/t=500/open", 15);
  expect_ok("gets jobs\r\n", KQ_MC_GET, &req);
  g_assert_cmpmem(req.key, req.key_len, "jobs", 4);
}

static void
test_pipelined(void)
{
  GString *all = g_string_new(NULL);
  KqMcRequest req;
  gsize consumed, off = 0;

  for (gsize i = 0; i < G_N_ELEMENTS(valid_requests); i++)
    g_string_append(all, valid_requests[i]);
  for (gsize i = 0; i < G_N_ELEMENTS(valid_requests); i++) {
    g_assert_cmpint(parse_len(all->str + off, all->len - off, &req, &consumed), ==, KQ_PARSE_OK);
    g_assert_cmpuint(consumed, ==, strlen(valid_requests[i]));
    off += consumed;
  }
  g_assert_cmpuint(off, ==, all->len);
  g_assert_cmpint(parse_len(all->str + off, 0, &req, &consumed), ==, KQ_PARSE_NEED_MORE);

  /* An error in the middle drops exactly its own bytes. */
  const char *mixed = "get a\r\nmonitor q x\r\nset b 0 0 1\r\nz\r\nget c/open\r\n";
  off = 0;
  g_assert_cmpint(parse(mixed, &req, &consumed), ==, KQ_PARSE_OK);
  off += consumed;
  g_assert_cmpint(parse(mixed + off, &req, &consumed), ==, KQ_PARSE_CLIENT_ERROR);
  g_assert_false(req.close_after);
  off += consumed;
  g_assert_cmpint(parse(mixed + off, &req, &consumed), ==, KQ_PARSE_OK);
  g_assert_cmpmem(req.data, req.data_len, "z", 1);
  off += consumed;
  g_assert_cmpint(parse(mixed + off, &req, &consumed), ==, KQ_PARSE_OK);
  assert_queue(&req, "c");
  g_assert_true(req.open);
  off += consumed;
  g_assert_cmpuint(off, ==, strlen(mixed));
  g_string_free(all, TRUE);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/memcache-parse/decimal", test_decimal);
  g_test_add_func("/memcache-parse/set", test_set);
  g_test_add_func("/memcache-parse/set-numbers", test_set_numbers);
  g_test_add_func("/memcache-parse/set-bad-length", test_set_bad_length);
  g_test_add_func("/memcache-parse/set-max-data", test_set_max_data);
  g_test_add_func("/memcache-parse/set-bad-chunk", test_set_bad_chunk);
  g_test_add_func("/memcache-parse/set-awaiting", test_set_awaiting);
  g_test_add_func("/memcache-parse/get", test_get);
  g_test_add_func("/memcache-parse/get-option-orders", test_get_option_orders);
  g_test_add_func("/memcache-parse/get-bad-options", test_get_bad_options);
  g_test_add_func("/memcache-parse/monitor", test_monitor);
  g_test_add_func("/memcache-parse/confirm", test_confirm);
  g_test_add_func("/memcache-parse/queue-commands", test_queue_commands);
  g_test_add_func("/memcache-parse/server-commands", test_server_commands);
  g_test_add_func("/memcache-parse/args", test_args);
  g_test_add_func("/memcache-parse/noreply", test_noreply);
  g_test_add_func("/memcache-parse/get-key", test_get_key);
  g_test_add_func("/memcache-parse/case-insensitive", test_case_insensitive);
  g_test_add_func("/memcache-parse/spacing", test_spacing);
  g_test_add_func("/memcache-parse/unknown", test_unknown);
  g_test_add_func("/memcache-parse/long-line", test_long_line);
  g_test_add_func("/memcache-parse/prefixes", test_prefixes);
  g_test_add_func("/memcache-parse/pipelined", test_pipelined);
  return g_test_run();
}
