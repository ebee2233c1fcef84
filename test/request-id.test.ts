/**
 * Request ids (util/request-id.ts): a generated id is a counter written into
 * heads digit by digit; the bytes written must be the id's text exactly, for
 * every size of counter, and a client's own id is written as it came.
 */
import { nextRequestId, requestIdLength, requestIdText, writeRequestId } from '../dist/util/request-id';

test('a generated id is written as its text: <16 hex digits>-<counter in hex>', () => {
  for (const id of [1, 9, 15, 16, 255, 256, 0xfffff, 2 ** 31, 2 ** 32 + 5, 2 ** 53 - 1]) {
    const text = requestIdText(id);
    expect(text).toMatch(/^[0-9a-f]{16}-[0-9a-f]+$/);
    expect(text.endsWith(`-${id.toString(16)}`)).toBe(true);
    expect(requestIdLength(id)).toBe(text.length);
    const out = Buffer.alloc(text.length + 6, '#');
    expect(writeRequestId(out, 3, id)).toBe(3 + text.length);
    expect(out.toString('latin1')).toBe(`###${text}###`);
  }
});

test('a client id is written as latin1, byte for byte', () => {
  const id = 'client-id-42 \u00e9';
  const out = Buffer.alloc(requestIdLength(id));
  expect(writeRequestId(out, 0, id)).toBe(out.length);
  expect(out).toEqual(Buffer.from(id, 'latin1'));
  expect(requestIdText(id)).toBe(id);
});

test('ids count up and share one prefix per thread', () => {
  const a = nextRequestId();
  const b = nextRequestId();
  expect(b).toBe(a + 1);
  expect(requestIdText(a).split('-')[0]).toBe(requestIdText(b).split('-')[0]);
});
