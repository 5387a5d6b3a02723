/* Kestrel 1.x configgy files. The parser walks the text once, keeping the path of enclosing
 * blocks (top level, log, queues, a queue), and translates each `key = value` where it
 * stands. Kestrel 1.x counted ages and timeouts in seconds and sizes in bytes. */
#include <string.h>

#include <kestrel/collection.h>
#include <kestrel/error.h>
#include <kestrel/settings.h>

#include "configgy-config.h"

typedef enum {
  TOK_EOF,
  TOK_NAME,   /* key, block name or bare word (on, off, true, ...) */
  TOK_NUMBER, /* text as written */
  TOK_STRING, /* value: the string */
  TOK_PUNCT,  /* = { } [ ] , */
} TokKind;

typedef struct {
  TokKind kind;
  gchar *text;
  KqConfigPos pos;
} Tok;

typedef enum { SCOPE_TOP, SCOPE_LOG, SCOPE_QUEUES, SCOPE_QUEUE } ScopeKind;

typedef struct {
  const gchar *file;
  const gchar *base_dir;
  const gchar *p, *end;
  gint line, column;
  Tok tok;
  KqConfigDraft *draft;
  guint depth;
  guint include_depth;
} Reader;

static void
advance(Reader *r)
{
  if (*r->p == '\n') {
    r->line++;
    r->column = 1;
  } else if (((guchar) *r->p & 0xC0) != 0x80) {
    r->column++;
  }
  r->p++;
}

static gboolean
is_name_char(gchar c)
{
  return g_ascii_isalnum(c) || c == '_' || c == '-' || c == '.';
}

static gboolean
next(Reader *r, GError **error)
{
  g_clear_pointer(&r->tok.text, g_free);
  for (;;) {
    while (r->p < r->end && g_ascii_isspace(*r->p))
      advance(r);
    if (r->p < r->end && *r->p == '#') {
      while (r->p < r->end && *r->p != '\n')
        advance(r);
      continue;
    }
    break;
  }
  r->tok.pos.file = r->file;
  r->tok.pos.line = r->line;
  r->tok.pos.column = r->column;
  if (r->p >= r->end) {
    r->tok.kind = TOK_EOF;
    return TRUE;
  }
  const gchar *start = r->p;
  if (g_ascii_isalpha(*r->p) || *r->p == '_') {
    while (r->p < r->end && is_name_char(*r->p))
      advance(r);
    r->tok.kind = TOK_NAME;
    r->tok.text = g_strndup(start, (gsize) (r->p - start));
  } else if (g_ascii_isdigit(*r->p) || (*r->p == '-' && r->p + 1 < r->end &&
                                        g_ascii_isdigit(r->p[1]))) {
    advance(r);
    while (r->p < r->end && (g_ascii_isdigit(*r->p) || *r->p == '.'))
      advance(r);
    r->tok.kind = TOK_NUMBER;
    r->tok.text = g_strndup(start, (gsize) (r->p - start));
  } else if (*r->p == '"') {
    GString *value = g_string_new(NULL);
    advance(r);
    while (r->p < r->end && *r->p != '"' && *r->p != '\n') {
      if (*r->p == '\\') {
        advance(r);
        if (r->p >= r->end || *r->p == '\n')
          break;
        switch (*r->p) {
        case 'n': g_string_append_c(value, '\n'); break;
        case 't': g_string_append_c(value, '\t'); break;
        case 'r': g_string_append_c(value, '\r'); break;
        case '"': case '\\': g_string_append_c(value, *r->p); break;
        default: {
          KqConfigPos pos = { r->file, r->line, r->column - 1 };
          g_string_free(value, TRUE);
          return kq_config_error(error, &pos, "unsupported escape in a string (use \\\\, "
                                 "\\\", \\n, \\t or \\r)");
        }
        }
        advance(r);
        continue;
      }
      g_string_append_c(value, *r->p);
      advance(r);
    }
    if (r->p >= r->end || *r->p != '"') {
      g_string_free(value, TRUE);
      return kq_config_error(error, &r->tok.pos,
                             "unterminated string: no closing '\"' on this line");
    }
    advance(r);
    r->tok.kind = TOK_STRING;
    r->tok.text = g_string_free(value, FALSE);
  } else if (strchr("={}[],", *r->p) != NULL) {
    advance(r);
    r->tok.kind = TOK_PUNCT;
    r->tok.text = g_strndup(start, 1);
  } else if (*r->p == '(' || *r->p == '<' || *r->p == '$') {
    return kq_config_error(error, &r->tok.pos, "configgy attributes, tags and $(...) "
                           "substitutions are not supported");
  } else {
    return kq_config_error(error, &r->tok.pos, "unexpected character in a configgy file");
  }
  return TRUE;
}

