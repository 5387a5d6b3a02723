/* Kestrel 2.x Scala configs: a small syntax tree of the settings (assignments whose values are
 * literals, Some/None, lists and `new Builder { ... }` blocks), then its translation. */
#include <string.h>

#include <kestrel/collection.h>
#include <kestrel/settings.h>

#include "scala-config.h"
#include "scala-lexer.h"

/* ---- syntax tree ------------------------------------------------------------------------ */

typedef enum {
  VALUE_STRING,  /* text: the string */
  VALUE_NUMBER,  /* text: digits (or "1.5"), unit: "seconds" etc. or NULL */
  VALUE_BOOL,    /* text: "true" / "false" */
  VALUE_NONE,
  VALUE_SOME,    /* inner */
  VALUE_LIST,    /* items: Value* */
  VALUE_OBJECT,  /* text: class name, items: Assignment* */
  VALUE_PATH,    /* text: "Level.INFO", "Duration.MaxValue", "Up" */
} ValueKind;

typedef struct Value {
  ValueKind kind;
  KqConfigPos pos;
  gchar *text;
  gchar *unit;
  struct Value *inner;
  GPtrArray *items;
} Value;

typedef struct {
  gchar *target; /* "queuePath", "default.maxItems", "admin.httpPort" */
  KqConfigPos pos;
  Value *value;
} Assignment;

static void value_free(Value *v);

static void
assignment_free(gpointer data)
{
  Assignment *a = data;
  g_free(a->target);
  value_free(a->value);
  g_free(a);
}

static void
value_free_cb(gpointer data)
{
  value_free(data);
}

static void
value_free(Value *v)
{
  if (v == NULL)
    return;
  g_free(v->text);
  g_free(v->unit);
  value_free(v->inner);
  if (v->items != NULL)
    g_ptr_array_unref(v->items);
  g_free(v);
}

static Value *
value_new(ValueKind kind, const KqConfigPos *pos)
{
  Value *v = g_new0(Value, 1);
  v->kind = kind;
  v->pos = *pos;
  if (kind == VALUE_LIST)
    v->items = g_ptr_array_new_with_free_func(value_free_cb);
  else if (kind == VALUE_OBJECT)
    v->items = g_ptr_array_new_with_free_func(assignment_free);
  return v;
}

/* ---- parser ------------------------------------------------------------------------------ */

typedef struct {
  KqScalaLexer lexer;
  KqScalaToken tok; /* the current token */
  const gchar *file;
  guint depth;
} Parser;

static KqConfigPos
tok_pos(const Parser *ps)
{
  KqConfigPos pos = { ps->file, ps->tok.line, ps->tok.column };
  return pos;
}

static gboolean
next(Parser *ps, GError **error)
{
  return kq_scala_lexer_next(&ps->lexer, &ps->tok, error);
}

static gboolean
is(const Parser *ps, KqScalaTokenKind kind, const gchar *text)
{
  return kq_scala_token_is(&ps->tok, kind, text);
}

static gboolean
is_punct(const Parser *ps, const gchar *text)
{
  return is(ps, KQ_SCALA_PUNCT, text);
}

static gboolean
is_ident(const Parser *ps, const gchar *text)
{
  return is(ps, KQ_SCALA_IDENT, text);
}

/* The current token for messages: at most 40 bytes of it, quoted. */
static gchar *
describe(const Parser *ps)
{
  gsize len = ps->tok.len;

  if (ps->tok.kind == KQ_SCALA_EOF)
    return g_strdup("the end of the file");
  if (len > 40) {
    const gchar *cut = g_utf8_find_prev_char(ps->tok.text, ps->tok.text + 41);
    len = cut != NULL ? (gsize) (cut - ps->tok.text) : 40;
    return g_strdup_printf("'%.*s...'", (int) len, ps->tok.text);
  }
  return g_strdup_printf("'%.*s'", (int) len, ps->tok.text);
}

static gboolean
fail_here(Parser *ps, GError **error, const gchar *what)
{
  KqConfigPos pos = tok_pos(ps);
  g_autofree gchar *found = describe(ps);
  return kq_config_error(error, &pos, "expected %s, found %s", what, found);
}

static gboolean
expect_punct(Parser *ps, const gchar *text, GError **error)
{
  g_autofree gchar *what = g_strdup_printf("'%s'", text);

  if (!is_punct(ps, text))
    return fail_here(ps, error, what);
  return next(ps, error);
}

