import { createHash } from 'node:crypto';
import { cacheKey, createKeyFunction, keyForUrl, normalizeHost, splitUrl } from './key';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

describe('normalizeHost (nginx $host)', () => {
  it.each([
    ['example.com', 'example.com'],
    ['Example.COM', 'example.com'],
    ['example.com:8080', 'example.com'],
    ['EXAMPLE.com:80', 'example.com'],
    ['example.com.', 'example.com'],
    ['example.com.:443', 'example.com'],
    ['127.0.0.1:3000', '127.0.0.1'],
    ['[::1]', '[::1]'],
    ['[::1]:8080', '[::1]'],
    ['[2001:DB8::1]:443', '[2001:db8::1]'],
    ['localhost', 'localhost'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['my_host.internal', 'my_host.internal'],
    ['example.com:', 'example.com'],
    ['example.com:65535', 'example.com'],
    ['ex%41mple.com', 'ex%41mple.com'],
  ])('%s -> %s', (raw, want) => {
    expect(normalizeHost(raw)).toBe(want);
  });

  it.each([
    [''],
    [':8080'],
    ['a..b'],
    ['exa/mple.com'],
    ['exa\\mple.com'],
    ['exa mple.com'],
    ['exa\tmple'],
    ['host\u0000name'],
    ['h\u00e9st'],
    ['[::1'],
    ['.'],
    // RFC 3986 authority forms that are not host [":" port] (an outside probe found the first two forwarded as site.test)
    ['site.test:80@evil'],
    ['user@site.test'],
    ['site.test:99999999'],
    ['site.test:65536'],
    ['site.test:0'],
    ['site.test:80:80'],
    ['site.test:8o'],
    ['[::1]x'],
    ['[]'],
    ['[::g]'],
    ['site"test'],
    ['site<test>'],
    ['ex%4mple'],
    ['ex%zzmple'],
    ['site.test#x'],
    ['site.test?x'],
  ])('rejects %j as nginx would (400)', (raw) => {
    expect(normalizeHost(raw)).toBeUndefined();
  });

  it('rejects a missing Host', () => {
    expect(normalizeHost(undefined)).toBeUndefined();
  });
});

describe('cacheKey: md5(prefix + $host + $request_uri)', () => {
  it.each([
    ['', 'example.com', '/'],
    ['', 'example.com', '/a?b=1&c=2'],
    ['', 'example.com', '/a?c=2&b=1'],
    ['', 'example.com', '/caf%C3%A9?q=%20x'],
    ['', '[::1]', '/x'],
    ['site1:', 'example.com', '/'],
  ])('prefix %j host %j uri %j', (prefix, host, uri) => {
    expect(cacheKey(prefix, host, uri)).toBe(md5(prefix + host + uri));
  });

  it('is 32 lower-case hex chars', () => {
    expect(cacheKey('', 'example.com', '/')).toMatch(/^[0-9a-f]{32}$/);
  });

  it('keeps query order and percent-encoding distinct, as nginx does', () => {
    const keys = new Set([
      cacheKey('', 'example.com', '/a?b=1&c=2'),
      cacheKey('', 'example.com', '/a?c=2&b=1'),
      cacheKey('', 'example.com', '/caf%C3%A9'),
      cacheKey('', 'example.com', '/caf%c3%a9'),
    ]);
    expect(keys.size).toBe(4);
  });

  it('matches a known nginx vector: md5("example.com/")', () => {
    expect(cacheKey('', 'example.com', '/')).toBe(md5('example.com/'));
  });
});

describe('keyForUrl / splitUrl', () => {
  it.each([
    ['http://Example.com:8080/a?b=1', 'example.com', '/a?b=1'],
    ['https://example.com', 'example.com', '/'],
    ['http://example.com?x=1', 'example.com', '/?x=1'],
    ['http://example.com/caf%C3%A9#frag', 'example.com', '/caf%C3%A9'],
    ['http://user:pw@example.com/p', 'example.com', '/p'],
    ['http://[::1]:80/p', '[::1]', '/p'],
  ])('%s', (url, host, requestUri) => {
    expect(splitUrl(url)).toEqual({ host, requestUri });
    expect(keyForUrl('', url)).toBe(md5(host + requestUri));
  });

  it.each([['/relative'], ['ftp://example.com/'], ['http://a..b/']])('refuses %s', (url) => {
    expect(keyForUrl('', url)).toBeUndefined();
  });
});

describe('createKeyFunction', () => {
  it('gives the contract key, from its memo too, and stays bounded', () => {
    const keyFor = createKeyFunction('p:', 3);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 5; i++) expect(keyFor('example.com', `/${i}`)).toBe(md5(`p:example.com/${i}`));
      for (let i = 0; i < 5; i++) expect(keyFor(`h${i}.example`, '/')).toBe(md5(`p:h${i}.example/`));
    }
    // Host and request_uri are not confused where their joined text is the same.
    expect(keyFor('a.example', '/b')).toBe(md5('p:a.example/b'));
    expect(keyFor('a.exampl', 'e/b')).toBe(md5('p:a.example/b'));
    const long = '/' + 'x'.repeat(600);
    expect(keyFor('example.com', long)).toBe(md5(`p:example.com${long}`));
  });
});
