/* A stats snapshot as the admin HTTP service serves it: JSON, plain text, and the
 * Prometheus text exposition format (version 0.0.4). */
#pragma once
#include <glib.h>
#include "stats-report.h"
#include "ostrich-stats.h"

G_BEGIN_DECLS

/* {"server": {name: value, ...}, "queues": {queue: {name: value, ...}, ...}}; numbers as JSON
 * numbers, text as strings, in the order of the memcache `stats` command. */
gchar *kq_stats_format_json(const KqStatsSnapshot *snapshot);
/* One "name: value" line per stat, named as the memcache `stats` command names them
 * (queue_<q>_<stat> for a queue's). */
gchar *kq_stats_format_text(const KqStatsSnapshot *snapshot);
/* A metric family per numeric stat: kestrel_<stat> for global ones,
 * kestrel_queue_<stat>{queue="<q>"} for queues and aliases, each with HELP and TYPE; the
 * version as kestrel_info{version="..."} 1. */
gchar *kq_stats_format_prometheus(const KqStatsSnapshot *snapshot);
/* Ostrich's /stats.json: {"counters": {...}, "gauges": {...}, "labels": {...}, "metrics":
 * {name: {"average": ..., "count": ..., ...}}}, names sorted; a gauge with no fraction as an
 * integer; a metric with no timed sample shows only its count. Metrics in microseconds. */
gchar *kq_stats_format_ostrich_json(const KqOstrichSummary *summary);
/* Ostrich's /stats.txt: "counters:", then "  name: value" lines, and so on; a metric on one
 * line as "  name: (average=1, count=2, ...)". */
gchar *kq_stats_format_ostrich_text(const KqOstrichSummary *summary);
/* Append `text` as a JSON string literal, quotes included. */
void kq_json_append_string(GString *out, const gchar *text);

G_END_DECLS
