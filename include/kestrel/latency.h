/* Latency histograms the engine keeps per queue for adds and reads (beyond Kestrel).
 * Log-linear buckets: exact below 8 ns, then 4 buckets per power of two (about 25% wide), up to
 * 2^33 ns (8.6 s); slower operations land in the last bucket. Recording is two additions and a
 * bit scan, so it can sit on the hot path; a KqLatency is not locked itself: the queue records
 * and copies it under its own lock. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

#define KQ_LATENCY_BUCKETS 128

typedef struct {
  guint64 count;    /* operations */
  guint64 sampled;  /* operations timed into the buckets (the queue times one in eight) */
  guint64 max_ns;
  guint64 sum_ns;   /* of the timed samples */
  guint64 buckets[KQ_LATENCY_BUCKETS];
} KqLatency;

/* Count one operation and its duration. */
void kq_latency_record(KqLatency *latency, gint64 ns);
/* Count one operation that was not timed. */
void kq_latency_count(KqLatency *latency);
/* The smallest bucket bound at or above which `fraction` (0..1] of the timed samples fall, at most
 * max_ns; 0 when nothing was recorded. */
guint64 kq_latency_percentile_ns(const KqLatency *latency, double fraction);
/* The smallest timed sample's bucket bound, at most max_ns; 0 when nothing was recorded. */
guint64 kq_latency_min_ns(const KqLatency *latency);
/* Add `other`'s operations and samples to `into` (max is the larger of the two). */
void kq_latency_merge(KqLatency *into, const KqLatency *other);
/* What `now` recorded since the copy `before` was taken (same histogram, later): counts,
 * sums and buckets subtracted; max_ns becomes the upper bound of the highest bucket that
 * grew, at most now->max_ns. */
void kq_latency_since(const KqLatency *now, const KqLatency *before, KqLatency *out);

G_END_DECLS
