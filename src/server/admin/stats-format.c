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

static void
prometheus_family(GString *out, const gchar *prefix, const KqStat *stat)
{
  g_string_append_printf(out, "# HELP %s%s ", prefix, stat->name);
  prometheus_escape(out, stat->help, FALSE);
  g_string_append_printf(out, "\n# TYPE %s%s %s\n", prefix, stat->name,
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
    g_string_append_printf(out, "kestrel_%s %s\n", stat->name, stat->value);
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
      if (stat->kind == KQ_STAT_TEXT || g_hash_table_contains(done, stat->name))
        continue;
      g_hash_table_add(done, (gpointer) stat->name);
      prometheus_family(out, "kestrel_queue_", stat);
      for (guint k = i; k < snapshot->names->len; k++) {
        const KqStat *sample = find_stat(snapshot->queues->pdata[k], stat->name);
        if (sample == NULL)
          continue;
        g_string_append_printf(out, "kestrel_queue_%s{queue=\"", stat->name);
        prometheus_escape(out, snapshot->names->pdata[k], TRUE);
        g_string_append_printf(out, "\"} %s\n", sample->value);
      }
    }
  }
  return g_string_free(out, FALSE);
}
