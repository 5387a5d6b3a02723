/* kestrel-load: load generator with the sub-commands of Kestrel's load tools (put-many,
 * many-clients, flood, packing, leaky-reader) over the memcache protocol, Thrift (--thrift) or,
 * for side-by-side benchmarks, redis lists (--redis). Every item carries a sequence number and a
 * checksum, so lost, duplicated and corrupted items are counted. */
#include "config.h"

#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "load-admin.h"
#include "load-engine.h"
#include "load-item.h"
#include "load-report.h"
#include "load-roles.h"

enum { EXIT_OK = 0, EXIT_LOSS = 1, EXIT_USAGE = 2 };

#define MAX_ITEMS 100000000     /* per-item bookkeeping is a few bytes each */
#define MAX_ITEM_BYTES (64 << 20)
#define MAX_CONNS 10000
#define POLL_MS 10
#define PROGRESS_MS 250
#define MAX_MISSING_SHOWN 20

typedef struct {
  /* common */
  gchar *host;
  gint port;
  gboolean thrift, redis, no_flush, monitor, json, verbose;
  const LoadWire *wire;
  gint timeout_s, io_threads;
  gchar *seed_arg;
  gchar *zookeeper, *spread; /* --zookeeper HOST:PORT/prefix, --spread random|hash */
  guint32 seed;      /* of every connection's random choices (--seed, or drawn at start) */
  /* per command (not all apply) */
  gint clients, items, bytes, rollup, queues, kilobytes, prefill, producers, consumers;
  gint sleep_ms, block_ms, pause_s, cycles, readers, abort_ms;
  gint idle_ms;      /* flood --idle-ms; -1: not given */
  gboolean get_after, blocking, xact;
  gdouble kill_pct, drop_pct;
  gchar *queue;
} Opts;

typedef struct {
  const gchar *name;
  Opts *o;
  LoadRun *run;
  gboolean tty;
  gint64 deadline_ns;
  gint64 last_monitor_ns;
  gint64 monitor_items;
} Ctx;

/* ---------------------------------------------------------------------------- progress */

static void show_progress(Ctx *ctx, gint64 started, gboolean force)
{
  LoadRun *run = ctx->run;
  gint64 now = load_now_ns();
  if (ctx->o->monitor && (force || now - ctx->last_monitor_ns >= 1000000000)) {
    gint64 items = -1, bytes = -1;
    ctx->last_monitor_ns = now;
    if (load_admin_queue_stats(run->wire, &run->addr, run->queues[0], &items, &bytes, NULL)) {
      ctx->monitor_items = items;
      if (!ctx->tty && !ctx->o->json)
        printf("%s: monitor queue %s items=%" G_GINT64_FORMAT " bytes=%" G_GINT64_FORMAT "\n",
               ctx->name, run->queues[0], items, bytes);
    }
  }
  if (!ctx->tty || ctx->o->json)
    return;
  gdouble secs = (gdouble)(now - started) / 1e9;
  guint64 puts = atomic_load(&run->puts), gets = atomic_load(&run->gets);
  printf("\r\033[K%s: %.1fs put %" G_GUINT64_FORMAT " got %" G_GUINT64_FORMAT
         " delivered %" G_GUINT64_FORMAT " corrupted %" G_GUINT64_FORMAT,
         ctx->name, secs, puts, gets, (guint64)atomic_load(&run->distinct),
         (guint64)atomic_load(&run->corrupted));
  if (ctx->o->monitor)
    printf(" queue=%" G_GINT64_FORMAT, ctx->monitor_items);
  fflush(stdout);
}

/* Runs the connections added so far until they are all done; returns the phase's seconds. */
static gdouble run_phase(Ctx *ctx)
{
  gint64 started = load_now_ns(), last_shown = 0;
  load_run_start(ctx->run, ctx->deadline_ns);
  /* the workers enforce the deadline; this bound only guards against a wedged worker */
  guint64 max_polls = (guint64)ctx->o->timeout_s * 1000 / POLL_MS + 200;
  for (guint64 i = 0; i < max_polls && !load_run_finished(ctx->run); i++) {
    g_usleep(POLL_MS * 1000);
    if (load_now_ns() - last_shown >= PROGRESS_MS * 1000000LL) {
      last_shown = load_now_ns();
      show_progress(ctx, started, FALSE);
    }
  }
  if (!load_run_finished(ctx->run))
    atomic_store(&ctx->run->abort, TRUE);
  load_run_join(ctx->run);
  gdouble secs = (gdouble)(atomic_load(&ctx->run->phase_end_ns) - started) / 1e9;
  if (ctx->tty && !ctx->o->json) {
    printf("\r\033[K");
    fflush(stdout);
  }
  return secs;
}

