/* kestreld's log writer on real files in a scratch directory: level filtering, SIGHUP reopen,
 * and the hourly/daily roll, with a fake clock moved across hour and day boundaries. */
#include <string.h>
#include <sys/types.h>
#include <utime.h>

#include <glib.h>
#include <glib/gstdio.h>

#include <kestrel/clock.h>
#include <kestrel/error.h>

#include "log.h"

static gchar *scratch_dir;
static gint64 fake_ms;

static gint64
fake_clock(gpointer user_data)
{
  return fake_ms;
}

/* Local time -> the fake clock (ms). */
static void
set_clock(gint year, gint month, gint day, gint hour, gint minute, gdouble seconds)
{
  g_autoptr(GDateTime) when = g_date_time_new_local(year, month, day, hour, minute, seconds);

  g_assert_nonnull(when);
  fake_ms = g_date_time_to_unix(when) * 1000 + g_date_time_get_microsecond(when) / 1000;
}

/* A fresh directory per test case, so names from one case never satisfy another. */
static gchar *
case_dir(const gchar *name)
{
  gchar *dir = g_build_filename(scratch_dir, name, NULL);

  g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
  return dir;
}

static gchar *
read_text(const gchar *path)
{
  gchar *text = NULL;
  g_autoptr(GError) error = NULL;

  g_file_get_contents(path, &text, NULL, &error);
  g_assert_no_error(error);
  return text;
}

static guint
count_entries(const gchar *dir)
{
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  guint n = 0;

  g_assert_nonnull(d);
  while (g_dir_read_name(d) != NULL)
    n++;
  return n;
}

