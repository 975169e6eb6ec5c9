/**
 * Makes a change of an identity's access reach clients that are already connected or hold a
 * persistent session. RabbitMQ checks permissions when a client subscribes or (on MQTT) when a
 * connection first publishes to a topic, and keeps the result; a subscription queue keeps its
 * bindings across reconnects. So, seen on 3.10.8, narrowing an identity's grants or rotating its
 * password in the stack would leave live clients and saved sessions with the old access.
 *
 * This resource depends on the identity's user and permissions, and:
 * - on create: removes bindings of the identity's MQTT queues that its read grants do not allow
 *   (queues left by an earlier identity of the same name);
 * - on update (grants, password or client ids changed): removes the bindings the new read grants
 *   do not allow, deletes queues of client ids the identity no longer has, then closes the user's
 *   connections so clients reconnect under the new permissions;
 * - on delete (identity removed): closes the user's connections and deletes its MQTT queues, so an
 *   identity re-created later under the same name inherits no messages or bindings.
 * Patterns are this project's compiled ones, which mean the same in JavaScript and in PCRE.
 */
import * as pulumi from "@pulumi/pulumi";
import { managementCall, seg, type ManagementConnection } from "./api";
import { SECRET_OUTPUTS } from "../../core/secret-outputs";

export interface IdentitySessionsProps {
  readonly connection: ManagementConnection;
  readonly vhost: string;
  readonly username: string;
  /** The MQTT exchange whose bindings the read pattern governs. */
  readonly exchange: string;
  /** Topic-permission read regex (anchored) of the identity. */
  readonly readPattern: string;
  /** Every queue the MQTT plugin may create for the identity's client ids. */
  readonly queues: readonly string[];
  /** Changes whenever any permission or the password changes (a digest; secret). */
  readonly accessDigest: string;
}

interface Binding {
  source: string;
  routing_key: string;
  properties_key: string;
}

async function removeDisallowedBindings(p: IdentitySessionsProps): Promise<number> {
  const allowed = new RegExp(p.readPattern);
  let removed = 0;
  for (const queue of p.queues) {
    const res = await managementCall(p.connection, "GET", `queues/${seg(p.vhost)}/${seg(queue)}/bindings`, undefined, [200, 404]);
    if (res.status === 404 || !Array.isArray(res.body)) continue;
    for (const b of res.body as Binding[]) {
      if (b.source !== p.exchange || allowed.test(b.routing_key)) continue;
      await managementCall(
        p.connection,
        "DELETE",
        `bindings/${seg(p.vhost)}/e/${seg(b.source)}/q/${seg(queue)}/${seg(b.properties_key)}`,
        undefined,
        [200, 204, 404],
      );
      removed++;
    }
  }
  return removed;
}

async function deleteQueues(p: IdentitySessionsProps, queues: readonly string[]): Promise<void> {
  for (const queue of queues) {
    await managementCall(p.connection, "DELETE", `queues/${seg(p.vhost)}/${seg(queue)}`, undefined, [200, 204, 404]);
  }
}

async function closeConnections(p: IdentitySessionsProps): Promise<void> {
  // By user name, through connection tracking: DELETE /api/connections/{name} only finds a
  // connection once the stats collector has seen it (seconds after it opened).
  await managementCall(p.connection, "DELETE", `connections/username/${seg(p.username)}`, undefined, [200, 204, 404]);
}

export const identitySessionsProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: IdentitySessionsProps, news: IdentitySessionsProps) {
    const replaces = olds.vhost !== news.vhost || olds.username !== news.username ? ["username"] : [];
    const changes =
      replaces.length > 0 ||
      olds.accessDigest !== news.accessDigest ||
      olds.readPattern !== news.readPattern ||
      olds.exchange !== news.exchange ||
      olds.queues.join(",") !== news.queues.join(",") ||
      JSON.stringify(olds.connection) !== JSON.stringify(news.connection);
    return { changes, replaces, deleteBeforeReplace: true };
  },
  async create(inputs: IdentitySessionsProps) {
    await removeDisallowedBindings(inputs);
    return { id: `${inputs.vhost}/${inputs.username}`, outs: inputs };
  },
  async update(_id: string, olds: IdentitySessionsProps, news: IdentitySessionsProps) {
    await removeDisallowedBindings(news);
    await deleteQueues(news, olds.queues.filter((q) => !news.queues.includes(q)));
    const accessChanged = olds.accessDigest !== news.accessDigest || olds.readPattern !== news.readPattern || olds.queues.join(",") !== news.queues.join(",");
    if (accessChanged) await closeConnections(news);
    return { outs: news };
  },
  async delete(_id: string, props: IdentitySessionsProps) {
    await closeConnections(props);
    await deleteQueues(props, props.queues);
  },
};

export interface IdentitySessionsArgs {
  connection: pulumi.Input<ManagementConnection>;
  vhost: pulumi.Input<string>;
  username: pulumi.Input<string>;
  exchange: pulumi.Input<string>;
  readPattern: pulumi.Input<string>;
  queues: pulumi.Input<pulumi.Input<string>[]>;
  accessDigest: pulumi.Input<string>;
}

export class IdentitySessions extends pulumi.dynamic.Resource {
  constructor(name: string, args: IdentitySessionsArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      identitySessionsProvider,
      name,
      { ...args },
      { ...opts, additionalSecretOutputs: [...SECRET_OUTPUTS.IdentitySessions] },
      "rabbitmq-mqtt",
      "IdentitySessions",
    );
  }
}
