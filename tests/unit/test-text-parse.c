/* Unit tests of the text protocol request parser (SPEC 3). */
#include <string.h>

#include "text/text-parse.h"

static KqParseResult
parse_len(const char *buf, gsize len, KqTextRequest *req, gsize *consumed)
{
  return kq_text_parse(buf, len, req, consumed);
}

static KqParseResult
parse(const char *s, KqTextRequest *req, gsize *consumed)
{
  return parse_len(s, strlen(s), req, consumed);
}

static void
expect_ok(const char *s, KqTextCommand command, KqTextRequest *req)
{
  gsize consumed = 12345;

  g_assert_cmpint(parse(s, req, &consumed), ==, KQ_PARSE_OK);
  g_assert_cmpint(req->command, ==, command);
  g_assert_cmpuint(consumed, ==, strlen(s));
  g_assert_null(req->error);
  g_assert_false(req->close_after);
}

static void
expect_error(const char *s, gsize expect_consumed, gboolean close_after, const char *message)
{
  KqTextRequest req;
  gsize consumed = 12345;

  g_assert_cmpint(parse(s, &req, &consumed), ==, KQ_PARSE_CLIENT_ERROR);
  g_assert_cmpuint(consumed, ==, expect_consumed);
  g_assert_cmpint(req.close_after, ==, close_after);
  g_assert_cmpstr(req.error, ==, message);
}

static void
assert_queue(const KqTextRequest *req, const char *queue)
{
  g_assert_nonnull(req->queue);
  g_assert_cmpmem(req->queue, req->queue_len, queue, strlen(queue));
}

/* Checks the put's items against a NULL-terminated list. */
static void
assert_items(const KqTextRequest *req, const char *const *expected)
{
  gsize pos = 0, n = 0, len;
  const char *item;

  while (kq_text_put_next_item(req, &pos, &item, &len)) {
    g_assert_nonnull(expected[n]);
    g_assert_cmpmem(item, len, expected[n], strlen(expected[n]));
    n++;
  }
  g_assert_null(expected[n]);
  g_assert_cmpuint(req->item_count, ==, n);
  /* Finished iterators stay finished. */
  g_assert_false(kq_text_put_next_item(req, &pos, &item, &len));
}

static void
test_put(void)
{
  KqTextRequest req;

  expect_ok("put jobs:\nfirst\nsecond\n\n", KQ_TEXT_PUT, &req);
  assert_queue(&req, "jobs");
  g_assert_false(req.has_number);
  assert_items(&req, (const char *const[]) { "first", "second", NULL });

  expect_ok("put jobs 1000:\r\none\r\n\r\n", KQ_TEXT_PUT, &req);
  assert_queue(&req, "jobs");
  g_assert_cmpint(req.number, ==, 1000);
  g_assert_true(req.has_number);
  assert_items(&req, (const char *const[]) { "one", NULL });
  /* Kestrel's toInt took a sign: the items have already expired. */
  expect_ok("put jobs -1:\none\n\n", KQ_TEXT_PUT, &req);
  g_assert_cmpint(req.number, ==, -1);
  g_assert_true(req.has_number);

  /* Items keep spaces, colons and a lone \r inside them. */
  expect_ok("put q:\n a b :c\nx\ry\n{\"k\": 1}\n\n", KQ_TEXT_PUT, &req);
  assert_items(&req, (const char *const[]) { " a b :c", "x\ry", "{\"k\": 1}", NULL });

  /* No items: an empty put stores nothing. */
  expect_ok("put q:\n\n", KQ_TEXT_PUT, &req);
  assert_items(&req, (const char *const[]) { NULL });
  /* Without ':' there is no item block at all (Kestrel: +0). */
  expect_ok("put q\n", KQ_TEXT_PUT, &req);
  assert_queue(&req, "q");
  assert_items(&req, (const char *const[]) { NULL });
  expect_ok("put q 5\n", KQ_TEXT_PUT, &req);
  g_assert_cmpint(req.number, ==, 5);
  /* A space before ':' is fine. */
  expect_ok("put q 5 :\nz\n\n", KQ_TEXT_PUT, &req);
  g_assert_cmpint(req.number, ==, 5);
  assert_items(&req, (const char *const[]) { "z", NULL });
  /* A lone \r is an empty line, so it ends the put. */
  expect_ok("put q:\nz\n\r\n", KQ_TEXT_PUT, &req);
  assert_items(&req, (const char *const[]) { "z", NULL });
}