static void pause_seconds(Ctx *ctx, gint seconds)
{
  for (gint i = 0; i < seconds * 10 && load_now_ns() < ctx->deadline_ns; i++)
    g_usleep(100000);
}

/* ---------------------------------------------------------------------------- setup */

static gchar **queue_names(const gchar *prefix, gint count)
{
  gchar **names = g_new0(gchar *, (gsize)count + 1);
  for (gint i = 0; i < count; i++)
    names[i] = count == 1 ? g_strdup(prefix) : g_strdup_printf("%s%d", prefix, i);
  return names;
}

static int prepare(Ctx *ctx, guint64 slots, gsize item_size, gint n_queues)
{
  GError *error = NULL;
  guint threads = ctx->o->io_threads > 0 ? (guint)ctx->o->io_threads : g_get_num_processors();
  ctx->run = load_run_new(ctx->o->wire, ctx->o->host, (guint)ctx->o->port, threads, slots,
                          item_size, &error);
  if (!ctx->run) {
    g_printerr("%s: %s\n", ctx->name, error->message);
    g_error_free(error);
    return EXIT_USAGE;
  }
  ctx->run->seed = ctx->o->seed;
  ctx->run->queues = queue_names(ctx->o->queue, n_queues);
  ctx->run->n_queues = (guint)n_queues;
  ctx->run->verbose = ctx->o->verbose;
  ctx->deadline_ns = load_now_ns() + (gint64)ctx->o->timeout_s * 1000000000;
  if (ctx->o->zookeeper) {
    LoadSpread spread = LOAD_SPREAD_RANDOM;
    load_discovery_parse_spread(ctx->o->spread ? ctx->o->spread : "random", &spread);
    ctx->run->discovery = load_discovery_new(ctx->o->zookeeper, ctx->o->thrift ? "thrift" : "memcache",
                                             spread, ctx->o->seed, &error);
    if (!ctx->run->discovery || !load_discovery_wait(ctx->run->discovery, ctx->deadline_ns, &error)) {
      g_printerr("%s: %s\n", ctx->name, error->message);
      g_error_free(error);
      return EXIT_USAGE;
    }
    /* items wait on a server that is down until it is back: read until all came */
    ctx->run->wait_for_all = TRUE;
    ctx->run->idle_ns = (gint64)ctx->o->timeout_s * 1000000000;
    return EXIT_OK; /* the queues of a cluster are not flushed */
  }
  for (gint i = 0; i < n_queues && !ctx->o->no_flush; i++) {
    if (!load_admin_flush(ctx->o->wire, &ctx->run->addr, ctx->run->queues[i], &error)) {
      g_printerr("%s: flush %s: %s\n", ctx->name, ctx->run->queues[i], error->message);
      g_error_free(error);
      return EXIT_USAGE;
    }
  }
  return EXIT_OK;
}

static int finish(Ctx *ctx, LoadReport *report)
{
  if (atomic_load(&ctx->run->abort))
    g_printerr("%s: gave up after --timeout %d s\n", ctx->name, ctx->o->timeout_s);
  report->command = ctx->name;
  load_report_tally(report, ctx->run, MAX_MISSING_SHOWN);
  load_report_print(report, ctx->run, ctx->o->json);
  if (ctx->run->discovery)
    load_discovery_print(ctx->run->discovery, ctx->name, ctx->o->json, stdout);
  int code = load_report_exit_code(report, ctx->run);
  if (report->missing)
    g_array_free(report->missing, TRUE);
  return code;
}

static gsize kb_size(gint kilobytes)
{
  return MAX((gsize)kilobytes * 1024, (gsize)LOAD_ITEM_HEADER);
}

/* Producer i of n gets an even share of count items starting at first; with own_queue it puts
 * them all into queue i mod n_queues, else items go round-robin over the queues. */
static void add_producers(LoadRun *run, guint64 first, guint64 count, guint n, guint depth,
                          guint sleep_ms, gboolean own_queue)
{
  guint64 at = first;
  for (guint i = 0; i < n; i++) {
    guint64 share = count / n + (i < count % n ? 1 : 0);
    load_add_producer(run, own_queue ? run->queues[i % run->n_queues] : NULL, at, share, i,
                      depth, sleep_ms);
    at += share;
  }
  load_phase_producers(run, n);
}

/* ---------------------------------------------------------------------------- commands */

