/**
 * The end-of-turn start queue (src/proxy/start-batch.ts): exchanges start
 * in order, those queued while a batch runs join it, and an exchange whose
 * start() throws (a bug: start() answers its own failures) neither loses
 * the rest of its batch nor stops later batches (found by review: the
 * reused queue stayed marked busy and nothing started again).
 */
import { startAtEndOfTurn } from '../dist/pipeline/start-batch';

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

type Fake = Parameters<typeof startAtEndOfTurn>[0];
const fake = (log: string[], name: string, behaviour: () => void = () => {}): Fake => ({ start: () => (log.push(name), behaviour()) }) as unknown as Fake;

test('exchanges start at the end of the turn, in order, with those queued meanwhile in the same batch', async () => {
  const started: string[] = [];
  startAtEndOfTurn(fake(started, 'a', () => startAtEndOfTurn(fake(started, 'c'))));
  startAtEndOfTurn(fake(started, 'b'));
  expect(started).toEqual([]);
  await turns(1);
  expect(started).toEqual(['a', 'b', 'c']);
});

test('a start() that throws: the rest of its batch and every later batch still start', async () => {
  const started: string[] = [];
  const thrown: unknown[] = [];
  const realSetImmediate = global.setImmediate;
  // The throw would be an uncaught exception (the worker logs it); here it is caught and kept.
  (global as { setImmediate: unknown }).setImmediate = (fn: () => void) =>
    realSetImmediate(() => {
      try {
        fn();
      } catch (err) {
        thrown.push(err);
      }
    });
  try {
    startAtEndOfTurn(fake(started, 'a', () => { throw new Error('a bug'); }));
    startAtEndOfTurn(fake(started, 'b'));
    await turns(3);
    startAtEndOfTurn(fake(started, 'c'));
    await turns(3);
  } finally {
    (global as { setImmediate: unknown }).setImmediate = realSetImmediate;
  }
  expect(thrown).toHaveLength(1);
  expect(started).toEqual(['a', 'b', 'c']);
});