static void
test_put_errors(void)
{
  expect_error("put:\n\n", 6, FALSE, "Queue name required.");
  expect_error("put\n", 4, FALSE, "Queue name required.");
  expect_error("put q x:\na\n\n", 12, FALSE, "Error parsing expiration time.");
  expect_error("put q --1:\na\n\n", 14, FALSE, "Error parsing expiration time.");
  expect_error("put q -2147483649:\n\n", 20, FALSE, "Error parsing expiration time.");
  expect_error("put q 2147483648:\n\n", 19, FALSE, "Error parsing expiration time.");
  expect_error("put q 99999999999999999999999:\n\n", 32, FALSE,
               "Error parsing expiration time.");
  /* A bad put still drops its whole item block, so the next request is read correctly. */
  KqTextRequest req;
  gsize consumed;
  const char *s = "put q zz:\na\nb\n\nget q\n";
  g_assert_cmpint(parse(s, &req, &consumed), ==, KQ_PARSE_CLIENT_ERROR);
  g_assert_cmpuint(consumed, ==, 15);
  g_assert_cmpint(parse(s + consumed, &req, &consumed), ==, KQ_PARSE_OK);
  g_assert_cmpint(req.command, ==, KQ_TEXT_GET);
}

static void
test_put_limits(void)
{
  GString *s = g_string_new("put q:\n");
  KqTextRequest req;
  gsize consumed;

  for (int i = 0; i < KQ_TEXT_MAX_PUT_ITEMS; i++)
    g_string_append_printf(s, "item%d\n", i);
  gsize before_end = s->len;
  g_string_append(s, "\n");
  g_assert_cmpint(parse_len(s->str, s->len, &req, &consumed), ==, KQ_PARSE_OK);
  g_assert_cmpuint(consumed, ==, s->len);
  g_assert_cmpuint(req.item_count, ==, KQ_TEXT_MAX_PUT_ITEMS);

  gsize pos = 0, len, n = 0;
  const char *item;
  while (kq_text_put_next_item(&req, &pos, &item, &len)) {
    g_autofree char *want = g_strdup_printf("item%" G_GSIZE_FORMAT, n);
    g_assert_cmpmem(item, len, want, strlen(want));
    n++;
  }
  g_assert_cmpuint(n, ==, KQ_TEXT_MAX_PUT_ITEMS);

  /* One item more: an error as soon as the extra line is complete, and the connection closes. */
  g_string_truncate(s, before_end);
  g_string_append(s, "extra");
  g_assert_cmpint(parse_len(s->str, s->len, &req, &consumed), ==, KQ_PARSE_NEED_MORE);
  g_string_append(s, "\nmore\n");
  g_assert_cmpint(parse_len(s->str, s->len, &req, &consumed), ==, KQ_PARSE_CLIENT_ERROR);
  g_assert_cmpuint(consumed, ==, s->len - 5);
  g_assert_true(req.close_after);
  g_assert_cmpstr(req.error, ==, "Too many items in one put (at most 1024).");
  g_string_free(s, TRUE);

  g_assert_cmpuint(KQ_TEXT_MAX_PUT_BYTES, ==, (gsize) 1026 * 65536);
}

static void
test_long_lines(void)
{
  gsize size = KQ_TEXT_MAX_LINE + 64;
  char *buf = g_malloc(size);
  KqTextRequest req;
  gsize consumed;

  memset(buf, 'a', size);
  g_assert_cmpint(parse_len(buf, KQ_TEXT_MAX_LINE - 1, &req, &consumed), ==, KQ_PARSE_NEED_MORE);
  g_assert_cmpuint(consumed, ==, 0);
  g_assert_cmpint(parse_len(buf, size, &req, &consumed), ==, KQ_PARSE_CLIENT_ERROR);
  g_assert_cmpuint(consumed, ==, size);
  g_assert_true(req.close_after);
  g_assert_cmpstr(req.error, ==, "Line too long.");

  /* The longest item line is accepted; a longer one ends the connection. */
  memcpy(buf, "put q:\n", 7);
  buf[7 + KQ_TEXT_MAX_LINE - 1] = '\n';
  g_assert_cmpint(parse_len(buf, 7 + KQ_TEXT_MAX_LINE, &req, &consumed), ==, KQ_PARSE_NEED_MORE);
  buf[7 + KQ_TEXT_MAX_LINE] = '\n';
  g_assert_cmpint(parse_len(buf, 7 + KQ_TEXT_MAX_LINE + 1, &req, &consumed), ==, KQ_PARSE_OK);
  g_assert_cmpuint(req.item_count, ==, 1);
  g_assert_cmpuint(req.items_len, ==, KQ_TEXT_MAX_LINE);

  buf[7 + KQ_TEXT_MAX_LINE - 1] = 'a';
  g_assert_cmpint(parse_len(buf, size, &req, &consumed), ==, KQ_PARSE_CLIENT_ERROR);
  g_assert_cmpuint(consumed, ==, size);
  g_assert_true(req.close_after);
  g_assert_cmpstr(req.error, ==, "Line too long.");
  g_free(buf);
}

