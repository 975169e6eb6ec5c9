/**
 * A vhost's description and tags. @pulumi/rabbitmq's VHost takes only a name, so the vhost itself
 * stays a rabbitmq.VHost (and can be protected) and this resource sets its metadata afterwards:
 * `PUT /api/vhosts/{name}` on an existing vhost updates description and tags (RabbitMQ 3.9+)
 * without touching its contents.
 *
 * The PUT carries the vhost's current default queue type back: RabbitMQ 4.3 replaces the whole
 * vhost record, so a body with description and tags only reset an existing `quorum` vhost to
 * `classic` (seen on 4.3.6), changing how every later queue of the tenant is stored.
 */
import * as pulumi from "@pulumi/pulumi";
import { managementCall, seg, type ManagementConnection } from "./api";
import { SECRET_OUTPUTS } from "../../core/secret-outputs";

export interface VhostMetadataProps {
  readonly connection: ManagementConnection;
  readonly vhost: string;
  readonly description: string;
  readonly tags: readonly string[];
}

/** The vhost's default queue type as GET /api/vhosts/{name} reports it (top level, or in metadata). */
function currentDefaultQueueType(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const b = body as { default_queue_type?: unknown; metadata?: { default_queue_type?: unknown } };
  const value = b.default_queue_type ?? b.metadata?.default_queue_type;
  return typeof value === "string" && value !== "" && value !== "undefined" ? value : undefined;
}

async function putMetadata(p: VhostMetadataProps): Promise<void> {
  const current = await managementCall(p.connection, "GET", `vhosts/${seg(p.vhost)}`);
  const queueType = currentDefaultQueueType(current.body);
  await managementCall(p.connection, "PUT", `vhosts/${seg(p.vhost)}`, {
    description: p.description,
    tags: p.tags.join(","),
    // 3.10 reads `defaultqueuetype`, later versions `default_queue_type`: send both.
    ...(queueType !== undefined ? { default_queue_type: queueType, defaultqueuetype: queueType } : {}),
  });
}

/** The broker joins tags with commas and trims them: anything else would never read back equal. */
const TAG_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export const vhostMetadataProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: VhostMetadataProps, news: VhostMetadataProps) {
    const failures = (news.tags ?? [])
      .filter((t) => !TAG_PATTERN.test(t))
      .map((t) => ({ property: "tags", reason: `tag ${JSON.stringify(t)} must be 1-64 of A-Z a-z 0-9 _ -` }));
    return { inputs: news, failures };
  },
  async diff(_id: string, olds: VhostMetadataProps, news: VhostMetadataProps) {
    const replaces = olds.vhost !== news.vhost ? ["vhost"] : [];
    const changes =
      replaces.length > 0 ||
      olds.description !== news.description ||
      olds.tags.join(",") !== news.tags.join(",") ||
      JSON.stringify(olds.connection) !== JSON.stringify(news.connection);
    return { changes, replaces };
  },
  async create(inputs: VhostMetadataProps) {
    await putMetadata(inputs);
    return { id: inputs.vhost, outs: inputs };
  },
  async read(id: string, props: VhostMetadataProps) {
    const res = await managementCall(props.connection, "GET", `vhosts/${seg(props.vhost)}`, undefined, [200, 404]);
    if (res.status === 404) return {}; // the vhost is gone: so is its metadata
    const body = res.body as { description?: unknown; tags?: unknown; metadata?: { description?: unknown; tags?: unknown } };
    const description = body.description ?? body.metadata?.description ?? "";
    const tags = body.tags ?? body.metadata?.tags ?? [];
    return {
      id,
      props: {
        ...props,
        description: typeof description === "string" ? description : "",
        tags: Array.isArray(tags) ? tags.filter((t): t is string => typeof t === "string") : [],
      },
    };
  },
  async update(_id: string, _olds: VhostMetadataProps, news: VhostMetadataProps) {
    await putMetadata(news);
    return { outs: news };
  },
  async delete() {
    // Nothing to undo: the metadata lives and dies with the vhost, which has its own resource.
  },
};

export interface VhostMetadataArgs {
  connection: pulumi.Input<ManagementConnection>;
  vhost: pulumi.Input<string>;
  description: pulumi.Input<string>;
  tags: pulumi.Input<pulumi.Input<string>[]>;
}

export class VhostMetadata extends pulumi.dynamic.Resource {
  declare public readonly description: pulumi.Output<string>;
  declare public readonly tags: pulumi.Output<string[]>;

  constructor(name: string, args: VhostMetadataArgs, opts?: pulumi.CustomResourceOptions) {
    super(vhostMetadataProvider, name, { ...args }, { ...opts, additionalSecretOutputs: [...SECRET_OUTPUTS.VhostMetadata] }, "rabbitmq-mqtt", "VhostMetadata");
  }
}
