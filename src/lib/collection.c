/* The queues of one folder (SPEC 1, 5): lookup and creation, fanout, aliases, the folder lock.
 * Lock order: collection lock, then a queue's lock; never the other way round. */
#include "queue-private.h"
#include <kestrel/clock.h>
#include <kestrel/collection.h>
#include <kestrel/error.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define LOCK_FILE_NAME ".kestrel.lock"
#define RESERVED_PREFIX ".kestrel"   /* names of the engine's and the server's own files */

typedef struct {
  gint64 put_items, put_bytes;
} AliasStats;

struct _KqCollection {
  gchar *path;
  int lock_fd;
  KqTimer *timer;
  KqSyncer *syncer;
  GMutex lock;                 /* guards everything below */
  KqConfigSet *config;
  GHashTable *queues;          /* name -> KqQueue* */
  GHashTable *children;        /* parent name -> GPtrArray of KqQueue* (refs) */
  GHashTable *alias_stats;     /* name -> AliasStats* */
  gint64 queue_creates, queue_deletes, queue_expires;
  gboolean closed;
  gint64 total_items;          /* adds accepted since open (atomic, outside the lock) */
  KqQueueOpStats retired_ops;  /* operations of the queues deleted since open */
};

static void op_stats_merge(KqQueueOpStats *into, const KqQueueOpStats *other)
{
  kq_latency_merge(&into->add_latency, &other->add_latency);
  kq_latency_merge(&into->read_hit_latency, &other->read_hit_latency);
  kq_latency_merge(&into->read_miss_latency, &other->read_miss_latency);
  kq_latency_merge(&into->delivery_latency, &other->delivery_latency);
  kq_latency_merge(&into->wait_timeout_latency, &other->wait_timeout_latency);
  into->items_read += other->items_read;
  into->remove_failures += other->remove_failures;
}

/* g_ptr_array_sort passes pointers to the elements: compare the strings they point to. */
static gint name_ptr_compare(gconstpointer a, gconstpointer b)
{
  return g_strcmp0(*(const gchar *const *)a, *(const gchar *const *)b);
}

static gboolean take_folder_lock(KqCollection *c, GError **error)
{
  g_autofree gchar *lock_path = g_build_filename(c->path, LOCK_FILE_NAME, NULL);
  c->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (c->lock_fd < 0) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "cannot open lock file %s: %s", lock_path,
                g_strerror(errno));
    return FALSE;
  }
  if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    gchar pid[32] = "";
    ssize_t n = pread(c->lock_fd, pid, sizeof(pid) - 1, 0);
    if (n > 0)
      pid[n] = '\0';
    g_strstrip(pid);
    g_set_error(error, KQ_ERROR, KQ_ERROR_LOCKED,
                "queue folder %s is in use by another process%s%s (lock file %s)", c->path,
                pid[0] ? ", pid " : "", pid, lock_path);
    close(c->lock_fd);
    c->lock_fd = -1;
    return FALSE;
  }
  gchar pid[32];
  int n = g_snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
  if (ftruncate(c->lock_fd, 0) != 0 || pwrite(c->lock_fd, pid, (size_t)n, 0) != n)
    g_warning("cannot record the pid in %s", lock_path);
  return TRUE;
}

static void resolve_settings(KqCollection *c, const gchar *name, KqQueueSettings *out)
{
  if (c->config != NULL)
    kq_config_set_resolve(c->config, name, out);
  else
    kq_settings_init_defaults(out);
}

static gboolean is_alias_locked(KqCollection *c, const gchar *name)
{
  return c->config != NULL && kq_config_set_alias_destinations(c->config, name) != NULL;
}

static gchar *parent_name(const gchar *name)
{
  const gchar *plus = strchr(name, '+');
  return plus != NULL ? g_strndup(name, (gsize)(plus - name)) : NULL;
}

static void expire_into(gpointer owner, const gchar *queue_name, GPtrArray *items);

