/* kestreld's log: a GLib structured-log writer printing
 * "YYYY-MM-DD HH:MM:SS.mmm LEVEL message" lines to stderr or a file, with a level threshold
 * and a roll policy (logFile / logLevel / logRoll of SPEC 8). */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  KQ_LOG_ROLL_NEVER,  /* one file forever */
  KQ_LOG_ROLL_HOURLY, /* kestrel.log -> kestrel-YYYYMMDD-HH.log at the first write of a new hour */
  KQ_LOG_ROLL_DAILY,  /* kestrel.log -> kestrel-YYYYMMDD.log at the first write of a new day */
  KQ_LOG_ROLL_SIGHUP, /* reopen FILE on SIGHUP (the operator moves it away first) */
} KqLogRoll;

/* "error", "critical", "warning", "message", "info", "debug" (case-insensitive): the least
 * severe level still written. */
gboolean kq_log_level_from_string(const gchar *text, GLogLevelFlags *out);
/* "never", "hourly", "daily", "sighup" (case-insensitive). */
gboolean kq_log_roll_from_string(const gchar *text, KqLogRoll *out);

/* Install the writer (thread-safe, may be called again to change settings). log_file NULL
 * writes to stderr; a missing parent directory of log_file is created. Fails if the file
 * cannot be opened or a name is unknown. Times (line stamps, roll periods) come from
 * kq_clock_now_ms(). */
gboolean kq_log_setup(const gchar *log_file, const gchar *level, const gchar *roll,
                      GError **error);

/* Reopen the log file (SIGHUP). Run from the event loop, not from a signal handler. */
void kq_log_reopen(void);

/* Close the log file and go back to stderr. */
void kq_log_shutdown(void);

G_END_DECLS