static int cmd_put_many(Ctx *ctx)
{
  Opts *o = ctx->o;
  int rc = prepare(ctx, (guint64)o->items, MAX((gsize)o->bytes, (gsize)LOAD_ITEM_HEADER), o->queues);
  if (rc)
    return rc;
  LoadReport report = { .items = (guint64)o->items, .checked = o->get_after };
  add_producers(ctx->run, 0, (guint64)o->items, (guint)o->clients, (guint)o->rollup, 0, FALSE);
  report.put_seconds = run_phase(ctx);
  report.seconds = report.put_seconds;
  if (o->get_after && !atomic_load(&ctx->run->abort)) {
    load_phase_producers(ctx->run, 0);
    gint readers = MAX(o->clients, o->queues);
    for (gint i = 0; i < readers; i++)
      load_add_consumer(ctx->run, ctx->run->queues[i % o->queues], (guint)o->rollup, -1, FALSE, 0);
    report.get_seconds = run_phase(ctx);
    report.seconds += report.get_seconds;
  }
  return finish(ctx, &report);
}

static int cmd_flood(Ctx *ctx)
{
  Opts *o = ctx->o;
  guint64 total = (guint64)o->prefill + (guint64)o->items;
  gsize size = o->bytes > 0 ? MAX((gsize)o->bytes, (gsize)LOAD_ITEM_HEADER) : kb_size(o->kilobytes);
  int rc = prepare(ctx, total, size, o->queues);
  if (rc)
    return rc;
  LoadRun *run = ctx->run;
  if (o->idle_ms > 0)
    run->idle_ns = (gint64)o->idle_ms * 1000000;
  LoadReport report = { .items = (guint64)o->items, .checked = TRUE };
  if (o->prefill > 0) {
    /* round-robin over the queues, so each queue's consumers start on a full queue */
    load_add_producer(run, NULL, 0, (guint64)o->prefill, (guint32)o->producers, (guint)o->rollup,
                      0);
    load_phase_producers(run, 1);
    run_phase(ctx);
    /* measure only the flood itself */
    atomic_store(&run->puts, 0);
    memset(&run->put_hist, 0, sizeof run->put_hist);
  }
  /* with -Q, connection i of each kind works on queue i mod N, so every queue has both */
  add_producers(run, (guint64)o->prefill, (guint64)o->items, (guint)o->producers, (guint)o->rollup,
                0, TRUE);
  for (gint i = 0; i < o->consumers; i++)
    load_add_consumer(run, run->queues[i % o->queues], (guint)o->rollup,
                      o->blocking ? o->block_ms : -1, o->xact, 0);
  gint64 started = load_now_ns();
  report.seconds = report.put_seconds = report.get_seconds = run_phase(ctx);
  /* puts/s over the put phase: up to the last acknowledged put, not the consumers' tail */
  gint64 done = atomic_load(&run->producers_done_ns);
  if (done > started && done != G_MAXINT64)
    report.put_seconds = MIN(report.seconds, (gdouble)(done - started) / 1e9);
  return finish(ctx, &report);
}

static int cmd_many_clients(Ctx *ctx)
{
  Opts *o = ctx->o;
  int rc = prepare(ctx, (guint64)o->items, MAX((gsize)o->bytes, (gsize)LOAD_ITEM_HEADER), 1);
  if (rc)
    return rc;
  LoadRun *run = ctx->run;
  LoadReport report = { .items = (guint64)o->items, .checked = TRUE };
  run->idle_ns = ((gint64)o->block_ms + 2000) * 1000000;
  add_producers(run, 0, (guint64)o->items, 1, 1, (guint)o->sleep_ms, FALSE);
  for (gint i = 0; i < o->consumers; i++)
    load_add_consumer(run, run->queues[0], 1, o->block_ms, o->xact, o->kill_pct);
  report.seconds = report.put_seconds = report.get_seconds = run_phase(ctx);
  return finish(ctx, &report);
}

static int cmd_packing(Ctx *ctx)
{
  Opts *o = ctx->o;
  guint64 n = (guint64)o->items;
  int rc = prepare(ctx, n * (guint64)o->cycles, kb_size(o->kilobytes), 1);
  if (rc)
    return rc;
  LoadRun *run = ctx->run;
  LoadReport report = { .items = n * (guint64)o->cycles, .checked = TRUE };
  for (gint cycle = 0; cycle < o->cycles && !atomic_load(&run->abort); cycle++) {
    add_producers(run, n * (guint64)cycle, n, 1, 16, 0, FALSE);
    report.put_seconds += run_phase(ctx);
    /* the pause lets the server rotate and pack the journal behind the reader */
    pause_seconds(ctx, o->pause_s);
    load_phase_producers(run, 0);
    load_add_consumer(run, run->queues[0], 16, -1, FALSE, 0);
    report.get_seconds += run_phase(ctx);
    if (!ctx->o->json)
      g_printerr("packing: cycle %d of %d done (%" G_GUINT64_FORMAT " delivered)\n", cycle + 1,
                 o->cycles, (guint64)atomic_load(&run->distinct));
    if (cycle + 1 < o->cycles)
      pause_seconds(ctx, o->pause_s);
  }
  report.seconds = report.put_seconds + report.get_seconds;
  return finish(ctx, &report);
}

