/* What kestrel-load connections do: producers put a range of sequence numbers, consumers read
 * and verify items (optionally blocking, transactional, or killed mid-request), leaky readers
 * open reads and sometimes drop them, counting an item only once it is confirmed. */
#ifndef KESTREL_LOAD_ROLES_H
#define KESTREL_LOAD_ROLES_H

#include "load-engine.h"

/* Puts seqs first..first+count-1 (producer id in each header), keeping `depth` sets in flight,
 * into `queue`, or round-robin over the run's queues (seq % n_queues) when queue is NULL. */
LoadConn *load_add_producer(LoadRun *run, const gchar *queue, guint64 first, guint64 count,
                            guint32 producer_id, guint depth, guint sleep_ms);
/* Reads `queue` until every stored item arrived (or the queue ran dry after the producers). */
LoadConn *load_add_consumer(LoadRun *run, const gchar *queue, guint depth, gint block_ms,
                            gboolean xact, gdouble kill_pct);
/* Reliable reads that never confirm drop_pct percent of the items: memcache aborts them or
 * disconnects; a wire with reads by id (Thrift) opens them with auto_abort_ms and leaves the
 * dropped ones to the auto-abort. */
LoadConn *load_add_leaky(LoadRun *run, const gchar *queue, gint block_ms, gdouble drop_pct,
                         gint auto_abort_ms);

/* Before a phase: how many producers it has (0: consumers may stop as soon as the queue is dry). */
void load_phase_producers(LoadRun *run, guint producers);

#endif
