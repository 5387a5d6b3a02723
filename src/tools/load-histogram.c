/* Log-linear latency histogram (see load-histogram.h). */
#include "config.h"

#include "load-histogram.h"

static guint bucket_of(guint64 v)
{
  if (v < (1u << LOAD_HIST_SUB_BITS))
    return (guint)v; /* small values are exact */
  guint msb = 63u - (guint)__builtin_clzll(v);
  guint shift = msb - LOAD_HIST_SUB_BITS;
  return ((shift + 1) << LOAD_HIST_SUB_BITS) + (guint)((v >> shift) & ((1u << LOAD_HIST_SUB_BITS) - 1));
}

/* Largest value that falls into bucket idx. */
static guint64 bucket_upper(guint idx)
{
  if (idx < (1u << LOAD_HIST_SUB_BITS))
    return idx;
  guint shift = (idx >> LOAD_HIST_SUB_BITS) - 1;
  guint64 mant = (1u << LOAD_HIST_SUB_BITS) + (idx & ((1u << LOAD_HIST_SUB_BITS) - 1));
  return ((mant + 1) << shift) - 1;
}

void load_hist_record(LoadHistogram *h, guint64 ns)
{
  h->counts[bucket_of(ns)]++;
  h->total++;
  if (ns > h->max)
    h->max = ns;
}

void load_hist_merge(LoadHistogram *into, const LoadHistogram *from)
{
  for (guint i = 0; i < LOAD_HIST_BUCKETS; i++)
    into->counts[i] += from->counts[i];
  into->total += from->total;
  if (from->max > into->max)
    into->max = from->max;
}

guint64 load_hist_quantile(const LoadHistogram *h, double q)
{
  if (h->total == 0)
    return 0;
  guint64 rank = (guint64)(q * (double)h->total + 0.999999);
  if (rank < 1)
    rank = 1;
  if (rank > h->total)
    rank = h->total;
  guint64 seen = 0;
  for (guint i = 0; i < LOAD_HIST_BUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= rank) {
      guint64 up = bucket_upper(i);
      return up < h->max ? up : h->max;
    }
  }
  return h->max;
}
