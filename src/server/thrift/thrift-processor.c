/* Request dispatch of the Thrift front-end: see thrift-processor.h. */
#include "config.h"

#include <string.h>

#include <thrift/c_glib/thrift.h>

#include "thrift-connection.h"
#include "thrift-get.h"
#include "thrift-processor.h"
#include "thrift-protocol.h"
#include "thrift-transport.h"

struct _KqThriftProcessor {
  KqThriftKestrelProcessor parent;
  KqThriftFrameTransport *in_transport, *out_transport;
  ThriftProtocol *in, *out;
};

G_DEFINE_TYPE(KqThriftProcessor, kq_thrift_processor, KQ_THRIFT_TYPE_KESTREL_PROCESSOR)

/* A `get` waiting on the engine for the connection it came from. */
typedef struct {
  KqThriftProcessor *processor;
  KqThriftConn *conn;
  KqThriftGet *get;
  gint32 seqid;
} ParkedGet;

/* A put reply held until its items are durable (syncJournal). */
typedef struct {
  KqThriftHandler *handler;
  KqThriftConn *conn;
  GByteArray *reply;
} DurableReply;

KqThriftHandler *
kq_thrift_processor_get_handler(KqThriftProcessor *self)
{
  return KQ_THRIFT_HANDLER(KQ_THRIFT_KESTREL_PROCESSOR(self)->handler);
}

static gboolean
write_exception(ThriftProtocol *out, const gchar *method, gint32 seqid, gint type,
                const gchar *message)
{
  /* Written field by field: a ThriftApplicationException object would leak (its finalize does
   * not chain up in c_glib 0.17). */
  return thrift_protocol_write_message_begin(out, method != NULL ? method : "", T_EXCEPTION, seqid,
                                             NULL) >= 0 &&
         thrift_protocol_write_struct_begin(out, "TApplicationException", NULL) >= 0 &&
         thrift_protocol_write_field_begin(out, "message", T_STRING, 1, NULL) >= 0 &&
         thrift_protocol_write_string(out, message != NULL ? message : "", NULL) >= 0 &&
         thrift_protocol_write_field_end(out, NULL) >= 0 &&
         thrift_protocol_write_field_begin(out, "type", T_I32, 2, NULL) >= 0 &&
         thrift_protocol_write_i32(out, type, NULL) >= 0 &&
         thrift_protocol_write_field_end(out, NULL) >= 0 &&
         thrift_protocol_write_field_stop(out, NULL) >= 0 &&
         thrift_protocol_write_struct_end(out, NULL) >= 0 &&
         thrift_protocol_write_message_end(out, NULL) >= 0;
}

GByteArray *
kq_thrift_processor_error_reply(KqThriftProcessor *self, const gchar *method, gint32 seqid,
                                ThriftApplicationExceptionError type, const gchar *message)
{
  kq_thrift_frame_transport_reset_output(self->out_transport);
  write_exception(self->out, method, seqid, type, message);
  return kq_thrift_frame_transport_take_output(self->out_transport);
}

/* The reply of a finished get: its items, or the exception that failed it. */
static GByteArray *
get_reply(KqThriftProcessor *self, KqThriftGet *get, gint32 seqid)
{
  const GError *error = kq_thrift_get_error(get);
  ThriftProtocol *out = self->out;
  GArray *items;
  gboolean ok;

  if (error != NULL)
    return kq_thrift_processor_error_reply(self, "get", seqid, error->code, error->message);

  /* What the generated KestrelGetResult writes, but from the queue's items themselves: each
   * item's bytes are copied once, into the reply, instead of first into a KqThriftItem. */
  kq_thrift_frame_transport_reset_output(self->out_transport);
  items = kq_thrift_get_items(get);
  ok = thrift_protocol_write_message_begin(out, "get", T_REPLY, seqid, NULL) >= 0 &&
       thrift_protocol_write_struct_begin(out, "KestrelGetResult", NULL) >= 0 &&
       thrift_protocol_write_field_begin(out, "success", T_LIST, 0, NULL) >= 0 &&
       thrift_protocol_write_list_begin(out, T_STRUCT, (gint32)items->len, NULL) >= 0;
  for (guint i = 0; ok && i < items->len; i++) {
    const KqThriftGotItem *got = &g_array_index(items, KqThriftGotItem, i);
    ok = thrift_protocol_write_struct_begin(out, "Item", NULL) >= 0 &&
         thrift_protocol_write_field_begin(out, "data", T_STRING, 1, NULL) >= 0 &&
         thrift_protocol_write_binary(out, (gpointer)got->item->data, (guint32)got->item->len,
                                      NULL) >= 0 &&
         thrift_protocol_write_field_end(out, NULL) >= 0 &&
         thrift_protocol_write_field_begin(out, "id", T_I64, 2, NULL) >= 0 &&
         thrift_protocol_write_i64(out, got->id, NULL) >= 0 &&
         thrift_protocol_write_field_end(out, NULL) >= 0 &&
         thrift_protocol_write_field_stop(out, NULL) >= 0 &&
         thrift_protocol_write_struct_end(out, NULL) >= 0;
  }
  ok = ok && thrift_protocol_write_list_end(out, NULL) >= 0 &&
       thrift_protocol_write_field_end(out, NULL) >= 0 &&
       thrift_protocol_write_field_stop(out, NULL) >= 0 &&
       thrift_protocol_write_struct_end(out, NULL) >= 0 &&
       thrift_protocol_write_message_end(out, NULL) >= 0;
  if (!ok)
    g_warning("thrift: could not encode a get reply");
  return kq_thrift_frame_transport_take_output(self->out_transport);
}

