import path from 'node:path';
import { throwIfAborted } from '../../../errors.js';
import { addressFromName } from '../../address.js';
import type { ChunkAddress } from '../chunk-store.js';
import { openDirectory, statFile } from './fs-files.js';

/**
 * Where FsChunkStore keeps a chunk: layout v2 (written) and v1 (still read).
 * fs-chunk-store.ts explains both. The one place these rules live: the I/O
 * threads' put (fs-sync.ts) names and places chunks with these functions too.
 */
const SHARD_NAME = /^[a-z2-7]{2}$/;

export function chunkPathIn(chunksDir: string, address: ChunkAddress): string {
  const name = address.toString();
  return path.join(chunksDir, name.slice(-3, -1), name);
}

export function legacyChunkPathIn(chunksDir: string, address: ChunkAddress): string {
  const name = address.toString();
  return path.join(chunksDir, name.slice(-3, -1), name.slice(-5, -3), name);
}

/**
 * Every chunk file in its right place, v2 and v1, each address once (a v1
 * file is skipped when a v2 copy exists); stray or misplaced files are
 * ignored, never yielded. Streams the directories (fs.Dir), never reads one whole.
 */
export async function* walkChunks(chunksDir: string, signal?: AbortSignal): AsyncGenerator<{ address: ChunkAddress; file: string }> {
  throwIfAborted(signal);
  for await (const shard of await openDirectory(chunksDir)) {
    if (!shard.isDirectory() || !SHARD_NAME.test(shard.name)) continue;
    const shardPath = path.join(chunksDir, shard.name);
    for await (const entry of await openDirectory(shardPath)) {
      throwIfAborted(signal);
      const file = path.join(shardPath, entry.name);
      if (entry.isFile()) {
        const address = addressFromName(entry.name);
        if (address !== undefined && chunkPathIn(chunksDir, address) === file) yield { address, file };
      } else if (entry.isDirectory() && SHARD_NAME.test(entry.name)) {
        yield* walkLegacy(chunksDir, file, signal);
      }
    }
  }
}

async function* walkLegacy(
  chunksDir: string,
  lowerPath: string,
  signal: AbortSignal | undefined,
): AsyncGenerator<{ address: ChunkAddress; file: string }> {
  for await (const entry of await openDirectory(lowerPath)) {
    throwIfAborted(signal);
    if (!entry.isFile()) continue;
    const address = addressFromName(entry.name);
    const file = path.join(lowerPath, entry.name);
    if (address === undefined || legacyChunkPathIn(chunksDir, address) !== file) continue;
    if ((await statFile(chunkPathIn(chunksDir, address))) === undefined) yield { address, file };
  }
}
