/**
 * CrossGuard policy pack: the security baseline of MQTT on RabbitMQ, for any Pulumi program that
 * declares these resources (this project's stacks, or a platform team's own program using its
 * components). Run it with a preview or an update:
 *
 *   pulumi preview --policy-pack policy
 *
 * Every policy is mandatory. The rules themselves are pure functions in policy/rules.ts.
 * Config (a policy config file, `--policy-pack-config`): `mqtt-users-have-topic-permissions`
 * takes `mqttExchange` (default amq.topic); `mqtt-users-have-no-tags` takes `allowTagsFor` (user
 * names); `tenant-vhosts-protected` takes `unprotectedStacks` (development stacks);
 * `no-unescaped-topic-variables` takes `brokerVersion` (e.g. "4.3.6"). policy/config.json is the
 * config for this project's shipped stacks (`--policy-pack-config policy/config.json`).
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("rabbitmq-mqtt-baseline", { policies });
