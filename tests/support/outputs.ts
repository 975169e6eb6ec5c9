import * as pulumi from "@pulumi/pulumi";

/**
 * Resolves an Output and tells whether it is secret. Rejects instead of hanging when it never
 * resolves (an exception inside `apply` under mocks tends to hang).
 */
export async function settle<T>(o: pulumi.Input<T>, timeoutMs = 120_000): Promise<{ value: T; secret: boolean }> {
  const out = pulumi.output(o);
  const secret = await pulumi.isSecret(out);
  const value = await new Promise<T>((resolve, reject) => {
    out.apply((v) => {
      resolve(v as T);
      return v;
    });
    setTimeout(() => reject(new Error(`output did not resolve within ${timeoutMs} ms`)), timeoutMs).unref();
  });
  return { value, secret };
}
