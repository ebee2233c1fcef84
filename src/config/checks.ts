/**
 * The small shared checks every section of the config is read with: where a
 * problem is recorded (`Context`), how a JSON path and a found value are
 * written in a message, integers, booleans, strings, enums and lists, and the
 * object reader (`Fields`) that reports unknown keys with the closest known
 * one ("did you mean"), required keys and defaults.
 */
import { MAX_TIMER_MS } from './defaults';

// ---------------------------------------------------------------------------
// Problems, paths and the words of messages

/** What every check writes its problems to. */
export class Context {
  readonly problems: string[] = [];
  constructor(readonly baseDir: string | undefined) {}

  /** Records one problem; returns undefined so a check can `return ctx.add(...)`. */
  add(path: string, message: string): undefined {
    this.problems.push(`${path === '' ? 'config' : path}: ${message}`);
    return undefined;
  }
}

/** Returns the value, or undefined after recording why it is invalid. */
export type Check<T> = (value: unknown, path: string, ctx: Context) => T | undefined;

export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** RFC 9110 token: method names, header names, cookie names. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
export const NO_MAX = Number.MAX_SAFE_INTEGER;

export function keyPath(path: string, key: string): string {
  if (!IDENTIFIER.test(key)) return `${path === '' ? 'config' : path}[${JSON.stringify(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}

/** How a found value is shown after "got". */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
    case 'number':
    case 'boolean':
      return String(value);
    case 'object':
      return 'an object';
    default:
      return `a ${typeof value}`;
  }
}

export const quote = (text: string): string => JSON.stringify(text);
export const quoteAll = (texts: readonly string[]): string => texts.map(quote).join(', ');

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Drops keys whose value is undefined, so optional keys are absent rather than undefined. */
export function prune<T extends object>(object: T): T {
  for (const key of Object.keys(object) as (keyof T)[]) if (object[key] === undefined) delete object[key];
  return object;
}

/** Optimal string alignment distance (edits, counting a swap of neighbours as one). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The known key a misspelt one most likely meant, if any is close. */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  const typed = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const isPrefix = typed.length >= 4 && (candidate.startsWith(typed) || typed.startsWith(candidate));
    const distance = isPrefix ? 1 : editDistance(typed, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return bestDistance <= Math.max(1, Math.floor(key.length / 3)) ? best : undefined;
}

// ---------------------------------------------------------------------------
// Shared checks

const rangeText = (min: number, max: number): string => (max === NO_MAX ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`);

export function integer(min: number, max: number, expected = rangeText(min, max)): Check<number> {
  return (value, path, ctx) =>
    typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max
      ? value
      : ctx.add(path, `expected ${expected}, got ${describe(value)}`);
}

/** An integer where `null` means "none" (no limit, header not sent). */
export function integerOrNull(min: number, max: number): Check<number | null> {
  const check = integer(min, max, `null or ${rangeText(min, max)}`);
  return (value, path, ctx) => (value === null ? null : check(value, path, ctx));
}

/** A `*_ms` duration: an integer number of milliseconds Node's timers accept. */
export const duration = (min: 0 | 1): Check<number> => integer(min, MAX_TIMER_MS);

export const boolean: Check<boolean> = (value, path, ctx) =>
  typeof value === 'boolean' ? value : ctx.add(path, `expected true or false, got ${describe(value)}`);

export const anyString: Check<string> = (value, path, ctx) =>
  typeof value === 'string' ? value : ctx.add(path, `expected a string, got ${describe(value)}`);

export const nonEmptyString: Check<string> = (value, path, ctx) =>
  typeof value === 'string' && value !== '' ? value : ctx.add(path, `expected a non-empty string, got ${describe(value)}`);

export function oneOf<T extends string>(options: readonly T[]): Check<T> {
  return (value, path, ctx) =>
    options.includes(value as T) ? (value as T) : ctx.add(path, `expected one of ${quoteAll(options)}, got ${describe(value)}`);
}

