/* Queue settings (SPEC 5): defaults, parse forms, errors, formatting round trip, and the
 * [default] -> [queue NAME] -> fanout child resolution of KqConfigSet. */
#include <string.h>

#include <kestrel/error.h>
#include <kestrel/settings.h>

#define MB (G_GINT64_CONSTANT(1) << 20)
#define GB (G_GINT64_CONSTANT(1) << 30)

static void
test_defaults(void)
{
  KqQueueSettings s;

  kq_settings_init_defaults(&s);
  g_assert_cmpint(s.max_items, ==, KQ_UNSET);
  g_assert_cmpint(s.max_size, ==, KQ_UNSET);
  g_assert_cmpint(s.max_item_size, ==, KQ_UNSET);
  g_assert_cmpint(s.max_age_ms, ==, KQ_UNSET);
  g_assert_cmpint(s.default_journal_size, ==, 16 * MB);
  g_assert_cmpint(s.max_memory_size, ==, 128 * MB);
  g_assert_cmpint(s.max_journal_size, ==, GB);
  g_assert_cmpint(s.min_journal_compact_delay_ms, ==, 60000);
  g_assert_false(s.discard_old_when_full);
  g_assert_true(s.keep_journal);
  g_assert_cmpint(s.sync_journal_ms, ==, KQ_UNSET);
  g_assert_null(s.expire_to_queue);
  g_assert_cmpint(s.max_expire_sweep, ==, KQ_UNSET);
  g_assert_false(s.fanout_only);
  g_assert_cmpint(s.max_queue_age_ms, ==, KQ_UNSET);
  g_assert_cmpint(s.open_transaction_timeout_ms, ==, KQ_UNSET);
  kq_settings_clear(&s);
}

static void
test_option_names(void)
{
  static const gchar *const spec_order[] = {
    "maxItems", "maxSize", "maxItemSize", "maxAge", "defaultJournalSize", "maxMemorySize",
    "maxJournalSize", "minJournalCompactDelay", "discardOldWhenFull", "keepJournal",
    "syncJournal", "expireToQueue", "maxExpireSweep", "fanoutOnly", "maxQueueAge",
    "openTransactionTimeout", NULL,
  };
  KqQueueSettings s;
  gsize i;

  kq_settings_init_defaults(&s);
  for (i = 0; spec_order[i] != NULL; i++) {
    g_autofree gchar *text = NULL;
    g_assert_cmpstr(kq_settings_option_names[i], ==, spec_order[i]);
    text = kq_settings_format(&s, spec_order[i]);
    g_assert_nonnull(text);
  }
  g_assert_null(kq_settings_option_names[i]);
  g_assert_null(kq_settings_format(&s, "noSuchOption"));
}

typedef struct {
  const gchar *text;
  gint64 value;
} Form;

static void
test_parse_size(void)
{
  static const Form forms[] = {
    { "16MB", 16 * MB }, { "16mb", 16 * MB }, { "16.megabytes", 16 * MB },
    { "1.megabyte", MB }, { "16 MB", 16 * MB }, { "16M", 16 * MB }, { "16MiB", 16 * MB },
    { "1.gigabyte", GB }, { "1GB", GB }, { "2.gigabytes", 2 * GB }, { "1G", GB },
    { "512KB", 512 * 1024 }, { "512.kilobytes", 512 * 1024 }, { "1K", 1024 },
    { "100B", 100 }, { "100.bytes", 100 }, { "1.byte", 1 }, { "4096", 4096 }, { "0", 0 },
    { "  7  ", 7 }, { "1TB", G_GINT64_CONSTANT(1) << 40 },
    { "none", KQ_UNSET }, { "None", KQ_UNSET }, { "unlimited", KQ_UNSET },
    { "8589934591GB", G_GINT64_CONSTANT(8589934591) * GB },
  };

  for (gsize i = 0; i < G_N_ELEMENTS(forms); i++) {
    g_autoptr(GError) error = NULL;
    gint64 value = -42;
    g_test_message("size '%s'", forms[i].text);
    g_assert_true(kq_parse_size(forms[i].text, &value, &error));
    g_assert_no_error(error);
    g_assert_cmpint(value, ==, forms[i].value);
  }
}

