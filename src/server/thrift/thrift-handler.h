/* The Kestrel service implementation behind the generated KqThriftKestrelProcessor: every
 * method of the IDL (an unset vfunc would be a NULL call), plus the state the Thrift front-end
 * shares on its loop thread: the engine, open reads, and callbacks in flight from other threads. */
#pragma once
#include <glib-object.h>
#include <kestrel/kestrel.h>

#include "thrift-autoptr.h"
#include "thrift-protocol.h"
#include "server.h"
#include "thrift-reads.h"

G_BEGIN_DECLS

/* What the handler needs from the server (the fuzz target fills it without a KqServer). */
typedef struct {
  KqCollection *collection;
  KqServerStats *stats;
  gint max_open_transactions;
  gpointer status_data;
  KqStatus (*get_status)(gpointer status_data);
  gboolean (*set_status)(gpointer status_data, KqStatus status, GError **error);
  gboolean (*allows_reads)(gpointer status_data);
  gboolean (*allows_writes)(gpointer status_data);
} KqThriftEnv;

#define KQ_TYPE_THRIFT_HANDLER (kq_thrift_handler_get_type())
G_DECLARE_FINAL_TYPE(KqThriftHandler, kq_thrift_handler, KQ, THRIFT_HANDLER, KqThriftKestrelHandler)

/* `env` is copied; `context` is the loop the handler's timers and callbacks run on. */
KqThriftHandler *kq_thrift_handler_new(const KqThriftEnv *env, GMainContext *context);

const KqThriftEnv *kq_thrift_handler_get_env(KqThriftHandler *self);
KqThriftReads *kq_thrift_handler_get_reads(KqThriftHandler *self);
GMainContext *kq_thrift_handler_get_context(KqThriftHandler *self);

/* The protocol requests are read with (not owned), so that names are checked on their length
 * on the wire (kq_thrift_protocol_string_length). */
void kq_thrift_handler_set_input(KqThriftHandler *self, KqThriftProtocol *input);

/* The connection whose request is being handled (its serial owns open reads), and whether it
 * is over connectionLimitRefuseReads / connectionLimitRefuseWrites. */
void kq_thrift_handler_set_owner(KqThriftHandler *self, guint64 owner, gboolean refuses_reads,
                                 gboolean refuses_writes);
guint64 kq_thrift_handler_get_owner(KqThriftHandler *self);

/* After a put stored items: the queue whose durability the reply must wait for (caller frees),
 * or NULL. Clears it. */
gchar *kq_thrift_handler_take_durable_queue(KqThriftHandler *self);

/* Run `func` on the loop later, never right away (callable from any thread). Callbacks from the
 * engine must not run inside a request: our own put can wake our own parked get. */
void kq_thrift_handler_post(KqThriftHandler *self, GSourceFunc func, gpointer data,
                            GDestroyNotify destroy);

/* Callbacks from other threads that will still be marshalled onto the loop. The service waits
 * for zero before it stops the loop; `drained` runs (on the loop) whenever the count drops to 0. */
void kq_thrift_handler_inflight_inc(KqThriftHandler *self);
void kq_thrift_handler_inflight_dec(KqThriftHandler *self);
guint kq_thrift_handler_inflight(KqThriftHandler *self);
void kq_thrift_handler_set_drained_func(KqThriftHandler *self, GSourceFunc drained,
                                        gpointer data);

/* Checks shared by every method: a valid queue name, reads/writes allowed (SPEC 1, 1.6, and the
 * requesting connection's connection limits, SPEC 8).
 * Errors are in THRIFT_APPLICATION_EXCEPTION_ERROR so the client gets a TApplicationException. */
gboolean kq_thrift_handler_check_name(const gchar *queue_name, gsize len, GError **error);
/* Length on the wire of a queue name argument of the request being handled (NUL bytes
 * included); strlen for a name the input protocol did not read. */
gsize kq_thrift_handler_name_length(KqThriftHandler *self, const gchar *queue_name);
gboolean kq_thrift_handler_check_reads(KqThriftHandler *self, GError **error);
gboolean kq_thrift_handler_check_writes(KqThriftHandler *self, GError **error);

/* Add `delta` to a server counter (atomically: other front-ends update it too). */
#define KQ_THRIFT_STAT_ADD(env, field, delta) \
  __atomic_fetch_add(&(env)->stats->field, (gint64)(delta), __ATOMIC_RELAXED)

G_END_DECLS