interface ListOptions<T> {
  /** Message when the array is empty; absent = empty is fine. */
  nonEmpty?: string;
  /** Items with the same key are duplicates (reported without echoing the value, which may be a secret). */
  uniqueBy?: (item: T) => string;
}

export function listOf<T>(item: Check<T>, options: ListOptions<T> = {}): Check<T[]> {
  return (value, path, ctx) => {
    if (!Array.isArray(value)) return ctx.add(path, `expected an array, got ${describe(value)}`);
    if (value.length === 0 && options.nonEmpty) return ctx.add(path, options.nonEmpty);
    const items: T[] = [];
    const firstIndex = new Map<string, number>();
    let valid = true;
    value.forEach((raw, index) => {
      const checked = item(raw, `${path}[${index}]`, ctx);
      if (checked === undefined) {
        valid = false;
        return;
      }
      items.push(checked);
      if (!options.uniqueBy) return;
      const key = options.uniqueBy(checked);
      const first = firstIndex.get(key);
      if (first === undefined) {
        firstIndex.set(key, index);
        return;
      }
      ctx.add(`${path}[${index}]`, `duplicate of [${first}]`);
      valid = false;
    });
    return valid ? items : undefined;
  };
}

export const NOT_EMPTY = 'expected a non-empty array';
export const uniqueString = (text: string): string => text;
export const uniqueIgnoringCase = (text: string): string => text.toLowerCase();

// ---------------------------------------------------------------------------
// Reading an object: unknown keys, required keys, defaults

export class Fields {
  /** Known keys that an unknown key was reported as a likely misspelling of. */
  private readonly suggested = new Set<string>();

  private constructor(
    readonly path: string,
    private readonly object: Record<string, unknown>,
    private readonly ctx: Context,
  ) {}

  /**
   * Checks that `value` is an object and reports its unknown keys.
   * `known` = undefined accepts any key (a module's own config).
   */
  static read(value: unknown, path: string, ctx: Context, known: readonly string[] | undefined, expected = 'an object'): Fields | undefined {
    if (!isPlainObject(value)) return ctx.add(path, `expected ${expected}, got ${describe(value)}`);
    const fields = new Fields(path, value, ctx);
    for (const key of known ? Object.keys(value) : []) {
      if (known!.includes(key)) continue;
      const suggestion = closestKey(key, known!);
      if (suggestion !== undefined) fields.suggested.add(suggestion);
      ctx.add(keyPath(path, key), suggestion ? `unknown key (did you mean ${quote(suggestion)}?)` : 'unknown key');
    }
    return fields;
  }

  /** An explicit `undefined` (possible from JavaScript) counts as absent; `null` does not. */
  has(key: string): boolean {
    return this.object[key] !== undefined;
  }

  /** Present, or written misspelt (already reported): a "missing" problem would repeat that report. */
  mentions(key: string): boolean {
    return this.has(key) || this.suggested.has(key);
  }

  raw(key: string): unknown {
    return this.object[key];
  }

  at(key: string): string {
    return keyPath(this.path, key);
  }

  optional<T>(key: string, check: Check<T>): T | undefined {
    return this.has(key) ? check(this.object[key], this.at(key), this.ctx) : undefined;
  }

  /** The checked value, or `fallback` when absent (or invalid: the problem is recorded and the result discarded). */
  get<T>(key: string, check: Check<T>, fallback: T): T {
    const checked = this.optional(key, check);
    return checked === undefined ? fallback : checked;
  }

  required<T>(key: string, check: Check<T>, hint?: string): T | undefined {
    if (!this.has(key)) return this.mentions(key) ? undefined : this.ctx.add(this.at(key), hint ? `required (${hint})` : 'required');
    return this.optional(key, check);
  }

  /** A problem with the object as a whole, or (`key` given) with one of its keys. */
  problem(message: string, key?: string): undefined {
    return this.ctx.add(key === undefined ? this.path : this.at(key), message);
  }
}
