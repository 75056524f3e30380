// DynamoDB Local on 127.0.0.1 only: the jar has no bind-address option (its Jetty server listens on
// every interface), so this launcher builds the server the way the jar's own main does, points its
// connector at loopback and an ephemeral port before starting it, and prints "LISTENING <port>".
// Run in source-file mode with the jar and its libraries on the class path (tests/support/dynamodb_local).
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDBLocal {
    public static void main(String[] args) throws Exception {
        // The CLI refuses port 0; this launcher binds an ephemeral port itself and prints it.
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(withPort(args));
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);
        for (Connector connector : server.getConnectors()) {
            ((ServerConnector) connector).setHost("127.0.0.1");
            ((ServerConnector) connector).setPort(0);
        }
        proxy.start();
        System.out.println("LISTENING " + ((ServerConnector) server.getConnectors()[0]).getLocalPort());
        System.out.flush();
        proxy.join();
    }

    private static String[] withPort(String[] args) {
        String[] all = java.util.Arrays.copyOf(args, args.length + 2);
        all[args.length] = "-port";
        all[args.length + 1] = "8000";
        return all;
    }
}