/* The syncer's view of a queue. */
static void sync_queue(gpointer q)
{
  kq_queue_sync_now(q);
}

static gpointer ref_queue(gpointer q)
{
  return kq_queue_ref(q);
}

static void unref_queue(gpointer q)
{
  kq_queue_unref(q);
}

/* The queue named `name`, made when `create` is set. The name is checked only when no queue
 * has it: a queue's name was checked when the queue was made, and every request looks its
 * queue up. */
static KqQueue *get_locked(KqCollection *c, const gchar *name, gboolean create, GError **error)
{
  KqQueue *q = name != NULL ? g_hash_table_lookup(c->queues, name) : NULL;
  if (q != NULL)
    return q;
  if (!kq_queue_name_is_valid(name, error) || !create)
    return NULL;
  if (c->closed) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_CLOSED, "the queue collection is closed");
    return NULL;
  }
  g_autofree gchar *parent = parent_name(name);
  if (parent != NULL && get_locked(c, parent, TRUE, error) == NULL)
    return NULL;
  KqQueueSettings settings;
  resolve_settings(c, name, &settings);
  q = kq_queue_new(c->path, name, &settings, expire_into, c, c->timer, c->syncer, error);
  kq_settings_clear(&settings);
  if (q == NULL)
    return NULL;
  g_hash_table_insert(c->queues, g_strdup(name), q);
  if (parent != NULL) {
    GPtrArray *kids = g_hash_table_lookup(c->children, parent);
    if (kids == NULL) {
      kids = g_ptr_array_new_with_free_func((GDestroyNotify)kq_queue_unref);
      g_hash_table_insert(c->children, g_strdup(parent), kids);
    }
    g_ptr_array_add(kids, kq_queue_ref(q));
  }
  c->queue_creates++;
  return q;
}

/* A file of the queue folder that belongs to no queue: left alone, and said once at start-up
 * (the folder lock and other `.kestrel*` files of the engine and server excepted). */
static void note_other_file(const gchar *dir, const gchar *file)
{
  if (g_str_has_prefix(file, RESERVED_PREFIX))
    return;
  g_autofree gchar *path = g_build_filename(dir, file, NULL);
  g_autofree gchar *side_of = kq_journal_side_file_queue(file);
  if (side_of != NULL) {
    GStatBuf st;
    g_message("%s: %" G_GINT64_FORMAT " bytes cut off an unreadable journal tail of queue '%s' "
              "by an earlier start-up; left alone (inspect, then delete it)", path,
              g_stat(path, &st) == 0 ? (gint64)st.st_size : (gint64)-1, side_of);
    return;
  }
  g_warning("%s is not a journal file (its name is no queue's); left alone", path);
}