static void
parked_free(ParkedGet *parked)
{
  kq_thrift_get_unref(parked->get);
  kq_thrift_conn_unref(parked->conn);
  g_object_unref(parked->processor);
  g_free(parked);
}

static void
parked_done(KqThriftGet *get, gpointer data)
{
  ParkedGet *parked = data;
  kq_thrift_conn_deliver(parked->conn, get_reply(parked->processor, get, parked->seqid));
  parked_free(parked);
}

/* The connection closed while the get waited. */
static void
parked_cancel(gpointer data)
{
  ParkedGet *parked = data;
  kq_thrift_get_cancel(parked->get);
  parked_free(parked);
}

/* Read a call's arguments into `args`. A malformed request frees them and leaves the error
 * reply in *reply: the connection closes after it. */
static gboolean
read_args(KqThriftProcessor *self, gpointer args, const gchar *method, gint32 seqid,
          GByteArray **reply)
{
  g_autoptr(GError) error = NULL;

  if (thrift_struct_read(THRIFT_STRUCT(args), self->in, &error) >= 0 &&
      thrift_protocol_read_message_end(self->in, &error) >= 0)
    return TRUE;
  g_object_unref(args);
  *reply = kq_thrift_processor_error_reply(self, method, seqid,
                                           THRIFT_APPLICATION_EXCEPTION_ERROR_PROTOCOL_ERROR,
                                           error != NULL ? error->message : "bad request");
  return FALSE;
}

static KqThriftOutcome
run_get(KqThriftProcessor *self, KqThriftConn *conn, gint32 seqid, GByteArray **reply)
{
  KqThriftKestrelGetArgs *args = g_object_new(KQ_THRIFT_TYPE_KESTREL_GET_ARGS, NULL);
  KqThriftGet *get;
  ParkedGet *parked;

  if (!read_args(self, args, "get", seqid, reply))
    return KQ_THRIFT_REPLY_AND_CLOSE;
  get = kq_thrift_get_new(kq_thrift_processor_get_handler(self), kq_thrift_conn_get_serial(conn),
                          args->queue_name, args->max_items, args->timeout_msec,
                          args->auto_abort_msec);
  g_object_unref(args);

  parked = g_new0(ParkedGet, 1);
  if (kq_thrift_get_start(get, parked_done, parked)) {
    g_free(parked);
    *reply = get_reply(self, get, seqid);
    kq_thrift_get_unref(get);
    return KQ_THRIFT_REPLY_NOW;
  }
  parked->processor = g_object_ref(self);
  parked->conn = kq_thrift_conn_ref(conn);
  parked->get = get;
  parked->seqid = seqid;
  kq_thrift_conn_set_pending(conn, parked_cancel, parked);
  return KQ_THRIFT_REPLY_LATER;
}

static gboolean
durable_on_loop(gpointer data)
{
  DurableReply *durable = data;
  kq_thrift_conn_deliver(durable->conn, g_steal_pointer(&durable->reply));
  return G_SOURCE_REMOVE;
}

static void
durable_free(gpointer data)
{
  DurableReply *durable = data;
  KqThriftHandler *handler = durable->handler;

  if (durable->reply != NULL)
    g_byte_array_unref(durable->reply);
  kq_thrift_conn_unref(durable->conn);
  g_free(durable);
  kq_thrift_handler_inflight_dec(handler);
  g_object_unref(handler);
}

