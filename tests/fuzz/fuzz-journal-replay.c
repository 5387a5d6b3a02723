/* libFuzzer target: the input is a queue's journal file. Replay it with a KqCollection (small
 * maxMemorySize, so read-behind is exercised too), close, reopen: the repaired file must now
 * replay without complaint and give the same items, and draining must account for every one
 * of them (delivered or expired). The bytes a repair cuts off must be in side files; a file
 * that does not start with a record must be refused as a queue and left as it was. */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kestrel/kestrel.h>

static gchar *dir;
static gchar *journal_path;
static gint warnings;

static void on_log(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data)
{
  (void)domain;
  (void)data;
  /* Only a torn tail must be gone after the first start: records that make no sense (an open
   * of an empty queue) stay in the file and are reported again at every start. */
  if ((level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL)) && strstr(message, "truncat") != NULL)
    warnings++;
}

static KqConfigSet *make_config(void)
{
  static const gchar text[] = "[default]\nmaxMemorySize=1KB\n";
  g_autoptr(GKeyFile) kf = g_key_file_new();
  if (!g_key_file_load_from_data(kf, text, sizeof(text) - 1, G_KEY_FILE_NONE, NULL))
    abort();
  KqConfigSet *set = kq_config_set_new();
  if (!kq_config_set_load_key_file(set, kf, "fuzz", NULL))
    abort();
  return set;
}

static void empty_dir(void)
{
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  const gchar *name;
  while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
    g_autofree gchar *path = g_build_filename(dir, name, NULL);
    g_unlink(path);
  }
}

static void init(void)
{
  dir = g_dir_make_tmp("kestrel-fuzz-journal-XXXXXX", NULL);
  if (dir == NULL)
    abort();
  journal_path = g_build_filename(dir, "q", NULL);
  g_log_set_handler("kestrel", G_LOG_LEVEL_MASK, on_log, NULL);
  g_log_set_always_fatal(G_LOG_FATAL_MASK);
}

/* Concatenated contents of the side files in the folder (there is at most one per start). */
static GByteArray *side_bytes(void)
{
  GByteArray *all = g_byte_array_new();
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  const gchar *name;
  while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
    g_autofree gchar *queue = kq_journal_side_file_queue(name);
    if (queue == NULL)
      continue;
    g_autofree gchar *path = g_build_filename(dir, name, NULL);
    g_autofree gchar *contents = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &contents, &len, NULL))
      abort();
    g_byte_array_append(all, (const guint8 *)contents, (guint)len);
  }
  return all;
}

/* A start that refuses the file: no queue, and the file as it was. */
static void expect_refused(const uint8_t *data, size_t size)
{
  g_autoptr(GError) error = NULL;
  KqCollection *c = kq_collection_open(dir, make_config(), &error);
  if (c == NULL)
    abort();
  KqQueue *q = kq_collection_get(c, "q", TRUE, &error);
  if (q != NULL || !g_error_matches(error, KQ_ERROR, KQ_ERROR_NOT_JOURNAL))
    abort();
  kq_collection_close(c);
  g_autofree gchar *contents = NULL;
  gsize len = 0;
  if (!g_file_get_contents(journal_path, &contents, &len, NULL) || len != size ||
      memcmp(contents, data, size) != 0)
    abort();
}

static KqCollection *open_folder(KqQueue **q)
{
  g_autoptr(GError) error = NULL;
  KqCollection *c = kq_collection_open(dir, make_config(), &error);
  if (c == NULL)
    abort();  /* every byte string must replay (truncated where it stops making sense) */
  *q = kq_collection_get(c, "q", TRUE, &error);
  if (*q == NULL)
    abort();
  return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (dir == NULL)
    init();
  empty_dir();
  if (!g_file_set_contents(journal_path, size ? (const gchar *)data : "", (gssize)size, NULL))
    abort();

  if (size > 0 && data[0] >= KQ_JOURNAL_OP_COUNT && data[0] != 0xff) {
    expect_refused(data, size);
    return 0;
  }

  /* first start: repairs the file and puts open reads back */
  KqQueue *q = NULL;
  KqCollection *c = open_folder(&q);
  KqQueueStats first;
  kq_queue_get_stats(q, &first);
  if (first.open_transactions != 0 || first.items < 0 || first.bytes < 0)
    abort();
  kq_queue_unref(q);
  kq_collection_close(c);

  /* what the repair cut off is in a side file: the input's tail, byte for byte */
  g_autoptr(GByteArray) kept = side_bytes();
  if (kept->len > size || (kept->len > 0 && memcmp(kept->data, data + size - kept->len,
                                                   kept->len) != 0))
    abort();

  /* second start: clean replay of the same items */
  warnings = 0;
  c = open_folder(&q);
  if (warnings != 0)
    abort();
  KqQueueStats second;
  kq_queue_get_stats(q, &second);
  if (second.items != first.items || second.bytes != first.bytes)
    abort();
  gint64 drained = 0, bytes = 0;
  KqItem *item;
  while ((item = kq_queue_remove(q, KQ_REMOVE_PLAIN, NULL)) != NULL) {
    drained++;
    bytes += (gint64)item->len;
    kq_item_unref(item);
  }
  KqQueueStats end;
  kq_queue_get_stats(q, &end);
  if (end.items != 0 || end.bytes != 0 || drained + end.expired_items != second.items ||
      bytes > second.bytes)
    abort();
  kq_queue_unref(q);
  kq_collection_close(c);
  return 0;
}
