/**
 * Unit-test mocks: record every registration, including the resource options the Mocks interface
 * does not show (protect, parent, provider, additionalSecretOutputs, deleteBeforeReplace; read by
 * registration-options.ts). No broker, no I/O.
 */
import * as pulumi from "@pulumi/pulumi";
import { unwrapInputs } from "./broker-mocks";
import { registrationOptions } from "./registration-options";

export { settle } from "./outputs";

export interface Recorded {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  secretInputs: string[];
  protect: boolean;
  parent: string;
  provider: string;
  additionalSecretOutputs: string[];
  dependencies: string[];
  deleteBeforeReplace: boolean;
}

export class RecordingMocks implements pulumi.runtime.Mocks {
  readonly records: Recorded[] = [];

  constructor(private readonly stackOutputs: Record<string, Record<string, unknown>> = {}) {}

  call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
    throw new Error(`unexpected invoke ${args.token}`);
  }

  /** Synchronous here; a subclass may apply a resource asynchronously (the SDK awaits either). */
  newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } | Promise<{ id: string; state: Record<string, unknown> }> {
    const { inputs, secretInputs } = unwrapInputs(args.inputs as Record<string, unknown>);
    const opts = registrationOptions(args.type, args.name);
    this.records.push({
      type: args.type,
      name: args.name,
      inputs,
      secretInputs,
      protect: opts?.protect ?? false,
      parent: opts?.parent ?? "",
      provider: opts?.provider ?? "",
      additionalSecretOutputs: opts?.additionalSecretOutputs ?? [],
      dependencies: opts?.dependencies ?? [],
      deleteBeforeReplace: opts?.deleteBeforeReplace ?? false,
    });
    const state: Record<string, unknown> = { ...inputs };
    if (args.type === "random:index/randomPassword:RandomPassword") state["result"] = `generated-${args.name}`;
    if (args.type === "docker:index/remoteImage:RemoteImage") state["imageId"] = `sha256:image-of-${String(inputs["name"])}`;
    if (args.type === "docker:index/image:Image") state["repoDigest"] = `sha256:build-of-${String(inputs["imageName"])}`;
    // @pulumi/tls: labelled placeholders, enough to follow the wiring (real ones: tests/support/tls-provider.ts).
    if (args.type === "tls:index/privateKey:PrivateKey") {
      state["privateKeyPem"] = `PRIVATE KEY of ${args.name}`;
      state["publicKeyPem"] = `PUBLIC KEY of ${args.name}`;
    }
    if (args.type === "tls:index/certRequest:CertRequest") state["certRequestPem"] = `CSR of ${args.name}`;
    if (args.type === "tls:index/selfSignedCert:SelfSignedCert" || args.type === "tls:index/locallySignedCert:LocallySignedCert") {
      state["certPem"] = `CERT of ${args.name}`;
      state["validityEndTime"] = "2027-11-25T00:00:00Z";
    }
    if (args.type === "pulumi:pulumi:StackReference") {
      state["outputs"] = this.stackOutputs[String(inputs["name"])] ?? {};
    }
    return { id: `${args.name}-id`, state };
  }

  byType(type: string): Recorded[] {
    return this.records.filter((r) => r.type === type);
  }

  one(type: string, name: string): Recorded {
    const r = this.records.find((x) => x.type === type && x.name === name);
    if (!r) throw new Error(`no ${type} named ${name}; have: ${this.records.map((x) => `${x.type}::${x.name}`).join(", ")}`);
    return r;
  }
}

/** Waits until the mock monitor has seen every registration the program started. */
export async function drain(): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const settings = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs(): Promise<void> };
  await settings.waitForRPCs();
}
