// Which cookies never change a page (analytics, consent): a request carrying only those may share a cached
// page; any other cookie may be a session, so the request is not served from or stored in the cache.
// Shared by the edge and the middleware so both draw the line in the same place, as Varnish's usual VCL.
// charCode/indexOf scans, no regex and no allocation beyond names: these run on every request with cookies.
import { EQUALS, isOws, SEMI } from './accept';

/** Analytics and consent cookies; 'name*' is a prefix. */
export const DEFAULT_IGNORED_COOKIES: readonly string[] = [
  '_ga*', '_gid', '_gat*', '_gcl*', '_fbp', '_fbc', '__utm*', '_hj*', '_pk_*', '_clck', '_clsk', 'cookieconsent_status',
];

export interface IgnoredCookies {
  readonly names: ReadonlySet<string>;
  readonly prefixes: readonly string[];
}

/** Splits a list of names and 'prefix*' patterns, once, at configuration time. */
export function ignoredCookies(list: readonly string[]): IgnoredCookies {
  return {
    names: new Set(list.filter((c) => !c.endsWith('*'))),
    prefixes: list.filter((c) => c.endsWith('*')).map((c) => c.slice(0, -1)),
  };
}

/**
 * True when every cookie in the header is ignored, so the page does not depend on them. A scan with
 * indexOf, not a regex: this runs for every request with cookies.
 */
export function onlyIgnoredCookies(header: string, ignored: IgnoredCookies): boolean {
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = header.length;
    const eq = header.indexOf('=', start);
    const name = header.slice(start, eq === -1 || eq > end ? end : eq).trim();
    start = end + 1;
    if (name === '' || ignored.names.has(name)) continue;
    let matched = false;
    const prefixes = ignored.prefixes;
    for (let i = 0; i < prefixes.length; i++) {
      if (name.startsWith(prefixes[i]!)) {
        matched = true;
        break;
      }
    }
    if (!matched) return false;
  }
  return true;
}

/** True when the Cookie header holds a cookie with exactly this name (RFC 6265 §4.2.1: `name=value; ...`). */
export function hasCookie(header: string, name: string): boolean {
  let from = 0;
  for (;;) {
    const at = header.indexOf(name, from);
    if (at === -1) return false;
    from = at + 1;
    // The name must start a pair: at the start, or after ';' and optional spaces.
    let b = at - 1;
    while (b >= 0 && isOws(header.charCodeAt(b))) b--;
    if (b >= 0 && header.charCodeAt(b) !== SEMI) continue;
    // ...and end at '=' (optional spaces before it, as lenient servers accept).
    let e = at + name.length;
    while (e < header.length && isOws(header.charCodeAt(e))) e++;
    if (e < header.length && header.charCodeAt(e) === EQUALS) return true;
  }
}

/** True when the Cookie header holds any of the names. */
export function hasAnyCookie(header: string, names: readonly string[]): boolean {
  for (let i = 0; i < names.length; i++) if (hasCookie(header, names[i]!)) return true;
  return false;
}
