import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DirectoryReadCap,
  DirectoryVerifyCap,
  DirectoryWriteCap,
  FileReadCap,
  FileVerifyCap,
  LiteralCap,
  UnknownCap,
  parseCap,
} from '../../src/cap/index.js';

/**
 * Frozen cap vectors (docs/spec/caps.md). The expected strings were
 * generated once and cross-checked against an independent implementation of
 * the derivations (Python hashlib + cryptography's Ed25519); a failure here
 * means the cap format changed, which needs a new format version, not a new
 * vector file.
 */
interface Vectors {
  directories: {
    label: string;
    writeSecretHex: string;
    readKeyHex: string;
    publicKeyHex: string;
    storageIndexHex: string;
    dirWrite: string;
    dirRead: string;
    dirVerify: string;
  }[];
  files: {
    label: string;
    manifestKeyHex: string;
    manifestHashHex: string;
    size: number;
    verifyKeyHex: string;
    fileRead: string;
    fileVerify: string;
  }[];
  literals: { dataHex: string; literal: string }[];
  malformed: { label: string; text: string }[];
  unknown: string[];
  equivalentSpellings: { text: string; canonical: string }[];
  snapshots: {
    label: string;
    readKeyHex: string;
    publicKeyHex: string;
    storageIndexHex: string;
    epoch: string;
    dirSnap: string;
    dirRead: string;
    dirVerify: string;
  }[];
}

const vectors = JSON.parse(readFileSync(new URL('./caps.json', import.meta.url), 'utf8')) as Vectors;
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('cap vectors', () => {
  it.each(vectors.directories)('directory: $label', (v) => {
    const write = new DirectoryWriteCap(bytes(v.writeSecretHex));
    expect(hex(write.readKey)).toBe(v.readKeyHex);
    expect(hex(write.publicKey)).toBe(v.publicKeyHex);
    expect(hex(write.storageIndex)).toBe(v.storageIndexHex);
    expect(write.toString()).toBe(v.dirWrite);
    expect(write.readonly().toString()).toBe(v.dirRead);
    expect(write.verifier().toString()).toBe(v.dirVerify);

    const parsedWrite = parseCap(v.dirWrite);
    expect(parsedWrite).toBeInstanceOf(DirectoryWriteCap);
    expect(parsedWrite.readonly().toString()).toBe(v.dirRead);
    const parsedRead = parseCap(v.dirRead) as DirectoryReadCap;
    expect(parsedRead).toBeInstanceOf(DirectoryReadCap);
    expect(hex(parsedRead.storageIndex)).toBe(v.storageIndexHex);
    expect(parsedRead.verifier().toString()).toBe(v.dirVerify);
    const parsedVerify = parseCap(v.dirVerify) as DirectoryVerifyCap;
    expect(parsedVerify).toBeInstanceOf(DirectoryVerifyCap);
    expect(hex(parsedVerify.storageIndex)).toBe(v.storageIndexHex);
    expect(parsedVerify.isReadable).toBe(false);
  });

  it.each(vectors.files)('file: $label', (v) => {
    const read = new FileReadCap(bytes(v.manifestKeyHex), bytes(v.manifestHashHex), v.size);
    expect(read.toString()).toBe(v.fileRead);
    expect(hex(read.verifyKey)).toBe(v.verifyKeyHex);
    expect(read.verifier().toString()).toBe(v.fileVerify);
    const parsed = parseCap(v.fileRead) as FileReadCap;
    expect(parsed).toBeInstanceOf(FileReadCap);
    expect(parsed.size).toBe(v.size);
    const verify = parseCap(v.fileVerify) as FileVerifyCap;
    expect(verify).toBeInstanceOf(FileVerifyCap);
    expect(hex(verify.manifestHash)).toBe(v.manifestHashHex);
  });

  it.each(vectors.literals)('literal $literal', (v) => {
    expect(new LiteralCap(bytes(v.dataHex)).toString()).toBe(v.literal);
    const parsed = parseCap(v.literal) as LiteralCap;
    expect(parsed).toBeInstanceOf(LiteralCap);
    expect(hex(parsed.data)).toBe(v.dataHex);
  });

  it.each(vectors.snapshots)('snapshot: $label', (v) => {
    const cap = parseCap(v.dirSnap) as DirectoryReadCap;
    expect(cap).toBeInstanceOf(DirectoryReadCap);
    expect(cap.epoch).toBe(BigInt(v.epoch));
    expect(hex(cap.readKey)).toBe(v.readKeyHex);
    expect(hex(cap.publicKey)).toBe(v.publicKeyHex);
    expect(hex(cap.storageIndex)).toBe(v.storageIndexHex);
    expect(cap.isWritable).toBe(false);
    expect(cap.readonly()).toBe(cap);
    expect(cap.verifier().toString()).toBe(v.dirVerify);
    expect(cap.at(undefined).toString()).toBe(v.dirRead);
    expect((parseCap(v.dirRead) as DirectoryReadCap).at(BigInt(v.epoch)).toString()).toBe(v.dirSnap);
    expect(new DirectoryReadCap(bytes(v.readKeyHex), bytes(v.publicKeyHex), BigInt(v.epoch)).toString()).toBe(v.dirSnap);
  });

  it.each(vectors.malformed)('malformed: $label', (v) => {
    expect(() => parseCap(v.text)).toThrow(expect.objectContaining({ name: 'CapParseError', code: 'ERR_INVALID_INPUT' }));
  });

  it.each(vectors.unknown)('unknown passes through: %s', (text) => {
    const cap = parseCap(text);
    expect(cap).toBeInstanceOf(UnknownCap);
    expect(cap.toString()).toBe(text);
  });

  it.each(vectors.equivalentSpellings)('another spelling parses to the canonical cap', (v) => {
    expect(parseCap(v.text).toString()).toBe(v.canonical);
  });
});
