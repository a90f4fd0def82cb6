// apache-md5 ships no types. Its one export, as src/auth/crypt.worker.ts uses it.
declare module 'apache-md5' {
  /** md5-crypt of `password` with the salt of `salt` (a whole $1$ hash will do); the hash text. */
  export default function apacheMd5(password: string, salt?: string): string;
}
