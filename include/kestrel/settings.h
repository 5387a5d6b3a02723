/* Queue settings (SPEC 5): defaults, inheritance, parsing of sizes and durations, and the rule
 * for queue names. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

/* A value of -1 in a size/duration/count field means "unset / unlimited / none". */
#define KQ_UNSET (-1)

typedef struct {
  gint64 max_items;                 /* items; -1 unlimited */
  gint64 max_size;                  /* bytes; -1 unlimited */
  gint64 max_item_size;             /* bytes; -1 unlimited */
  gint64 max_age_ms;                /* -1 none */
  gint64 default_journal_size;      /* bytes, default 16MB */
  gint64 max_memory_size;           /* bytes, default 128MB */
  gint64 max_journal_size;          /* bytes, default 1GB */
  gint64 min_journal_compact_delay_ms; /* default 60000 */
  gboolean discard_old_when_full;   /* default FALSE */
  gboolean keep_journal;            /* default TRUE */
  gint64 sync_journal_ms;           /* -1 never (default), 0 every write, N periodic */
  gchar *expire_to_queue;           /* NULL none */
  gint64 max_expire_sweep;          /* -1 unlimited */
  gboolean fanout_only;             /* default FALSE */
  gint64 max_queue_age_ms;          /* -1 none */
  gint64 open_transaction_timeout_ms; /* -1 none */
} KqQueueSettings;

/* Names of every option, in SPEC order, NULL-terminated (dump_config prints them in this order). */
extern const gchar *const kq_settings_option_names[];

/* Fill with the built-in defaults of SPEC 5. */
void kq_settings_init_defaults(KqQueueSettings *settings);
void kq_settings_copy(KqQueueSettings *dest, const KqQueueSettings *src);
void kq_settings_clear(KqQueueSettings *settings);  /* frees expire_to_queue */

/* Set one option by its SPEC name ("maxItems", "syncJournal", ...) from text.
 * Unknown option or bad value: FALSE with KQ_ERROR_BAD_CONFIG naming the option and what was expected. */
gboolean kq_settings_set(KqQueueSettings *settings, const gchar *option, const gchar *value,
                         GError **error);

/* The option's value as text, as dump_config prints it (e.g. "16777216", "none", "true"). */
gchar *kq_settings_format(const KqQueueSettings *settings, const gchar *option);

/* "16MB", "16.megabytes", "1024", "none" (-> -1). Powers of 1024. */
gboolean kq_parse_size(const gchar *text, gint64 *bytes_out, GError **error);
/* "30s", "30.seconds", "250ms", "1min", "2h", "1d", "none" (-> -1); bare number = ms? see docs */
gboolean kq_parse_duration(const gchar *text, gint64 *ms_out, GError **error);
gboolean kq_parse_bool(const gchar *text, gboolean *out, GError **error);
/* Plain non-negative integer with overflow check; "none"/"unlimited" -> -1 when allow_none. */
gboolean kq_parse_count(const gchar *text, gboolean allow_none, gint64 *out, GError **error);

/* A key file value, trimmed, without surrounding double quotes (Kestrel's Scala configs quote
 * strings and people copy values over). NULL with the key file's error if it is missing. */
gchar *kq_config_read_value(GKeyFile *key_file, const gchar *group, const gchar *key,
                            GError **error);

/* Validate the `len` bytes at `name` as a queue name (SPEC 1); FALSE + KQ_ERROR_BAD_NAME saying
 * why. Every front-end checks names received with a length here, so a NUL byte inside them is
 * refused instead of cutting the name short. */
gboolean kq_queue_name_is_valid_len(const gchar *name, gsize len, GError **error);
/* The same for a NUL-terminated name. */
gboolean kq_queue_name_is_valid(const gchar *name, GError **error);

/* Settings of every queue and alias, as read from a config file's [default], [queue NAME]
 * and [alias NAME] groups. Resolution order: own group, fanout parent, [default], built-ins. */
typedef struct _KqConfigSet KqConfigSet;

KqConfigSet *kq_config_set_new(void);
void kq_config_set_free(KqConfigSet *set);
/* Read [default], [queue *], [alias *] from a key file (other groups are ignored here).
 * Errors name the file (file_label), the group, the key and what was expected. */
gboolean kq_config_set_load_key_file(KqConfigSet *set, GKeyFile *key_file,
                                     const gchar *file_label, GError **error);
/* Resolve settings for queue `name` (handles "parent+child" inheritance). Caller clears. */
void kq_config_set_resolve(const KqConfigSet *set, const gchar *name, KqQueueSettings *out);
/* Alias destinations, NULL if `name` is not an alias. */
const gchar *const *kq_config_set_alias_destinations(const KqConfigSet *set, const gchar *name);
/* Names of all aliases (sorted), caller frees the array (not the strings). */
GPtrArray *kq_config_set_alias_names(const KqConfigSet *set);
/* Names of queues that have their own [queue NAME] group (sorted). */
GPtrArray *kq_config_set_queue_names(const KqConfigSet *set);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(KqConfigSet, kq_config_set_free)

G_END_DECLS
