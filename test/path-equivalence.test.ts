/**
 * Path equivalence end to end (issue 10.6, README "Routing"): a request is
 * routed on its normalised path and the upstream receives that same path,
 * from HTTP/1 and HTTP/2 clients alike. `/%61dmin` is `/admin`; an escaped
 * slash never lets a path climb above a `strip_prefix` or `rewrite` prefix
 * at an upstream that decodes it: such paths are refused with 400 and reach
 * no upstream.
 */
import http2 from 'node:http2';
import type { Server } from '../dist/index';
import { RUNTIMES, startProxy } from './helpers/server';
import { closeAll, request, requestHead, startRecordingUpstream, type RecordingUpstream } from './helpers/upstreams';

/** [request target, the upstream that gets it, the target it receives]. */
const ROUTED: Array<[string, 'admin' | 'api', string]> = [
  ['/%61dmin', 'admin', '/admin'],
  ['/%41dmin', 'api', '/Admin'],
  ['/%61dmin/%7Eusers/caf%c3%a9?q=%61', 'admin', '/admin/~users/caf%C3%A9?q=%61'],
  ['/public/.%2e/admin/x', 'admin', '/admin/x'],
  ['/%61pi/%2e%2e/admin', 'admin', '/admin'],
  ['/api/a%2fb', 'api', '/a%2Fb'],
  ['/api/v1.2%2F..x', 'api', '/v1.2%2F..x'],
  ['/files/a%2Fb/c', 'api', '/bucket/a%2Fb/c'],
];

/** Paths that would climb above the prefix at an upstream decoding `%2F`, `%5C` or `\`, and malformed escapes. */
const REFUSED = ['/api/..%2F..%2Fadmin', '/api/%2e%2e%2fadmin', '/api/x%2F..', '/files/..%5C..%5Cadmin', '/files/..\\admin', '/api/%zz'];

describe.each(RUNTIMES)('path equivalence (%s)', (_name, noNative) => {
  let admin: RecordingUpstream;
  let api: RecordingUpstream;
  let proxy: Server;
  let port: number;

  beforeAll(async () => {
    admin = await startRecordingUpstream();
    api = await startRecordingUpstream();
    proxy = await startProxy(
      {
        routes: [
          { path: '/admin', upstream: admin.url },
          { path: '/api', upstream: api.url, strip_prefix: true },
          { path: '/files/*', upstream: api.url, rewrite: '/bucket/*' },
          { path: '/', upstream: api.url },
        ],
      },
      noNative,
    );
    port = proxy.address().port;
  });

  afterAll(async () => {
    await proxy?.stop();
    await closeAll();
  });

  beforeEach(() => {
    admin.reset();
    api.reset();
  });

  const upstreams = () => ({ admin, api });

  test.each(ROUTED)('HTTP/1: %s is routed to %s, which receives %s', async (target, name, received) => {
    const response = await request(port, requestHead('GET', target));
    expect(response.status).toBe(200);
    expect(upstreams()[name].requests.map((r) => r.target)).toEqual([received]);
  });

  test.each(REFUSED)('HTTP/1: %s is refused with 400 and reaches no upstream', async (target) => {
    const response = await request(port, requestHead('GET', target));
    expect(response.status).toBe(400);
    expect([...admin.requests, ...api.requests]).toEqual([]);
  });

  describe('HTTP/2 client', () => {
    let session: http2.ClientHttp2Session;

    beforeAll(() => {
      session = http2.connect(`http://127.0.0.1:${port}`);
      session.on('error', () => undefined);
    });

    afterAll(() => session.destroy());

    const get = (target: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const stream = session.request({ ':path': target, ':authority': 'proxy.test' });
        let status = 0;
        stream.on('response', (headers) => (status = Number(headers[':status'])));
        stream.on('end', () => resolve(status));
        stream.on('error', reject);
        stream.resume();
      });

    test.each(ROUTED)('%s is routed to %s, which receives %s', async (target, name, received) => {
      expect(await get(target)).toBe(200);
      expect(upstreams()[name].requests.map((r) => r.target)).toEqual([received]);
    });

    test.each(REFUSED)('%s is refused with 400 and reaches no upstream', async (target) => {
      expect(await get(target)).toBe(400);
      expect([...admin.requests, ...api.requests]).toEqual([]);
    });
  });
});
