/* Queue settings (SPEC 5): built-in defaults, setting and printing options by name, and the
 * checked parsers for counts, sizes, durations and booleans that every config value goes
 * through, and the queue name check. The [default]/[queue]/[alias] resolution lives in
 * config-set.c. */
#include <stddef.h>
#include <string.h>

#include <kestrel/error.h>
#include <kestrel/settings.h>

/* dump_config prints options in this order, so keep it the order of SPEC 5. */
const gchar *const kq_settings_option_names[] = {
  "maxItems",
  "maxSize",
  "maxItemSize",
  "maxAge",
  "defaultJournalSize",
  "maxMemorySize",
  "maxJournalSize",
  "minJournalCompactDelay",
  "discardOldWhenFull",
  "keepJournal",
  "syncJournal",
  "expireToQueue",
  "maxExpireSweep",
  "fanoutOnly",
  "maxQueueAge",
  "openTransactionTimeout",
  NULL,
};

/* How an option's text is read and printed. */
typedef enum {
  OPT_COUNT,    /* whole number, printed as is */
  OPT_SIZE,     /* bytes with optional unit, printed as bytes */
  OPT_DURATION, /* ms with optional unit, printed as "<n>ms" */
  OPT_SYNC,     /* syncJournal: "never" (-1), 0 (every write) or a period */
  OPT_BOOL,     /* gboolean, printed as "true"/"false" */
  OPT_QUEUE,    /* a queue name or none (NULL) */
} OptionKind;

typedef struct {
  const gchar *name;
  OptionKind kind;
  gboolean allow_none; /* "none" (-1) is meaningful for this option */
  gsize offset;        /* of the field in KqQueueSettings */
} OptionSpec;

#define FIELD(f) offsetof(KqQueueSettings, f)

/* Same order as kq_settings_option_names. */
static const OptionSpec option_specs[] = {
  { "maxItems", OPT_COUNT, TRUE, FIELD(max_items) },
  { "maxSize", OPT_SIZE, TRUE, FIELD(max_size) },
  { "maxItemSize", OPT_SIZE, TRUE, FIELD(max_item_size) },
  { "maxAge", OPT_DURATION, TRUE, FIELD(max_age_ms) },
  /* The three journal sizes are thresholds the journal always needs (Kestrel has no "none"). */
  { "defaultJournalSize", OPT_SIZE, FALSE, FIELD(default_journal_size) },
  { "maxMemorySize", OPT_SIZE, FALSE, FIELD(max_memory_size) },
  { "maxJournalSize", OPT_SIZE, FALSE, FIELD(max_journal_size) },
  /* Kestrel's Option[Duration]: none means "no minimum delay between compactions". */
  { "minJournalCompactDelay", OPT_DURATION, TRUE, FIELD(min_journal_compact_delay_ms) },
  { "discardOldWhenFull", OPT_BOOL, FALSE, FIELD(discard_old_when_full) },
  { "keepJournal", OPT_BOOL, FALSE, FIELD(keep_journal) },
  { "syncJournal", OPT_SYNC, TRUE, FIELD(sync_journal_ms) },
  { "expireToQueue", OPT_QUEUE, TRUE, FIELD(expire_to_queue) },
  { "maxExpireSweep", OPT_COUNT, TRUE, FIELD(max_expire_sweep) },
  { "fanoutOnly", OPT_BOOL, FALSE, FIELD(fanout_only) },
  { "maxQueueAge", OPT_DURATION, TRUE, FIELD(max_queue_age_ms) },
  { "openTransactionTimeout", OPT_DURATION, TRUE, FIELD(open_transaction_timeout_ms) },
};

G_STATIC_ASSERT(G_N_ELEMENTS(option_specs) + 1 == G_N_ELEMENTS(kq_settings_option_names));

