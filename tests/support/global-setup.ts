/**
 * vitest globalSetup for the e2e project: one private RabbitMQ node for the whole run.
 * Tests reach it with `inject("broker")`. E2E_KEEP_BROKER=1 keeps the node's directory
 * (config, logs, data) after the run; the node itself is always stopped.
 */
import type { TestProject } from "vitest/node";
import { brokerInfo, startBroker, type BrokerInfo } from "./broker";

declare module "vitest" {
  export interface ProvidedContext {
    broker: BrokerInfo;
  }
}

export default async function setup({ provide }: TestProject): Promise<() => Promise<void>> {
  const keep = process.env.E2E_KEEP_BROKER === "1";
  const started = Date.now();
  const broker = await startBroker({ keepDir: keep });
  const info = brokerInfo(broker);
  console.log(`[e2e] RabbitMQ ${info.version} node ${info.nodeName} up in ${Date.now() - started} ms`);
  if (keep) {
    console.log(`[e2e] E2E_KEEP_BROKER=1: node directory ${info.baseDir} (logs in ${info.baseDir}/log) is kept`);
  }
  provide("broker", info);
  return async () => {
    await broker.stop();
    if (keep) console.log(`[e2e] node ${info.nodeName} stopped; directory kept at ${info.baseDir}`);
  };
}
