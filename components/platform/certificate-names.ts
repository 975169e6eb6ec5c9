/**
 * The names a platform's broker certificate must carry: every node's and Service's name, where
 * clients and the other nodes reach it, plus `pki.brokerCertificate`'s public names. What a
 * program passes to `PlatformPki` as `brokerNames` for the broker it declares.
 */
import { dockerCertificateNames, kubernetesCertificateNames, type CertificateNames } from "../../core/broker-endpoints";
import { parsePlatformConfig, type PlatformConfigInput } from "../../core/platform-config";
import { nodeHost } from "./docker-broker";
import { kubernetesServiceNames } from "./kubernetes-broker";

/** For the broker component named `brokerName` (its Services' names start with it on Kubernetes). */
export function platformCertificateNames(platform: PlatformConfigInput, brokerName: string): CertificateNames {
  const model = parsePlatformConfig(platform);
  const extra = model.pki.brokerCertificate;
  if (model.target === "docker") {
    return dockerCertificateNames(Array.from({ length: model.nodes }, (_, i) => nodeHost(model.docker.namePrefix, i)), model.docker.publishAddress, extra);
  }
  const { headless, services } = kubernetesServiceNames(model, brokerName);
  return kubernetesCertificateNames({ name: brokerName, namespace: model.kubernetes.namespace, headless, nodes: model.nodes, services }, extra);
}
