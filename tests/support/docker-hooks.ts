/**
 * Mock hooks that apply the @pulumi/docker resources a stack declares to a real Docker engine
 * (tests/support/docker-engine.ts), making the calls the Docker provider makes for each input:
 * - Network: POST /networks/create;
 * - Volume: POST /volumes/create;
 * - RemoteImage: the image must be on the engine (nothing can be pulled here); its reference is
 *   the one thing swapped, for the local stand-in of the same version (scripts/broker-image.sh);
 * - Image: `POST /build` of the declared context (as a tar archive) and Dockerfile, tagged with
 *   `imageName`; its base image must already be on the engine under the reference the Dockerfile
 *   names (scripts/node-image.sh), since nothing can be pulled; `repoDigest` is the built image's id;
 * - Container: create (config, host config), disconnect from the default bridge and connect to
 *   each `networksAdvanced` entry with its aliases, upload each file as a one-entry tar archive at
 *   `/` (mode, owner and group from the upload), start, and fail unless it is running, as the
 *   provider's `mustRun` does.
 * An input the hooks do not know how to apply fails the registration: nothing is skipped silently.
 */
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { dockerApi, dockerCall } from "./docker-engine";

export interface DockerTarget {
  readonly socketPath: string;
  /** Image reference the stack declares -> the local image the engine holds for it. */
  readonly images: Readonly<Record<string, string>>;
}

type Inputs = Record<string, unknown>;

const e = encodeURIComponent;

/** Throws when `inputs` has a key outside `known`: an input the hooks would otherwise ignore. */
function onlyKnown(what: string, inputs: Inputs, known: readonly string[]): void {
  const unknown = Object.keys(inputs).filter((k) => !known.includes(k) && inputs[k] !== undefined);
  if (unknown.length > 0) throw new Error(`${what}: the Docker hooks cannot apply input(s) ${unknown.join(", ")}`);
}

/** Go duration strings as the provider accepts them ("15s", "1m30s", "500ms") -> nanoseconds. */
export function durationNs(text: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * (units[m[2] ?? ""] ?? NaN);
    matched = re.lastIndex;
  }
  if (matched !== text.length || text.length === 0 || Number.isNaN(total)) throw new Error(`not a duration: ${JSON.stringify(text)}`);
  return Math.round(total);
}

/** A ustar archive with one regular file (what the provider's tar.Writer writes for an upload). */
export function tarOneFile(name: string, content: Buffer, mode: number, uid: number, gid: number): Buffer {
  const header = Buffer.alloc(512, 0);
  const rel = name.replace(/^\/+/, "");
  let prefix = "";
  let base = rel;
  if (Buffer.byteLength(rel) > 100) {
    const cut = rel.lastIndexOf("/", 155);
    prefix = rel.slice(0, cut);
    base = rel.slice(cut + 1);
  }
  if (Buffer.byteLength(base) > 100 || Buffer.byteLength(prefix) > 155) throw new Error(`upload path too long for tar: ${name}`);
  const octal = (n: number, width: number) => n.toString(8).padStart(width - 1, "0") + "\0";
  header.write(base, 0, "utf8");
  header.write(octal(mode, 8), 100, "ascii");
  header.write(octal(uid, 8), 108, "ascii");
  header.write(octal(gid, 8), 116, "ascii");
  header.write(octal(content.length, 12), 124, "ascii");
  header.write(octal(Math.floor(Date.now() / 1000), 12), 136, "ascii");
  header.write("        ", 148, "ascii");
  header.write("0", 156, "ascii");
  header.write("ustar\0", 257, "ascii");
  header.write("00", 263, "ascii");
  header.write(prefix, 345, "utf8");
  let sum = 0;
  for (const b of header) sum += b;
  header.write(octal(sum, 7) + " ", 148, "ascii");
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512, 0);
  return Buffer.concat([header, content, pad, Buffer.alloc(1024, 0)]);
}

function str(v: unknown, what: string): string {
  if (typeof v !== "string") throw new Error(`${what}: expected a string, got ${JSON.stringify(v)}`);
  return v;
}

function numericId(v: unknown, what: string): number {
  if (v === undefined) return 0;
  const s = str(v, what);
  if (!/^\d+$/.test(s)) throw new Error(`${what}: only numeric owners/groups can be applied, got ${s}`);
  return Number(s);
}

