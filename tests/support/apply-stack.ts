/**
 * Applies a shipped stack file (Pulumi.<stack>.yaml) to the test broker: the program runs in a
 * child process under plain Node (tsx) with BrokerMocks, so dynamic providers are loaded from their
 * serialized closures as the engine would. Only the broker's address is adapted to the test:
 * a direct connection gets the test broker's URL and admin credentials, a stack reference gets
 * platform outputs that point at it, and dedicated MQTT ports become the test broker's spare
 * listener.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import type { BrokerInfo } from "./broker";
import type { DockerTarget } from "./docker-hooks";
import { testPki } from "./test-pki";
import type { StackRunInput, StackRunResult } from "./run-stack";

export const ROOT = path.resolve(__dirname, "../..");
export const PROJECT = (parse(readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as { name: string }).name;

/** The stack file's config, without the project prefix. */
export function loadStackConfig(stack: string): Record<string, unknown> {
  const doc = parse(readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")) as { config?: Record<string, unknown> };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc.config ?? {})) {
    const [project, key] = k.split(":");
    if (project !== PROJECT || key === undefined) throw new Error(`Pulumi.${stack}.yaml: unexpected key ${k}`);
    out[key] = v;
  }
  return out;
}

/** What the platform stack exports about its PKI (core/broker-connection.ts PLATFORM_OUTPUTS). */
export interface PlatformPkiOutputs {
  readonly caCertificatePem: string;
  readonly certificateLoginFrom: string;
  readonly certificateIssuers: { root: { certPem: string; privateKeyPem: string; chainPem: string }; tenants: Record<string, { certPem: string; privateKeyPem: string; chainPem: string }> };
}

/**
 * A root CA made the way the platform stack makes one, for brokers started without the platform
 * program (their listeners are plaintext; only the tenant stacks' wiring needs the issuers).
 */
export async function throwawayPki(): Promise<PlatformPkiOutputs> {
  const pki = await testPki();
  const root = { certPem: pki.caCertPem, privateKeyPem: pki.caKeyPem, chainPem: "" };
  return { caCertificatePem: root.certPem, certificateLoginFrom: "distinguished_name", certificateIssuers: { root, tenants: {} } };
}

export async function adaptToBroker(
  config: Record<string, unknown>,
  broker: BrokerInfo,
  pki?: PlatformPkiOutputs,
): Promise<StackRunInput["stackOutputs"] & object> {
  const b = config["broker"] as { stackReference?: string } | undefined;
  const tenant = config["tenant"] as { mqttPorts?: number[] } | undefined;
  if (tenant?.mqttPorts && tenant.mqttPorts.length > 0) tenant.mqttPorts = [broker.tenantMqttPort];
  if (b?.stackReference) {
    return {
      [b.stackReference]: {
        managementUrl: broker.managementUrl,
        adminUsername: broker.adminUsername,
        adminPassword: broker.adminPassword,
        ...(pki ?? (await throwawayPki())),
      },
    };
  }
  config["broker"] = { managementUrl: broker.managementUrl, username: broker.adminUsername };
  config["brokerPassword"] = broker.adminPassword;
  return {};
}

export async function applyStack(
  stack: string,
  config: Record<string, unknown>,
  stackOutputs = {},
  previous?: StackRunResult,
  docker?: DockerTarget,
): Promise<StackRunResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `stack-${stack}-`));
  const input: StackRunInput = {
    project: PROJECT,
    stack,
    config,
    secretKeys: ["brokerPassword", "identityPasswords"].filter((k) => k in config),
    stackOutputs,
    ...(previous ? { previous: previous.registered } : {}),
    ...(docker ? { docker } : {}),
  };
  const inFile = path.join(dir, "in.json");
  const outFile = path.join(dir, "out.json");
  try {
    // Both files hold secrets (admin and identity passwords): owner-only, removed afterwards.
    writeFileSync(inFile, JSON.stringify(input), { mode: 0o600 });
    const tsx = path.join(ROOT, "node_modules/.bin/tsx");
    await new Promise<void>((resolve, reject) => {
      execFile(tsx, [path.join(ROOT, "tests/support/run-stack.ts"), inFile, outFile], { cwd: ROOT, timeout: Number(process.env["STACK_RUN_TIMEOUT_MS"] ?? 180_000), maxBuffer: 64 * 1024 * 1024 }, (err, _stdout, stderr) => {
        if (err) reject(new Error(`stack ${stack} failed: ${stderr || err.message}`));
        else resolve();
      });
    });
    return JSON.parse(readFileSync(outFile, "utf8")) as StackRunResult;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Loads Pulumi.<stack>.yaml, points it at the test broker and applies it. */
export async function applyStackFile(stack: string, broker: BrokerInfo): Promise<{ config: Record<string, unknown>; result: StackRunResult }> {
  const config = loadStackConfig(stack);
  const stackOutputs = await adaptToBroker(config, broker);
  const result = await applyStack(stack, config, stackOutputs);
  return { config, result };
}
