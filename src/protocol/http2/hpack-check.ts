/**
 * Finds the request header fields node:http2 would silently drop.
 *
 * nghttp2 is strict about pseudo-header fields and connection-specific
 * fields (it resets the stream), but it only *ignores* a regular field whose
 * name or value is invalid (nghttp2_http_on_header returns
 * NGHTTP2_ERR_IGN_HTTP_HEADER), and node:http2 installs an
 * on_invalid_header callback that accepts that (src/node_http2.cc,
 * Http2Session::OnInvalidHeader: "Ignore invalid header fields by
 * default"). The field never reaches JavaScript and the rest of the request
 * is forwarded. RFC 9113 §8.2.1 calls such a request malformed, and nginx and
 * HAProxy refuse it with a stream error; so does zproxy.
 *
 * This decoder reads each request header block (RFC 7541) before nghttp2
 * does and applies the same checks nghttp2 makes on regular fields, server
 * side (nghttp2 1.61, as in Node.js 20):
 *   - name: non-empty, only lower-case tchar (nghttp2_check_header_name;
 *     an upper-case name nghttp2 rejects itself);
 *   - `host`: only the characters of an authority (nghttp2_check_authority);
 *   - any other value: no CTL but HTAB, no DEL, and no leading or trailing
 *     SP or HTAB (nghttp2_check_header_value_rfc9113).
 * Pseudo-header fields are left to nghttp2.
 *
 * Indexed fields refer to entries added earlier on the connection, so the
 * dynamic table is mirrored (entry sizes and whether the entry's name or
 * value was invalid), not its strings. A block this decoder cannot decode is
 * reported as a compression error; nghttp2 would fail it too.
 */
import { huffmanDecode } from './huffman';

export const BLOCK_OK = 0;
/** A field nghttp2 would drop: refuse the stream (PROTOCOL_ERROR). */
export const BLOCK_MALFORMED = 1;
/** Not a valid HPACK block: a connection error (COMPRESSION_ERROR). */
export const BLOCK_UNDECODABLE = 2;
export type BlockResult = typeof BLOCK_OK | typeof BLOCK_MALFORMED | typeof BLOCK_UNDECODABLE;

/** What a name is, for the checks on its value. */
const NAME_REGULAR = 0;
const NAME_HOST = 1;
const NAME_PSEUDO = 2;
const NAME_INVALID = 3;

/** RFC 7541 Appendix A: 61 entries; 1–14 are pseudo-header fields, 38 is `host`. */
const STATIC_ENTRIES = 61;
const STATIC_HOST = 38;
const LAST_STATIC_PSEUDO = 14;

/** The decoder's table size before any update: SETTINGS_HEADER_TABLE_SIZE, 4096 (node:http2's default). */
const INITIAL_TABLE_SIZE = 4096;

const VALID_NAME = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") VALID_NAME[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) VALID_NAME[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) VALID_NAME[c] = 1;

const VALID_VALUE = new Uint8Array(256);
VALID_VALUE[0x09] = 1;
for (let c = 0x20; c <= 0x7e; c++) VALID_VALUE[c] = 1;
for (let c = 0x80; c <= 0xff; c++) VALID_VALUE[c] = 1;

const VALID_AUTHORITY = new Uint8Array(256);
for (const c of "!$%&'()*+,-.:;=@[]_~") VALID_AUTHORITY[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) VALID_AUTHORITY[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) VALID_AUTHORITY[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) VALID_AUTHORITY[c] = 1;

const HOST = [0x68, 0x6f, 0x73, 0x74];

/** Is the field (name kind, value) one nghttp2 would drop? */
function badField(kind: number, value: Uint8Array, length: number): boolean {
  switch (kind) {
    case NAME_PSEUDO:
      return false;
    case NAME_INVALID:
      return true;
    case NAME_HOST:
      for (let i = 0; i < length; i++) if (VALID_AUTHORITY[value[i]] === 0) return true;
      return false;
    default: {
      if (length === 0) return false;
      const first = value[0];
      const last = value[length - 1];
      if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) return true;
      for (let i = 0; i < length; i++) if (VALID_VALUE[value[i]] === 0) return true;
      return false;
    }
  }
}

