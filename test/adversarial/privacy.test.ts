// Private data and poisoning through both front doors (the edge before an origin, pageCache() inside an
// Express app), one case per attack: what one user's request can make the cache give to another. Every
// combination of the signals that make a page private is tried, on request and response; then the ways to
// make the cache store a page under a key it does not belong to (fat GET, cache deception, parameter
// cloaking).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { edgeDoor, middlewareDoor } from '../helpers/doors';
import type { Door } from '../helpers/doors';
import { request } from '../helpers/origin';
import type { Reply } from '../helpers/origin';
import { sleep } from '../helpers/ports';

/** What the response says about itself, by the page's query: ?sc=1 Set-Cookie, ?cc=private|no-store, ?vary=cookie. */
function render(req: IncomingMessage, res: ServerResponse, counts: Map<string, number>): void {
  const url = new URL(req.url ?? '/', 'http://x');
  counts.set(req.url ?? '/', (counts.get(req.url ?? '/') ?? 0) + 1);
  const who = /(?:^|;\s*)sid=([^;]*)/.exec(req.headers.cookie ?? '')?.[1] ?? (req.headers.authorization !== undefined ? 'auth-user' : 'anonymous');
  let body = '';
  if (req.method === 'GET' || req.method === 'HEAD') {
    // A framework that reads a GET's body (a fat GET) renders what it says.
    req.on('data', (c: Buffer) => (body += c.toString()));
  }
  req.on('end', () => {
    const headers: Record<string, string> = { 'content-type': 'text/html' };
    const cc = url.searchParams.get('cc');
    headers['cache-control'] = cc === null ? 'max-age=60' : `${cc}, max-age=60`;
    if (url.searchParams.get('sc') === '1') headers['set-cookie'] = `sid=${who}-session; HttpOnly`;
    if (url.searchParams.get('vary') === 'cookie') headers.vary = 'Cookie';
    res.writeHead(200, headers);
    res.end(`<p>page for ${who}${body !== '' ? ` body=${body}` : ''} uri=${req.url}</p>`);
  });
  req.resume();
}

const edge = (): Promise<Door> => edgeDoor(render, 'adv');
const middleware = (): Promise<Door> => middlewareDoor(render, 'adv');

let seq = 0;
function fresh(name: string): string {
  seq++;
  return `/${name}-${seq}`;
}

/** An anonymous request, a few times (the middleware stores after the response finished): the last reply. */
async function anonymousAfter(port: number, uri: string): Promise<Reply> {
  let r = await request(port, uri);
  for (let i = 0; i < 5; i++) {
    await sleep(20);
    r = await request(port, uri);
  }
  return r;
}

const REQUEST_CREDENTIALS: readonly [string, Record<string, string>][] = [
  ['a session cookie', { cookie: 'sid=alice' }],
  ['Authorization', { authorization: 'Bearer alice-token' }],
  ['both', { cookie: 'sid=alice', authorization: 'Bearer alice-token' }],
];
const RESPONSE_PRIVACY: readonly [string, string][] = [
  ['nothing private', ''],
  ['Set-Cookie', 'sc=1'],
  ['Cache-Control: private', 'cc=private'],
  ['Cache-Control: no-store', 'cc=no-store'],
  ['Vary: Cookie', 'vary=cookie'],
  ['Set-Cookie and private', 'sc=1&cc=private'],
  ['Set-Cookie and Vary: Cookie', 'sc=1&vary=cookie'],
];

describe.each([
  ['edge', edge],
  ['middleware', middleware],
])('through the %s', (_name, open) => {
  let door: Door;
  beforeAll(async () => {
    door = await open();
  });
  afterAll(async () => {
    await door.close();
  });

  describe('a logged-in user\'s page never reaches anyone else', () => {
    for (const [credName, cred] of REQUEST_CREDENTIALS) {
      for (const [respName, query] of RESPONSE_PRIVACY) {
        it(`request with ${credName}, response with ${respName}`, async () => {
          const uri = `${fresh('private')}${query === '' ? '' : `?${query}`}`;
          const alice = await request(door.port, uri, { headers: cred });
          expect(alice.body.toString()).toMatch(/page for (alice|auth-user)/);
          // Alice's own second request is not served her page from the cache either (it may be stale for her).
          const again = await request(door.port, uri, { headers: cred });
          expect(again.headers['x-cache']).not.toBe('HIT');
          const anon = await anonymousAfter(door.port, uri);
          expect(anon.body.toString()).toContain('page for anonymous');
          expect(anon.body.toString()).not.toContain('alice');
          expect(String(anon.headers['set-cookie'] ?? '')).not.toMatch(/alice|auth-user/);
        });
      }
    }
  });

  describe('an anonymous request whose response is private is not stored for the next one', () => {
    // (Vary: Cookie alone is left out: an anonymous page may be shared with other requests without cookies.)
    for (const [respName, query] of RESPONSE_PRIVACY.filter(([, q]) => q !== '' && q !== 'vary=cookie')) {
      it(`response with ${respName}`, async () => {
        const uri = `${fresh('anon-private')}?${query}`;
        await request(door.port, uri);
        await anonymousAfter(door.port, uri);
        // Every one of the seven requests reached the renderer: nothing was served from the cache.
        expect(door.renders(uri)).toBe(7);
      });
    }
  });

  it('a fat GET (a body on GET, which some frameworks read) is passed whole and never stored', async () => {
    const uri = fresh('fat-get');
    const poisoned = await request(door.port, uri, { headers: { 'content-type': 'text/plain' }, body: 'evil=1' });
    expect(poisoned.headers['x-cache']).not.toBe('HIT');
    const clean = await anonymousAfter(door.port, uri);
    expect(clean.body.toString()).not.toContain('evil');
  });

  it('cache deception: a logged-in request for /account/settings.css is never stored for the path\'s look of a static file', async () => {
    const uri = `${fresh('account')}/settings.css`;
    const alice = await request(door.port, uri, { headers: { cookie: 'sid=alice' } });
    expect(alice.body.toString()).toContain('page for alice');
    const attacker = await anonymousAfter(door.port, uri);
    expect(attacker.body.toString()).not.toContain('alice');
  });

  it('parameter cloaking: the page is keyed by the raw request_uri the origin renders, separators and all', async () => {
    const base = fresh('cloak');
    const a = await anonymousAfter(door.port, `${base}?q=1;utm_content=x`);
    expect(a.body.toString()).toContain(`uri=${base}?q=1;utm_content=x`);
    const b = await anonymousAfter(door.port, `${base}?q=1`);
    expect(b.body.toString()).toContain(`uri=${base}?q=1<`);
    const c = await anonymousAfter(door.port, `${base}?q=1&q=2`);
    expect(c.body.toString()).toContain(`uri=${base}?q=1&q=2<`);
  });
});