static void
test_parse_size_errors(void)
{
  static const gchar *const bad[] = {
    "", "abc", "-1", "+5", "1.5MB", "16XB", "MB", "16.", "16..megabytes", "16 . MB",
    "99999999999999999999", "9223372036854775807KB", "8589934592GB", "16.seconds",
  };

  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) error = NULL;
    gint64 value = 42;
    g_test_message("size '%s'", bad[i]);
    g_assert_false(kq_parse_size(bad[i], &value, &error));
    g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG);
    g_assert_nonnull(strstr(error->message, "expected a size"));
    g_assert_cmpint(value, ==, 42);
  }
}

static void
test_parse_duration(void)
{
  static const Form forms[] = {
    { "30s", 30000 }, { "30.seconds", 30000 }, { "1.second", 1000 }, { "30 sec", 30000 },
    { "250ms", 250 }, { "250.milliseconds", 250 }, { "1.millisecond", 1 },
    { "1min", 60000 }, { "2.minutes", 120000 }, { "1.minute", 60000 },
    { "2h", 7200000 }, { "1.hour", 3600000 }, { "3.hours", 10800000 },
    { "1d", 86400000 }, { "2.days", 172800000 }, { "1.day", 86400000 },
    { "1500", 1500 }, { "0", 0 }, { "0.seconds", 0 }, { "1800.seconds", 1800000 },
    { "30S", 30000 }, { "none", KQ_UNSET }, { "NONE", KQ_UNSET },
  };

  for (gsize i = 0; i < G_N_ELEMENTS(forms); i++) {
    g_autoptr(GError) error = NULL;
    gint64 value = -42;
    g_test_message("duration '%s'", forms[i].text);
    g_assert_true(kq_parse_duration(forms[i].text, &value, &error));
    g_assert_no_error(error);
    g_assert_cmpint(value, ==, forms[i].value);
  }
}

static void
test_parse_duration_errors(void)
{
  static const gchar *const bad[] = {
    "", "soon", "-5s", "1.5s", "5m", "5 parsecs", "30.", "never", "16MB",
    "9223372036854775807d", "99999999999999999999ms",
  };

  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) error = NULL;
    gint64 value = 42;
    g_test_message("duration '%s'", bad[i]);
    g_assert_false(kq_parse_duration(bad[i], &value, &error));
    g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG);
    g_assert_nonnull(strstr(error->message, "expected a duration"));
    g_assert_cmpint(value, ==, 42);
  }
}

static void
test_parse_bool(void)
{
  static const gchar *const yes[] = { "true", "TRUE", "yes", "on", "1", " True " };
  static const gchar *const no[] = { "false", "False", "no", "off", "0" };
  static const gchar *const bad[] = { "", "maybe", "2", "tru", "none" };
  gboolean value;

  for (gsize i = 0; i < G_N_ELEMENTS(yes); i++) {
    value = FALSE;
    g_assert_true(kq_parse_bool(yes[i], &value, NULL));
    g_assert_true(value);
  }
  for (gsize i = 0; i < G_N_ELEMENTS(no); i++) {
    value = TRUE;
    g_assert_true(kq_parse_bool(no[i], &value, NULL));
    g_assert_false(value);
  }
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) error = NULL;
    g_assert_false(kq_parse_bool(bad[i], &value, &error));
    g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG);
  }
}

