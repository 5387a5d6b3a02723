/* Tokenizer for the subset of Scala that Kestrel 2.x config files use: identifiers, integer
 * and decimal literals (with an L suffix), double-quoted strings, punctuation, and // and
 * nested block comments, which are skipped. Tokens point into the text; nothing is copied. */
#pragma once
#include <glib.h>

#include "config-draft.h"

G_BEGIN_DECLS

typedef enum {
  KQ_SCALA_EOF,
  KQ_SCALA_IDENT,   /* also keywords: new, import, true, ... */
  KQ_SCALA_INT,     /* digits, an L/l suffix is dropped from the text */
  KQ_SCALA_DECIMAL, /* digits.digits: no setting takes one, the translator says so */
  KQ_SCALA_STRING,  /* text is the literal with its quotes; see kq_scala_string_value */
  KQ_SCALA_PUNCT,   /* { } ( ) [ ] , . ; = :: and any other operator character run */
} KqScalaTokenKind;

typedef struct {
  KqScalaTokenKind kind;
  const gchar *text;
  gsize len;
  gint line, column;
} KqScalaToken;

typedef struct {
  const gchar *text;
  const gchar *end;
  const gchar *p;
  gint line, column;
  const gchar *file;
  const gchar *prev_end; /* end of the previous identifier, to spot s"..." interpolation */
} KqScalaLexer;

/* `text` must have passed kq_config_check_text. */
void kq_scala_lexer_init(KqScalaLexer *lexer, const gchar *text, gsize len, const gchar *file);
/* The next token; FALSE with "FILE:LINE:COL: ..." for an unterminated string or comment,
 * a character outside the subset, a triple-quoted or interpolated string. */
gboolean kq_scala_lexer_next(KqScalaLexer *lexer, KqScalaToken *token, GError **error);
/* The value of a string token, escapes resolved. FALSE on an unknown escape. */
gboolean kq_scala_string_value(const KqScalaToken *token, const gchar *file, gchar **out,
                               GError **error);
gboolean kq_scala_token_is(const KqScalaToken *token, KqScalaTokenKind kind, const gchar *text);

G_END_DECLS
