/**
 * The RabbitMQ releases the end-to-end tests run on, all from Debian's archive: the host's own
 * package (3.10 on Debian 12) and newer releases in Debian root file systems that
 * scripts/broker-chroot.sh builds and caches (4.0 from trixie, 4.3 from forky).
 *
 * A chroot node shares the host's network (loopback ports, epmd), so a test reaches it exactly
 * like a host node. Paths it is given must mean the same file on both sides: each chroot runtime
 * has a work directory that is a real directory inside the root and, at the same absolute path on
 * the host, a symlink to it. Node directories live there.
 *
 * `E2E_BROKER=3.10|4.0|4.3` selects the release for one test process (default: the host's
 * package); `npm run test:e2e` runs every suite on every release (tests/support/e2e-matrix.ts).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const RABBITMQ_LIB = "/usr/lib/rabbitmq";
const ROOT = path.resolve(__dirname, "../..");

export interface MatrixEntry {
  /** major.minor, the value of E2E_BROKER. */
  series: string;
  /** Where the release comes from: the host's package, or a Debian suite in a chroot. */
  source: { kind: "host" } | { kind: "chroot"; suite: "trixie" | "forky" };
  /** The Debian suite the release's local Docker image is built from (scripts/broker-image.sh). */
  imageSuite: ImageSuite;
}

export type ImageSuite = "bookworm" | "trixie" | "forky";

/** Every release the end-to-end tests prove, oldest first. */
export const BROKER_MATRIX: readonly MatrixEntry[] = [
  { series: "3.10", source: { kind: "host" }, imageSuite: "bookworm" },
  { series: "4.0", source: { kind: "chroot", suite: "trixie" }, imageSuite: "trixie" },
  { series: "4.3", source: { kind: "chroot", suite: "forky" }, imageSuite: "forky" },
];

export interface BrokerRuntime {
  series: string;
  /** The chroot's root directory; undefined for the host's package. */
  root: string | undefined;
  /** Parent directory for node directories: the same path inside and outside the chroot. */
  workDir: string;
  /** x.y.z of the installed server, read from its lib directory. */
  versionText: string;
  /** argv to run one of the release's programs (an absolute path as seen by the release). */
  command(program: string, args: readonly string[]): { file: string; args: string[] };
  /** A path of the release's file system as the host sees it. */
  hostPath(p: string): string;
}

export function matrixEntry(series: string): MatrixEntry {
  const entry = BROKER_MATRIX.find((e) => e.series === series);
  if (entry === undefined) {
    throw new Error(`E2E_BROKER=${series}: not in the broker matrix (expected one of ${BROKER_MATRIX.map((e) => e.series).join(", ")})`);
  }
  return entry;
}

function isMountPoint(dir: string): boolean {
  try {
    execFileSync("mountpoint", ["-q", dir]);
    return true;
  } catch {
    return false;
  }
}

/** The script that builds (once) and prints a chroot's root, and how long it may take. */
export const CHROOT_SCRIPT = path.join(ROOT, "scripts/broker-chroot.sh");
export const CHROOT_BUILD_TIMEOUT_MS = 20 * 60_000;

/** The finished root the script printed last, or an error saying what it printed instead. */
export function chrootRootFromOutput(suite: string, stdout: string): string {
  const root = stdout.trim().split("\n").pop() ?? "";
  if (!path.isAbsolute(root) || !fs.existsSync(path.join(root, ".complete"))) {
    throw new Error(`scripts/broker-chroot.sh ${suite} printed no finished root (${JSON.stringify(stdout)})`);
  }
  return root;
}

/** Builds the chroot if the cache has none (minutes), and returns its root. */
export function chrootRoot(suite: string): string {
  const out = execFileSync("bash", [CHROOT_SCRIPT, suite], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: CHROOT_BUILD_TIMEOUT_MS });
  return chrootRootFromOutput(suite, out);
}

/**
 * What a node in the chroot needs from outside: /proc (Erlang reads memory and CPU facts there)
 * and the shared work directory. Idempotent; the mount is left in place for the next run.
 */
export function prepareChroot(root: string, suite: string): string {
  const proc = path.join(root, "proc");
  if (!isMountPoint(proc)) execFileSync("mount", ["-t", "proc", "proc", proc]);
  // The host's own hosts file: without it Erlang cannot resolve localhost (epmd nxdomain).
  fs.copyFileSync("/etc/hosts", path.join(root, "etc/hosts"));
  const workDir = path.join(fs.realpathSync(os.tmpdir()), `rmq-e2e-${suite}`);
  const inside = path.join(root, workDir);
  fs.mkdirSync(inside, { recursive: true, mode: 0o755 });
  let current: string | undefined;
  try {
    current = fs.readlinkSync(workDir);
  } catch {
    current = undefined;
  }
  if (current !== inside) {
    fs.rmSync(workDir, { recursive: true, force: true });
    fs.symlinkSync(inside, workDir);
  }
  return workDir;
}

/** Unmounts what prepareChroot mounted (the matrix runner calls it when a release's suites end). */
export function releaseChroot(root: string): void {
  const proc = path.join(root, "proc");
  if (isMountPoint(proc)) execFileSync("umount", ["-l", proc]);
}

function serverVersion(libDir: string): string {
  const dir = fs.readdirSync(libDir).find((d) => d.startsWith("rabbitmq_server-"));
  if (dir === undefined) throw new Error(`rabbitmq-server is not installed (no ${libDir}/rabbitmq_server-*)`);
  return dir.slice("rabbitmq_server-".length);
}

let cached: BrokerRuntime | undefined;

/** The release this process tests (E2E_BROKER, default the host's package). */
export function brokerRuntime(): BrokerRuntime {
  if (cached !== undefined) return cached;
  const series = process.env.E2E_BROKER;
  const entry = series === undefined || series === "" ? BROKER_MATRIX[0]! : matrixEntry(series);
  if (entry.source.kind === "host") {
    const versionText = serverVersion(path.join(RABBITMQ_LIB, "lib"));
    if (series !== undefined && series !== "" && !versionText.startsWith(`${series}.`)) {
      throw new Error(`E2E_BROKER=${series}, but the host's rabbitmq-server is ${versionText}`);
    }
    cached = {
      series: entry.series,
      root: undefined,
      workDir: fs.realpathSync(os.tmpdir()),
      versionText,
      command: (program, args) => ({ file: program, args: [...args] }),
      hostPath: (p) => p,
    };
    return cached;
  }
  const { suite } = entry.source;
  const root = chrootRoot(suite);
  const workDir = prepareChroot(root, suite);
  const versionText = serverVersion(path.join(root, RABBITMQ_LIB, "lib"));
  if (!versionText.startsWith(`${entry.series}.`)) {
    throw new Error(`the ${suite} chroot holds rabbitmq-server ${versionText}, not ${entry.series}.x: rebuild it (delete ${root})`);
  }
  cached = {
    series: entry.series,
    root,
    workDir,
    versionText,
    // chroot(1) keeps the caller's environment, so the node's variables pass through unchanged.
    command: (program, args) => ({ file: "chroot", args: [root, program, ...args] }),
    hostPath: (p) => path.join(root, p),
  };
  return cached;
}
