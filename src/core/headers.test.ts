import { connectionTokens, parseTags, storableHeaders } from './headers';

describe('storableHeaders', () => {
  it('keeps end-to-end headers, drops hop-by-hop, per-delivery, private and Connection-named ones', () => {
    expect(
      storableHeaders({
        'Content-Type': 'text/html',
        etag: '"1"',
        connection: 'x-trace',
        'x-trace': 'abc',
        'transfer-encoding': 'chunked',
        'content-length': '10',
        age: '5',
        'set-cookie': ['a=1'],
        'surrogate-key': 'a b',
        'x-multi': ['1', '2'],
      }),
    ).toEqual(['content-type', 'text/html', 'etag', '"1"', 'x-multi', '1', 'x-multi', '2']);
  });

  it('adds Vary: Accept-Encoding to an encoded body', () => {
    expect(storableHeaders({ 'content-encoding': 'gzip' })).toEqual(['content-encoding', 'gzip', 'vary', 'Accept-Encoding']);
    expect(storableHeaders({ 'content-encoding': 'br', vary: 'Origin' })).toEqual(['content-encoding', 'br', 'vary', 'Origin, Accept-Encoding']);
    expect(storableHeaders({ 'content-encoding': 'gzip', vary: 'accept-encoding' })).toEqual(['content-encoding', 'gzip', 'vary', 'accept-encoding']);
    // Vary lines become one entry, so a reader of the entry's Vary sees every name.
    expect(storableHeaders({ vary: ['Accept-Encoding', 'Cookie'] })).toEqual(['vary', 'Accept-Encoding, Cookie']);
  });
});

describe('parseTags / connectionTokens', () => {
  it('splits Surrogate-Key on spaces and commas, without duplicates', () => {
    expect(parseTags('a b, c  a')).toEqual(['a', 'b', 'c']);
  });
  it('lists Connection tokens except close and keep-alive', () => {
    expect([...(connectionTokens('close, X-Foo, keep-alive') ?? [])]).toEqual(['x-foo']);
  });
});
