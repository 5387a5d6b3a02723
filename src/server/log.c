/* kestreld's log writer (see log.h).
 *
 * Roll policies follow Kestrel's (util-logging's FileHandler):
 * - never:  one file, appended to forever.
 * - sighup: kq_log_reopen() closes and reopens FILE, so an operator (or logrotate) can move
 *   it away and send SIGHUP.
 * - hourly/daily: before the first line of a new hour/day, FILE is renamed after the period
 *   it was opened in, the way Kestrel names it ("kestrel.log" -> "kestrel-YYYYMMDD-HH.log" or
 *   "kestrel-YYYYMMDD.log"), and a fresh FILE is opened. Unlike Kestrel, a taken name is not
 *   overwritten: "-1", "-2", ... goes before the extension. The period of a non-empty file
 *   found at start-up is taken from its modification time (Kestrel uses the start time), so
 *   a file left from yesterday is not named after today.
 * Time comes from kq_clock_now_ms(), so tests can move it across a boundary. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <kestrel/clock.h>
#include <kestrel/error.h>

#include "log.h"

typedef struct {
  GMutex lock;
  gboolean installed;
  gchar *path;            /* NULL: stderr */
  FILE *file;             /* open log file, NULL when writing to stderr */
  GLogLevelFlags threshold;
  KqLogRoll roll;
  gchar *period;          /* roll period the open file belongs to (hourly/daily) */
} LogState;

static LogState state = { .threshold = G_LOG_LEVEL_INFO, .roll = KQ_LOG_ROLL_NEVER };

typedef struct {
  const gchar *name;
  GLogLevelFlags level;
  const gchar *label;
} LevelName;

/* Most to least severe: a threshold lets through its own level and those above it. */
static const LevelName levels[] = {
  { "error", G_LOG_LEVEL_ERROR, "ERROR" },
  { "critical", G_LOG_LEVEL_CRITICAL, "CRITICAL" },
  { "warning", G_LOG_LEVEL_WARNING, "WARNING" },
  { "message", G_LOG_LEVEL_MESSAGE, "MESSAGE" },
  { "info", G_LOG_LEVEL_INFO, "INFO" },
  { "debug", G_LOG_LEVEL_DEBUG, "DEBUG" },
};

gboolean
kq_log_level_from_string(const gchar *text, GLogLevelFlags *out)
{
  for (gsize i = 0; text != NULL && i < G_N_ELEMENTS(levels); i++) {
    if (g_ascii_strcasecmp(text, levels[i].name) == 0) {
      *out = levels[i].level;
      return TRUE;
    }
  }
  return FALSE;
}

gboolean
kq_log_roll_from_string(const gchar *text, KqLogRoll *out)
{
  static const gchar *const names[] = { "never", "hourly", "daily", "sighup" };

  for (gsize i = 0; text != NULL && i < G_N_ELEMENTS(names); i++) {
    if (g_ascii_strcasecmp(text, names[i]) == 0) {
      *out = (KqLogRoll) i;
      return TRUE;
    }
  }
  return FALSE;
}

/* Index in `levels` of a message's level; unknown bits count as debug. */
static gsize
level_index(GLogLevelFlags level)
{
  for (gsize i = 0; i < G_N_ELEMENTS(levels); i++)
    if (level & levels[i].level)
      return i;
  return G_N_ELEMENTS(levels) - 1;
}

/* The current local time from the (replaceable) clock, to the millisecond. */
static GDateTime *
now_local(void)
{
  gint64 ms = kq_clock_now_ms();
  g_autoptr(GDateTime) second = g_date_time_new_from_unix_local(ms / 1000);

  return g_date_time_add(second, (ms % 1000) * G_TIME_SPAN_MILLISECOND);
}

static gchar *
period_of(GDateTime *when, KqLogRoll roll)
{
  switch (roll) {
  case KQ_LOG_ROLL_HOURLY:
    return g_date_time_format(when, "%Y%m%d-%H");
  case KQ_LOG_ROLL_DAILY:
    return g_date_time_format(when, "%Y%m%d");
  case KQ_LOG_ROLL_NEVER:
  case KQ_LOG_ROLL_SIGHUP:
    break;
  }
  return NULL;
}

/* Open state.path for appending and note which roll period it holds. Like Kestrel, a
 * missing parent directory is created first. Lock held. */
static gboolean
open_file_locked(GError **error)
{
  struct stat st;
  g_autofree gchar *dir = g_path_get_dirname(state.path);
  FILE *file;

  if (g_mkdir_with_parents(dir, 0755) != 0) {
    int saved = errno;
    g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "cannot open log file %s: cannot create %s: %s",
                state.path, dir, g_strerror(saved));
    return FALSE;
  }
  file = fopen(state.path, "a");

  if (file == NULL) {
    int saved = errno;
    g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "cannot open log file %s: %s", state.path,
                g_strerror(saved));
    return FALSE;
  }
  state.file = file;
  g_clear_pointer(&state.period, g_free);
  if (state.roll == KQ_LOG_ROLL_HOURLY || state.roll == KQ_LOG_ROLL_DAILY) {
    g_autoptr(GDateTime) when = NULL;
    if (fstat(fileno(file), &st) == 0 && st.st_size > 0)
      when = g_date_time_new_from_unix_local(st.st_mtime);
    else
      when = now_local();
    state.period = period_of(when, state.roll);
  }
  return TRUE;
}

static void
close_file_locked(void)
{
  if (state.file != NULL)
    fclose(state.file);
  state.file = NULL;
}