/* Sync thread: the writes are durable; the reply goes out from the loop. */
static void
durable_cb(gpointer data)
{
  DurableReply *durable = data;
  kq_thrift_handler_post(durable->handler, durable_on_loop, durable, durable_free);
}

/* Hold a put's reply until its queue's journal is durable (SPEC: reply only once durable). */
static KqThriftOutcome
after_put(KqThriftProcessor *self, KqThriftConn *conn, GByteArray **reply)
{
  KqThriftHandler *handler = kq_thrift_processor_get_handler(self);
  g_autofree gchar *queue = kq_thrift_handler_take_durable_queue(handler);
  const KqThriftEnv *env = kq_thrift_handler_get_env(handler);
  DurableReply *durable;

  if (queue == NULL)
    return KQ_THRIFT_REPLY_NOW;
  durable = g_new0(DurableReply, 1);
  durable->handler = g_object_ref(handler);
  durable->conn = kq_thrift_conn_ref(conn);
  durable->reply = *reply;
  kq_thrift_handler_inflight_inc(handler);
  if (!kq_collection_when_durable(env->collection, queue, durable_cb, durable)) {
    *reply = NULL;
    kq_thrift_conn_set_pending(conn, NULL, NULL);
    return KQ_THRIFT_REPLY_LATER;
  }
  durable->reply = NULL;
  durable_free(durable);
  return KQ_THRIFT_REPLY_NOW;
}

/* put without the generated code's GObject property calls (a dozen per request, most of the
 * user-space time of a Thrift put). Same bytes on the wire. */
static KqThriftOutcome
run_put(KqThriftProcessor *self, KqThriftConn *conn, gint32 seqid, GByteArray **reply)
{
  KqThriftHandler *handler = kq_thrift_processor_get_handler(self);
  g_autoptr(GError) error = NULL;
  KqThriftKestrelPutArgs *args = g_object_new(KQ_THRIFT_TYPE_KESTREL_PUT_ARGS, NULL);
  gint32 count = 0;
  gboolean stored;

  if (!read_args(self, args, "put", seqid, reply))
    return KQ_THRIFT_REPLY_AND_CLOSE;
  stored = kq_thrift_kestrel_handler_put(KQ_THRIFT_KESTREL_IF(handler), &count, args->queue_name,
                                         args->items, args->expiration_msec, &error);
  g_object_unref(args);
  if (!stored) {
    g_free(kq_thrift_handler_take_durable_queue(handler));
    *reply = kq_thrift_processor_error_reply(
        self, "put", seqid,
        error != NULL ? error->code : THRIFT_APPLICATION_EXCEPTION_ERROR_UNKNOWN,
        error != NULL ? error->message : "put failed");
    return KQ_THRIFT_REPLY_NOW;
  }
  kq_thrift_frame_transport_reset_output(self->out_transport);
  if (thrift_protocol_write_message_begin(self->out, "put", T_REPLY, seqid, NULL) < 0 ||
      thrift_protocol_write_struct_begin(self->out, "put_result", NULL) < 0 ||
      thrift_protocol_write_field_begin(self->out, "success", T_I32, 0, NULL) < 0 ||
      thrift_protocol_write_i32(self->out, count, NULL) < 0 ||
      thrift_protocol_write_field_end(self->out, NULL) < 0 ||
      thrift_protocol_write_field_stop(self->out, NULL) < 0 ||
      thrift_protocol_write_struct_end(self->out, NULL) < 0 ||
      thrift_protocol_write_message_end(self->out, NULL) < 0)
    g_warning("thrift: could not encode a put reply");
  *reply = kq_thrift_frame_transport_take_output(self->out_transport);
  return after_put(self, conn, reply);
}

static gboolean
known_method(KqThriftProcessor *self, const gchar *name)
{
  return g_hash_table_contains(KQ_THRIFT_KESTREL_PROCESSOR(self)->process_map, name);
}