static void
test_parse_count(void)
{
  g_autoptr(GError) error = NULL;
  gint64 value = 0;

  g_assert_true(kq_parse_count("1500000", FALSE, &value, NULL));
  g_assert_cmpint(value, ==, 1500000);
  g_assert_true(kq_parse_count("9223372036854775807", FALSE, &value, NULL));
  g_assert_cmpint(value, ==, G_MAXINT64);
  g_assert_true(kq_parse_count("none", TRUE, &value, NULL));
  g_assert_cmpint(value, ==, KQ_UNSET);
  g_assert_true(kq_parse_count("unlimited", TRUE, &value, NULL));
  g_assert_cmpint(value, ==, KQ_UNSET);

  g_assert_false(kq_parse_count("none", FALSE, &value, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG);
  g_assert_cmpstr(error->message, ==, "expected a whole number, got 'none'");
  g_clear_error(&error);

  g_assert_false(kq_parse_count("9223372036854775808", TRUE, &value, &error));
  g_assert_cmpstr(error->message, ==,
                  "expected a whole number or 'none', got '9223372036854775808' (too large)");
  g_clear_error(&error);

  static const gchar *const bad[] = { "", "-1", "12abc", "1e6", "0x10", "1 000", "+1", "1.0" };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_assert_false(kq_parse_count(bad[i], TRUE, &value, &error));
    g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG);
    g_clear_error(&error);
  }
}

static void
test_set_every_option(void)
{
  KqQueueSettings s;

  kq_settings_init_defaults(&s);
  g_assert_true(kq_settings_set(&s, "maxItems", "1500000", NULL));
  g_assert_true(kq_settings_set(&s, "maxSize", "128.megabytes", NULL));
  g_assert_true(kq_settings_set(&s, "maxItemSize", "64KB", NULL));
  g_assert_true(kq_settings_set(&s, "maxAge", "1800.seconds", NULL));
  g_assert_true(kq_settings_set(&s, "defaultJournalSize", "1MB", NULL));
  g_assert_true(kq_settings_set(&s, "maxMemorySize", "16.megabytes", NULL));
  g_assert_true(kq_settings_set(&s, "maxJournalSize", "128MB", NULL));
  g_assert_true(kq_settings_set(&s, "minJournalCompactDelay", "30s", NULL));
  g_assert_true(kq_settings_set(&s, "discardOldWhenFull", "true", NULL));
  g_assert_true(kq_settings_set(&s, "keepJournal", "false", NULL));
  g_assert_true(kq_settings_set(&s, "syncJournal", "10.milliseconds", NULL));
  g_assert_true(kq_settings_set(&s, "expireToQueue", "jobs_ready", NULL));
  g_assert_true(kq_settings_set(&s, "maxExpireSweep", "100", NULL));
  g_assert_true(kq_settings_set(&s, "fanoutOnly", "yes", NULL));
  g_assert_true(kq_settings_set(&s, "maxQueueAge", "1.day", NULL));
  g_assert_true(kq_settings_set(&s, "openTransactionTimeout", "2min", NULL));

  g_assert_cmpint(s.max_items, ==, 1500000);
  g_assert_cmpint(s.max_size, ==, 128 * MB);
  g_assert_cmpint(s.max_item_size, ==, 64 * 1024);
  g_assert_cmpint(s.max_age_ms, ==, 1800000);
  g_assert_cmpint(s.default_journal_size, ==, MB);
  g_assert_cmpint(s.max_memory_size, ==, 16 * MB);
  g_assert_cmpint(s.max_journal_size, ==, 128 * MB);
  g_assert_cmpint(s.min_journal_compact_delay_ms, ==, 30000);
  g_assert_true(s.discard_old_when_full);
  g_assert_false(s.keep_journal);
  g_assert_cmpint(s.sync_journal_ms, ==, 10);
  g_assert_cmpstr(s.expire_to_queue, ==, "jobs_ready");
  g_assert_cmpint(s.max_expire_sweep, ==, 100);
  g_assert_true(s.fanout_only);
  g_assert_cmpint(s.max_queue_age_ms, ==, 86400000);
  g_assert_cmpint(s.open_transaction_timeout_ms, ==, 120000);

  /* "none" unsets again. */
  g_assert_true(kq_settings_set(&s, "maxItems", "none", NULL));
  g_assert_true(kq_settings_set(&s, "maxAge", "none", NULL));
  g_assert_true(kq_settings_set(&s, "expireToQueue", "none", NULL));
  g_assert_true(kq_settings_set(&s, "minJournalCompactDelay", "none", NULL));
  g_assert_cmpint(s.max_items, ==, KQ_UNSET);
  g_assert_cmpint(s.max_age_ms, ==, KQ_UNSET);
  g_assert_null(s.expire_to_queue);
  g_assert_cmpint(s.min_journal_compact_delay_ms, ==, KQ_UNSET);
  kq_settings_clear(&s);
  g_assert_null(s.expire_to_queue);
}

