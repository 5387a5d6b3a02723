/* Result output of kestrel-load (see load-report.h). */
#include "config.h"

#include <stdio.h>

#include "load-report.h"

static const double quantiles[] = { 0.50, 0.90, 0.99, 0.999 };
static const char *const qnames[] = { "p50", "p90", "p99", "p999" };

void load_report_tally(LoadReport *report, const LoadRun *run, guint max_missing)
{
  report->lost = 0;
  if (!report->missing)
    report->missing = g_array_new(FALSE, FALSE, sizeof(guint64));
  if (!report->checked)
    return;
  for (guint64 s = 0; s < run->slots; s++) {
    if (run->stored[s] && atomic_load(&run->seen[s]) == 0) {
      report->lost++;
      if (report->missing->len < max_missing)
        g_array_append_val(report->missing, s);
    }
  }
}

static gdouble rate(guint64 n, gdouble seconds)
{
  return seconds > 0 ? (gdouble)n / seconds : 0;
}

static void print_latency(GString *out, const gchar *name, const LoadHistogram *h)
{
  g_string_append_printf(out, "%s", name);
  for (guint i = 0; i < G_N_ELEMENTS(quantiles); i++)
    g_string_append_printf(out, " %s=%.3fms", qnames[i],
                           (double)load_hist_quantile(h, quantiles[i]) / 1e6);
}

static void json_latency(GString *out, const gchar *name, const LoadHistogram *h)
{
  g_string_append_printf(out, "\"%s\":{\"count\":%" G_GUINT64_FORMAT, name, h->total);
  for (guint i = 0; i < G_N_ELEMENTS(quantiles); i++)
    g_string_append_printf(out, ",\"%s\":%.6f", qnames[i],
                           (double)load_hist_quantile(h, quantiles[i]) / 1e6);
  g_string_append_printf(out, ",\"max\":%.6f}", (double)h->max / 1e6);
}

#define N(field) ((guint64)atomic_load(&((LoadRun *)run)->field))

void load_report_print(const LoadReport *r, const LoadRun *run, gboolean json)
{
  GString *out = g_string_new(NULL);
  gdouble put_rate = rate(N(puts), r->put_seconds), get_rate = rate(N(gets), r->get_seconds);
  if (json) {
    g_string_append_printf(out,
      "{\"command\":\"%s\",\"seed\":%u,\"items\":%" G_GUINT64_FORMAT ",\"seconds\":%.6f,"
      "\"puts\":%" G_GUINT64_FORMAT ",\"gets\":%" G_GUINT64_FORMAT ","
      "\"puts_per_sec\":%.1f,\"gets_per_sec\":%.1f,\"refused\":%" G_GUINT64_FORMAT ","
      "\"empty_gets\":%" G_GUINT64_FORMAT ",\"errors\":%" G_GUINT64_FORMAT ","
      "\"drops\":%" G_GUINT64_FORMAT ",\"kills\":%" G_GUINT64_FORMAT ",\"checked\":%s,"
      "\"delivered\":%" G_GUINT64_FORMAT ",\"lost\":%" G_GUINT64_FORMAT ","
      "\"duplicated\":%" G_GUINT64_FORMAT ",\"corrupted\":%" G_GUINT64_FORMAT ",\"latency_ms\":{",
      r->command, run->seed, r->items, r->seconds, N(puts), N(gets), put_rate, get_rate, N(refused),
      N(empty_gets), N(errors), N(drops), N(kills), r->checked ? "true" : "false", N(distinct),
      r->lost, N(duplicated), N(corrupted));
    json_latency(out, "put", &run->put_hist);
    g_string_append_c(out, ',');
    json_latency(out, "get", &run->get_hist);
    g_string_append(out, "}}\n");
  } else {
    g_string_append_printf(out,
      "%s: put %" G_GUINT64_FORMAT " (refused %" G_GUINT64_FORMAT "), got %" G_GUINT64_FORMAT
      " (empty gets %" G_GUINT64_FORMAT "), delivered %" G_GUINT64_FORMAT ", errors %"
      G_GUINT64_FORMAT, r->command, N(puts), N(refused), N(gets), N(empty_gets), N(distinct),
      N(errors));
    if (N(drops))
      g_string_append_printf(out, ", dropped reads %" G_GUINT64_FORMAT, N(drops));
    if (N(kills))
      g_string_append_printf(out, ", killed clients %" G_GUINT64_FORMAT, N(kills));
    g_string_append_printf(out, ", seed %u\n", run->seed);
    if (r->lost) {
      g_string_append_printf(out, "%s: missing items:", r->command);
      for (guint i = 0; i < r->missing->len; i++)
        g_string_append_printf(out, " %" G_GUINT64_FORMAT, g_array_index(r->missing, guint64, i));
      if (r->lost > r->missing->len)
        g_string_append_printf(out, " ... (%" G_GUINT64_FORMAT " in all)", r->lost);
      g_string_append_c(out, '\n');
    }
    g_string_append_printf(out, "%s: %" G_GUINT64_FORMAT " items in %.3f s: %.0f puts/s, %.0f gets/s; latency ",
                           r->command, r->items, r->seconds, put_rate, get_rate);
    print_latency(out, "put", &run->put_hist);
    g_string_append(out, ", ");
    print_latency(out, "get", &run->get_hist);
    g_string_append_printf(out, "; lost %" G_GUINT64_FORMAT "%s, duplicated %" G_GUINT64_FORMAT
                           ", corrupted %" G_GUINT64_FORMAT "\n", r->lost,
                           r->checked ? "" : " (not checked: nothing read back)",
                           N(duplicated), N(corrupted));
  }
  fputs(out->str, stdout);
  fflush(stdout);
  g_string_free(out, TRUE);
}

int load_report_exit_code(const LoadReport *r, const LoadRun *run)
{
  return (r->lost || N(corrupted) || N(errors)) ? 1 : 0;
}
