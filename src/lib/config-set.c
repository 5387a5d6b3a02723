/* Queue and alias settings of one config file (SPEC 5, 8): the [default], [queue NAME] and
 * [alias NAME] groups, validated when loaded and resolved per queue on demand.
 *
 * Option values are kept as the text the file gave (already validated) and re-applied at
 * resolution time, so "explicitly set in this group" is simply "present in the group's map":
 * that is what lets a fanout child inherit its parent's explicit options while its own
 * group still wins. */
#include <string.h>

#include <kestrel/error.h>
#include <kestrel/settings.h>

struct _KqConfigSet {
  GHashTable *defaults; /* option -> value, from [default] */
  GHashTable *queues;   /* queue name -> (option -> value), from [queue NAME] */
  GHashTable *aliases;  /* alias name -> NULL-terminated destination names (GStrv) */
};

#define QUEUE_PREFIX "queue "
#define ALIAS_PREFIX "alias "
#define ALIAS_KEY "destinationQueues"

static GHashTable *
option_map_new(void)
{
  return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

KqConfigSet *
kq_config_set_new(void)
{
  KqConfigSet *set = g_new0(KqConfigSet, 1);

  set->defaults = option_map_new();
  set->queues = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify) g_hash_table_unref);
  set->aliases = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) g_strfreev);
  return set;
}

void
kq_config_set_free(KqConfigSet *set)
{
  if (set == NULL)
    return;
  g_hash_table_unref(set->defaults);
  g_hash_table_unref(set->queues);
  g_hash_table_unref(set->aliases);
  g_free(set);
}

gchar *
kq_config_read_value(GKeyFile *key_file, const gchar *group, const gchar *key, GError **error)
{
  gchar *value = g_key_file_get_string(key_file, group, key, error);
  gsize len;

  if (value == NULL)
    return NULL;
  g_strstrip(value);
  len = strlen(value);
  if (len >= 2 && value[0] == '"' && value[len - 1] == '"') {
    memmove(value, value + 1, len - 2);
    value[len - 2] = '\0';
  }
  return value;
}

/* Validate every key of a [default] or [queue NAME] group and copy it into `map`. */
static gboolean
load_options(GKeyFile *key_file, const gchar *file_label, const gchar *group, GHashTable *map,
             GError **error)
{
  g_auto(GStrv) keys = g_key_file_get_keys(key_file, group, NULL, NULL);
  KqQueueSettings scratch;
  gboolean ok = TRUE;

  kq_settings_init_defaults(&scratch);
  for (gsize i = 0; keys != NULL && keys[i] != NULL && ok; i++) {
    g_autoptr(GError) local = NULL;
    g_autofree gchar *value = kq_config_read_value(key_file, group, keys[i], &local);

    if (value == NULL || !kq_settings_set(&scratch, keys[i], value, &local)) {
      g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG, "%s: [%s] %s%s%s", file_label, group,
                  value == NULL ? keys[i] : "", value == NULL ? ": " : "", local->message);
      ok = FALSE;
      break;
    }
    g_hash_table_replace(map, g_strdup(keys[i]), g_steal_pointer(&value));
  }
  kq_settings_clear(&scratch);
  return ok;
}

static gboolean
check_group_name(const gchar *file_label, const gchar *group, const gchar *name,
                 const gchar *kind, GError **error)
{
  g_autoptr(GError) local = NULL;

  if (kq_queue_name_is_valid(name, &local))
    return TRUE;
  g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG, "%s: [%s]: '%s' is not a valid %s name (%s)",
              file_label, group, name, kind, local->message);
  return FALSE;
}

/* destinationQueues = a;b;c  (a trailing ';' is allowed, as GKeyFile lists write one). */
static gboolean
load_alias(GKeyFile *key_file, const gchar *file_label, const gchar *group, const gchar *name,
           KqConfigSet *set, GError **error)
{
  g_auto(GStrv) keys = g_key_file_get_keys(key_file, group, NULL, NULL);
  g_autoptr(GPtrArray) destinations = g_ptr_array_new_with_free_func(g_free);
  g_autofree gchar *value = NULL;
  g_auto(GStrv) parts = NULL;

  for (gsize i = 0; keys != NULL && keys[i] != NULL; i++) {
    if (strcmp(keys[i], ALIAS_KEY) != 0) {
      g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG,
                  "%s: [%s] %s: unknown alias option (accepted: " ALIAS_KEY ")", file_label,
                  group, keys[i]);
      return FALSE;
    }
  }
  value = kq_config_read_value(key_file, group, ALIAS_KEY, NULL);
  if (value == NULL) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG,
                "%s: [%s] " ALIAS_KEY ": expected a ';'-separated list of queue names, "
                "got nothing", file_label, group);
    return FALSE;
  }
  parts = g_strsplit(value, ";", -1);
  for (gsize i = 0; parts[i] != NULL; i++) {
    g_autoptr(GError) local = NULL;
    gchar *dest = g_strstrip(parts[i]);

    if (*dest == '\0')
      continue;
    if (!kq_queue_name_is_valid(dest, &local)) {
      g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG,
                  "%s: [%s] " ALIAS_KEY ": expected a ';'-separated list of queue names, "
                  "got '%s' (%s)", file_label, group, dest, local->message);
      return FALSE;
    }
    g_ptr_array_add(destinations, g_strdup(dest));
  }
  if (destinations->len == 0) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG,
                "%s: [%s] " ALIAS_KEY ": expected a ';'-separated list of queue names, got '%s'",
                file_label, group, value);
    return FALSE;
  }
  g_ptr_array_add(destinations, NULL);
  g_hash_table_replace(set->aliases, g_strdup(name),
                       (GStrv) g_ptr_array_free(g_steal_pointer(&destinations), FALSE));
  return TRUE;
}

