/* The Kestrel Thrift methods on the engine: see thrift-handler.h. */
#include "config.h"

#include <string.h>

#include <thrift/c_glib/thrift_application_exception.h>

#include "thrift-get.h"
#include "thrift-handler.h"

struct _KqThriftHandler {
  KqThriftKestrelHandler parent;
  KqThriftEnv env;
  GMainContext *context;
  KqThriftReads *reads;
  KqThriftProtocol *input;       /* not owned: the protocol requests are read with */
  guint64 owner;
  gboolean owner_refuses_reads;  /* the requesting connection is over a connection limit */
  gboolean owner_refuses_writes;
  gchar *durable_queue;
  guint inflight;
  GSourceFunc drained;
  gpointer drained_data;
};

G_DEFINE_TYPE(KqThriftHandler, kq_thrift_handler, KQ_THRIFT_TYPE_KESTREL_HANDLER)

#define APP_ERROR(error, ...)                                                 \
  g_set_error((error), THRIFT_APPLICATION_EXCEPTION_ERROR,                    \
              THRIFT_APPLICATION_EXCEPTION_ERROR_INTERNAL_ERROR, __VA_ARGS__)

gboolean
kq_thrift_handler_check_name(const gchar *queue_name, gsize len, GError **error)
{
  g_autoptr(GError) local = NULL;

  if (queue_name == NULL) {
    APP_ERROR(error, "Queue name required.");
    return FALSE;
  }
  /* The handler holds a copy cut at the first NUL, so the validator may read only up to that
   * NUL; a wire length beyond it means the name had one, which the validator then reports. */
  gsize held = strnlen(queue_name, len);
  if (!kq_queue_name_is_valid_len(queue_name, held < len ? held + 1 : len, &local)) {
    APP_ERROR(error, "Bad queue name: %s", local->message);
    return FALSE;
  }
  return TRUE;
}

gsize
kq_thrift_handler_name_length(KqThriftHandler *self, const gchar *queue_name)
{
  if (queue_name == NULL)
    return 0;
  return self->input != NULL ? kq_thrift_protocol_string_length(self->input, queue_name)
                             : strlen(queue_name);
}

/* The queue name argument of the request being handled, checked on its length on the wire. */
static gboolean
check_request_name(KqThriftHandler *self, const gchar *queue_name, GError **error)
{
  return kq_thrift_handler_check_name(queue_name, kq_thrift_handler_name_length(self, queue_name),
                                      error);
}

gboolean
kq_thrift_handler_check_reads(KqThriftHandler *self, GError **error)
{
  if (self->owner_refuses_reads) {
    APP_ERROR(error, "Too many connections: reads are refused.");
    return FALSE;
  }
  if (self->env.allows_reads != NULL && !self->env.allows_reads(self->env.status_data)) {
    APP_ERROR(error, "Server is quiescent: reads are refused.");
    return FALSE;
  }
  return TRUE;
}

gboolean
kq_thrift_handler_check_writes(KqThriftHandler *self, GError **error)
{
  if (self->owner_refuses_writes) {
    APP_ERROR(error, "Too many connections: writes are refused.");
    return FALSE;
  }
  if (self->env.allows_writes != NULL && !self->env.allows_writes(self->env.status_data)) {
    APP_ERROR(error, "Server is read-only: writes are refused.");
    return FALSE;
  }
  return TRUE;
}

