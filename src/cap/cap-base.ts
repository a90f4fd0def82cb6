/**
 * What every kind of directory entry answers (caps.ts, and the symbolic link
 * of symlink.ts, which is no cap). Its own module so that the kinds and the
 * `Cap` union over them import it without importing each other.
 */
export interface CapBase {
  readonly kind: string;
  /** A directory (mutable, signed) rather than a file. */
  readonly isDirectory: boolean;
  /** Holding this cap allows changing the object. */
  readonly isWritable: boolean;
  /** Holding this cap allows reading the plaintext. */
  readonly isReadable: boolean;
  toString(): string;
  /**
   * The strongest cap that still reads but cannot write (itself if already
   * read-only). Each kind narrows the type to the kind it answers, so on a
   * `Cap` this is again a `Cap`.
   */
  readonly(): CapBase;
}