KqCollection *kq_collection_open(const gchar *path, KqConfigSet *config, GError **error)
{
  if (g_mkdir_with_parents(path, 0755) != 0) {
    g_set_error(error, KQ_ERROR, KQ_ERROR_IO, "cannot create queue folder %s: %s", path,
                g_strerror(errno));
    return NULL;
  }
  KqCollection *c = g_new0(KqCollection, 1);
  c->path = g_strdup(path);
  c->lock_fd = -1;
  g_mutex_init(&c->lock);
  c->config = config;
  c->queues = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  c->children = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify)g_ptr_array_unref);
  c->alias_stats = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  if (!take_folder_lock(c, error)) {
    c->config = NULL;
    kq_collection_close(c);
    return NULL;
  }
  c->timer = kq_timer_new();
  c->syncer = kq_syncer_new(sync_queue, ref_queue, unref_queue);

  g_autoptr(GDir) dir = g_dir_open(path, 0, error);
  if (dir == NULL) {
    c->config = NULL;
    kq_collection_close(c);
    return NULL;
  }
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  const gchar *file;
  while ((file = g_dir_read_name(dir)) != NULL) {
    gchar *queue = kq_journal_queue_of(file);
    if (queue != NULL && kq_queue_name_is_valid(queue, NULL))
      g_ptr_array_add(names, queue);
    else {
      g_free(queue);
      note_other_file(path, file);
    }
  }
  g_ptr_array_sort(names, name_ptr_compare);  /* parents before their children */
  g_mutex_lock(&c->lock);
  for (guint i = 0; i < names->len; i++) {
    g_autoptr(GError) local = NULL;
    if (g_hash_table_contains(c->queues, names->pdata[i]) ||
        (i > 0 && strcmp(names->pdata[i], names->pdata[i - 1]) == 0))
      continue;
    if (get_locked(c, names->pdata[i], TRUE, &local) == NULL &&
        g_error_matches(local, KQ_ERROR, KQ_ERROR_NOT_JOURNAL)) {
      /* a stranger's file under a queue's name: no queue, and nothing of it touched */
      g_warning("queue '%s' not restored: %s", (gchar *)names->pdata[i], local->message);
    } else if (local != NULL) {
      g_mutex_unlock(&c->lock);
      g_propagate_prefixed_error(error, g_steal_pointer(&local), "queue '%s': ",
                                 (gchar *)names->pdata[i]);
      c->config = NULL;
      kq_collection_close(c);
      return NULL;
    }
  }
  c->queue_creates = 0;  /* restored queues are not creations */
  g_mutex_unlock(&c->lock);
  return c;
}

void kq_collection_close(KqCollection *c)
{
  if (c == NULL)
    return;
  g_mutex_lock(&c->lock);
  c->closed = TRUE;
  g_autoptr(GPtrArray) queues = g_ptr_array_new_with_free_func((GDestroyNotify)kq_queue_unref);
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init(&it, c->queues);
  while (g_hash_table_iter_next(&it, NULL, &value))
    g_ptr_array_add(queues, kq_queue_ref(value));
  g_mutex_unlock(&c->lock);
  for (guint i = 0; i < queues->len; i++)
    kq_queue_close(queues->pdata[i], FALSE);
  kq_syncer_free(c->syncer);  /* runs what is still scheduled against closed queues */
  kq_journal_finish_closes(); /* no descriptor of the folder's files stays open */
  kq_timer_free(c->timer);
  g_hash_table_unref(c->children);
  g_hash_table_iter_init(&it, c->queues);
  while (g_hash_table_iter_next(&it, NULL, &value)) {
    ((KqQueue *)value)->expire_owner = NULL;
    kq_queue_unref(value);
  }
  g_hash_table_unref(c->queues);
  g_hash_table_unref(c->alias_stats);
  if (c->lock_fd >= 0) {
    g_autofree gchar *lock_path = g_build_filename(c->path, LOCK_FILE_NAME, NULL);
    unlink(lock_path);
    close(c->lock_fd);
  }
  if (c->config != NULL)
    kq_config_set_free(c->config);
  g_mutex_clear(&c->lock);
  g_free(c->path);
  g_free(c);
}

KqQueue *kq_collection_get(KqCollection *c, const gchar *name, gboolean create, GError **error)
{
  g_mutex_lock(&c->lock);
  KqQueue *q = get_locked(c, name, create, error);
  if (q != NULL)
    kq_queue_ref(q);
  g_mutex_unlock(&c->lock);
  return q;
}

gboolean kq_collection_is_alias(KqCollection *c, const gchar *name)
{
  g_mutex_lock(&c->lock);
  gboolean alias = is_alias_locked(c, name);
  g_mutex_unlock(&c->lock);
  return alias;
}

/* The queues an add writes to (refs). Every set and its durability wait look them up, and a
 * queue without aliases or fanout children is one target: that case allocates nothing. */
#define TARGETS_INLINE 4
typedef struct {
  KqQueue **q;    /* `inline_q` until there are more */
  guint len, cap;
  KqQueue *inline_q[TARGETS_INLINE];
} Targets;

