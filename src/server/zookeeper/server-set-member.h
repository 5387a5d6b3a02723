/* What one kestreld announces in a ZooKeeper server set: the Twitter ServerSet member JSON
 * (com.twitter.thrift.ServiceInstance as Twitter's JsonCodec writes it), and the address
 * put into it. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  const gchar *name; /* "memcache", "thrift", "text" */
  gint port;
} KqZkEndpoint;

/* The address to advertise for `listen_address`: `advertise` when set; otherwise the listen
 * address itself unless it is a wildcard or loopback one, which clients elsewhere cannot
 * reach; then the machine's first address that is neither loopback nor link-local (IPv4
 * first). Never NULL: the listen address is the last resort. */
gchar *kq_zk_advertised_host(const gchar *listen_address, const gchar *advertise);

/* {"serviceEndpoint":{"host":H,"port":P},"additionalEndpoints":{NAME:{...},...},
 *  "status":"ALIVE"[,"shard":N]}. The service endpoint is the first of `endpoints` (Kestrel:
 * memcache, then thrift, then text); every endpoint is also an additional one. `shard` < 0
 * leaves it out. */
gchar *kq_zk_member_json(const gchar *host, const KqZkEndpoint *endpoints, gsize n_endpoints,
                         gint shard);

G_END_DECLS
