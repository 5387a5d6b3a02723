/* The syntax tree of a Kestrel 2.x Scala config and the recursive-descent parser that builds it
 * from scala-lexer.h's tokens: assignments whose values are literals, Some/None, lists and
 * `new Builder { ... }` blocks. scala-config.c translates the tree. Private to those files. */
#pragma once
#include <glib.h>

#include "config-draft.h"
#include "scala-lexer.h"

G_BEGIN_DECLS

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

typedef struct {
  KqScalaLexer lexer;
  KqScalaToken tok; /* the current token */
  const gchar *file;
  guint depth;
} Parser;

void value_free(Value *v);
/* import lines, then new KestrelConfig { ... }, then the end: the KestrelConfig object, or
 * NULL with "FILE:LINE:COL: ..." in *error. */
Value *parse_file(Parser *ps, GError **error);

G_END_DECLS