static void
test_bad_names(void)
{
  g_autofree gchar *dir = case_dir("bad-names");
  g_autofree gchar *path = g_build_filename(dir, "k.log", NULL);
  g_autoptr(GError) error = NULL;

  g_assert_false(kq_log_setup(path, "chatty", "never", &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG);
  g_clear_error(&error);
  g_assert_false(kq_log_setup(path, "info", "monthly", &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG);
  g_clear_error(&error);

  /* A file that cannot be created is an error naming it. */
  g_assert_true(g_file_set_contents(path, "", 0, NULL));
  g_autofree gchar *under_file = g_build_filename(path, "k.log", NULL);
  g_assert_false(kq_log_setup(under_file, "info", "never", &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_IO);
  g_assert_nonnull(strstr(error->message, under_file));
  kq_log_shutdown();
}

/* Every threshold lets its own level and the more severe ones through, nothing below. */
static void
test_levels(void)
{
  static const gchar *const names[] = { "critical", "warning", "message", "info", "debug" };
  g_autofree gchar *dir = case_dir("levels");

  kq_clock_set(fake_clock, NULL);
  set_clock(2024, 5, 1, 10, 0, 0.25);
  for (gsize t = 0; t < G_N_ELEMENTS(names); t++) {
    g_autofree gchar *path = g_strdup_printf("%s/%s.log", dir, names[t]);
    g_autofree gchar *text = NULL;

    g_assert_true(kq_log_setup(path, names[t], "never", NULL));
    g_critical("line critical");
    g_warning("line warning");
    g_message("line message");
    g_info("line info");
    g_debug("line debug");
    kq_log_shutdown();
    text = read_text(path);
    for (gsize l = 0; l < G_N_ELEMENTS(names); l++) {
      g_autofree gchar *label = g_ascii_strup(names[l], -1);
      g_autofree gchar *expected =
        g_strdup_printf("2024-05-01 10:00:00.250 %s line %s\n", label, names[l]);
      if (l <= t)
        g_assert_nonnull(strstr(text, expected));
      else
        g_assert_null(strstr(text, expected));
    }
  }
  kq_clock_set(NULL, NULL);
}

/* Kestrel's Policy.SigHup: the operator renames the file and sends HUP; the old file keeps
 * the earlier lines, the new one gets the later lines. No roll at hour or day boundaries. */
static void
test_sighup_reopen(void)
{
  g_autofree gchar *dir = case_dir("sighup");
  g_autofree gchar *path = g_build_filename(dir, "kestrel.log", NULL);
  g_autofree gchar *moved = g_build_filename(dir, "kestrel.log.1", NULL);
  g_autofree gchar *old_text = NULL;
  g_autofree gchar *new_text = NULL;

  kq_clock_set(fake_clock, NULL);
  set_clock(2024, 5, 1, 23, 59, 59);
  g_assert_true(kq_log_setup(path, "info", "sighup", NULL));
  g_message("before the move");
  set_clock(2024, 5, 2, 0, 0, 1);
  g_message("after midnight, still the same file");
  g_assert_cmpint(g_rename(path, moved), ==, 0);
  g_message("written to the moved file until HUP");
  kq_log_reopen();
  g_message("after reopen");
  kq_log_shutdown();

  old_text = read_text(moved);
  new_text = read_text(path);
  g_assert_cmpstr(old_text, ==,
                  "2024-05-01 23:59:59.000 MESSAGE before the move\n"
                  "2024-05-02 00:00:01.000 MESSAGE after midnight, still the same file\n"
                  "2024-05-02 00:00:01.000 MESSAGE written to the moved file until HUP\n");
  g_assert_cmpstr(new_text, ==, "2024-05-02 00:00:01.000 MESSAGE after reopen\n");
  g_assert_cmpuint(count_entries(dir), ==, 2);
  kq_clock_set(NULL, NULL);
}

static void
test_never_rolls_not(void)
{
  g_autofree gchar *dir = case_dir("never");
  g_autofree gchar *path = g_build_filename(dir, "kestrel.log", NULL);
  g_autofree gchar *text = NULL;

  kq_clock_set(fake_clock, NULL);
  set_clock(2024, 5, 1, 23, 59, 59);
  g_assert_true(kq_log_setup(path, "info", "never", NULL));
  g_message("one");
  set_clock(2024, 5, 3, 1, 0, 0);
  g_message("two");
  kq_log_shutdown();
  text = read_text(path);
  g_assert_cmpstr(text, ==,
                  "2024-05-01 23:59:59.000 MESSAGE one\n"
                  "2024-05-03 01:00:00.000 MESSAGE two\n");
  g_assert_cmpuint(count_entries(dir), ==, 1);
  kq_clock_set(NULL, NULL);
}

/* hourly: the file is renamed kestrel-YYYYMMDD-HH.log after the hour it was opened in, at the
 * first line of a later hour; lines within the hour stay; a quiet gap of hours rolls once. */
static void
test_hourly(void)
{
  g_autofree gchar *dir = case_dir("hourly");
  g_autofree gchar *path = g_build_filename(dir, "kestrel.log", NULL);
  g_autofree gchar *r12 = g_build_filename(dir, "kestrel-20240501-12.log", NULL);
  g_autofree gchar *r13 = g_build_filename(dir, "kestrel-20240501-13.log", NULL);
  g_autofree gchar *t12 = NULL, *t13 = NULL, *text = NULL;

  kq_clock_set(fake_clock, NULL);
  set_clock(2024, 5, 1, 12, 30, 0);
  g_assert_true(kq_log_setup(path, "info", "hourly", NULL));
  g_message("a");
  set_clock(2024, 5, 1, 12, 59, 59.999);
  g_message("b");
  g_assert_false(g_file_test(r12, G_FILE_TEST_EXISTS));
  set_clock(2024, 5, 1, 13, 0, 0);
  g_message("c");
  set_clock(2024, 5, 1, 13, 45, 0);
  g_message("d");
  /* Nothing written from 14:00 to 16:10: the 13 o'clock file holds everything until then. */
  set_clock(2024, 5, 1, 16, 10, 0);
  g_message("e");
  kq_log_shutdown();

  t12 = read_text(r12);
  t13 = read_text(r13);
  text = read_text(path);
  g_assert_cmpstr(t12, ==,
                  "2024-05-01 12:30:00.000 MESSAGE a\n"
                  "2024-05-01 12:59:59.999 MESSAGE b\n");
  g_assert_cmpstr(t13, ==,
                  "2024-05-01 13:00:00.000 MESSAGE c\n"
                  "2024-05-01 13:45:00.000 MESSAGE d\n");
  g_assert_cmpstr(text, ==, "2024-05-01 16:10:00.000 MESSAGE e\n");
  g_assert_cmpuint(count_entries(dir), ==, 3);
  kq_clock_set(NULL, NULL);
}

/* daily: kestrel-YYYYMMDD.log at the first line after midnight; hours do not roll. */
static void
test_daily(void)
{
  g_autofree gchar *dir = case_dir("daily");
  g_autofree gchar *path = g_build_filename(dir, "kestrel.log", NULL);
  g_autofree gchar *rolled = g_build_filename(dir, "kestrel-20240501.log", NULL);
  g_autofree gchar *old_text = NULL, *text = NULL;

  kq_clock_set(fake_clock, NULL);
  set_clock(2024, 5, 1, 9, 0, 0);
  g_assert_true(kq_log_setup(path, "info", "daily", NULL));
  g_message("morning");
  set_clock(2024, 5, 1, 23, 59, 59);
  g_message("night");
  g_assert_cmpuint(count_entries(dir), ==, 1);
  set_clock(2024, 5, 2, 0, 0, 0.5);
  g_message("next day");
  kq_log_shutdown();

  old_text = read_text(rolled);
  text = read_text(path);
  g_assert_cmpstr(old_text, ==,
                  "2024-05-01 09:00:00.000 MESSAGE morning\n"
                  "2024-05-01 23:59:59.000 MESSAGE night\n");
  g_assert_cmpstr(text, ==, "2024-05-02 00:00:00.500 MESSAGE next day\n");
  kq_clock_set(NULL, NULL);
}

/* A rolled name already taken (a restart within the period, an operator's copy) is kept:
 * the new one gets "-1", then "-2", before the extension. A name without extension gets the
 * period at its end. */
static void
test_roll_name_taken(void)
{
  g_autofree gchar *dir = case_dir("taken");
  g_autofree gchar *path = g_build_filename(dir, "kestreld", NULL);
  g_autofree gchar *first = g_build_filename(dir, "kestreld-20240501", NULL);
  g_autofree gchar *second = g_build_filename(dir, "kestreld-20240501-1", NULL);
  g_autofree gchar *t1 = NULL, *t2 = NULL;

  g_assert_true(g_file_set_contents(first, "kept\n", -1, NULL));
  kq_clock_set(fake_clock, NULL);
  set_clock(2024, 5, 1, 8, 0, 0);
  g_assert_true(kq_log_setup(path, "info", "daily", NULL));
  g_message("day one");
  set_clock(2024, 5, 2, 8, 0, 0);
  g_message("day two");
  kq_log_shutdown();

  t1 = read_text(first);
  t2 = read_text(second);
  g_assert_cmpstr(t1, ==, "kept\n");
  g_assert_cmpstr(t2, ==, "2024-05-01 08:00:00.000 MESSAGE day one\n");
  kq_clock_set(NULL, NULL);
}

/* A non-empty file found at start-up belongs to the period of its last write: it is rolled
 * under that name at the first line, not named after the start time. */
static void
test_existing_file_period(void)
{
  g_autofree gchar *dir = case_dir("existing");
  g_autofree gchar *path = g_build_filename(dir, "kestrel.log", NULL);
  g_autofree gchar *rolled = g_build_filename(dir, "kestrel-20240501-10.log", NULL);
  g_autofree gchar *old_text = NULL, *text = NULL;
  struct utimbuf times;

  kq_clock_set(fake_clock, NULL);
  set_clock(2024, 5, 1, 10, 20, 0);
  times.actime = times.modtime = fake_ms / 1000;
  g_assert_true(g_file_set_contents(path, "from the last run\n", -1, NULL));
  g_assert_cmpint(g_utime(path, &times), ==, 0);

  set_clock(2024, 5, 1, 12, 5, 0);
  g_assert_true(kq_log_setup(path, "info", "hourly", NULL));
  g_message("started");
  kq_log_shutdown();

  old_text = read_text(rolled);
  text = read_text(path);
  g_assert_cmpstr(old_text, ==, "from the last run\n");
  g_assert_cmpstr(text, ==, "2024-05-01 12:05:00.000 MESSAGE started\n");
  kq_clock_set(NULL, NULL);
}

/* Like Kestrel, a missing log directory is created (at start and on reopen). */
static void
test_creates_directory(void)
{
  g_autofree gchar *dir = case_dir("mkdir");
  g_autofree gchar *sub = g_build_filename(dir, "var", "log", NULL);
  g_autofree gchar *path = g_build_filename(sub, "kestrel.log", NULL);
  g_autofree gchar *moved = g_build_filename(dir, "moved", NULL);

  g_assert_true(kq_log_setup(path, "info", "sighup", NULL));
  g_message("one");
  g_assert_true(g_file_test(path, G_FILE_TEST_IS_REGULAR));
  g_assert_cmpint(g_rename(sub, moved), ==, 0);
  kq_log_reopen();
  g_message("two");
  kq_log_shutdown();
  g_assert_true(g_file_test(path, G_FILE_TEST_IS_REGULAR));
}

static void
remove_tree(const gchar *path)
{
  if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    const gchar *name;

    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
      g_autofree gchar *child = g_build_filename(path, name, NULL);
      remove_tree(child);
    }
  }
  g_remove(path);
}

int
main(int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  int rc;

  g_test_init(&argc, &argv, NULL);
  /* The level test writes warnings and criticals on purpose; only errors stay fatal. */
  g_log_set_always_fatal(G_LOG_FATAL_MASK);
  scratch_dir = g_dir_make_tmp("kestrel-test-log-XXXXXX", &error);
  g_assert_no_error(error);

  g_test_add_func("/log/bad-names", test_bad_names);
  g_test_add_func("/log/levels", test_levels);
  g_test_add_func("/log/sighup-reopen", test_sighup_reopen);
  g_test_add_func("/log/never", test_never_rolls_not);
  g_test_add_func("/log/hourly", test_hourly);
  g_test_add_func("/log/daily", test_daily);
  g_test_add_func("/log/roll-name-taken", test_roll_name_taken);
  g_test_add_func("/log/existing-file-period", test_existing_file_period);
  g_test_add_func("/log/creates-directory", test_creates_directory);
  rc = g_test_run();
  remove_tree(scratch_dir);
  g_free(scratch_dir);
  return rc;
}