static int cmd_leaky_reader(Ctx *ctx)
{
  Opts *o = ctx->o;
  int rc = prepare(ctx, (guint64)o->items, MAX((gsize)o->bytes, (gsize)LOAD_ITEM_HEADER), 1);
  if (rc)
    return rc;
  LoadRun *run = ctx->run;
  LoadReport report = { .items = (guint64)o->items, .checked = TRUE };
  run->wait_for_all = TRUE; /* other readers may still hand dropped items back */
  if (o->wire->confirm) /* dropped reads come back only after their auto-abort */
    run->idle_ns += (gint64)o->abort_ms * 1000000;
  add_producers(run, 0, (guint64)o->items, 1, 16, 0, FALSE);
  for (gint i = 0; i < o->readers; i++)
    load_add_leaky(run, run->queues[0], 100, o->drop_pct, o->abort_ms);
  report.seconds = report.put_seconds = report.get_seconds = run_phase(ctx);
  return finish(ctx, &report);
}

/* ---------------------------------------------------------------------------- options */

#define COMMON_ENTRIES(o)                                                                        \
  { "host", 'h', 0, G_OPTION_ARG_STRING, &(o)->host, "Server address (default 127.0.0.1).", "HOST" }, \
  { "port", 'p', 0, G_OPTION_ARG_INT, &(o)->port, "Server port (default 22133; 2229 with --thrift, 6379 with --redis).", "PORT" }, \
  { "thrift", 0, 0, G_OPTION_ARG_NONE, &(o)->thrift, "Use the Thrift protocol (framed, binary).", NULL }, \
  { "redis", 0, 0, G_OPTION_ARG_NONE, &(o)->redis, "Talk to a redis server: LPUSH to put, RPOP/BRPOP to get.", NULL }, \
  { "no-flush", 'F', 0, G_OPTION_ARG_NONE, &(o)->no_flush, "Do not flush the queue(s) before starting.", NULL }, \
  { "json", 0, 0, G_OPTION_ARG_NONE, &(o)->json, "Print the results as one JSON object.", NULL }, \
  { "timeout", 0, 0, G_OPTION_ARG_INT, &(o)->timeout_s, "Give up after SECONDS (default 300).", "SECONDS" }, \
  { "io-threads", 0, 0, G_OPTION_ARG_INT, &(o)->io_threads, "Event-loop threads (default: CPUs).", "N" }, \
  { "seed", 0, 0, G_OPTION_ARG_STRING, &(o)->seed_arg, "Seed of the random choices (-k kills, -d drops), 0..4294967295 (default: random, printed with the results).", "N" }, \
  { "zookeeper", 'Z', 0, G_OPTION_ARG_STRING, &(o)->zookeeper, "A Kestrel cluster's ZooKeeper server sets instead of --host/--port: producers use the write set, consumers the read set, following changes (the queues are not flushed).", "HOST:PORT/PREFIX" }, \
  { "spread", 0, 0, G_OPTION_ARG_STRING, &(o)->spread, "With --zookeeper: random (default: connections dealt over the members in turn from a random start) or hash (consistent hashing of producers; consumers are still dealt, so every member is read).", "HOW" }
typedef struct {
  const gchar *name;
  const gchar *summary;
  const gchar *description;
  int (*run)(Ctx *ctx);
  gboolean thrift, redis; /* wires the command runs on besides memcache */
} Command;

static const gchar exit_status_help[] =
  "Exit status:\n"
  "  0  every item was accounted for (or --help/--version).\n"
  "  1  items were lost or corrupted, or a connection failed or got an unexpected reply.\n"
  "  2  bad command line, or the server could not be reached for the initial flush.\n";

