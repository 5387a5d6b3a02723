/* Memcache request parser (SPEC 2). Stateless: the caller keeps unparsed bytes and calls again
 * when more arrive. Nothing is allocated; every pointer in the request points into the buffer.
 *
 * Choices where Kestrel 2.4 was loose or silent:
 * - Words are separated by runs of spaces; words after a command's arguments are ignored
 *   (Kestrel ignored them too, e.g. memcache's "noreply" or a second key after get). A final
 *   "noreply" on set, delete and flush_all is still noted, for the front-end's strict mode.
 * - Get options are matched exactly ("open", not "OPEN"); empty and unknown options are ignored,
 *   as Kestrel ignored them. A bad t= value is a CLIENT_ERROR and the connection is closed.
 * - Numbers are decimal digits, checked for overflow. Counts and timeouts must fit in a signed
 *   32-bit int (Kestrel read them with toInt) and may be negative as Kestrel allowed: a t= or a
 *   monitor's seconds below zero have already passed, a monitor's max items below zero sets no
 *   limit, a confirm count below zero confirms nothing. A set's exptime may be negative too (the
 *   item is already expired); it ranges over int32 min..uint32 max.
 * - A set whose line is malformed but whose <bytes> is readable waits for its data block, drops
 *   it and replies CLIENT_ERROR, keeping the connection. When <bytes> itself is unusable the
 *   data cannot be skipped, so the connection is closed.
 * - Other malformed lines (missing arguments, bad numbers) keep the connection: the line is
 *   dropped and the stream stays in step. Unknown commands close it (SPEC 2). */
#include "memcache-parse.h"

#include <string.h>

/* A set line has at most: set q flags exptime bytes; more words are ignored. */
#define MAX_WORDS 6

gboolean
kq_parse_decimal(const char *s, gsize n, guint64 max, guint64 *out)
{
  guint64 v = 0;

  if (n == 0)
    return FALSE;
  for (gsize i = 0; i < n; i++) {
    guint d = (guint) ((guchar) s[i] - '0');
    if (d > 9 || v > (max - d) / 10)
      return FALSE;
    v = v * 10 + d;
  }
  *out = v;
  return TRUE;
}

/* A non-negative number that fits in gint32 (Kestrel's range for counts and timeouts). */
static gboolean
parse_count(KqWord w, gint64 *out)
{
  guint64 v;

  if (!kq_parse_decimal(w.p, w.n, G_MAXINT32, &v))
    return FALSE;
  *out = (gint64) v;
  return TRUE;
}

/* Kestrel's toInt range: an optional '-', then digits; int32 min..max. */
static gboolean
parse_signed_count(KqWord w, gint64 *out)
{
  guint64 v;

  if (w.n > 0 && w.p[0] == '-') {
    if (!kq_parse_decimal(w.p + 1, w.n - 1, (guint64) G_MAXINT32 + 1, &v))
      return FALSE;
    *out = -(gint64) v;
    return TRUE;
  }
  return parse_count(w, out);
}

/* A set's exptime: may be negative (already expired), up to uint32 for absolute times. */
static gboolean
parse_exptime(KqWord w, gint64 *out)
{
  guint64 v;

  if (w.n > 0 && w.p[0] == '-') {
    if (!kq_parse_decimal(w.p + 1, w.n - 1, (guint64) G_MAXINT32 + 1, &v))
      return FALSE;
    *out = -(gint64) v;
    return TRUE;
  }
  if (!kq_parse_decimal(w.p, w.n, G_MAXUINT32, &v))
    return FALSE;
  *out = (gint64) v;
  return TRUE;
}

guint
kq_parse_split_words(const char *line, gsize n, KqWord *words, guint max)
{
  guint count = 0;
  gsize i = 0;

  while (count < max) {
    while (i < n && line[i] == ' ')
      i++;
    if (i == n)
      break;
    const char *space = memchr(line + i, ' ', n - i);
    gsize stop = space ? (gsize) (space - line) : n;
    words[count].p = line + i;
    words[count].n = stop - i;
    count++;
    i = stop;
  }
  return count;
}

/* memcache's "noreply": the last word of set (6th), delete (3rd or 4th: an old delay may come
 * first) and flush_all (2nd or 3rd, after an optional delay). */
static gboolean
is_noreply(KqMcCommand command, const KqWord *words, guint nwords)
{
  guint first, last;

  switch (command) {
  case KQ_MC_SET:
    first = last = 5;
    break;
  case KQ_MC_DELETE:
    first = 2;
    last = 3;
    break;
  case KQ_MC_FLUSH_ALL:
    first = 1;
    last = 2;
    break;
  default:
    return FALSE;
  }
  if (nwords < first + 1 || nwords > last + 1)
    return FALSE;
  const KqWord *w = &words[nwords - 1];
  return w->n == 7 && memcmp(w->p, "noreply", 7) == 0;
}