static gboolean
handler_put(KqThriftKestrelIf *iface, gint32 *_return, const gchar *queue_name,
            const GPtrArray *items, const gint32 expiration_msec, GError **error)
{
  KqThriftHandler *self = KQ_THRIFT_HANDLER(iface);
  gint64 expiry = 0;
  gint32 stored = 0;

  *_return = 0;
  if (!check_request_name(self, queue_name, error) ||
      !kq_thrift_handler_check_writes(self, error))
    return FALSE;
  /* Kestrel: any non-zero expiration counts from now (a negative one is already expired). */
  if (expiration_msec != 0)
    expiry = MAX(kq_clock_now_ms() + expiration_msec, 1);

  for (guint i = 0; items != NULL && i < items->len; i++) {
    GByteArray *data = g_ptr_array_index(items, i);
    g_autoptr(GError) local = NULL;

    KQ_THRIFT_STAT_ADD(&self->env, cmd_set, 1);
    if (!kq_collection_add(self->env.collection, queue_name, data != NULL ? data->data : NULL,
                           data != NULL ? data->len : 0, expiry, &local)) {
      if (local != NULL && local->domain == KQ_ERROR && local->code == KQ_ERROR_BAD_NAME) {
        APP_ERROR(error, "Bad queue name: %s", local->message);
        return FALSE;
      }
      if (g_error_matches(local, KQ_ERROR, KQ_ERROR_IO)) {
        g_warning("thrift put on '%s': %s", queue_name, local->message);
        /* The journal cannot be written: an error, unless items were stored before. */
        if (stored == 0) {
          APP_ERROR(error, "%s", local->message);
          return FALSE;
        }
      }
      break; /* full, too large, shutting down: stop at the first refused item */
    }
    stored++;
  }
  if (stored > 0) {
    g_free(self->durable_queue);
    self->durable_queue = g_strdup(queue_name);
  }
  *_return = stored;
  return TRUE;
}

/* Without a timeout: what the generated processor would call. Our processor runs `get` itself
 * (thrift-processor.c) so that it can wait without blocking the loop. */
static gboolean
handler_get(KqThriftKestrelIf *iface, GPtrArray **_return, const gchar *queue_name,
            const gint32 max_items, const gint32 timeout_msec, const gint32 auto_abort_msec,
            GError **error)
{
  KqThriftHandler *self = KQ_THRIFT_HANDLER(iface);
  g_autoptr(KqThriftGet) get =
      kq_thrift_get_new(self, self->owner, queue_name, max_items, 0, auto_abort_msec);
  GArray *items;

  kq_thrift_get_start(get, NULL, NULL);
  if (kq_thrift_get_error(get) != NULL) {
    g_propagate_error(error, g_error_copy(kq_thrift_get_error(get)));
    return FALSE;
  }
  items = kq_thrift_get_items(get);
  for (guint i = 0; i < items->len; i++) {
    const KqThriftGotItem *got = &g_array_index(items, KqThriftGotItem, i);
    KqThriftItem *out = g_object_new(KQ_THRIFT_TYPE_ITEM, NULL);

    out->data = g_byte_array_sized_new((guint)got->item->len);
    g_byte_array_append(out->data, got->item->data, (guint)got->item->len);
    out->__isset_data = TRUE;
    out->id = got->id;
    out->__isset_id = TRUE;
    g_ptr_array_add(*_return, out);
  }
  return TRUE;
}

typedef gboolean (*FinishRead)(KqThriftReads *reads, guint64 id);

static gboolean
finish_reads(KqThriftHandler *self, gint32 *_return, const gchar *queue_name,
             const GHashTable *ids, FinishRead finish, GError **error)
{
  GHashTableIter iter;
  gpointer key;

  *_return = 0;
  if (!check_request_name(self, queue_name, error))
    return FALSE;
  if (ids == NULL)
    return TRUE;
  g_hash_table_iter_init(&iter, (GHashTable *)ids);
  while (g_hash_table_iter_next(&iter, &key, NULL))
    if (key != NULL && finish(self->reads, (guint64) * (gint64 *)key))
      (*_return)++;
  return TRUE;
}

static gboolean
handler_confirm(KqThriftKestrelIf *iface, gint32 *_return, const gchar *queue_name,
                const GHashTable *ids, GError **error)
{
  return finish_reads(KQ_THRIFT_HANDLER(iface), _return, queue_name, ids,
                      kq_thrift_reads_confirm, error);
}

static gboolean
handler_abort(KqThriftKestrelIf *iface, gint32 *_return, const gchar *queue_name,
              const GHashTable *ids, GError **error)
{
  return finish_reads(KQ_THRIFT_HANDLER(iface), _return, queue_name, ids, kq_thrift_reads_abort,
                      error);
}

