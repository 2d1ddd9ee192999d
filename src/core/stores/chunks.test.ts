import { chunkBytesFor, chunkKey, decodeManifest, encodeManifest, joinChunks, splitValue } from './chunks';

describe('chunks', () => {
  const value = Buffer.from('abcdefghij'.repeat(1000));
  const { manifest, chunks } = splitValue(value, 3000, 0xabc);
  const read = (bufs: (Buffer | null)[], generation = 0xabc): { value: Buffer | null; flags: number }[] => bufs.map((b) => ({ value: b, flags: generation }));

  it('splits at the chunk size and joins back byte-exact', () => {
    expect(chunks.map((c) => c.length)).toEqual([3000, 3000, 3000, 1000]);
    expect(decodeManifest(encodeManifest(manifest))).toEqual(manifest);
    expect(joinChunks(manifest, read(chunks))!.equals(value)).toBe(true);
  });

  it.each([
    ['a missing chunk', read([chunks[0]!, null, chunks[2]!, chunks[3]!])],
    ['a chunk of another generation', read(chunks, 0xabd)],
    ['a chunk of the wrong length', read([chunks[0]!, chunks[1]!.subarray(1), chunks[2]!, chunks[3]!])],
    ['changed bytes (checksum)', read([chunks[0]!, Buffer.alloc(3000, 1), chunks[2]!, chunks[3]!])],
    ['too few chunks', read(chunks.slice(0, 3))],
  ])('%s is a miss', (_name, got) => {
    expect(joinChunks(manifest, got)).toBeUndefined();
  });

  it('refuses manifests it did not write, and keeps room for the item header in each chunk', () => {
    expect(decodeManifest(Buffer.from('EP'))).toBeUndefined();
    const bad = encodeManifest(manifest);
    bad.writeUInt16BE(9, 16);
    expect(decodeManifest(bad)).toBeUndefined();
    expect(chunkBytesFor(1024 * 1024)).toBe(1024 * 1024 - 1024);
    expect(chunkKey('k', 255, 2)).toBe('k.ff.2');
  });
});
