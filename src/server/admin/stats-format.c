/* Formats of a stats snapshot (see stats-format.h). */
#include "config.h"

#include "stats-format.h"

#include <string.h>

void
kq_json_append_string(GString *out, const gchar *text)
{
  g_string_append_c(out, '"');
  for (const guchar *p = (const guchar *) text; *p != '\0'; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_printf(out, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f)
      g_string_append_printf(out, "\\u%04x", *p);
    else
      g_string_append_c(out, (gchar) *p);
  }
  g_string_append_c(out, '"');
}

static void
json_stats(GString *out, GPtrArray *stats)
{
  g_string_append_c(out, '{');
  for (guint i = 0; i < stats->len; i++) {
    const KqStat *stat = stats->pdata[i];
    if (i > 0)
      g_string_append_c(out, ',');
    kq_json_append_string(out, stat->name);
    g_string_append_c(out, ':');
    if (stat->kind == KQ_STAT_TEXT)
      kq_json_append_string(out, stat->value);
    else
      g_string_append(out, stat->value);
  }
  g_string_append_c(out, '}');
}

gchar *
kq_stats_format_json(const KqStatsSnapshot *snapshot)
{
  GString *out = g_string_new("{\"server\":");

  json_stats(out, snapshot->global);
  g_string_append(out, ",\"queues\":{");
  for (guint i = 0; i < snapshot->names->len; i++) {
    if (i > 0)
      g_string_append_c(out, ',');
    kq_json_append_string(out, snapshot->names->pdata[i]);
    g_string_append_c(out, ':');
    json_stats(out, snapshot->queues->pdata[i]);
  }
  g_string_append(out, "}}\n");
  return g_string_free(out, FALSE);
}

gchar *
kq_stats_format_text(const KqStatsSnapshot *snapshot)
{
  GString *out = g_string_new(NULL);

  for (guint i = 0; i < snapshot->global->len; i++) {
    const KqStat *stat = snapshot->global->pdata[i];
    g_string_append_printf(out, "%s: %s\n", stat->name, stat->value);
  }
  for (guint i = 0; i < snapshot->names->len; i++) {
    GPtrArray *stats = snapshot->queues->pdata[i];
    for (guint j = 0; j < stats->len; j++) {
      const KqStat *stat = stats->pdata[j];
      g_string_append_printf(out, "queue_%s_%s: %s\n", (const gchar *) snapshot->names->pdata[i],
                             stat->name, stat->value);
    }
  }
  return g_string_free(out, FALSE);
}

/* Label values escape backslash, double quote and newline; HELP text backslash and newline. */
static void
prometheus_escape(GString *out, const gchar *text, gboolean quote)
{
  for (const gchar *p = text; *p != '\0'; p++) {
    if (*p == '\\')
      g_string_append(out, "\\\\");
    else if (*p == '\n')
      g_string_append(out, "\\n");
    else if (quote && *p == '"')
      g_string_append(out, "\\\"");
    else
      g_string_append_c(out, *p);
  }
}

/* A counter's samples end in _total, as the exposition format's conventions want. */
static void
prometheus_family(GString *out, const gchar *prefix, const KqStat *stat)
{
  const gchar *suffix = stat->kind == KQ_STAT_COUNTER ? "_total" : "";

  g_string_append_printf(out, "# HELP %s%s%s ", prefix, stat->name, suffix);
  prometheus_escape(out, stat->help, FALSE);
  g_string_append_printf(out, "\n# TYPE %s%s%s %s\n", prefix, stat->name, suffix,
                         stat->kind == KQ_STAT_COUNTER ? "counter" : "gauge");
}

static const KqStat *
find_stat(GPtrArray *stats, const gchar *name)
{
  for (guint i = 0; i < stats->len; i++) {
    const KqStat *stat = stats->pdata[i];
    if (strcmp(stat->name, name) == 0)
      return stat;
  }
  return NULL;
}

static void
append_seconds(GString *out, double seconds)
{
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

  g_string_append(out, g_ascii_formatd(buf, sizeof(buf), "%.9g", seconds));
}

/* One summary family over the queues: quantiles of the timed samples, _sum estimated from
 * them (the engine times one operation in eight), _count of every operation. */
