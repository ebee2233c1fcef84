/**
 * The client address behind trusted proxies (nginx realip, recursive).
 */
import { TrustedProxies } from '../dist/http/client-ip';

const trusted = new TrustedProxies(['10.0.0.0/8', '127.0.0.1', '::1']);

test.each([
  ['an untrusted peer is the client, whatever it forwards', '192.0.2.9', '198.51.100.1', '192.0.2.9'],
  ['a trusted peer: the right-most untrusted X-Forwarded-For entry', '127.0.0.1', '198.51.100.1, 203.0.113.7', '203.0.113.7'],
  ['trusted hops are skipped', '10.1.2.3', '198.51.100.1, 10.9.9.9, 127.0.0.1', '198.51.100.1'],
  ['a garbled entry stops the walk at the peer', '127.0.0.1', '198.51.100.1, not-an-ip', '127.0.0.1'],
  ['every hop trusted: the left-most', '::1', '10.0.0.1, 10.0.0.2', '10.0.0.1'],
  ['no X-Forwarded-For', '127.0.0.1', null, '127.0.0.1'],
])('%s', (_name, peer, forwardedFor, expected) => {
  expect(trusted.clientAddress(peer, forwardedFor)).toBe(expected);
});

test('no trusted proxies: always the peer', () => {
  const none = new TrustedProxies([]);
  expect(none.empty).toBe(true);
  expect(none.clientAddress('127.0.0.1', '198.51.100.1')).toBe('127.0.0.1');
});
