/* The sync thread. Requests are few (one per dirty queue), so a flat array is enough. */
#include "syncer.h"

typedef struct {
  gpointer target;
  gint64 due;
} SyncRequest;

struct _KqSyncer {
  KqSyncFunc sync;
  KqSyncRefFunc ref;
  GDestroyNotify unref;
  GMutex lock;
  GCond cond;
  GArray *requests;  /* SyncRequest */
  GThread *thread;
  gboolean stopping;
};

static gpointer syncer_thread(gpointer data)
{
  KqSyncer *s = data;
  g_mutex_lock(&s->lock);
  for (;;) {
    if (s->requests->len == 0) {
      if (s->stopping)
        break;
      g_cond_wait(&s->cond, &s->lock);
      continue;
    }
    gint64 now = g_get_monotonic_time(), earliest = G_MAXINT64;
    guint due_index = G_MAXUINT;
    for (guint i = 0; i < s->requests->len; i++) {
      SyncRequest *r = &g_array_index(s->requests, SyncRequest, i);
      if (r->due <= now || s->stopping) {
        due_index = i;
        break;
      }
      earliest = MIN(earliest, r->due);
    }
    if (due_index == G_MAXUINT) {
      g_cond_wait_until(&s->cond, &s->lock, earliest);
      continue;
    }
    gpointer target = g_array_index(s->requests, SyncRequest, due_index).target;
    g_array_remove_index_fast(s->requests, due_index);
    g_mutex_unlock(&s->lock);
    s->sync(target);  /* may schedule the target again */
    s->unref(target);
    g_mutex_lock(&s->lock);
  }
  g_mutex_unlock(&s->lock);
  return NULL;
}

KqSyncer *kq_syncer_new(KqSyncFunc sync, KqSyncRefFunc ref, GDestroyNotify unref)
{
  KqSyncer *s = g_new0(KqSyncer, 1);
  s->sync = sync;
  s->ref = ref;
  s->unref = unref;
  g_mutex_init(&s->lock);
  g_cond_init(&s->cond);
  s->requests = g_array_new(FALSE, FALSE, sizeof(SyncRequest));
  s->thread = g_thread_new("kq-sync", syncer_thread, s);
  return s;
}

void kq_syncer_free(KqSyncer *s)
{
  if (s == NULL)
    return;
  g_mutex_lock(&s->lock);
  s->stopping = TRUE;
  g_cond_signal(&s->cond);
  g_mutex_unlock(&s->lock);
  g_thread_join(s->thread);
  g_array_unref(s->requests);
  g_mutex_clear(&s->lock);
  g_cond_clear(&s->cond);
  g_free(s);
}

void kq_syncer_schedule(KqSyncer *s, gpointer target, gint64 due_us)
{
  g_mutex_lock(&s->lock);
  for (guint i = 0; i < s->requests->len; i++) {
    SyncRequest *r = &g_array_index(s->requests, SyncRequest, i);
    if (r->target == target) {
      r->due = MIN(r->due, due_us);
      g_cond_signal(&s->cond);
      g_mutex_unlock(&s->lock);
      return;
    }
  }
  SyncRequest r = { s->ref(target), due_us };
  g_array_append_val(s->requests, r);
  g_cond_signal(&s->cond);
  g_mutex_unlock(&s->lock);
}
