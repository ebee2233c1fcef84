/**
 * A fast 32-bit string hash for the hash-based balancers: FNV-1a over UTF-16
 * code units, finished with murmur3's fmix32 so that short keys spread over
 * all 32 bits (the ring is searched by the full value). Reads `text` between
 * `start` and `end` in place, so a cookie value is hashed without slicing it.
 */

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

export function hashString(text: string, start = 0, end = text.length): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), FNV_PRIME);
  return mix32(h);
}

/** murmur3 fmix32: also the deterministic "next hash" of a rehash sequence. */
export function mix32(value: number): number {
  let h = value ^ (value >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