void
kq_settings_init_defaults(KqQueueSettings *settings)
{
  memset(settings, 0, sizeof *settings);
  settings->max_items = KQ_UNSET;                          /* no item limit */
  settings->max_size = KQ_UNSET;                           /* no byte limit */
  settings->max_item_size = KQ_UNSET;                      /* any item size accepted */
  settings->max_age_ms = KQ_UNSET;                         /* items live until fetched */
  settings->default_journal_size = 16 * 1024 * 1024;       /* truncate an empty queue's journal past 16MB */
  settings->max_memory_size = 128 * 1024 * 1024;           /* read-behind / rotation at 128MB */
  settings->max_journal_size = G_GINT64_CONSTANT(1) << 30; /* compact journals past 1GB */
  settings->min_journal_compact_delay_ms = 60 * 1000;      /* at most one compaction a minute */
  settings->discard_old_when_full = FALSE;                 /* a full queue refuses new items */
  settings->keep_journal = TRUE;                           /* queues are durable */
  settings->sync_journal_ms = KQ_UNSET;                    /* never fsync (Kestrel's default) */
  settings->expire_to_queue = NULL;                        /* expired items are dropped */
  settings->max_expire_sweep = KQ_UNSET;                   /* a sweep expires everything due */
  settings->fanout_only = FALSE;                           /* a parent stores its own copy */
  settings->max_queue_age_ms = KQ_UNSET;                   /* empty queues are never deleted */
  settings->open_transaction_timeout_ms = KQ_UNSET;        /* open reads are held until closed */
}

/* `dest` is treated as uninitialised: clear it first if it owns a string. */
void
kq_settings_copy(KqQueueSettings *dest, const KqQueueSettings *src)
{
  *dest = *src;
  dest->expire_to_queue = g_strdup(src->expire_to_queue);
}

void
kq_settings_clear(KqQueueSettings *settings)
{
  g_clear_pointer(&settings->expire_to_queue, g_free);
}

/* ---- parsing ---------------------------------------------------------------------------- */

static gboolean
is_none(const gchar *text)
{
  return g_ascii_strcasecmp(text, "none") == 0 || g_ascii_strcasecmp(text, "unlimited") == 0;
}

/* The one checked integer reader: a run of decimal digits at *p, no sign, no overflow past
 * G_MAXINT64. Advances *p past the digits. */
static gboolean
scan_digits(const gchar **p, gint64 *out, gboolean *overflow)
{
  const gchar *s = *p;
  gint64 value = 0;

  *overflow = FALSE;
  if (!g_ascii_isdigit(*s))
    return FALSE;
  for (; g_ascii_isdigit(*s); s++) {
    gint digit = *s - '0';
    if (value > (G_MAXINT64 - digit) / 10)
      *overflow = TRUE;
    else
      value = value * 10 + digit;
  }
  *p = s;
  *out = value;
  return !*overflow;
}

typedef struct {
  const gchar *unit;
  gint64 factor;
} Unit;

static const Unit size_units[] = {
  { "b", 1 }, { "byte", 1 }, { "bytes", 1 },
  { "k", 1 << 10 }, { "kb", 1 << 10 }, { "kib", 1 << 10 },
  { "kilobyte", 1 << 10 }, { "kilobytes", 1 << 10 },
  { "m", 1 << 20 }, { "mb", 1 << 20 }, { "mib", 1 << 20 },
  { "megabyte", 1 << 20 }, { "megabytes", 1 << 20 },
  { "g", 1 << 30 }, { "gb", 1 << 30 }, { "gib", 1 << 30 },
  { "gigabyte", 1 << 30 }, { "gigabytes", 1 << 30 },
  { "t", G_GINT64_CONSTANT(1) << 40 }, { "tb", G_GINT64_CONSTANT(1) << 40 },
  { "tib", G_GINT64_CONSTANT(1) << 40 },
  { "terabyte", G_GINT64_CONSTANT(1) << 40 }, { "terabytes", G_GINT64_CONSTANT(1) << 40 },
  { NULL, 0 },
};

