/* The ZooKeeper server-set member data: Twitter's ServiceInstance JSON, and the address put
 * into it. */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>

#include <glib.h>

#include "zookeeper/server-set-member.h"

static void
test_json(void)
{
  const KqZkEndpoint all[] = { { "memcache", 22133 }, { "thrift", 2229 }, { "text", 2222 } };
  const KqZkEndpoint thrift_only[] = { { "thrift", 2229 } };
  g_autofree gchar *json = kq_zk_member_json("10.0.0.7", all, G_N_ELEMENTS(all), -1);
  g_autofree gchar *sharded = kq_zk_member_json("10.0.0.7", thrift_only, 1, 12);

  g_assert_cmpstr(json, ==,
                  "{\"serviceEndpoint\":{\"host\":\"10.0.0.7\",\"port\":22133},"
                  "\"additionalEndpoints\":{\"memcache\":{\"host\":\"10.0.0.7\",\"port\":22133},"
                  "\"thrift\":{\"host\":\"10.0.0.7\",\"port\":2229},"
                  "\"text\":{\"host\":\"10.0.0.7\",\"port\":2222}},\"status\":\"ALIVE\"}");
  g_assert_cmpstr(sharded, ==,
                  "{\"serviceEndpoint\":{\"host\":\"10.0.0.7\",\"port\":2229},"
                  "\"additionalEndpoints\":{\"thrift\":{\"host\":\"10.0.0.7\",\"port\":2229}},"
                  "\"status\":\"ALIVE\",\"shard\":12}");
}

static gboolean
is_reachable_ip(const gchar *text)
{
  struct in_addr v4;
  struct in6_addr v6;

  if (inet_pton(AF_INET, text, &v4) == 1)
    return v4.s_addr != 0 && (ntohl(v4.s_addr) >> 24) != 127;
  if (inet_pton(AF_INET6, text, &v6) == 1)
    return !IN6_IS_ADDR_UNSPECIFIED(&v6) && !IN6_IS_ADDR_LOOPBACK(&v6);
  return FALSE;
}

static void
test_advertised_host(void)
{
  const gchar *unreachable[] = { "0.0.0.0", "127.0.0.1", "127.1.2.3", "::", "::1", "localhost" };
  g_autofree gchar *given = kq_zk_advertised_host("0.0.0.0", "192.0.2.9");
  g_autofree gchar *plain = kq_zk_advertised_host("10.1.2.3", NULL);
  g_autofree gchar *name = kq_zk_advertised_host("kestrel1.example.com", NULL);
  g_autofree gchar *machine = kq_zk_advertised_host("0.0.0.0", NULL);

  g_assert_cmpstr(given, ==, "192.0.2.9");
  g_assert_cmpstr(plain, ==, "10.1.2.3");
  g_assert_cmpstr(name, ==, "kestrel1.example.com");
  /* The machine's address replaces every wildcard or loopback one alike (a machine with
   * loopback only keeps what it was given, with a warning). */
  for (gsize i = 0; i < G_N_ELEMENTS(unreachable); i++) {
    g_autofree gchar *host = kq_zk_advertised_host(unreachable[i], NULL);
    if (is_reachable_ip(machine))
      g_assert_cmpstr(host, ==, machine);
    else
      g_assert_cmpstr(host, ==, unreachable[i]);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/zk-member/json", test_json);
  g_test_add_func("/zk-member/advertised-host", test_advertised_host);
  return g_test_run();
}
