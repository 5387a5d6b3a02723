/* Reading a config file in any of the formats kestreld accepts: its own key file (the native
 * format), Kestrel 2.x Scala configs and Kestrel 1.x configgy files. The latter two are
 * translated into key file text, so every value goes through the key file's checks. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  KQ_CONFIG_FORMAT_AUTO,    /* decided from the content */
  KQ_CONFIG_FORMAT_KEYFILE,
  KQ_CONFIG_FORMAT_SCALA,
  KQ_CONFIG_FORMAT_CONFIGGY,
} KqConfigFormat;

/* Files larger than this are refused before parsing. */
#define KQ_CONFIG_MAX_FILE_SIZE (256 * 1024 * 1024)

/* "scala", "configgy", "keyfile" (and "auto"); FALSE for anything else. */
gboolean kq_config_format_from_string(const gchar *text, KqConfigFormat *out);
const gchar *kq_config_format_name(KqConfigFormat format);
/* A key file has a [group] line first; a Scala config an import or `new KestrelConfig`;
 * anything else is read as configgy. */
KqConfigFormat kq_config_format_detect(const gchar *text, gsize len);

/* Translate `text` (labelled `file`, includes relative to `base_dir` or refused if NULL)
 * into key file text. Warnings ("FILE:LINE:COL: ...") are appended to `warnings`. */
gchar *kq_config_translate(const gchar *text, gsize len, KqConfigFormat format,
                           const gchar *file, const gchar *base_dir, GPtrArray *warnings,
                           GError **error);

/* Read `path` as `format` (AUTO: detect) into a key file with comments kept. `format_out`
 * (may be NULL) receives the format used. */
GKeyFile *kq_config_file_read(const gchar *path, KqConfigFormat format,
                              KqConfigFormat *format_out, GPtrArray *warnings, GError **error);

G_END_DECLS