static void
prometheus_summary(GString *out, const KqStatsSnapshot *snapshot, const gchar *name,
                   const gchar *help, gboolean reads)
{
  static const double quantiles[] = { 0.5, 0.9, 0.99, 0.999 };

  g_string_append_printf(out, "# HELP kestrel_queue_%s %s\n# TYPE kestrel_queue_%s summary\n",
                         name, help, name);
  for (guint i = 0; i < snapshot->names->len; i++) {
    const KqQueueOpStats *ops = snapshot->ops->pdata[i];
    KqLatency l;
    g_autoptr(GString) label = g_string_new("queue=\"");
    if (ops == NULL)
      continue;
    l = reads ? ops->read_hit_latency : ops->add_latency;
    if (reads)
      kq_latency_merge(&l, &ops->read_miss_latency);
    prometheus_escape(label, snapshot->names->pdata[i], TRUE);
    g_string_append_c(label, '"');
    for (gsize q = 0; q < G_N_ELEMENTS(quantiles); q++) {
      g_string_append_printf(out, "kestrel_queue_%s{%s,quantile=\"%g\"} ", name, label->str,
                             quantiles[q]);
      if (l.sampled == 0)
        g_string_append(out, "NaN");
      else
        append_seconds(out, (double) kq_latency_percentile_ns(&l, quantiles[q]) / 1e9);
      g_string_append_c(out, '\n');
    }
    g_string_append_printf(out, "kestrel_queue_%s_sum{%s} ", name, label->str);
    append_seconds(out, l.sampled == 0 ? 0.0
                                       : (double) l.sum_ns / (double) l.sampled *
                                           (double) l.count / 1e9);
    g_string_append_printf(out, "\nkestrel_queue_%s_count{%s} %" G_GUINT64_FORMAT "\n", name,
                           label->str, l.count);
  }
}

gchar *
kq_stats_format_prometheus(const KqStatsSnapshot *snapshot)
{
  GString *out = g_string_new(NULL);
  g_autoptr(GHashTable) done = g_hash_table_new(g_str_hash, g_str_equal);

  for (guint i = 0; i < snapshot->global->len; i++) {
    const KqStat *stat = snapshot->global->pdata[i];
    if (stat->kind == KQ_STAT_TEXT)
      continue;
    prometheus_family(out, "kestrel_", stat);
    g_string_append_printf(out, "kestrel_%s%s %s\n", stat->name,
                           stat->kind == KQ_STAT_COUNTER ? "_total" : "", stat->value);
  }
  g_string_append(out, "# HELP kestrel_info Server version.\n# TYPE kestrel_info gauge\n"
                       "kestrel_info{version=\"");
  prometheus_escape(out, PACKAGE_VERSION, TRUE);
  g_string_append(out, "\"} 1\n");

  /* A family's samples must be together: per stat name (in first-seen order), every queue. */
  for (guint i = 0; i < snapshot->names->len; i++) {
    GPtrArray *stats = snapshot->queues->pdata[i];
    for (guint j = 0; j < stats->len; j++) {
      const KqStat *stat = stats->pdata[j];
      if (stat->kind == KQ_STAT_TEXT || stat->latency || g_hash_table_contains(done, stat->name))
        continue;
      g_hash_table_add(done, (gpointer) stat->name);
      prometheus_family(out, "kestrel_queue_", stat);
      for (guint k = i; k < snapshot->names->len; k++) {
        const KqStat *sample = find_stat(snapshot->queues->pdata[k], stat->name);
        if (sample == NULL)
          continue;
        g_string_append_printf(out, "kestrel_queue_%s%s{queue=\"", stat->name,
                               stat->kind == KQ_STAT_COUNTER ? "_total" : "");
        prometheus_escape(out, snapshot->names->pdata[k], TRUE);
        g_string_append_printf(out, "\"} %s\n", sample->value);
      }
    }
  }
  prometheus_summary(out, snapshot, "set_latency_seconds",
                     "Time an add spent in the engine (one add in eight is timed).", FALSE);
  prometheus_summary(out, snapshot, "get_latency_seconds",
                     "Time a read answered at once spent in the engine, hit or miss (one read "
                     "in eight is timed).", TRUE);
  return g_string_free(out, FALSE);
}

/* ---- Ostrich ----------------------------------------------------------------------------- */

typedef struct {
  const gchar *name;
  gint64 value;
} MetricField;

/* Ostrich's fields of a distribution, sorted by name, in the unit the metric's name ends in
 * (Kestrel's _msec or _usec). The engine times one add or read in eight: count is every
 * operation, sum is the timed samples' mean times count (exact when all are timed). */
