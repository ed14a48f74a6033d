/**
 * What Blaine needs from an encrypting FUSE file system: make a cipher
 * directory, mount it with a password, say its version. The password always
 * travels on the child's stdin, never in its argv or environment.
 */
export interface CipherTool {
  readonly name: CipherName;
  /** The program that must be installed. */
  readonly program: string;
  /** Whether `cipherDir` already holds this tool's configuration. */
  isInitialised(cipherDir: string): boolean;
  /** Creates an empty encrypted file system in the (empty) `cipherDir`. */
  init(cipherDir: string, password: string): Promise<void>;
  /** Mounts `cipherDir` at `mountpoint`; "wrong-key" when the password does not open it. */
  mount(cipherDir: string, mountpoint: string, password: string, options: CipherMountOptions): Promise<"mounted" | "wrong-key">;
  /** The installed version, or undefined when the program is missing. */
  version(): Promise<string | undefined>;
}

export interface CipherMountOptions {
  readonly readonly: boolean;
  /** Shown as the mount's source in mountinfo, so a mount can be traced to its disk. */
  readonly fsname: string;
}

export const CIPHER_NAMES = ["gocryptfs", "securefs"] as const;
export type CipherName = (typeof CIPHER_NAMES)[number];

export function isCipherName(value: unknown): value is CipherName {
  return CIPHER_NAMES.includes(value as CipherName);
}

/** The last lines of a tool's stderr, for an error message (it never echoes the password). */
export function lastLines(stderr: string, count = 3): string {
  return stderr.trim().split("\n").filter((line) => !/syslog/i.test(line)).slice(-count).join(" ");
}
