/* Text protocol request parser (SPEC 3). Stateless like the memcache parser: the caller keeps
 * unparsed bytes and calls again when more arrive; nothing is allocated.
 *
 * Framing follows Kestrel's TextCodec: a request line ending in ':' is followed by item lines up
 * to an empty line, whatever its command (so "put q:" and "put q 1000:" carry items, and "put q"
 * without ':' stores none). Lines end in "\n"; a "\r" before it is dropped.
 *
 * Choices where Kestrel 2.4 was loose or silent:
 * - Words are separated by runs of spaces (Kestrel split on each space, so "get  q" named the
 *   queue ""); extra words are ignored.
 * - Numbers are decimal digits with an optional '-', in Kestrel's toInt range (-2^31..2^31-1).
 *   A negative expiry or timeout has already passed (items expire at once, a get does not wait,
 *   a monitor ends at once), and a negative confirm count confirms nothing, as in Kestrel.
 * - Every line, request or item, must fit in KQ_TEXT_MAX_LINE bytes with its "\n", and a put may
 *   carry at most KQ_TEXT_MAX_PUT_ITEMS items, so a put never exceeds KQ_TEXT_MAX_PUT_BYTES
 *   (Kestrel silently ended a put at 1024 items and dropped the next line; here it is an error).
 *   Both errors close the connection, as the rest of the put cannot be told from new requests. */
#include "text-parse.h"

#include <string.h>

/* command, queue, number: the most any request reads. */
#define MAX_WORDS 3

typedef enum {
  LINE_OK,
  LINE_NEED_MORE,
  LINE_TOO_LONG,
} LineResult;

/* Finds the line starting at buf[start]: its length without "\r\n" and where the next begins. */
static LineResult
find_line(const char *buf, gsize len, gsize start, gsize *line_len, gsize *next)
{
  gsize avail = len - start;
  const char *nl = avail ? memchr(buf + start, '\n', MIN(avail, (gsize) KQ_TEXT_MAX_LINE)) : NULL;

  if (nl == NULL)
    return avail < KQ_TEXT_MAX_LINE ? LINE_NEED_MORE : LINE_TOO_LONG;
  gsize n = (gsize) (nl - (buf + start));
  *next = start + n + 1;
  if (n > 0 && buf[start + n - 1] == '\r')
    n--;
  *line_len = n;
  return LINE_OK;
}

typedef struct {
  const char *name;
  gsize len;
  KqTextCommand command;
} CommandName;

static const CommandName command_names[] = {
  { "get", 3, KQ_TEXT_GET },
  { "put", 3, KQ_TEXT_PUT },
  { "peek", 4, KQ_TEXT_PEEK },
  { "monitor", 7, KQ_TEXT_MONITOR },
  { "confirm", 7, KQ_TEXT_CONFIRM },
  { "flush", 5, KQ_TEXT_FLUSH },
  { "delete", 6, KQ_TEXT_DELETE },
  { "status", 6, KQ_TEXT_STATUS },
  { "version", 7, KQ_TEXT_VERSION },
  { "quit", 4, KQ_TEXT_QUIT },
  { "shutdown", 8, KQ_TEXT_SHUTDOWN },
};

static gboolean
lookup_command(KqWord w, KqTextCommand *out)
{
  for (gsize i = 0; i < G_N_ELEMENTS(command_names); i++) {
    if (w.n == command_names[i].len && g_ascii_strncasecmp(w.p, command_names[i].name, w.n) == 0) {
      *out = command_names[i].command;
      return TRUE;
    }
  }
  return FALSE;
}

static KqParseResult
client_error(KqTextRequest *req, const char *message, gboolean close_after)
{
  req->error = message;
  req->close_after = close_after;
  return KQ_PARSE_CLIENT_ERROR;
}

/* "Unknown command: <word>", the word lower-cased like Kestrel, cut to fit and made printable. */
static KqParseResult
unknown_command(KqTextRequest *req, KqWord w)
{
  static const char prefix[] = "Unknown command: ";
  gsize room = sizeof req->error_buf - sizeof prefix; /* keeps one byte for the NUL */
  gsize n = MIN(w.n, room);
  char *out = req->error_buf + sizeof prefix - 1;

  memcpy(req->error_buf, prefix, sizeof prefix - 1);
  for (gsize i = 0; i < n; i++) {
    char c = g_ascii_tolower(w.p[i]);
    out[i] = g_ascii_isprint(c) ? c : '?';
  }
  out[n] = '\0';
  return client_error(req, req->error_buf, FALSE);
}

/* An optional (absent: has_number stays FALSE) or required number in Kestrel's toInt range. */
static gboolean
parse_number(const KqWord *words, guint nwords, guint index, KqTextRequest *req)
{
  KqWord w;
  gboolean negative;
  guint64 v;

  if (index >= nwords)
    return TRUE;
  w = words[index];
  negative = w.n > 0 && w.p[0] == '-';
  if (negative) {
    w.p++;
    w.n--;
  }
  if (!kq_parse_decimal(w.p, w.n, (guint64) G_MAXINT32 + (negative ? 1 : 0), &v))
    return FALSE;
  req->number = negative ? -(gint64) v : (gint64) v;
  req->has_number = TRUE;
  return TRUE;
}