static guint
metric_fields(const gchar *name, const KqLatency *l, MetricField out[13])
{
  /* _msec histograms record milliseconds already, _usec ones nanoseconds */
  const guint64 unit = g_str_has_suffix(name, "_msec") ? 1 : 1000;
  static const struct {
    const gchar *name;
    double fraction;
  } percentiles[] = { { "p25", 0.25 }, { "p50", 0.5 },   { "p75", 0.75 },   { "p90", 0.9 },
                      { "p95", 0.95 }, { "p99", 0.99 }, { "p999", 0.999 }, { "p9999", 0.9999 } };
  gint64 count = (gint64) l->count, sum;
  guint n = 0;

  if (count == 0 || l->sampled == 0) {
    out[n++] = (MetricField){ "count", count };
    return n;
  }
  sum = (gint64) ((double) l->sum_ns / (double) l->sampled * (double) count / (double) unit + 0.5);
  out[n++] = (MetricField){ "average", sum / count };
  out[n++] = (MetricField){ "count", count };
  out[n++] = (MetricField){ "maximum", (gint64) (l->max_ns / unit) };
  out[n++] = (MetricField){ "minimum", (gint64) (kq_latency_min_ns(l) / unit) };
  for (gsize i = 0; i < G_N_ELEMENTS(percentiles); i++)
    out[n++] = (MetricField){ percentiles[i].name,
                              (gint64) (kq_latency_percentile_ns(l, percentiles[i].fraction) /
                                        unit) };
  out[n++] = (MetricField){ "sum", sum };
  return n;
}

/* A whole gauge prints as an integer, as Ostrich does. */
static void
append_gauge(GString *out, gdouble value)
{
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (value == (gdouble) (gint64) value)
    g_string_append_printf(out, "%" G_GINT64_FORMAT, (gint64) value);
  else
    g_string_append(out, g_ascii_dtostr(buf, sizeof(buf), value));
}

typedef struct {
  GString *out;
  gboolean first;
  gchar kind; /* 'c' counter, 'g' gauge, 'l' label, 'm' metric */
} FormatState;

static gboolean
json_entry(gpointer key, gpointer value, gpointer data)
{
  FormatState *st = data;

  if (!st->first)
    g_string_append_c(st->out, ',');
  st->first = FALSE;
  kq_json_append_string(st->out, key);
  g_string_append_c(st->out, ':');
  switch (st->kind) {
  case 'c':
    g_string_append_printf(st->out, "%" G_GINT64_FORMAT, *(gint64 *) value);
    break;
  case 'g':
    append_gauge(st->out, *(gdouble *) value);
    break;
  case 'l':
    kq_json_append_string(st->out, value);
    break;
  default: {
    MetricField fields[13];
    guint n = metric_fields(key, value, fields);
    g_string_append_c(st->out, '{');
    for (guint i = 0; i < n; i++)
      g_string_append_printf(st->out, "%s\"%s\":%" G_GINT64_FORMAT, i > 0 ? "," : "",
                             fields[i].name, fields[i].value);
    g_string_append_c(st->out, '}');
  }
  }
  return FALSE;
}

static void
json_section(GString *out, const gchar *name, GTree *tree, gchar kind)
{
  FormatState st = { out, TRUE, kind };

  g_string_append_printf(out, "\"%s\":{", name);
  g_tree_foreach(tree, json_entry, &st);
  g_string_append_c(out, '}');
}

gchar *
kq_stats_format_ostrich_json(const KqOstrichSummary *s)
{
  GString *out = g_string_new("{");

  json_section(out, "counters", s->counters, 'c');
  g_string_append_c(out, ',');
  json_section(out, "gauges", s->gauges, 'g');
  g_string_append_c(out, ',');
  json_section(out, "labels", s->labels, 'l');
  g_string_append_c(out, ',');
  json_section(out, "metrics", s->metrics, 'm');
  g_string_append(out, "}\n");
  return g_string_free(out, FALSE);
}

static gboolean
text_entry(gpointer key, gpointer value, gpointer data)
{
  FormatState *st = data;

  g_string_append_printf(st->out, "  %s: ", (const gchar *) key);
  switch (st->kind) {
  case 'c':
    g_string_append_printf(st->out, "%" G_GINT64_FORMAT, *(gint64 *) value);
    break;
  case 'g':
    append_gauge(st->out, *(gdouble *) value);
    break;
  case 'l':
    g_string_append(st->out, value);
    break;
  default: {
    MetricField fields[13];
    guint n = metric_fields(key, value, fields);
    g_string_append_c(st->out, '(');
    for (guint i = 0; i < n; i++)
      g_string_append_printf(st->out, "%s%s=%" G_GINT64_FORMAT, i > 0 ? ", " : "",
                             fields[i].name, fields[i].value);
    g_string_append_c(st->out, ')');
  }
  }
  g_string_append_c(st->out, '\n');
  return FALSE;
}

static void
text_section(GString *out, const gchar *name, GTree *tree, gchar kind)
{
  FormatState st = { out, TRUE, kind };

  g_string_append_printf(out, "%s:\n", name);
  g_tree_foreach(tree, text_entry, &st);
}

gchar *
kq_stats_format_ostrich_text(const KqOstrichSummary *s)
{
  GString *out = g_string_new(NULL);

  text_section(out, "counters", s->counters, 'c');
  text_section(out, "gauges", s->gauges, 'g');
  text_section(out, "labels", s->labels, 'l');
  text_section(out, "metrics", s->metrics, 'm');
  return g_string_free(out, FALSE);
}
