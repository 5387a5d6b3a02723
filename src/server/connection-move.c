/* Moving a connection between loops (connection-private.h): bulk connections, those that have
 * carried a large message, are kept apart from the others by the hub's placement (the worker
 * threads'). A connection moves only at a quiet point: between requests, nothing parked,
 * nothing waiting to become durable, every reply sent, so no engine callback can come to the
 * hub it leaves. The old loop frees its events, the new one makes its own. */
#include "config.h"

#include "connection-private.h"

void
kq_connection_hub_set_placement(KqConnectionHub *hub, const KqConnectionPlacement *placement,
                                gpointer hub_data)
{
  hub->placement = placement;
  hub->placement_data = hub_data;
}

/* A request of `bytes` was taken, or replies of `bytes` were written in one go (one turn's, or
 * a parked request's). */
void
conn_note_message(KqConnection *conn, gsize bytes)
{
  KqConnectionHub *hub = conn->hub;

  if (conn->bulk || bytes < KQ_BULK_MESSAGE_BYTES)
    return;
  conn->bulk = TRUE;
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
