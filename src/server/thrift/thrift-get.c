/* A Thrift `get` in progress: see thrift-get.h. */
#include "config.h"

#include <thrift/c_glib/thrift_application_exception.h>

#include "thrift-get.h"

struct _KqThriftGet {
  gint ref_count;
  KqThriftHandler *handler;
  guint64 owner;
  gchar *queue_name;
  gsize queue_name_len;   /* on the wire: a NUL byte inside makes the name invalid */
  KqQueue *queue;         /* NULL for an alias or after an error */
  gint32 max_items;
  gint64 deadline_us;     /* monotonic; 0: no waiting */
  gint32 auto_abort_msec;
  GArray *items;          /* KqThriftGotItem, each holding a reference */
  KqWaiter *waiter;       /* valid only while !fired: the engine frees it after the callback */
  GMutex lock;            /* orders `fired` against kq_waiter_cancel() */
  gboolean fired;         /* the engine has called (or is calling) wait_cb */
  GError *error;
  gboolean parked, cancelled, finished;
  KqThriftGetDone done;
  gpointer done_data;
};

/* A wake-up from the engine, carried from its thread to the loop. */
typedef struct {
  KqThriftGet *get;
  KqItem *item;
} Wake;

static KqThriftGet *
get_ref(KqThriftGet *get)
{
  get->ref_count++;
  return get;
}

void
kq_thrift_get_unref(KqThriftGet *get)
{
  if (get == NULL || --get->ref_count > 0)
    return;
  g_clear_pointer(&get->queue, kq_queue_unref);
  g_array_unref(get->items);
  g_clear_error(&get->error);
  g_free(get->queue_name);
  g_object_unref(get->handler);
  g_mutex_clear(&get->lock);
  g_free(get);
}

static void
got_item_clear(gpointer data)
{
  kq_item_unref(((KqThriftGotItem *)data)->item);
}

KqThriftGet *
kq_thrift_get_new(KqThriftHandler *handler, guint64 owner, const gchar *queue_name,
                  gint32 max_items, gint32 timeout_msec, gint32 auto_abort_msec)
{
  KqThriftGet *get = g_new0(KqThriftGet, 1);

  get->ref_count = 1;
  get->handler = g_object_ref(handler);
  get->owner = owner;
  /* The wire length may exceed what `queue_name` holds (its copy ends at a NUL byte, or a
   * repeated name field matched an earlier one): it is kept only for the name check. */
  get->queue_name = g_strdup(queue_name);
  get->queue_name_len = kq_thrift_handler_name_length(handler, queue_name);
  /* As Kestrel's loop did: fewer than 0 items sets no limit (the queue, the open-read limit or
   * the timeout ends the get), and a timeout below 0 has already passed: no items at all. */
  get->max_items = max_items < 0 ? G_MAXINT32 : max_items;
  if (timeout_msec < 0)
    get->max_items = 0;
  if (timeout_msec > 0)
    get->deadline_us = g_get_monotonic_time() + (gint64)timeout_msec * 1000;
  get->auto_abort_msec = MAX(auto_abort_msec, 0);
  g_mutex_init(&get->lock);
  get->items = g_array_new(FALSE, FALSE, sizeof(KqThriftGotItem));
  g_array_set_clear_func(get->items, got_item_clear);
  return get;
}

GArray *
kq_thrift_get_items(KqThriftGet *get)
{
  return get->items;
}

const GError *
kq_thrift_get_error(KqThriftGet *get)
{
  return get->error;
}

static void
add_item(KqThriftGet *get, KqItem *item)
{
  const KqThriftEnv *env = kq_thrift_handler_get_env(get->handler);
  KqThriftGotItem got = { .item = item, .id = 0 };

  /* The reply is written from the item itself, and a cancel gives it back from here. */
  if (get->auto_abort_msec > 0)
    got.id = (gint64)kq_thrift_reads_add(kq_thrift_handler_get_reads(get->handler), get->owner,
                                         get->queue, item->xid, (guint)get->auto_abort_msec);
  g_array_append_val(get->items, got);
  KQ_THRIFT_STAT_ADD(env, get_hits, 1);
}

static void
finish(KqThriftGet *get)
{
  const KqThriftEnv *env = kq_thrift_handler_get_env(get->handler);

  get->finished = TRUE;
  if (get->error == NULL && get->items->len == 0)
    KQ_THRIFT_STAT_ADD(env, get_misses, 1);
  if (get->parked && get->done != NULL)
    get->done(get, get->done_data);
}

static gboolean
at_open_limit(KqThriftGet *get)
{
  const KqThriftEnv *env = kq_thrift_handler_get_env(get->handler);
  return get->auto_abort_msec > 0 &&
         kq_thrift_reads_count(kq_thrift_handler_get_reads(get->handler), get->owner,
                               get->queue_name) >= (guint)MAX(env->max_open_transactions, 0);
}

static gboolean wake_on_loop(gpointer data);
static void wake_free(gpointer data);

/* Engine thread: hand the item (or NULL) over to the loop. */
static void
wait_cb(KqQueue *queue, KqItem *item, gpointer user_data)
{
  KqThriftGet *get = user_data;
  Wake *wake = g_new0(Wake, 1);

  /* Holding the lock here keeps the engine's waiter alive while a cancel is looking at it. */
  g_mutex_lock(&get->lock);
  get->fired = TRUE;
  g_mutex_unlock(&get->lock);
  wake->get = get; /* the waiter's reference moves into the wake */
  wake->item = item;
  kq_thrift_handler_post(get->handler, wake_on_loop, wake, wake_free);
}

