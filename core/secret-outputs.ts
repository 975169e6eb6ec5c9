/**
 * Outputs of this project's dynamic resources that carry credentials or keys, by resource type
 * (`pulumi-nodejs:dynamic/rabbitmq-mqtt:<type>`). A dynamic resource's state is its outputs, so
 * each of these must be a secret output, or the state holds it in plain text: the components
 * declare them as `additionalSecretOutputs` from here, and the policy pack (policy/rules.ts)
 * checks any program's resources against the same list.
 */
export const SECRET_OUTPUTS = {
  CertificateUser: ["connection"],
  DeviceFleet: ["connection", "credentials", "issuer"],
  IdentitySessions: ["connection", "accessDigest"],
  MqttVhostMapping: ["connection"],
  UserLimits: ["connection"],
  VhostLimits: ["connection"],
  VhostMetadata: ["connection"],
} as const satisfies Readonly<Record<string, readonly string[]>>;

export type DynamicResourceType = keyof typeof SECRET_OUTPUTS;
