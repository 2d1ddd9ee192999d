// Values over memcached's item size (its -I): stored as chunks under derived keys on the page key's node,
// with a small manifest at the page key (DESIGN.md "Entries"). Pure: the manifest codec, the chunk keys and
// the checks that make any missing or mismatched chunk a miss, never a corrupt page. Only envelope entries
// are chunked (the memcached store decides); raw entries stay one item, as nginx reads them.
import { randomInt } from 'node:crypto';
import { crc32 } from 'node:zlib';

/** memcached flag bit on a manifest (next to ENVELOPE_FLAG): the value at this key is a manifest, not the entry. */
export const CHUNKED_FLAG = 0x0200;
/** What memcached spends on an item beyond its value (item header, key, CAS): kept free in each chunk. */
export const ITEM_OVERHEAD = 1024;

const MAGIC_0 = 0x45; // 'E'
const MAGIC_1 = 0x43; // 'C'
const VERSION = 1;
/** 'E' 'C' | version u8 | reserved u8 | generation u32 | total length u32 | chunk size u32 | count u16 | crc32 u32 */
export const MANIFEST_BYTES = 22;

export interface Manifest {
  /** Random per write: chunk keys carry it and each chunk's flags hold it, so chunks of two writes never mix. */
  readonly generation: number;
  readonly totalBytes: number;
  readonly chunkBytes: number;
  readonly count: number;
  /** crc32 of the whole value. */
  readonly checksum: number;
}

/** The largest chunk for an item size (memcached's -I less the item's own overhead). */
export function chunkBytesFor(itemBytes: number): number {
  return Math.max(1024, itemBytes - ITEM_OVERHEAD);
}

/** The manifest and its chunks (views into `value`, no copy) for a value split at `chunkBytes`. */
export function splitValue(value: Buffer, chunkBytes: number, generation = randomInt(1, 0xffffffff)): { manifest: Manifest; chunks: Buffer[] } {
  const chunks: Buffer[] = [];
  for (let off = 0; off < value.length; off += chunkBytes) chunks.push(value.subarray(off, Math.min(value.length, off + chunkBytes)));
  return { manifest: { generation, totalBytes: value.length, chunkBytes, count: chunks.length, checksum: crc32(value) }, chunks };
}

/** The key of chunk `index` of a page key's value of this generation (same node: the store routes by the page key). */
export function chunkKey(key: string, generation: number, index: number): string {
  return `${key}.${generation.toString(16)}.${index}`;
}

export function encodeManifest(m: Manifest): Buffer {
  const b = Buffer.alloc(MANIFEST_BYTES);
  b[0] = MAGIC_0;
  b[1] = MAGIC_1;
  b[2] = VERSION;
  b.writeUInt32BE(m.generation, 4);
  b.writeUInt32BE(m.totalBytes, 8);
  b.writeUInt32BE(m.chunkBytes, 12);
  b.writeUInt16BE(m.count, 16);
  b.writeUInt32BE(m.checksum, 18);
  return b;
}

/** The manifest, or undefined when the bytes are not one this version wrote (then the entry is a miss). */
export function decodeManifest(b: Buffer): Manifest | undefined {
  if (b.length !== MANIFEST_BYTES || b[0] !== MAGIC_0 || b[1] !== MAGIC_1 || b[2] !== VERSION) return undefined;
  const m = { generation: b.readUInt32BE(4), totalBytes: b.readUInt32BE(8), chunkBytes: b.readUInt32BE(12), count: b.readUInt16BE(16), checksum: b.readUInt32BE(18) };
  if (m.chunkBytes === 0 || m.count !== Math.ceil(m.totalBytes / m.chunkBytes)) return undefined;
  return m;
}

/**
 * The whole value from its chunks as read back (null: missing), or undefined when any is missing, has
 * another generation in its flags, or the wrong length, or the whole fails its checksum.
 */
export function joinChunks(m: Manifest, chunks: readonly { value: Buffer | null; flags: number }[]): Buffer | undefined {
  if (chunks.length !== m.count) return undefined;
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i]!;
    const expected = i < m.count - 1 ? m.chunkBytes : m.totalBytes - m.chunkBytes * (m.count - 1);
    if (c.value === null || c.flags !== m.generation || c.value.length !== expected) return undefined;
  }
  const whole = Buffer.concat(
    chunks.map((c) => c.value!),
    m.totalBytes,
  );
  return crc32(whole) === m.checksum ? whole : undefined;
}