KqThriftOutcome
kq_thrift_processor_handle(KqThriftProcessor *self, KqThriftConn *conn, const guint8 *frame,
                           gsize len, GByteArray **reply)
{
  ThriftDispatchProcessorClass *generated =
      THRIFT_DISPATCH_PROCESSOR_CLASS(kq_thrift_processor_parent_class);
  KqThriftHandler *handler = kq_thrift_processor_get_handler(self);
  g_autoptr(GError) error = NULL;
  g_autofree gchar *name = NULL;
  ThriftMessageType type;
  gint32 seqid;
  KqThriftOutcome outcome = KQ_THRIFT_REPLY_NOW;

  *reply = NULL;
  kq_thrift_frame_transport_set_input(self->in_transport, frame, len);
  kq_thrift_frame_transport_reset_output(self->out_transport);
  kq_thrift_handler_set_input(handler, KQ_THRIFT_PROTOCOL(self->in));
  kq_thrift_handler_set_owner(handler, kq_thrift_conn_get_serial(conn),
                              kq_thrift_conn_refuses_reads(conn),
                              kq_thrift_conn_refuses_writes(conn));

  if (thrift_protocol_read_message_begin(self->in, &name, &type, &seqid, &error) < 0) {
    *reply = kq_thrift_processor_error_reply(self, name, seqid,
                                             THRIFT_APPLICATION_EXCEPTION_ERROR_PROTOCOL_ERROR,
                                             error->message);
    return KQ_THRIFT_REPLY_AND_CLOSE;
  }
  if (type != T_CALL && type != T_ONEWAY) {
    *reply = kq_thrift_processor_error_reply(
        self, name, seqid, THRIFT_APPLICATION_EXCEPTION_ERROR_INVALID_MESSAGE_TYPE,
        "expected a call");
    return KQ_THRIFT_REPLY_AND_CLOSE;
  }

  if (strcmp(name, "get") == 0) {
    outcome = run_get(self, conn, seqid, reply);
  } else if (strcmp(name, "put") == 0) {
    outcome = run_put(self, conn, seqid, reply);
  } else if (!known_method(self, name)) {
    /* Unknown method (Finagle's trace probe among them): say so, keep the connection. */
    g_autofree gchar *message = NULL;
    if (thrift_protocol_skip(self->in, T_STRUCT, &error) < 0 ||
        thrift_protocol_read_message_end(self->in, &error) < 0) {
      *reply = kq_thrift_processor_error_reply(self, name, seqid,
                                               THRIFT_APPLICATION_EXCEPTION_ERROR_PROTOCOL_ERROR,
                                               error->message);
      return KQ_THRIFT_REPLY_AND_CLOSE;
    }
    message = g_strdup_printf("Invalid method name: '%s'", name);
    *reply = kq_thrift_processor_error_reply(
        self, name, seqid, THRIFT_APPLICATION_EXCEPTION_ERROR_UNKNOWN_METHOD, message);
  } else {
    /* The generated dispatch takes ownership of the name. */
    if (!generated->dispatch_call(THRIFT_DISPATCH_PROCESSOR(self), self->in, self->out,
                                  g_strdup(name), seqid, &error)) {
      g_free(kq_thrift_handler_take_durable_queue(handler));
      *reply = kq_thrift_processor_error_reply(
          self, name, seqid, THRIFT_APPLICATION_EXCEPTION_ERROR_PROTOCOL_ERROR,
          error != NULL ? error->message : "bad request");
      return KQ_THRIFT_REPLY_AND_CLOSE;
    }
    *reply = kq_thrift_frame_transport_take_output(self->out_transport);
  }

  if (type == T_ONEWAY && outcome == KQ_THRIFT_REPLY_NOW && *reply != NULL)
    g_byte_array_set_size(*reply, 0); /* no reply to a oneway call */
  return outcome;
}

static void
kq_thrift_processor_dispose(GObject *object)
{
  KqThriftProcessor *self = KQ_THRIFT_PROCESSOR(object);

  g_clear_object(&self->in);
  g_clear_object(&self->out);
  g_clear_object(&self->in_transport);
  g_clear_object(&self->out_transport);
  G_OBJECT_CLASS(kq_thrift_processor_parent_class)->dispose(object);
}

static void
kq_thrift_processor_class_init(KqThriftProcessorClass *klass)
{
  G_OBJECT_CLASS(klass)->dispose = kq_thrift_processor_dispose;
}

static void
kq_thrift_processor_init(KqThriftProcessor *self)
{
  self->in_transport = kq_thrift_frame_transport_new();
  self->out_transport = kq_thrift_frame_transport_new();
  self->in = THRIFT_PROTOCOL(kq_thrift_protocol_new(THRIFT_TRANSPORT(self->in_transport)));
  self->out = THRIFT_PROTOCOL(kq_thrift_protocol_new(THRIFT_TRANSPORT(self->out_transport)));
}

KqThriftProcessor *
kq_thrift_processor_new(KqThriftHandler *handler)
{
  return g_object_new(KQ_TYPE_THRIFT_PROCESSOR, "handler", handler, NULL);
}