/* Kestrel's name for a rolled file: PERIOD goes after a dash before the extension of the
 * file name ("/var/log/kestrel.log" -> "/var/log/kestrel-20240501-13.log"), at the end if the
 * name has none. n > 0 adds "-n" after PERIOD, for a name already taken. */
static gchar *
rolled_name(const gchar *path, const gchar *period, guint n)
{
  const gchar *slash = strrchr(path, '/');
  const gchar *base = slash != NULL ? slash + 1 : path;
  const gchar *dot = strrchr(base, '.');
  gsize stem = dot != NULL && dot != base ? (gsize) (dot - path) : strlen(path);
  g_autofree gchar *number = n > 0 ? g_strdup_printf("-%u", n) : g_strdup("");

  return g_strdup_printf("%.*s-%s%s%s", (int) stem, path, period, number, path + stem);
}

/* Move the finished period's file aside and start a new one. Lock held. */
static void
roll_locked(const gchar *new_period)
{
  g_autofree gchar *target = rolled_name(state.path, state.period, 0);

  close_file_locked();
  for (guint n = 1; g_file_test(target, G_FILE_TEST_EXISTS) && n < 1000; n++) {
    g_free(target);
    target = rolled_name(state.path, state.period, n);
  }
  if (rename(state.path, target) != 0)
    fprintf(stderr, "kestreld: cannot rename %s to %s: %s\n", state.path, target,
            g_strerror(errno));
  if (!open_file_locked(NULL))
    fprintf(stderr, "kestreld: cannot reopen log file %s\n", state.path);
  g_free(state.period);
  state.period = g_strdup(new_period);
}

static GLogWriterOutput
writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  gsize index = level_index(level);
  const gchar *message = NULL;
  g_autoptr(GDateTime) now = NULL;
  g_autofree gchar *stamp = NULL;
  FILE *out;

  for (gsize i = 0; i < n_fields; i++) {
    if (strcmp(fields[i].key, "MESSAGE") == 0) {
      message = fields[i].value;
      break;
    }
  }
  if (message == NULL)
    message = "";

  g_mutex_lock(&state.lock);
  if (index > level_index(state.threshold)) {
    g_mutex_unlock(&state.lock);
    return G_LOG_WRITER_HANDLED;
  }
  now = now_local();
  if (state.path != NULL && state.period != NULL) {
    g_autofree gchar *period = period_of(now, state.roll);
    if (g_strcmp0(period, state.period) != 0)
      roll_locked(period);
  }
  stamp = g_date_time_format(now, "%Y-%m-%d %H:%M:%S");
  out = state.file != NULL ? state.file : stderr;
  fprintf(out, "%s.%03d %s %s\n", stamp, g_date_time_get_microsecond(now) / 1000,
          levels[index].label, message);
  fflush(out);
  g_mutex_unlock(&state.lock);
  return G_LOG_WRITER_HANDLED;
}

/* g_warning()/g_info()/g_debug() without G_LOG_USE_STRUCTURED go through the default
 * handler, whose stock version drops info and debug unless G_MESSAGES_DEBUG is set; route
 * them to the writer so logLevel alone decides. */
static void
default_handler(const gchar *domain, GLogLevelFlags level, const gchar *message,
                gpointer user_data)
{
  const GLogField fields[] = {
    { "GLIB_DOMAIN", domain != NULL ? domain : "", -1 },
    { "MESSAGE", message != NULL ? message : "", -1 },
  };

  writer(level, fields, G_N_ELEMENTS(fields), NULL);
}

gboolean
kq_log_setup(const gchar *log_file, const gchar *level, const gchar *roll, GError **error)
{
  GLogLevelFlags threshold = G_LOG_LEVEL_INFO;
  KqLogRoll roll_policy = KQ_LOG_ROLL_NEVER;
  gboolean ok = TRUE;

  if (level != NULL && !kq_log_level_from_string(level, &threshold)) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG,
                "logLevel: expected error, critical, warning, message, info or debug, got '%s'",
                level);
    return FALSE;
  }
  if (roll != NULL && !kq_log_roll_from_string(roll, &roll_policy)) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG,
                "logRoll: expected never, hourly, daily or sighup, got '%s'", roll);
    return FALSE;
  }

  g_mutex_lock(&state.lock);
  close_file_locked();
  g_clear_pointer(&state.path, g_free);
  g_clear_pointer(&state.period, g_free);
  state.threshold = threshold;
  state.roll = roll_policy;
  if (log_file != NULL) {
    state.path = g_strdup(log_file);
    ok = open_file_locked(error);
    if (!ok)
      g_clear_pointer(&state.path, g_free);
  }
  /* GLib allows installing a writer only once per process. */
  if (!state.installed) {
    g_log_set_writer_func(writer, NULL, NULL);
    g_log_set_default_handler(default_handler, NULL);
    state.installed = TRUE;
  }
  g_mutex_unlock(&state.lock);
  return ok;
}

void
kq_log_reopen(void)
{
  g_autoptr(GError) error = NULL;
  gboolean ok = TRUE;

  g_mutex_lock(&state.lock);
  if (state.path != NULL) {
    close_file_locked();
    ok = open_file_locked(&error);
  }
  g_mutex_unlock(&state.lock);
  /* Logged after unlocking: the writer takes the lock (and falls back to stderr). */
  if (!ok)
    g_warning("%s", error->message);
}

void
kq_log_shutdown(void)
{
  g_mutex_lock(&state.lock);
  close_file_locked();
  g_clear_pointer(&state.path, g_free);
  g_clear_pointer(&state.period, g_free);
  g_mutex_unlock(&state.lock);
}
