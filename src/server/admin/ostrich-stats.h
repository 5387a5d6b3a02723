/* Kestrel's stats in the model of Ostrich, the admin library Kestrel 2.4 served them with:
 * counters, gauges, labels and metrics (distributions), under Kestrel's own names (global ones,
 * and q/<queue>/<stat> per queue and alias). Also Ostrich's latched listeners behind
 * /stats.json?period=N: every N seconds the counters and metrics are replaced by what they did
 * in those N seconds. See docs/admin.md for the list of names. */
#pragma once
#include <glib.h>
#include <kestrel/latency.h>
#include "server.h"

struct event_base;

G_BEGIN_DECLS

/* Every tree is sorted by name (strcmp), as Ostrich prints them. */
typedef struct {
  GTree *counters; /* name -> gint64* */
  GTree *gauges;   /* name -> gdouble* */
  GTree *labels;   /* name -> gchar* */
  GTree *metrics;  /* name -> KqLatency*: a _usec one recorded in ns, a _msec one in ms */
} KqOstrichSummary;

/* The current stats; every counter and metric counts since start. */
KqOstrichSummary *kq_ostrich_summary_take(KqServer *server);
void kq_ostrich_summary_free(KqOstrichSummary *summary);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KqOstrichSummary, kq_ostrich_summary_free)

/* Listeners are made on first use of a period and then latch on their own timer. */
#define KQ_OSTRICH_MAX_PERIODS 16
#define KQ_OSTRICH_MAX_PERIOD_S 86400

typedef struct _KqOstrichListeners KqOstrichListeners;

#define KQ_OSTRICH_ERROR (kq_ostrich_error_quark())
GQuark kq_ostrich_error_quark(void);
typedef enum {
  KQ_OSTRICH_ERROR_BAD_PERIOD,       /* not 1 .. KQ_OSTRICH_MAX_PERIOD_S */
  KQ_OSTRICH_ERROR_TOO_MANY_PERIODS, /* KQ_OSTRICH_MAX_PERIODS others in use */
} KqOstrichError;

KqOstrichListeners *kq_ostrich_listeners_new(KqServer *server, struct event_base *base);
void kq_ostrich_listeners_free(KqOstrichListeners *listeners);
/* The summary latched for `period_s` (1 .. KQ_OSTRICH_MAX_PERIOD_S): made and latched now on
 * first use (its counters then count since start, as Ostrich's do), then every period_s
 * seconds counters and metrics hold the change over the last period; gauges and labels are as
 * at the latch. Borrowed until the next latch. NULL + KQ_OSTRICH_ERROR otherwise. */
const KqOstrichSummary *kq_ostrich_listeners_get(KqOstrichListeners *listeners, gint64 period_s,
                                                 GError **error);

G_END_DECLS
