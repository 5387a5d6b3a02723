/* A GLib program that embeds libkestrel: a durable queue in a folder of its own.
 * Build: cc embed-queue.c $(pkg-config --cflags --libs kestrel) -o embed-queue
 * Run:   ./embed-queue [QUEUE_FOLDER]   (default: a new temporary folder) */
#include <kestrel/kestrel.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  GMainLoop *loop;
  KqItem *item;       /* what the blocking read got, NULL on timeout */
  gboolean done;
} Wait;

/* The engine calls this on one of its own threads; hop onto our main context. */
static gboolean wait_finish_on_loop(gpointer data)
{
  Wait *wait = data;
  wait->done = TRUE;
  g_main_loop_quit(wait->loop);
  return G_SOURCE_REMOVE;
}

static void on_item(KqQueue *queue, KqItem *item, gpointer data)
{
  Wait *wait = data;
  wait->item = item;
  g_main_context_invoke(g_main_loop_get_context(wait->loop), wait_finish_on_loop, wait);
}

static KqItem *wait_for_item(KqQueue *queue, gint64 timeout_ms, GError **error)
{
  g_autoptr(GMainContext) context = g_main_context_new();
  g_autoptr(GMainLoop) loop = g_main_loop_new(context, FALSE);
  Wait wait = { loop, NULL, FALSE };
  KqItem *now = NULL;
  g_main_context_push_thread_default(context);
  KqWaiter *waiter = kq_queue_remove_wait(queue, KQ_REMOVE_OPEN, timeout_ms, on_item, &wait,
                                          &now, error);
  if (waiter != NULL)
    g_main_loop_run(loop);   /* returns when on_item ran: an item or the timeout */
  g_main_context_pop_thread_default(context);
  return now != NULL ? now : wait.item;
}

int main(int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *folder = argc > 1 ? g_strdup(argv[1]) : g_dir_make_tmp("embed-XXXXXX", &error);
  if (folder == NULL) {
    fprintf(stderr, "embed-queue: %s\n", error->message);
    return 1;
  }
  KqCollection *queues = kq_collection_open(folder, NULL, &error);
  if (queues == NULL) {
    fprintf(stderr, "embed-queue: %s\n", error->message);
    return 1;
  }
  g_autoptr(KqQueue) jobs = kq_collection_get(queues, "jobs", TRUE, &error);

  const char *task = "resize photo 42";
  if (!kq_queue_add(jobs, task, strlen(task), 0, &error)) {
    fprintf(stderr, "embed-queue: add: %s\n", error->message);
    return 1;
  }

  /* A reliable read: the item stays ours until we confirm it (or abort it back to the head). */
  g_autoptr(KqItem) item = kq_queue_remove(jobs, KQ_REMOVE_OPEN, &error);
  printf("got \"%.*s\" as open read %u\n", (int)item->len, (const char *)item->data, item->xid);
  if (!kq_queue_confirm(jobs, item->xid, &error)) {
    fprintf(stderr, "embed-queue: confirm: %s\n", error->message);
    return 1;
  }

  /* The queue is empty now: wait up to 50 ms on our main context, get nothing. */
  KqItem *none = wait_for_item(jobs, 50, &error);
  printf("after the timeout: %s\n", none == NULL ? "no item" : "an item?!");

  KqQueueStats stats;
  kq_queue_get_stats(jobs, &stats);
  printf("items=%" G_GINT64_FORMAT " total_items=%" G_GINT64_FORMAT
         " open_transactions=%" G_GINT64_FORMAT "\n",
         stats.items, stats.total_items, stats.open_transactions);

  g_clear_pointer(&jobs, kq_queue_unref);
  kq_collection_close(queues);
  return none == NULL && stats.total_items == 1 && stats.items == 0 ? 0 : 1;
}
