import { NotFoundError } from '../../errors.js';
import type { S3Client } from '../chunks/s3/s3-client.js';
import { listObjects } from '../chunks/s3/list.js';
import { PACK_OBJECT_NAME, type PackObjects } from './pack-objects.js';

/** Packs as S3 objects `<prefix>packs/<16 hex>.pack`: one PUT each, read by ranged GETs. */
export class S3PackObjects implements PackObjects {
  constructor(
    private readonly client: S3Client,
    /** The store's key prefix (`[storage] s3.prefix`). */
    private readonly prefix: string,
  ) {}

  async put(pack: string, bytes: Uint8Array): Promise<void> {
    const res = await this.client.send({
      method: 'PUT',
      key: this.#key(pack),
      body: bytes,
      headers: { 'content-type': 'application/octet-stream' },
      maxBodyBytes: 64 * 1024,
    });
    if (res.status !== 200) this.client.fail(res, 'PUT (pack)');
  }

  async read(pack: string, offset: number, length: number): Promise<Uint8Array> {
    const res = await this.client.send({
      method: 'GET',
      key: this.#key(pack),
      headers: { range: `bytes=${offset}-${offset + length - 1}` },
      maxBodyBytes: length,
    });
    if (res.status === 404) throw new NotFoundError(`no pack ${pack}`);
    if (res.status === 206) return res.body;
    // A server that ignores Range answers the whole object (only a pack no larger than asked fits maxBodyBytes).
    if (res.status === 200) return res.body.slice(offset, offset + length);
    // Nothing at that range: the pack is shorter than the index says.
    if (res.status === 416) return new Uint8Array(0);
    this.client.fail(res, 'GET (pack range)');
  }

  async list(): Promise<{ pack: string; bytes: number; modifiedMs: number }[]> {
    const out: { pack: string; bytes: number; modifiedMs: number }[] = [];
    const prefix = `${this.prefix}packs/`;
    for await (const { key, size, modifiedMs } of listObjects(this.client, prefix, { operation: 'list packs' })) {
      const m = PACK_OBJECT_NAME.exec(key.slice(prefix.length));
      // Without a modification time a pack cannot be shown old enough to compact: left alone.
      if (m?.[1] === undefined || modifiedMs === undefined) continue;
      out.push({ pack: m[1], bytes: size, modifiedMs });
    }
    return out;
  }

  async remove(pack: string): Promise<void> {
    const res = await this.client.send({ method: 'DELETE', key: this.#key(pack), maxBodyBytes: 64 * 1024 });
    if (res.status !== 204 && res.status !== 200 && res.status !== 404) this.client.fail(res, 'DELETE (pack)');
  }

  #key(pack: string): string {
    return `${this.prefix}packs/${pack}.pack`;
  }
}
