/**
 * Pulumi mocks whose resource hooks apply each declared resource to a real broker through its
 * management API, the way the real providers would:
 * - @pulumi/rabbitmq resources: the same HTTP calls the terraform rabbitmq provider makes (with the
 *   endpoint and credentials from the program's own rabbitmq.Provider inputs);
 * - this project's dynamic resources: their provider's check + create, either deserialized from
 *   `__provider` exactly as the engine's dynamic-provider host does (plain Node), or, under vitest
 *   where closures cannot be evaluated, the exported provider object;
 * - random.RandomPassword: a crypto-random password of the declared length and alphabet;
 * - @pulumi/tls resources: real keys, certificate requests and certificates made from the declared
 *   inputs (tests/support/tls-provider.ts), as the terraform tls provider would make them.
 * Every registration is recorded (type, name, which inputs were secret) for assertions.
 */
import { randomInt } from "node:crypto";
import { readFileSync } from "node:fs";
import type * as pulumi from "@pulumi/pulumi";
import { managementRequest } from "../../components/management/api";
import { applyDockerResource, deleteDockerResource, type DockerTarget } from "./docker-hooks";
import { registrationOptions } from "./registration-options";
import { applyTlsResource } from "./tls-provider";

export const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export interface RegisteredResource {
  readonly type: string;
  readonly name: string;
  readonly id: string;
  /** Inputs with secrets unwrapped. */
  readonly inputs: Record<string, unknown>;
  /** Top-level input names whose value was (or contained) a Pulumi secret. */
  readonly secretInputs: readonly string[];
  readonly state: Record<string, unknown>;
}

export type DynamicProviderResolver = (type: string, serialized: string) => pulumi.dynamic.ResourceProvider;

export interface BrokerMocksOptions {
  /** Outputs a StackReference returns, by stack name. */
  readonly stackOutputs?: Readonly<Record<string, Record<string, unknown>>>;
  readonly resolveDynamicProvider: DynamicProviderResolver;
  /**
   * What the previous run of this stack registered. Given, the hooks behave like the engine on a
   * second `pulumi up`: a dynamic resource seen before is diffed and updated (or kept, or
   * replaced), and `deleteRemoved()` deletes what the program no longer declares.
   */
  readonly previous?: readonly RegisteredResource[];
  /**
   * Given, @pulumi/docker resources are applied to this real engine (tests/support/docker-hooks.ts);
   * without it they are only recorded, and tests boot their recorded inputs on a test node.
   */
  readonly docker?: DockerTarget;
}

function isSecretWrapper(v: unknown): v is { value: unknown } {
  return typeof v === "object" && v !== null && (v as Record<string, unknown>)[SECRET_SIG_KEY] === SECRET_SIG;
}

export function unwrapSecrets(v: unknown): { value: unknown; secret: boolean } {
  if (isSecretWrapper(v)) return { value: unwrapSecrets(v.value).value, secret: true };
  if (Array.isArray(v)) {
    let secret = false;
    const value = v.map((x) => {
      const r = unwrapSecrets(x);
      secret ||= r.secret;
      return r.value;
    });
    return { value, secret };
  }
  if (typeof v === "object" && v !== null) {
    let secret = false;
    const value: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const r = unwrapSecrets(x);
      secret ||= r.secret;
      value[k] = r.value;
    }
    return { value, secret };
  }
  return { value: v, secret: false };
}

/** Unwraps every top-level input, noting which ones were (or contained) secrets. */
export function unwrapInputs(raw: Record<string, unknown>): { inputs: Record<string, unknown>; secretInputs: string[] } {
  const secretInputs: string[] = [];
  const inputs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    const r = unwrapSecrets(v);
    if (r.secret) secretInputs.push(k);
    inputs[k] = r.value;
  }
  return { inputs, secretInputs };
}

interface Endpoint {
  url: string;
  username: string;
  password: string;
  /** The provider's `cacertFile`, read: the CA an https endpoint's certificate must chain to. */
  caCertPem?: string;
}

