/**
 * Reading a config file: the file, its JSON, then `loadConfig`. Relative
 * file names inside the config are resolved against the file's folder.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ZproxyConfig } from './types';
import { ConfigError, loadConfig } from './validate';

/** The embedded default config shipped with the package (`config/zproxy.json`). */
export function defaultConfigPath(): string {
  // dist/config/load.js -> <package root>/config/zproxy.json
  return path.resolve(__dirname, '..', '..', 'config', 'zproxy.json');
}

/**
 * Reads, parses and validates a config file. Throws ConfigError with
 * `<file>: cannot read: ...`, `<file>: invalid JSON at line L column C: ...`,
 * or one `<json path>: ...` line per problem.
 */
export function readConfigFile(file: string): ZproxyConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot read: ${(err as Error).message}`]);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (err) {
    const { offset, reason } = findJsonError(text) ?? { offset: 0, reason: (err as Error).message };
    const { line, column } = lineAndColumn(text, offset);
    throw new ConfigError([`${file}: invalid JSON at line ${line} column ${column}: ${reason}`]);
  }
  return loadConfig(input, { baseDir: path.dirname(path.resolve(file)), source: file });
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;
  return { line: before.split('\n').length, column: offset - lineStart + 1 };
}

class JsonSyntaxError {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {}
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const ESCAPES = '"\\/bfnrt';

/**
 * Where and why `text` is not JSON. V8's JSON.parse messages do not always
 * carry a position, so this small scanner finds the first error itself.
 * Returns undefined if it finds none (JSON.parse failed for another reason).
 */
function findJsonError(text: string): { offset: number; reason: string } | undefined {
  let at = 0;
  const fail = (reason: string): never => {
    throw new JsonSyntaxError(at, reason);
  };
  const found = (): string => {
    if (at >= text.length) return 'the end of the file';
    if (text.startsWith('//', at) || text.startsWith('/*', at)) return 'a comment (JSON has none)';
    return JSON.stringify(text[at]);
  };
  const skipSpace = (): void => {
    while (at < text.length && ' \t\n\r'.includes(text[at])) at++;
  };

  const string = (): void => {
    at++;
    for (;;) {
      const c = text[at];
      if (c === undefined) fail('unterminated string');
      if (c === '"') break;
      if (c < ' ') fail('control character in a string (write it as an escape such as \\n)');
      if (c === '\\') {
        const escape = text[at + 1];
        if (escape === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(at + 2, at + 6))) at += 4;
        else if (escape === undefined || !ESCAPES.includes(escape)) fail('invalid escape in a string');
        at++;
      }
      at++;
    }
    at++;
  };

  const container = (close: '}' | ']'): void => {
    at++;
    skipSpace();
    if (text[at] === close) {
      at++;
      return;
    }
    for (;;) {
      skipSpace();
      if (close === '}') {
        if (text[at] !== '"') fail(`expected a property name in double quotes, found ${found()}`);
        string();
        skipSpace();
        if (text[at] !== ':') fail(`expected ":" after the property name, found ${found()}`);
        at++;
      }
      value();
      skipSpace();
      if (text[at] === close) {
        at++;
        return;
      }
      if (text[at] !== ',') fail(`expected "," or "${close}", found ${found()}`);
      at++;
      skipSpace();
      if (text[at] === close) fail(`trailing comma before "${close}"`);
    }
  };

  const value = (): void => {
    skipSpace();
    const c = text[at];
    if (c === '{') return container('}');
    if (c === '[') return container(']');
    if (c === '"') return string();
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, at)) {
        at += literal.length;
        return;
      }
    }
    NUMBER.lastIndex = at;
    if (NUMBER.test(text)) {
      at = NUMBER.lastIndex;
      return;
    }
    fail(`expected a value, found ${found()}`);
  };

  try {
    value();
    skipSpace();
    if (at < text.length) fail(`unexpected ${found()} after the end of the JSON value`);
    return undefined;
  } catch (err) {
    if (err instanceof JsonSyntaxError) return { offset: err.offset, reason: err.reason };
    throw err;
  }
}
