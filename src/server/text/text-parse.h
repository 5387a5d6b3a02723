/* Text protocol request parser (SPEC 3): a pure function over a byte buffer. */
#pragma once
#include <glib.h>
#include "memcache/memcache-parse.h" /* KqParseResult */

G_BEGIN_DECLS

#define KQ_TEXT_MAX_LINE 65536
#define KQ_TEXT_MAX_PUT_ITEMS 1024
/* Every line (request or item, with its \n) fits in KQ_TEXT_MAX_LINE, so a whole put (header,
 * items, empty line) never exceeds this; a longer one is an error before it gets bigger. */
#define KQ_TEXT_MAX_PUT_BYTES ((gsize) (KQ_TEXT_MAX_PUT_ITEMS + 2) * KQ_TEXT_MAX_LINE)

typedef enum {
  KQ_TEXT_PUT, KQ_TEXT_GET, KQ_TEXT_PEEK, KQ_TEXT_MONITOR, KQ_TEXT_CONFIRM, KQ_TEXT_FLUSH,
  KQ_TEXT_DELETE, KQ_TEXT_STATUS, KQ_TEXT_VERSION, KQ_TEXT_QUIT, KQ_TEXT_SHUTDOWN,
} KqTextCommand;

typedef struct {
  KqTextCommand command;
  const char *queue;     /* into the buffer, not NUL-terminated */
  gsize queue_len;
  /* put: expiry ms; get/peek/monitor: timeout ms; confirm: count. Kestrel's toInt range, so
   * it may be negative; has_number FALSE (and number -1) when it was not given. */
  gint64 number;
  gboolean has_number;
  /* put: the item lines, each ending in \n (a \r before it is stripped by the iterator) */
  const char *items;
  gsize items_len;
  guint item_count;
  const char *args;      /* status <new>: the argument */
  gsize args_len;
  const char *error;     /* KQ_PARSE_CLIENT_ERROR: the message to send after '-' (it may point
                            into error_buf: use it before the request is copied or reused) */
  gboolean close_after;  /* after the error, close: the stream cannot be resynchronised */
  char error_buf[96];    /* room for "Unknown command: <word>" */
} KqTextRequest;

/* Decode one request. A put is OK only once its terminating empty line is in the buffer. */
KqParseResult kq_text_parse(const char *buf, gsize len, KqTextRequest *req, gsize *consumed);

/* Iterate the items of a put: *pos starts at 0; FALSE when there are no more. */
gboolean kq_text_put_next_item(const KqTextRequest *req, gsize *pos, const char **item,
                               gsize *item_len);

G_END_DECLS
