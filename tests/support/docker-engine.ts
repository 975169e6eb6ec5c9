/**
 * A Docker engine for the Docker-target tests: Debian's `dockerd` (package docker.io), started by
 * the test setup with its own data root, exec root and socket, so it never touches another engine
 * on the machine. Its data root is cached per machine, so the local broker images
 * (scripts/broker-image.sh) are built once and reused. `dockerApi` talks to it over its socket
 * with the engine's HTTP API, as the Docker provider does.
 */
import { execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import type { ImageSuite } from "./broker-runtime";

const ROOT = path.resolve(__dirname, "../..");

export interface DockerEngine {
  readonly socketPath: string;
  /** `DOCKER_HOST` for the docker CLI. */
  readonly dockerHost: string;
  /** Stops the engine if this process started it. */
  stop(): Promise<void>;
}

export interface DockerResponse<T = unknown> {
  readonly status: number;
  readonly body: T;
}

/** The API version both Debian's engine (20.10) and newer ones accept. */
const API = "/v1.41";

/** One call to the engine's API; JSON in and out unless `raw` (a tar archive) is given. */
export function dockerApi<T = unknown>(
  socketPath: string,
  method: string,
  apiPath: string,
  body?: unknown,
  raw?: { data: Buffer; contentType: string },
  timeoutMs = 120_000,
): Promise<DockerResponse<T>> {
  return new Promise((resolve, reject) => {
    const data = raw !== undefined ? raw.data : body !== undefined ? Buffer.from(JSON.stringify(body)) : undefined;
    const req = http.request(
      {
        socketPath,
        method,
        path: `${API}${apiPath}`,
        headers: {
          ...(data !== undefined ? { "content-type": raw?.contentType ?? "application/json", "content-length": data.length } : {}),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          if ((res.headers["content-type"] ?? "").includes("json") && text.length > 0) {
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = text;
            }
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`docker ${method} ${apiPath}: no answer in ${timeoutMs} ms`)));
    req.on("error", reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

/** Like dockerApi, but any status of 400 and above is an error naming the call. */
export async function dockerCall<T = unknown>(
  socketPath: string,
  method: string,
  apiPath: string,
  body?: unknown,
  raw?: { data: Buffer; contentType: string },
): Promise<T> {
  const res = await dockerApi<T>(socketPath, method, apiPath, body, raw);
  if (res.status >= 400) throw new Error(`docker ${method} ${apiPath} -> ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function answers(socketPath: string): Promise<boolean> {
  try {
    return (await dockerApi(socketPath, "GET", "/_ping", undefined, undefined, 2000)).status === 200;
  } catch {
    return false;
  }
}

const cacheDir = (): string =>
  process.env["DOCKER_TEST_CACHE"] ?? path.join(process.env["XDG_CACHE_HOME"] ?? path.join(os.homedir(), ".cache"), "rabbitmq-mqtt-provisioner", "docker");

/**
 * The test engine: reuses one that answers on the test socket, else starts Debian's dockerd with
 * the cached data root. Fails with what is missing when dockerd is not installed.
 */
export async function startDockerEngine(): Promise<DockerEngine> {
  // Unix socket paths are short (108 bytes): the socket and exec root live in /run or /tmp.
  const runDir = process.env["DOCKER_TEST_RUN"] ?? "/tmp/rmq-mqtt-docker";
  const socketPath = path.join(runDir, "docker.sock");
  const dockerHost = `unix://${socketPath}`;
  if (await answers(socketPath)) return { socketPath, dockerHost, stop: () => Promise.resolve() };
  const dockerd = ["/usr/sbin/dockerd", "/usr/bin/dockerd"].find((p) => fs.existsSync(p));
  if (dockerd === undefined) throw new Error("no dockerd: install Debian's docker.io package (.ci/run does)");
  const dataRoot = path.join(cacheDir(), "data");
  fs.mkdirSync(dataRoot, { recursive: true });
  fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const logFile = path.join(runDir, "dockerd.log");
  const log = fs.openSync(logFile, "a");
  const child = spawn(
    dockerd,
    ["--data-root", dataRoot, "--exec-root", path.join(runDir, "exec"), "-H", dockerHost, "--pidfile", path.join(runDir, "docker.pid"), "--log-level", "warn"],
    { stdio: ["ignore", log, log], detached: true },
  );
  fs.closeSync(log);
  // The engine may take longer to stop than stop() waits: it must not keep the caller's process alive.
  child.unref();
  const state: { exited: number | null } = { exited: null };
  child.on("exit", (code) => (state.exited = code ?? -1));
  const deadline = Date.now() + 60_000;
  while (!(await answers(socketPath))) {
    if (state.exited !== null) throw new Error(`dockerd exited (${state.exited}); see ${logFile}`);
    if (Date.now() > deadline) throw new Error(`dockerd did not answer on ${socketPath} in 60 s; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    socketPath,
    dockerHost,
    stop: async () => {
      if (state.exited !== null) return;
      const done = new Promise<void>((r) => child.on("exit", () => r()));
      child.kill("SIGTERM");
      await Promise.race([done, new Promise((r) => setTimeout(r, 30_000))]);
    },
  };
}

/** Builds (or finds) the local stand-in for `rabbitmq:<version>-management` of a Debian suite. */
export function brokerImage(engine: DockerEngine, suite: ImageSuite): Promise<string> {
  return imageFromScript(engine, "broker-image.sh", [suite], /^rabbitmq-mqtt-test\/rabbitmq:\d+\.\d+\.\d+-management$/);
}

/** The local stand-in for the token issuer's Node.js base image (scripts/node-image.sh): its reference. */
export function nodeImage(engine: DockerEngine): Promise<string> {
  return imageFromScript(engine, "node-image.sh", [], /^node:\d+/);
}

/** Runs one of scripts/ that builds an image (once per engine) and prints its name last. */
function imageFromScript(engine: DockerEngine, script: string, args: string[], name: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile("bash", [path.join(ROOT, "scripts", script), ...args], { env: { ...process.env, DOCKER_HOST: engine.dockerHost }, timeout: 15 * 60_000 }, (err, stdout) => {
      if (err !== null) return reject(new Error(`scripts/${script} ${args.join(" ")} failed: ${err.message}`));
      const image = stdout.trim().split("\n").pop() ?? "";
      if (!name.test(image)) return reject(new Error(`scripts/${script} ${args.join(" ")} printed no image name: ${stdout}`));
      resolve(image);
    });
    child.stderr?.pipe(process.stderr);
  });
}

/** Runs a command in a running container (`docker exec`), as root unless `user` is given. */
export async function dockerExec(
  socketPath: string,
  container: string,
  cmd: readonly string[],
  opts: { user?: string; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { Id } = await dockerCall<{ Id: string }>(socketPath, "POST", `/containers/${encodeURIComponent(container)}/exec`, {
    Cmd: cmd,
    AttachStdout: true,
    AttachStderr: true,
    ...(opts.user !== undefined ? { User: opts.user } : {}),
  });
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const body = Buffer.from(JSON.stringify({ Detach: false, Tty: false }));
    const req = http.request(
      { socketPath, method: "POST", path: `${API}/exec/${Id}/start`, headers: { "content-type": "application/json", "content-length": body.length }, timeout: opts.timeoutMs ?? 120_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve(Buffer.concat(chunks)));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`docker exec ${cmd.join(" ")}: no answer`)));
    req.on("error", reject);
    req.end(body);
  });
  // Without a TTY the stream is multiplexed: 8-byte frame headers (stream, 0, 0, 0, size).
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  for (let i = 0; i + 8 <= raw.length; ) {
    const size = raw.readUInt32BE(i + 4);
    (raw[i] === 2 ? err : out).push(raw.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  const info = await dockerCall<{ ExitCode: number | null; Running: boolean }>(socketPath, "GET", `/exec/${Id}/json`);
  return { code: info.ExitCode ?? -1, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") };
}