/* Take items until done or parked. */
static void
step(KqThriftGet *get)
{
  KqRemoveFlags flags = get->auto_abort_msec > 0 ? KQ_REMOVE_OPEN : KQ_REMOVE_PLAIN;

  while (get->queue != NULL && get->items->len < (guint)get->max_items && !at_open_limit(get)) {
    g_autoptr(GError) error = NULL;
    KqItem *item = NULL;
    gint64 left_ms = get->deadline_us > 0
                         ? (get->deadline_us - g_get_monotonic_time() + 999) / 1000 : 0;

    if (left_ms <= 0) {
      item = kq_queue_remove(get->queue, flags, &error);
    } else {
      KqWaiter *waiter;
      g_mutex_lock(&get->lock);
      get->fired = FALSE;
      g_mutex_unlock(&get->lock);
      kq_thrift_handler_inflight_inc(get->handler);
      waiter = kq_queue_remove_wait(get->queue, flags, left_ms, wait_cb, get_ref(get), &item,
                                    &error);
      if (waiter != NULL) {
        get->waiter = waiter;
        get->parked = TRUE;
        return;
      }
      /* Not parked: the callback will never run. */
      get->ref_count--;
      kq_thrift_handler_inflight_dec(get->handler);
    }
    if (item == NULL) {
      /* An item the journal could not let go of is an error, never "empty"; but items
       * already taken are handed out (the next get meets the error). A queue closed under
       * us (deleted, server stopping) reads as empty. */
      if (error != NULL && !g_error_matches(error, KQ_ERROR, KQ_ERROR_CLOSED) &&
          get->items->len == 0)
        g_set_error(&get->error, THRIFT_APPLICATION_EXCEPTION_ERROR,
                    THRIFT_APPLICATION_EXCEPTION_ERROR_INTERNAL_ERROR, "%s", error->message);
      break;
    }
    add_item(get, item);
  }
  finish(get);
}

static void
give_back(KqThriftGet *get, KqItem *item)
{
  if (get->queue == NULL)
    return;
  if (get->auto_abort_msec > 0)
    kq_queue_abort(get->queue, item->xid, NULL);
  else
    kq_queue_return_item(get->queue, item);
}

static gboolean
wake_on_loop(gpointer data)
{
  Wake *wake = data;
  KqThriftGet *get = wake->get;
  KqItem *item = g_steal_pointer(&wake->item);

  get->waiter = NULL;
  if (get->cancelled || get->finished) {
    if (item != NULL) {
      give_back(get, item);
      kq_item_unref(item);
    }
  } else if (item != NULL) {
    add_item(get, item);
    step(get);
  } else {
    /* The wait ended empty-handed, maybe because the journal could not record handing an
     * item over (it stays queued): one more look at once tells that from an empty queue. */
    get->deadline_us = 0;
    step(get);
  }
  return G_SOURCE_REMOVE;
}

static void
wake_free(gpointer data)
{
  Wake *wake = data;
  KqThriftGet *get = wake->get;
  KqThriftHandler *handler = g_object_ref(get->handler);

  /* Only if the loop never ran it: the item must not be lost. */
  if (wake->item != NULL) {
    give_back(get, wake->item);
    kq_item_unref(wake->item);
  }
  kq_thrift_get_unref(get);
  g_free(wake);
  kq_thrift_handler_inflight_dec(handler);
  g_object_unref(handler);
}

gboolean
kq_thrift_get_start(KqThriftGet *get, KqThriftGetDone done, gpointer user_data)
{
  KqThriftHandler *handler = get->handler;
  const KqThriftEnv *env = kq_thrift_handler_get_env(handler);

  get->done = done;
  get->done_data = user_data;
  KQ_THRIFT_STAT_ADD(env, cmd_get, 1);

  if (!kq_thrift_handler_check_name(get->queue_name, get->queue_name_len, &get->error) ||
      !kq_thrift_handler_check_reads(handler, &get->error)) {
    get->finished = TRUE;
    return TRUE;
  }
  /* Reads from an alias see an empty queue (SPEC 1.5). */
  if (!kq_collection_is_alias(env->collection, get->queue_name)) {
    g_autoptr(GError) error = NULL;
    get->queue = kq_collection_get(env->collection, get->queue_name, TRUE, &error);
    if (get->queue == NULL) {
      g_set_error(&get->error, THRIFT_APPLICATION_EXCEPTION_ERROR,
                  THRIFT_APPLICATION_EXCEPTION_ERROR_INTERNAL_ERROR, "%s",
                  error != NULL ? error->message : "queue unavailable");
      get->finished = TRUE;
      return TRUE;
    }
  }
  step(get);
  return !get->parked;
}

void
kq_thrift_get_cancel(KqThriftGet *get)
{
  get->cancelled = TRUE;
  g_mutex_lock(&get->lock);
  /* Once fired, the waiter may be gone; the wake on its way gives any item back. */
  if (get->waiter != NULL && !get->fired && kq_waiter_cancel(get->waiter)) {
    /* The callback will never run: its reference and in-flight count are ours. */
    kq_thrift_handler_inflight_dec(get->handler);
    get->ref_count--;
  }
  get->waiter = NULL;
  g_mutex_unlock(&get->lock);
  /* Back to the head in reverse order, so the queue order is what it was. */
  for (guint i = get->items->len; i-- > 0;) {
    const KqThriftGotItem *got = &g_array_index(get->items, KqThriftGotItem, i);
    if (got->id != 0)
      kq_thrift_reads_abort(kq_thrift_handler_get_reads(get->handler), (guint64)got->id);
    else if (get->queue != NULL)
      kq_queue_return_item(get->queue, got->item);
  }
  g_array_set_size(get->items, 0);
}