static gboolean
handler_peek(KqThriftKestrelIf *iface, KqThriftQueueInfo **_return, const gchar *queue_name,
             GError **error)
{
  KqThriftHandler *self = KQ_THRIFT_HANDLER(iface);
  KqThriftQueueInfo *info = *_return;
  g_autoptr(KqQueue) queue = NULL;
  g_autoptr(KqItem) head = NULL;
  g_autoptr(GError) local = NULL;
  KqQueueStats stats = {0};

  if (!check_request_name(self, queue_name, error) ||
      !kq_thrift_handler_check_reads(self, error))
    return FALSE;
  KQ_THRIFT_STAT_ADD(&self->env, cmd_peek, 1);

  /* An alias reads as an empty queue (SPEC 1.5). */
  if (!kq_collection_is_alias(self->env.collection, queue_name)) {
    queue = kq_collection_get(self->env.collection, queue_name, TRUE, &local);
    if (queue == NULL) {
      APP_ERROR(error, "%s", local != NULL ? local->message : "queue unavailable");
      return FALSE;
    }
    head = kq_queue_remove(queue, KQ_REMOVE_PEEK, NULL);
    kq_queue_get_stats(queue, &stats);
  }

  if (info == NULL)
    *_return = info = g_object_new(KQ_THRIFT_TYPE_QUEUE_INFO, NULL);
  g_clear_pointer(&info->head_item, g_byte_array_unref);
  info->__isset_head_item = FALSE;
  if (head != NULL) {
    info->head_item = g_byte_array_sized_new((guint)head->len);
    g_byte_array_append(info->head_item, head->data, (guint)head->len);
    info->__isset_head_item = TRUE;
  }
  info->items = stats.items;
  info->bytes = stats.bytes;
  info->journal_bytes = stats.logsize;
  info->age = stats.age_ms;
  info->waiters = (gint32)CLAMP(stats.waiters, 0, G_MAXINT32);
  info->open_transactions = (gint32)CLAMP(stats.open_transactions, 0, G_MAXINT32);
  info->__isset_items = info->__isset_bytes = info->__isset_journal_bytes = TRUE;
  info->__isset_age = info->__isset_waiters = info->__isset_open_transactions = TRUE;
  return TRUE;
}

static gboolean
handler_flush_queue(KqThriftKestrelIf *iface, const gchar *queue_name, GError **error)
{
  KqThriftHandler *self = KQ_THRIFT_HANDLER(iface);
  g_autoptr(GError) local = NULL;

  if (!check_request_name(self, queue_name, error) ||
      !kq_thrift_handler_check_writes(self, error))
    return FALSE;
  if (!kq_collection_flush(self->env.collection, queue_name, &local) && local != NULL) {
    APP_ERROR(error, "%s", local->message);
    return FALSE;
  }
  return TRUE;
}

static gboolean
handler_flush_all_queues(KqThriftKestrelIf *iface, GError **error)
{
  KqThriftHandler *self = KQ_THRIFT_HANDLER(iface);

  if (!kq_thrift_handler_check_writes(self, error))
    return FALSE;
  kq_collection_flush_all(self->env.collection);
  return TRUE;
}

static gboolean
handler_delete_queue(KqThriftKestrelIf *iface, const gchar *queue_name, GError **error)
{
  KqThriftHandler *self = KQ_THRIFT_HANDLER(iface);
  g_autoptr(GError) local = NULL;

  if (!check_request_name(self, queue_name, error) ||
      !kq_thrift_handler_check_writes(self, error))
    return FALSE;
  if (!kq_collection_delete(self->env.collection, queue_name, &local) && local != NULL) {
    APP_ERROR(error, "%s", local->message);
    return FALSE;
  }
  return TRUE;
}

static gboolean
handler_current_status(KqThriftKestrelIf *iface, KqThriftStatus *_return, GError **error)
{
  KqThriftHandler *self = KQ_THRIFT_HANDLER(iface);
  KqStatus status = KQ_STATUS_NOT_CONFIGURED;

  if (self->env.get_status != NULL)
    status = self->env.get_status(self->env.status_data);
  *_return = (KqThriftStatus)status; /* same numbering (server.h) */
  return TRUE;
}

static gboolean
handler_set_status(KqThriftKestrelIf *iface, const KqThriftStatus status, GError **error)
{
  KqThriftHandler *self = KQ_THRIFT_HANDLER(iface);
  g_autoptr(GError) local = NULL;

  if (status != KQ_THRIFT_STATUS_QUIESCENT && status != KQ_THRIFT_STATUS_READ_ONLY &&
      status != KQ_THRIFT_STATUS_UP) {
    APP_ERROR(error, "Invalid status %d", (gint)status);
    return FALSE;
  }
  if (self->env.set_status == NULL) {
    APP_ERROR(error, "Server status is not configured.");
    return FALSE;
  }
  if (!self->env.set_status(self->env.status_data, (KqStatus)status, &local)) {
    APP_ERROR(error, "%s", local != NULL ? local->message : "Server status is not configured.");
    return FALSE;
  }
  return TRUE;
}

