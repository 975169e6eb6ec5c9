/**
 * The package as a library: `npm pack` builds it (prepack: tsc to dist/ with declarations), and
 * an example Pulumi program outside it (examples/consumer) installs the tarball, type-checks
 * against its declarations and declares a tenant with it, run under mocks. A tenant mistake fails
 * in the component before any broker resource is registered, naming the field.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = path.join(__dirname, "../..");
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version;
let dir: string;
let consumer: string;
let tarball: string;

interface RunResult {
  records: { type: string; name: string; inputs: Record<string, unknown> }[];
  outputs?: Record<string, unknown>;
  secretOutputs?: string[];
  error?: string;
}

function run(config: Record<string, string>, secrets: string[] = []): RunResult {
  const out = path.join(dir, `out-${Date.now()}-${Math.random()}.json`);
  execFileSync(path.join(ROOT, "node_modules/.bin/tsx"), ["consumer-runner.ts"], {
    cwd: consumer,
    env: { ...process.env, CONSUMER_OUT: out, CONSUMER_CONFIG: JSON.stringify(config), CONSUMER_SECRETS: JSON.stringify(secrets) },
    stdio: "pipe",
  });
  return JSON.parse(readFileSync(out, "utf8")) as RunResult;
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "consumer-"));
  // prepack builds dist/ first.
  execFileSync("npm", ["pack", "--silent", "--pack-destination", dir], { cwd: ROOT, stdio: "pipe" });
  tarball = path.join(dir, `rabbitmq-mqtt-provisioner-${VERSION}.tgz`);
  consumer = path.join(dir, "consumer");
  cpSync(path.join(ROOT, "examples/consumer"), consumer, { recursive: true });
  cpSync(path.join(ROOT, "tests/support/consumer-runner.ts"), path.join(consumer, "consumer-runner.ts"));
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts", tarball], { cwd: consumer, stdio: "pipe" });
}, 600_000);

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe("the packed library, used by a program outside the package", () => {
  it("packs the built entry point with type declarations, and no sources, tests or stacks", () => {
    const files = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" }).split("\n").filter(Boolean);
    for (const f of ["package/package.json", "package/dist/index.js", "package/dist/index.d.ts", "package/dist/components/tenant.d.ts", "package/CHANGELOG.md"]) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => /^package\/(tests|stacks|bench|policy|scripts)\//.test(f) || (f.endsWith(".ts") && !f.endsWith(".d.ts")))).toEqual([]);
    const pkg = JSON.parse(execFileSync("tar", ["-xzOf", tarball, "package/package.json"], { encoding: "utf8" })) as { version: string; types: string; exports: Record<string, unknown> };
    expect(pkg.version).toBe(VERSION);
    expect(pkg.types).toBe("dist/index.d.ts");
    expect(pkg.exports["."]).toEqual({ types: "./dist/index.d.ts", default: "./dist/index.js" });
  });

  it("type-checks the example program against the package's declarations", () => {
    execFileSync(path.join(ROOT, "node_modules/.bin/tsc"), ["-p", path.join(consumer, "tsconfig.json")], { cwd: consumer, stdio: "pipe" });
  }, 120_000);

  it("declares the tenant through the packed library: vhost, users, topic permissions, one provider for both kinds of resource", () => {
    const r = run({ managementUrl: "https://rabbit.example.com:15671", adminPassword: "admin-password-0123" }, ["adminPassword"]);
    expect(r.error).toBeUndefined();
    const of = (type: string) => r.records.filter((x) => x.type === type);
    expect(of("rabbitmq:index/vHost:VHost").map((v) => v.inputs["name"])).toEqual(["initech"]);
    expect(of("rabbitmq:index/user:User").map((u) => u.inputs["name"]).sort()).toEqual(["backend@initech", "web-app@initech"]);
    expect(of("rabbitmq:index/topicPermissions:TopicPermissions")).toHaveLength(2);
    const [provider] = of("pulumi:providers:rabbitmq");
    // Mocks see secrets in the engine's wire form: { <secret signature>: ..., value }.
    const SECRET_SIG = "4dabf18193072939515e22adb298388d";
    const secretValue = (v: unknown) => (typeof v === "object" && v !== null && SECRET_SIG in v ? (v as unknown as { value: unknown }).value : undefined);
    expect(secretValue(provider?.inputs["password"])).toBe("admin-password-0123");
    expect(JSON.stringify(provider?.inputs["endpoint"])).toContain("https://rabbit.example.com:15671");
    // The dynamic resources get the same broker, as a secret.
    const metadata = of("pulumi-nodejs:dynamic/rabbitmq-mqtt:VhostMetadata")[0];
    expect(secretValue(metadata?.inputs["connection"])).toMatchObject({ managementUrl: "https://rabbit.example.com:15671", username: "admin", password: "admin-password-0123" });
    expect(r.outputs?.["vhost"]).toBe("initech");
    expect(r.outputs?.["users"]).toEqual({ "web-app": "web-app@initech", backend: "backend@initech" });
    expect(r.secretOutputs).toContain("passwords");
    expect(r.secretOutputs).not.toContain("users");
  }, 120_000);

  it("refuses a bad tenant in the component, naming the field, before any broker resource is registered", () => {
    const r = run({ managementUrl: "https://rabbit.example.com:15671", adminPassword: "admin-password-0123", tenant: "Initech" }, ["adminPassword"]);
    expect(r.error).toContain("tenant.name");
    expect(r.records.filter((x) => x.type !== "pulumi:providers:rabbitmq")).toEqual([]);
  }, 120_000);

  it("refuses a management URL with credentials in it before any resource is registered", () => {
    const r = run({ managementUrl: "https://admin:pw@rabbit.example.com:15671", adminPassword: "admin-password-0123" }, ["adminPassword"]);
    expect(r.error).toContain("broker.managementUrl");
    expect(r.records).toEqual([]);
  }, 120_000);
});
