/* Read-behind (SPEC 7): a queue holding more than maxMemorySize keeps only its head in memory
 * and reads the rest back from its journal files as the head is taken. Lock discipline as in
 * queue.c: everything here expects q->lock held. */
#include "queue-private.h"
#include <kestrel/error.h>

static gint64 rb_pending_locked(KqQueue *q)
{
  return q->items - q->store.count;
}

void rb_stop_locked(KqQueue *q)
{
  g_clear_pointer(&q->rb_reader, kq_journal_reader_free);
  g_clear_pointer(&q->rb_path, g_free);
  q->rb_offset = 0;
}

/* The journal file that follows `path` in replay order, NULL after the live file. */
static gchar *next_journal_file(KqQueue *q, const gchar *path)
{
  const gchar *live = kq_journal_get_live_path(q->journal);
  if (g_strcmp0(path, live) == 0)
    return NULL;
  g_autofree gchar *base = g_path_get_basename(path);
  gint64 ts = 0;
  kq_journal_classify(q->name, base, &ts);
  g_autoptr(GPtrArray) rotated = kq_journal_files_rotated(kq_journal_get_dir(q->journal), q->name);
  for (guint i = 0; i < rotated->len; i++) {
    gint64 other = 0;
    kq_journal_classify(q->name, rotated->pdata[i], &other);
    if (other > ts)
      return g_build_filename(kq_journal_get_dir(q->journal), rotated->pdata[i], NULL);
  }
  return g_strdup(live);
}

static gboolean is_add_record(const KqJournalRecord *r)
{
  return r->op == KQ_OP_ADD || r->op == KQ_OP_ADDX || r->op == KQ_OP_ADD_XID ||
         r->op == KQ_OP_CONTINUE;
}

/* Where the read-behind reader must stop in its file. The live file, while the journal has it
 * open, holds reserved space after its records: read only the records. Any other file (the live
 * file during replay, before the journal opens it; a file rotated since the reader last looked)
 * is read to its end, so a limit set before a rotation never hides records. */
static gint64 rb_read_limit_locked(KqQueue *q)
{
  if (q->journal != NULL && kq_journal_is_open(q->journal) &&
      g_strcmp0(q->rb_path, kq_journal_get_live_path(q->journal)) == 0)
    return kq_journal_size(q->journal);
  return -1;
}

/* Read-behind: bring items from the journal into memory until maxMemorySize is held or the
 * reader has caught up with every queued item. */
void rb_fill_locked(KqQueue *q)
{
  while (q->rb_path != NULL && rb_pending_locked(q) > 0 &&
         q->store.bytes < q->settings.max_memory_size) {
    g_autoptr(GError) error = NULL;
    if (q->rb_reader == NULL) {
      q->rb_reader = kq_journal_reader_open(q->rb_path, q->rb_offset, &error);
      if (q->rb_reader == NULL)
        goto lost;
    }
    kq_journal_reader_set_limit(q->rb_reader, rb_read_limit_locked(q));
    KqJournalRecord rec;
    KqReadResult r = kq_journal_reader_next(q->rb_reader, &rec, &error);
    if (r == KQ_READ_RECORD) {
      q->rb_offset = kq_journal_reader_offset(q->rb_reader);
      if (is_add_record(&rec))
        kq_item_store_push(&q->store, rec.add_time, rec.expiry, rec.data, rec.data_len, NULL);
      continue;
    }
    if (r == KQ_READ_EOF) {
      g_autofree gchar *next = next_journal_file(q, q->rb_path);
      if (next == NULL)
        goto lost;
      g_clear_pointer(&q->rb_reader, kq_journal_reader_free);
      g_free(q->rb_path);
      q->rb_path = g_steal_pointer(&next);
      q->rb_offset = 0;
      if (q->journal != NULL &&
          kq_journal_size(q->journal) + kq_journal_archived_size(q->journal) >
            q->settings.max_journal_size)
        q->rb_pack_wanted = TRUE;
      continue;
    }
  lost:
    g_critical("queue '%s': read-behind failed at %s offset %" G_GINT64_FORMAT
               " (%s); %" G_GINT64_FORMAT " items could not be read back",
               q->name, q->rb_path ? q->rb_path : "?", q->rb_offset,
               error ? error->message : "unexpected end of journal", rb_pending_locked(q));
    q->items = q->store.count;
    q->bytes = q->store.bytes;
    break;
  }
  if (q->rb_path != NULL && rb_pending_locked(q) <= 0)
    rb_stop_locked(q);
}

/* Copy the items not in memory, from the read-behind position through `last_path`. */
gboolean dump_read_behind(KqQueue *q, KqJournalSink *sink, const gchar *last_path,
                          GError **error)
{
  g_autofree gchar *path = g_strdup(q->rb_path);
  gint64 offset = q->rb_offset;
  gint64 wanted = rb_pending_locked(q);
  while (path != NULL && wanted > 0) {
    g_autoptr(KqJournalReader) r = kq_journal_reader_open(path, offset, error);
    if (r == NULL)
      return FALSE;
    KqJournalRecord rec;
    KqReadResult res = KQ_READ_EOF;
    while (wanted > 0 && (res = kq_journal_reader_next(r, &rec, error)) == KQ_READ_RECORD) {
      if (!is_add_record(&rec))
        continue;
      if (!kq_journal_sink_addx(sink, rec.add_time, rec.expiry, rec.data, rec.data_len, error))
        return FALSE;
      wanted--;
    }
    if (wanted == 0)
      break;
    if (res == KQ_READ_ERROR)
      return FALSE;
    if (g_strcmp0(path, last_path) == 0)
      break;
    gchar *next = next_journal_file(q, path);
    g_free(path);
    path = next;
    offset = 0;
  }
  if (wanted > 0) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_CORRUPT,
                "queue '%s': %" G_GINT64_FORMAT " items behind memory could not be read",
                q->name, wanted);
    return FALSE;
  }
  return TRUE;
}
