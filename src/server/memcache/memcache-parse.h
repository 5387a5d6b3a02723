/* Memcache request parser (SPEC 2): a pure function over a byte buffer, no socket, no engine. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

/* Longest request line accepted (data blocks excluded); longer lines are an error. */
#define KQ_MC_MAX_LINE 2048

typedef enum {
  KQ_MC_SET, KQ_MC_GET, KQ_MC_MONITOR, KQ_MC_CONFIRM, KQ_MC_DELETE, KQ_MC_FLUSH,
  KQ_MC_FLUSH_ALL, KQ_MC_FLUSH_EXPIRED, KQ_MC_FLUSH_ALL_EXPIRED, KQ_MC_STATS,
  KQ_MC_DUMP_STATS, KQ_MC_DUMP_CONFIG, KQ_MC_STATUS, KQ_MC_VERSION, KQ_MC_RELOAD,
  KQ_MC_SHUTDOWN, KQ_MC_QUIT,
} KqMcCommand;

typedef enum {
  KQ_PARSE_OK,          /* one whole request decoded; *consumed bytes belong to it */
  KQ_PARSE_NEED_MORE,   /* the buffer ends before the request does */
  KQ_PARSE_CLIENT_ERROR,/* reply "CLIENT_ERROR <error>" (then close if close_after) */
  KQ_PARSE_ERROR,       /* reply "ERROR" (then close if close_after) */
} KqParseResult;

typedef struct {
  KqMcCommand command;
  const char *queue;     /* points into the buffer; not NUL-terminated */
  gsize queue_len;
  /* get: the whole key as sent, options included (strict mode echoes it) */
  const char *key;
  gsize key_len;
  /* set, delete, flush_all: the line ends in "noreply" (honoured in strict mode only) */
  gboolean noreply;
  /* get options */
  gint64 timeout_ms;     /* -1: no t= option */
  gboolean open, close, abort, peek;
  /* set */
  guint32 flags;
  gint64 exptime;        /* as sent: 0 never, < 1000000 relative seconds, else absolute */
  const char *data;      /* data block (without the trailing \r\n) */
  gsize data_len;
  /* NEED_MORE on a set whose line is whole: the length of the whole request (line, data and
   * its \r\n), so the input can be given room for it at once; 0 when not known */
  gsize awaiting;
  /* monitor: seconds (may be negative: already over) and max items (-1 = not given, or given
   * negative: no limit); confirm: count in `count` (may be negative) */
  gint64 seconds;
  gint64 count;
  /* status <new>, dump_stats q1 q2 ...: the rest of the line after the command word */
  const char *args;
  gsize args_len;
  /* error text for KQ_PARSE_CLIENT_ERROR (static string) and whether to close afterwards */
  const char *error;
  gboolean close_after;
} KqMcRequest;

/* Decode one request from buf[0..len). max_data bounds a set's <bytes> (larger is a
 * CLIENT_ERROR at once, before the data arrives). On NEED_MORE nothing is consumed. On an error
 * *consumed is how much to drop before parsing again (the offending line, and for a set with a
 * bad data block, the block). */
KqParseResult kq_mc_parse(const char *buf, gsize len, gsize max_data, KqMcRequest *req,
                          gsize *consumed);

/* The one checked number reader of the wire parsers: all of s[0..n) must be decimal digits (no
 * sign, no spaces) and the value at most max. FALSE on anything else, overflow included. */
gboolean kq_parse_decimal(const char *s, gsize n, guint64 max, guint64 *out);

/* A word of a request line: points into the buffer, not NUL-terminated. */
typedef struct {
  const char *p;
  gsize n;
} KqWord;

/* Split line[0..n) at runs of spaces into at most max words; returns how many it found.
 * Words beyond max are not looked at (callers ignore extra arguments). */
guint kq_parse_split_words(const char *line, gsize n, KqWord *words, guint max);

G_END_DECLS
