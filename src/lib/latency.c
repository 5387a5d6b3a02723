/* Log-linear latency histogram (see kestrel/latency.h). */
#include <kestrel/latency.h>

/* Below 8 ns a bucket per nanosecond; from 2^e (e >= 3) four buckets per power of two. */
static guint bucket_of(guint64 ns)
{
  if (ns < 8)
    return (guint)ns;
  guint e = 63 - (guint)__builtin_clzll(ns);
  guint index = 8 + (e - 3) * 4 + (guint)((ns >> (e - 2)) & 3);
  return MIN(index, KQ_LATENCY_BUCKETS - 1);
}

/* Largest value that falls in bucket `index` (the last one is open-ended). */
static guint64 bucket_upper(guint index)
{
  if (index == KQ_LATENCY_BUCKETS - 1)
    return G_MAXUINT64;
  if (index < 8)
    return index;
  guint e = 3 + (index - 8) / 4;
  guint64 sub = (index - 8) % 4;
  return ((4 + sub + 1) << (e - 2)) - 1;
}

void kq_latency_record(KqLatency *l, gint64 ns)
{
  guint64 v = ns > 0 ? (guint64)ns : 0;
  l->count++;
  l->sampled++;
  l->sum_ns += v;
  if (v > l->max_ns)
    l->max_ns = v;
  l->buckets[bucket_of(v)]++;
}

void kq_latency_count(KqLatency *l)
{
  l->count++;
}

guint64 kq_latency_percentile_ns(const KqLatency *l, double fraction)
{
  if (l->sampled == 0)
    return 0;
  /* rank of the sample sought, 1-based, rounded up */
  guint64 rank = (guint64)(fraction * (double)l->sampled);
  if ((double)rank < fraction * (double)l->sampled)
    rank++;
  rank = CLAMP(rank, 1, l->sampled);
  guint64 seen = 0;
  for (guint i = 0; i < KQ_LATENCY_BUCKETS; i++) {
    seen += l->buckets[i];
    if (seen >= rank)
      return MIN(bucket_upper(i), l->max_ns);
  }
  return l->max_ns;
}

guint64 kq_latency_min_ns(const KqLatency *l)
{
  for (guint i = 0; i < KQ_LATENCY_BUCKETS; i++)
    if (l->buckets[i] > 0)
      return MIN(bucket_upper(i), l->max_ns);
  return 0;
}

void kq_latency_merge(KqLatency *into, const KqLatency *other)
{
  into->count += other->count;
  into->sampled += other->sampled;
  into->sum_ns += other->sum_ns;
  into->max_ns = MAX(into->max_ns, other->max_ns);
  for (guint i = 0; i < KQ_LATENCY_BUCKETS; i++)
    into->buckets[i] += other->buckets[i];
}

void kq_latency_since(const KqLatency *now, const KqLatency *before, KqLatency *out)
{
  /* a histogram only grows; MAX guards against a `before` from another histogram */
  out->count = now->count - MIN(now->count, before->count);
  out->sampled = 0;
  out->sum_ns = now->sum_ns - MIN(now->sum_ns, before->sum_ns);
  out->max_ns = 0;
  for (guint i = 0; i < KQ_LATENCY_BUCKETS; i++) {
    out->buckets[i] = now->buckets[i] - MIN(now->buckets[i], before->buckets[i]);
    out->sampled += out->buckets[i];
    if (out->buckets[i] > 0)
      out->max_ns = MIN(bucket_upper(i), now->max_ns);
  }
}
