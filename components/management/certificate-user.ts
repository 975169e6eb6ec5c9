/**
 * A RabbitMQ user that can log in only with a client certificate: created with an empty password
 * hash, which no password matches. (Without any password field, 3.10.8 stores the hash of some
 * password of its own, seen in the end-to-end test: an empty hash says what is meant.) The name
 * is the login name the broker derives from the certificate (core/dn.ts).
 *
 * @pulumi/rabbitmq's User cannot do this: its password is required, and an empty password would
 * be hashed and then accepted. Creating also refuses a user that already exists, so one stack can
 * never take over a user another stack (or a person) made.
 */
import * as pulumi from "@pulumi/pulumi";
import { managementCall, seg, type ManagementConnection } from "./api";
import { SECRET_OUTPUTS } from "../../core/secret-outputs";

export interface CertificateUserProps {
  readonly connection: ManagementConnection;
  readonly name: string;
}

async function exists(p: CertificateUserProps): Promise<boolean> {
  const res = await managementCall(p.connection, "GET", `users/${seg(p.name)}`, undefined, [200, 404]);
  return res.status === 200;
}

export const certificateUserProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: CertificateUserProps, news: CertificateUserProps) {
    const failures = typeof news.name === "string" && news.name.length > 0 ? [] : [{ property: "name", reason: "must be a non-empty login name" }];
    return { inputs: news, failures };
  },
  async diff(_id: string, olds: CertificateUserProps, news: CertificateUserProps) {
    const replaces = olds.name !== news.name ? ["name"] : [];
    return { changes: replaces.length > 0 || JSON.stringify(olds.connection) !== JSON.stringify(news.connection), replaces, deleteBeforeReplace: true };
  },
  async create(inputs: CertificateUserProps) {
    if (await exists(inputs)) {
      throw new Error(`user ${JSON.stringify(inputs.name)} already exists on the broker; it belongs to another stack or was made by hand, so it is left alone`);
    }
    // An empty hash: certificate login only. No tags: no management access.
    await managementCall(inputs.connection, "PUT", `users/${seg(inputs.name)}`, { password_hash: "", tags: "" });
    return { id: inputs.name, outs: inputs };
  },
  async read(id: string, props: CertificateUserProps) {
    return (await exists(props)) ? { id, props } : {};
  },
  async update(_id: string, _olds: CertificateUserProps, news: CertificateUserProps) {
    return { outs: news };
  },
  async delete(_id: string, props: CertificateUserProps) {
    await managementCall(props.connection, "DELETE", `users/${seg(props.name)}`, undefined, [200, 204, 404]);
  },
};

export interface CertificateUserArgs {
  connection: pulumi.Input<ManagementConnection>;
  name: pulumi.Input<string>;
}

export class CertificateUser extends pulumi.dynamic.Resource {
  declare public readonly name: pulumi.Output<string>;

  constructor(name: string, args: CertificateUserArgs, opts?: pulumi.CustomResourceOptions) {
    super(certificateUserProvider, name, { ...args }, { ...opts, additionalSecretOutputs: [...SECRET_OUTPUTS.CertificateUser] }, "rabbitmq-mqtt", "CertificateUser");
  }
}
