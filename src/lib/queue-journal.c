/* The queue's journal under the lock: rewriting it to the queue's state, the SPEC 7 lifecycle
 * (rewrite, compact, rotate), and replaying it when the queue opens. Lock discipline as in
 * queue.c. */
#include "queue-private.h"
#include <kestrel/clock.h>
#include <kestrel/error.h>

/* ---------- journal lifecycle under the lock ---------- */

typedef struct {
  KqQueue *q;
  gboolean queued;  /* write the queued items, not only the open reads (FALSE: a flush) */
  GError **error;
  gboolean ok;
  KqJournalSink *sink;
  gint64 rb_start;  /* offset in the new file where items not in memory begin */
} DumpState;

static void dump_store_item(gint64 add_time, gint64 expiry, const guint8 *data, gsize len,
                            gpointer user_data)
{
  DumpState *s = user_data;
  if (s->ok)
    s->ok = kq_journal_sink_addx(s->sink, add_time, expiry, data, len, s->error);
}

/* Open xids as a sorted-able array (GLib 2.74 has no g_hash_table_get_keys_as_ptr_array). */
static GPtrArray *open_xids_locked(KqQueue *q)
{
  GPtrArray *xids = g_ptr_array_sized_new(g_hash_table_size(q->open));
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init(&it, q->open);
  while (g_hash_table_iter_next(&it, &key, NULL))
    g_ptr_array_add(xids, key);
  return xids;
}

static gint open_xid_compare(gconstpointer a, gconstpointer b)
{
  guint32 x = GPOINTER_TO_UINT(*(gconstpointer const *)a);
  guint32 y = GPOINTER_TO_UINT(*(gconstpointer const *)b);
  return x < y ? -1 : x > y ? 1 : 0;
}

static gboolean dump_state(KqJournalSink *sink, const gchar *rotated_path, gpointer user_data,
                           GError **error)
{
  DumpState *s = user_data;
  KqQueue *q = s->q;
  s->sink = sink;
  s->error = error;
  s->ok = TRUE;
  /* open reads first, as ADDX + REMOVE_TENTATIVE_XID, in xid order */
  g_autoptr(GPtrArray) xids = open_xids_locked(q);
  g_ptr_array_sort(xids, open_xid_compare);
  for (guint i = 0; i < xids->len && s->ok; i++) {
    KqOpenRead *open = g_hash_table_lookup(q->open, xids->pdata[i]);
    s->ok = kq_journal_sink_addx(sink, open->item->add_time, open->item->expiry,
                                 open->item->data, open->item->len, error) &&
            kq_journal_sink_xid(sink, KQ_OP_REMOVE_TENTATIVE_XID,
                                GPOINTER_TO_UINT(xids->pdata[i]), error);
  }
  if (s->ok && s->queued)
    kq_item_store_foreach(&q->store, dump_store_item, s);
  s->rb_start = kq_journal_sink_offset(sink);
  if (s->ok && s->queued && q->rb_path != NULL) {
    /* the live file was just renamed to rotated_path */
    if (g_strcmp0(q->rb_path, kq_journal_get_live_path(q->journal)) == 0) {
      g_free(q->rb_path);
      q->rb_path = g_strdup(rotated_path);
    }
    s->ok = dump_read_behind(q, sink, rotated_path, error);
  }
  return s->ok;
}

/* Rewrite the journal to the queue's state: open reads, then the queued items unless `queued`
 * is FALSE (a flush, which drops them once this succeeded). */
gboolean rewrite_locked(KqQueue *q, gboolean queued, GError **error)
{
  DumpState s = { .q = q, .queued = queued };
  g_autofree gchar *state_path = NULL;
  g_clear_pointer(&q->rb_reader, kq_journal_reader_free);
  if (!kq_journal_rewrite(q->journal, dump_state, &s, &state_path, error))
    return FALSE;
  if (q->rb_path != NULL) {
    g_free(q->rb_path);
    q->rb_path = g_steal_pointer(&state_path);
    q->rb_offset = s.rb_start;
  }
  q->journal_rewrites++;
  q->last_compact_ms = kq_clock_now_ms();
  q->rb_pack_wanted = FALSE;
  return TRUE;
}

/* An empty queue's journal that is one live file and whose queue never syncs can be deleted
 * and started again instead of rewritten: no fsync of the old file, no pack, no directory sync
 * (kq_journal_restart_empty). Under a steady flow that keeps the queue drained this runs every
 * defaultJournalSize of writes, on the thread of the request that found the queue empty. */
