/* Engine benchmarks (libkestrel alone, no network). Prints one line per figure.
 *   engine-bench [--items N] [--dir DIR]
 * Figures: add+remove pairs/s with the journal and without it, bytes of overhead per queued
 * item, replay MB/s, and syncJournal=0 adds/s with 1 and 64 writers. */
#include <kestrel/kestrel.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static gchar *bench_dir;

static KqCollection *open_with(const gchar *conf_text)
{
  g_autoptr(GError) error = NULL;
  KqConfigSet *config = kq_config_set_new();
  g_autoptr(GKeyFile) kf = g_key_file_new();
  if (!g_key_file_load_from_data(kf, conf_text, -1, 0, &error) ||
      !kq_config_set_load_key_file(config, kf, "bench", &error))
    g_error("config: %s", error->message);
  KqCollection *c = kq_collection_open(bench_dir, config, &error);
  if (c == NULL)
    g_error("open: %s", error->message);
  return c;
}

static double seconds_since(gint64 start)
{
  return (double)(g_get_monotonic_time() - start) / 1e6;
}

static void bench_pairs(const gchar *label, const gchar *conf, gint64 n)
{
  KqCollection *c = open_with(conf);
  g_autoptr(KqQueue) q = kq_collection_get(c, "pairs", TRUE, NULL);
  guint8 data[64];
  memset(data, 'x', sizeof(data));
  gint64 start = g_get_monotonic_time();
  for (gint64 i = 0; i < n; i++) {
    if (!kq_queue_add(q, data, sizeof(data), 0, NULL))
      g_error("add failed");
    kq_item_unref(kq_queue_remove(q, KQ_REMOVE_PLAIN, NULL));
  }
  double s = seconds_since(start);
  printf("%-44s %12.0f pairs/s\n", label, (double)n / s);
  g_clear_pointer(&q, kq_queue_unref);
  kq_collection_delete(c, "pairs", NULL);
  kq_collection_close(c);
}

static gint64 rss_bytes(void)
{
  g_autofree gchar *text = NULL;
  if (!g_file_get_contents("/proc/self/statm", &text, NULL, NULL))
    return 0;
  long pages = 0, resident = 0;
  sscanf(text, "%ld %ld", &pages, &resident);
  return (gint64)resident * sysconf(_SC_PAGESIZE);
}

static void bench_memory_and_replay(gint64 n)
{
  const gchar *conf = "[default]\nmaxMemorySize = 1GB\nmaxJournalSize = 8GB\n"
                      "defaultJournalSize = 8GB\n";
  KqCollection *c = open_with(conf);
  g_autoptr(KqQueue) q = kq_collection_get(c, "mem", TRUE, NULL);
  guint8 data[64];
  memset(data, 'm', sizeof(data));
  gint64 before = rss_bytes();
  for (gint64 i = 0; i < n; i++)
    kq_queue_add(q, data, sizeof(data), 0, NULL);
  gint64 after = rss_bytes();
  double per_item = (double)(after - before) / (double)n - (double)sizeof(data);
  printf("%-44s %12.1f bytes/item (%" G_GINT64_FORMAT " items of 64 bytes)\n",
         "memory overhead per queued item", per_item, n);
  KqQueueStats st;
  kq_queue_get_stats(q, &st);
  g_clear_pointer(&q, kq_queue_unref);
  kq_collection_close(c);

  /* warm the page cache, then time a replay of the same files */
  g_autofree gchar *path = g_build_filename(bench_dir, "mem", NULL);
  g_autofree gchar *junk = NULL;
  gsize len = 0;
  g_file_get_contents(path, &junk, &len, NULL);
  gint64 start = g_get_monotonic_time();
  c = open_with(conf);
  double s = seconds_since(start);
  printf("%-44s %12.0f MB/s (%.1f MB in %.3f s)\n", "replay from a warm page cache",
         (double)st.logsize / 1e6 / s, (double)st.logsize / 1e6, s);
  kq_collection_delete(c, "mem", NULL);
  kq_collection_close(c);
}

typedef struct {
  KqQueue *q;
  gint64 n;
  GMutex lock;
  GCond cond;
  gint pending;
} Writer;

static void durable_done(gpointer data)
{
  Writer *w = data;
  g_mutex_lock(&w->lock);
  w->pending = 0;
  g_cond_signal(&w->cond);
  g_mutex_unlock(&w->lock);
}

static gpointer writer_thread(gpointer data)
{
  Writer *w = data;
  guint8 item[64];
  memset(item, 's', sizeof(item));
  for (gint64 i = 0; i < w->n; i++) {
    kq_queue_add(w->q, item, sizeof(item), 0, NULL);
    w->pending = 1;
    if (kq_queue_when_durable(w->q, durable_done, w))
      continue;
    g_mutex_lock(&w->lock);
    while (w->pending)
      g_cond_wait(&w->cond, &w->lock);
    g_mutex_unlock(&w->lock);
  }
  return NULL;
}

static double bench_sync(gint writers, gint64 per_writer)
{
  KqCollection *c = open_with("[default]\nsyncJournal = 0\n");
  g_autoptr(KqQueue) q = kq_collection_get(c, "sync", TRUE, NULL);
  Writer *w = g_new0(Writer, writers);
  GThread **threads = g_new(GThread *, writers);
  gint64 start = g_get_monotonic_time();
  for (gint i = 0; i < writers; i++) {
    w[i].q = q;
    w[i].n = per_writer;
    g_mutex_init(&w[i].lock);
    g_cond_init(&w[i].cond);
    threads[i] = g_thread_new("writer", writer_thread, &w[i]);
  }
  for (gint i = 0; i < writers; i++)
    g_thread_join(threads[i]);
  double rate = (double)(writers * per_writer) / seconds_since(start);
  for (gint i = 0; i < writers; i++) {
    g_mutex_clear(&w[i].lock);
    g_cond_clear(&w[i].cond);
  }
  g_free(w);
  g_free(threads);
  g_clear_pointer(&q, kq_queue_unref);
  kq_collection_delete(c, "sync", NULL);
  kq_collection_close(c);
  return rate;
}

int main(int argc, char **argv)
{
  gint64 items = 1000000;
  gchar *dir = NULL;
  GOptionEntry entries[] = {
    { "items", 'n', 0, G_OPTION_ARG_INT64, &items, "items per figure (default 1000000)", "N" },
    { "dir", 'd', 0, G_OPTION_ARG_FILENAME, &dir, "queue folder (default: a new temp dir)", "DIR" },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new("- libkestrel benchmarks");
  g_option_context_add_main_entries(ctx, entries, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
    fprintf(stderr, "engine-bench: %s\n", error->message);
    return 2;
  }
  bench_dir = dir != NULL ? dir : g_dir_make_tmp("kq-bench-XXXXXX", NULL);
  g_log_set_handler("kestrel", G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO, g_log_default_handler, NULL);
  bench_pairs("add+remove, journal on, no fsync", "[default]\n", items);
  bench_pairs("add+remove, keepJournal=false", "[default]\nkeepJournal = false\n", items * 5);
  bench_memory_and_replay(items);
  double one = bench_sync(1, 2000);
  double many = bench_sync(64, 500);
  printf("%-44s %12.0f adds/s\n", "syncJournal=0, 1 writer", one);
  printf("%-44s %12.0f adds/s (%.1fx)\n", "syncJournal=0, 64 writers", many, many / one);
  return 0;
}