static const Command commands[] = {
  { "put-many", "Put items from many clients at once, optionally reading them back.",
    "Each of the -c clients puts its share of the -n items (-b bytes each) as fast as the server\n"
    "acknowledges them, keeping -r sets in flight (memcache has no multi-put: the sets are\n"
    "pipelined; so are redis LPUSHes). With --thrift, -r is the number of items per put and\n"
    "get call. With -Q above 1 items go round-robin to queues PREFIX0..PREFIXn. With -g the\n"
    "items are read back afterwards (again -r gets in flight) and checked.\n", cmd_put_many,
    TRUE, TRUE },
  { "many-clients", "Many blocking readers, one slow writer.",
    "One producer puts -n items, pausing -s ms between puts, while -c consumers wait for them\n"
    "with blocking reads (get q/t=MSEC). -x makes the reads reliable (/open, confirmed with\n"
    "/close). -k drops that percentage of requests' connections right after sending, before the\n"
    "reply is read: the server must give such items to someone else, never lose them.\n"
    "Memcache only, like Kestrel's tool.\n",
    cmd_many_clients, FALSE, FALSE },
  { "flood", "Put and get as fast as possible at the same time.",
    "-R producers put -n items of -k kilobytes into one queue while -C consumers read them back\n"
    "(blocking reads with -B). With -Q N above 1 the connections are spread over queues\n"
    "PREFIX0..PREFIX<N-1>: producer i puts into queue i mod N and consumer i reads it (so -R and\n"
    "-C must be at least N). -P items are put first, untimed, so readers start on a full\n"
    "queue. -r keeps that many requests in flight per connection (--thrift: items per put and\n"
    "get call, -B waits up to --block-ms for them). -M shows the queue's size. --idle-ms ends\n"
    "the run sooner against a server that keeps handing out items already seen (memcached).\n"
    "--redis: LPUSH and RPOP (BRPOP with -B), -r pipelined.\n",
    cmd_flood, TRUE, TRUE },
  { "packing", "Fill and drain a queue in cycles, pausing in between.",
    "Each of -c cycles puts -n items of -k kilobytes, pauses -t seconds, reads them all back and\n"
    "pauses again, so the server rotates, packs and truncates its journal while items flow.\n"
    "With --thrift, puts and gets carry 16 items per call.\n",
    cmd_packing, TRUE, TRUE },
  { "leaky-reader", "Reliable readers that sometimes never confirm.",
    "One producer puts -n items while -t readers take them with reliable reads\n"
    "(get q/t=100/open, confirmed by the next /close/open). -d percent of the reads are dropped:\n"
    "aborted or left open while the connection is cut. Such items must come back; the tool\n"
    "checks that every item was confirmed at least once and lists those that never were.\n"
    "With --thrift the reads are Thrift reliable reads: get with auto_abort_msec = --abort-ms,\n"
    "confirm by id; a dropped read is never confirmed and comes back after its auto-abort.\n",
    cmd_leaky_reader, TRUE, FALSE },
};