static void targets_add(Targets *t, KqQueue *q)
{
  if (t->len == t->cap) {
    t->cap *= 2;
    if (t->q == t->inline_q)
      t->q = g_memdup2(t->inline_q, sizeof t->inline_q[0] * t->len);
    t->q = g_renew(KqQueue *, t->q, t->cap);
  }
  t->q[t->len++] = q;
}

static void targets_clear(Targets *t)
{
  for (guint i = 0; i < t->len; i++)
    kq_queue_unref(t->q[i]);
  if (t->q != t->inline_q)
    g_free(t->q);
  t->q = t->inline_q;
  t->len = 0;
  t->cap = TARGETS_INLINE;
}

/* Fills `t` with the queues an add to `name` writes to, or returns FALSE with an error (`t`
 * empty). `t` is cleared with targets_clear either way. */
static gboolean targets_of(KqCollection *c, const gchar *name, Targets *t, gboolean *is_alias,
                           GError **error)
{
  t->q = t->inline_q;
  t->len = 0;
  t->cap = TARGETS_INLINE;
  if (name == NULL)
    return kq_queue_name_is_valid(name, error); /* FALSE, with the validator's error */
  g_mutex_lock(&c->lock);
  const gchar *const *dests = c->config ? kq_config_set_alias_destinations(c->config, name) : NULL;
  const gchar *single[] = { name, NULL };
  *is_alias = dests != NULL;
  for (const gchar *const *d = dests ? dests : single; *d != NULL; d++) {
    KqQueue *q = get_locked(c, *d, TRUE, error);
    if (q == NULL) {
      g_mutex_unlock(&c->lock);
      targets_clear(t);
      return FALSE;
    }
    /* fanoutOnly keeps a parent empty; a child that inherited it still stores its items */
    if (!q->settings.fanout_only || strchr(*d, '+') != NULL)
      targets_add(t, kq_queue_ref(q));
    GPtrArray *kids = g_hash_table_size(c->children) > 0 ? g_hash_table_lookup(c->children, *d)
                                                          : NULL;
    for (guint i = 0; kids != NULL && i < kids->len; i++)
      targets_add(t, kq_queue_ref(kids->pdata[i]));
  }
  g_mutex_unlock(&c->lock);
  return TRUE;
}

/* `whole`: NULL, or an item of the bytes that a queue may hold instead of a copy. */
G_ALWAYS_INLINE static inline gboolean collection_add(KqCollection *c, const gchar *name,
                                                      const void *data, gsize len, KqItem *whole,
                                                      gint64 expiry, GError **error)
{
  gboolean is_alias = FALSE;
  Targets targets;
  if (!targets_of(c, name, &targets, &is_alias, error))
    return FALSE;
  /* The first target decides success (the queue itself, or an alias's first destination);
   * fanout children that refuse an item just miss it, as in Kestrel. */
  gboolean ok = TRUE;
  for (guint i = 0; i < targets.len; i++) {
    g_autoptr(GError) local = NULL;
    gboolean added = whole != NULL ? kq_queue_add_whole(targets.q[i], whole, expiry, &local)
                                   : kq_queue_add(targets.q[i], data, len, expiry, &local);
    if (!added) {
      if (i == 0) {
        g_propagate_error(error, g_steal_pointer(&local));
        ok = FALSE;
        break;
      }
      g_debug("fanout add to '%s' refused: %s", kq_queue_get_name(targets.q[i]),
              local->message);
    }
  }
  targets_clear(&targets);
  /* Counted here, not summed over the queues, so that deleting a queue never lowers it. */
  if (ok)
    __atomic_add_fetch(&c->total_items, 1, __ATOMIC_RELAXED);
  if (is_alias && ok) {
    g_mutex_lock(&c->lock);
    AliasStats *s = g_hash_table_lookup(c->alias_stats, name);
    if (s == NULL) {
      s = g_new0(AliasStats, 1);
      g_hash_table_insert(c->alias_stats, g_strdup(name), s);
    }
    s->put_items++;
    s->put_bytes += (gint64)len;
    g_mutex_unlock(&c->lock);
  }
  return ok;
}