const CONTAINER_INPUTS = [
  "name",
  "hostname",
  "image",
  "restart",
  "envs",
  "uploads",
  "volumes",
  "networksAdvanced",
  "ports",
  "sysctls",
  "ulimits",
  "healthcheck",
  "command",
  "entrypoint",
  "mustRun",
  "start",
  "init",
  "wait",
  "waitTimeout",
] as const;

interface ContainerCreate {
  Hostname?: string;
  Image: string;
  Env?: string[];
  Cmd?: string[];
  Entrypoint?: string[];
  ExposedPorts?: Record<string, object>;
  Healthcheck?: { Test: string[]; Interval: number; Timeout: number; Retries: number; StartPeriod: number };
  HostConfig: {
    Binds?: string[];
    PortBindings?: Record<string, { HostIp: string; HostPort: string }[]>;
    RestartPolicy?: { Name: string; MaximumRetryCount: number };
    Sysctls?: Record<string, string>;
    Ulimits?: { Name: string; Soft: number; Hard: number }[];
    Init: boolean;
  };
}

/** The create request the provider sends for these inputs (without networks and uploads). */
export function containerCreateRequest(inputs: Inputs): ContainerCreate {
  onlyKnown("docker.Container", inputs, CONTAINER_INPUTS);
  const req: ContainerCreate = { Image: str(inputs["image"], "image"), HostConfig: { Init: inputs["init"] === true } };
  if (inputs["hostname"] !== undefined) req.Hostname = str(inputs["hostname"], "hostname");
  if (inputs["envs"] !== undefined) req.Env = (inputs["envs"] as unknown[]).map((x) => str(x, "envs[]"));
  if (inputs["command"] !== undefined) req.Cmd = (inputs["command"] as unknown[]).map((x) => str(x, "command[]"));
  if (inputs["entrypoint"] !== undefined) req.Entrypoint = (inputs["entrypoint"] as unknown[]).map((x) => str(x, "entrypoint[]"));
  if (inputs["restart"] !== undefined) req.HostConfig.RestartPolicy = { Name: str(inputs["restart"], "restart"), MaximumRetryCount: 0 };
  if (inputs["sysctls"] !== undefined) {
    req.HostConfig.Sysctls = Object.fromEntries(Object.entries(inputs["sysctls"] as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
  }
  if (inputs["ulimits"] !== undefined) {
    req.HostConfig.Ulimits = (inputs["ulimits"] as Inputs[]).map((u) => {
      onlyKnown("docker.Container ulimits[]", u, ["name", "soft", "hard"]);
      return { Name: str(u["name"], "ulimits[].name"), Soft: Number(u["soft"]), Hard: Number(u["hard"]) };
    });
  }
  if (inputs["volumes"] !== undefined) {
    req.HostConfig.Binds = (inputs["volumes"] as Inputs[]).map((v) => {
      onlyKnown("docker.Container volumes[]", v, ["volumeName", "containerPath", "readOnly"]);
      return `${str(v["volumeName"], "volumes[].volumeName")}:${str(v["containerPath"], "volumes[].containerPath")}${v["readOnly"] === true ? ":ro" : ""}`;
    });
  }
  if (inputs["ports"] !== undefined) {
    req.ExposedPorts = {};
    req.HostConfig.PortBindings = {};
    for (const p of inputs["ports"] as Inputs[]) {
      onlyKnown("docker.Container ports[]", p, ["internal", "external", "ip", "protocol"]);
      const key = `${Number(p["internal"])}/${typeof p["protocol"] === "string" ? p["protocol"] : "tcp"}`;
      req.ExposedPorts[key] = {};
      (req.HostConfig.PortBindings[key] ??= []).push({ HostIp: typeof p["ip"] === "string" ? p["ip"] : "0.0.0.0", HostPort: String(Number(p["external"])) });
    }
  }
  if (inputs["healthcheck"] !== undefined) {
    const h = inputs["healthcheck"] as Inputs;
    onlyKnown("docker.Container healthcheck", h, ["tests", "interval", "timeout", "retries", "startPeriod"]);
    req.Healthcheck = {
      Test: (h["tests"] as unknown[]).map((x) => str(x, "healthcheck.tests[]")),
      Interval: durationNs(str(h["interval"] ?? "0s", "healthcheck.interval")),
      Timeout: durationNs(str(h["timeout"] ?? "0s", "healthcheck.timeout")),
      Retries: Number(h["retries"] ?? 0),
      StartPeriod: durationNs(str(h["startPeriod"] ?? "0s", "healthcheck.startPeriod")),
    };
  }
  return req;
}

interface ContainerInspect {
  Id: string;
  State: { Running: boolean; Status: string; ExitCode: number; Health?: { Status: string } };
  NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
}

export async function applyDockerResource(
  target: DockerTarget,
  type: string,
  name: string,
  inputs: Inputs,
): Promise<{ id: string; state: Inputs }> {
  const sock = target.socketPath;
  switch (type) {
    case "docker:index/network:Network": {
      onlyKnown("docker.Network", inputs, ["name"]);
      const res = await dockerCall<{ Id: string }>(sock, "POST", "/networks/create", { Name: str(inputs["name"], "name"), CheckDuplicate: true });
      return { id: res.Id, state: { ...inputs } };
    }
    case "docker:index/volume:Volume": {
      onlyKnown("docker.Volume", inputs, ["name"]);
      const res = await dockerCall<{ Name: string }>(sock, "POST", "/volumes/create", { Name: str(inputs["name"], "name") });
      return { id: res.Name, state: { ...inputs, mountpoint: "" } };
    }
    case "docker:index/remoteImage:RemoteImage": {
      onlyKnown("docker.RemoteImage", inputs, ["name", "keepLocally"]);
      const declared = str(inputs["name"], "name");
      const local = target.images[declared];
      if (local === undefined) throw new Error(`docker.RemoteImage ${declared}: no local image stands in for it (have ${Object.keys(target.images).join(", ")})`);
      const img = await dockerCall<{ Id: string }>(sock, "GET", `/images/${e(local)}/json`);
      return { id: `${img.Id}${declared}`, state: { ...inputs, imageId: img.Id, repoDigest: "" } };
    }
    case "docker:index/image:Image":
      return applyImage(target, inputs);
    case "docker:index/container:Container":
      return applyContainer(target, inputs);
    default:
      throw new Error(`the Docker hooks do not know resource type ${type} ('${name}')`);
  }
}

/** A local build, as the provider makes it with `skipPush` (the classic builder: this engine has no BuildKit). */
async function applyImage(target: DockerTarget, inputs: Inputs): Promise<{ id: string; state: Inputs }> {
  // buildOnPreview only matters to `pulumi preview`; these hooks apply an `up`.
  onlyKnown("docker.Image", inputs, ["imageName", "skipPush", "build", "buildOnPreview"]);
  if (inputs["skipPush"] !== true) throw new Error("docker.Image: the hooks cannot push (no registry here); declare skipPush");
  const build = (inputs["build"] as Inputs | undefined) ?? {};
  onlyKnown("docker.Image build", build, ["context", "dockerfile"]);
  const context = str(build["context"], "build.context");
  const dockerfile = build["dockerfile"] !== undefined ? path.relative(context, str(build["dockerfile"], "build.dockerfile")) : "Dockerfile";
  if (dockerfile.startsWith("..")) throw new Error(`docker.Image: the Dockerfile ${String(build["dockerfile"])} is outside the context ${context}`);
  const imageName = str(inputs["imageName"], "imageName");
  const tar = execFileSync("tar", ["-C", context, "-c", "."], { maxBuffer: 512 * 2 ** 20 });
  const res = await dockerApi<string>(target.socketPath, "POST", `/build?t=${e(imageName)}&dockerfile=${e(dockerfile)}&rm=1&forcerm=1`, undefined, { data: tar, contentType: "application/x-tar" }, 600_000);
  // The answer is a stream of JSON messages; a failed step is one with "error".
  const text = typeof res.body === "string" ? res.body : JSON.stringify(res.body);
  if (res.status >= 400 || /"error(Detail)?"\s*:/.test(text)) throw new Error(`docker.Image ${imageName}: build failed: ${text.slice(-2000)}`);
  const img = await dockerCall<{ Id: string }>(target.socketPath, "GET", `/images/${e(imageName)}/json`);
  return { id: img.Id, state: { ...inputs, repoDigest: img.Id, baseImageName: imageName, context, dockerfile: build["dockerfile"] ?? "" } };
}

async function applyContainer(target: DockerTarget, inputs: Inputs): Promise<{ id: string; state: Inputs }> {
  const sock = target.socketPath;
  const name = str(inputs["name"], "name");
  const create = containerCreateRequest(inputs);
  const { Id: id } = await dockerCall<{ Id: string }>(sock, "POST", `/containers/create?name=${e(name)}`, create);
  const networks = (inputs["networksAdvanced"] as Inputs[] | undefined) ?? [];
  if (networks.length > 0) {
    const res = await dockerApi(sock, "POST", `/networks/bridge/disconnect`, { Container: id, Force: false });
    if (res.status >= 400 && !JSON.stringify(res.body).includes("is not connected")) throw new Error(`disconnecting the default bridge: ${res.status} ${JSON.stringify(res.body)}`);
    for (const n of networks) {
      onlyKnown("docker.Container networksAdvanced[]", n, ["name", "aliases"]);
      const aliases = ((n["aliases"] as unknown[] | undefined) ?? []).map((a) => str(a, "networksAdvanced[].aliases[]"));
      await dockerCall(sock, "POST", `/networks/${e(str(n["name"], "networksAdvanced[].name"))}/connect`, {
        Container: id,
        EndpointConfig: { Aliases: aliases },
      });
    }
  }
  for (const u of (inputs["uploads"] as Inputs[] | undefined) ?? []) {
    onlyKnown("docker.Container uploads[]", u, ["file", "content", "contentBase64", "executable", "permissions", "owner", "group"]);
    const file = str(u["file"], "uploads[].file");
    const content = u["content"] !== undefined ? Buffer.from(str(u["content"], "uploads[].content"), "utf8") : Buffer.from(str(u["contentBase64"], "uploads[].contentBase64"), "base64");
    const mode = u["permissions"] !== undefined ? parseInt(str(u["permissions"], "uploads[].permissions"), 8) : u["executable"] === true ? 0o744 : 0o644;
    const tar = tarOneFile(file, content, mode, numericId(u["owner"], "uploads[].owner"), numericId(u["group"], "uploads[].group"));
    await dockerCall(sock, "PUT", `/containers/${id}/archive?path=%2F`, undefined, { data: tar, contentType: "application/x-tar" });
  }
  if (inputs["start"] !== false) {
    await dockerCall(sock, "POST", `/containers/${id}/start`);
    // The provider's read waits for "running"; with mustRun (default true) anything else fails.
    await new Promise((r) => setTimeout(r, 1000));
    const info = await dockerCall<ContainerInspect>(sock, "GET", `/containers/${id}/json`);
    if (!info.State.Running && inputs["mustRun"] !== false) {
      const logs = await dockerApi<string>(sock, "GET", `/containers/${id}/logs?stdout=1&stderr=1&tail=40`);
      throw new Error(`container ${name} is not running (${info.State.Status}, exit ${info.State.ExitCode}): ${String(logs.body)}`);
    }
    // `wait`: the provider polls the container until its health check passes; unhealthy or past
    // `waitTimeout` seconds (default 60) fails the create.
    if (inputs["wait"] === true) {
      const timeoutS = inputs["waitTimeout"] === undefined ? 60 : Number(inputs["waitTimeout"]);
      const deadline = Date.now() + timeoutS * 1000;
      for (;;) {
        const health = (await dockerCall<ContainerInspect>(sock, "GET", `/containers/${id}/json`)).State.Health?.Status;
        if (health === "healthy") break;
        if (health === "unhealthy") throw new Error(`container ${name} is unhealthy`);
        if (Date.now() > deadline) throw new Error(`container ${name} not healthy after ${timeoutS} s (wait)`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
  return { id, state: { ...inputs } };
}

/** Removes what a hook created (for teardown and for a stack's deleted resources). */
export async function deleteDockerResource(target: DockerTarget, type: string, id: string, inputs: Inputs): Promise<void> {
  const sock = target.socketPath;
  const gone = (status: number) => status < 400 || status === 404;
  const check = (what: string, res: { status: number; body: unknown }) => {
    if (!gone(res.status)) throw new Error(`${what}: ${res.status} ${JSON.stringify(res.body)}`);
  };
  switch (type) {
    case "docker:index/container:Container":
      return check(`removing container ${id}`, await dockerApi(sock, "DELETE", `/containers/${id}?force=true&v=false`));
    case "docker:index/volume:Volume":
      return check(`removing volume ${id}`, await dockerApi(sock, "DELETE", `/volumes/${e(id)}`));
    case "docker:index/network:Network":
      return check(`removing network ${id}`, await dockerApi(sock, "DELETE", `/networks/${id}`));
    case "docker:index/remoteImage:RemoteImage":
      // keepLocally: the provider leaves the image; so does this.
      if (inputs["keepLocally"] !== true) throw new Error("the hooks only apply images with keepLocally");
      return;
    case "docker:index/image:Image":
      // Left on the engine for the next suite and run (every suite builds the same image), like
      // the broker images: a cache of this machine's, not a claim about the provider.
      return;
    default:
      throw new Error(`the Docker hooks do not know resource type ${type}`);
  }
}
