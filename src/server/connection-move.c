/* Bulk connections (connection-private.h), those that have carried a large message.
 *
 * Several loops: the hub's placement (the worker threads') keeps them apart from the others.
 * A connection moves only at a quiet point: between requests, nothing parked, nothing waiting
 * to become durable, every reply sent, so no engine callback can come to the hub it leaves.
 * The old loop frees its events, the new one makes its own.
 *
 * One loop serving both: a bulk connection's events have a lower priority than the rest.
 * libevent runs only the highest priority that has events ready, then polls again, so each
 * 16 KB slice of a large item waits until no small request is ready. After KQ_BULK_WAIT_TURNS
 * small turns without a bulk one, the bulk connections are moved up for a turn each, so a
 * loop kept busy by small requests still moves large items. */
#include "config.h"

#include "connection-private.h"

/* Events made without a priority get the middle one (libevent's default): everything but the
 * bulk connections' events runs with the small requests. */
enum { PRIORITY_SMALL = 1, PRIORITY_BULK = 2, LOOP_PRIORITIES = 3 };

struct event_base *
kq_connection_loop_new(void)
{
  struct event_config *cfg = event_config_new();
  struct event_base *base;

  if (cfg == NULL)
    return NULL;
  /* Poll again after each bulk event: small requests that came meanwhile go first. */
  event_config_set_max_dispatch_interval(cfg, NULL, 1, PRIORITY_BULK);
  base = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (base != NULL && event_base_priority_init(base, LOOP_PRIORITIES) != 0) {
    event_base_free(base);
    return NULL;
  }
  return base;
}

gboolean
conn_loop_has_priorities(struct event_base *base)
{
  return event_base_get_npriorities(base) >= LOOP_PRIORITIES;
}

/* An event waiting to run cannot change priority: it leaves the loop and comes back with what
 * was left of its timeout. Its socket is still ready, so the next poll finds it again. */
static void
event_move_to_priority(struct event *ev, int priority)
{
  struct timeval expires, now, left = { 0, 0 };
  gboolean timed;

  if (ev == NULL || event_get_priority(ev) == priority || event_priority_set(ev, priority) == 0)
    return;
  timed = (event_pending(ev, EV_TIMEOUT, &expires) & EV_TIMEOUT) != 0;
  if (timed) {
    event_base_gettimeofday_cached(event_get_base(ev), &now);
    if (evutil_timercmp(&expires, &now, >))
      evutil_timersub(&expires, &now, &left);
  }
  event_del(ev);
  event_priority_set(ev, priority);
  event_add(ev, timed ? &left : NULL);
}

static void
conn_set_priority(KqConnection *conn, int priority)
{
  event_move_to_priority(conn->read_event, priority);
  event_move_to_priority(conn->write_event, priority);
  event_move_to_priority(conn->resume_event, priority);
}

/* Its events (one just made, say) get the priority of its kind. */
void
conn_match_priority(KqConnection *conn)
{
  conn_set_priority(conn, conn->bulk ? PRIORITY_BULK : PRIORITY_SMALL);
}

/* `conn`, bulk, is served by its hub from now on (or it turned bulk there). */
void
conn_bulk_joins_hub(KqConnection *conn)
{
  g_ptr_array_add(conn->hub->bulk, conn);
  conn_set_priority(conn, PRIORITY_BULK);
}

/* Before its events are freed. */
void
conn_bulk_leaves_hub(KqConnection *conn)
{
  g_ptr_array_remove_fast(conn->hub->bulk, conn);
}

/* One of a bulk connection's events runs: the small requests' count starts again, and if the
 * connection was moved up, it goes back behind them. */
void
conn_bulk_turn(KqConnection *conn)
{
  conn->hub->small_turns = 0;
  conn_set_priority(conn, PRIORITY_BULK);
}

/* A turn of small requests, on a loop with bulk connections. */
void
conn_small_turn(KqConnection *conn)
{
  KqConnectionHub *hub = conn->hub;

  if (++hub->small_turns < KQ_BULK_WAIT_TURNS)
    return;
  hub->small_turns = 0;
  for (guint i = 0; i < hub->bulk->len; i++)
    conn_set_priority(hub->bulk->pdata[i], PRIORITY_SMALL);
}

void
kq_connection_hub_set_placement(KqConnectionHub *hub, const KqConnectionPlacement *placement,
                                gpointer hub_data)
{
  hub->placement = placement;
  hub->placement_data = hub_data;
}

/* conn_note_message saw its first large message. */
void
conn_becomes_bulk(KqConnection *conn)
{
  KqConnectionHub *hub = conn->hub;

  conn->bulk = TRUE;
  conn_bulk_joins_hub(conn);
  if (hub->placement != NULL)
    hub->placement->count_bulk(hub->placement_data, +1);
}

/* The connection closes. */
void
conn_forget_bulk(KqConnection *conn)
{
  KqConnectionHub *hub = conn->hub;

  if (conn->bulk && hub->placement != NULL)
    hub->placement->count_bulk(hub->placement_data, -1);
  conn->bulk = FALSE;
}

static gboolean
conn_is_quiet(KqConnection *conn)
{
  return conn->fd >= 0 && !conn->closing && !conn->in_process && !conn->parked &&
         conn->wait_queue == NULL && conn->durable_pending == 0 && !conn->resume_pending &&
         !conn->output_blocked && !conn->peer_done && !conn->read_paused &&
         conn_staged_length(conn) == 0 && evbuffer_get_length(conn->out) == 0 &&
         evbuffer_get_length(conn->unsent) == 0 &&
         (conn->held == NULL || evbuffer_get_length(conn->held) == 0);
}

/* Called by a socket event's handler holding one reference besides the socket's. TRUE when
 * the connection went to another loop: that reference is then gone (the caller must not
 * touch the connection again). */
gboolean
conn_move_if_placed(KqConnection *conn)
{
  KqConnectionHub *hub = conn->hub;
  gpointer destination;

  if (hub->placement == NULL || hub->stopping || conn->refs != 2 || !conn_is_quiet(conn))
    return FALSE;
  destination = hub->placement->choose(hub->placement_data, conn->bulk);
  if (destination == NULL)
    return FALSE;
  conn->refs--; /* the caller's; the socket's travels with it */
  conn_hub_remove(conn);
  conn->hub = NULL;
  hub->placement->hand_over(destination, conn);
  return TRUE;
}

void
kq_connection_attach(KqConnectionHub *hub, KqConnection *conn)
{
  conn_hub_add(hub, conn);
  if (hub->stopping) {
    conn_close_now(conn);
    return;
  }
  if (kq_server_get_config(conn->server)->enable_session_trace)
    g_message("session %" G_GUINT64_FORMAT ": moved to io thread %u (%s)", conn->id, hub->index,
              conn->bulk ? "bulk" : "small requests");
  conn_watch_reads(conn);
}
