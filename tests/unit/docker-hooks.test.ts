/**
 * The Docker hooks' translation of @pulumi/docker inputs into engine API requests (the e2e suites
 * apply them to a real engine; here, without one, what each input becomes).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { applyDockerResource, containerCreateRequest, durationNs, tarOneFile } from "../support/docker-hooks";

describe("durationNs: Go durations as the provider takes them", () => {
  it.each([
    ["15s", 15e9],
    ["1m30s", 90e9],
    ["500ms", 5e8],
    ["1h", 3600e9],
  ])("%s", (text, ns) => expect(durationNs(text)).toBe(ns));

  it.each(["15", "", "1x", "s", "1m 30s"])("refuses %j", (text) => expect(() => durationNs(text)).toThrow(/not a duration/));
});

describe("tarOneFile: the one-entry archive an upload becomes", () => {
  it("is read back by tar with the upload's path, mode, owner and content", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "tar-"));
    try {
      const file = path.join(dir, "a.tar");
      writeFileSync(file, tarOneFile("/etc/rabbitmq/rabbitmq-mqtt.d/10-rendered.conf", Buffer.from("listeners.tcp = none\n"), 0o600, 999, 999));
      expect(execFileSync("tar", ["-tvf", file, "--numeric-owner"], { encoding: "utf8" })).toMatch(/^-rw------- 999\/999\s+21 .* etc\/rabbitmq\/rabbitmq-mqtt\.d\/10-rendered\.conf\n$/);
      expect(execFileSync("tar", ["-xOf", file], { encoding: "utf8" })).toBe("listeners.tcp = none\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("containerCreateRequest: container inputs -> POST /containers/create", () => {
  const inputs = {
    name: "rabbitmq-0",
    hostname: "rabbitmq-0",
    image: "sha256:abc",
    restart: "unless-stopped",
    envs: ["RABBITMQ_NODENAME=rabbit@rabbitmq-0"],
    volumes: [{ volumeName: "rabbitmq-0-data", containerPath: "/var/lib/rabbitmq/mnesia" }],
    ports: [
      { internal: 8883, external: 8883, ip: "127.0.0.1" },
      { internal: 1883, external: 1983, ip: "127.0.0.1" },
    ],
    sysctls: { "net.core.somaxconn": "1024" },
    ulimits: [{ name: "nofile", soft: 20000, hard: 20000 }],
    healthcheck: { tests: ["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"], interval: "15s", timeout: "10s", retries: 5, startPeriod: "60s" },
    uploads: [],
    networksAdvanced: [],
  };

  it("maps every input the DockerBroker declares", () => {
    expect(containerCreateRequest(inputs)).toEqual({
      Image: "sha256:abc",
      Hostname: "rabbitmq-0",
      Env: ["RABBITMQ_NODENAME=rabbit@rabbitmq-0"],
      ExposedPorts: { "8883/tcp": {}, "1883/tcp": {} },
      Healthcheck: { Test: ["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"], Interval: 15e9, Timeout: 10e9, Retries: 5, StartPeriod: 60e9 },
      HostConfig: {
        Init: false,
        RestartPolicy: { Name: "unless-stopped", MaximumRetryCount: 0 },
        Sysctls: { "net.core.somaxconn": "1024" },
        Ulimits: [{ Name: "nofile", Soft: 20000, Hard: 20000 }],
        Binds: ["rabbitmq-0-data:/var/lib/rabbitmq/mnesia"],
        PortBindings: { "8883/tcp": [{ HostIp: "127.0.0.1", HostPort: "8883" }], "1883/tcp": [{ HostIp: "127.0.0.1", HostPort: "1983" }] },
      },
    });
  });

  it.each([
    ["an unknown container input", { ...inputs, privileged: true }, /cannot apply input\(s\) privileged/],
    ["an unknown port field", { ...inputs, ports: [{ internal: 1, external: 1, hostIp: "::" }] }, /ports\[\]: .*hostIp/],
    ["an unknown healthcheck field", { ...inputs, healthcheck: { tests: ["NONE"], startInterval: "1s" } }, /healthcheck: .*startInterval/],
  ])("fails on %s instead of ignoring it", (_label, raw, error) => {
    expect(() => containerCreateRequest(raw)).toThrow(error);
  });
});

describe("docker.Image: what the hooks refuse before calling the engine", () => {
  // No engine behind this socket: a refusal must come first, naming the input.
  const target = { socketPath: "/nonexistent/docker.sock", images: {} };
  it.each<[string, Record<string, unknown>, RegExp]>([
    ["a push (no registry here)", { imageName: "x:1", build: { context: "/tmp" } }, /cannot push/],
    ["a Dockerfile outside the context", { imageName: "x:1", skipPush: true, build: { context: "/tmp/ctx", dockerfile: "/tmp/Dockerfile" } }, /outside the context/],
    ["a build input the hooks do not apply", { imageName: "x:1", skipPush: true, build: { context: "/tmp", args: { A: "1" } } }, /cannot apply input\(s\) args/],
  ])("%s", async (_what, inputs, message) => {
    await expect(applyDockerResource(target, "docker:index/image:Image", "image", inputs)).rejects.toThrow(message);
  });
});