gboolean kq_collection_add(KqCollection *c, const gchar *name, const void *data, gsize len,
                           gint64 expiry, GError **error)
{
  return collection_add(c, name, data, len, NULL, expiry, error);
}

gboolean kq_collection_add_item(KqCollection *c, const gchar *name, KqItem *item, gint64 expiry,
                                GError **error)
{
  return collection_add(c, name, item->data, item->len, item, expiry, error);
}

typedef struct {
  gint remaining;
  KqDurableFunc func;
  gpointer user_data;
} DurableGroup;

static void durable_group_done(gpointer data)
{
  DurableGroup *g = data;
  if (g_atomic_int_dec_and_test(&g->remaining)) {
    g->func(g->user_data);
    g_free(g);
  }
}

gboolean kq_collection_when_durable(KqCollection *c, const gchar *name, KqDurableFunc func,
                                    gpointer user_data)
{
  gboolean is_alias = FALSE;
  Targets targets;
  gboolean done = TRUE;
  if (!queue_sync_in_use())
    return TRUE;
  if (!targets_of(c, name, &targets, &is_alias, NULL) || targets.len == 0) {
    /* nothing to wait for */
  } else if (targets.len == 1) {
    done = kq_queue_when_durable(targets.q[0], func, user_data);
  } else {
    DurableGroup *g = g_new(DurableGroup, 1);
    g->remaining = 1;  /* held until every queue is registered */
    g->func = func;
    g->user_data = user_data;
    for (guint i = 0; i < targets.len; i++) {
      g_atomic_int_inc(&g->remaining);
      if (kq_queue_when_durable(targets.q[i], durable_group_done, g))
        g_atomic_int_dec_and_test(&g->remaining);
    }
    done = g_atomic_int_dec_and_test(&g->remaining);
    if (done)
      g_free(g);
  }
  targets_clear(&targets);
  return done;
}

/* Detach `q` from the tables (collection lock held); returns the table's reference. */
static KqQueue *unlink_locked(KqCollection *c, const gchar *name)
{
  gpointer key = NULL, value = NULL;
  if (!g_hash_table_steal_extended(c->queues, name, &key, &value))
    return NULL;
  g_free(key);
  KqQueue *q = value;
  g_autofree gchar *parent = parent_name(name);
  GPtrArray *kids = parent != NULL ? g_hash_table_lookup(c->children, parent) : NULL;
  if (kids != NULL)
    g_ptr_array_remove(kids, q);
  return q;
}

static gboolean delete_queue(KqCollection *c, const gchar *name, gboolean expired)
{
  g_mutex_lock(&c->lock);
  if (is_alias_locked(c, name)) {
    g_mutex_unlock(&c->lock);
    return TRUE;
  }
  KqQueue *q = unlink_locked(c, name);
  if (q != NULL) {
    c->queue_deletes++;
    if (expired)
      c->queue_expires++;
  }
  g_mutex_unlock(&c->lock);
  if (q == NULL)
    return FALSE;
  kq_queue_close(q, TRUE);
  q->expire_owner = NULL;
  /* closed: no operation can add to these any more */
  KqQueueOpStats ops;
  kq_queue_get_op_stats(q, &ops);
  g_mutex_lock(&c->lock);
  op_stats_merge(&c->retired_ops, &ops);
  g_mutex_unlock(&c->lock);
  kq_queue_unref(q);
  return TRUE;
}

gboolean kq_collection_delete(KqCollection *c, const gchar *name, GError **error)
{
  if (!kq_queue_name_is_valid(name, error))
    return FALSE;
  delete_queue(c, name, FALSE);
  return TRUE;
}

