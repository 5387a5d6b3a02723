/* Kestrel 2.x Scala configs: the syntax tree scala-parse.c builds, translated setting by
 * setting into a KqConfigDraft. */
#include <string.h>

#include <kestrel/collection.h>
#include <kestrel/settings.h>

#include "scala-config.h"
#include "scala-lexer.h"
#include "scala-parse.h"

/* ---- translation ------------------------------------------------------------------------- */

typedef struct {
  KqConfigDraft *draft;
} Translator;

static const gchar *
kind_name(const Value *v)
{
  switch (v->kind) {
  case VALUE_STRING: return "a string";
  case VALUE_NUMBER: return v->unit != NULL ? "a number with a unit" : "a number";
  case VALUE_BOOL: return "a boolean";
  case VALUE_NONE: return "None";
  case VALUE_SOME: return "Some(...)";
  case VALUE_LIST: return "a list";
  case VALUE_OBJECT: return "a new ... block";
  case VALUE_PATH: return "a name";
  }
  return "a value";
}

/* Names standing for a value: unlimited maxima, Kestrel's statuses, log levels and roll
 * policies. NULL if the name means nothing here. */
static const gchar *
path_value(const gchar *path)
{
  static const struct { const gchar *name, *value; } names[] = {
    { "Int.MaxValue", "none" }, { "Long.MaxValue", "none" },
    { "Int.MaxValue.bytes", "none" }, { "Long.MaxValue.bytes", "none" },
    { "Duration.MaxValue", "none" },
    { "Up", "UP" }, { "ReadOnly", "READONLY" }, { "Quiescent", "QUIESCENT" },
    { "Level.FATAL", "error" }, { "Level.CRITICAL", "critical" }, { "Level.ERROR", "critical" },
    { "Level.WARNING", "warning" }, { "Level.INFO", "info" }, { "Level.DEBUG", "debug" },
    { "Level.TRACE", "debug" }, { "Level.ALL", "debug" },
    { "Policy.Never", "never" }, { "Policy.Hourly", "hourly" }, { "Policy.Daily", "daily" },
    { "Policy.SigHup", "sighup" },
  };
  const gchar *last = path;

  /* Status.Up, net.lag.kestrel.Up: the last name is enough for the statuses. */
  if (g_str_has_suffix(path, ".Up") || g_str_has_suffix(path, ".ReadOnly") ||
      g_str_has_suffix(path, ".Quiescent"))
    last = strrchr(path, '.') + 1;
  for (gsize i = 0; i < G_N_ELEMENTS(names); i++)
    if (strcmp(names[i].name, last) == 0)
      return names[i].value;
  return NULL;
}

/* The key file text of a single value; FALSE if it is a list, block or unknown name. */
static gboolean
value_text(const Value *v, const gchar *setting, gchar **out, GError **error)
{
  switch (v->kind) {
  case VALUE_STRING:
  case VALUE_BOOL:
    *out = g_strdup(v->text);
    return TRUE;
  case VALUE_NUMBER:
    *out = v->unit != NULL ? g_strdup_printf("%s.%s", v->text, v->unit) : g_strdup(v->text);
    return TRUE;
  case VALUE_NONE:
    *out = g_strdup("none");
    return TRUE;
  case VALUE_SOME:
    return value_text(v->inner, setting, out, error);
  case VALUE_PATH: {
    const gchar *text = path_value(v->text);
    if (text == NULL)
      return kq_config_error(error, &v->pos, "%s: '%.60s' is not a value kestreld knows",
                             setting, v->text);
    *out = g_strdup(text);
    return TRUE;
  }
  case VALUE_LIST:
  case VALUE_OBJECT:
    break;
  }
  return kq_config_error(error, &v->pos, "%s expects a single value, found %s", setting,
                         kind_name(v));
}

/* `prefix` completes the setting's name in messages: "loggers." + "level". */
static gboolean
set_value_in(Translator *tr, const gchar *prefix, const Assignment *a, const gchar *group,
             const gchar *key, GError **error)
{
  g_autofree gchar *text = NULL;
  g_autofree gchar *setting = g_strconcat(prefix, a->target, NULL);

  if (!value_text(a->value, setting, &text, error))
    return FALSE;
  return kq_config_draft_set(tr->draft, &a->value->pos, setting, group, key, text, error);
}

static gboolean
set_value(Translator *tr, const Assignment *a, const gchar *group, const gchar *key,
          GError **error)
{
  return set_value_in(tr, "", a, group, key, error);
}