static gboolean
is_punct(const Reader *r, const gchar *text)
{
  return r->tok.kind == TOK_PUNCT && strcmp(r->tok.text, text) == 0;
}

static gboolean
fail_here(Reader *r, GError **error, const gchar *what)
{
  if (r->tok.kind == TOK_EOF)
    return kq_config_error(error, &r->tok.pos, "expected %s, found the end of the file", what);
  if (strlen(r->tok.text) > 40)
    return kq_config_error(error, &r->tok.pos, "expected %s, found '%.40s...'", what,
                           r->tok.text);
  return kq_config_error(error, &r->tok.pos, "expected %s, found '%s'", what, r->tok.text);
}

/* ---- translation of one key = value ------------------------------------------------------ */

typedef enum {
  AS_IS,       /* the text goes over unchanged */
  SECONDS,     /* Kestrel 1.x seconds; 0 means none */
  SYNC_BOOL,   /* sync_journal = true: fsync every write */
} Conversion;

typedef struct {
  const gchar *name;
  const gchar *key;
  Conversion conversion;
} Mapping;

static const Mapping server_map[] = {
  { "port", "memcacheListenPort", AS_IS },
  { "host", "listenAddress", AS_IS },
  { "queue_path", "queuePath", AS_IS },
  { "timeout", "clientTimeout", SECONDS },
  { "text_port", "textListenPort", AS_IS },
  { "thrift_port", "thriftListenPort", AS_IS },
  { "max_open_transactions", "maxOpenTransactions", AS_IS },
  { "expiration_timer_frequency_seconds", "expirationTimerFrequency", SECONDS },
};

static const Mapping queue_map[] = {
  { "max_items", "maxItems", AS_IS },
  { "max_size", "maxSize", AS_IS },
  { "max_item_size", "maxItemSize", AS_IS },
  { "max_age", "maxAge", SECONDS },
  { "max_journal_size", "defaultJournalSize", AS_IS },
  { "max_memory_size", "maxMemorySize", AS_IS },
  { "max_journal_size_absolute", "maxJournalSize", AS_IS },
  { "discard_old_when_full", "discardOldWhenFull", AS_IS },
  { "journal", "keepJournal", AS_IS },
  { "sync_journal", "syncJournal", SYNC_BOOL },
  { "move_expired_to", "expireToQueue", AS_IS },
  { "expire_to_queue", "expireToQueue", AS_IS },
  { "max_expire_sweep", "maxExpireSweep", AS_IS },
  { "fanout_only", "fanoutOnly", AS_IS },
  { "max_queue_age", "maxQueueAge", SECONDS },
};

static const Mapping log_map[] = {
  { "filename", "logFile", AS_IS },
  { "roll", "logRoll", AS_IS },
  { "level", "logLevel", AS_IS },
};

/* Known to Kestrel 1.x, nothing to do in kestreld. */
static const gchar *const ignored_queue_keys[] = {
  "max_journal_overflow", "multifile_journal", "rotate_journals", NULL,
};
static const gchar *const ignored_top_keys[] = {
  "jmx", "stats", "admin_port", "admin_http_port", NULL,
};

static const Mapping *
find_mapping(const Mapping *map, gsize n, const gchar *name)
{
  for (gsize i = 0; i < n; i++)
    if (strcmp(map[i].name, name) == 0)
      return &map[i];
  return NULL;
}

static gboolean
in_list(const gchar *const *list, const gchar *name)
{
  for (gsize i = 0; list[i] != NULL; i++)
    if (strcmp(list[i], name) == 0)
      return TRUE;
  return FALSE;
}