/* No bare "m" here: it would be ambiguous between minutes and milliseconds. */
static const Unit duration_units[] = {
  { "ms", 1 }, { "msec", 1 }, { "msecs", 1 }, { "millis", 1 },
  { "millisecond", 1 }, { "milliseconds", 1 },
  { "s", 1000 }, { "sec", 1000 }, { "secs", 1000 }, { "second", 1000 }, { "seconds", 1000 },
  { "min", 60000 }, { "mins", 60000 }, { "minute", 60000 }, { "minutes", 60000 },
  { "h", 3600000 }, { "hr", 3600000 }, { "hrs", 3600000 },
  { "hour", 3600000 }, { "hours", 3600000 },
  { "d", 86400000 }, { "day", 86400000 }, { "days", 86400000 },
  { NULL, 0 },
};

typedef enum { SCAN_OK, SCAN_BAD, SCAN_OVERFLOW } ScanResult;

/* "<digits>[sep]<unit>" where sep is nothing, '.', or spaces, and a missing unit means a
 * factor of 1 (bytes / milliseconds). Whole numbers only: "1.5MB" is refused. */
static ScanResult
scan_with_unit(const gchar *text, const Unit *units, gint64 *out)
{
  g_autofree gchar *copy = g_strstrip(g_strdup(text));
  const gchar *p = copy;
  gint64 number, product;
  gboolean overflow;

  if (!scan_digits(&p, &number, &overflow))
    return overflow ? SCAN_OVERFLOW : SCAN_BAD;
  if (*p == '\0') {
    *out = number;
    return SCAN_OK;
  }
  if (*p == '.')
    p++;
  else
    while (*p == ' ' || *p == '\t')
      p++;
  for (const Unit *u = units; u->unit != NULL; u++) {
    if (g_ascii_strcasecmp(p, u->unit) != 0)
      continue;
    if (__builtin_mul_overflow(number, u->factor, &product))
      return SCAN_OVERFLOW;
    *out = product;
    return SCAN_OK;
  }
  return SCAN_BAD;
}

static gboolean
expected(GError **error, const gchar *what, const gchar *text, gboolean overflow)
{
  g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG, "expected %s, got '%s'%s", what, text,
              overflow ? " (too large)" : "");
  return FALSE;
}

gboolean
kq_parse_count(const gchar *text, gboolean allow_none, gint64 *out, GError **error)
{
  const gchar *what = allow_none ? "a whole number or 'none'" : "a whole number";
  g_autofree gchar *copy = NULL;
  const gchar *p;
  gint64 value;
  gboolean overflow = FALSE;

  if (text == NULL)
    return expected(error, what, "", FALSE);
  copy = g_strstrip(g_strdup(text));
  if (allow_none && is_none(copy)) {
    *out = KQ_UNSET;
    return TRUE;
  }
  p = copy;
  if (!scan_digits(&p, &value, &overflow) || *p != '\0')
    return expected(error, what, text, overflow);
  *out = value;
  return TRUE;
}

gboolean
kq_parse_size(const gchar *text, gint64 *bytes_out, GError **error)
{
  static const gchar what[] = "a size such as 16MB, 512KB, 100B, 16.megabytes or 'none'";
  g_autofree gchar *copy = NULL;
  ScanResult r;

  if (text == NULL)
    return expected(error, what, "", FALSE);
  copy = g_strstrip(g_strdup(text));
  if (is_none(copy)) {
    *bytes_out = KQ_UNSET;
    return TRUE;
  }
  r = scan_with_unit(copy, size_units, bytes_out);
  if (r != SCAN_OK)
    return expected(error, what, text, r == SCAN_OVERFLOW);
  return TRUE;
}

gboolean
kq_parse_duration(const gchar *text, gint64 *ms_out, GError **error)
{
  static const gchar what[] =
    "a duration such as 250ms, 30s, 2min, 1h, 1d, 30.seconds (a bare number is milliseconds) "
    "or 'none'";
  g_autofree gchar *copy = NULL;
  ScanResult r;

  if (text == NULL)
    return expected(error, what, "", FALSE);
  copy = g_strstrip(g_strdup(text));
  if (g_ascii_strcasecmp(copy, "none") == 0) {
    *ms_out = KQ_UNSET;
    return TRUE;
  }
  r = scan_with_unit(copy, duration_units, ms_out);
  if (r != SCAN_OK)
    return expected(error, what, text, r == SCAN_OVERFLOW);
  return TRUE;
}