static GOptionEntry *command_entries(const gchar *name, Opts *o)
{
  GOptionEntry put_many[] = {
    COMMON_ENTRIES(o),
    { "clients", 'c', 0, G_OPTION_ARG_INT, &o->clients, "Concurrent clients (default 100).", "N" },
    { "items", 'n', 0, G_OPTION_ARG_INT, &o->items, "Items in all (default 10000).", "N" },
    { "bytes", 'b', 0, G_OPTION_ARG_INT, &o->bytes, "Item size, at least 16 (default 1024).", "N" },
    { "rollup", 'r', 0, G_OPTION_ARG_INT, &o->rollup, "Requests in flight per client (default 1).", "N" },
    { "queue", 'q', 0, G_OPTION_ARG_STRING, &o->queue, "Queue name or prefix (default spam).", "NAME" },
    { "queues", 'Q', 0, G_OPTION_ARG_INT, &o->queues, "Number of queues (default 1).", "N" },
    { "get", 'g', 0, G_OPTION_ARG_NONE, &o->get_after, "Read the items back afterwards.", NULL },
    G_OPTION_ENTRY_NULL
  };
  GOptionEntry many_clients[] = {
    COMMON_ENTRIES(o),
    { "sleep", 's', 0, G_OPTION_ARG_INT, &o->sleep_ms, "Ms between puts (default 100).", "MSEC" },
    { "items", 'n', 0, G_OPTION_ARG_INT, &o->items, "Items to put (default 100).", "N" },
    { "queue", 'q', 0, G_OPTION_ARG_STRING, &o->queue, "Queue name (default spam).", "NAME" },
    { "clients", 'c', 0, G_OPTION_ARG_INT, &o->consumers, "Blocking consumers (default 100).", "N" },
    { "kill", 'k', 0, G_OPTION_ARG_DOUBLE, &o->kill_pct, "Percent of requests whose client is killed before the reply (default 0).", "PCT" },
    { "transactional", 'x', 0, G_OPTION_ARG_NONE, &o->xact, "Reliable reads (open/close).", NULL },
    { "block-ms", 0, 0, G_OPTION_ARG_INT, &o->block_ms, "Timeout of each blocking read (default 1000).", "MSEC" },
    { "bytes", 'b', 0, G_OPTION_ARG_INT, &o->bytes, "Item size, at least 16 (default 64).", "N" },
    { "monitor", 'M', 0, G_OPTION_ARG_NONE, &o->monitor, "Show the queue's stats while running.", NULL },
    G_OPTION_ENTRY_NULL
  };
  GOptionEntry flood[] = {
    COMMON_ENTRIES(o),
    { "items", 'n', 0, G_OPTION_ARG_INT, &o->items, "Items to put (default 10000).", "N" },
    { "kilobytes", 'k', 0, G_OPTION_ARG_INT, &o->kilobytes, "Item size in KB; 0 = 16-byte header only (default 1).", "KB" },
    { "bytes", 'b', 0, G_OPTION_ARG_INT, &o->bytes, "Item size in bytes, at least 16 (instead of -k).", "N" },
    { "queue", 'q', 0, G_OPTION_ARG_STRING, &o->queue, "Queue name or prefix (default spam).", "NAME" },
    { "queues", 'Q', 0, G_OPTION_ARG_INT, &o->queues, "Queues the connections are spread over (default 1).", "N" },
    { "prefill", 'P', 0, G_OPTION_ARG_INT, &o->prefill, "Items put before the flood (default 0).", "N" },
    { "producers", 'R', 0, G_OPTION_ARG_INT, &o->producers, "Producer connections (default 1).", "N" },
    { "consumers", 'C', 0, G_OPTION_ARG_INT, &o->consumers, "Consumer connections (default 1).", "N" },
    { "rollup", 'r', 0, G_OPTION_ARG_INT, &o->rollup, "Requests in flight per connection (default 1).", "N" },
    { "blocking", 'B', 0, G_OPTION_ARG_NONE, &o->blocking, "Blocking reads (get q/t=--block-ms).", NULL },
    { "block-ms", 0, 0, G_OPTION_ARG_INT, &o->block_ms, "Timeout of blocking reads (default 1000).", "MSEC" },
    { "transactional", 'x', 0, G_OPTION_ARG_NONE, &o->xact, "Reliable reads (open/close, one item at a time).", NULL },
    { "monitor", 'M', 0, G_OPTION_ARG_NONE, &o->monitor, "Show the queue's stats while running.", NULL },
    { "idle-ms", 0, 0, G_OPTION_ARG_INT, &o->idle_ms, "Consumers stop once the producers are done and no new item came for MSEC (default 2000).", "MSEC" },
    G_OPTION_ENTRY_NULL
  };
  GOptionEntry packing[] = {
    COMMON_ENTRIES(o),
    { "queue", 'q', 0, G_OPTION_ARG_STRING, &o->queue, "Queue name (default spam).", "NAME" },
    { "items", 'n', 0, G_OPTION_ARG_INT, &o->items, "Items per cycle (default 1000).", "N" },
    { "kilobytes", 'k', 0, G_OPTION_ARG_INT, &o->kilobytes, "Item size in KB; 0 = 16 bytes (default 1).", "KB" },
    { "pause", 't', 0, G_OPTION_ARG_INT, &o->pause_s, "Seconds to pause between steps (default 1).", "SECONDS" },
    { "cycles", 'c', 0, G_OPTION_ARG_INT, &o->cycles, "Fill/drain cycles (default 3).", "N" },
    { "monitor", 'M', 0, G_OPTION_ARG_NONE, &o->monitor, "Show the queue's stats while running.", NULL },
    G_OPTION_ENTRY_NULL
  };
  GOptionEntry leaky[] = {
    COMMON_ENTRIES(o),
    { "items", 'n', 0, G_OPTION_ARG_INT, &o->items, "Items to put (default 1000).", "N" },
    { "drop", 'd', 0, G_OPTION_ARG_DOUBLE, &o->drop_pct, "Percent of reads never confirmed (default 10).", "PCT" },
    { "queue", 'q', 0, G_OPTION_ARG_STRING, &o->queue, "Queue name (default spam).", "NAME" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &o->readers, "Reader connections (default 10).", "N" },
    { "bytes", 'b', 0, G_OPTION_ARG_INT, &o->bytes, "Item size, at least 16 (default 64).", "N" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &o->verbose, "Report every dropped read.", NULL },
    { "abort-ms", 0, 0, G_OPTION_ARG_INT, &o->abort_ms, "--thrift: auto_abort_msec of each read (default 1000).", "MSEC" },
    G_OPTION_ENTRY_NULL
  };
  const GOptionEntry *src = NULL;
  gsize n = 0;
  if (strcmp(name, "put-many") == 0)
    src = put_many, n = G_N_ELEMENTS(put_many);
  else if (strcmp(name, "many-clients") == 0)
    src = many_clients, n = G_N_ELEMENTS(many_clients);
  else if (strcmp(name, "flood") == 0)
    src = flood, n = G_N_ELEMENTS(flood);
  else if (strcmp(name, "packing") == 0)
    src = packing, n = G_N_ELEMENTS(packing);
  else
    src = leaky, n = G_N_ELEMENTS(leaky);
  return g_memdup2(src, n * sizeof *src);
}