static void
test_get_peek(void)
{
  KqTextRequest req;

  expect_ok("get q\n", KQ_TEXT_GET, &req);
  assert_queue(&req, "q");
  g_assert_cmpint(req.number, ==, -1);
  expect_ok("get q 250\r\n", KQ_TEXT_GET, &req);
  g_assert_cmpint(req.number, ==, 250);
  expect_ok("peek q\n", KQ_TEXT_PEEK, &req);
  assert_queue(&req, "q");
  expect_ok("peek q 0\n", KQ_TEXT_PEEK, &req);
  g_assert_cmpint(req.number, ==, 0);
  expect_ok("get q 2147483647\n", KQ_TEXT_GET, &req);
  g_assert_cmpint(req.number, ==, G_MAXINT32);

  expect_error("get\n", 4, FALSE, "Queue name required.");
  expect_error("peek  \n", 7, FALSE, "Queue name required.");
  expect_error("get q soon\n", 11, FALSE, "Error parsing timeout.");
  expect_ok("peek q -1\n", KQ_TEXT_PEEK, &req);
  g_assert_cmpint(req.number, ==, -1);
  g_assert_true(req.has_number);
  expect_ok("get q -2147483648\n", KQ_TEXT_GET, &req);
  g_assert_cmpint(req.number, ==, G_MININT32);
  expect_error("peek q -\n", 9, FALSE, "Error parsing timeout.");
  expect_error("get q 2147483648\n", 17, FALSE, "Error parsing timeout.");
}

static void
test_monitor_confirm(void)
{
  KqTextRequest req;

  expect_ok("monitor q 1000\n", KQ_TEXT_MONITOR, &req);
  assert_queue(&req, "q");
  g_assert_cmpint(req.number, ==, 1000);
  expect_ok("confirm q 3\n", KQ_TEXT_CONFIRM, &req);
  assert_queue(&req, "q");
  g_assert_cmpint(req.number, ==, 3);

  expect_error("monitor q\n", 10, FALSE, "Queue name & timeout required.");
  expect_error("monitor\n", 8, FALSE, "Queue name & timeout required.");
  expect_error("monitor q x\n", 12, FALSE, "Error parsing timeout.");
  expect_error("confirm q\n", 10, FALSE, "Queue name & count required.");
  expect_ok("monitor q -5\n", KQ_TEXT_MONITOR, &req);
  g_assert_cmpint(req.number, ==, -5);
  expect_ok("confirm q -1\n", KQ_TEXT_CONFIRM, &req);
  g_assert_cmpint(req.number, ==, -1);
  expect_error("confirm q +1\n", 13, FALSE, "Error parsing count.");
  expect_error("confirm q 1.5\n", 14, FALSE, "Error parsing count.");
}

static void
test_other_commands(void)
{
  KqTextRequest req;

  expect_ok("flush q\n", KQ_TEXT_FLUSH, &req);
  assert_queue(&req, "q");
  expect_ok("delete q\n", KQ_TEXT_DELETE, &req);
  assert_queue(&req, "q");
  expect_error("flush\n", 6, FALSE, "Queue name required.");
  expect_error("delete\n", 7, FALSE, "Queue name required.");

  expect_ok("status\n", KQ_TEXT_STATUS, &req);
  g_assert_null(req.args);
  expect_ok("status readonly\n", KQ_TEXT_STATUS, &req);
  g_assert_cmpmem(req.args, req.args_len, "readonly", 8);
  expect_ok("version\n", KQ_TEXT_VERSION, &req);
  g_assert_null(req.queue);
  expect_ok("quit\n", KQ_TEXT_QUIT, &req);
  expect_ok("shutdown\r\n", KQ_TEXT_SHUTDOWN, &req);
}

