/* libFuzzer target for kq_mc_parse: parses the input as a connection's byte stream, request
 * after request, dropping what each call consumed, and checks the parser's promises:
 * - it never consumes more than it was given, and NEED_MORE consumes nothing;
 * - OK and errors always make progress, so a front-end loop cannot spin;
 * - everything a request points at lies inside the bytes it consumed;
 * - the result depends only on those bytes (parsing them alone gives the same answer), and a
 *   whole request is NEED_MORE for each of its shorter prefixes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "memcache/memcache-parse.h"

/* Small, so that "object too large" is reached as well as real data blocks. */
#define MAX_DATA 4096
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
check_request(KqParseResult r, const KqMcRequest *req, const char *buf, gsize consumed)
{
  CHECK(r == KQ_PARSE_OK || r == KQ_PARSE_CLIENT_ERROR);
  if (r == KQ_PARSE_CLIENT_ERROR) {
    CHECK(req->error != NULL && strlen(req->error) < 100);
    return;
  }
  CHECK(req->error == NULL && !req->close_after);
  CHECK(req->command <= KQ_MC_QUIT);
  check_inside(req->queue, req->queue_len, buf, consumed);
  check_inside(req->data, req->data_len, buf, consumed);
  check_inside(req->args, req->args_len, buf, consumed);
  CHECK(req->data_len <= MAX_DATA);
  /* Kestrel's toInt range: numbers may be negative */
  CHECK(req->timeout_ms >= G_MININT32 && req->timeout_ms <= G_MAXINT32);
  CHECK(req->seconds >= G_MININT32 && req->seconds <= G_MAXINT32);
  CHECK(req->count >= G_MININT32 && req->count <= G_MAXINT32);
  if (req->command == KQ_MC_SET) {
    CHECK(req->data != NULL && req->queue_len > 0);
    CHECK(req->data + req->data_len + 2 == buf + consumed);
  }
  if (req->command == KQ_MC_GET) {
    CHECK(req->queue_len > 0 && memchr(req->queue, '/', req->queue_len) == NULL);
    CHECK(!((req->peek || req->abort) && (req->open || req->close)));
    CHECK(!(req->peek && req->abort));
  }
}

/* Parses exactly buf[0..len) from a heap copy of that size, so reads past it are caught. */
static KqParseResult
parse_copy(const char *buf, gsize len, KqMcRequest *req, gsize *consumed)
{
  char *copy = malloc(len ? len : 1);
  CHECK(copy != NULL);
  memcpy(copy, buf, len);
  KqParseResult r = kq_mc_parse(copy, len, MAX_DATA, req, consumed);
  free(copy);
  return r;
}

static void
check_replay(KqParseResult r, const KqMcRequest *req, const char *buf, gsize consumed)
{
  KqMcRequest again;
  gsize again_consumed;

  CHECK(parse_copy(buf, consumed, &again, &again_consumed) == r);
  CHECK(again_consumed == consumed);
  CHECK(again.close_after == req->close_after);
  if (r == KQ_PARSE_OK) {
    CHECK(again.command == req->command);
    CHECK(again.queue_len == req->queue_len && again.data_len == req->data_len);
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
    KqMcRequest req;
    gsize consumed = (gsize) -1;
    KqParseResult r = kq_mc_parse(buf, len, MAX_DATA, &req, &consumed);

    CHECK(consumed <= len);
    if (r == KQ_PARSE_NEED_MORE) {
      CHECK(consumed == 0);
      break;
    }
    CHECK(consumed > 0);
    check_request(r, &req, buf, consumed);
    check_replay(r, &req, buf, consumed);
    /* A front-end closes after close_after; going on explores more of the parser. */
    buf += consumed;
    len -= consumed;
  }
  return 0;
}