static gboolean
in_list(const gchar *const *list, const gchar *name)
{
  for (gsize i = 0; list[i] != NULL; i++)
    if (strcmp(list[i], name) == 0)
      return TRUE;
  return FALSE;
}

/* KestrelConfig fields with a [server] key of the same name. */
static const gchar *const server_fields[] = {
  "listenAddress", "memcacheListenPort", "textListenPort", "thriftListenPort", "queuePath",
  "clientTimeout", "expirationTimerFrequency", "maxOpenTransactions", "connectionBacklog",
  "statusFile", "defaultStatus", "statusChangeGracePeriod", "enableSessionTrace",
  "connectionLimitRefuseWrites", "connectionLimitRefuseReads", NULL,
};

/* Fields Kestrel knows that kestreld has nothing for: accepted with a warning. */
static const gchar *const ignored_server_fields[] = {
  "zookeeper", "debugLogQueues", "beFactoryClass", "enableElasticAPM", NULL,
};
static const gchar *const ignored_queue_fields[] = {
  "journalSize", "checkpointTimer", "saveArchivedJournals", "readers", "defaultReader",
  "puntErrorToQueue", "puntManyErrorsToQueue", "puntManyErrorCount", "multifileJournal",
  NULL,
};

static gboolean
warn_ignored_in(Translator *tr, const gchar *prefix, const Assignment *a)
{
  kq_config_draft_warn(tr->draft, &a->pos, "%s%s has no equivalent in kestreld and is ignored",
                       prefix, a->target);
  return TRUE;
}

static gboolean
warn_ignored(Translator *tr, const Assignment *a)
{
  return warn_ignored_in(tr, "", a);
}

/* A QueueBuilder field (or default.X) into `group`. */
static gboolean
queue_field(Translator *tr, const Assignment *a, const gchar *field, const gchar *group,
            GError **error)
{
  if (strcmp(field, "journaled") == 0)
    return set_value(tr, a, group, "keepJournal", error);
  if (in_list(kq_settings_option_names, field))
    return set_value(tr, a, group, field, error);
  if (in_list(ignored_queue_fields, field))
    return warn_ignored(tr, a);
  return kq_config_error(error, &a->pos, "unknown QueueBuilder setting '%.60s'", field);
}

/* queues / aliases: one builder, or a list of them. */
static gboolean
builders(const Value *v, const gchar *setting, const gchar *class_name, GPtrArray **out,
         GError **error)
{
  GPtrArray *list = g_ptr_array_new();

  if (v->kind == VALUE_OBJECT)
    g_ptr_array_add(list, (gpointer) v);
  else if (v->kind == VALUE_LIST)
    g_ptr_array_extend(list, v->items, NULL, NULL);
  for (guint i = 0; i < list->len; i++) {
    const Value *item = g_ptr_array_index(list, i);
    if (item->kind != VALUE_OBJECT || strcmp(item->text, class_name) != 0) {
      g_ptr_array_unref(list);
      return kq_config_error(error, &item->pos, "%s expects new %s { ... }, found %s%s%s",
                             setting, class_name, kind_name(item),
                             item->kind == VALUE_OBJECT ? " of " : "",
                             item->kind == VALUE_OBJECT ? item->text : "");
    }
  }
  if (v->kind != VALUE_OBJECT && v->kind != VALUE_LIST) {
    g_ptr_array_unref(list);
    return kq_config_error(error, &v->pos, "%s expects new %s { ... } or a list of them, "
                           "found %s", setting, class_name, kind_name(v));
  }
  *out = list;
  return TRUE;
}

/* The builder's `name = "..."`, checked as a queue name. */
static gboolean
builder_name(const Value *builder, gchar **name, GError **error)
{
  for (guint i = 0; i < builder->items->len; i++) {
    const Assignment *a = g_ptr_array_index(builder->items, i);
    g_autoptr(GError) local = NULL;

    if (strcmp(a->target, "name") != 0)
      continue;
    if (a->value->kind != VALUE_STRING)
      return kq_config_error(error, &a->value->pos, "name expects a string, found %s",
                             kind_name(a->value));
    if (!kq_queue_name_is_valid(a->value->text, &local))
      return kq_config_error(error, &a->value->pos, "name: %s", local->message);
    /* [queue NAME] must stay one key file group header */
    if (strpbrk(a->value->text, "[]") != NULL)
      return kq_config_error(error, &a->value->pos, "name: '[' and ']' are not accepted in "
                             "queue names");
    *name = g_strdup(a->value->text);
    return TRUE;
  }
  return kq_config_error(error, &builder->pos, "new %s without name = \"...\"",
                         builder->text);
}

