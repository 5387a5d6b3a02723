// Reads Kestrel server sets the way Twitter's ServerSet readers do: the children of a set
// whose names start with "member_", each one's data decoded as the JSON of a
// com.twitter.thrift.ServiceInstance (serviceEndpoint, additionalEndpoints, status, shard).
// Decoding is strict: an unknown field, a missing endpoint or a status outside the Status enum
// fails. Prints one line per member: SET NODE HOST:PORT name=HOST:PORT... STATUS [shard=N].
//
// Usage: java ServerSetReader HOST:PORT PATH...
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;

public class ServerSetReader {
  public enum Status { DEAD, STARTING, ALIVE, STOPPING, STOPPED, WARNING }

  public static class Endpoint {
    public String host;
    public int port;
  }

  public static class ServiceInstance {
    public Endpoint serviceEndpoint;
    public Map<String, Endpoint> additionalEndpoints;
    public Status status;
    public Integer shard;
  }

  public static void main(String[] args) throws Exception {
    CountDownLatch connected = new CountDownLatch(1);
    ZooKeeper zk = new ZooKeeper(args[0], 10000, event -> {
      if (event.getState() == Watcher.Event.KeeperState.SyncConnected)
        connected.countDown();
    });
    if (!connected.await(20, TimeUnit.SECONDS))
      throw new IllegalStateException("no ZooKeeper session");
    ObjectMapper json = new ObjectMapper()
        .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, true)
        .configure(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES, true)
        .configure(DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES, true);
    for (int i = 1; i < args.length; i++) {
      List<String> children = zk.getChildren(args[i], false);
      Collections.sort(children);
      for (String child : children) {
        if (!child.startsWith("member_"))
          continue;
        byte[] data = zk.getData(args[i] + "/" + child, false, null);
        ServiceInstance member = json.readValue(new String(data, StandardCharsets.UTF_8),
                                                ServiceInstance.class);
        if (member.serviceEndpoint == null || member.serviceEndpoint.host == null ||
            member.additionalEndpoints == null || member.status == null)
          throw new IllegalStateException("incomplete member " + child);
        StringBuilder line = new StringBuilder();
        line.append(args[i]).append(' ').append(child).append(' ')
            .append(member.serviceEndpoint.host).append(':').append(member.serviceEndpoint.port);
        for (Map.Entry<String, Endpoint> e : new TreeMap<>(member.additionalEndpoints).entrySet())
          line.append(' ').append(e.getKey()).append('=').append(e.getValue().host).append(':')
              .append(e.getValue().port);
        line.append(' ').append(member.status);
        if (member.shard != null)
          line.append(" shard=").append(member.shard);
        System.out.println(line);
      }
    }
    zk.close();
  }
}
