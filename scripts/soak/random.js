'use strict';
/**
 * The soak's seeded randomness (mulberry32, as test/helpers/random.ts): every
 * driver gets its own stream derived from the run's seed, so what each
 * connection sends, in which order, is the same for the same seed (the
 * interleaving across connections still follows the machine's timing).
 */
const crypto = require('node:crypto');

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Random {
  /** `stream` separates the drivers' sequences under one seed. */
  constructor(seed, stream = 0) {
    this.next = mulberry32((seed ^ Math.imul(stream + 1, 0x9e3779b1)) >>> 0);
  }

  /** An integer in [lo, hi]. */
  int(lo, hi) {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p) {
    return this.next() < p;
  }

  pick(list) {
    return list[Math.floor(this.next() * list.length)];
  }

  /** One of `entries` ([value, weight] pairs), by weight. */
  weighted(entries) {
    const total = entries.reduce((sum, [, w]) => sum + w, 0);
    let r = this.next() * total;
    for (const [value, w] of entries) {
      r -= w;
      if (r < 0) return value;
    }
    return entries[entries.length - 1][0];
  }
}

/**
 * A fixed block of seeded bytes that upload bodies are cut from (a slice at a
 * random offset): generating 256 KiB per request in JS would cost the client
 * more CPU than sending it.
 */
function bytePool(seed, size) {
  const out = Buffer.alloc(size);
  let block = Buffer.from(String(seed));
  for (let at = 0; at < size; at += 64) {
    block = crypto.createHash('sha512').update(block).digest();
    block.copy(out, at, 0, Math.min(64, size - at));
  }
  return out;
}

module.exports = { Random, bytePool };
