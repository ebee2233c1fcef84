'use strict';
/**
 * A small inspector client for looking inside zproxy's heaps during a soak
 * (zproxy started with --inspect=127.0.0.1:PORT): the main thread's session,
 * and each worker thread's through the NodeWorker domain (a worker has a heap
 * of its own, so the main thread's numbers say nothing about it). Per thread
 * it can force a full GC, read the heap in use, and write a heap snapshot.
 * Loopback only.
 */
const fs = require('node:fs');
const http = require('node:http');
const WebSocket = require('ws');

class Inspector {
  constructor(ws) {
    this.ws = ws;
    this.nextId = 1;
    /** id -> { resolve, reject } for the main session and for workers (their ids are ours too). */
    this.pending = new Map();
    /** Worker session id -> { title, url } */
    this.workers = new Map();
    /** Event listeners: method -> fn(params, sessionId) */
    this.listeners = new Map();
    ws.on('message', (data) => this.onMessage(JSON.parse(data.toString()), null));
  }

  /** Connects to the inspector on 127.0.0.1:`port` and attaches to every worker thread. */
  static async connect(port) {
    const targets = await getJson(port, '/json/list');
    const ws = new WebSocket(targets[0].webSocketDebuggerUrl, { perMessageDeflate: false, maxPayload: 2 ** 31 - 1 });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const inspector = new Inspector(ws);
    await inspector.send('NodeWorker.enable', { waitForDebuggerOnStart: false });
    // Attachments are reported right after enable; give them a moment to arrive.
    for (let i = 0; i < 50 && inspector.workers.size === 0; i++) await new Promise((r) => setTimeout(r, 20));
    return inspector;
  }

  onMessage(msg, sessionId) {
    if (msg.method === 'NodeWorker.attachedToWorker') {
      this.workers.set(msg.params.sessionId, msg.params.workerInfo);
      return;
    }
    if (msg.method === 'NodeWorker.receivedMessageFromWorker') return this.onMessage(JSON.parse(msg.params.message), msg.params.sessionId);
    if (msg.id !== undefined && this.pending.has(msg.id)) {
      const { resolve, reject } = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      return msg.error ? reject(new Error(`${msg.error.message} (${msg.error.code})`)) : resolve(msg.result);
    }
    if (msg.method) this.listeners.get(msg.method)?.(msg.params, sessionId);
  }

  /** A protocol call on the main thread (`sessionId` null) or on a worker. */
  send(method, params = {}, sessionId = null) {
    const id = this.nextId++;
    const message = JSON.stringify({ id, method, params });
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (sessionId === null) this.ws.send(message);
      else this.ws.send(JSON.stringify({ id: this.nextId++, method: 'NodeWorker.sendMessageToWorker', params: { sessionId, message } }));
    });
  }

  /** Sessions to look at: [name, sessionId] for the main thread and each worker. */
  threads() {
    return [['main', null], ...[...this.workers.entries()].map(([sid, info]) => [info.title || `worker session ${sid}`, sid])];
  }

  /** After a full GC on each thread: its heap in use and process.memoryUsage() as seen from it (MiB). */
  async heapAfterGc() {
    const out = {};
    for (const [name, sid] of this.threads()) {
      await this.send('HeapProfiler.collectGarbage', {}, sid);
      const usage = await this.send('Runtime.getHeapUsage', {}, sid);
      const mem = await this.send('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true }, sid);
      const m = JSON.parse(mem.result.value);
      out[name] = { usedMiB: usage.usedSize / 2 ** 20, totalMiB: usage.totalSize / 2 ** 20, externalMiB: m.external / 2 ** 20, arrayBuffersMiB: m.arrayBuffers / 2 ** 20 };
    }
    return out;
  }

  /** Writes a heap snapshot of each thread (after a GC) to `${prefix}-<thread>.heapsnapshot`; resolves the files. */
  async snapshots(prefix) {
    const files = [];
    let i = 0;
    for (const [, sid] of this.threads()) {
      const file = `${prefix}-${sid === null ? 'main' : `worker${i++}`}.heapsnapshot`;
      const out = fs.openSync(file, 'w');
      const onChunk = (params, from) => {
        if (from === sid) fs.writeSync(out, params.chunk);
      };
      this.listeners.set('HeapProfiler.addHeapSnapshotChunk', onChunk);
      await this.send('HeapProfiler.enable', {}, sid);
      await this.send('HeapProfiler.collectGarbage', {}, sid);
      await this.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false }, sid);
      this.listeners.delete('HeapProfiler.addHeapSnapshotChunk');
      fs.closeSync(out);
      files.push(file);
    }
    return files;
  }

  close() {
    this.ws.close();
  }
}

function getJson(port, path) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(text));
          } catch (err) {
            reject(err);
          }
        });
      })
      .on('error', reject);
  });
}

module.exports = { Inspector };