typedef struct {
  const char *name;
  gsize len;
  KqMcCommand command;
} CommandName;

/* get and set first: they are nearly all the traffic. */
static const CommandName command_names[] = {
  { "get", 3, KQ_MC_GET },
  { "set", 3, KQ_MC_SET },
  { "gets", 4, KQ_MC_GET },
  { "monitor", 7, KQ_MC_MONITOR },
  { "confirm", 7, KQ_MC_CONFIRM },
  { "delete", 6, KQ_MC_DELETE },
  { "flush", 5, KQ_MC_FLUSH },
  { "flush_all", 9, KQ_MC_FLUSH_ALL },
  { "flush_expired", 13, KQ_MC_FLUSH_EXPIRED },
  { "flush_all_expired", 17, KQ_MC_FLUSH_ALL_EXPIRED },
  { "stats", 5, KQ_MC_STATS },
  { "dump_stats", 10, KQ_MC_DUMP_STATS },
  { "dump_config", 11, KQ_MC_DUMP_CONFIG },
  { "status", 6, KQ_MC_STATUS },
  { "version", 7, KQ_MC_VERSION },
  { "reload", 6, KQ_MC_RELOAD },
  { "shutdown", 8, KQ_MC_SHUTDOWN },
  { "quit", 4, KQ_MC_QUIT },
};

static gboolean
lookup_command(KqWord w, KqMcCommand *out)
{
  /* the lower-case forms clients send, without the case-folding compare */
  if (w.n == 3 && memcmp(w.p, "get", 3) == 0) {
    *out = KQ_MC_GET;
    return TRUE;
  }
  if (w.n == 3 && memcmp(w.p, "set", 3) == 0) {
    *out = KQ_MC_SET;
    return TRUE;
  }
  for (gsize i = 0; i < G_N_ELEMENTS(command_names); i++) {
    if (w.n == command_names[i].len && g_ascii_strncasecmp(w.p, command_names[i].name, w.n) == 0) {
      *out = command_names[i].command;
      return TRUE;
    }
  }
  return FALSE;
}

static KqParseResult
client_error(KqMcRequest *req, const char *why, gboolean close_after)
{
  req->error = why;
  req->close_after = close_after;
  return KQ_PARSE_CLIENT_ERROR;
}

static void
set_queue(KqMcRequest *req, KqWord w)
{
  req->queue = w.p;
  req->queue_len = w.n;
}

/* "q/opt/opt...": the queue is the part before the first '/'. */
static KqParseResult
parse_get_key(KqWord key, KqMcRequest *req)
{
  const char *end = key.p + key.n;
  const char *opt = memchr(key.p, '/', key.n);

  req->key = key.p;
  req->key_len = key.n;
  req->queue = key.p;
  req->queue_len = opt ? (gsize) (opt - key.p) : key.n;

  while (opt != NULL) {
    opt++; /* past the '/' */
    const char *next = memchr(opt, '/', (gsize) (end - opt));
    gsize n = (gsize) ((next ? next : end) - opt);

    if (n >= 2 && opt[0] == 't' && opt[1] == '=') {
      KqWord value = { opt + 2, n - 2 };
      if (!parse_signed_count(value, &req->timeout_ms))
        return client_error(req, "bad timeout", TRUE);
      if (req->timeout_ms < 0)
        req->timeout_ms = 0; /* a deadline already passed: no waiting */
    } else if (n == 4 && memcmp(opt, "open", 4) == 0) {
      req->open = TRUE;
    } else if (n == 5 && memcmp(opt, "close", 5) == 0) {
      req->close = TRUE;
    } else if (n == 5 && memcmp(opt, "abort", 5) == 0) {
      req->abort = TRUE;
    } else if (n == 4 && memcmp(opt, "peek", 4) == 0) {
      req->peek = TRUE;
    }
    opt = next;
  }

  if (req->queue_len == 0)
    return client_error(req, "queue name required", TRUE);
  if (((req->peek || req->abort) && (req->open || req->close)) || (req->peek && req->abort))
    return client_error(req, "conflicting get options", TRUE);
  return KQ_PARSE_OK;
}

