/**
 * Every error code is defined once, carries its status, side and retry
 * flag, and is documented in the README's error table.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as errors from '../dist/errors';

const readme = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');

test.each(Object.entries(errors.errorSpecs))('%s is documented with its status', (code, spec) => {
  const row = readme.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
  expect(row).toBeDefined();
  expect(row).toContain(`| ${spec.status ?? '—'} | ${spec.side} | ${spec.retryable ? 'yes' : 'no'} |`);
});

test('each code has its own class, and instances say what failed', () => {
  type ErrorClass = new (detail?: string) => errors.ZproxyError;
  const classes = (Object.values(errors) as unknown[]).filter((value) => typeof value === 'function' && (value as ErrorClass).prototype instanceof errors.ZproxyError) as ErrorClass[];
  const codes = classes.map((ErrorClass) => new ErrorClass().code).sort();
  expect(codes).toEqual(Object.keys(errors.errorSpecs).sort());
  const error = new errors.UpstreamConnectError('ECONNREFUSED');
  expect(error).toMatchObject({ code: 'ZP_ERR_UPSTREAM_CONNECT', status: 502, side: 'upstream', retryable: true });
  expect(error.message).toBe('upstream connection failed: ECONNREFUSED');
  expect(JSON.parse(errors.errorBody(error, 'id-1'))).toEqual({ error: error.message, status: 502, request_id: 'id-1' });
});
