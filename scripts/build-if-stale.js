#!/usr/bin/env node
'use strict';
/**
 * `npm run prepare` (run by `npm install`, and again by the first `npx zproxy`,
 * which links the project into npm's exec cache): compiles the TypeScript only
 * when dist/ is missing or older than a source file, so that first `npx
 * zproxy start` does not spend ~10 s recompiling what `npm install` just built.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function newest(dir, ext) {
  let latest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) latest = Math.max(latest, newest(file, ext));
    else if (entry.name.endsWith(ext)) latest = Math.max(latest, fs.statSync(file).mtimeMs);
  }
  return latest;
}

function oldestOutput() {
  try {
    return fs.statSync(path.join(root, 'dist', 'cli.js')).mtimeMs;
  } catch {
    return 0;
  }
}

// A packed zproxy ships dist/ without src/: nothing to build.
if (!fs.existsSync(path.join(root, 'src'))) process.exit(0);
const sources = Math.max(newest(path.join(root, 'src'), '.ts'), fs.statSync(path.join(root, 'tsconfig.json')).mtimeMs);
if (oldestOutput() >= sources) process.exit(0);
process.stderr.write('zproxy: compiling the TypeScript (dist/ is missing or older than src/)\n');
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