gboolean
kq_config_set_load_key_file(KqConfigSet *set, GKeyFile *key_file, const gchar *file_label,
                            GError **error)
{
  g_auto(GStrv) groups = g_key_file_get_groups(key_file, NULL);

  if (file_label == NULL)
    file_label = "(config)";
  for (gsize i = 0; groups[i] != NULL; i++) {
    const gchar *group = groups[i];

    if (strcmp(group, "default") == 0) {
      if (!load_options(key_file, file_label, group, set->defaults, error))
        return FALSE;
    } else if (g_str_has_prefix(group, QUEUE_PREFIX) || strcmp(group, "queue") == 0) {
      const gchar *name = group + MIN(strlen(group), strlen(QUEUE_PREFIX));
      GHashTable *map;

      if (!check_group_name(file_label, group, name, "queue", error))
        return FALSE;
      map = g_hash_table_lookup(set->queues, name);
      if (map == NULL) {
        map = option_map_new();
        g_hash_table_insert(set->queues, g_strdup(name), map);
      }
      if (!load_options(key_file, file_label, group, map, error))
        return FALSE;
    } else if (g_str_has_prefix(group, ALIAS_PREFIX) || strcmp(group, "alias") == 0) {
      const gchar *name = group + MIN(strlen(group), strlen(ALIAS_PREFIX));

      if (!check_group_name(file_label, group, name, "alias", error) ||
          !load_alias(key_file, file_label, group, name, set, error))
        return FALSE;
    }
    /* Any other group belongs to the caller (e.g. [server]). */
  }

  /* A name is either a queue or an alias: reads from an alias see an empty queue. */
  GHashTableIter iter;
  gpointer name;
  g_hash_table_iter_init(&iter, set->aliases);
  while (g_hash_table_iter_next(&iter, &name, NULL)) {
    if (g_hash_table_contains(set->queues, name)) {
      g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG,
                  "%s: [" ALIAS_PREFIX "%s]: '%s' is also configured as [" QUEUE_PREFIX "%s]",
                  file_label, (const gchar *) name, (const gchar *) name, (const gchar *) name);
      return FALSE;
    }
  }
  return TRUE;
}

/* Apply one group's explicit options in SPEC order (they were validated at load). */
static void
apply_options(KqQueueSettings *out, GHashTable *map)
{
  if (map == NULL)
    return;
  for (gsize i = 0; kq_settings_option_names[i] != NULL; i++) {
    const gchar *value = g_hash_table_lookup(map, kq_settings_option_names[i]);
    if (value != NULL && !kq_settings_set(out, kq_settings_option_names[i], value, NULL))
      g_warn_if_reached();
  }
}

void
kq_config_set_resolve(const KqConfigSet *set, const gchar *name, KqQueueSettings *out)
{
  const gchar *plus;

  kq_settings_init_defaults(out);
  if (set == NULL)
    return;
  apply_options(out, set->defaults);
  /* "parent+child": the parent's resolved settings come before the child's own group. */
  plus = name != NULL ? strchr(name, '+') : NULL;
  if (plus != NULL) {
    g_autofree gchar *parent = g_strndup(name, plus - name);
    apply_options(out, g_hash_table_lookup(set->queues, parent));
  }
  if (name != NULL)
    apply_options(out, g_hash_table_lookup(set->queues, name));
}

const gchar *const *
kq_config_set_alias_destinations(const KqConfigSet *set, const gchar *name)
{
  /* most configurations have no alias, and every add and get asks */
  if (set == NULL || name == NULL || g_hash_table_size(set->aliases) == 0)
    return NULL;
  return g_hash_table_lookup(set->aliases, name);
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
  return strcmp(*(const gchar *const *) a, *(const gchar *const *) b);
}

/* Sorted keys of `table`; the strings stay owned by the set. */
static GPtrArray *
sorted_keys(GHashTable *table)
{
  GPtrArray *names = g_ptr_array_new();
  GHashTableIter iter;
  gpointer key;

  if (table != NULL) {
    g_hash_table_iter_init(&iter, table);
    while (g_hash_table_iter_next(&iter, &key, NULL))
      g_ptr_array_add(names, key);
  }
  g_ptr_array_sort(names, compare_names);
  return names;
}

GPtrArray *
kq_config_set_alias_names(const KqConfigSet *set)
{
  return sorted_keys(set != NULL ? set->aliases : NULL);
}

GPtrArray *
kq_config_set_queue_names(const KqConfigSet *set)
{
  return sorted_keys(set != NULL ? set->queues : NULL);
}
