/*
 * A Java client round trip against kestreld's Thrift port, with code generated from
 * thrift/kestrel.thrift by `thrift --gen java` and Debian's libthrift-java (framed transport,
 * binary protocol, as Kestrel's own clients use).
 *
 * Usage: java KestrelRoundTrip <host> <port>; prints "OK" and exits 0 on success.
 */
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import net.lag.kestrel.thrift.Item;
import net.lag.kestrel.thrift.Kestrel;
import net.lag.kestrel.thrift.QueueInfo;
import net.lag.kestrel.thrift.Status;
import org.apache.thrift.TApplicationException;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.transport.layered.TFramedTransport;
import org.apache.thrift.transport.TSocket;
import org.apache.thrift.transport.TTransport;

public class KestrelRoundTrip {
  private static void check(boolean ok, String what) {
    if (!ok) {
      throw new AssertionError("failed: " + what);
    }
  }

  private static ByteBuffer bytes(String s) {
    return ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
  }

  private static String text(ByteBuffer b) {
    byte[] out = new byte[b.remaining()];
    b.duplicate().get(out);
    return new String(out, StandardCharsets.UTF_8);
  }

  public static void main(String[] args) throws Exception {
    TTransport transport = new TFramedTransport(new TSocket(args[0], Integer.parseInt(args[1])));
    transport.open();
    Kestrel.Client client = new Kestrel.Client(new TBinaryProtocol(transport));

    check(!client.get_version().isEmpty(), "get_version");
    check(client.current_status() == Status.UP, "current_status");
    check(client.put("java", Arrays.asList(bytes("one"), bytes("two"), bytes("three")), 0) == 3,
          "put");

    QueueInfo info = client.peek("java");
    check(info.isSetHead_item() && text(info.head_item).equals("one"), "peek head");
    check(info.items == 3, "peek items");

    List<Item> plain = client.get("java", 1, 0, 0);
    check(plain.size() == 1 && text(plain.get(0).data).equals("one") && plain.get(0).id == 0,
          "plain get");

    List<Item> open = client.get("java", 1, 0, 60000);
    check(open.size() == 1 && open.get(0).id != 0, "open read id");
    Set<Long> ids = new HashSet<>();
    ids.add(open.get(0).id);
    check(client.abort("java", ids) == 1, "abort");
    open = client.get("java", 1, 0, 60000);
    check(text(open.get(0).data).equals("two"), "aborted item back at the head");
    ids.clear();
    ids.add(open.get(0).id);
    check(client.confirm("java", ids) == 1, "confirm");
    check(client.confirm("java", ids) == 0, "confirm twice");

    List<Item> timed = client.get("java", 5, 100, 0);
    check(timed.size() == 1 && text(timed.get(0).data).equals("three"), "get with timeout");
    check(client.peek("java").isSetHead_item() == false, "empty peek has no head item");

    try {
      client.put("bad/name", Arrays.asList(bytes("x")), 0);
      check(false, "bad queue name accepted");
    } catch (TApplicationException expected) {
      // the connection stays usable
    }
    client.flush_queue("java");
    client.delete_queue("java");
    check(!client.get_version().isEmpty(), "connection usable after an exception");
    transport.close();
    System.out.println("OK");
  }
}
