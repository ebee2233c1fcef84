/**
 * Values of the proxy's domain that several sections share: host names,
 * HTTP method and header names, header maps, file paths and URL parsing.
 */
import { isIP } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { type Check, TOKEN, describe, isPlainObject, keyPath, nonEmptyString } from './checks';

const HOST_LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const HOST_NAME = new RegExp(`^(?:\\*\\.)?${HOST_LABEL}(?:\\.${HOST_LABEL})*$`);

/** A Host to match (`api.example.com`, `*.example.com`, `[::1]`), lower-cased. */
export const hostName: Check<string> = (value, path, ctx) => {
  if (typeof value === 'string') {
    const host = value.toLowerCase();
    if (HOST_NAME.test(host) || (/^\[.*\]$/.test(host) && isIP(host.slice(1, -1)) === 6)) return host;
    if (/:\d+$/.test(host) && !host.startsWith('[')) return ctx.add(path, `must not include a port (it is ignored when matching), got ${describe(value)}`);
  }
  return ctx.add(path, `expected a host name like "api.example.com" or "*.example.com", got ${describe(value)}`);
};

export const method: Check<string> = (value, path, ctx) =>
  typeof value === 'string' && TOKEN.test(value) ? value.toUpperCase() : ctx.add(path, `expected an HTTP method name like "GET", got ${describe(value)}`);

export const headerName: Check<string> = (value, path, ctx) =>
  typeof value === 'string' && TOKEN.test(value) ? value : ctx.add(path, `expected a header name, got ${describe(value)}`);

const headerValue: Check<string> = (value, path, ctx) => {
  if (typeof value !== 'string') return ctx.add(path, `expected a string, got ${describe(value)}`);
  return /[\r\n\0]/.test(value) ? ctx.add(path, 'must not contain CR, LF or NUL') : value;
};

/** `{ "Header-Name": "value" }`; names lower-cased when `lowerCase` (headers to match). */
export function headerMap(lowerCase: boolean): Check<Record<string, string>> {
  return (value, path, ctx) => {
    if (!isPlainObject(value)) return ctx.add(path, `expected an object of header names to strings, got ${describe(value)}`);
    const headers: Record<string, string> = {};
    let valid = true;
    for (const [name, raw] of Object.entries(value)) {
      const entryPath = keyPath(path, name);
      const checkedName = TOKEN.test(name) ? (lowerCase ? name.toLowerCase() : name) : ctx.add(entryPath, 'invalid header name');
      const checkedValue = headerValue(raw, entryPath, ctx);
      if (checkedName === undefined || checkedValue === undefined) valid = false;
      else headers[checkedName] = checkedValue;
    }
    return valid ? headers : undefined;
  };
}

/** A file name; relative names are resolved against the config file's folder when it is known. */
export const filePath: Check<string> = (value, path, ctx) => {
  const file = nonEmptyString(value, path, ctx);
  return file !== undefined && ctx.baseDir ? resolvePath(ctx.baseDir, file) : file;
};

const URL_SHAPE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

export function parseUrl(value: unknown): URL | undefined {
  if (typeof value !== 'string' || !URL_SHAPE.test(value)) return undefined;
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}
