/* Kestrel 1.x configs (configgy): `key = value` lines, `name { ... }` blocks, `#` comments and
 * `include "file"`, translated into a KqConfigDraft. The mapping table is in
 * docs/configuration.md. */
#pragma once
#include <glib.h>

#include "config-draft.h"

G_BEGIN_DECLS

/* `file` labels messages; includes are read relative to `base_dir`, or refused when it is
 * NULL. FALSE with "FILE:LINE:COL: ..." on a syntax error, an unknown setting or a bad value. */
gboolean kq_configgy_config_translate(const gchar *text, gsize len, const gchar *file,
                                      const gchar *base_dir, KqConfigDraft *draft,
                                      GError **error);

G_END_DECLS
