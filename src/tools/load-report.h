/* kestrel-load results: totals of one command, printed as plain lines or one JSON object. */
#ifndef KESTREL_LOAD_REPORT_H
#define KESTREL_LOAD_REPORT_H

#include "load-engine.h"

typedef struct {
  const gchar *command;
  guint64 items;        /* the -n the user asked for (plus prefill where it applies) */
  gdouble seconds;      /* time of the measured phases */
  gdouble put_seconds;  /* time the rates of puts / gets refer to */
  gdouble get_seconds;
  gboolean checked;     /* items were read back, so loss is known */
  guint64 lost;
  GArray *missing;      /* guint64 seqs, the first few */
} LoadReport;

/* Counts stored-but-never-delivered items into report->lost. */
void load_report_tally(LoadReport *report, const LoadRun *run, guint max_missing);
void load_report_print(const LoadReport *report, const LoadRun *run, gboolean json);
/* 0 when nothing was lost or corrupted and no connection failed, else 1. */
int load_report_exit_code(const LoadReport *report, const LoadRun *run);

#endif
