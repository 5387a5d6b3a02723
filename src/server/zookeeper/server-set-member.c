/* The server-set member data (see server-set-member.h). */
#include "config.h"

#include "server-set-member.h"

#include <ifaddrs.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* Wildcard or loopback: an address clients on other machines cannot use. */
static gboolean
is_unreachable_elsewhere(const gchar *address)
{
  struct in_addr v4;
  struct in6_addr v6;

  if (inet_pton(AF_INET, address, &v4) == 1)
    return v4.s_addr == htonl(INADDR_ANY) || (ntohl(v4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, address, &v6) == 1)
    return IN6_IS_ADDR_UNSPECIFIED(&v6) || IN6_IS_ADDR_LOOPBACK(&v6);
  return g_ascii_strcasecmp(address, "localhost") == 0; /* another name: its owner meant it */
}

/* The first address of `family` that is neither loopback nor link-local, as Kestrel's
 * ZooKeeperIP picks it. */
static gchar *
machine_address(int family)
{
  struct ifaddrs *list = NULL;
  gchar *found = NULL;
  char text[INET6_ADDRSTRLEN];

  if (getifaddrs(&list) != 0)
    return NULL;
  for (struct ifaddrs *ifa = list; ifa != NULL && found == NULL; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == NULL || ifa->ifa_addr->sa_family != family)
      continue;
    if (family == AF_INET) {
      const struct in_addr *a = &((const struct sockaddr_in *) (void *) ifa->ifa_addr)->sin_addr;
      guint32 host = ntohl(a->s_addr);
      if ((host >> 24) == 127 || (host >> 16) == 0xa9fe || host == 0)
        continue;
      inet_ntop(AF_INET, a, text, sizeof text);
    } else {
      const struct in6_addr *a =
        &((const struct sockaddr_in6 *) (void *) ifa->ifa_addr)->sin6_addr;
      if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_UNSPECIFIED(a))
        continue;
      inet_ntop(AF_INET6, a, text, sizeof text);
    }
    found = g_strdup(text);
  }
  freeifaddrs(list);
  return found;
}

gchar *
kq_zk_advertised_host(const gchar *listen_address, const gchar *advertise)
{
  gchar *found;

  if (advertise != NULL)
    return g_strdup(advertise);
  if (!is_unreachable_elsewhere(listen_address))
    return g_strdup(listen_address);
  found = machine_address(AF_INET);
  if (found == NULL)
    found = machine_address(AF_INET6);
  if (found == NULL) {
    g_warning("zookeeper: no address other than loopback on this machine; advertising %s "
              "(set [zookeeper] advertiseAddress)", listen_address);
    found = g_strdup(listen_address);
  }
  return found;
}

static void
append_endpoint(GString *json, const gchar *host, gint port)
{
  g_autofree gchar *escaped = g_strescape(host, NULL);

  g_string_append_printf(json, "{\"host\":\"%s\",\"port\":%d}", escaped, port);
}

gchar *
kq_zk_member_json(const gchar *host, const KqZkEndpoint *endpoints, gsize n_endpoints,
                  gint shard)
{
  GString *json = g_string_new("{\"serviceEndpoint\":");

  g_return_val_if_fail(n_endpoints > 0, NULL);
  append_endpoint(json, host, endpoints[0].port);
  g_string_append(json, ",\"additionalEndpoints\":{");
  for (gsize i = 0; i < n_endpoints; i++) {
    g_string_append_printf(json, "%s\"%s\":", i > 0 ? "," : "", endpoints[i].name);
    append_endpoint(json, host, endpoints[i].port);
  }
  g_string_append(json, "},\"status\":\"ALIVE\"");
  if (shard >= 0)
    g_string_append_printf(json, ",\"shard\":%d", shard);
  g_string_append_c(json, '}');
  return g_string_free(json, FALSE);
}
