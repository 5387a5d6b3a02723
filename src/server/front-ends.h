/* The front-ends kestreld runs, as the core sees them: something to start once the engine is
 * open and to stop first at shutdown. front-ends.c has the list; it is the one file of the core
 * that names a front-end (docs/architecture.md). */
#pragma once
#include <glib.h>
#include "server.h"

G_BEGIN_DECLS

typedef struct {
  const gchar *name; /* "memcache", "text", "thrift", "admin" */
  /* Start serving. NULL + *error when it cannot; NULL without an error when the config turns
   * it off. */
  gpointer (*start)(KqServer *server, GError **error);
  /* Stop serving and free what start returned. */
  void (*stop)(gpointer running);
  /* What it listens on, for the log line at start: "memcache 0.0.0.0:22133" (caller frees). */
  gchar *(*describe)(KqServer *server, gpointer running);
  /* Place among the endpoints a server-set member advertises, 1 first (Kestrel's order:
   * memcache, thrift, text); 0: not advertised. */
  guint server_set_rank;
  /* The port it listens on (for server sets). */
  gint (*get_port)(gpointer running);
} KqFrontEndService;

/* In the order they are started, logged and stopped. */
extern const KqFrontEndService kq_front_end_services[];
extern const guint kq_front_end_service_count;

G_END_DECLS
