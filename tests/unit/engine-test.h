/* Helpers shared by the engine unit tests: temporary queue folders, hand-built journal bytes
 * (written from the SPEC 7 table, never with the engine's encoders), a settable clock, and
 * control over the engine's expected warnings. Everything is static inline so each test
 * program uses only what it needs. */
#pragma once
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <valgrind/valgrind.h>

#include <kestrel/kestrel.h>

/* Under valgrind and the sanitizers everything is many times slower (and a fork copies ASan's
 * shadow maps): long walks take a sample there, and time budgets shrink. */
static inline gboolean et_slow_build(void)
{
#if defined(__SANITIZE_ADDRESS__)
  return TRUE;
#else
  return RUNNING_ON_VALGRIND;
#endif
}

/* ---------- hand-built journal records (SPEC 7, little-endian) ---------- */

static inline void et_u8(GByteArray *b, guint8 v)
{
  g_byte_array_append(b, &v, 1);
}

static inline void et_u32(GByteArray *b, guint32 v)
{
  guint8 p[4] = { (guint8)v, (guint8)(v >> 8), (guint8)(v >> 16), (guint8)(v >> 24) };
  g_byte_array_append(b, p, 4);
}

static inline void et_i64(GByteArray *b, gint64 v)
{
  guint64 u = (guint64)v;
  guint8 p[8];
  for (int i = 0; i < 8; i++)
    p[i] = (guint8)(u >> (8 * i));
  g_byte_array_append(b, p, 8);
}

/* An item block: i32 size (16 + len), i64 add time, i64 expiry, data. */
static inline void et_block(GByteArray *b, gint64 add_time, gint64 expiry, const gchar *data)
{
  gsize len = strlen(data);
  et_u32(b, (guint32)(16 + len));
  et_i64(b, add_time);
  et_i64(b, expiry);
  g_byte_array_append(b, (const guint8 *)data, (guint)len);
}

static inline void et_add_legacy(GByteArray *b, guint32 expiry_s, const gchar *data)
{
  gsize len = strlen(data);
  et_u8(b, 0);
  et_u32(b, (guint32)(4 + len));
  et_u32(b, expiry_s);
  g_byte_array_append(b, (const guint8 *)data, (guint)len);
}

static inline void et_addx(GByteArray *b, gint64 add_time, gint64 expiry, const gchar *data)
{
  et_u8(b, 2);
  et_block(b, add_time, expiry, data);
}

static inline void et_xid_op(GByteArray *b, guint8 op, guint32 xid)
{
  et_u8(b, op);
  et_u32(b, xid);
}

static inline void et_xid_block(GByteArray *b, guint8 op, guint32 xid, gint64 add_time,
                                gint64 expiry, const gchar *data)
{
  et_u8(b, op);
  et_u32(b, xid);
  et_block(b, add_time, expiry, data);
}

/* ---------- files ---------- */

static inline gchar *et_tmpdir(void)
{
  GError *error = NULL;
  gchar *dir = g_dir_make_tmp("kestrel-test-XXXXXX", &error);
  g_assert_no_error(error);
  return dir;
}

static inline void et_rmtree(const gchar *path)
{
  GDir *d = g_dir_open(path, 0, NULL);
  if (d != NULL) {
    const gchar *name;
    while ((name = g_dir_read_name(d)) != NULL) {
      gchar *child = g_build_filename(path, name, NULL);
      if (g_file_test(child, G_FILE_TEST_IS_DIR))
        et_rmtree(child);
      else
        g_unlink(child);
      g_free(child);
    }
    g_dir_close(d);
  }
  g_rmdir(path);
}

static inline void et_write(const gchar *dir, const gchar *name, const void *data, gsize len)
{
  gchar *path = g_build_filename(dir, name, NULL);
  GError *error = NULL;
  g_file_set_contents(path, len ? data : "", (gssize)len, &error);
  g_assert_no_error(error);
  g_free(path);
}

static inline void et_write_bytes(const gchar *dir, const gchar *name, GByteArray *b)
{
  et_write(dir, name, b->data, b->len);
}

/* Contents of dir/name; asserts the file exists. */
static inline GBytes *et_read(const gchar *dir, const gchar *name)
{
  gchar *path = g_build_filename(dir, name, NULL);
  gchar *contents = NULL;
  gsize len = 0;
  GError *error = NULL;
  g_file_get_contents(path, &contents, &len, &error);
  g_assert_no_error(error);
  g_free(path);
  return g_bytes_new_take(contents, len);
}

static inline gint64 et_file_size(const gchar *dir, const gchar *name)
{
  gchar *path = g_build_filename(dir, name, NULL);
  struct stat st;
  gint64 size = stat(path, &st) == 0 ? (gint64)st.st_size : -1;
  g_free(path);
  return size;
}

/* Bytes of whole records at the start of a journal file: what it holds while the engine has it
 * open (the live file also carries reserved space after its last record), or -1 if missing. */
static inline gint64 et_records_size(const gchar *dir, const gchar *name)
{
  if (et_file_size(dir, name) < 0)
    return -1;
  GBytes *bytes = et_read(dir, name);
  gsize len = 0;
  const guint8 *p = g_bytes_get_data(bytes, &len);
  gsize offset = 0;
  KqJournalRecord rec;
  while (kq_journal_decode(p + offset, len - offset, &rec) == KQ_DECODE_OK)
    offset += rec.record_len;
  g_bytes_unref(bytes);
  return (gint64)offset;
}

static inline gboolean et_exists(const gchar *dir, const gchar *name)
{
  return et_file_size(dir, name) >= 0;
}