/* The queue for flush and flush_expired: as in Kestrel, they do not create it. NULL with no
 * error when it does not exist. */
static KqQueue *existing_queue(KqCollection *c, const gchar *name, gboolean *bad_name,
                               GError **error)
{
  GError *local = NULL;
  KqQueue *q = kq_collection_get(c, name, FALSE, &local);
  *bad_name = local != NULL;
  if (local != NULL)
    g_propagate_error(error, local);
  return q;
}

gboolean kq_collection_flush(KqCollection *c, const gchar *name, GError **error)
{
  gboolean bad_name;

  if (kq_collection_is_alias(c, name))
    return TRUE;
  g_autoptr(KqQueue) q = existing_queue(c, name, &bad_name, error);
  if (q == NULL)
    return !bad_name;
  return kq_queue_try_flush(q, error);
}

static GPtrArray *all_queues(KqCollection *c)
{
  GPtrArray *queues = g_ptr_array_new_with_free_func((GDestroyNotify)kq_queue_unref);
  g_mutex_lock(&c->lock);
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init(&it, c->queues);
  while (g_hash_table_iter_next(&it, NULL, &value))
    g_ptr_array_add(queues, kq_queue_ref(value));
  g_mutex_unlock(&c->lock);
  return queues;
}

void kq_collection_flush_all(KqCollection *c)
{
  g_autoptr(GPtrArray) queues = all_queues(c);
  for (guint i = 0; i < queues->len; i++)
    kq_queue_flush(queues->pdata[i]);
}

gint64 kq_collection_flush_expired(KqCollection *c, const gchar *name, GError **error)
{
  gboolean bad_name;

  if (kq_collection_is_alias(c, name))
    return 0;
  g_autoptr(KqQueue) q = existing_queue(c, name, &bad_name, error);
  if (q == NULL)
    return bad_name ? -1 : 0;
  return kq_queue_flush_expired(q, FALSE);
}

gint64 kq_collection_flush_all_expired(KqCollection *c)
{
  g_autoptr(GPtrArray) queues = all_queues(c);
  gint64 n = 0;
  for (guint i = 0; i < queues->len; i++)
    n += kq_queue_flush_expired(queues->pdata[i], FALSE);
  return n;
}

gint64 kq_collection_sweep(KqCollection *c)
{
  g_autoptr(GPtrArray) queues = all_queues(c);
  gint64 n = 0;
  for (guint i = 0; i < queues->len; i++) {
    KqQueue *q = queues->pdata[i];
    n += kq_queue_flush_expired(q, TRUE);
    kq_queue_timeout_open_reads(q);
    if (kq_queue_is_stale(q)) {
      g_message("deleting queue '%s': empty for longer than maxQueueAge", q->name);
      delete_queue(c, q->name, TRUE);
    }
  }
  return n;
}

/* A queue's expire_into: the items that expired out of it go to `queue_name`. */
static void expire_into(gpointer owner, const gchar *queue_name, GPtrArray *items)
{
  KqCollection *c = owner;
  g_autoptr(GError) error = NULL;
  g_autoptr(KqQueue) dest = kq_collection_get(c, queue_name, TRUE, &error);
  if (dest == NULL) {
    g_warning("expireToQueue '%s': %s; %u expired items dropped", queue_name, error->message,
              items->len);
    return;
  }
  for (guint i = 0; i < items->len; i++) {
    g_autoptr(GError) local = NULL;
    if (!kq_queue_add_item(dest, items->pdata[i], &local))
      g_warning("expireToQueue '%s' refused an item: %s", queue_name, local->message);
  }
}

