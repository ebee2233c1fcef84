'use strict';
/**
 * Shared by the repro scripts: zproxy in-process from dist/ (createProxy,
 * thread_count 1, `--no-native` for the fallback), loopback servers, and the
 * verdict: each script exits 1 while its bug shows, 0 once it does not.
 */
const net = require('node:net');
const { createProxy } = require('../../../dist/index');

const noNative = process.argv.includes('--no-native');

async function startProxy(routes) {
  const proxy = createProxy({ host: '127.0.0.1', port: 0, admin: null, thread_count: 1, log_level: 'error', routes }, { noNative });
  await proxy.start();
  return proxy;
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

/** A loopback port nothing listens on (connects are refused). */
async function deadPort() {
  const server = net.createServer();
  const port = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function verdict(bug, detail) {
  process.stdout.write(`${bug ? 'BUG REPRODUCED' : 'not reproduced'} (${noNative ? 'TypeScript fallback' : 'native addon'}): ${detail}\n`);
  process.exit(bug ? 1 : 0);
}

module.exports = { startProxy, listen, deadPort, verdict };