/* One field of an AliasBuilder: destinationQueues, a string or a List of strings. */
static gboolean
alias_field(Translator *tr, const Assignment *field, const gchar *group, GError **error)
{
  const Value *v = field->value;
  g_autoptr(GString) names = g_string_new(NULL);

  if (strcmp(field->target, "destinationQueues") != 0)
    return kq_config_error(error, &field->pos, "unknown AliasBuilder setting '%.60s'",
                           field->target);
  if (v->kind == VALUE_STRING) {
    g_string_append(names, v->text);
  } else if (v->kind == VALUE_LIST) {
    for (guint k = 0; k < v->items->len; k++) {
      const Value *item = g_ptr_array_index(v->items, k);
      if (item->kind != VALUE_STRING)
        return kq_config_error(error, &item->pos, "destinationQueues expects queue "
                               "names as strings, found %s", kind_name(item));
      if (strchr(item->text, ';') != NULL)
        return kq_config_error(error, &item->pos, "destinationQueues: a queue name "
                               "cannot contain ';'");
      g_string_append_printf(names, "%s%s", k > 0 ? ";" : "", item->text);
    }
  } else {
    return kq_config_error(error, &v->pos, "destinationQueues expects List(\"...\"), "
                           "found %s", kind_name(v));
  }
  return kq_config_draft_set(tr->draft, &v->pos, field->target, group, "destinationQueues",
                             names->str, error);
}

static gboolean
queue_builder_field(Translator *tr, const Assignment *field, const gchar *group, GError **error)
{
  return queue_field(tr, field, field->target, group, error);
}

typedef gboolean (*BuilderFieldFunc)(Translator *tr, const Assignment *field, const gchar *group,
                                     GError **error);

/* queues = ... or aliases = ...: each builder becomes the group "<group_kind> <name>", and each
 * of its fields but `name` goes through `field_fn`. */
static gboolean
translate_builders(Translator *tr, const Assignment *a, const gchar *builder_class,
                   const gchar *group_kind, BuilderFieldFunc field_fn, GError **error)
{
  g_autoptr(GPtrArray) list = NULL;

  if (!builders(a->value, a->target, builder_class, &list, error))
    return FALSE;
  for (guint i = 0; i < list->len; i++) {
    const Value *builder = g_ptr_array_index(list, i);
    g_autofree gchar *name = NULL;
    g_autofree gchar *group = NULL;

    if (!builder_name(builder, &name, error))
      return FALSE;
    group = g_strdup_printf("%s %s", group_kind, name);
    kq_config_draft_add_group(tr->draft, &builder->pos, group);
    for (guint j = 0; j < builder->items->len; j++) {
      const Assignment *field = g_ptr_array_index(builder->items, j);
      if (strcmp(field->target, "name") != 0 && !field_fn(tr, field, group, error))
        return FALSE;
    }
  }
  return TRUE;
}

/* admin.httpPort or admin = new AdminServiceConfig { httpPort = ... }. */
static gboolean
translate_admin_field(Translator *tr, const Assignment *a, const gchar *field, gboolean nested,
                      GError **error)
{
  if (strcmp(field, "httpPort") == 0)
    return set_value_in(tr, nested ? "admin." : "", a, "server", "adminHttpPort", error);
  return warn_ignored_in(tr, nested ? "admin." : "", a);
}

static gboolean
translate_handler(Translator *tr, const Value *handler, GError **error)
{
  if (handler->kind != VALUE_OBJECT)
    return kq_config_error(error, &handler->pos, "handlers expects new FileHandlerConfig "
                           "{ ... } or a list of handlers, found %s", kind_name(handler));
  if (strcmp(handler->text, "ConsoleHandlerConfig") == 0)
    return TRUE; /* kestreld logs to stderr without logFile */
  if (strcmp(handler->text, "FileHandlerConfig") != 0) {
    kq_config_draft_warn(tr->draft, &handler->pos, "%s has no equivalent in kestreld and is "
                         "ignored", handler->text);
    return TRUE;
  }
  for (guint i = 0; i < handler->items->len; i++) {
    const Assignment *a = g_ptr_array_index(handler->items, i);
    if (strcmp(a->target, "filename") == 0) {
      if (!set_value_in(tr, "loggers.handlers.", a, "server", "logFile", error))
        return FALSE;
    } else if (strcmp(a->target, "roll") == 0) {
      if (!set_value_in(tr, "loggers.handlers.", a, "server", "logRoll", error))
        return FALSE;
    } else if (strcmp(a->target, "level") == 0) {
      if (!set_value_in(tr, "loggers.handlers.", a, "server", "logLevel", error))
        return FALSE;
    } else {
      warn_ignored_in(tr, "loggers.handlers.", a);
    }
  }
  return TRUE;
}

