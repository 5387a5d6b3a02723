/* Registry of Thrift open reads: see thrift-reads.h. */
#include "config.h"

#include "thrift-reads.h"

typedef struct {
  guint64 id;
  guint64 owner;
  KqQueue *queue;
  guint32 xid;
  GSource *timer;
  KqThriftReads *reads;
} OpenRead;

struct _KqThriftReads {
  GMainContext *context;
  GHashTable *by_id;   /* guint64 id -> OpenRead (owned) */
  GHashTable *counts;  /* "owner/queue" -> count (GUINT_TO_POINTER) */
  guint64 next_id;
};

static gchar *
count_key(guint64 owner, const gchar *queue_name)
{
  return g_strdup_printf("%" G_GUINT64_FORMAT "/%s", owner, queue_name);
}

static void
count_add(KqThriftReads *reads, guint64 owner, const gchar *queue_name, gint delta)
{
  g_autofree gchar *key = count_key(owner, queue_name);
  gint count = GPOINTER_TO_INT(g_hash_table_lookup(reads->counts, key)) + delta;

  if (count > 0)
    g_hash_table_replace(reads->counts, g_steal_pointer(&key), GINT_TO_POINTER(count));
  else
    g_hash_table_remove(reads->counts, key);
}

static void
open_read_free(gpointer data)
{
  OpenRead *read = data;
  if (read->timer != NULL) {
    g_source_destroy(read->timer);
    g_source_unref(read->timer);
  }
  kq_queue_unref(read->queue);
  g_free(read);
}

/* Take `id` out of the registry; the caller finishes it in the engine and frees it. */
static OpenRead *
steal(KqThriftReads *reads, guint64 id)
{
  OpenRead *read = NULL;
  if (!g_hash_table_steal_extended(reads->by_id, &id, NULL, (gpointer *)&read))
    return NULL;
  if (read->owner != 0)
    count_add(reads, read->owner, kq_queue_get_name(read->queue), -1);
  return read;
}

static gboolean
auto_abort_cb(gpointer data)
{
  OpenRead *read = data;
  KqThriftReads *reads = read->reads;
  guint64 id = read->id;

  read = steal(reads, id);
  if (read != NULL) {
    g_autoptr(GError) error = NULL;
    if (!kq_queue_abort(read->queue, read->xid, &error) && error != NULL)
      g_debug("auto-abort of read %" G_GUINT64_FORMAT ": %s", id, error->message);
    open_read_free(read);
  }
  return G_SOURCE_REMOVE;
}

KqThriftReads *
kq_thrift_reads_new(GMainContext *context)
{
  KqThriftReads *reads = g_new0(KqThriftReads, 1);

  reads->context = g_main_context_ref(context);
  reads->by_id = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, open_read_free);
  reads->counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  /* Start from the clock (microseconds) so ids from before a restart do not match new reads. */
  reads->next_id = (guint64)g_get_real_time();
  if (reads->next_id == 0)
    reads->next_id = 1;
  return reads;
}

void
kq_thrift_reads_free(KqThriftReads *reads)
{
  if (reads == NULL)
    return;
  g_hash_table_destroy(reads->by_id);
  g_hash_table_destroy(reads->counts);
  g_main_context_unref(reads->context);
  g_free(reads);
}

guint64
kq_thrift_reads_add(KqThriftReads *reads, guint64 owner, KqQueue *queue, guint32 xid,
                    guint auto_abort_ms)
{
  OpenRead *read = g_new0(OpenRead, 1);

  read->id = reads->next_id++;
  read->owner = owner;
  read->queue = kq_queue_ref(queue);
  read->xid = xid;
  read->reads = reads;
  read->timer = g_timeout_source_new(auto_abort_ms);
  g_source_set_callback(read->timer, auto_abort_cb, read, NULL);
  g_source_attach(read->timer, reads->context);
  g_hash_table_insert(reads->by_id, &read->id, read);
  if (owner != 0)
    count_add(reads, owner, kq_queue_get_name(queue), +1);
  return read->id;
}

guint
kq_thrift_reads_count(KqThriftReads *reads, guint64 owner, const gchar *queue_name)
{
  g_autofree gchar *key = count_key(owner, queue_name);
  return GPOINTER_TO_UINT(g_hash_table_lookup(reads->counts, key));
}

gboolean
kq_thrift_reads_confirm(KqThriftReads *reads, guint64 id)
{
  OpenRead *read = steal(reads, id);
  gboolean done;

  if (read == NULL)
    return FALSE;
  done = kq_queue_confirm(read->queue, read->xid, NULL);
  open_read_free(read);
  return done;
}

gboolean
kq_thrift_reads_abort(KqThriftReads *reads, guint64 id)
{
  OpenRead *read = steal(reads, id);
  gboolean done;

  if (read == NULL)
    return FALSE;
  done = kq_queue_abort(read->queue, read->xid, NULL);
  open_read_free(read);
  return done;
}

void
kq_thrift_reads_forget_owner(KqThriftReads *reads, guint64 owner)
{
  GHashTableIter iter;
  OpenRead *read;
  g_autofree gchar *prefix = g_strdup_printf("%" G_GUINT64_FORMAT "/", owner);
  gchar *key;

  g_hash_table_iter_init(&iter, reads->by_id);
  while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&read))
    if (read->owner == owner)
      read->owner = 0;
  g_hash_table_iter_init(&iter, reads->counts);
  while (g_hash_table_iter_next(&iter, (gpointer *)&key, NULL))
    if (g_str_has_prefix(key, prefix))
      g_hash_table_iter_remove(&iter);
}

guint
kq_thrift_reads_size(KqThriftReads *reads)
{
  return g_hash_table_size(reads->by_id);
}
