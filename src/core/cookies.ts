// Which cookies never change a page (analytics, consent): a request carrying only those may share a cached
// page; any other cookie may be a session, so the request is not served from or stored in the cache.
// Shared by the edge and the middleware so both draw the line in the same place, as Varnish's usual VCL.

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
