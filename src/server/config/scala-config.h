/* Kestrel 2.x configs (config/NAME.scala): `new KestrelConfig { ... }` parsed by recursive descent
 * over scala-lexer.h's tokens, then translated setting by setting into a KqConfigDraft.
 * The mapping table is in docs/configuration.md. */
#pragma once
#include <glib.h>

#include "config-draft.h"

G_BEGIN_DECLS

/* FALSE with "FILE:LINE:COL: ..." for a construct outside the supported subset, an unknown
 * setting or a bad value. */
gboolean kq_scala_config_translate(const gchar *text, gsize len, const gchar *file,
                                   KqConfigDraft *draft, GError **error);

G_END_DECLS
