/* Per-second queue history: values, rates, the one-hour ring, the queue cap, and deleted
 * queues losing their history. Samples are taken by hand with made-up timestamps. */
#include "engine-test.h"

#include "admin/stats-history.h"

#define T0 G_GINT64_CONSTANT(1700000000)

typedef struct {
  gchar *dir;
  KqCollection *c;
  KqStatsHistory *h;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer unused)
{
  f->dir = et_tmpdir();
  f->c = et_open(f->dir, NULL);
  f->h = kq_stats_history_new(f->c, NULL);
}

static void fixture_teardown(Fixture *f, gconstpointer unused)
{
  kq_stats_history_free(f->h);
  kq_collection_close(f->c);
  et_rmtree(f->dir);
  g_free(f->dir);
}

static gint64 last_value(Fixture *f, const gchar *queue, const gchar *stat)
{
  g_autoptr(GArray) points = kq_stats_history_get(f->h, queue, stat);
  g_assert_nonnull(points);
  g_assert_cmpuint(points->len, >, 0);
  return g_array_index(points, KqHistoryPoint, points->len - 1).value;
}

static void test_values_and_rates(Fixture *f, gconstpointer unused)
{
  g_autoptr(KqQueue) q = et_queue(f->c, "jobs");
  et_add(q, "a");
  kq_stats_history_sample(f->h, T0);
  g_assert_cmpint(last_value(f, "jobs", "items"), ==, 1);
  g_assert_cmpint(last_value(f, "jobs", "put_rate"), ==, 0); /* nothing to count from yet */
  et_add(q, "bb");
  et_add(q, "ccc");
  et_expect(q, "a");
  kq_stats_history_sample(f->h, T0 + 1);
  g_assert_cmpint(last_value(f, "jobs", "items"), ==, 2);
  g_assert_cmpint(last_value(f, "jobs", "bytes"), ==, 5);
  g_assert_cmpint(last_value(f, "jobs", "put_rate"), ==, 2);
  g_assert_cmpint(last_value(f, "jobs", "get_rate"), ==, 1);
  g_assert_cmpint(last_value(f, "jobs", "waiters"), ==, 0);

  g_autoptr(GArray) points = kq_stats_history_get(f->h, "jobs", "items");
  g_assert_cmpuint(points->len, ==, 2);
  g_assert_cmpint(g_array_index(points, KqHistoryPoint, 0).time_s, ==, T0);
  g_assert_cmpint(g_array_index(points, KqHistoryPoint, 1).time_s, ==, T0 + 1);
  g_assert_null(kq_stats_history_get(f->h, "jobs", "no_such_stat"));
  g_assert_null(kq_stats_history_get(f->h, "nobody", "items"));
  g_assert_true(kq_stats_history_knows_stat("get_rate"));
  g_assert_false(kq_stats_history_knows_stat("children"));
}

/* After more than an hour only the last hour is kept, oldest first. */
static void test_ring_wraps(Fixture *f, gconstpointer unused)
{
  g_autoptr(KqQueue) q = et_queue(f->c, "jobs");
  for (gint64 t = 0; t < KQ_HISTORY_SECONDS + 10; t++) {
    if (t == KQ_HISTORY_SECONDS + 5)
      et_add(q, "x");
    kq_stats_history_sample(f->h, T0 + t);
  }
  g_autoptr(GArray) points = kq_stats_history_get(f->h, "jobs", "items");
  g_assert_cmpuint(points->len, ==, KQ_HISTORY_SECONDS);
  g_assert_cmpint(g_array_index(points, KqHistoryPoint, 0).time_s, ==, T0 + 10);
  g_assert_cmpint(g_array_index(points, KqHistoryPoint, points->len - 1).time_s, ==,
                  T0 + KQ_HISTORY_SECONDS + 9);
  g_assert_cmpint(g_array_index(points, KqHistoryPoint, points->len - 5).value, ==, 1);
  g_assert_cmpint(g_array_index(points, KqHistoryPoint, points->len - 6).value, ==, 0);
}

static void test_deleted_queue_forgotten(Fixture *f, gconstpointer unused)
{
  g_autoptr(KqQueue) q = et_queue(f->c, "gone");
  et_add(q, "a");
  kq_stats_history_sample(f->h, T0);
  g_assert_cmpint(last_value(f, "gone", "items"), ==, 1);
  g_assert_true(kq_collection_delete(f->c, "gone", NULL));
  kq_stats_history_sample(f->h, T0 + 1);
  g_assert_null(kq_stats_history_get(f->h, "gone", "items"));
}

static void test_queue_cap(Fixture *f, gconstpointer unused)
{
  for (int i = 0; i <= KQ_HISTORY_MAX_QUEUES; i++) {
    g_autofree gchar *name = g_strdup_printf("q%03d", i);
    g_autoptr(KqQueue) q = et_queue(f->c, name);
  }
  kq_stats_history_sample(f->h, T0);
  g_autoptr(GArray) first = kq_stats_history_get(f->h, "q000", "items");
  g_assert_nonnull(first);
  g_autofree gchar *last = g_strdup_printf("q%03d", KQ_HISTORY_MAX_QUEUES);
  g_assert_null(kq_stats_history_get(f->h, last, "items"));
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) \
  g_test_add("/stats-history/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD("values-and-rates", test_values_and_rates);
  ADD("ring-wraps", test_ring_wraps);
  ADD("deleted-queue-forgotten", test_deleted_queue_forgotten);
  ADD("queue-cap", test_queue_cap);
#undef ADD
  return g_test_run();
}