void kq_collection_reload(KqCollection *c, KqConfigSet *config)
{
  g_autoptr(GPtrArray) queues = NULL;
  g_mutex_lock(&c->lock);
  if (c->config != NULL)
    kq_config_set_free(c->config);
  c->config = config;
  g_mutex_unlock(&c->lock);
  queues = all_queues(c);
  for (guint i = 0; i < queues->len; i++) {
    KqQueue *q = queues->pdata[i];
    KqQueueSettings settings;
    g_mutex_lock(&c->lock);
    resolve_settings(c, q->name, &settings);
    g_mutex_unlock(&c->lock);
    kq_queue_set_settings(q, &settings);
    kq_settings_clear(&settings);
  }
}

GPtrArray *kq_collection_queue_names(KqCollection *c)
{
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  g_mutex_lock(&c->lock);
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init(&it, c->queues);
  while (g_hash_table_iter_next(&it, &key, NULL))
    g_ptr_array_add(names, g_strdup(key));
  g_mutex_unlock(&c->lock);
  g_ptr_array_sort(names, name_ptr_compare);
  return names;
}

GPtrArray *kq_collection_alias_names(KqCollection *c)
{
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  g_mutex_lock(&c->lock);
  if (c->config != NULL) {
    g_autoptr(GPtrArray) aliases = kq_config_set_alias_names(c->config);
    for (guint i = 0; i < aliases->len; i++)
      g_ptr_array_add(names, g_strdup(aliases->pdata[i]));
  }
  g_mutex_unlock(&c->lock);
  return names;
}

void kq_collection_get_stats(KqCollection *c, KqCollectionStats *s)
{
  memset(s, 0, sizeof(*s));
  g_autoptr(GPtrArray) queues = all_queues(c);
  for (guint i = 0; i < queues->len; i++) {
    KqQueueStats qs;
    kq_queue_get_stats(queues->pdata[i], &qs);
    s->curr_items += qs.items;
    s->bytes += qs.bytes;
  }
  s->total_items = __atomic_load_n(&c->total_items, __ATOMIC_RELAXED);
  g_mutex_lock(&c->lock);
  s->queue_creates = c->queue_creates;
  s->queue_deletes = c->queue_deletes;
  s->queue_expires = c->queue_expires;
  g_mutex_unlock(&c->lock);
}

void kq_collection_get_op_stats(KqCollection *c, KqQueueOpStats *stats)
{
  memset(stats, 0, sizeof(*stats));
  g_autoptr(GPtrArray) queues = all_queues(c);
  for (guint i = 0; i < queues->len; i++) {
    KqQueueOpStats ops;
    kq_queue_get_op_stats(queues->pdata[i], &ops);
    op_stats_merge(stats, &ops);
  }
  g_mutex_lock(&c->lock);
  op_stats_merge(stats, &c->retired_ops);
  g_mutex_unlock(&c->lock);
}

void kq_collection_get_alias_stats(KqCollection *c, const gchar *name, gint64 *put_items,
                                   gint64 *put_bytes)
{
  g_mutex_lock(&c->lock);
  AliasStats *s = g_hash_table_lookup(c->alias_stats, name);
  *put_items = s ? s->put_items : 0;
  *put_bytes = s ? s->put_bytes : 0;
  g_mutex_unlock(&c->lock);
}

gchar *kq_collection_children(KqCollection *c, const gchar *name)
{
  GString *out = g_string_new(NULL);
  g_mutex_lock(&c->lock);
  const gchar *const *dests = c->config ? kq_config_set_alias_destinations(c->config, name) : NULL;
  if (dests != NULL) {
    for (const gchar *const *d = dests; *d != NULL; d++)
      g_string_append_printf(out, "%s%s", out->len ? "," : "", *d);
  } else {
    GPtrArray *kids = g_hash_table_lookup(c->children, name);
    for (guint i = 0; kids != NULL && i < kids->len; i++)
      g_string_append_printf(out, "%s%s", out->len ? "," : "",
                             kq_queue_get_name(kids->pdata[i]));
  }
  g_mutex_unlock(&c->lock);
  return g_string_free(out, FALSE);
}

const gchar *kq_collection_get_path(KqCollection *c)
{
  return c->path;
}