static gboolean journal_is_disposable(KqQueue *q)
{
  return q->settings.sync_journal_ms < 0 && q->items == 0 && g_hash_table_size(q->open) == 0 &&
         q->rb_path == NULL && kq_journal_archived_size(q->journal) == 0;
}

static gboolean restart_empty_locked(KqQueue *q, GError **error)
{
  if (!kq_journal_restart_empty(q->journal, error))
    return FALSE;
  q->journal_rewrites++;
  q->last_compact_ms = kq_clock_now_ms();
  q->rb_pack_wanted = FALSE;
  return TRUE;
}

/* SPEC 7 lifecycle: rewrite an empty queue's big journal, compact a journal that outgrew
 * maxJournalSize, rotate a live file past maxMemorySize. */
void check_journal_locked(KqQueue *q)
{
  if (!has_journal(q))
    return;
  g_autoptr(GError) error = NULL;
  gint64 live = kq_journal_size(q->journal);
  gint64 total = live + kq_journal_archived_size(q->journal);
  gboolean ok = TRUE;
  if (q->items == 0 && live >= q->settings.default_journal_size) {
    ok = journal_is_disposable(q) ? restart_empty_locked(q, &error)
                                  : rewrite_locked(q, TRUE, &error);
  } else if (total > q->settings.max_journal_size && (q->rb_path == NULL || q->rb_pack_wanted) &&
             kq_clock_now_ms() - q->last_compact_ms >= q->settings.min_journal_compact_delay_ms) {
    ok = rewrite_locked(q, TRUE, &error);
  } else if (live > q->settings.max_memory_size) {
    g_autofree gchar *rotated = NULL;
    ok = kq_journal_rotate(q->journal, &rotated, &error);
    if (ok) {
      q->journal_rotations++;
      if (g_strcmp0(q->rb_path, kq_journal_get_live_path(q->journal)) == 0) {
        g_free(q->rb_path);
        q->rb_path = g_steal_pointer(&rotated);
      }
    }
  }
  if (!ok)
    g_warning("queue '%s': journal maintenance failed: %s", q->name, error->message);
}

/* ---------- replay ---------- */

typedef struct {
  KqQueue *q;
  const gchar *path;
  gint64 offset;   /* of the record being applied */
} Replay;

static void replay_add(Replay *r, gint64 add_time, gint64 expiry, const guint8 *data, gsize len)
{
  KqQueue *q = r->q;
  if (q->rb_path == NULL && q->store.bytes + (gint64)len > q->settings.max_memory_size &&
      q->store.count > 0) {
    q->rb_path = g_strdup(r->path);
    q->rb_offset = r->offset;
  }
  if (q->rb_path == NULL)
    kq_item_store_push(&q->store, add_time, expiry, data, len, NULL);
  q->items++;
  q->bytes += (gint64)len;
}

static void replay_open(Replay *r, guint32 xid)
{
  KqQueue *q = r->q;
  KqStoreHead head;
  if (!head_locked(q, &head)) {
    g_warning("queue '%s': %s offset %" G_GINT64_FORMAT ": open read of an empty queue ignored",
              q->name, r->path, r->offset);
    return;
  }
  KqItem *item = kq_item_new(head.data, head.len, head.add_time, head.expiry);
  item->xid = xid;
  pop_head_locked(q, head.len);
  KqOpenRead *open = g_new(KqOpenRead, 1);
  open->item = item;
  open->opened_at = kq_clock_now_ms();
  g_hash_table_replace(q->open, GUINT_TO_POINTER(xid), open);
}

