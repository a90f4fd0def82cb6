/**
 * Small adapters for ssh2's callback API in tests.
 *
 * `call` turns one callback-style call into a promise; `statusOf` resolves to
 * the SFTP status code a request failed with (undefined when it succeeded),
 * so a test can assert on codes without try/catch.
 */
export function call<T>(fn: (cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));
}

export function statusOf(p: Promise<unknown>): Promise<number | undefined> {
  return p.then(
    () => undefined,
    (err: { code?: number }) => err.code,
  );
}