gboolean
kq_parse_bool(const gchar *text, gboolean *out, GError **error)
{
  static const gchar *const yes[] = { "true", "yes", "on", "1", NULL };
  static const gchar *const no[] = { "false", "no", "off", "0", NULL };
  g_autofree gchar *copy = NULL;

  if (text == NULL)
    return expected(error, "true or false (or yes/no, on/off, 1/0)", "", FALSE);
  copy = g_strstrip(g_strdup(text));
  for (gsize i = 0; yes[i] != NULL; i++) {
    if (g_ascii_strcasecmp(copy, yes[i]) == 0) {
      *out = TRUE;
      return TRUE;
    }
    if (g_ascii_strcasecmp(copy, no[i]) == 0) {
      *out = FALSE;
      return TRUE;
    }
  }
  return expected(error, "true or false (or yes/no, on/off, 1/0)", text, FALSE);
}

/* syncJournal (Kestrel: a Duration, Duration.MaxValue = never): "never"/"none"/false -> -1,
 * true or 0 -> fsync before every acknowledgement, any other duration -> that period. */
static gboolean
parse_sync(const gchar *text, gint64 *out, GError **error)
{
  static const gchar what[] =
    "'never', 0 (fsync every write) or a period such as 100ms or 100.milliseconds";
  g_autofree gchar *copy = g_strstrip(g_strdup(text));
  ScanResult r;

  if (g_ascii_strcasecmp(copy, "never") == 0 || g_ascii_strcasecmp(copy, "none") == 0 ||
      g_ascii_strcasecmp(copy, "false") == 0) {
    *out = KQ_UNSET;
    return TRUE;
  }
  if (g_ascii_strcasecmp(copy, "true") == 0) {
    *out = 0;
    return TRUE;
  }
  r = scan_with_unit(copy, duration_units, out);
  if (r == SCAN_OK)
    return TRUE;
  return expected(error, what, text, r == SCAN_OVERFLOW);
}

/* ---- options by name -------------------------------------------------------------------- */

static const OptionSpec *
find_option(const gchar *option)
{
  for (gsize i = 0; i < G_N_ELEMENTS(option_specs); i++)
    if (g_strcmp0(option_specs[i].name, option) == 0)
      return &option_specs[i];
  return NULL;
}

static gboolean
parse_option_value(const OptionSpec *spec, const gchar *value, gpointer field, GError **error)
{
  gint64 number;

  switch (spec->kind) {
  case OPT_COUNT:
    if (!kq_parse_count(value, spec->allow_none, &number, error))
      return FALSE;
    *(gint64 *) field = number;
    return TRUE;
  case OPT_SIZE:
    if (!kq_parse_size(value, &number, error))
      return FALSE;
    if (number == KQ_UNSET && !spec->allow_none)
      return expected(error, "a size such as 16MB, 512KB or 16.megabytes ('none' is not allowed)",
                      value, FALSE);
    *(gint64 *) field = number;
    return TRUE;
  case OPT_DURATION:
    if (!kq_parse_duration(value, &number, error))
      return FALSE;
    *(gint64 *) field = number;
    return TRUE;
  case OPT_SYNC:
    if (!parse_sync(value, &number, error))
      return FALSE;
    *(gint64 *) field = number;
    return TRUE;
  case OPT_BOOL:
    return kq_parse_bool(value, (gboolean *) field, error);
  case OPT_QUEUE: {
    g_autofree gchar *name = g_strstrip(g_strdup(value));
    g_autoptr(GError) name_error = NULL;
    gchar **slot = field;

    if (g_ascii_strcasecmp(name, "none") == 0) {
      g_clear_pointer(slot, g_free);
      return TRUE;
    }
    if (!kq_queue_name_is_valid(name, &name_error)) {
      g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG,
                  "expected a queue name or 'none', got '%s' (%s)", value, name_error->message);
      return FALSE;
    }
    g_free(*slot);
    *slot = g_steal_pointer(&name);
    return TRUE;
  }
  }
  g_assert_not_reached();
}

