// Accept-Encoding negotiation (RFC 9110 §12.5.3), shared by the edge and the middleware.
// charCode scans, no regex and no allocation: this runs on every hit of a compressed page.

const SPACE = 0x20;
const TAB = 0x09;
export const SEMI = 0x3b;
const COMMA = 0x2c;
export const EQUALS = 0x3d;

/** RFC 9110 §5.6.3 optional whitespace: space or tab. */
export function isOws(c: number): boolean {
  return c === SPACE || c === TAB;
}

/** ASCII case-insensitive comparison of header[start, end) with a lower-case token. */
function tokenIs(header: string, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    if ((header.charCodeAt(start + i) | 0x20) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** RFC 9110 §12.4.2: a weight of zero ("q=0", "q=0.0", "q=0.00", "q=0.000") means "not acceptable". */
function isZeroWeight(header: string, start: number, end: number): boolean {
  for (let i = start; i < end - 1; i++) {
    if ((header.charCodeAt(i) | 0x20) !== 0x71 /* q */ || header.charCodeAt(i + 1) !== EQUALS) continue;
    let j = i + 2;
    while (j < end && isOws(header.charCodeAt(j))) j++;
    if (header.charCodeAt(j) !== 0x30 /* 0 */) return false;
    j++;
    if (j < end && header.charCodeAt(j) === 0x2e /* . */) j++;
    while (j < end && header.charCodeAt(j) === 0x30) j++;
    while (j < end && isOws(header.charCodeAt(j))) j++;
    return j >= end || header.charCodeAt(j) === SEMI;
  }
  return false;
}

/**
 * Whether a client accepts a content coding (RFC 9110 §12.5.3), `coding` lower-case. A request with no
 * Accept-Encoding is answered with identity, as nginx's gunzip does, although the RFC would allow any coding.
 */
export function acceptsEncoding(header: string | readonly string[] | undefined, coding: string): boolean {
  if (header === undefined) return false;
  if (typeof header !== 'string') return acceptsEncoding(header.join(','), coding);
  const n = header.length;
  let star = false;
  let i = 0;
  while (i < n) {
    const c = header.charCodeAt(i);
    if (isOws(c) || c === COMMA) {
      i++;
      continue;
    }
    const start = i;
    while (i < n) {
      const d = header.charCodeAt(i);
      if (d === COMMA || d === SEMI || isOws(d)) break;
      i++;
    }
    const tokenEnd = i;
    let end = header.indexOf(',', i);
    if (end === -1) end = n;
    const zero = isZeroWeight(header, tokenEnd, end);
    if (tokenIs(header, start, tokenEnd, coding) || (coding === 'gzip' && tokenIs(header, start, tokenEnd, 'x-gzip'))) return !zero;
    if (tokenEnd - start === 1 && header.charCodeAt(start) === 0x2a /* * */) star = !zero;
    i = end;
  }
  return star;
}
