#!/usr/bin/env node
'use strict';
/**
 * The WebSocket load generator of `npm run bench` (scenarios g and h), run as
 * its own process: N connections to ws://127.0.0.1:PORT/PATH, each opened
 * with a real RFC 6455 handshake (101 and Sec-WebSocket-Accept checked), then
 *
 *   --mode echo   one masked binary frame of --size payload bytes in flight per
 *                 connection; the next goes when the whole frame has come
 *                 back (the backend echoes bytes). Counts messages and their
 *                 round-trip times.
 *   --mode bulk   each connection writes masked frames of --size payload
 *                 bytes as fast as the socket takes them (with backpressure)
 *                 and reads the echo. Counts bytes that came back.
 *
 * Frames are built once and sent as raw bytes: the proxies only tunnel
 * bytes, and the echo backend (ws-echo-backend.js) returns them unparsed, so
 * counting bytes is exact and costs the driver next to nothing per message.
 *
 *   node scripts/bench/websocket-driver.js --port 8080 [--path /ws] --mode echo|bulk
 *        [--connections 32] [--size 1024] [--warmup 1] [--duration 10]
 *
 * Output (stdout): `MEASURE start` when the warm-up is over and counting
 * begins, `MEASURE end` when it stops (the harness reads the proxy's CPU time
 * at each), then one line `WSJSON {...}`. Any connection failing or closing
 * during the counted time is an error (counted, and the exit code is 1).
 */
const crypto = require('node:crypto');
const net = require('node:net');
const { acceptKey } = require('./ws-echo-backend');

/** A masked binary frame (FIN set) with `size` random payload bytes (RFC 6455 §5.2). */
function maskedFrame(size) {
  const len = size < 126 ? 2 : size < 65536 ? 4 : 10;
  const frame = Buffer.alloc(len + 4 + size);
  frame[0] = 0x82;
  if (size < 126) frame[1] = 0x80 | size;
  else if (size < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(size, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(size), 2);
  }
  crypto.randomFillSync(frame, len); // mask key and (already masked) payload
  return frame;
}

/**
 * Opens one WebSocket connection: sends the upgrade request, checks the 101
 * and Sec-WebSocket-Accept. Resolves { socket, rest } (rest: bytes that came
 * after the 101 head); the socket is flowing with no 'data' listener left.
 */
