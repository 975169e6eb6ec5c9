/**
 * The resource options of each registration under mocks (protect, parent, provider,
 * additionalSecretOutputs, dependencies, deleteBeforeReplace), which the Mocks interface does not
 * show: read from the mock monitor's registerResource requests, wrapped once here. The unit-test
 * mocks record them; the broker-applying mocks act on deleteBeforeReplace as the engine does.
 */
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getProtect(): boolean;
  getParent(): string;
  getProvider(): string;
  getAdditionalsecretoutputsList(): string[];
  getDependenciesList(): string[];
  getDeletebeforereplace(): boolean;
}

export interface RegistrationOptions {
  readonly protect: boolean;
  readonly parent: string;
  readonly provider: string;
  readonly additionalSecretOutputs: string[];
  readonly dependencies: string[];
  readonly deleteBeforeReplace: boolean;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { MockMonitor } = require("@pulumi/pulumi/runtime/mocks") as {
  MockMonitor: { prototype: { registerResource(req: RegisterRequest, cb: unknown): Promise<void> } };
};

const options = new Map<string, RegistrationOptions>();

/** The options the registration of this type and logical name carried. */
export function registrationOptions(type: string, name: string): RegistrationOptions | undefined {
  return options.get(`${type}::${name}`);
}

// eslint-disable-next-line @typescript-eslint/unbound-method -- called with .call(this) below
const original = MockMonitor.prototype.registerResource;
MockMonitor.prototype.registerResource = function (req: RegisterRequest, cb: unknown) {
  options.set(`${req.getType()}::${req.getName()}`, {
    protect: req.getProtect(),
    parent: req.getParent(),
    provider: req.getProvider(),
    additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
    dependencies: req.getDependenciesList(),
    deleteBeforeReplace: req.getDeletebeforereplace(),
  });
  return original.call(this, req, cb);
};