static void
test_sync_journal(void)
{
  static const Form forms[] = {
    { "never", KQ_UNSET }, { "Never", KQ_UNSET }, { "none", KQ_UNSET }, { "false", KQ_UNSET },
    { "0", 0 }, { "0.seconds", 0 }, { "0ms", 0 }, { "true", 0 },
    { "100.milliseconds", 100 }, { "100ms", 100 }, { "1s", 1000 }, { "250", 250 },
  };
  KqQueueSettings s;

  kq_settings_init_defaults(&s);
  for (gsize i = 0; i < G_N_ELEMENTS(forms); i++) {
    g_test_message("syncJournal '%s'", forms[i].text);
    g_assert_true(kq_settings_set(&s, "syncJournal", forms[i].text, NULL));
    g_assert_cmpint(s.sync_journal_ms, ==, forms[i].value);
  }
  g_autoptr(GError) error = NULL;
  g_assert_false(kq_settings_set(&s, "syncJournal", "often", &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG);
  g_assert_true(g_str_has_prefix(error->message, "syncJournal: expected 'never', 0"));
  g_assert_nonnull(strstr(error->message, "got 'often'"));
}

static void
test_errors_name_option(void)
{
  KqQueueSettings s;
  GError *error = NULL;

  kq_settings_init_defaults(&s);
  g_assert_false(kq_settings_set(&s, "maxItems", "abc", &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG);
  g_assert_cmpstr(error->message, ==, "maxItems: expected a whole number or 'none', got 'abc'");
  g_clear_error(&error);

  g_assert_false(kq_settings_set(&s, "maxSize", "lots", &error));
  g_assert_true(g_str_has_prefix(error->message, "maxSize: expected a size"));
  g_assert_nonnull(strstr(error->message, "got 'lots'"));
  g_clear_error(&error);

  g_assert_false(kq_settings_set(&s, "maxAge", "forever", &error));
  g_assert_true(g_str_has_prefix(error->message, "maxAge: expected a duration"));
  g_clear_error(&error);

  g_assert_false(kq_settings_set(&s, "keepJournal", "perhaps", &error));
  g_assert_true(g_str_has_prefix(error->message, "keepJournal: expected true or false"));
  g_clear_error(&error);

  /* The journal thresholds have no "none". */
  g_assert_false(kq_settings_set(&s, "maxMemorySize", "none", &error));
  g_assert_true(g_str_has_prefix(error->message, "maxMemorySize: expected a size"));
  g_clear_error(&error);
  g_assert_false(kq_settings_set(&s, "defaultJournalSize", "none", &error));
  g_clear_error(&error);
  g_assert_false(kq_settings_set(&s, "maxJournalSize", "unlimited", &error));
  g_clear_error(&error);

  g_assert_false(kq_settings_set(&s, "expireToQueue", "bad/name", &error));
  g_assert_true(g_str_has_prefix(error->message, "expireToQueue: expected a queue name"));
  g_clear_error(&error);
  g_assert_false(kq_settings_set(&s, "expireToQueue", "a.b", &error));
  g_clear_error(&error);

  g_assert_false(kq_settings_set(&s, "maxitems", "5", &error));
  g_assert_true(g_str_has_prefix(error->message, "maxitems: unknown queue option"));
  g_assert_nonnull(strstr(error->message, "maxItems"));
  g_assert_nonnull(strstr(error->message, "openTransactionTimeout"));
  g_clear_error(&error);

  /* A failed set leaves the old value. */
  g_assert_cmpint(s.max_items, ==, KQ_UNSET);
  g_assert_cmpint(s.max_memory_size, ==, 128 * MB);
  g_assert_null(s.expire_to_queue);
  kq_settings_clear(&s);
}

static void
assert_settings_equal(const KqQueueSettings *a, const KqQueueSettings *b)
{
  g_assert_cmpint(a->max_items, ==, b->max_items);
  g_assert_cmpint(a->max_size, ==, b->max_size);
  g_assert_cmpint(a->max_item_size, ==, b->max_item_size);
  g_assert_cmpint(a->max_age_ms, ==, b->max_age_ms);
  g_assert_cmpint(a->default_journal_size, ==, b->default_journal_size);
  g_assert_cmpint(a->max_memory_size, ==, b->max_memory_size);
  g_assert_cmpint(a->max_journal_size, ==, b->max_journal_size);
  g_assert_cmpint(a->min_journal_compact_delay_ms, ==, b->min_journal_compact_delay_ms);
  g_assert_cmpint(a->discard_old_when_full, ==, b->discard_old_when_full);
  g_assert_cmpint(a->keep_journal, ==, b->keep_journal);
  g_assert_cmpint(a->sync_journal_ms, ==, b->sync_journal_ms);
  g_assert_cmpstr(a->expire_to_queue, ==, b->expire_to_queue);
  g_assert_cmpint(a->max_expire_sweep, ==, b->max_expire_sweep);
  g_assert_cmpint(a->fanout_only, ==, b->fanout_only);
  g_assert_cmpint(a->max_queue_age_ms, ==, b->max_queue_age_ms);
  g_assert_cmpint(a->open_transaction_timeout_ms, ==, b->open_transaction_timeout_ms);
}

/* Every printed value is accepted back and gives the same settings. */
static void
round_trip(const KqQueueSettings *original)
{
  KqQueueSettings copy;

  kq_settings_init_defaults(&copy);
  copy.max_items = 77; /* make sure every field is really overwritten */
  copy.keep_journal = !original->keep_journal;
  for (gsize i = 0; kq_settings_option_names[i] != NULL; i++) {
    g_autofree gchar *text = kq_settings_format(original, kq_settings_option_names[i]);
    g_autoptr(GError) error = NULL;
    g_assert_true(kq_settings_set(&copy, kq_settings_option_names[i], text, &error));
    g_assert_no_error(error);
  }
  assert_settings_equal(original, &copy);
  kq_settings_clear(&copy);
}

static void
test_format(void)
{
  KqQueueSettings s;
  static const struct {
    const gchar *option;
    const gchar *text;
  } defaults[] = {
    { "maxItems", "none" }, { "maxSize", "none" }, { "maxItemSize", "none" },
    { "maxAge", "none" }, { "defaultJournalSize", "16777216" },
    { "maxMemorySize", "134217728" }, { "maxJournalSize", "1073741824" },
    { "minJournalCompactDelay", "60000ms" }, { "discardOldWhenFull", "false" },
    { "keepJournal", "true" }, { "syncJournal", "never" }, { "expireToQueue", "none" },
    { "maxExpireSweep", "none" }, { "fanoutOnly", "false" }, { "maxQueueAge", "none" },
    { "openTransactionTimeout", "none" },
  };

  kq_settings_init_defaults(&s);
  for (gsize i = 0; i < G_N_ELEMENTS(defaults); i++) {
    g_autofree gchar *text = kq_settings_format(&s, defaults[i].option);
    g_assert_cmpstr(text, ==, defaults[i].text);
  }
  round_trip(&s);

  g_assert_true(kq_settings_set(&s, "maxItems", "1500000", NULL));
  g_assert_true(kq_settings_set(&s, "maxSize", "1GB", NULL));
  g_assert_true(kq_settings_set(&s, "maxItemSize", "0", NULL));
  g_assert_true(kq_settings_set(&s, "maxAge", "30.seconds", NULL));
  g_assert_true(kq_settings_set(&s, "minJournalCompactDelay", "none", NULL));
  g_assert_true(kq_settings_set(&s, "discardOldWhenFull", "on", NULL));
  g_assert_true(kq_settings_set(&s, "keepJournal", "off", NULL));
  g_assert_true(kq_settings_set(&s, "syncJournal", "0.seconds", NULL));
  g_assert_true(kq_settings_set(&s, "expireToQueue", "jobs_ready", NULL));
  g_assert_true(kq_settings_set(&s, "maxExpireSweep", "0", NULL));
  g_assert_true(kq_settings_set(&s, "fanoutOnly", "1", NULL));
  g_assert_true(kq_settings_set(&s, "maxQueueAge", "2h", NULL));
  g_assert_true(kq_settings_set(&s, "openTransactionTimeout", "250ms", NULL));
  {
    g_autofree gchar *age = kq_settings_format(&s, "maxAge");
    g_autofree gchar *sync = kq_settings_format(&s, "syncJournal");
    g_autofree gchar *size = kq_settings_format(&s, "maxSize");
    g_autofree gchar *dest = kq_settings_format(&s, "expireToQueue");
    g_assert_cmpstr(age, ==, "30000ms");
    g_assert_cmpstr(sync, ==, "0ms");
    g_assert_cmpstr(size, ==, "1073741824");
    g_assert_cmpstr(dest, ==, "jobs_ready");
  }
  round_trip(&s);
  g_assert_true(kq_settings_set(&s, "syncJournal", "100ms", NULL));
  round_trip(&s);
  kq_settings_clear(&s);
}

static void
test_copy(void)
{
  KqQueueSettings a, b;

  kq_settings_init_defaults(&a);
  g_assert_true(kq_settings_set(&a, "expireToQueue", "later", NULL));
  g_assert_true(kq_settings_set(&a, "maxItems", "5", NULL));
  kq_settings_copy(&b, &a);
  g_assert_true(b.expire_to_queue != a.expire_to_queue);
  assert_settings_equal(&a, &b);
  kq_settings_clear(&a);
  g_assert_cmpstr(b.expire_to_queue, ==, "later");
  kq_settings_clear(&b);
}

/* ---- KqConfigSet ------------------------------------------------------------------------ */

static KqConfigSet *
load_set(const gchar *text, GError **error)
{
  g_autoptr(GKeyFile) key_file = g_key_file_new();
  g_autoptr(KqConfigSet) set = kq_config_set_new();

  g_assert_true(g_key_file_load_from_data(key_file, text, -1, G_KEY_FILE_NONE, NULL));
  if (!kq_config_set_load_key_file(set, key_file, "test.conf", error))
    return NULL;
  return g_steal_pointer(&set);
}

static void
test_set_resolution(void)
{
  static const gchar text[] =
    "[server]\n"
    "ignored = here\n"
    "[default]\n"
    "maxItems = 1000\n"
    "maxAge = 1.hour\n"
    "syncJournal = 100.milliseconds\n"
    "[queue orders]\n"
    "maxItems = 50\n"
    "expireToQueue = expired\n"
    "fanoutOnly = true\n"
    "[queue orders+audit]\n"
    "maxItems = 7\n"
    "fanoutOnly = false\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(KqConfigSet) set = load_set(text, &error);
  KqQueueSettings s;

  g_assert_no_error(error);
  g_assert_nonnull(set);

  /* An unconfigured queue: [default] over built-ins. */
  kq_config_set_resolve(set, "other", &s);
  g_assert_cmpint(s.max_items, ==, 1000);
  g_assert_cmpint(s.max_age_ms, ==, 3600000);
  g_assert_cmpint(s.sync_journal_ms, ==, 100);
  g_assert_cmpint(s.max_memory_size, ==, 128 * MB);
  g_assert_null(s.expire_to_queue);
  kq_settings_clear(&s);

  /* Its own group wins, the rest comes from [default]. */
  kq_config_set_resolve(set, "orders", &s);
  g_assert_cmpint(s.max_items, ==, 50);
  g_assert_cmpint(s.max_age_ms, ==, 3600000);
  g_assert_cmpstr(s.expire_to_queue, ==, "expired");
  g_assert_true(s.fanout_only);
  kq_settings_clear(&s);

  /* A child without a group inherits the parent's explicit options. */
  kq_config_set_resolve(set, "orders+billing", &s);
  g_assert_cmpint(s.max_items, ==, 50);
  g_assert_cmpstr(s.expire_to_queue, ==, "expired");
  g_assert_cmpint(s.sync_journal_ms, ==, 100);
  kq_settings_clear(&s);

  /* A child with its own group: its options win, the parent fills in the rest. */
  kq_config_set_resolve(set, "orders+audit", &s);
  g_assert_cmpint(s.max_items, ==, 7);
  g_assert_false(s.fanout_only);
  g_assert_cmpstr(s.expire_to_queue, ==, "expired");
  g_assert_cmpint(s.max_age_ms, ==, 3600000);
  kq_settings_clear(&s);

  /* A child of an unconfigured parent gets [default]. */
  kq_config_set_resolve(set, "other+x", &s);
  g_assert_cmpint(s.max_items, ==, 1000);
  kq_settings_clear(&s);

  /* No set at all: built-ins. */
  kq_config_set_resolve(NULL, "orders", &s);
  g_assert_cmpint(s.max_items, ==, KQ_UNSET);
  kq_settings_clear(&s);

  g_autoptr(GPtrArray) names = kq_config_set_queue_names(set);
  g_assert_cmpuint(names->len, ==, 2);
  g_assert_cmpstr(g_ptr_array_index(names, 0), ==, "orders");
  g_assert_cmpstr(g_ptr_array_index(names, 1), ==, "orders+audit");
}

static void
test_set_aliases(void)
{
  static const gchar text[] =
    "[alias wx_updates]\n"
    "destinationQueues = weather_updates\n"
    "[alias spam_all]\n"
    "destinationQueues = spam;spam0;\n"
    "[alias spaced]\n"
    "destinationQueues = a ; b\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(KqConfigSet) set = load_set(text, &error);
  const gchar *const *dest;

  g_assert_no_error(error);
  dest = kq_config_set_alias_destinations(set, "spam_all");
  g_assert_nonnull(dest);
  g_assert_cmpstr(dest[0], ==, "spam");
  g_assert_cmpstr(dest[1], ==, "spam0");
  g_assert_null(dest[2]);
  dest = kq_config_set_alias_destinations(set, "wx_updates");
  g_assert_cmpstr(dest[0], ==, "weather_updates");
  g_assert_null(dest[1]);
  dest = kq_config_set_alias_destinations(set, "spaced");
  g_assert_cmpstr(dest[0], ==, "a");
  g_assert_cmpstr(dest[1], ==, "b");
  g_assert_null(kq_config_set_alias_destinations(set, "weather_updates"));
  g_assert_null(kq_config_set_alias_destinations(NULL, "spam_all"));

  g_autoptr(GPtrArray) names = kq_config_set_alias_names(set);
  g_assert_cmpuint(names->len, ==, 3);
  g_assert_cmpstr(g_ptr_array_index(names, 0), ==, "spaced");
  g_assert_cmpstr(g_ptr_array_index(names, 1), ==, "spam_all");
  g_assert_cmpstr(g_ptr_array_index(names, 2), ==, "wx_updates");
  g_autoptr(GPtrArray) queues = kq_config_set_queue_names(set);
  g_assert_cmpuint(queues->len, ==, 0);
}

typedef struct {
  const gchar *text;
  const gchar *prefix; /* the error message must start with this */
  const gchar *also;   /* and contain this (or NULL) */
} BadFile;

static void
test_set_errors(void)
{
  static const BadFile bad[] = {
    { "[default]\nmaxitems = 5\n", "test.conf: [default] maxitems: unknown queue option",
      "accepted: maxItems, maxSize" },
    { "[queue a]\nmaxItems = abc\n",
      "test.conf: [queue a] maxItems: expected a whole number or 'none', got 'abc'", NULL },
    { "[queue a]\nmaxAge = 5 parsecs\n", "test.conf: [queue a] maxAge: expected a duration",
      "got '5 parsecs'" },
    { "[queue a]\nbogus = 1\n", "test.conf: [queue a] bogus: unknown queue option",
      "openTransactionTimeout" },
    { "[queue a/b]\nmaxItems = 1\n", "test.conf: [queue a/b]: 'a/b' is not a valid queue name",
      NULL },
    { "[queue ]\nmaxItems = 1\n", "test.conf: [queue ]: '' is not a valid queue name", NULL },
    { "[queue]\nmaxItems = 1\n", "test.conf: [queue]: '' is not a valid queue name", NULL },
    { "[queue a.b]\n", "test.conf: [queue a.b]: 'a.b' is not a valid queue name", NULL },
    { "[alias x]\ndestinations = a\n", "test.conf: [alias x] destinations: unknown alias option",
      "destinationQueues" },
    { "[alias x]\n", "test.conf: [alias x] destinationQueues: expected a ';'-separated list",
      NULL },
    { "[alias x]\ndestinationQueues = ;\n",
      "test.conf: [alias x] destinationQueues: expected a ';'-separated list", "got ';'" },
    { "[alias x]\ndestinationQueues = a;b~c\n",
      "test.conf: [alias x] destinationQueues: expected a ';'-separated list", "got 'b~c'" },
    { "[alias x~]\ndestinationQueues = a\n", "test.conf: [alias x~]: 'x~' is not a valid alias",
      NULL },
    { "[queue x]\nmaxItems = 1\n[alias x]\ndestinationQueues = a\n",
      "test.conf: [alias x]: 'x' is also configured as [queue x]", NULL },
    { "[default]\nexpireToQueue = a/b\n",
      "test.conf: [default] expireToQueue: expected a queue name", NULL },
  };

  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(KqConfigSet) set = load_set(bad[i].text, &error);

    g_test_message("file: %s", bad[i].text);
    g_assert_null(set);
    g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG);
    g_test_message("error: %s", error->message);
    g_assert_true(g_str_has_prefix(error->message, bad[i].prefix));
    if (bad[i].also != NULL)
      g_assert_nonnull(strstr(error->message, bad[i].also));
  }
}

