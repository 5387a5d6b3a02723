/* Key file text built from a translated Kestrel config, with every value checked on the way. */
#include <stdarg.h>
#include <string.h>

#include <kestrel/collection.h>
#include <kestrel/error.h>
#include <kestrel/settings.h>

#include "config-draft.h"
#include "server-config.h"

typedef struct {
  gchar *name;
  GString *body;
} DraftGroup;

struct _KqConfigDraft {
  GPtrArray *groups;   /* DraftGroup*, in order of first use */
  GHashTable *by_name; /* name -> DraftGroup* */
  GPtrArray *warnings; /* gchar* */
};

static void
draft_group_free(gpointer data)
{
  DraftGroup *g = data;
  g_free(g->name);
  g_string_free(g->body, TRUE);
  g_free(g);
}

KqConfigDraft *
kq_config_draft_new(void)
{
  KqConfigDraft *d = g_new0(KqConfigDraft, 1);
  d->groups = g_ptr_array_new_with_free_func(draft_group_free);
  d->by_name = g_hash_table_new(g_str_hash, g_str_equal);
  d->warnings = g_ptr_array_new_with_free_func(g_free);
  return d;
}

void
kq_config_draft_free(KqConfigDraft *draft)
{
  if (draft == NULL)
    return;
  g_hash_table_destroy(draft->by_name);
  g_ptr_array_unref(draft->groups);
  g_ptr_array_unref(draft->warnings);
  g_free(draft);
}

static gchar *
position_prefix(const KqConfigPos *pos)
{
  return g_strdup_printf("%s:%d:%d", pos->file, pos->line, pos->column);
}

gboolean
kq_config_error(GError **error, const KqConfigPos *pos, const gchar *format, ...)
{
  g_autofree gchar *where = position_prefix(pos);
  g_autofree gchar *message = NULL;
  va_list args;

  va_start(args, format);
  message = g_strdup_vprintf(format, args);
  va_end(args);
  g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG, "%s: %s", where, message);
  return FALSE;
}

void
kq_config_draft_warn(KqConfigDraft *draft, const KqConfigPos *pos, const gchar *format, ...)
{
  g_autofree gchar *where = position_prefix(pos);
  g_autofree gchar *message = NULL;
  va_list args;

  va_start(args, format);
  message = g_strdup_vprintf(format, args);
  va_end(args);
  g_ptr_array_add(draft->warnings, g_strdup_printf("%s: %s", where, message));
}

GPtrArray *
kq_config_draft_warnings(KqConfigDraft *draft)
{
  return draft->warnings;
}

static DraftGroup *
draft_group(KqConfigDraft *draft, const gchar *name)
{
  DraftGroup *g = g_hash_table_lookup(draft->by_name, name);

  if (g == NULL) {
    g = g_new0(DraftGroup, 1);
    g->name = g_strdup(name);
    g->body = g_string_new(NULL);
    g_ptr_array_add(draft->groups, g);
    g_hash_table_insert(draft->by_name, g->name, g);
  }
  return g;
}

void
kq_config_draft_add_group(KqConfigDraft *draft, const KqConfigPos *pos, const gchar *group)
{
  DraftGroup *g = draft_group(draft, group);

  if (g->body->len == 0)
    g_string_append_printf(g->body, "# defined at %s:%d\n", pos->file, pos->line);
}

/* Check one value the way the key file loader will, without keeping the result. */
static gboolean
check_value(const gchar *group, const gchar *key, const gchar *value, GError **error)
{
  if (strcmp(group, "server") == 0)
    return kq_server_config_check_value(key, value, error);
  if (g_str_has_prefix(group, "alias ")) {
    g_auto(GStrv) names = NULL;

    if (strcmp(key, "destinationQueues") != 0) {
      g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG, "unknown alias option");
      return FALSE;
    }
    names = g_strsplit(value, ";", -1);
    for (gsize i = 0; names[i] != NULL; i++)
      if (names[i][0] != '\0' && !kq_queue_name_is_valid(names[i], error))
        return FALSE;
    return TRUE;
  }
  KqQueueSettings scratch;
  gboolean ok;

  kq_settings_init_defaults(&scratch);
  ok = kq_settings_set(&scratch, key, value, error);
  kq_settings_clear(&scratch);
  return ok;
}

/* Key file escapes (GLib's g_key_file_set_value rules): backslash, control characters and a
 * leading space. Comments are single lines, so newlines in them become spaces. */
static void
append_escaped(GString *out, const gchar *value)
{
  for (const gchar *p = value; *p != '\0'; p++) {
    switch (*p) {
    case '\\': g_string_append(out, "\\\\"); break;
    case '\n': g_string_append(out, "\\n"); break;
    case '\t': g_string_append(out, "\\t"); break;
    case '\r': g_string_append(out, "\\r"); break;
    case ' ':
      g_string_append(out, p == value ? "\\s" : " ");
      break;
    default: g_string_append_c(out, *p); break;
    }
  }
}

gboolean
kq_config_draft_set(KqConfigDraft *draft, const KqConfigPos *pos, const gchar *setting,
                    const gchar *group, const gchar *key, const gchar *value, GError **error)
{
  g_autoptr(GError) local = NULL;
  DraftGroup *g;

  if (strlen(value) > KQ_CONFIG_MAX_VALUE)
    return kq_config_error(error, pos, "%s: a value of more than %d bytes is not accepted",
                           setting, KQ_CONFIG_MAX_VALUE);
  if (!check_value(group, key, value, &local)) {
    /* libkestrel's messages start with the option's name already */
    const gchar *reason = local->message;
    gsize key_len = strlen(key);
    if (strncmp(reason, key, key_len) == 0 && strncmp(reason + key_len, ": ", 2) == 0)
      reason += key_len + 2;
    return kq_config_error(error, pos, "%s: %s", setting, reason);
  }
  g = draft_group(draft, group);
  g_string_append_printf(g->body, "# %s:%d: %s\n%s = ", pos->file, pos->line, setting,
                         key);
  append_escaped(g->body, value);
  g_string_append_c(g->body, '\n');
  return TRUE;
}

gchar *
kq_config_draft_to_key_file_text(KqConfigDraft *draft, const gchar *header)
{
  GString *out = g_string_new(NULL);

  if (header != NULL)
    g_string_append(out, header);
  for (guint i = 0; i < draft->groups->len; i++) {
    DraftGroup *g = g_ptr_array_index(draft->groups, i);
    g_string_append_printf(out, "\n[%s]\n%s", g->name, g->body->str);
  }
  return g_string_free(out, FALSE);
}

gboolean
kq_config_check_text(const gchar *text, gsize len, const gchar *file, GError **error)
{
  const gchar *end = NULL;
  KqConfigPos pos = { file, 1, 1 };
  const gchar *bad;

  const gchar *nul = memchr(text, '\0', len);
  gsize valid_len = nul != NULL ? (gsize) (nul - text) : len;

  if (!g_utf8_validate_len(text, valid_len, &end))
    bad = end;
  else if (nul != NULL)
    bad = nul;
  else
    return TRUE;
  for (const gchar *p = text; p < bad; p++) {
    if (*p == '\n') {
      pos.line++;
      pos.column = 1;
    } else if (((guchar) *p & 0xC0) != 0x80) {
      pos.column++;
    }
  }
  if (*bad == '\0' && bad == nul)
    return kq_config_error(error, &pos, "a NUL byte is not allowed in a config file");
  return kq_config_error(error, &pos, "invalid UTF-8 (byte 0x%02x); save the file as UTF-8",
                         (guchar) *bad);
}
