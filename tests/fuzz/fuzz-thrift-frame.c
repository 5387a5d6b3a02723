/* libFuzzer target: bytes from a Thrift client, through the frame reader, the hardened binary
 * protocol and the processor, onto a real engine in a temporary queue folder. The input may hold
 * several frames; the connection is closed after each input (parked gets give items back). */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>
#include <kestrel/kestrel.h>

#include "thrift/thrift-connection.h"
#include "thrift/thrift-handler.h"
#include "thrift/thrift-processor.h"
#include "thrift/thrift-types.h"

/* Small enough that the fuzzer reaches the oversized-frame path. */
#define FUZZ_MAX_FRAME (1 << 20)
/* Start over (drop open reads and queued items) this often, to keep memory bounded. */
#define RUNS_PER_RESET 2000

static gchar *queue_dir;
static KqCollection *collection;
static KqServerStats stats;
static GMainContext *context;
static KqThriftHandler *handler;
static KqThriftProcessor *processor;
static guint64 serial;
static guint runs;

static KqStatus
fuzz_get_status(gpointer data)
{
  return KQ_STATUS_UP;
}

static gboolean
fuzz_set_status(gpointer data, KqStatus status, GError **error)
{
  return TRUE;
}

static gboolean
fuzz_allowed(gpointer data)
{
  return TRUE;
}

static void
fuzz_setup_front_end(void)
{
  KqThriftEnv env = {
    .collection = collection,
    .stats = &stats,
    .max_open_transactions = 4,
    .get_status = fuzz_get_status,
    .set_status = fuzz_set_status,
    .allows_reads = fuzz_allowed,
    .allows_writes = fuzz_allowed,
  };
  handler = kq_thrift_handler_new(&env, context);
  processor = kq_thrift_processor_new(handler);
}

static void
fuzz_teardown_front_end(void)
{
  g_clear_object(&processor);
  g_clear_object(&handler);
  kq_collection_flush_all(collection);
}

/* Leave no queue folder behind in /tmp. */
static void
fuzz_cleanup(void)
{
  GDir *dir;
  const gchar *name;

  fuzz_teardown_front_end();
  kq_collection_close(collection);
  if ((dir = g_dir_open(queue_dir, 0, NULL)) != NULL) {
    while ((name = g_dir_read_name(dir)) != NULL) {
      g_autofree gchar *path = g_build_filename(queue_dir, name, NULL);
      remove(path);
    }
    g_dir_close(dir);
  }
  remove(queue_dir);
  g_free(queue_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  g_autoptr(GError) error = NULL;

  g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL);
  queue_dir = g_dir_make_tmp("fuzz-thrift-XXXXXX", &error);
  if (queue_dir == NULL || (collection = kq_collection_open(queue_dir, NULL, &error)) == NULL) {
    g_printerr("fuzz-thrift-frame: %s\n", error->message);
    abort();
  }
  atexit(fuzz_cleanup);
  kq_thrift_types_init();
  context = g_main_context_new();
  fuzz_setup_front_end();
  return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  KqThriftConn *conn = kq_thrift_conn_new(processor, -1, ++serial, FUZZ_MAX_FRAME, NULL, NULL);

  kq_thrift_conn_feed(conn, data, size);
  kq_thrift_conn_close(conn);
  kq_thrift_conn_unref(conn);
  /* Engine callbacks already on their way to the loop must land before the next input. */
  while (kq_thrift_handler_inflight(handler) > 0)
    g_main_context_iteration(context, TRUE);
  while (g_main_context_iteration(context, FALSE))
    ;
  if (++runs % RUNS_PER_RESET == 0) {
    fuzz_teardown_front_end();
    fuzz_setup_front_end();
  }
  return 0;
}
