/*
 * The Thrift interface of kestrel-c. Wire-identical to Kestrel 2.4: same structs, field ids,
 * types, defaults and method order, so Kestrel's clients (Finagle, generated Java/Python/Ruby)
 * talk to either server. Transport: framed; protocol: binary. See docs/thrift.md.
 */

namespace java net.lag.kestrel.thrift
namespace c_glib KqThrift

struct Item {
  /* the item's bytes */
  1: binary data

  /* open-read id for confirm/abort; 0 when the get did not open the item */
  2: i64 id
}

struct QueueInfo {
  /* the head item, set only when the queue has one */
  1: optional binary head_item

  /* items currently queued */
  2: i64 items

  /* bytes of queued item data */
  3: i64 bytes

  /* bytes of journal on disk */
  4: i64 journal_bytes

  /* ms the last fetched item had waited */
  5: i64 age

  /* clients blocked in a get on this queue */
  6: i32 waiters

  /* items fetched but not yet confirmed or aborted */
  7: i32 open_transactions
}

enum Status {
  /* status levels are not in use */
  NOT_CONFIGURED = 0,

  /* reads and writes are refused */
  QUIESCENT = 1,

  /* writes are refused */
  READ_ONLY = 2,

  /* reads and writes are allowed */
  UP = 3,
}

service Kestrel {
  /* Store items in order; stops at the first refused one. Returns how many were stored. */
  i32 put(1: string queue_name, 2: list<binary> items, 3: i32 expiration_msec = 0)

  /*
   * Up to max_items items. With timeout_msec, waits until max_items arrived or the time is up.
   * auto_abort_msec > 0 opens each item (non-zero id) and aborts it unless confirmed in time.
   */
  list<Item> get(1: string queue_name, 2: i32 max_items, 3: i32 timeout_msec = 0, 4: i32 auto_abort_msec = 0)

  /* Confirm open reads; returns how many of the ids were open. */
  i32 confirm(1: string queue_name, 2: set<i64> ids)

  /* Put open reads back at the head of their queue; returns how many of the ids were open. */
  i32 abort(1: string queue_name, 2: set<i64> ids)

  /* The head item (not removed) and the queue's stats. */
  QueueInfo peek(1: string queue_name)

  /* Discard every queued item of one queue. */
  void flush_queue(1: string queue_name)

  /* Discard every queued item of every queue. */
  void flush_all_queues()

  /* Delete a queue and its journal. */
  void delete_queue(1: string queue_name)

  /* The server's advertised status. */
  Status current_status()

  /* Change the status; fails when status is not configured. */
  void set_status(1: Status status)

  /* The server's version. */
  string get_version()
}