function nameKind(name: Uint8Array, length: number): number {
  if (length === 0) return NAME_INVALID;
  if (name[0] === 0x3a /* ':' */) return NAME_PSEUDO;
  for (let i = 0; i < length; i++) if (VALID_NAME[name[i]] === 0) return NAME_INVALID;
  if (length === 4 && name[0] === HOST[0] && name[1] === HOST[1] && name[2] === HOST[2] && name[3] === HOST[3]) return NAME_HOST;
  return NAME_REGULAR;
}

function staticKind(index: number): number {
  if (index <= LAST_STATIC_PSEUDO) return NAME_PSEUDO;
  return index === STATIC_HOST ? NAME_HOST : NAME_REGULAR;
}

/** One connection's request decoder state: the mirrored dynamic table. */
export class HeaderBlockChecker {
  /** Dynamic entries, newest last: size (name + value octets + 32), name kind, and whether the whole field is bad. */
  private sizes: number[] = [];
  private kinds: number[] = [];
  private bad: boolean[] = [];
  /** Oldest live entry (entries before it were evicted; compacted now and then). */
  private first = 0;
  private tableSize = 0;
  private maxSize = INITIAL_TABLE_SIZE;
  /** Decoded strings land here (grown as needed). */
  private scratch = new Uint8Array(4096);
  private scratchLength = 0;
  private pos = 0;

  /** Checks one complete header block (HEADERS and CONTINUATION fragments joined). */
  check(block: Uint8Array): BlockResult {
    this.pos = 0;
    let malformed = false;
    const end = block.length;
    while (this.pos < end) {
      const b = block[this.pos];
      if (b & 0x80) {
        // Indexed field.
        const index = this.integer(block, 7);
        if (index <= 0) return BLOCK_UNDECODABLE;
        if (index > STATIC_ENTRIES) {
          const entry = this.entry(index);
          if (entry < 0) return BLOCK_UNDECODABLE;
          if (this.bad[entry]) malformed = true;
        }
        continue;
      }
      if ((b & 0xe0) === 0x20) {
        // Dynamic table size update.
        const size = this.integer(block, 5);
        if (size < 0) return BLOCK_UNDECODABLE;
        this.maxSize = size;
        this.evict(0);
        continue;
      }
      // Literal field: with incremental indexing (01), without (0000) or never indexed (0001).
      const indexing = (b & 0xc0) === 0x40;
      const index = this.integer(block, indexing ? 6 : 4);
      if (index < 0) return BLOCK_UNDECODABLE;
      let kind: number;
      /** The name's octets, for the size of a new entry (taken before the value reuses the scratch buffer). */
      let nameOctets: number;
      if (index === 0) {
        if (!this.string(block)) return BLOCK_UNDECODABLE;
        nameOctets = this.scratchLength;
        kind = nameKind(this.scratch, nameOctets);
      } else if (index <= STATIC_ENTRIES) {
        kind = staticKind(index);
        nameOctets = STATIC_NAME_LENGTHS[index];
      } else {
        const entry = this.entry(index);
        if (entry < 0) return BLOCK_UNDECODABLE;
        kind = this.kinds[entry];
        nameOctets = this.sizes[entry] - 32 - this.valueLengths[entry];
      }
      if (!this.string(block)) return BLOCK_UNDECODABLE;
      const valueLength = this.scratchLength;
      const isBad = badField(kind, this.scratch, valueLength);
      if (isBad) malformed = true;
      if (indexing) this.insert(nameOctets + valueLength + 32, kind, isBad, valueLength);
    }
    return malformed ? BLOCK_MALFORMED : BLOCK_OK;
  }