static void set_defaults(const gchar *name, Opts *o)
{
  o->port = 0; /* the wire's default */
  o->abort_ms = 1000;
  o->timeout_s = 300;
  o->rollup = 1;
  o->clients = 1;
  o->queues = 1;
  o->kilobytes = 1;
  o->producers = 1;
  o->consumers = 1;
  o->block_ms = 1000;
  o->pause_s = 1;
  o->cycles = 3;
  o->readers = 10;
  o->drop_pct = 10;
  o->bytes = 64;
  o->idle_ms = -1;
  if (strcmp(name, "put-many") == 0) {
    o->clients = 100, o->items = 10000, o->bytes = 1024;
  } else if (strcmp(name, "many-clients") == 0) {
    o->sleep_ms = 100, o->items = 100, o->consumers = 100;
  } else if (strcmp(name, "flood") == 0) {
    o->items = 10000, o->bytes = 0; /* 0: size from -k */
  } else {
    o->items = 1000;
  }
}

/* Ranges GOption cannot check itself. */
static gboolean check_opts(const gchar *name, Opts *o, GError **error)
{
  const struct { const gchar *what; gint64 v, lo, hi; } checks[] = {
    { "--port", o->port, 0, 65535 }, /* 0: the wire's default */
    { "--timeout", o->timeout_s, 1, 86400 },
    { "--io-threads", o->io_threads, 0, 256 },
    { "--items", o->items, 0, MAX_ITEMS },
    { "--bytes", o->bytes, 0, MAX_ITEM_BYTES },
    { "--kilobytes", o->kilobytes, 0, MAX_ITEM_BYTES / 1024 },
    { "--rollup", o->rollup, 1, LOAD_RING },
    { "--queues", o->queues, 1, 1000 },
    { "--clients", o->clients, 1, MAX_CONNS },
    { "--producers", o->producers, 1, MAX_CONNS },
    { "--consumers", o->consumers, 1, MAX_CONNS },
    { "--threads", o->readers, 1, MAX_CONNS },
    { "--prefill", o->prefill, 0, MAX_ITEMS },
    { "--sleep", o->sleep_ms, 0, 3600000 },
    { "--block-ms", o->block_ms, 0, 3600000 },
    { "--abort-ms", o->abort_ms, 1, 3600000 },
    { "--pause", o->pause_s, 0, 3600 },
    { "--cycles", o->cycles, 1, 100000 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(checks); i++) {
    if (checks[i].v < checks[i].lo || checks[i].v > checks[i].hi) {
      g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                  "%s must be between %" G_GINT64_FORMAT " and %" G_GINT64_FORMAT, checks[i].what,
                  checks[i].lo, checks[i].hi);
      return FALSE;
    }
  }
  if ((guint64)o->items * (guint64)o->cycles > MAX_ITEMS ||
      (guint64)o->items + (guint64)o->prefill > MAX_ITEMS) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "too many items in all");
    return FALSE;
  }
  if (o->kill_pct < 0 || o->kill_pct > 100 || o->drop_pct < 0 || o->drop_pct > 100) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "percentages must be 0..100");
    return FALSE;
  }
  guint64 seed = o->seed_arg ? 0 : g_random_int();
  if (o->seed_arg && !g_ascii_string_to_unsigned(o->seed_arg, 10, 0, G_MAXUINT32, &seed, NULL)) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "--seed must be between 0 and %u", G_MAXUINT32);
    return FALSE;
  }
  o->seed = (guint32)seed;
  LoadSpread spread;
  if (o->spread && !load_discovery_parse_spread(o->spread, &spread)) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--spread is random or hash");
    return FALSE;
  }
  if (o->zookeeper && (o->redis || o->monitor)) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "--zookeeper works with memcache and --thrift, without -M");
    return FALSE;
  }
  if (o->idle_ms != -1 && (o->idle_ms < 1 || o->idle_ms > 3600000 || o->zookeeper)) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "--idle-ms must be between 1 and 3600000, and not with --zookeeper (whose "
                "consumers wait up to --timeout)");
    return FALSE;
  }
  if (strcmp(name, "flood") == 0 && o->queues > 1 &&
      (o->producers < o->queues || o->consumers < o->queues || o->monitor)) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "-Q %d needs at least %d producers (-R) and consumers (-C), and no -M", o->queues,
                o->queues);
    return FALSE;
  }
  if (!o->queue || !*o->queue || strpbrk(o->queue, " /~.\r\n") || strlen(o->queue) > 190) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "bad queue name");
    return FALSE;
  }
  return TRUE;
}