gboolean
kq_settings_set(KqQueueSettings *settings, const gchar *option, const gchar *value,
                GError **error)
{
  const OptionSpec *spec = find_option(option);
  g_autoptr(GError) local = NULL;

  if (spec == NULL) {
    g_autofree gchar *names = g_strjoinv(", ", (gchar **) kq_settings_option_names);
    g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG,
                "%s: unknown queue option (accepted: %s)", option ? option : "(null)", names);
    return FALSE;
  }
  if (value == NULL)
    value = "";
  if (!parse_option_value(spec, value, (guint8 *) settings + spec->offset, &local)) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG, "%s: %s", spec->name, local->message);
    return FALSE;
  }
  return TRUE;
}

/* Printed forms read back unchanged by kq_settings_set: counts and sizes as plain integers
 * (bytes), durations as "<n>ms", unset values as "none" ("never" for syncJournal), booleans
 * as "true"/"false", expireToQueue as the queue name. NULL for an unknown option. */
gchar *
kq_settings_format(const KqQueueSettings *settings, const gchar *option)
{
  const OptionSpec *spec = find_option(option);
  gconstpointer field;
  gint64 number;

  if (spec == NULL)
    return NULL;
  field = (const guint8 *) settings + spec->offset;
  switch (spec->kind) {
  case OPT_BOOL:
    return g_strdup(*(const gboolean *) field ? "true" : "false");
  case OPT_QUEUE: {
    const gchar *name = *(const gchar *const *) field;
    return g_strdup(name != NULL ? name : "none");
  }
  case OPT_COUNT:
  case OPT_SIZE:
  case OPT_DURATION:
  case OPT_SYNC:
    number = *(const gint64 *) field;
    if (number < 0)
      return g_strdup(spec->kind == OPT_SYNC ? "never" : "none");
    if (spec->kind == OPT_DURATION || spec->kind == OPT_SYNC)
      return g_strdup_printf("%" G_GINT64_FORMAT "ms", number);
    return g_strdup_printf("%" G_GINT64_FORMAT, number);
  }
  g_assert_not_reached();
}

/* The check every request makes: one pass, no message. */
static gboolean name_is_plainly_valid(const gchar *name, gsize len)
{
  if (name == NULL || len == 0 || len > 200 || name[0] == '+' || name[len - 1] == '+')
    return FALSE;
  for (gsize i = 0; i < len; i++) {
    guchar c = (guchar)name[i];
    if (c <= 0x20 || c >= 0x7f || c == '/' || c == '~' || c == '.')
      return FALSE;
  }
  return TRUE;
}

gboolean kq_queue_name_is_valid_len(const gchar *name, gsize len, GError **error)
{
  if (G_LIKELY(name_is_plainly_valid(name, len)))
    return TRUE;
  /* invalid: find the reason to give */
  const gchar *why = NULL;
  if (name == NULL || len == 0)
    why = "queue name is empty";
  else if (memchr(name, '\0', len) != NULL)
    why = "queue name contains a NUL byte";
  else if (len > 200)
    why = "queue name is longer than 200 bytes";
  else {
    for (gsize i = 0; i < len && why == NULL; i++) {
      guchar c = (guchar)name[i];
      if (c <= 0x20 || c >= 0x7f)
        why = "queue name must be printable ASCII without spaces";
      else if (c == '/' || c == '~' || c == '.')
        why = "queue name must not contain '/', '~' or '.'";
    }
    if (why == NULL && (name[0] == '+' || name[len - 1] == '+'))
      why = "queue name must not start or end with '+'";
  }
  if (why != NULL) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_NAME, "%s", why);
    return FALSE;
  }
  return TRUE;
}

gboolean kq_queue_name_is_valid(const gchar *name, GError **error)
{
  return kq_queue_name_is_valid_len(name, name != NULL ? strlen(name) : 0, error);
}
