/* A size-only model of journal replay (SPEC 7) for the offline tools: which items are queued
 * (their data sizes, in order), which reads are open, and what a record does to that state.
 * It mirrors the engine's replay rules and reports records the engine would ignore. */
#pragma once
#include <glib.h>
#include <kestrel/journal.h>

typedef struct {
  guint32 *sizes;     /* ring of queued items' data sizes, head at sizes[head] */
  gsize capacity, head, count;
  GHashTable *open;   /* xid -> data size (GUINT_TO_POINTER) */
  gint64 bytes;       /* data bytes of queued items */
  gint64 added, removed;
  guint32 last_xid;
} ToolReplay;

void tool_replay_init(ToolReplay *replay);
void tool_replay_clear(ToolReplay *replay);
/* Forget all state and counters (a new queue starts). */
void tool_replay_reset(ToolReplay *replay);

/* Apply one record. Returns NULL, or a description of what the engine would ignore or
 * discard (e.g. "REMOVE on an empty queue"); the caller frees it. */
gchar *tool_replay_apply(ToolReplay *replay, const KqJournalRecord *record);

/* Open xids in increasing order (caller frees). */
GArray *tool_replay_open_xids(ToolReplay *replay);
/* Data bytes held by open reads. */
gint64 tool_replay_open_bytes(ToolReplay *replay);
/* "3, 7, 12" (or "" when none); caller frees. */
gchar *tool_replay_format_xids(ToolReplay *replay);

/* Why the record at `offset` of `path` cannot be read ("unknown opcode 0x2a", "record cut
 * short", ...). Caller frees. */
gchar *tool_torn_reason(const gchar *path, gint64 offset);

/* ISO 8601 UTC with milliseconds for an epoch-ms time, "none" for 0. Caller frees. */
gchar *tool_format_time(gint64 ms);