static gboolean
enter(Parser *ps, GError **error)
{
  if (++ps->depth > KQ_CONFIG_MAX_DEPTH) {
    KqConfigPos pos = tok_pos(ps);
    return kq_config_error(error, &pos, "nested more than %d levels deep",
                           KQ_CONFIG_MAX_DEPTH);
  }
  return TRUE;
}

static gchar *
tok_text(const Parser *ps)
{
  return g_strndup(ps->tok.text, ps->tok.len);
}

static gboolean parse_assignments(Parser *ps, Value *object, GError **error);
static Value *parse_expr(Parser *ps, GError **error);

/* Scala words that start constructs a config file has no use for. */
static gboolean
is_unsupported_keyword(const Parser *ps)
{
  static const gchar *const words[] = {
    "val", "var", "def", "lazy", "if", "else", "for", "while", "do", "match", "case", "class",
    "object", "trait", "type", "import", "package", "override", "private", "protected",
    "return", "throw", "try", "yield", "this", "super", "with", "extends", "implicit", NULL,
  };
  for (gsize i = 0; words[i] != NULL; i++)
    if (is_ident(ps, words[i]))
      return TRUE;
  return FALSE;
}

static gboolean
unsupported_here(Parser *ps, GError **error, const gchar *what)
{
  KqConfigPos pos = tok_pos(ps);
  g_autofree gchar *found = describe(ps);
  return kq_config_error(error, &pos, "%s %s is outside the Scala subset Kestrel configs use",
                         what, found);
}

static gboolean
is_unit(const gchar *name)
{
  static const gchar *const units[] = {
    "byte", "bytes", "kilobyte", "kilobytes", "megabyte", "megabytes", "gigabyte", "gigabytes",
    "terabyte", "terabytes", "millisecond", "milliseconds", "second", "seconds", "minute",
    "minutes", "hour", "hours", "day", "days", NULL,
  };
  for (gsize i = 0; units[i] != NULL; i++)
    if (strcmp(units[i], name) == 0)
      return TRUE;
  return FALSE;
}

/* A number, optionally followed by .unit (16.megabytes, 30.seconds). */
static Value *
parse_number(Parser *ps, gboolean negative, GError **error)
{
  KqConfigPos pos = tok_pos(ps);
  g_autofree gchar *digits = tok_text(ps);
  Value *v = value_new(VALUE_NUMBER, &pos);

  v->text = g_strconcat(negative ? "-" : "", digits, NULL);
  if (!next(ps, error))
    goto fail;
  if (is_punct(ps, ".")) {
    g_autofree gchar *unit = NULL;

    if (!next(ps, error))
      goto fail;
    if (ps->tok.kind != KQ_SCALA_IDENT) {
      fail_here(ps, error, "a unit such as seconds or megabytes");
      goto fail;
    }
    unit = tok_text(ps);
    if (!is_unit(unit)) {
      fail_here(ps, error, "a unit (bytes, kilobytes, megabytes, gigabytes, terabytes, "
                "milliseconds, seconds, minutes, hours, days)");
      goto fail;
    }
    v->unit = g_steal_pointer(&unit);
    if (!next(ps, error))
      goto fail;
  }
  return v;
fail:
  value_free(v);
  return NULL;
}

/* Some(x), List(a, b, ) and (x): the part after the opening '('. */
static gboolean
parse_arguments(Parser *ps, Value *list, gboolean single, GError **error)
{
  while (!is_punct(ps, ")")) {
    Value *item = parse_expr(ps, error);
    if (item == NULL)
      return FALSE;
    g_ptr_array_add(list->items, item);
    if (is_punct(ps, ",")) {
      if (single)
        return fail_here(ps, error, "')' (one value only)");
      if (!next(ps, error))
        return FALSE;
    } else if (!is_punct(ps, ")")) {
      return fail_here(ps, error, "',' or ')'");
    }
  }
  if (single && list->items->len != 1)
    return fail_here(ps, error, "a value");
  return next(ps, error);
}

