// Request-time header checks of the middleware's recv step: session cookies (Accept-Encoding is in core/accept.ts).
// charCode/indexOf scans, no regex and no allocation: these run on every request, hits included.

import { EQUALS, isOws, SEMI } from '../src/core/accept';

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
