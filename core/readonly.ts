/**
 * A parsed config part as a model exposes it: its fields readonly, and its lists readonly too
 * (`Readonly<T>` alone would leave `model.listeners.tenantMqtts.push` compiling).
 */
export type ReadonlyFields<T> = {
  readonly [K in keyof T]: T[K] extends readonly (infer U)[] ? readonly U[] : T[K];
};
