import { NotFoundError } from '../../errors.js';
import type { S3Client } from '../chunks/s3/s3-client.js';
import { parseListObjectsV2 } from '../chunks/s3/xml.js';
import { PACK_OBJECT_NAME, type PackObjects } from './pack-objects.js';

const MAX_LIST_BODY = 4 * 1024 * 1024;

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
    let token: string | undefined;
    do {
      const query: [string, string][] = [
        ['list-type', '2'],
        ['prefix', prefix],
      ];
      if (token !== undefined) query.push(['continuation-token', token]);
      const res = await this.client.send({ method: 'GET', query, maxBodyBytes: MAX_LIST_BODY });
      if (res.status !== 200) this.client.fail(res, 'list packs');
      const page = parseListObjectsV2(Buffer.from(res.body).toString('utf8'));
      for (const { key, size, modifiedMs } of page.objects) {
        const m = PACK_OBJECT_NAME.exec(key.slice(prefix.length));
        // Without a modification time a pack cannot be shown old enough to compact: left alone.
        if (m?.[1] === undefined || modifiedMs === undefined) continue;
        out.push({ pack: m[1], bytes: size, modifiedMs });
      }
      token = page.nextContinuationToken;
    } while (token !== undefined);
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
