import com.jcraft.jsch.ChannelSftp;
import com.jcraft.jsch.JSch;
import com.jcraft.jsch.Session;
import com.jcraft.jsch.SftpException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * JSch (com.jcraft.jsch, Debian's libjsch-java 0.1.55): the Java SSH library
 * of Ant's scp/sftp tasks, Jenkins plugins and many Java integration tools,
 * with its own, older algorithms (ECDH or group14-sha1 key exchange, an
 * ssh-rsa host key signed with SHA-1, AES-CTR with HMAC), driven against a
 * capstan gateway for test/sftp/jsch.test.ts.
 *
 * Usage: java -cp jsch.jar JschClient.java PORT USER PASSWORD LOCAL_IN LOCAL_OUT
 *        java -cp jsch.jar JschClient.java PORT USER key=PEM_KEY_FILE
 * (the second logs in with an RSA key, which JSch 0.1.55 signs with SHA-1,
 * and prints the host key type and the working directory)
 *
 * Prints one JSON object of what it saw; exits non-zero when a step that
 * must succeed throws.
 */
public class JschClient {
  public static void main(String[] args) throws Exception {
    JSch jsch = new JSch();
    boolean withKey = args[2].startsWith("key=");
    if (withKey) jsch.addIdentity(args[2].substring(4));
    Session session = jsch.getSession(args[1], "127.0.0.1", Integer.parseInt(args[0]));
    if (!withKey) session.setPassword(args[2]);
    // The gateway was started on loopback a moment ago with a fresh host key.
    session.setConfig("StrictHostKeyChecking", "no");
    session.connect(20_000);
    ChannelSftp sftp = (ChannelSftp) session.openChannel("sftp");
    sftp.connect(20_000);
    StringBuilder out = new StringBuilder("{");
    field(out, "hostKey", quote(session.getHostKey().getType()));
    field(out, "version", quote(sftp.version()));
    if (withKey) {
      field(out, "pwd", quote(sftp.pwd()));
      out.setLength(out.length() - 2);
      System.out.println(out.append("}"));
      sftp.disconnect();
      session.disconnect();
      return;
    }

    sftp.mkdir("/js");
    sftp.cd("/js");
    sftp.put(args[3], "up.bin");
    sftp.get("up.bin", args[4]);

    sftp.put(new ByteArrayInputStream(bytes("hello ")), "append.txt");
    sftp.put(new ByteArrayInputStream(bytes("world")), "append.txt", ChannelSftp.APPEND);
    field(out, "appended", quote(read(sftp, "append.txt")));
    sftp.put(new ByteArrayInputStream(bytes("0123456789")), "resume.txt");
    // RESUME skips what the server already holds (its size) and sends the rest.
    sftp.put(new ByteArrayInputStream(bytes("0123456789abcdef")), "resume.txt", ChannelSftp.RESUME);
    field(out, "resumed", quote(read(sftp, "resume.txt")));

    try (OutputStream stream = sftp.put("stream.bin")) {
      for (int i = 0; i < 100; i++) stream.write(new byte[10_000]);
    }
    field(out, "streamSize", Long.toString(sftp.stat("stream.bin").getSize()));
    // A long skip: get(path, monitor, int) is the deprecated transfer-mode overload, which reads from 0.
    try (InputStream tail = sftp.get("resume.txt", null, 10L)) {
      field(out, "skipped", quote(new String(tail.readAllBytes(), StandardCharsets.UTF_8)));
    }

    sftp.setMtime("up.bin", 1_000_000_000);
    field(out, "mtime", Integer.toString(sftp.stat("up.bin").getMTime()));
    // JSch sends the target first, as OpenSSH's client does.
    sftp.symlink("up.bin", "link");
    field(out, "readlink", quote(sftp.readlink("link")));
    field(out, "linkIsLink", Boolean.toString(sftp.lstat("link").isLink()));
    field(out, "throughLinkSize", Long.toString(sftp.stat("link").getSize()));
    sftp.rename("append.txt", "renamed.txt");
    List<String> names = new ArrayList<>();
    for (Object entry : sftp.ls("/js")) names.add(((ChannelSftp.LsEntry) entry).getFilename());
    Collections.sort(names);
    field(out, "ls", "[" + String.join(", ", names.stream().map(JschClient::quote).toList()) + "]");
    field(out, "pwd", quote(sftp.pwd()));

    field(out, "getMissing", Integer.toString(failure(() -> sftp.get("nope", new ByteArrayOutputStream()))));
    field(out, "rmdirNotEmpty", Integer.toString(failure(() -> sftp.rmdir("/js"))));
    field(out, "mkdirExisting", Integer.toString(failure(() -> sftp.mkdir("/js"))));
    field(out, "putInMissingDir", Integer.toString(failure(() -> sftp.put(new ByteArrayInputStream(bytes("x")), "/js/nodir/x"))));
    sftp.rm("stream.bin");
    field(out, "afterRm", Boolean.toString(failure(() -> sftp.stat("stream.bin")) == ChannelSftp.SSH_FX_NO_SUCH_FILE));
    out.setLength(out.length() - 2);
    System.out.println(out.append("}"));
    sftp.disconnect();
    session.disconnect();
  }

  interface Step {
    void run() throws SftpException;
  }

  /** The SFTP status a step that must fail got, or -1 if it succeeded. */
  static int failure(Step step) {
    try {
      step.run();
      return -1;
    } catch (SftpException e) {
      return e.id;
    }
  }

  static String read(ChannelSftp sftp, String path) throws SftpException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    sftp.get(path, bytes);
    return bytes.toString(StandardCharsets.UTF_8);
  }

  static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static void field(StringBuilder out, String name, String json) {
    out.append(quote(name)).append(": ").append(json).append(", ");
  }

  /** A JSON string of plain text (the names and contents here hold no quotes or backslashes). */
  static String quote(String s) {
    return "\"" + s + "\"";
  }
}
