// Shared option validators: every check of user input goes through here, so messages read alike:
// "<path> must be <expectation>, got <value>". They throw ConfigError at construction, never per request.
import { ENVELOPE_FLAG } from './entry';
import { ConfigError } from './errors';

export function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (value === undefined) return 'nothing';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function fail(path: string, expectation: string, value: unknown): never {
  throw new ConfigError(`${path} must be ${expectation}, got ${describe(value)}`);
}

const INTEGER = /^-?\d+$/;

/** Accepts an integer or a string of digits (from argv or env) within [min, max]. */
export function integerIn(path: string, value: unknown, min: number, max: number): number {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && INTEGER.test(value.trim())) n = Number(value.trim());
  else return fail(path, `an integer from ${min} to ${max}`, value);
  if (!Number.isSafeInteger(n) || n < min || n > max) fail(path, `an integer from ${min} to ${max}`, value);
  return n;
}

export function positiveInt(path: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  return integerIn(path, value, 1, max);
}

export function nonNegativeInt(path: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  return integerIn(path, value, 0, max);
}

export function port(path: string, value: unknown, allowZero = false): number {
  return integerIn(path, value, allowZero ? 0 : 1, 65535);
}

/**
 * The memcached flag that marks a raw body as gzip (nginx's memcached_gzip_flag): an integer from min to
 * 0xffff that leaves ENVELOPE_FLAG clear. With that bit a raw gzip page would be read back as an envelope,
 * fail to decode and be deleted on its first read. The middleware, the edge and nginx-conf all check here.
 */
export function memcachedGzipFlag(path: string, value: unknown, min = 0): number {
  const flag = integerIn(path, value, min, 0xffff);
  if ((flag & ENVELOPE_FLAG) !== 0) {
    throw new ConfigError(`${path} must not use the envelope bit 0x100 (raw entries would read as envelopes), got ${flag}`);
  }
  return flag;
}

const SIZE = /^(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i;
const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
};

/** A byte size: a number of bytes or a string like '1m', '512k', '64 MiB' (binary units). */
export function byteSize(path: string, value: unknown, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  let n: number | undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value)) n = value;
  else if (typeof value === 'string') {
    const m = SIZE.exec(value.trim());
    if (m?.[1] !== undefined) n = Number(m[1]) * (SIZE_UNITS[(m[2] ?? 'b').toLowerCase()] ?? 1);
  }
  if (n === undefined || n < min || n > max) fail(path, `a byte size from ${min} to ${max} (e.g. 1048576 or '1m')`, value);
  return n;
}

export function boolean(path: string, value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === '1' || value === 'yes' || value === 'on') return true;
  if (value === 'false' || value === '0' || value === 'no' || value === 'off') return false;
  return fail(path, 'true or false', value);
}

export function oneOf<T extends string>(path: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  return fail(path, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
}

export function nonEmptyString(path: string, value: unknown): string {
  if (typeof value === 'string' && value.length > 0) return value;
  return fail(path, 'a non-empty string', value);
}

/** A list given as an array of strings or as one comma-separated string; empty items are dropped. */
export function stringList(path: string, value: unknown): string[] {
  const items = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(items) || !items.every((v): v is string => typeof v === 'string')) {
    return fail(path, 'a list of strings (array or comma-separated)', value);
  }
  const out: string[] = [];
  for (const item of items) {
    for (const part of item.split(',')) {
      const t = part.trim();
      if (t.length > 0) out.push(t);
    }
  }
  return out;
}

export function plainObject(path: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(path, 'an object', value);
  return value as Record<string, unknown>;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

/** The known name within edit distance 2 of `name`, if any (for "did you mean" hints). */
export function closestName(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = k;
    }
  }
  return best;
}

/** Rejects keys that are not known, suggesting the closest known key when one is near. */
export function rejectUnknownKeys(path: string, obj: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    const best = closestName(key, known);
    const prefix = path ? `${path}.` : '';
    throw new ConfigError(`unknown option ${prefix}${key}${best ? ` (did you mean ${prefix}${best}?)` : ''}`);
  }
}