/* The set's data block starts at buf[line_end]. */
static KqParseResult
parse_set(const char *buf, gsize len, gsize line_end, const KqWord *words, guint nwords,
          gsize max_data, KqMcRequest *req, gsize *consumed)
{
  guint64 bytes, flags;

  /* Without a usable <bytes> the data block cannot be skipped: drop the line and close. */
  *consumed = line_end;
  if (nwords < 5)
    return client_error(req, "bad command line format", TRUE);
  if (!kq_parse_decimal(words[4].p, words[4].n, G_MAXUINT64, &bytes))
    return client_error(req, "bad data length", TRUE);
  if (bytes > max_data)
    return client_error(req, "object too large", TRUE);

  /* Written so that bytes + 2 cannot overflow. */
  gsize avail = len - line_end;
  if (avail < 2 || avail - 2 < bytes) {
    *consumed = 0;
    if (bytes <= G_MAXSIZE - 2 - line_end)
      req->awaiting = line_end + (gsize) bytes + 2;
    return KQ_PARSE_NEED_MORE;
  }

  const char *data = buf + line_end;
  *consumed = line_end + (gsize) bytes + 2;
  if (data[bytes] != '\r' || data[bytes + 1] != '\n')
    return client_error(req, "bad data chunk", TRUE);

  if (!kq_parse_decimal(words[2].p, words[2].n, G_MAXUINT32, &flags) ||
      !parse_exptime(words[3], &req->exptime))
    return client_error(req, "bad command line format", FALSE);

  set_queue(req, words[1]);
  req->flags = (guint32) flags;
  req->data = data;
  req->data_len = (gsize) bytes;
  return KQ_PARSE_OK;
}

KqParseResult
kq_mc_parse(const char *buf, gsize len, gsize max_data, KqMcRequest *req, gsize *consumed)
{
  KqWord words[MAX_WORDS];
  KqMcCommand command;

  *req = (KqMcRequest) { .timeout_ms = -1, .seconds = -1, .count = -1 };
  *consumed = 0;
  if (len == 0)
    return KQ_PARSE_NEED_MORE;

  const char *nl = memchr(buf, '\n', MIN(len, (gsize) KQ_MC_MAX_LINE));
  if (nl == NULL) {
    if (len < KQ_MC_MAX_LINE)
      return KQ_PARSE_NEED_MORE;
    /* Nothing tells where the next request starts: drop everything and close. */
    *consumed = len;
    return client_error(req, "line too long", TRUE);
  }

  gsize line_end = (gsize) (nl - buf) + 1;
  gsize n = line_end - 1;
  if (n > 0 && buf[n - 1] == '\r')
    n--;
  while (n > 0 && buf[n - 1] == ' ')
    n--;

  guint nwords = kq_parse_split_words(buf, n, words, MAX_WORDS);
  *consumed = line_end;
  if (nwords == 0 || !lookup_command(words[0], &command))
    return client_error(req, "unknown command", TRUE);
  req->command = command;
  req->noreply = is_noreply(command, words, nwords);

  switch (command) {
  case KQ_MC_SET:
    return parse_set(buf, len, line_end, words, nwords, max_data, req, consumed);

  case KQ_MC_GET:
    if (nwords < 2)
      return client_error(req, "queue name required", FALSE);
    return parse_get_key(words[1], req);

  case KQ_MC_MONITOR:
    if (nwords < 3)
      return client_error(req, "queue name and seconds required", FALSE);
    if (!parse_signed_count(words[2], &req->seconds))
      return client_error(req, "bad seconds", FALSE);
    if (nwords > 3 && !parse_signed_count(words[3], &req->count))
      return client_error(req, "bad max items", FALSE);
    if (req->count < 0)
      req->count = -1; /* no limit but the open-read limit, as when not given */
    set_queue(req, words[1]);
    break;

  case KQ_MC_CONFIRM:
    if (nwords < 3)
      return client_error(req, "queue name and count required", FALSE);
    if (!parse_signed_count(words[2], &req->count))
      return client_error(req, "bad count", FALSE);
    set_queue(req, words[1]);
    break;

  case KQ_MC_DELETE:
  case KQ_MC_FLUSH:
  case KQ_MC_FLUSH_EXPIRED:
    if (nwords < 2)
      return client_error(req, "queue name required", FALSE);
    set_queue(req, words[1]);
    break;

  case KQ_MC_DUMP_STATS:
    /* The queue names, space separated, as the client sent them. */
    if (nwords > 1) {
      req->args = words[1].p;
      req->args_len = n - (gsize) (words[1].p - buf);
    }
    break;

  case KQ_MC_STATUS:
    /* Kestrel read only the first argument as the new status. */
    if (nwords > 1) {
      req->args = words[1].p;
      req->args_len = words[1].n;
    }
    break;

  default:
    break;
  }
  return KQ_PARSE_OK;
}