/* --thrift / --redis pick the wire, and with it the default port. */
static gboolean choose_wire(const Command *cmd, Opts *o, GError **error)
{
  if (o->thrift && o->redis) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "--thrift and --redis exclude each other");
    return FALSE;
  }
  o->wire = o->thrift ? &load_wire_thrift : o->redis ? &load_wire_redis : &load_wire_memcache;
  if ((o->thrift && !cmd->thrift) || (o->redis && !cmd->redis)) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s does not run over %s",
                cmd->name, o->thrift ? "--thrift" : "--redis");
    return FALSE;
  }
  if (o->port == 0)
    o->port = (gint)o->wire->default_port;
  return TRUE;
}

/* The same layout as GOption's --help of kestreld and the journal tools (and each command's). */
static void usage(FILE *f)
{
  fprintf(f, "Usage:\n  kestrel-load [OPTION...] COMMAND [COMMAND OPTION...] - load tests for Kestrel servers\n"
             "\n"
             "Help Options:\n"
             "  -h, --help         Show help options\n"
             "\n"
             "Application Options:\n"
             "  -V, --version      Print \"kestrel-load VERSION\" and exit.\n"
             "\n"
             "Commands:\n");
  for (gsize i = 0; i < G_N_ELEMENTS(commands); i++)
    fprintf(f, "  %-18s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\n"
             "Load tests for a Kestrel server over the memcache protocol, or Thrift with --thrift\n"
             "(put-many, flood, packing, leaky-reader), or of a redis server with --redis (put-many,\n"
             "flood, packing). 'kestrel-load COMMAND --help' describes a command's options. Random\n"
             "choices (many-clients -k kills, leaky-reader -d drops) follow a seed, printed with the\n"
             "results; --seed N repeats them.\n"
             "\n"
             "%s", exit_status_help);
}

int main(int argc, char **argv)
{
  signal(SIGPIPE, SIG_IGN);
  setlocale(LC_CTYPE, "");   /* GOption's --help in the terminal's charset, as kestreld */
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_USAGE : EXIT_OK;
  }
  if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
    printf("kestrel-load %s\n", PACKAGE_VERSION);
    return EXIT_OK;
  }
  const Command *cmd = NULL;
  for (gsize i = 0; i < G_N_ELEMENTS(commands); i++)
    if (strcmp(argv[1], commands[i].name) == 0)
      cmd = &commands[i];
  if (!cmd) {
    fprintf(stderr, "kestrel-load: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
  }

  Opts o = { 0 };
  set_defaults(cmd->name, &o);
  GOptionEntry *entries = command_entries(cmd->name, &o);
  gchar *prg = g_strdup_printf("kestrel-load %s", cmd->name);
  g_set_prgname(prg);
  GOptionContext *oc = g_option_context_new(NULL);
  g_option_context_set_summary(oc, cmd->summary);
  g_autofree gchar *description = g_strconcat(cmd->description, "\n", exit_status_help, NULL);
  g_option_context_set_description(oc, description);
  g_option_context_add_main_entries(oc, entries, NULL);
  GError *error = NULL;
  int sub_argc = argc - 1;
  char **sub_argv = argv + 1;
  sub_argv[0] = prg;
  gboolean ok = g_option_context_parse(oc, &sub_argc, &sub_argv, &error) &&
                (o.host || (o.host = g_strdup("127.0.0.1"))) &&
                (o.queue || (o.queue = g_strdup("spam"))) && check_opts(cmd->name, &o, &error);
  if (ok && sub_argc > 1) {
    g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "unexpected argument '%s'", sub_argv[1]);
    ok = FALSE;
  }
  if (ok && !choose_wire(cmd, &o, &error))
    ok = FALSE;
  g_option_context_free(oc);
  g_free(entries);
  if (!ok) {
    g_printerr("%s: %s (see --help)\n", prg, error->message);
    g_clear_error(&error);
    g_free(o.host);
    g_free(o.queue);
    g_free(o.seed_arg);
    g_free(o.zookeeper);
    g_free(o.spread);
    g_free(prg);
    return EXIT_USAGE;
  }

  Ctx ctx = { .name = cmd->name, .o = &o, .tty = isatty(STDOUT_FILENO) };
  int rc = cmd->run(&ctx);
  if (ctx.run)
    load_discovery_free(ctx.run->discovery);
  load_run_free(ctx.run);
  g_free(o.host);
  g_free(o.queue);
  g_free(o.seed_arg);
  g_free(o.zookeeper);
  g_free(o.spread);
  g_free(prg);
  return rc;
}