static void
test_case_and_spacing(void)
{
  KqTextRequest req;

  expect_ok("GET Q\n", KQ_TEXT_GET, &req);
  assert_queue(&req, "Q");
  expect_ok("Put q:\nx\n\n", KQ_TEXT_PUT, &req);
  expect_ok("VERSION\n", KQ_TEXT_VERSION, &req);
  expect_ok("   get   q   10   \n", KQ_TEXT_GET, &req);
  assert_queue(&req, "q");
  g_assert_cmpint(req.number, ==, 10);
  /* Extra words are ignored, as Kestrel did. */
  expect_ok("get q 10 more words\n", KQ_TEXT_GET, &req);
  g_assert_cmpint(req.number, ==, 10);
}

static void
test_unknown(void)
{
  expect_error("stats\n", 6, FALSE, "Unknown command: stats");
  expect_error("FOO bar\r\n", 9, FALSE, "Unknown command: foo");
  expect_error("\n", 1, FALSE, "Unknown command: ");
  expect_error("\r\n", 2, FALSE, "Unknown command: ");
  expect_error("bad\x01\xff\n", 6, FALSE, "Unknown command: bad??");
  /* Any line ending in ':' carries items, even an unknown command's (Kestrel's framing). */
  expect_error("frob q:\na\nb\n\n", 13, FALSE, "Unknown command: frob");
  expect_error(":\n\n", 3, FALSE, "Unknown command: ");

  /* A very long word is cut to fit. */
  GString *s = g_string_new(NULL);
  for (int i = 0; i < 500; i++)
    g_string_append_c(s, 'w');
  g_string_append_c(s, '\n');
  KqTextRequest req;
  gsize consumed;
  g_assert_cmpint(parse(s->str, &req, &consumed), ==, KQ_PARSE_CLIENT_ERROR);
  g_assert_cmpuint(consumed, ==, s->len);
  g_assert_true(g_str_has_prefix(req.error, "Unknown command: www"));
  g_assert_cmpuint(strlen(req.error), ==, sizeof req.error_buf - 1);
  g_string_free(s, TRUE);
}

static void
test_block_on_other_commands(void)
{
  KqTextRequest req;

  /* "get q:" reads (and the front-end ignores) an item block, like Kestrel. */
  expect_ok("get q:\nignored\n\n", KQ_TEXT_GET, &req);
  assert_queue(&req, "q");
  g_assert_cmpuint(req.item_count, ==, 1);
}

static const char *const valid_requests[] = {
  "put jobs:\nfirst\nsecond\n\n",
  "put jobs 1000:\r\none\r\n\r\n",
  "put q:\n\n",
  "put q\n",
  "get q\n",
  "get q 100\r\n",
  "peek q 5\n",
  "monitor q 1000\n",
  "confirm q 2\n",
  "flush q\n",
  "delete q\n",
  "status\n",
  "status up\n",
  "version\n",
  "quit\n",
  "shutdown\n",
};

static void
test_prefixes(void)
{
  for (gsize i = 0; i < G_N_ELEMENTS(valid_requests); i++) {
    const char *s = valid_requests[i];
    gsize len = strlen(s);
    KqTextRequest req;
    gsize consumed;

    for (gsize k = 0; k < len; k++) {
      char *copy = g_memdup2(s, k); /* exactly k bytes: ASan catches reads past the end */
      consumed = 99;
      g_assert_cmpint(parse_len(copy, k, &req, &consumed), ==, KQ_PARSE_NEED_MORE);
      g_assert_cmpuint(consumed, ==, 0);
      g_free(copy);
    }
    g_assert_cmpint(parse_len(s, len, &req, &consumed), ==, KQ_PARSE_OK);
    g_assert_cmpuint(consumed, ==, len);
  }
}

static void
test_pipelined(void)
{
  GString *all = g_string_new(NULL);
  KqTextRequest req;
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
  g_string_free(all, TRUE);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/text-parse/put", test_put);
  g_test_add_func("/text-parse/put-errors", test_put_errors);
  g_test_add_func("/text-parse/put-limits", test_put_limits);
  g_test_add_func("/text-parse/long-lines", test_long_lines);
  g_test_add_func("/text-parse/get-peek", test_get_peek);
  g_test_add_func("/text-parse/monitor-confirm", test_monitor_confirm);
  g_test_add_func("/text-parse/other-commands", test_other_commands);
  g_test_add_func("/text-parse/case-and-spacing", test_case_and_spacing);
  g_test_add_func("/text-parse/unknown", test_unknown);
  g_test_add_func("/text-parse/block-on-other-commands", test_block_on_other_commands);
  g_test_add_func("/text-parse/prefixes", test_prefixes);
  g_test_add_func("/text-parse/pipelined", test_pipelined);
  return g_test_run();
}