static gboolean
handler_get_version(KqThriftKestrelIf *iface, gchar **_return, GError **error)
{
  g_free(*_return);
  *_return = g_strdup(PACKAGE_VERSION);
  return TRUE;
}

static void
kq_thrift_handler_finalize(GObject *object)
{
  KqThriftHandler *self = KQ_THRIFT_HANDLER(object);

  kq_thrift_reads_free(self->reads);
  g_free(self->durable_queue);
  g_main_context_unref(self->context);
  G_OBJECT_CLASS(kq_thrift_handler_parent_class)->finalize(object);
}

static void
kq_thrift_handler_class_init(KqThriftHandlerClass *klass)
{
  KqThriftKestrelHandlerClass *handler_class = KQ_THRIFT_KESTREL_HANDLER_CLASS(klass);

  G_OBJECT_CLASS(klass)->finalize = kq_thrift_handler_finalize;
  handler_class->put = handler_put;
  handler_class->get = handler_get;
  handler_class->confirm = handler_confirm;
  handler_class->abort = handler_abort;
  handler_class->peek = handler_peek;
  handler_class->flush_queue = handler_flush_queue;
  handler_class->flush_all_queues = handler_flush_all_queues;
  handler_class->delete_queue = handler_delete_queue;
  handler_class->current_status = handler_current_status;
  handler_class->set_status = handler_set_status;
  handler_class->get_version = handler_get_version;
}

static void
kq_thrift_handler_init(KqThriftHandler *self)
{
}

KqThriftHandler *
kq_thrift_handler_new(const KqThriftEnv *env, GMainContext *context)
{
  KqThriftHandler *self = g_object_new(KQ_TYPE_THRIFT_HANDLER, NULL);

  self->env = *env;
  self->context = g_main_context_ref(context);
  self->reads = kq_thrift_reads_new(context);
  return self;
}

const KqThriftEnv *
kq_thrift_handler_get_env(KqThriftHandler *self)
{
  return &self->env;
}

KqThriftReads *
kq_thrift_handler_get_reads(KqThriftHandler *self)
{
  return self->reads;
}

GMainContext *
kq_thrift_handler_get_context(KqThriftHandler *self)
{
  return self->context;
}

void
kq_thrift_handler_set_input(KqThriftHandler *self, KqThriftProtocol *input)
{
  self->input = input;
}

void
kq_thrift_handler_set_owner(KqThriftHandler *self, guint64 owner, gboolean refuses_reads,
                            gboolean refuses_writes)
{
  self->owner = owner;
  self->owner_refuses_reads = refuses_reads;
  self->owner_refuses_writes = refuses_writes;
}

guint64
kq_thrift_handler_get_owner(KqThriftHandler *self)
{
  return self->owner;
}

gchar *
kq_thrift_handler_take_durable_queue(KqThriftHandler *self)
{
  return g_steal_pointer(&self->durable_queue);
}

void
kq_thrift_handler_post(KqThriftHandler *self, GSourceFunc func, gpointer data,
                       GDestroyNotify destroy)
{
  GSource *source = g_idle_source_new();

  g_source_set_priority(source, G_PRIORITY_DEFAULT);
  g_source_set_callback(source, func, data, destroy);
  g_source_attach(source, self->context);
  g_source_unref(source);
}

void
kq_thrift_handler_inflight_inc(KqThriftHandler *self)
{
  self->inflight++;
}

void
kq_thrift_handler_inflight_dec(KqThriftHandler *self)
{
  g_return_if_fail(self->inflight > 0);
  if (--self->inflight == 0 && self->drained != NULL)
    self->drained(self->drained_data);
}

guint
kq_thrift_handler_inflight(KqThriftHandler *self)
{
  return self->inflight;
}

void
kq_thrift_handler_set_drained_func(KqThriftHandler *self, GSourceFunc drained, gpointer data)
{
  self->drained = drained;
  self->drained_data = data;
}
