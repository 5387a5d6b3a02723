/* Scala tokenizer for Kestrel config files (see scala-lexer.h). Column counts characters, so
 * positions in lines with Chinese comments match what an editor shows. */
#include <string.h>

#include "scala-lexer.h"

void
kq_scala_lexer_init(KqScalaLexer *lexer, const gchar *text, gsize len, const gchar *file)
{
  lexer->text = text;
  lexer->end = text + len;
  lexer->p = text;
  lexer->line = 1;
  lexer->column = 1;
  lexer->file = file;
  lexer->prev_end = NULL;
}

static void
advance(KqScalaLexer *lx)
{
  if (*lx->p == '\n') {
    lx->line++;
    lx->column = 1;
  } else if (((guchar) *lx->p & 0xC0) != 0x80) {
    lx->column++;
  }
  lx->p++;
}

static gboolean
at(const KqScalaLexer *lx, gsize ahead, gchar c)
{
  return lx->p + ahead < lx->end && lx->p[ahead] == c;
}

static gboolean
lex_error(KqScalaLexer *lx, gint line, gint column, GError **error, const gchar *message)
{
  KqConfigPos pos = { lx->file, line, column };
  return kq_config_error(error, &pos, "%s", message);
}

/* Whitespace, // comments and (nested, as in Scala) block comments. */
static gboolean
skip_blank(KqScalaLexer *lx, GError **error)
{
  while (lx->p < lx->end) {
    if (g_ascii_isspace(*lx->p)) {
      advance(lx);
    } else if (at(lx, 0, '/') && at(lx, 1, '/')) {
      while (lx->p < lx->end && *lx->p != '\n')
        advance(lx);
    } else if (at(lx, 0, '/') && at(lx, 1, '*')) {
      gint line = lx->line, column = lx->column;
      gsize depth = 0;

      do {
        if (lx->p >= lx->end)
          return lex_error(lx, line, column, error,
                           "unterminated comment: '/*' without a matching '*/'");
        if (at(lx, 0, '/') && at(lx, 1, '*')) {
          depth++;
          advance(lx);
        } else if (at(lx, 0, '*') && at(lx, 1, '/')) {
          depth--;
          advance(lx);
        }
        advance(lx);
      } while (depth > 0);
    } else {
      break;
    }
  }
  return TRUE;
}

static gboolean
is_ident_start(gchar c)
{
  return g_ascii_isalpha(c) || c == '_' || c == '$';
}

static gboolean
is_ident_part(gchar c)
{
  return g_ascii_isalnum(c) || c == '_' || c == '$';
}

static gboolean
is_operator_char(gchar c)
{
  return c != '\0' && strchr("!#%&*+-/:<=>?@\\^|~", c) != NULL;
}

gboolean
kq_scala_lexer_next(KqScalaLexer *lx, KqScalaToken *tok, GError **error)
{
  const gchar *start;

  if (!skip_blank(lx, error))
    return FALSE;
  start = lx->p;
  tok->line = lx->line;
  tok->column = lx->column;
  tok->text = start;

  if (lx->p >= lx->end) {
    tok->kind = KQ_SCALA_EOF;
    tok->len = 0;
  } else if (is_ident_start(*lx->p)) {
    while (lx->p < lx->end && is_ident_part(*lx->p))
      advance(lx);
    tok->kind = KQ_SCALA_IDENT;
    tok->len = (gsize) (lx->p - start);
  } else if (g_ascii_isdigit(*lx->p)) {
    while (lx->p < lx->end && g_ascii_isdigit(*lx->p))
      advance(lx);
    tok->kind = KQ_SCALA_INT;
    if (at(lx, 0, '.') && lx->p + 1 < lx->end && g_ascii_isdigit(lx->p[1])) {
      advance(lx);
      while (lx->p < lx->end && g_ascii_isdigit(*lx->p))
        advance(lx);
      tok->kind = KQ_SCALA_DECIMAL;
    }
    tok->len = (gsize) (lx->p - start);
    if (tok->kind == KQ_SCALA_INT && (at(lx, 0, 'L') || at(lx, 0, 'l')))
      advance(lx); /* Long literal: same value */
    if (lx->p < lx->end && is_ident_start(*lx->p))
      return lex_error(lx, lx->line, lx->column, error,
                       "unexpected letter after a number (hexadecimal, float and other "
                       "literal forms are not supported)");
  } else if (*lx->p == '"') {
    if (lx->prev_end == start)
      return lex_error(lx, tok->line, tok->column, error,
                       "string interpolation (s\"...\") is not supported");
    if (at(lx, 1, '"') && at(lx, 2, '"'))
      return lex_error(lx, tok->line, tok->column, error,
                       "triple-quoted strings are not supported");
    advance(lx);
    while (lx->p < lx->end && *lx->p != '"' && *lx->p != '\n') {
      if (*lx->p == '\\' && lx->p + 1 < lx->end && lx->p[1] != '\n')
        advance(lx);
      advance(lx);
    }
    if (lx->p >= lx->end || *lx->p != '"')
      return lex_error(lx, tok->line, tok->column, error,
                       "unterminated string: no closing '\"' on this line");
    advance(lx);
    tok->kind = KQ_SCALA_STRING;
    tok->len = (gsize) (lx->p - start);
  } else if (strchr("{}()[],.;", *lx->p) != NULL) {
    advance(lx);
    tok->kind = KQ_SCALA_PUNCT;
    tok->len = 1;
  } else if (is_operator_char(*lx->p)) {
    while (lx->p < lx->end && is_operator_char(*lx->p))
      advance(lx);
    tok->kind = KQ_SCALA_PUNCT;
    tok->len = (gsize) (lx->p - start);
  } else if (*lx->p == '\'') {
    return lex_error(lx, tok->line, tok->column, error,
                     "character and symbol literals are not supported");
  } else if (*lx->p == '`') {
    return lex_error(lx, tok->line, tok->column, error,
                     "back-quoted identifiers are not supported");
  } else {
    return lex_error(lx, tok->line, tok->column, error,
                     "unexpected character outside the supported Scala subset");
  }
  lx->prev_end = tok->kind == KQ_SCALA_IDENT ? lx->p : NULL;
  return TRUE;
}

gboolean
kq_scala_token_is(const KqScalaToken *token, KqScalaTokenKind kind, const gchar *text)
{
  return token->kind == kind && strlen(text) == token->len &&
         memcmp(token->text, text, token->len) == 0;
}

gboolean
kq_scala_string_value(const KqScalaToken *token, const gchar *file, gchar **out, GError **error)
{
  GString *value = g_string_sized_new(token->len);
  const gchar *p = token->text + 1, *end = token->text + token->len - 1;
  gint column = token->column + 1;

  for (; p < end; p++, column++) {
    if (*p != '\\') {
      g_string_append_c(value, *p);
      if (((guchar) *p & 0xC0) == 0x80)
        column--;
      continue;
    }
    p++;
    switch (*p) {
    case 'n': g_string_append_c(value, '\n'); break;
    case 't': g_string_append_c(value, '\t'); break;
    case 'r': g_string_append_c(value, '\r'); break;
    case '"': g_string_append_c(value, '"'); break;
    case '\'': g_string_append_c(value, '\''); break;
    case '\\': g_string_append_c(value, '\\'); break;
    default: {
      KqConfigPos pos = { file, token->line, column };
      g_string_free(value, TRUE);
      return kq_config_error(error, &pos, "unsupported escape in a string (use \\\\, \\\", "
                             "\\n, \\t or \\r)");
    }
    }
    column++;
  }
  *out = g_string_free(value, FALSE);
  return TRUE;
}