/* Reads the item lines that follow a request line ending in ':', up to the empty line. */
static KqParseResult
parse_items(const char *buf, gsize len, gsize start, KqTextRequest *req, gsize *consumed)
{
  gsize pos = start, line_len, next;

  for (;;) {
    switch (find_line(buf, len, pos, &line_len, &next)) {
    case LINE_NEED_MORE:
      return KQ_PARSE_NEED_MORE;
    case LINE_TOO_LONG:
      *consumed = len;
      return client_error(req, "Line too long.", TRUE);
    case LINE_OK:
      break;
    }
    if (line_len == 0)
      break;
    if (req->item_count == KQ_TEXT_MAX_PUT_ITEMS) {
      *consumed = next;
      return client_error(req, "Too many items in one put (at most "
                          G_STRINGIFY(KQ_TEXT_MAX_PUT_ITEMS) ").", TRUE);
    }
    req->item_count++;
    pos = next;
  }
  req->items = buf + start;
  req->items_len = pos - start;
  *consumed = next;
  return KQ_PARSE_OK;
}

KqParseResult
kq_text_parse(const char *buf, gsize len, KqTextRequest *req, gsize *consumed)
{
  KqWord words[MAX_WORDS];
  KqTextCommand command;
  gsize n, next;

  req->command = KQ_TEXT_QUIT;
  req->queue = NULL;
  req->queue_len = 0;
  req->number = -1;
  req->has_number = FALSE;
  req->items = NULL;
  req->items_len = 0;
  req->item_count = 0;
  req->args = NULL;
  req->args_len = 0;
  req->error = NULL;
  req->close_after = FALSE;
  *consumed = 0;

  switch (find_line(buf, len, 0, &n, &next)) {
  case LINE_NEED_MORE:
    return KQ_PARSE_NEED_MORE;
  case LINE_TOO_LONG:
    *consumed = len;
    return client_error(req, "Line too long.", TRUE);
  case LINE_OK:
    break;
  }

  /* Whatever the command, its items must be read before the next request can be. */
  if (n > 0 && buf[n - 1] == ':') {
    n--;
    KqParseResult r = parse_items(buf, len, next, req, consumed);
    if (r != KQ_PARSE_OK)
      return r;
  } else {
    *consumed = next;
  }

  guint nwords = kq_parse_split_words(buf, n, words, MAX_WORDS);
  if (nwords == 0)
    return unknown_command(req, (KqWord) { buf, 0 });
  if (!lookup_command(words[0], &command))
    return unknown_command(req, words[0]);
  req->command = command;

  switch (command) {
  case KQ_TEXT_PUT:
  case KQ_TEXT_GET:
  case KQ_TEXT_PEEK:
    if (nwords < 2)
      return client_error(req, "Queue name required.", FALSE);
    if (!parse_number(words, nwords, 2, req))
      return client_error(req, command == KQ_TEXT_PUT ? "Error parsing expiration time."
                                                      : "Error parsing timeout.", FALSE);
    break;

  case KQ_TEXT_MONITOR:
    if (nwords < 3)
      return client_error(req, "Queue name & timeout required.", FALSE);
    if (!parse_number(words, nwords, 2, req))
      return client_error(req, "Error parsing timeout.", FALSE);
    break;

  case KQ_TEXT_CONFIRM:
    if (nwords < 3)
      return client_error(req, "Queue name & count required.", FALSE);
    if (!parse_number(words, nwords, 2, req))
      return client_error(req, "Error parsing count.", FALSE);
    break;

  case KQ_TEXT_FLUSH:
  case KQ_TEXT_DELETE:
    if (nwords < 2)
      return client_error(req, "Queue name required.", FALSE);
    break;

  case KQ_TEXT_STATUS:
    if (nwords > 1) {
      req->args = words[1].p;
      req->args_len = words[1].n;
    }
    return KQ_PARSE_OK;

  default:
    return KQ_PARSE_OK;
  }
  req->queue = words[1].p;
  req->queue_len = words[1].n;
  return KQ_PARSE_OK;
}

gboolean
kq_text_put_next_item(const KqTextRequest *req, gsize *pos, const char **item, gsize *item_len)
{
  if (req->items == NULL || *pos >= req->items_len)
    return FALSE;

  const char *start = req->items + *pos;
  const char *nl = memchr(start, '\n', req->items_len - *pos);
  /* The parser only hands out whole lines, but stay inside the region regardless. */
  gsize n = nl ? (gsize) (nl - start) : req->items_len - *pos;

  *pos += n + (nl ? 1 : 0);
  if (n > 0 && start[n - 1] == '\r')
    n--;
  *item = start;
  *item_len = n;
  return TRUE;
}