static inline gint et_strptr_cmp(gconstpointer a, gconstpointer b)
{
  return g_strcmp0(*(const gchar *const *)a, *(const gchar *const *)b);
}

/* Sorted names in dir, without the folder lock file, joined with spaces. */
static inline gchar *et_listing(const gchar *dir)
{
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  GDir *d = g_dir_open(dir, 0, NULL);
  g_assert_nonnull(d);
  const gchar *name;
  while ((name = g_dir_read_name(d)) != NULL)
    if (strcmp(name, ".kestrel.lock") != 0)
      g_ptr_array_add(names, g_strdup(name));
  g_dir_close(d);
  g_ptr_array_sort(names, et_strptr_cmp);
  g_ptr_array_add(names, NULL);
  gchar *joined = g_strjoinv(" ", (gchar **)names->pdata);
  g_ptr_array_unref(names);
  return joined;
}

/* ---------- the engine ---------- */

/* A config set from key-file text ([default], [queue NAME], [alias NAME]); NULL text: none. */
static inline KqConfigSet *et_config(const gchar *text)
{
  if (text == NULL)
    return NULL;
  GKeyFile *kf = g_key_file_new();
  GError *error = NULL;
  g_key_file_load_from_data(kf, text, (gsize)-1, G_KEY_FILE_NONE, &error);
  g_assert_no_error(error);
  KqConfigSet *set = kq_config_set_new();
  kq_config_set_load_key_file(set, kf, "test", &error);
  g_assert_no_error(error);
  g_key_file_unref(kf);
  return set;
}

static inline KqCollection *et_open(const gchar *dir, const gchar *config_text)
{
  GError *error = NULL;
  KqCollection *c = kq_collection_open(dir, et_config(config_text), &error);
  g_assert_no_error(error);
  g_assert_nonnull(c);
  return c;
}

static inline KqQueue *et_queue(KqCollection *c, const gchar *name)
{
  GError *error = NULL;
  KqQueue *q = kq_collection_get(c, name, TRUE, &error);
  g_assert_no_error(error);
  g_assert_nonnull(q);
  return q;
}

static inline void et_add(KqQueue *q, const gchar *data)
{
  GError *error = NULL;
  gboolean ok = kq_queue_add(q, data, strlen(data), 0, &error);
  g_assert_no_error(error);
  g_assert_true(ok);
}

/* Remove the head and compare it with `expected` (NULL: the queue must be empty). */
static inline void et_expect(KqQueue *q, const gchar *expected)
{
  GError *error = NULL;
  KqItem *item = kq_queue_remove(q, KQ_REMOVE_PLAIN, &error);
  g_assert_no_error(error);
  if (expected == NULL) {
    if (item != NULL)
      g_error("expected an empty queue, got \"%.*s\"", (int)item->len, (const char *)item->data);
    return;
  }
  g_assert_nonnull(item);
  g_assert_cmpmem(item->data, item->len, expected, strlen(expected));
  kq_item_unref(item);
}

/* Drain `name` into one string: items joined by ',' (e.g. "a,b,c"; "" when empty). */
static inline gchar *et_drain(KqQueue *q)
{
  GString *s = g_string_new(NULL);
  KqItem *item;
  GError *error = NULL;
  while ((item = kq_queue_remove(q, KQ_REMOVE_PLAIN, &error)) != NULL) {
    if (s->len > 0)
      g_string_append_c(s, ',');
    g_string_append_len(s, (const gchar *)item->data, (gssize)item->len);
    kq_item_unref(item);
  }
  g_assert_no_error(error);
  return g_string_free(s, FALSE);
}

/* Open `dir`, drain queue `name`, close: what a restart would deliver. */
static inline gchar *et_replay_drain(const gchar *dir, const gchar *name)
{
  KqCollection *c = et_open(dir, NULL);
  KqQueue *q = et_queue(c, name);
  gchar *items = et_drain(q);
  kq_queue_unref(q);
  kq_collection_close(c);
  return items;
}

static inline gint64 et_items(KqQueue *q)
{
  KqQueueStats s;
  kq_queue_get_stats(q, &s);
  return s.items;
}

/* ---------- a clock the test moves ---------- */

static gint64 et_now_ms;

static inline gint64 et_clock_func(gpointer unused)
{
  (void)unused;
  return et_now_ms;
}

static inline void et_clock_install(gint64 start_ms)
{
  et_now_ms = start_ms;
  kq_clock_set(et_clock_func, NULL);
}

static inline void et_clock_restore(void)
{
  kq_clock_set(NULL, NULL);
}

/* ---------- warnings the engine is expected to log ---------- */

/* GTest makes warnings and criticals fatal (and reports them as "Bail out!"). Tests that
 * provoke the engine's own warnings (torn journals, I/O failures) lower the fatal mask for a
 * while and count what the "kestrel" domain logs. */
static gint et_warnings_seen;
static gboolean et_handler_installed;

static inline void et_log_handler(const gchar *domain, GLogLevelFlags level, const gchar *message,
                                  gpointer unused)
{
  (void)unused;
  if (level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL))
    g_atomic_int_inc(&et_warnings_seen);
  g_log_default_handler(domain, level, message, NULL);
}

static inline void et_allow_warnings(gboolean allow)
{
  if (!et_handler_installed) {
    g_log_set_handler("kestrel", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL, et_log_handler, NULL);
    et_handler_installed = TRUE;
  }
  if (allow) {
    g_atomic_int_set(&et_warnings_seen, 0);
    g_log_set_always_fatal(G_LOG_FATAL_MASK);
  } else {
    g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL);
  }
}