/* Kestrel's Scala files quote strings; values copied over keep working. */
static void
test_set_quoted_values(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KqConfigSet) set =
    load_set("[queue jobs_pending]\nexpireToQueue = \"jobs_ready\"\nmaxAge = 30.seconds \n",
             &error);
  KqQueueSettings s;

  g_assert_no_error(error);
  kq_config_set_resolve(set, "jobs_pending", &s);
  g_assert_cmpstr(s.expire_to_queue, ==, "jobs_ready");
  g_assert_cmpint(s.max_age_ms, ==, 30000);
  kq_settings_clear(&s);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/settings/defaults", test_defaults);
  g_test_add_func("/settings/option-names", test_option_names);
  g_test_add_func("/settings/parse-size", test_parse_size);
  g_test_add_func("/settings/parse-size-errors", test_parse_size_errors);
  g_test_add_func("/settings/parse-duration", test_parse_duration);
  g_test_add_func("/settings/parse-duration-errors", test_parse_duration_errors);
  g_test_add_func("/settings/parse-bool", test_parse_bool);
  g_test_add_func("/settings/parse-count", test_parse_count);
  g_test_add_func("/settings/set-every-option", test_set_every_option);
  g_test_add_func("/settings/sync-journal", test_sync_journal);
  g_test_add_func("/settings/errors-name-option", test_errors_name_option);
  g_test_add_func("/settings/format-round-trip", test_format);
  g_test_add_func("/settings/copy", test_copy);
  g_test_add_func("/settings/config-set/resolution", test_set_resolution);
  g_test_add_func("/settings/config-set/aliases", test_set_aliases);
  g_test_add_func("/settings/config-set/errors", test_set_errors);
  g_test_add_func("/settings/config-set/quoted-values", test_set_quoted_values);
  return g_test_run();
}
