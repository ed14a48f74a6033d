import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "./cli.ts";

/**
 * A real OpenSSH server for tests on 127.0.0.1: its own host key, a client
 * key in its authorized_keys, all in a temp dir; its log counts the
 * connections made. `sshCommand` is what BLAINE_SSH_COMMAND gets: ssh with
 * the test's key and known_hosts, nothing asked.
 */
export interface TestSshd {
  readonly dir: string;
  readonly port: number;
  readonly user: string;
  /** BLAINE_SSH_COMMAND for this server. */
  readonly sshCommand: string;
  /** ssh://user@127.0.0.1:PORT/PATH */
  url(path: string): string;
  /** Connections sshd accepted (logins) so far. */
  logins(): number;
  /** Stops sshd and removes its directory (once it has exited: it removes its pid file as it goes). */
  stop(): Promise<void>;
}

const SSHD = "/usr/sbin/sshd";

/** Why the server cannot run here, or undefined. */
export function sshdMissing(): string | undefined {
  if (!existsSync(SSHD)) return `${SSHD} is not installed (Debian openssh-server)`;
  if (!Bun.which("ssh") || !Bun.which("ssh-keygen")) return "ssh or ssh-keygen is not installed (Debian openssh-client)";
  if (process.getuid?.() !== 0) return "sshd needs root here (it changes to the logged-in user)";
  return undefined;
}

function freePort(): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

function run(argv: string[]): void {
  const result = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${result.stderr.toString()}`);
}

export async function startSshd(): Promise<TestSshd> {
  const dir = mkdtempSync("/tmp/blaine-sshd-");
  const hostKey = join(dir, "host_ed25519");
  const clientKey = join(dir, "client_ed25519");
  run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey]);
  run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", clientKey]);
  writeFileSync(join(dir, "authorized_keys"), readFileSync(`${clientKey}.pub`));
  chmodSync(join(dir, "authorized_keys"), 0o600);
  mkdirSync("/run/sshd", { recursive: true });
  const port = freePort();
  const log = join(dir, "sshd.log");
  const config = join(dir, "sshd_config");
  writeFileSync(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      "StrictModes no",
      "UsePAM no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      "LogLevel INFO",
      "",
    ].join("\n"),
  );
  const child = Bun.spawn([SSHD, "-D", "-f", config, "-E", log], { stdout: "ignore", stderr: "pipe", stdin: "ignore" });
  await waitFor(() => existsSync(log) && /Server listening on 127\.0\.0\.1 port/.test(readFileSync(log, "utf8")), 15_000, "sshd to listen");
  const knownHosts = join(dir, "known_hosts");
  const sshCommand = `ssh -i ${clientKey} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=${knownHosts} -o LogLevel=ERROR`;
  // Bun's userInfo() can say "unknown" where USER is unset: the passwd name of the uid.
  const user = Bun.spawnSync(["id", "-un"]).stdout.toString().trim();
  return {
    dir,
    port,
    user,
    sshCommand,
    url: (path) => `ssh://${user}@127.0.0.1:${port}${path.startsWith("/") ? "" : "/"}${path}`,
    logins: () => (readFileSync(log, "utf8").match(/Accepted publickey for /g) ?? []).length,
    async stop() {
      child.kill();
      await child.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