/* configgy's level names into GLib's. */
static const gchar *
log_level(const gchar *text)
{
  static const struct { const gchar *from, *to; } levels[] = {
    { "fatal", "error" }, { "critical", "critical" }, { "error", "critical" },
    { "warning", "warning" }, { "info", "info" }, { "debug", "debug" }, { "trace", "debug" },
    { "all", "debug" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(levels); i++)
    if (g_ascii_strcasecmp(levels[i].from, text) == 0)
      return levels[i].to;
  return text;
}

static gboolean
set_mapped(Reader *r, const Mapping *m, const gchar *group, const gchar *name,
           const KqConfigPos *pos, const gchar *text, GError **error)
{
  g_autofree gchar *value = NULL;
  gint64 seconds;
  gboolean flag;

  switch (m->conversion) {
  case AS_IS:
    value = g_strdup(strcmp(m->key, "logLevel") == 0 ? log_level(text) : text);
    break;
  case SECONDS:
    if (!kq_parse_count(text, FALSE, &seconds, NULL))
      return kq_config_error(error, pos, "%s expects a whole number of seconds, found '%s'",
                             name, text);
    value = seconds == 0 ? g_strdup("none") : g_strdup_printf("%" G_GINT64_FORMAT ".seconds",
                                                             seconds);
    break;
  case SYNC_BOOL:
    if (!kq_parse_bool(text, &flag, NULL))
      return kq_config_error(error, pos, "%s expects true or false, found '%s'", name, text);
    value = g_strdup(flag ? "0" : "never");
    break;
  }
  return kq_config_draft_set(r->draft, pos, name, group, m->key, value, error);
}

static gboolean
translate(Reader *r, ScopeKind scope, const gchar *group, const gchar *name,
          const KqConfigPos *name_pos, const KqConfigPos *pos, const gchar *text,
          GError **error)
{
  const Mapping *m = NULL;

  if (scope == SCOPE_LOG) {
    m = find_mapping(log_map, G_N_ELEMENTS(log_map), name);
    if (m == NULL) {
      kq_config_draft_warn(r->draft, name_pos, "log.%s has no equivalent in kestreld and is "
                           "ignored", name);
      return TRUE;
    }
    return set_mapped(r, m, "server", name, pos, text, error);
  }
  if (scope == SCOPE_QUEUES)
    return kq_config_error(error, name_pos, "'%s = ...' inside queues { }: expected a queue block "
                           "NAME { ... }", name);
  if (scope == SCOPE_TOP && (m = find_mapping(server_map, G_N_ELEMENTS(server_map), name)))
    return set_mapped(r, m, "server", name, pos, text, error);
  if ((m = find_mapping(queue_map, G_N_ELEMENTS(queue_map), name)) != NULL)
    return set_mapped(r, m, scope == SCOPE_TOP ? "default" : group, name, pos, text, error);
  if (in_list(ignored_queue_keys, name) || (scope == SCOPE_TOP &&
                                            in_list(ignored_top_keys, name))) {
    kq_config_draft_warn(r->draft, name_pos, "%s has no equivalent in kestreld and is ignored",
                         name);
    return TRUE;
  }
  return kq_config_error(error, name_pos, "unknown Kestrel 1.x setting '%.60s'%s", name,
                         scope == SCOPE_QUEUE ? " in a queue block" : "");
}

/* ---- parser ------------------------------------------------------------------------------ */

static gboolean parse_items(Reader *r, ScopeKind scope, const gchar *group, gboolean top,
                            GError **error);

static gboolean
read_include(Reader *r, ScopeKind scope, const gchar *group, GError **error)
{
  KqConfigPos pos = r->tok.pos;
  g_autofree gchar *path = NULL;
  g_autofree gchar *text = NULL;
  g_autofree gchar *dir = NULL;
  g_autoptr(GError) local = NULL;
  gsize len;

  if (!next(r, error))
    return FALSE;
  if (r->tok.kind != TOK_STRING)
    return fail_here(r, error, "a file name in quotes after include");
  if (r->base_dir == NULL)
    return kq_config_error(error, &pos, "include is not available here");
  if (r->include_depth >= 16)
    return kq_config_error(error, &pos, "includes nested more than 16 deep (a cycle?)");
  path = g_path_is_absolute(r->tok.text) ? g_strdup(r->tok.text)
                                         : g_build_filename(r->base_dir, r->tok.text, NULL);
  if (!g_file_get_contents(path, &text, &len, &local))
    return kq_config_error(error, &pos, "include: %s", local->message);
  if (!kq_config_check_text(text, len, path, error))
    return FALSE;
  dir = g_path_get_dirname(path);

  Reader inner = {
    .file = path, .base_dir = dir, .p = text, .end = text + len, .line = 1, .column = 1,
    .draft = r->draft, .depth = r->depth, .include_depth = r->include_depth + 1,
  };
  gboolean ok = next(&inner, error) && parse_items(&inner, scope, group, TRUE, error);
  g_free(inner.tok.text);
  return ok && next(r, error);
}

static gboolean
parse_value(Reader *r, const gchar *name, gchar **out, GError **error)
{
  if (r->tok.kind == TOK_STRING || r->tok.kind == TOK_NUMBER || r->tok.kind == TOK_NAME) {
    *out = g_strdup(r->tok.text);
    return next(r, error);
  }
  if (is_punct(r, "["))
    return kq_config_error(error, &r->tok.pos, "%s expects a single value, found a list",
                           name);
  return fail_here(r, error, "a value");
}

static gboolean
parse_items(Reader *r, ScopeKind scope, const gchar *group, gboolean top, GError **error)
{
  if (++r->depth > KQ_CONFIG_MAX_DEPTH)
    return kq_config_error(error, &r->tok.pos, "blocks nested more than %d levels deep",
                           KQ_CONFIG_MAX_DEPTH);
  for (;;) {
    KqConfigPos pos = r->tok.pos;
    g_autofree gchar *name = NULL;

    if (top && r->tok.kind == TOK_EOF)
      break;
    if (!top && is_punct(r, "}"))
      break;
    if (r->tok.kind != TOK_NAME)
      return fail_here(r, error, top ? "a setting or block name" : "a setting name or '}'");
    if (strcmp(r->tok.text, "include") == 0) {
      if (!read_include(r, scope, group, error))
        return FALSE;
      continue;
    }
    name = g_strdup(r->tok.text);
    if (!next(r, error))
      return FALSE;
    if (is_punct(r, "=")) {
      g_autofree gchar *value = NULL;
      KqConfigPos value_pos;

      if (!next(r, error))
        return FALSE;
      value_pos = r->tok.pos;
      if (!parse_value(r, name, &value, error) ||
          !translate(r, scope, group, name, &pos, &value_pos, value, error))
        return FALSE;
    } else if (is_punct(r, "{")) {
      ScopeKind inner = SCOPE_QUEUE;
      g_autofree gchar *inner_group = NULL;

      if (scope == SCOPE_TOP && strcmp(name, "log") == 0) {
        inner = SCOPE_LOG;
      } else if (scope == SCOPE_TOP && strcmp(name, "queues") == 0) {
        inner = SCOPE_QUEUES;
      } else if (scope == SCOPE_TOP || scope == SCOPE_QUEUES) {
        g_autoptr(GError) local = NULL;
        if (!kq_queue_name_is_valid(name, &local))
          return kq_config_error(error, &pos, "queue block '%s': %s", name, local->message);
        inner_group = g_strdup_printf("queue %s", name);
        kq_config_draft_add_group(r->draft, &pos, inner_group);
      } else {
        return kq_config_error(error, &pos, "block '%s' is not expected inside %s", name,
                               scope == SCOPE_LOG ? "log { }" : "a queue block");
      }
      if (!next(r, error) || !parse_items(r, inner, inner_group, FALSE, error))
        return FALSE;
      if (!next(r, error)) /* the '}' */
        return FALSE;
    } else {
      return fail_here(r, error, "'=' or '{' after the name");
    }
  }
  r->depth--;
  return TRUE;
}

gboolean
kq_configgy_config_translate(const gchar *text, gsize len, const gchar *file,
                             const gchar *base_dir, KqConfigDraft *draft, GError **error)
{
  Reader r = {
    .file = file, .base_dir = base_dir, .p = text, .end = text + len, .line = 1, .column = 1,
    .draft = draft,
  };
  gboolean ok;

  if (!kq_config_check_text(text, len, file, error))
    return FALSE;
  ok = next(&r, error) && parse_items(&r, SCOPE_TOP, NULL, TRUE, error);
  g_free(r.tok.text);
  return ok;
}
