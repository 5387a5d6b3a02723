/* Parsing a Kestrel 2.x Scala config into the syntax tree of scala-parse.h. */
#include <string.h>

#include "scala-parse.h"

/* ---- syntax tree ------------------------------------------------------------------------ */

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

void
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
Value *
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