static void replay_record(Replay *r, const KqJournalRecord *rec)
{
  KqQueue *q = r->q;
  KqStoreHead head;
  KqOpenRead *open;
  switch (rec->op) {
  case KQ_OP_ADD:
    replay_add(r, kq_clock_now_ms(), rec->expiry, rec->data, rec->data_len);
    break;
  case KQ_OP_ADDX:
  case KQ_OP_ADD_XID:
    replay_add(r, rec->add_time, rec->expiry, rec->data, rec->data_len);
    break;
  case KQ_OP_REMOVE:
    if (head_locked(q, &head))
      pop_head_locked(q, head.len);
    break;
  case KQ_OP_REMOVE_TENTATIVE:
    /* legacy opens carry no xid: 0, or the next one when 0 is taken, so no item is lost */
    replay_open(r, g_hash_table_contains(q->open, GUINT_TO_POINTER(0)) ? next_xid_locked(q) : 0);
    break;
  case KQ_OP_REMOVE_TENTATIVE_XID:
    replay_open(r, rec->xid);
    q->last_xid = rec->xid;
    break;
  case KQ_OP_SAVE_XID:
    q->last_xid = rec->xid;
    break;
  case KQ_OP_UNREMOVE:
    open = g_hash_table_lookup(q->open, GUINT_TO_POINTER(rec->xid));
    if (open != NULL) {
      kq_item_store_push_front(&q->store, open->item);
      q->items++;
      q->bytes += (gint64)open->item->len;
      g_hash_table_remove(q->open, GUINT_TO_POINTER(rec->xid));
    }
    break;
  case KQ_OP_CONFIRM_REMOVE:
    g_hash_table_remove(q->open, GUINT_TO_POINTER(rec->xid));
    break;
  case KQ_OP_CONTINUE:
    g_hash_table_remove(q->open, GUINT_TO_POINTER(rec->xid));
    replay_add(r, rec->add_time, rec->expiry, rec->data, rec->data_len);
    break;
  }
}

static gboolean replay_file(KqQueue *q, const gchar *path, GError **error)
{
  g_autoptr(KqJournalReader) reader = kq_journal_reader_open(path, 0, error);
  if (reader == NULL)
    return FALSE;
  Replay r = { q, path, 0 };
  KqJournalRecord rec;
  for (;;) {
    r.offset = kq_journal_reader_offset(reader);
    KqReadResult res = kq_journal_reader_next(reader, &rec, error);
    if (res == KQ_READ_RECORD) {
      replay_record(&r, &rec);
      continue;
    }
    if (res == KQ_READ_EOF && kq_journal_reader_reserved(reader) > 0) {
      g_message("journal %s: %" G_GINT64_FORMAT " bytes of reserved space after the last record "
                "(the server was stopped abruptly); removing them", path,
                kq_journal_reader_reserved(reader));
      return kq_journal_truncate_file(path, r.offset, error);
    }
    if (res == KQ_READ_EOF)
      return TRUE;
    if (res == KQ_READ_ERROR)
      return FALSE;
    /* the bytes cut off are kept in a side file first: nothing is destroyed */
    return kq_journal_files_cut_torn_tail(kq_journal_get_dir(q->journal), q->name, path,
                                          r.offset, kq_journal_reader_at_unfinished(reader),
                                          error);
  }
}

static gint xid_desc(gconstpointer a, gconstpointer b)
{
  return -open_xid_compare(a, b);
}

gboolean replay_locked(KqQueue *q, GError **error)
{
  const gchar *dir = kq_journal_get_dir(q->journal);
  if (!kq_journal_files_cleanup(dir, q->name, error))
    return FALSE;
  g_autoptr(GPtrArray) rotated = kq_journal_files_rotated(dir, q->name);
  for (guint i = 0; i < rotated->len; i++) {
    g_autofree gchar *path = g_build_filename(dir, rotated->pdata[i], NULL);
    if (!replay_file(q, path, error))
      return FALSE;
  }
  const gchar *live = kq_journal_get_live_path(q->journal);
  if (g_file_test(live, G_FILE_TEST_EXISTS) && !replay_file(q, live, error))
    return FALSE;
  /* A read-behind reader in the live file may hold the reserved space replay just cut off,
   * where new records are about to go: it starts again from its offset. */
  g_clear_pointer(&q->rb_reader, kq_journal_reader_free);
  if (!kq_journal_open(q->journal, error))
    return FALSE;
  /* Reads left open go back to the head; highest xid first so the oldest ends up in front. */
  g_autoptr(GPtrArray) xids = open_xids_locked(q);
  g_ptr_array_sort(xids, xid_desc);
  for (guint i = 0; i < xids->len; i++) {
    guint32 xid = GPOINTER_TO_UINT(xids->pdata[i]);
    KqOpenRead *open = g_hash_table_lookup(q->open, xids->pdata[i]);
    if (!kq_journal_write_xid(q->journal, KQ_OP_UNREMOVE, xid, error))
      return FALSE;
    kq_item_store_push_front(&q->store, open->item);
    q->items++;
    q->bytes += (gint64)open->item->len;
    g_hash_table_remove(q->open, xids->pdata[i]);
  }
  q->total_items = q->items;
  q->put_bytes = q->bytes;
  return TRUE;
}
