/* Latency histogram for kestrel-load: log-linear buckets (16 per power of two, ~6% precision)
 * over nanoseconds, fixed size, no allocation, mergeable across threads. */
#ifndef KESTREL_LOAD_HISTOGRAM_H
#define KESTREL_LOAD_HISTOGRAM_H

#include <glib.h>

#define LOAD_HIST_SUB_BITS 4
#define LOAD_HIST_BUCKETS ((64 - LOAD_HIST_SUB_BITS + 1) << LOAD_HIST_SUB_BITS)

typedef struct {
  guint64 counts[LOAD_HIST_BUCKETS];
  guint64 total;
  guint64 max;
} LoadHistogram;

void load_hist_record(LoadHistogram *h, guint64 ns);
void load_hist_merge(LoadHistogram *into, const LoadHistogram *from);
/* The value (ns) at quantile q in [0,1]: the upper edge of the bucket holding it, capped at max. */
guint64 load_hist_quantile(const LoadHistogram *h, double q);

#endif
