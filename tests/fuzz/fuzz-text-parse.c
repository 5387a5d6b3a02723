/* libFuzzer target for kq_text_parse and kq_text_put_next_item: parses the input as a
 * connection's byte stream, request after request, and checks the parser's promises:
 * - it never consumes more than it was given, and NEED_MORE consumes nothing;
 * - OK and errors always make progress, so a front-end loop cannot spin;
 * - everything a request points at lies inside the bytes it consumed, and the item iterator
 *   yields exactly item_count items without newlines;
 * - the result depends only on those bytes, and a whole request is NEED_MORE for each of its
 *   shorter prefixes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/text-parse.h"

/* Prefix checks are quadratic: only for requests up to this size. */
#define PREFIX_CHECK_MAX 256

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static void
check_inside(const char *p, gsize n, const char *buf, gsize len)
{
  if (p == NULL) {
    CHECK(n == 0);
    return;
  }
  CHECK(p >= buf && (gsize) (p - buf) <= len && n <= len - (gsize) (p - buf));
}

static void
check_items(const KqTextRequest *req)
{
  gsize pos = 0, n, count = 0;
  const char *item;

  while (kq_text_put_next_item(req, &pos, &item, &n)) {
    check_inside(item, n, req->items, req->items_len);
    CHECK(n > 0 && memchr(item, '\n', n) == NULL);
    CHECK(count < req->item_count);
    count++;
  }
  CHECK(count == req->item_count);
  CHECK(pos == req->items_len);
}

static void
check_request(KqParseResult r, const KqTextRequest *req, const char *buf, gsize consumed)
{
  CHECK(r == KQ_PARSE_OK || r == KQ_PARSE_CLIENT_ERROR);
  if (r == KQ_PARSE_CLIENT_ERROR) {
    CHECK(req->error != NULL && strlen(req->error) < sizeof req->error_buf);
    return;
  }
  CHECK(req->error == NULL && !req->close_after);
  CHECK(req->command <= KQ_TEXT_SHUTDOWN);
  check_inside(req->queue, req->queue_len, buf, consumed);
  check_inside(req->items, req->items_len, buf, consumed);
  check_inside(req->args, req->args_len, buf, consumed);
  CHECK(req->number >= G_MININT32 && req->number <= G_MAXINT32);  /* Kestrel's toInt range */
  CHECK(req->has_number || req->number == -1);
  CHECK(req->item_count <= KQ_TEXT_MAX_PUT_ITEMS);
  CHECK(consumed <= KQ_TEXT_MAX_PUT_BYTES);
  check_items(req);
}

/* Parses exactly buf[0..len) from a heap copy of that size, so reads past it are caught. */
static KqParseResult
parse_copy(const char *buf, gsize len, KqTextRequest *req, gsize *consumed)
{
  char *copy = malloc(len ? len : 1);
  CHECK(copy != NULL);
  memcpy(copy, buf, len);
  KqParseResult r = kq_text_parse(copy, len, req, consumed);
  if (r == KQ_PARSE_OK)
    check_items(req); /* iterate while the copy is alive */
  free(copy);
  return r;
}

static void
check_replay(KqParseResult r, const KqTextRequest *req, const char *buf, gsize consumed)
{
  KqTextRequest again;
  gsize again_consumed;

  CHECK(parse_copy(buf, consumed, &again, &again_consumed) == r);
  CHECK(again_consumed == consumed);
  CHECK(again.close_after == req->close_after);
  if (r == KQ_PARSE_OK) {
    CHECK(again.command == req->command && again.item_count == req->item_count);
    CHECK(again.queue_len == req->queue_len && again.number == req->number);
  } else {
    CHECK(strcmp(again.error, req->error) == 0);
  }
  if (r != KQ_PARSE_OK || consumed > PREFIX_CHECK_MAX)
    return;
  for (gsize k = 0; k < consumed; k++) {
    CHECK(parse_copy(buf, k, &again, &again_consumed) == KQ_PARSE_NEED_MORE);
    CHECK(again_consumed == 0);
  }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *buf = (const char *) data;
  gsize len = size;

  for (;;) {
    KqTextRequest req;
    gsize consumed = (gsize) -1;
    KqParseResult r = kq_text_parse(buf, len, &req, &consumed);

    CHECK(consumed <= len);
    if (r == KQ_PARSE_NEED_MORE) {
      CHECK(consumed == 0);
      break;
    }
    CHECK(consumed > 0);
    check_request(r, &req, buf, consumed);
    check_replay(r, &req, buf, consumed);
    buf += consumed;
    len -= consumed;
  }
  return 0;
}
