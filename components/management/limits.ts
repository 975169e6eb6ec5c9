/**
 * Vhost limits (max-connections, max-queues) and user limits (max-connections, max-channels):
 * @pulumi/rabbitmq has neither, so these dynamic resources set them through the management API.
 * A limit left out of `limits` is removed from the broker (unlimited).
 */
import * as pulumi from "@pulumi/pulumi";
import { managementCall, seg, type ManagementConnection } from "./api";
import { SECRET_OUTPUTS } from "../../core/secret-outputs";

export type LimitScope = "vhost" | "user";
export const LIMIT_NAMES: Readonly<Record<LimitScope, readonly string[]>> = {
  vhost: ["max-connections", "max-queues"],
  user: ["max-connections", "max-channels"],
};

export interface LimitsProps {
  readonly connection: ManagementConnection;
  readonly scope: LimitScope;
  /** vhost name or user name */
  readonly target: string;
  readonly limits: Readonly<Record<string, number>>;
}

function limitsPath(scope: LimitScope, target: string): string {
  return `${scope === "vhost" ? "vhost-limits" : "user-limits"}/${seg(target)}`;
}

/** The target's limits now, or undefined when the vhost or user itself is gone. */
async function readLimits(p: LimitsProps): Promise<Record<string, number> | undefined> {
  const res = await managementCall(p.connection, "GET", limitsPath(p.scope, p.target), undefined, [200, 404]);
  if (res.status === 404) return undefined;
  const out: Record<string, number> = {};
  if (!Array.isArray(res.body)) return out;
  for (const row of res.body as unknown[]) {
    const value = (row as { value?: unknown }).value;
    if (typeof value === "object" && value !== null) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v === "number" && LIMIT_NAMES[p.scope].includes(k)) out[k] = v;
      }
    }
  }
  return out;
}

async function applyLimits(p: LimitsProps, previous: Readonly<Record<string, number>>): Promise<void> {
  for (const [name, value] of Object.entries(p.limits)) {
    await managementCall(p.connection, "PUT", `${limitsPath(p.scope, p.target)}/${seg(name)}`, { value });
  }
  for (const name of Object.keys(previous)) {
    if (!(name in p.limits)) await clearLimit(p, name);
  }
}

async function clearLimit(p: LimitsProps, name: string): Promise<void> {
  // 404: already gone (or the vhost/user is), which is what delete wants.
  await managementCall(p.connection, "DELETE", `${limitsPath(p.scope, p.target)}/${seg(name)}`, undefined, [200, 204, 404]);
}

function sameLimits(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

export const limitsProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: LimitsProps, news: LimitsProps) {
    const failures: pulumi.dynamic.CheckFailure[] = [];
    for (const [name, value] of Object.entries(news.limits ?? {})) {
      if (!LIMIT_NAMES[news.scope].includes(name)) {
        failures.push({ property: "limits", reason: `unknown ${news.scope} limit '${name}' (known: ${LIMIT_NAMES[news.scope].join(", ")})` });
      } else if (!Number.isInteger(value) || value < 0) {
        failures.push({ property: "limits", reason: `${name} must be a whole number >= 0` });
      }
    }
    return { inputs: news, failures };
  },
  async diff(_id: string, olds: LimitsProps, news: LimitsProps) {
    const replaces = olds.scope !== news.scope || olds.target !== news.target ? ["target"] : [];
    const changes =
      replaces.length > 0 ||
      !sameLimits(olds.limits, news.limits) ||
      olds.connection.managementUrl !== news.connection.managementUrl ||
      olds.connection.username !== news.connection.username ||
      olds.connection.password !== news.connection.password;
    return { changes, replaces, deleteBeforeReplace: true };
  },
  async create(inputs: LimitsProps) {
    await applyLimits(inputs, {});
    return { id: `${inputs.scope}:${inputs.target}`, outs: inputs };
  },
  async read(id: string, props: LimitsProps) {
    const current = await readLimits(props);
    // An empty result tells the engine the resource is gone (its vhost or user was deleted).
    if (current === undefined) return {};
    return { id, props: { ...props, limits: current } };
  },
  async update(_id: string, olds: LimitsProps, news: LimitsProps) {
    await applyLimits(news, olds.limits);
    return { outs: news };
  },
  async delete(_id: string, props: LimitsProps) {
    for (const name of Object.keys(props.limits)) await clearLimit(props, name);
  },
};

export interface LimitsArgs {
  connection: pulumi.Input<ManagementConnection>;
  target: pulumi.Input<string>;
  limits: pulumi.Input<Record<string, pulumi.Input<number>>>;
}

abstract class LimitsResource extends pulumi.dynamic.Resource {
  declare public readonly target: pulumi.Output<string>;
  declare public readonly limits: pulumi.Output<Record<string, number>>;

  protected constructor(scope: LimitScope, type: string, name: string, args: LimitsArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      limitsProvider,
      name,
      { connection: args.connection, scope, target: args.target, limits: args.limits },
      // The connection carries the admin password.
      { ...opts, additionalSecretOutputs: [...SECRET_OUTPUTS[type as "UserLimits" | "VhostLimits"]] },
      "rabbitmq-mqtt",
      type,
    );
  }
}

/** max-connections / max-queues of a vhost. */
export class VhostLimits extends LimitsResource {
  constructor(name: string, args: LimitsArgs, opts?: pulumi.CustomResourceOptions) {
    super("vhost", "VhostLimits", name, args, opts);
  }
}

/** max-connections / max-channels of a user. */
export class UserLimits extends LimitsResource {
  constructor(name: string, args: LimitsArgs, opts?: pulumi.CustomResourceOptions) {
    super("user", "UserLimits", name, args, opts);
  }
}
