/**
 * An example Pulumi program outside this package that uses it as a library: it installs the
 * packed tarball (`npm pack` in the repository) and declares one tenant on a broker it names.
 * tests/unit/library-consumer.test.ts installs the tarball here (in a copy) and runs this program
 * under mocks.
 *
 *   pulumi config set managementUrl https://rabbit.example.com:15671
 *   pulumi config set --secret adminPassword ...
 *   pulumi up
 */
import * as pulumi from "@pulumi/pulumi";
import { Tenant, brokerConnection, type TenantConfigInput } from "rabbitmq-mqtt-provisioner";

const config = new pulumi.Config();

const broker = brokerConnection("broker", {
  managementUrl: config.require("managementUrl"),
  username: config.get("adminUsername") ?? "admin",
  password: config.requireSecret("adminPassword"),
});

const tenant: TenantConfigInput = {
  name: config.get("tenant") ?? "initech",
  description: "Initech's devices and apps",
  identities: [
    { name: "web-app", kind: "app", role: "c2b", user: "u-1001" },
    { name: "backend", kind: "service", role: "b2b", grants: { subscribe: ["activity/+/#"] } },
  ],
};

const initech = new Tenant("initech", { tenant, broker });

export const vhost = initech.vhost;
export const users = pulumi.output(Object.fromEntries(Object.values(initech.identities).map((i) => [i.name, i.username])));
export const passwords = pulumi.secret(Object.fromEntries(Object.values(initech.identities).map((i) => [i.name, i.password])));
