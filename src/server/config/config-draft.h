/* The translation target of the Kestrel config readers (scala-config.c, configgy-config.c): a
 * key file being written group by group, each value checked as the key file's values are
 * (server-config.c, libkestrel's settings) at the moment it is set, so an error can name the
 * line and column of the source it came from. Settings without an equivalent become warnings. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

/* Nesting deeper than this (blocks, lists, parentheses, includes) is refused with an error. */
#define KQ_CONFIG_MAX_DEPTH 64
/* Longer values (a path is at most 4096 bytes) are refused, so messages stay readable. */
#define KQ_CONFIG_MAX_VALUE 4096

typedef struct {
  const gchar *file;  /* label used in messages */
  gint line;          /* 1-based */
  gint column;        /* 1-based, in characters */
} KqConfigPos;

typedef struct _KqConfigDraft KqConfigDraft;

KqConfigDraft *kq_config_draft_new(void);
void kq_config_draft_free(KqConfigDraft *draft);

/* Check `value` for `key` of `group` ("server", "default", "queue NAME", "alias NAME") and
 * record it; the error reads "FILE:LINE:COL: SETTING: what was expected". `setting` is the
 * name as the source wrote it. */
gboolean kq_config_draft_set(KqConfigDraft *draft, const KqConfigPos *pos, const gchar *setting,
                             const gchar *group, const gchar *key, const gchar *value,
                             GError **error);
/* Make sure a group exists even without keys ("new QueueBuilder { name = "spam" }"). */
void kq_config_draft_add_group(KqConfigDraft *draft, const KqConfigPos *pos, const gchar *group);
/* A setting accepted without effect: one warning naming it. */
void kq_config_draft_warn(KqConfigDraft *draft, const KqConfigPos *pos, const gchar *format,
                          ...) G_GNUC_PRINTF(3, 4);
/* Set an error "FILE:LINE:COL: message". Always returns FALSE. */
gboolean kq_config_error(GError **error, const KqConfigPos *pos, const gchar *format, ...)
  G_GNUC_PRINTF(3, 4);

/* The warnings so far, in order ("FILE:LINE:COL: ..."); owned by the draft. */
GPtrArray *kq_config_draft_warnings(KqConfigDraft *draft);
/* The key file text: a header comment, then every group in order of first use, each key
 * preceded by a comment saying where it came from. */
gchar *kq_config_draft_to_key_file_text(KqConfigDraft *draft, const gchar *header);

/* Config text must be UTF-8 without NUL bytes; the error names the line and column. */
gboolean kq_config_check_text(const gchar *text, gsize len, const gchar *file, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(KqConfigDraft, kq_config_draft_free)

G_END_DECLS
