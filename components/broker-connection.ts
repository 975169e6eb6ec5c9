/**
 * One broker-connection value for the components: where the management API is and the admin
 * credentials, from which both the `@pulumi/rabbitmq` provider and this project's dynamic
 * resources' connection are built, so the two can never point at different brokers.
 */
import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as rabbitmq from "@pulumi/rabbitmq";
import { managementUrlSchema } from "../core/broker-connection";
import { ConfigError } from "../core/errors";
import type { ManagementConnection } from "./management/api";

export interface BrokerConnectionArgs {
  /** The management API, e.g. https://rabbit.example.com:15671 (http:// only for a local broker). */
  readonly managementUrl: pulumi.Input<string>;
  readonly username: pulumi.Input<string>;
  /** The admin password: kept a secret wherever it goes. */
  readonly password: pulumi.Input<string>;
  /** For a private CA: the PEM certificate the management API's certificate chains to. */
  readonly caCertPem?: pulumi.Input<string>;
}

export interface BrokerConnection {
  /** For @pulumi/rabbitmq resources. */
  readonly provider: rabbitmq.Provider;
  /** For this project's dynamic resources: a secret. */
  readonly connection: pulumi.Output<ManagementConnection>;
}

/**
 * The rabbitmq provider (the terraform provider) trusts a private CA only from a file: the CA
 * certificate (public) is written where the provider can read it. The directory is the current
 * user's own (created 0700, refused if anyone else owns it or can write to it): a CA file another
 * local user could swap would let them intercept the admin password. The path is stable, so the
 * provider's inputs do not change from run to run; `pulumi up` and `preview` rewrite the file (run
 * one of them before a `destroy` on a machine that lacks it).
 */
export function caCertFile(caCertPem: string, base = os.tmpdir()): string {
  const uid = process.getuid?.() ?? -1;
  const dir = path.join(base, `rabbitmq-mqtt-${uid >= 0 ? uid : "user"}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || (uid >= 0 && st.uid !== uid) || (st.mode & 0o022) !== 0) {
    throw new Error(`${dir} must be a directory of the current user that no one else can write to`);
  }
  const file = path.join(dir, `ca-${createHash("sha256").update(caCertPem).digest("hex").slice(0, 16)}.pem`);
  writeFileSync(file, caCertPem, { mode: 0o644 });
  return file;
}

/** A managementUrl given as a plain string is checked before any resource, by the stack config's own rule. */
function checkUrl(url: pulumi.Input<string>, key: string): void {
  if (typeof url !== "string") return;
  const r = managementUrlSchema.safeParse(url);
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => ({ key, message: i.message })));
}

/**
 * Declares the `@pulumi/rabbitmq` provider named `name` and the matching connection for the
 * dynamic resources. `key` names the argument in errors (a stack passes its config key).
 */
export function brokerConnection(name: string, args: BrokerConnectionArgs, opts?: pulumi.CustomResourceOptions, key = "broker"): BrokerConnection {
  checkUrl(args.managementUrl, `${key}.managementUrl`);
  const ca = args.caCertPem !== undefined ? pulumi.output(args.caCertPem) : undefined;
  const connection = pulumi.secret(
    pulumi.all([args.managementUrl, args.username, args.password, ca ?? pulumi.output(undefined)]).apply(
      ([managementUrl, username, password, caCertPem]): ManagementConnection => ({ managementUrl, username, password, ...(caCertPem !== undefined ? { caCertPem } : {}) }),
    ),
  );
  const provider = new rabbitmq.Provider(
    name,
    {
      endpoint: connection.apply((c) => c.managementUrl),
      username: connection.apply((c) => c.username),
      password: pulumi.secret(connection.apply((c) => c.password)),
      ...(ca !== undefined ? { cacertFile: ca.apply((pem) => caCertFile(pem)) } : {}),
    },
    opts,
  );
  return { provider, connection };
}