/** One management API call; a 404 counts as done when deleting (like the terraform provider). */
async function api(ep: Endpoint, method: "GET" | "PUT" | "DELETE", path: string, body?: unknown): Promise<void> {
  const res = await managementRequest(
    { managementUrl: ep.url, username: ep.username, password: ep.password, ...(ep.caCertPem !== undefined ? { caCertPem: ep.caCertPem } : {}) },
    method,
    path,
    body,
  );
  if (res.status >= 400 && !(method === "DELETE" && res.status === 404)) {
    throw new Error(`${method} /api/${path} -> ${res.status} ${JSON.stringify(res.body)}`);
  }
}

const e = encodeURIComponent;

/** The terraform rabbitmq provider turns integer strings in a policy definition into numbers. */
function policyDefinition(def: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(def)) out[k] = typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : v;
  return out;
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

export class BrokerMocks implements pulumi.runtime.Mocks {
  readonly registered: RegisteredResource[] = [];
  readonly errors: Error[] = [];
  private readonly providers = new Map<string, Endpoint>();
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: BrokerMocksOptions) {}

  call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
    throw new Error(`unexpected invoke ${args.token}`);
  }

  async newResource(args: pulumi.runtime.MockResourceArgs): Promise<{ id: string; state: Record<string, unknown> }> {
    this.inFlight++;
    try {
      const { inputs, secretInputs } = unwrapInputs(args.inputs as Record<string, unknown>);
      const { id, state } = await this.apply(args, inputs);
      this.registered.push({ type: args.type, name: args.name, id, inputs, secretInputs, state });
      return { id, state };
    } catch (err) {
      const error = new Error(`applying ${args.type} '${args.name}': ${(err as Error).message}`);
      this.errors.push(error);
      throw error;
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Resolves when no hook has been running for `quietMs`. */
  async settled(quietMs = 300): Promise<void> {
    for (;;) {
      if (this.inFlight > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
      await new Promise((r) => setTimeout(r, quietMs));
      if (this.inFlight === 0) return;
    }
  }

  private async apply(
    args: pulumi.runtime.MockResourceArgs,
    inputs: Record<string, unknown>,
  ): Promise<{ id: string; state: Record<string, unknown> }> {
    const s = (k: string) => String(inputs[k]);
    // Component resources (custom === false) have nothing to apply.
    if (args.custom === false) return { id: "", state: {} };
    switch (args.type) {
      case "pulumi:providers:rabbitmq": {
        const id = `provider-${args.name}`;
        const caFile = inputs["cacertFile"];
        const ep: Endpoint = {
          url: s("endpoint"),
          username: s("username"),
          password: s("password"),
          ...(typeof caFile === "string" ? { caCertPem: readFileSync(caFile, "utf8") } : {}),
        };
        this.providers.set(args.name, ep);
        return { id, state: inputs };
      }
      case "rabbitmq:index/vHost:VHost": {
        await api(this.rmq(args), "PUT", `vhosts/${e(s("name"))}`, {});
        return { id: s("name"), state: inputs };
      }
      case "rabbitmq:index/user:User": {
        const tags = (inputs["tags"] as string[] | undefined) ?? [];
        await api(this.rmq(args), "PUT", `users/${e(s("name"))}`, { password: s("password"), tags: tags.join(",") });
        return { id: s("name"), state: inputs };
      }
      case "rabbitmq:index/permissions:Permissions": {
        const p = inputs["permissions"] as Record<string, string>;
        await api(this.rmq(args), "PUT", `permissions/${e(s("vhost"))}/${e(s("user"))}`, {
          configure: p["configure"],
          write: p["write"],
          read: p["read"],
        });
        return { id: `${s("user")}@${s("vhost")}`, state: inputs };
      }
      case "rabbitmq:index/topicPermissions:TopicPermissions": {
        for (const p of inputs["permissions"] as Record<string, string>[]) {
          await api(this.rmq(args), "PUT", `topic-permissions/${e(s("vhost"))}/${e(s("user"))}`, {
            exchange: p["exchange"],
            write: p["write"],
            read: p["read"],
          });
        }
        return { id: `${s("user")}@${s("vhost")}`, state: inputs };
      }
      case "rabbitmq:index/policy:Policy": {
        const p = inputs["policy"] as Record<string, unknown>;
        await api(this.rmq(args), "PUT", `policies/${e(s("vhost"))}/${e(s("name"))}`, {
          pattern: p["pattern"],
          priority: p["priority"],
          "apply-to": p["applyTo"],
          definition: policyDefinition(p["definition"] as Record<string, unknown>),
        });
        return { id: `${s("name")}@${s("vhost")}`, state: inputs };
      }
      case "random:index/randomPassword:RandomPassword": {
        // Like the engine on a second up: unchanged inputs keep the password.
        const prev = this.previousOf(args.type, args.name);
        if (prev && JSON.stringify(prev.inputs) === JSON.stringify(inputs)) return { id: prev.id, state: prev.state };
        const length = Number(inputs["length"]);
        if (inputs["special"] !== false) throw new Error("the hook only generates special=false passwords");
        let result = "";
        for (let i = 0; i < length; i++) result += ALNUM[randomInt(ALNUM.length)];
        return { id: args.name, state: { ...inputs, result } };
      }
      case "pulumi:pulumi:StackReference": {
        const outputs = this.opts.stackOutputs?.[s("name")];
        if (!outputs) throw new Error(`no outputs configured for stack reference ${s("name")}`);
        return { id: s("name"), state: { name: s("name"), outputs, secretOutputNames: [] } };
      }
      default: {
        if (args.type.startsWith("pulumi-nodejs:dynamic")) return this.applyDynamic(args, inputs);
        if (args.type.startsWith("docker:") && this.opts.docker !== undefined) return this.applyDocker(this.opts.docker, args, inputs);
        // The platform's containers and Kubernetes objects: nothing runs them here (no Docker, no
        // cluster); their recorded inputs are what the tests boot the OS broker with.
        if (args.type.startsWith("docker:") || args.type.startsWith("kubernetes:")) {
          const state = { ...inputs, ...(args.type === "docker:index/remoteImage:RemoteImage" ? { imageId: `sha256:${s("name")}` } : {}) };
          return { id: `${args.name}-id`, state };
        }
        if (args.type.startsWith("tls:")) {
          // Like the engine on a second up: an unchanged certificate resource keeps its state.
          const prev = this.previousOf(args.type, args.name);
          if (prev && JSON.stringify(prev.inputs) === JSON.stringify(inputs)) return { id: prev.id, state: prev.state };
          const state = await applyTlsResource(args.type, inputs);
          if (state !== undefined) return { id: `${args.name}-${randomInt(1e9)}`, state };
        }
        throw new Error(`the broker mocks do not know resource type ${args.type}`);
      }
    }
  }

  /** The endpoint of the explicit rabbitmq provider a resource names (never a default provider). */
  private rmq(args: pulumi.runtime.MockResourceArgs): Endpoint {
    // Provider references look like "urn:pulumi:<stack>::<project>::pulumi:providers:rabbitmq::<name>::<id>".
    const m = /::pulumi:providers:rabbitmq::([^:]+)::/.exec(args.provider ?? "");
    const ep = m?.[1] !== undefined ? this.providers.get(m[1]) : undefined;
    if (!ep) throw new Error(`no explicit rabbitmq provider for this resource (got ${args.provider ?? "none"})`);
    return ep;
  }

  private previousOf(type: string, name: string): RegisteredResource | undefined {
    return this.opts.previous?.find((r) => r.type === type && r.name === name);
  }

  private async applyDynamic(
    args: pulumi.runtime.MockResourceArgs,
    inputs: Record<string, unknown>,
  ): Promise<{ id: string; state: Record<string, unknown> }> {
    const { __provider: serialized, ...props } = inputs;
    if (typeof serialized !== "string") throw new Error("dynamic resource without __provider");
    const provider = this.opts.resolveDynamicProvider(args.type, serialized);
    const prev = this.previousOf(args.type, args.name);
    let news: Record<string, unknown> = props;
    if (provider.check) {
      const checked = await provider.check(prev?.state ?? {}, props);
      if (checked.failures && checked.failures.length > 0) {
        throw new Error(`check failed: ${checked.failures.map((f) => `${f.property}: ${f.reason}`).join("; ")}`);
      }
      news = (checked.inputs as Record<string, unknown> | undefined) ?? props;
    }
    if (prev) {
      const diff = provider.diff ? await provider.diff(prev.id, prev.state, news) : { changes: true, replaces: [] };
      if (diff.changes === false) return { id: prev.id, state: prev.state };
      if ((diff.replaces ?? []).length === 0) {
        if (!provider.update) throw new Error("changed, but the provider has no update");
        const updated = await provider.update(prev.id, prev.state, news);
        return { id: prev.id, state: { ...((updated.outs as Record<string, unknown> | undefined) ?? news) } };
      }
      await provider.delete?.(prev.id, prev.state); // deleteBeforeReplace
    }
    const created = await provider.create(news);
    return { id: created.id, state: { ...((created.outs as Record<string, unknown> | undefined) ?? news) } };
  }

  /**
   * A @pulumi/docker resource on a second `up`, as the engine plans it: unchanged inputs keep the
   * resource; changed ones replace it (a container's inputs all force a new one), removing the old
   * one first only with `deleteBeforeReplace`, else after creating the new one (which then meets
   * the old one's name and ports, as it would for real). A built image is built again: the engine
   * compares the context's content, which the inputs do not show.
   */
  private async applyDocker(target: DockerTarget, args: pulumi.runtime.MockResourceArgs, inputs: Record<string, unknown>): Promise<{ id: string; state: Record<string, unknown> }> {
    const prev = this.previousOf(args.type, args.name);
    if (prev === undefined || args.type === "docker:index/image:Image") return applyDockerResource(target, args.type, args.name, inputs);
    if (JSON.stringify(prev.inputs) === JSON.stringify(inputs)) return { id: prev.id, state: prev.state };
    if (registrationOptions(args.type, args.name)?.deleteBeforeReplace === true) {
      await deleteDockerResource(target, args.type, prev.id, prev.inputs);
      return applyDockerResource(target, args.type, args.name, inputs);
    }
    const created = await applyDockerResource(target, args.type, args.name, inputs);
    await deleteDockerResource(target, args.type, prev.id, prev.inputs);
    return created;
  }

  /** Deletes, newest first, what the previous run registered and this one did not. */
  async deleteRemoved(): Promise<void> {
    const gone = (this.opts.previous ?? []).filter((p) => !this.registered.some((r) => r.type === p.type && r.name === p.name));
    for (const r of [...gone].reverse()) {
      try {
        await this.deleteOne(r);
      } catch (err) {
        this.errors.push(new Error(`deleting ${r.type} '${r.name}': ${(err as Error).message}`));
      }
    }
  }

  private async deleteOne(r: RegisteredResource): Promise<void> {
    const s = (k: string) => String(r.inputs[k]);
    if (r.type.startsWith("pulumi-nodejs:dynamic")) {
      const serialized = r.inputs["__provider"];
      if (typeof serialized !== "string") throw new Error("no __provider recorded");
      await this.opts.resolveDynamicProvider(r.type, serialized).delete?.(r.id, r.state);
      return;
    }
    if (r.type.startsWith("docker:") && this.opts.docker !== undefined) {
      await deleteDockerResource(this.opts.docker, r.type, r.id, r.inputs);
      return;
    }
    const ep = this.providers.get("broker");
    const paths: Record<string, () => string> = {
      "rabbitmq:index/user:User": () => `users/${e(s("name"))}`,
      "rabbitmq:index/permissions:Permissions": () => `permissions/${e(s("vhost"))}/${e(s("user"))}`,
      "rabbitmq:index/topicPermissions:TopicPermissions": () => `topic-permissions/${e(s("vhost"))}/${e(s("user"))}`,
      "rabbitmq:index/policy:Policy": () => `policies/${e(s("vhost"))}/${e(s("name"))}`,
      "rabbitmq:index/vHost:VHost": () => `vhosts/${e(s("name"))}`,
    };
    const path = paths[r.type];
    if (path === undefined) return; // nothing on the broker (components, passwords, providers, references)
    if (!ep) throw new Error("no rabbitmq provider in this run");
    await api(ep, "DELETE", path());
  }
}

/** Under plain Node: what the engine's dynamic-provider host does with `__provider`. */
export function deserializeDynamicProvider(_type: string, serialized: string): pulumi.dynamic.ResourceProvider {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const requireFromString = require("require-from-string") as (code: string) => { handler: () => pulumi.dynamic.ResourceProvider };
  return requireFromString(serialized).handler();
}
