'use strict';
// Runs when `node-gyp-build` could not build the addon during `npm install`:
// zproxy still works with its pure TypeScript fallback, and says so at start.
console.warn(
  'zproxy: the native addon was not built (Linux with python3, make and g++ is needed).\n' +
    'zproxy will run its TypeScript fallback; run `npm rebuild zproxy` after installing the build tools.',
);