  // --- the mirrored dynamic table ---------------------------------------------

  /** Value octets of each entry, to size a new entry that reuses an entry's name. */
  private valueLengths: number[] = [];

  /** The array position of dynamic `index` (62 = newest), or -1. */
  private entry(index: number): number {
    const at = this.sizes.length - 1 - (index - STATIC_ENTRIES - 1);
    return at >= this.first && at < this.sizes.length ? at : -1;
  }

  private insert(size: number, kind: number, isBad: boolean, valueLength: number): void {
    if (size > this.maxSize) {
      // RFC 7541 §4.4: an entry larger than the table empties it and is not added.
      this.evict(this.maxSize + 1);
      return;
    }
    this.evict(size);
    this.sizes.push(size);
    this.kinds.push(kind);
    this.bad.push(isBad);
    this.valueLengths.push(valueLength);
    this.tableSize += size;
  }

  /** Evicts oldest entries until `room` more octets fit. */
  private evict(room: number): void {
    while (this.first < this.sizes.length && this.tableSize + room > this.maxSize) {
      this.tableSize -= this.sizes[this.first];
      this.first++;
    }
    if (this.first > 64 && this.first * 2 > this.sizes.length) {
      this.sizes = this.sizes.slice(this.first);
      this.kinds = this.kinds.slice(this.first);
      this.bad = this.bad.slice(this.first);
      this.valueLengths = this.valueLengths.slice(this.first);
      this.first = 0;
    }
  }

  // --- primitives (RFC 7541 §5) -------------------------------------------------

  /** An integer with an N-bit prefix at `pos`; -1 if truncated or too large. */
  private integer(block: Uint8Array, prefixBits: number): number {
    const max = (1 << prefixBits) - 1;
    if (this.pos >= block.length) return -1;
    let value = block[this.pos++] & max;
    if (value < max) return value;
    let shift = 0;
    for (;;) {
      if (this.pos >= block.length || shift > 28) return -1;
      const b = block[this.pos++];
      value += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) return value;
    }
  }

  /** A string literal at `pos`, decoded into the scratch buffer; false if invalid. */
  private string(block: Uint8Array): boolean {
    if (this.pos >= block.length) return false;
    const huffman = (block[this.pos] & 0x80) !== 0;
    const length = this.integer(block, 7);
    if (length < 0 || this.pos + length > block.length) return false;
    const start = this.pos;
    this.pos += length;
    if (!huffman) {
      this.room(length);
      this.scratch.set(block.subarray(start, start + length));
      this.scratchLength = length;
      return true;
    }
    this.room(Math.ceil((length * 8) / 5));
    const n = huffmanDecode(block, start, start + length, this.scratch);
    if (n < 0) return false;
    this.scratchLength = n;
    return true;
  }

  private room(length: number): void {
    if (this.scratch.length < length) this.scratch = new Uint8Array(Math.max(length, this.scratch.length * 2));
  }
}

/** Name lengths of the static table (RFC 7541 Appendix A), by index. */
const STATIC_NAME_LENGTHS = [
  0,
  ':authority', ':method', ':method', ':path', ':path', ':scheme', ':scheme', ':status', ':status', ':status', ':status', ':status', ':status', ':status',
  'accept-charset', 'accept-encoding', 'accept-language', 'accept-ranges', 'accept', 'access-control-allow-origin', 'age', 'allow', 'authorization',
  'cache-control', 'content-disposition', 'content-encoding', 'content-language', 'content-length', 'content-location', 'content-range',
  'content-type', 'cookie', 'date', 'etag', 'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range',
  'if-unmodified-since', 'last-modified', 'link', 'location', 'max-forwards', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer',
  'refresh', 'retry-after', 'server', 'set-cookie', 'strict-transport-security', 'transfer-encoding', 'user-agent', 'vary', 'via',
  'www-authenticate',
].map((name, i) => (i === 0 ? 0 : (name as string).length));