function openWebSocket(port, path, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const key = crypto.randomBytes(16).toString('base64');
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error(`no 101 within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error(`connection closed before the 101 (${buffered.length} bytes came)`)));
    socket.on('connect', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    const onData = (chunk) => {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffered.subarray(0, end).toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (!status || status[1] !== '101') return fail(new Error(`upgrade answered ${JSON.stringify(head.split('\r\n')[0])}`));
      const accept = /^sec-websocket-accept:[ \t]*(\S+)/im.exec(head);
      if (!accept || accept[1] !== acceptKey(key)) return fail(new Error('101 without the right Sec-WebSocket-Accept'));
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('error', fail);
      socket.removeAllListeners('close');
      resolve({ socket, rest: buffered.subarray(end + 4) });
    };
    socket.on('data', onData);
  });
}

/**
 * Readiness check for the harness: one upgrade, one `size`-byte frame there
 * and back, compared byte for byte. Resolves { status: 101, bytes } on success
 * (bytes: the echoed frame's length) or rejects with what went wrong.
 */
async function probe(port, path, size = 1024, timeoutMs = 2000) {
  const { socket, rest } = await openWebSocket(port, path, timeoutMs);
  const frame = maskedFrame(size);
  return new Promise((resolve, reject) => {
    let got = rest;
    const timer = setTimeout(() => done(new Error(`echo incomplete after ${timeoutMs} ms (${got.length}/${frame.length} bytes)`)), timeoutMs);
    const done = (err) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve({ status: 101, bytes: got.length });
    };
    const check = () => {
      if (got.length < frame.length) return;
      done(got.subarray(0, frame.length).equals(frame) ? null : new Error('echoed bytes differ from the frame sent'));
    };
    socket.on('data', (chunk) => {
      got = Buffer.concat([got, chunk]);
      check();
    });
    socket.on('error', done);
    socket.on('close', () => done(new Error(`closed after ${got.length}/${frame.length} echoed bytes`)));
    socket.write(frame);
    check();
  });
}

// ---- the load generator ------------------------------------------------------

/** Round-trip times in 1 µs buckets up to 1 s, for percentiles without keeping samples. */
class Histogram {
  constructor() {
    this.buckets = new Uint32Array(1_000_001);
    this.count = 0;
    this.sum = 0;
    this.max = 0;
  }
  record(us) {
    const i = Math.min(this.buckets.length - 1, Math.max(0, Math.round(us)));
    this.buckets[i]++;
    this.count++;
    this.sum += us;
    if (us > this.max) this.max = us;
  }
  percentile(p) {
    if (!this.count) return null;
    const want = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i];
      if (seen >= want) return i;
    }
    return this.buckets.length - 1;
  }
}

function parseArgs(argv) {
  const o = { port: 0, path: '/ws', mode: 'echo', connections: 32, size: 1024, warmup: 1, duration: 10 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in o)) throw new Error(`unknown option ${argv[i]}`);
    o[key] = typeof o[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!o.port) throw new Error('--port is required');
  if (!['echo', 'bulk'].includes(o.mode)) throw new Error('--mode: echo or bulk');
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const frame = maskedFrame(o.size);
  const hist = new Histogram();
  const state = { counting: false, stopped: false, messages: 0, bytes: 0, errors: 0, firstError: null };
  const conns = await Promise.all(Array.from({ length: o.connections }, () => openWebSocket(o.port, o.path)));

  const onBroken = (what) => (err) => {
    if (state.stopped) return;
    state.errors++;
    if (!state.firstError) state.firstError = `${what}${err && err.message ? `: ${err.message}` : ''}`;
  };

  for (const { socket, rest } of conns) {
    socket.on('error', onBroken('connection error'));
    socket.on('close', onBroken('connection closed by the proxy'));
    if (o.mode === 'echo') {
      let pending = rest.length;
      let sentAt = 0;
      const send = () => {
        sentAt = performance.now();
        socket.write(frame);
      };
      socket.on('data', (chunk) => {
        pending += chunk.length;
        while (pending >= frame.length) {
          pending -= frame.length;
          if (state.counting) {
            state.messages++;
            state.bytes += frame.length;
            hist.record((performance.now() - sentAt) * 1000);
          }
          if (!state.stopped) send();
        }
      });
      send();
    } else {
      socket.on('data', (chunk) => {
        if (state.counting) state.bytes += chunk.length;
      });
      const pump = () => {
        while (!state.stopped && socket.write(frame));
      };
      socket.on('drain', pump);
      pump();
    }
  }

  await new Promise((r) => setTimeout(r, o.warmup * 1000));
  process.stdout.write('MEASURE start\n');
  state.counting = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, o.duration * 1000));
  state.counting = false;
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write('MEASURE end\n');
  state.stopped = true;
  for (const { socket } of conns) socket.destroy();

  const report = {
    mode: o.mode,
    connections: o.connections,
    frame_bytes: frame.length,
    payload_bytes: o.size,
    seconds,
    messages: o.mode === 'echo' ? state.messages : null,
    // Bytes that came back; each also went out, so the tunnel carried twice as many.
    echoed_bytes: state.bytes,
    errors: state.errors,
    first_error: state.firstError,
    latency_us:
      o.mode === 'echo' && hist.count
        ? { mean: hist.sum / hist.count, p50: hist.percentile(50), p99: hist.percentile(99), max: hist.max }
        : null,
  };
  process.stdout.write(`WSJSON ${JSON.stringify(report)}\n`);
  process.exit(state.errors ? 1 : 0);
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`websocket-driver: ${err.message}\n`);
    process.exit(2);
  });
}

module.exports = { maskedFrame, openWebSocket, probe };
