/* The latency histogram: bucket bounds, percentiles and the clamp of slow samples. */
#include <kestrel/latency.h>

static void test_empty(void)
{
  KqLatency l = { 0 };
  g_assert_cmpuint(kq_latency_percentile_ns(&l, 0.5), ==, 0);
}

/* Below 8 ns every value has its own bucket: percentiles are exact. */
static void test_exact_small(void)
{
  KqLatency l = { 0 };
  for (gint64 v = 1; v <= 4; v++)
    kq_latency_record(&l, v);
  g_assert_cmpuint(l.count, ==, 4);
  g_assert_cmpuint(kq_latency_percentile_ns(&l, 0.25), ==, 1);
  g_assert_cmpuint(kq_latency_percentile_ns(&l, 0.5), ==, 2);
  g_assert_cmpuint(kq_latency_percentile_ns(&l, 0.75), ==, 3);
  g_assert_cmpuint(kq_latency_percentile_ns(&l, 1.0), ==, 4);
}

/* Larger values are reported as their bucket's upper bound: at most 25% above, never below,
 * and never above the largest sample. */
static void test_resolution(void)
{
  const gint64 values[] = { 9, 100, 1000, 12345, 999999, 123456789 };
  for (gsize i = 0; i < G_N_ELEMENTS(values); i++) {
    KqLatency l = { 0 };
    kq_latency_record(&l, values[i]);
    kq_latency_record(&l, values[i] * 4);
    guint64 p50 = kq_latency_percentile_ns(&l, 0.5);
    g_assert_cmpuint(p50, >=, (guint64)values[i]);
    g_assert_cmpuint(p50, <=, (guint64)values[i] * 5 / 4);
    g_assert_cmpuint(kq_latency_percentile_ns(&l, 1.0), ==, (guint64)values[i] * 4);
  }
}

/* 99 fast samples and one slow one: p99 is fast, p999 and max are the slow one. */
static void test_tail(void)
{
  KqLatency l = { 0 };
  for (int i = 0; i < 99; i++)
    kq_latency_record(&l, 1000);
  kq_latency_record(&l, 5000000);
  g_assert_cmpuint(kq_latency_percentile_ns(&l, 0.99), <=, 1250);
  g_assert_cmpuint(kq_latency_percentile_ns(&l, 0.999), >=, 5000000);
  g_assert_cmpuint(l.max_ns, ==, 5000000);
}

/* Beyond the last bucket (and negative clock steps) nothing overflows. */
static void test_clamp(void)
{
  KqLatency l = { 0 };
  kq_latency_record(&l, G_GINT64_CONSTANT(1) << 50);
  kq_latency_record(&l, -5);
  g_assert_cmpuint(l.buckets[KQ_LATENCY_BUCKETS - 1], ==, 1);
  g_assert_cmpuint(l.buckets[0], ==, 1);
  g_assert_cmpuint(kq_latency_percentile_ns(&l, 1.0), ==, G_GUINT64_CONSTANT(1) << 50);
}

/* Sum and minimum of the timed samples; merge adds two histograms up. */
static void test_sum_min_merge(void)
{
  KqLatency a = { 0 }, b = { 0 };
  kq_latency_record(&a, 3);
  kq_latency_record(&a, 5);
  kq_latency_count(&a);
  kq_latency_record(&b, 7);
  g_assert_cmpuint(a.sum_ns, ==, 8);
  g_assert_cmpuint(kq_latency_min_ns(&a), ==, 3);
  kq_latency_merge(&a, &b);
  g_assert_cmpuint(a.count, ==, 4);
  g_assert_cmpuint(a.sampled, ==, 3);
  g_assert_cmpuint(a.sum_ns, ==, 15);
  g_assert_cmpuint(a.max_ns, ==, 7);
}

/* What a histogram recorded since an earlier copy: only the later samples. */
static void test_since(void)
{
  KqLatency l = { 0 }, before, delta;
  kq_latency_record(&l, 1000000);
  kq_latency_record(&l, 2);
  before = l;
  kq_latency_record(&l, 5);
  kq_latency_count(&l);
  kq_latency_since(&l, &before, &delta);
  g_assert_cmpuint(delta.count, ==, 2);
  g_assert_cmpuint(delta.sampled, ==, 1);
  g_assert_cmpuint(delta.sum_ns, ==, 5);
  g_assert_cmpuint(delta.max_ns, ==, 5);
  g_assert_cmpuint(kq_latency_min_ns(&delta), ==, 5);
  g_assert_cmpuint(kq_latency_percentile_ns(&delta, 0.5), ==, 5);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/latency/empty", test_empty);
  g_test_add_func("/latency/exact-small", test_exact_small);
  g_test_add_func("/latency/resolution", test_resolution);
  g_test_add_func("/latency/tail", test_tail);
  g_test_add_func("/latency/clamp", test_clamp);
  g_test_add_func("/latency/sum-min-merge", test_sum_min_merge);
  g_test_add_func("/latency/since", test_since);
  return g_test_run();
}
