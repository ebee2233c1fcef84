/**
 * The only place that loads the compiled addon. Loading fails softly: the
 * caller gets the reason and runs the pure TypeScript fallback instead.
 */
import path from 'node:path';
import type { RawAddon } from './addon-types';

export type AddonLoad = { addon: RawAddon; reason: string } | { addon: null; reason: string };

const packageRoot = path.resolve(__dirname, '..', '..');

export function loadAddon(): AddonLoad {
  if (process.env.ZPROXY_NO_NATIVE === '1') return { addon: null, reason: 'ZPROXY_NO_NATIVE=1' };
  if (process.platform !== 'linux') return { addon: null, reason: `the addon is Linux-only (this is ${process.platform})` };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const addon = require('node-gyp-build')(packageRoot) as RawAddon;
    return { addon, reason: 'addon loaded' };
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return {
      addon: null,
      reason: `the addon failed to load (${message}); rebuild it with \`npm rebuild zproxy\` (needs python3, make, g++), or set ZPROXY_NO_NATIVE=1 to silence this`,
    };
  }
}