static gboolean
translate_loggers(Translator *tr, const Assignment *a, GError **error)
{
  const Value *v = a->value;
  const Value *logger = v;

  if (v->kind == VALUE_LIST) {
    if (v->items->len == 0)
      return TRUE;
    logger = g_ptr_array_index(v->items, 0);
    for (guint i = 1; i < v->items->len; i++) {
      const Value *other = g_ptr_array_index(v->items, i);
      kq_config_draft_warn(tr->draft, &other->pos, "only the first logger is used; this one "
                           "is ignored");
    }
  }
  if (logger->kind != VALUE_OBJECT || strcmp(logger->text, "LoggerConfig") != 0)
    return kq_config_error(error, &logger->pos, "loggers expects new LoggerConfig { ... }, "
                           "found %s", kind_name(logger));
  for (guint i = 0; i < logger->items->len; i++) {
    const Assignment *field = g_ptr_array_index(logger->items, i);
    if (strcmp(field->target, "level") == 0) {
      if (!set_value_in(tr, "loggers.", field, "server", "logLevel", error))
        return FALSE;
    } else if (strcmp(field->target, "handlers") == 0) {
      const Value *h = field->value;
      if (h->kind == VALUE_LIST) {
        for (guint j = 0; j < h->items->len; j++)
          if (!translate_handler(tr, g_ptr_array_index(h->items, j), error))
            return FALSE;
      } else if (!translate_handler(tr, h, error)) {
        return FALSE;
      }
    } else if (strcmp(field->target, "node") == 0 && field->value->kind == VALUE_STRING &&
               field->value->text[0] == '\0') {
      /* the root logger: what kestreld configures */
    } else {
      warn_ignored_in(tr, "loggers.", field);
    }
  }
  return TRUE;
}

static gboolean
translate_root(Translator *tr, const Value *root, GError **error)
{
  for (guint i = 0; i < root->items->len; i++) {
    const Assignment *a = g_ptr_array_index(root->items, i);
    const gchar *t = a->target;
    gboolean ok = TRUE;

    if (in_list(server_fields, t)) {
      ok = set_value(tr, a, "server", t, error);
    } else if (g_str_has_prefix(t, "default.") && strchr(t + 8, '.') == NULL) {
      ok = queue_field(tr, a, t + 8, "default", error);
    } else if (strcmp(t, "queues") == 0) {
      ok = translate_builders(tr, a, "QueueBuilder", "queue", queue_builder_field, error);
    } else if (strcmp(t, "aliases") == 0) {
      ok = translate_builders(tr, a, "AliasBuilder", "alias", alias_field, error);
    } else if (g_str_has_prefix(t, "admin.") && strchr(t + 6, '.') == NULL) {
      ok = translate_admin_field(tr, a, t + 6, FALSE, error);
    } else if (strcmp(t, "admin") == 0 && a->value->kind == VALUE_OBJECT) {
      for (guint j = 0; ok && j < a->value->items->len; j++) {
        const Assignment *field = g_ptr_array_index(a->value->items, j);
        ok = translate_admin_field(tr, field, field->target, TRUE, error);
      }
    } else if (strcmp(t, "loggers") == 0) {
      ok = translate_loggers(tr, a, error);
    } else if (in_list(ignored_server_fields, t)) {
      if (a->value->kind != VALUE_NONE && a->value->kind != VALUE_LIST)
        warn_ignored(tr, a);
      else if (a->value->kind == VALUE_LIST && a->value->items->len > 0)
        warn_ignored(tr, a);
    } else {
      ok = kq_config_error(error, &a->pos, "unknown KestrelConfig setting '%.60s'", t);
    }
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

gboolean
kq_scala_config_translate(const gchar *text, gsize len, const gchar *file, KqConfigDraft *draft,
                          GError **error)
{
  Parser ps = { .file = file };
  Translator tr = { draft };
  Value *root;
  gboolean ok;

  if (!kq_config_check_text(text, len, file, error))
    return FALSE;
  kq_scala_lexer_init(&ps.lexer, text, len, file);
  root = parse_file(&ps, error);
  if (root == NULL)
    return FALSE;
  ok = translate_root(&tr, root, error);
  value_free(root);
  return ok;
}
