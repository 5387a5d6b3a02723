/* Format detection and the common path from any config file to a GKeyFile. */
#include <string.h>

#include <kestrel/error.h>

#include "config-draft.h"
#include "config-file.h"
#include "configgy-config.h"
#include "scala-config.h"

static const gchar *const format_names[] = { "auto", "keyfile", "scala", "configgy" };

gboolean
kq_config_format_from_string(const gchar *text, KqConfigFormat *out)
{
  for (gsize i = 0; i < G_N_ELEMENTS(format_names); i++) {
    if (g_ascii_strcasecmp(text, format_names[i]) == 0) {
      *out = (KqConfigFormat) i;
      return TRUE;
    }
  }
  return FALSE;
}

const gchar *
kq_config_format_name(KqConfigFormat format)
{
  return format_names[format];
}

/* The first word of the file, past blank lines and #, // and block comments. */
KqConfigFormat
kq_config_format_detect(const gchar *text, gsize len)
{
  const gchar *p = text, *end = text + len;

  while (p < end) {
    if (g_ascii_isspace(*p)) {
      p++;
    } else if (*p == '#' || (*p == '/' && p + 1 < end && p[1] == '/')) {
      while (p < end && *p != '\n')
        p++;
    } else if (*p == '/' && p + 1 < end && p[1] == '*') {
      const gchar *close = g_strstr_len(p + 2, end - p - 2, "*/");
      p = close != NULL ? close + 2 : end;
    } else {
      break;
    }
  }
  if (p < end && *p == '[')
    return KQ_CONFIG_FORMAT_KEYFILE;
  for (const gchar *const *word = (const gchar *const[]) { "import", "new", "package", NULL };
       *word != NULL; word++) {
    gsize n = strlen(*word);
    if ((gsize) (end - p) > n && memcmp(p, *word, n) == 0 && !g_ascii_isalnum(p[n]) &&
        p[n] != '_')
      return KQ_CONFIG_FORMAT_SCALA;
  }
  return KQ_CONFIG_FORMAT_CONFIGGY;
}

/* A byte order mark some editors write is invisible, so positions are counted after it. */
static void
skip_byte_order_mark(const gchar **text, gsize *len)
{
  if (*len >= 3 && memcmp(*text, "\xef\xbb\xbf", 3) == 0) {
    *text += 3;
    *len -= 3;
  }
}

gchar *
kq_config_translate(const gchar *text, gsize len, KqConfigFormat format, const gchar *file,
                    const gchar *base_dir, GPtrArray *warnings, GError **error)
{
  g_autoptr(KqConfigDraft) draft = kq_config_draft_new();
  g_autofree gchar *header = NULL;
  gboolean ok;

  skip_byte_order_mark(&text, &len);
  if (format == KQ_CONFIG_FORMAT_AUTO)
    format = kq_config_format_detect(text, len);
  if (format == KQ_CONFIG_FORMAT_KEYFILE) {
    if (!kq_config_check_text(text, len, file, error))
      return NULL;
    return g_strndup(text, len);
  }
  if (format == KQ_CONFIG_FORMAT_SCALA)
    ok = kq_scala_config_translate(text, len, file, draft, error);
  else
    ok = kq_configgy_config_translate(text, len, file, base_dir, draft, error);
  if (!ok)
    return NULL;

  GPtrArray *draft_warnings = kq_config_draft_warnings(draft);
  GString *h = g_string_new(NULL);
  g_string_append_printf(h, "# kestreld configuration translated from %s (%s)\n", file,
                         format == KQ_CONFIG_FORMAT_SCALA ? "Kestrel 2.x Scala config"
                                                          : "Kestrel 1.x configgy config");
  for (guint i = 0; i < draft_warnings->len; i++) {
    const gchar *w = g_ptr_array_index(draft_warnings, i);
    g_string_append_printf(h, "# warning: %s\n", w);
    if (warnings != NULL)
      g_ptr_array_add(warnings, g_strdup(w));
  }
  header = g_string_free(h, FALSE);
  return kq_config_draft_to_key_file_text(draft, header);
}

GKeyFile *
kq_config_file_read(const gchar *path, KqConfigFormat format, KqConfigFormat *format_out,
                    GPtrArray *warnings, GError **error)
{
  g_autofree gchar *text = NULL;
  g_autofree gchar *translated = NULL;
  g_autofree gchar *dir = NULL;
  g_autoptr(GError) local = NULL;
  g_autoptr(GKeyFile) key_file = g_key_file_new();
  gsize len;

  if (!g_file_get_contents(path, &text, &len, &local)) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG, "%s: %s", path, local->message);
    return NULL;
  }
  if (len > KQ_CONFIG_MAX_FILE_SIZE) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG, "%s: file too large for a config "
                "(%" G_GSIZE_FORMAT " bytes, at most %d)", path, len, KQ_CONFIG_MAX_FILE_SIZE);
    return NULL;
  }
  if (format == KQ_CONFIG_FORMAT_AUTO) {
    const gchar *start = text;
    gsize start_len = len;
    skip_byte_order_mark(&start, &start_len);
    format = kq_config_format_detect(start, start_len);
  }
  dir = g_path_get_dirname(path);
  translated = kq_config_translate(text, len, format, path, dir, warnings, error);
  if (translated == NULL)
    return NULL;
  if (!g_key_file_load_from_data(key_file, translated, (gsize) -1, G_KEY_FILE_KEEP_COMMENTS,
                                 &local)) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG, "%s: %s", path, local->message);
    return NULL;
  }
  if (format_out != NULL)
    *format_out = format;
  return g_steal_pointer(&key_file);
}
