/* Size-only journal replay model shared by kestrel-qdump and kestrel-qpack --check. */
#include "replay-model.h"
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

void tool_replay_init(ToolReplay *r)
{
  *r = (ToolReplay){ 0 };
  r->capacity = 64;
  r->sizes = g_new(guint32, r->capacity);
  r->open = g_hash_table_new(NULL, NULL);
}

void tool_replay_clear(ToolReplay *r)
{
  g_free(r->sizes);
  g_hash_table_unref(r->open);
  *r = (ToolReplay){ 0 };
}

void tool_replay_reset(ToolReplay *r)
{
  tool_replay_clear(r);
  tool_replay_init(r);
}

static void grow(ToolReplay *r)
{
  if (r->count < r->capacity)
    return;
  guint32 *bigger = g_new(guint32, r->capacity * 2);
  for (gsize i = 0; i < r->count; i++)
    bigger[i] = r->sizes[(r->head + i) % r->capacity];
  g_free(r->sizes);
  r->sizes = bigger;
  r->head = 0;
  r->capacity *= 2;
}

static void push_back(ToolReplay *r, guint32 size)
{
  grow(r);
  r->sizes[(r->head + r->count) % r->capacity] = size;
  r->count++;
  r->bytes += size;
}

static void push_front(ToolReplay *r, guint32 size)
{
  grow(r);
  r->head = (r->head + r->capacity - 1) % r->capacity;
  r->sizes[r->head] = size;
  r->count++;
  r->bytes += size;
}

static gboolean pop_front(ToolReplay *r, guint32 *size)
{
  if (r->count == 0)
    return FALSE;
  *size = r->sizes[r->head];
  r->head = (r->head + 1) % r->capacity;
  r->count--;
  r->bytes -= *size;
  return TRUE;
}

static gchar *open_head(ToolReplay *r, const KqJournalRecord *rec, guint32 xid)
{
  guint32 size;
  if (!pop_front(r, &size))
    return g_strdup_printf("%s of an empty queue (ignored)", kq_journal_op_name(rec->op));
  gchar *problem = NULL;
  if (g_hash_table_contains(r->open, GUINT_TO_POINTER(xid)))
    problem = g_strdup_printf("%s opens xid %u, which is already open (that read is lost)",
                              kq_journal_op_name(rec->op), xid);
  g_hash_table_replace(r->open, GUINT_TO_POINTER(xid), GUINT_TO_POINTER(size));
  return problem;
}

/* Finish an open read; NULL when it was open, else the problem. */
static gchar *finish_open(ToolReplay *r, const KqJournalRecord *rec, guint32 *size)
{
  gpointer value;
  if (!g_hash_table_lookup_extended(r->open, GUINT_TO_POINTER(rec->xid), NULL, &value))
    return g_strdup_printf("%s of xid %u, which is not open (ignored)",
                           kq_journal_op_name(rec->op), rec->xid);
  *size = GPOINTER_TO_UINT(value);
  g_hash_table_remove(r->open, GUINT_TO_POINTER(rec->xid));
  return NULL;
}

gchar *tool_replay_apply(ToolReplay *r, const KqJournalRecord *rec)
{
  guint32 size = 0;
  gchar *problem = NULL;
  switch (rec->op) {
  case KQ_OP_ADD:
  case KQ_OP_ADDX:
  case KQ_OP_ADD_XID:
    push_back(r, (guint32)rec->data_len);
    r->added++;
    return NULL;
  case KQ_OP_REMOVE:
    if (!pop_front(r, &size))
      return g_strdup("REMOVE on an empty queue (ignored)");
    r->removed++;
    return NULL;
  case KQ_OP_REMOVE_TENTATIVE:
    return open_head(r, rec, 0);
  case KQ_OP_REMOVE_TENTATIVE_XID:
    r->last_xid = rec->xid;
    return open_head(r, rec, rec->xid);
  case KQ_OP_SAVE_XID:
    r->last_xid = rec->xid;
    return NULL;
  case KQ_OP_UNREMOVE:
    problem = finish_open(r, rec, &size);
    if (problem == NULL)
      push_front(r, size);
    return problem;
  case KQ_OP_CONFIRM_REMOVE:
    problem = finish_open(r, rec, &size);
    if (problem == NULL)
      r->removed++;
    return problem;
  case KQ_OP_CONTINUE:
    problem = finish_open(r, rec, &size);
    if (problem == NULL)
      r->removed++;
    push_back(r, (guint32)rec->data_len);
    r->added++;
    return problem;
  }
  return g_strdup_printf("unknown opcode %d", (int)rec->op);
}

static gint xid_compare(gconstpointer a, gconstpointer b)
{
  guint32 x = *(const guint32 *)a, y = *(const guint32 *)b;
  return x < y ? -1 : x > y ? 1 : 0;
}

GArray *tool_replay_open_xids(ToolReplay *r)
{
  GArray *xids = g_array_sized_new(FALSE, FALSE, sizeof(guint32), g_hash_table_size(r->open));
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init(&it, r->open);
  while (g_hash_table_iter_next(&it, &key, NULL)) {
    guint32 xid = GPOINTER_TO_UINT(key);
    g_array_append_val(xids, xid);
  }
  g_array_sort(xids, xid_compare);
  return xids;
}

gint64 tool_replay_open_bytes(ToolReplay *r)
{
  gint64 bytes = 0;
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init(&it, r->open);
  while (g_hash_table_iter_next(&it, NULL, &value))
    bytes += GPOINTER_TO_UINT(value);
  return bytes;
}

gchar *tool_replay_format_xids(ToolReplay *r)
{
  g_autoptr(GArray) xids = tool_replay_open_xids(r);
  GString *s = g_string_new(NULL);
  for (guint i = 0; i < xids->len; i++)
    g_string_append_printf(s, "%s%u", i ? ", " : "", g_array_index(xids, guint32, i));
  return g_string_free(s, FALSE);
}

gchar *tool_torn_reason(const gchar *path, gint64 offset)
{
  guint8 head[9];  /* opcode + xid + block size: enough to tell a bad size from a short one */
  ssize_t n = -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    do
      n = pread(fd, head, sizeof(head), (off_t)offset);
    while (n < 0 && errno == EINTR);
    close(fd);
  }
  if (n <= 0)
    return g_strdup("cannot read the record");
  if (head[0] >= KQ_JOURNAL_OP_COUNT)
    return g_strdup_printf("unknown opcode 0x%02x", head[0]);
  KqJournalRecord rec;
  if (kq_journal_decode(head, (gsize)n, &rec) == KQ_DECODE_BAD)
    return g_strdup_printf("%s with an impossible item size", kq_journal_op_name(head[0]));
  return g_strdup_printf("%s record cut short", kq_journal_op_name(head[0]));
}

gchar *tool_format_time(gint64 ms)
{
  if (ms == 0)
    return g_strdup("none");
  gint64 secs = ms / 1000, millis = ms % 1000;
  if (millis < 0) {
    secs--;
    millis += 1000;
  }
  time_t t = (time_t)secs;
  struct tm tm;
  gchar buf[64];
  if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0 ||
      strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
    return g_strdup_printf("%" G_GINT64_FORMAT "ms", ms);
  return g_strdup_printf("%s.%03dZ", buf, (int)millis);
}
