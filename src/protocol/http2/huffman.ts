/**
 * HPACK's Huffman code (RFC 7541 §5.2, Appendix B), for decoding only.
 *
 * The code is canonical: each symbol's code follows from the code lengths
 * alone (codes of one length are consecutive in symbol order, shorter codes
 * first), so only the lengths are listed; the table of Appendix B is rebuilt
 * from them at load. Decoding runs four bits at a time through a state
 * table (a state is a node of the code tree; no code is shorter than five
 * bits, so a nibble completes at most one symbol).
 */

/** Bits of the code of each symbol 0..256 (256: EOS). */
const CODE_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const EOS = 256;
/** Marks "no symbol" in a table entry. */
const NONE = 0x1ff;

/** Per state (tree node) and nibble: next state | symbol completed (or NONE) << 16. */
const TABLE = buildTable();

function buildTable(): Uint32Array {
  // Canonical codes from the lengths.
  const symbols = CODE_LENGTHS.map((length, symbol) => ({ length, symbol })).sort((a, b) => a.length - b.length || a.symbol - b.symbol);
  const codes = new Array<number>(CODE_LENGTHS.length);
  let code = 0;
  let length = symbols[0].length;
  for (const s of symbols) {
    code *= 2 ** (s.length - length);
    length = s.length;
    codes[s.symbol] = code++;
  }
  // The code tree: node n's children at 2n, 2n+1; a leaf is stored as -(symbol + 1).
  const children: number[] = [0, 0];
  let nodes = 1;
  for (let symbol = 0; symbol < codes.length; symbol++) {
    let node = 0;
    for (let bit = CODE_LENGTHS[symbol] - 1; bit >= 0; bit--) {
      const b = Math.floor(codes[symbol] / 2 ** bit) & 1;
      if (bit === 0) {
        children[node * 2 + b] = -(symbol + 1);
      } else {
        if (children[node * 2 + b] === 0) {
          children[node * 2 + b] = nodes++;
          children.push(0, 0);
        }
        node = children[node * 2 + b];
      }
    }
  }
  const table = new Uint32Array(nodes * 16);
  for (let state = 0; state < nodes; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let symbol = NONE;
      for (let bit = 3; bit >= 0; bit--) {
        const next = children[node * 2 + ((nibble >> bit) & 1)];
        if (next < 0) {
          symbol = -next - 1;
          node = 0;
        } else {
          node = next;
        }
      }
      table[state * 16 + nibble] = node | (symbol << 16);
    }
  }
  return table;
}

/**
 * Decodes `buf[start..end)` into `out` from index 0; returns the decoded
 * length, or -1 for EOS inside the string (a decoding error). `out` must
 * hold `(end - start) * 8 / 5` bytes. Padding is not checked (the codec
 * that consumes the same bytes does).
 */
export function huffmanDecode(buf: Uint8Array, start: number, end: number, out: Uint8Array): number {
  let state = 0;
  let n = 0;
  for (let i = start; i < end; i++) {
    const byte = buf[i];
    let e = TABLE[state * 16 + (byte >> 4)];
    let symbol = e >>> 16;
    if (symbol !== NONE) {
      if (symbol === EOS) return -1;
      out[n++] = symbol;
    }
    state = e & 0xffff;
    e = TABLE[state * 16 + (byte & 15)];
    symbol = e >>> 16;
    if (symbol !== NONE) {
      if (symbol === EOS) return -1;
      out[n++] = symbol;
    }
    state = e & 0xffff;
  }
  return n;
}