static Value *
parse_term(Parser *ps, GError **error)
{
  KqConfigPos pos = tok_pos(ps);
  Value *v = NULL;

  if (!enter(ps, error))
    return NULL;
  switch (ps->tok.kind) {
  case KQ_SCALA_STRING: {
    gchar *text = NULL;
    if (!kq_scala_string_value(&ps->tok, ps->file, &text, error))
      break;
    v = value_new(VALUE_STRING, &pos);
    v->text = text;
    if (!next(ps, error))
      g_clear_pointer(&v, value_free);
    break;
  }
  case KQ_SCALA_INT:
  case KQ_SCALA_DECIMAL:
    v = parse_number(ps, FALSE, error);
    break;
  case KQ_SCALA_PUNCT:
    if (is_punct(ps, "-")) {
      if (!next(ps, error))
        break;
      if (ps->tok.kind != KQ_SCALA_INT && ps->tok.kind != KQ_SCALA_DECIMAL) {
        fail_here(ps, error, "a number after '-'");
        break;
      }
      v = parse_number(ps, TRUE, error);
    } else if (is_punct(ps, "(")) {
      Value *group = value_new(VALUE_LIST, &pos);
      if (next(ps, error) && parse_arguments(ps, group, TRUE, error))
        v = g_ptr_array_steal_index(group->items, 0);
      value_free(group);
    } else {
      fail_here(ps, error, "a value");
    }
    break;
  case KQ_SCALA_IDENT:
    if (is_ident(ps, "new")) {
      if (!next(ps, error))
        break;
      if (ps->tok.kind != KQ_SCALA_IDENT) {
        fail_here(ps, error, "a class name after 'new'");
        break;
      }
      v = value_new(VALUE_OBJECT, &pos);
      v->text = tok_text(ps);
      if (!next(ps, error) ||
          (is_punct(ps, "(") && (!next(ps, error) || !expect_punct(ps, ")", error))) ||
          (is_punct(ps, "{") && !parse_assignments(ps, v, error)))
        g_clear_pointer(&v, value_free);
    } else if (is_ident(ps, "true") || is_ident(ps, "false")) {
      v = value_new(VALUE_BOOL, &pos);
      v->text = tok_text(ps);
      if (!next(ps, error))
        g_clear_pointer(&v, value_free);
    } else if (is_ident(ps, "None") || is_ident(ps, "Nil")) {
      v = value_new(is_ident(ps, "None") ? VALUE_NONE : VALUE_LIST, &pos);
      if (!next(ps, error))
        g_clear_pointer(&v, value_free);
    } else if (is_ident(ps, "Some") || is_ident(ps, "List")) {
      gboolean some = is_ident(ps, "Some");
      Value *list = value_new(VALUE_LIST, &pos);
      if (next(ps, error) && expect_punct(ps, "(", error) &&
          parse_arguments(ps, list, some, error)) {
        if (some) {
          v = value_new(VALUE_SOME, &pos);
          v->inner = g_ptr_array_steal_index(list->items, 0);
          value_free(list);
        } else {
          v = list;
        }
      } else {
        value_free(list);
      }
    } else if (is_unsupported_keyword(ps)) {
      unsupported_here(ps, error, "the keyword");
    } else {
      /* A dotted name: Level.INFO, Policy.SigHup, Duration.MaxValue, Long.MaxValue.bytes */
      GString *path = g_string_new(NULL);
      gboolean ok = TRUE;

      for (;;) {
        g_string_append_len(path, ps->tok.text, ps->tok.len);
        if (!(ok = next(ps, error)) || !is_punct(ps, "."))
          break;
        if (!(ok = next(ps, error)))
          break;
        if (ps->tok.kind != KQ_SCALA_IDENT) {
          ok = fail_here(ps, error, "a name after '.'");
          break;
        }
        g_string_append_c(path, '.');
      }
      if (ok && (is_punct(ps, "(") || is_punct(ps, "{")))
        ok = unsupported_here(ps, error, "a method call or block");
      if (ok) {
        v = value_new(VALUE_PATH, &pos);
        v->text = g_string_free(g_steal_pointer(&path), FALSE);
      } else {
        g_string_free(path, TRUE);
      }
    }
    break;
  case KQ_SCALA_EOF:
    fail_here(ps, error, "a value");
    break;
  }
  ps->depth--;
  return v;
}

/* term (:: term)*, as Scala builds lists: a :: b :: Nil. The final Nil may be left out
 * (Kestrel's own examples end with a builder). */
