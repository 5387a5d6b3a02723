/*
 * spymemcached (Debian's libspymemcached-java) against kestreld's memcache port in strict mode
 * (memcacheStrict = true). Run it under `java -ea`: spymemcached then asserts that every VALUE
 * line carries the key it asked for, and a mismatch kills its I/O thread, so the gets below
 * time out instead of answering.
 *
 * Usage: java -ea MemcacheStrictClient <host> <port>; prints "OK" and exits 0 on success.
 */
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;

import net.spy.memcached.MemcachedClient;

public class MemcacheStrictClient {
  private static void check(boolean ok, String what) {
    if (!ok) {
      throw new IllegalStateException("failed: " + what);
    }
  }

  private static boolean assertionsOn() {
    boolean on = false;
    assert on = true;
    return on;
  }

  public static void main(String[] args) throws Exception {
    check(assertionsOn(), "run with java -ea");
    MemcachedClient client =
        new MemcachedClient(new InetSocketAddress(args[0], Integer.parseInt(args[1])));
    try {
      check(client.set("jobs", 0, "one").get(5, TimeUnit.SECONDS), "set one");
      check(client.set("jobs", 0, "two").get(5, TimeUnit.SECONDS), "set two");

      // A reliable read: the key comes back as sent, options included.
      check("one".equals(client.get("jobs/open")), "get jobs/open");
      check(client.get("jobs/close") == null, "get jobs/close");
      check("two".equals(client.get("jobs/t=100")), "get jobs/t=100");
      check(client.get("jobs/t=10") == null, "empty queue");

      check(client.set("other", 0, "x").get(5, TimeUnit.SECONDS), "set other");
      check(client.flush().get(5, TimeUnit.SECONDS), "flush_all");
      check(client.get("other") == null, "flush_all emptied the queue");

      check(client.set("gone", 0, "x").get(5, TimeUnit.SECONDS), "set gone");
      check(client.delete("gone").get(5, TimeUnit.SECONDS), "delete");
    } finally {
      client.shutdown(5, TimeUnit.SECONDS);
    }
    System.out.println("OK");
  }
}
