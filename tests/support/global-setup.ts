/**
 * vitest globalSetup for the e2e project: one private RabbitMQ node for the whole run, or with
 * E2E_CLUSTER=1 a three-node cluster formed from the rendered peer discovery settings (tests
 * then reach node 0 as `inject("broker")` and the others as `inject("peers")`, and spread their
 * clients over all nodes). E2E_KEEP_BROKER=1 keeps the node directories (config, logs, data)
 * after the run; the nodes themselves are always stopped.
 */
import type { TestProject } from "vitest/node";
import { brokerInfo, startBroker, startCluster, type BrokerInfo, type TestBroker } from "./broker";

declare module "vitest" {
  export interface ProvidedContext {
    broker: BrokerInfo;
    /** The other cluster members (empty for a single node). */
    peers: BrokerInfo[];
  }
}

export default async function setup({ provide }: TestProject): Promise<() => Promise<void>> {
  const keep = process.env.E2E_KEEP_BROKER === "1";
  const started = Date.now();
  const nodes: TestBroker[] = process.env.E2E_CLUSTER === "1" ? await startCluster(3, { keepDir: keep }) : [await startBroker({ keepDir: keep })];
  const infos = nodes.map(brokerInfo);
  const [first, ...peers] = infos;
  if (!first) throw new Error("no broker started");
  console.log(`[e2e] RabbitMQ ${first.version}: ${infos.map((i) => i.nodeName).join(", ")} up in ${Date.now() - started} ms`);
  if (keep) console.log(`[e2e] E2E_KEEP_BROKER=1: node directories ${infos.map((i) => i.baseDir).join(", ")} are kept`);
  provide("broker", first);
  provide("peers", peers);
  return async () => {
    for (const n of nodes) await n.stop();
  };
}