static Value *
parse_expr(Parser *ps, GError **error)
{
  Value *first = parse_term(ps, error);
  Value *list;

  if (first == NULL || !is_punct(ps, "::"))
    return first;
  list = value_new(VALUE_LIST, &first->pos);
  g_ptr_array_add(list->items, first);
  while (is_punct(ps, "::")) {
    Value *item;
    if (!next(ps, error) || (item = parse_term(ps, error)) == NULL) {
      value_free(list);
      return NULL;
    }
    if (item->kind == VALUE_LIST && item->items->len == 0) { /* Nil */
      value_free(item);
      if (is_punct(ps, "::")) {
        fail_here(ps, error, "the end of the list after Nil");
        value_free(list);
        return NULL;
      }
      break;
    }
    g_ptr_array_add(list->items, item);
  }
  return list;
}

/* '{' (name(.name)* '=' expr [';'])* '}' */
static gboolean
parse_assignments(Parser *ps, Value *object, GError **error)
{
  if (!enter(ps, error) || !expect_punct(ps, "{", error))
    return FALSE;
  while (!is_punct(ps, "}")) {
    KqConfigPos pos = tok_pos(ps);
    GString *target;
    Assignment *a;

    if (is_punct(ps, ";")) {
      if (!next(ps, error))
        return FALSE;
      continue;
    }
    if (ps->tok.kind == KQ_SCALA_EOF)
      return fail_here(ps, error, "'}' to close the block");
    if (is_unsupported_keyword(ps))
      return unsupported_here(ps, error, "the keyword");
    if (ps->tok.kind != KQ_SCALA_IDENT)
      return fail_here(ps, error, "a setting name or '}' (expressions other than literals, "
                       "Some/None, List, :: and new ... { } are not supported)");
    target = g_string_new(NULL);
    for (;;) {
      g_string_append_len(target, ps->tok.text, ps->tok.len);
      if (!next(ps, error)) {
        g_string_free(target, TRUE);
        return FALSE;
      }
      if (!is_punct(ps, "."))
        break;
      if (!next(ps, error)) {
        g_string_free(target, TRUE);
        return FALSE;
      }
      if (ps->tok.kind != KQ_SCALA_IDENT) {
        g_string_free(target, TRUE);
        return fail_here(ps, error, "a name after '.'");
      }
      g_string_append_c(target, '.');
    }
    if (!is_punct(ps, "=")) {
      g_string_free(target, TRUE);
      if (is_punct(ps, "(") || is_punct(ps, "+=") || is_punct(ps, ":"))
        return unsupported_here(ps, error, "the construct");
      return fail_here(ps, error, "'=' after the setting name");
    }
    if (!next(ps, error)) {
      g_string_free(target, TRUE);
      return FALSE;
    }
    a = g_new0(Assignment, 1);
    a->target = g_string_free(target, FALSE);
    a->pos = pos;
    g_ptr_array_add(object->items, a);
    if ((a->value = parse_expr(ps, error)) == NULL)
      return FALSE;
  }
  ps->depth--;
  return next(ps, error);
}

/* import lines, then new KestrelConfig { ... }, then the end. */
static Value *
parse_file(Parser *ps, GError **error)
{
  Value *root;

  if (!next(ps, error))
    return NULL;
  while (is_ident(ps, "import")) {
    do {
      if (!next(ps, error))
        return NULL;
      if (is_punct(ps, "{")) {
        while (!is_punct(ps, "}")) {
          if (ps->tok.kind == KQ_SCALA_EOF) {
            fail_here(ps, error, "'}' to close the import");
            return NULL;
          }
          if (!next(ps, error))
            return NULL;
        }
      } else if (ps->tok.kind != KQ_SCALA_IDENT) {
        fail_here(ps, error, "a name after 'import'");
        return NULL;
      }
      if (!next(ps, error))
        return NULL;
    } while (is_punct(ps, "."));
    if (is_punct(ps, ";") && !next(ps, error))
      return NULL;
  }
  if (!is_ident(ps, "new")) {
    fail_here(ps, error, "'new KestrelConfig { ... }'");
    return NULL;
  }
  root = parse_term(ps, error);
  if (root == NULL)
    return NULL;
  if (root->kind != VALUE_OBJECT || strcmp(root->text, "KestrelConfig") != 0) {
    kq_config_error(error, &root->pos, "expected 'new KestrelConfig { ... }', found 'new %s'",
                    root->text);
    value_free(root);
    return NULL;
  }
  if (ps->tok.kind != KQ_SCALA_EOF) {
    fail_here(ps, error, "the end of the file after the KestrelConfig block");
    value_free(root);
    return NULL;
  }
  return root;
}

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
