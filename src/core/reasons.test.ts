// The all-reasons functions explain uses agree with the first-reason verdicts the doors run.
import { decideStore, notStoredReasons } from './policy';
import type { StorePolicyOptions } from './policy';
import { decideRequest, passReasons, resolveRequestPolicy } from './request-policy';

const STORE: StorePolicyOptions = {
  defaultTtlSeconds: 0,
  defaultStaleWhileRevalidateSeconds: 0,
  defaultStaleIfErrorSeconds: 0,
  statuses: new Set([200, 404]),
  maxTtlSeconds: 86400,
};

describe('passReasons', () => {
  const policy = resolveRequestPolicy({ bypassPaths: ['/admin'] }, 'bypass');
  it.each([
    ['GET', {}, '/', []],
    ['POST', {}, '/', ['method']],
    ['GET', { authorization: 'Basic x' }, '/', ['authorization']],
    ['GET', { cookie: 'sid=1' }, '/admin/x', ['cookie', 'path']],
    ['PUT', { cookie: 'sid=1', authorization: 'Bearer t', 'content-length': '3' }, '/admin', ['method', 'authorization', 'body', 'cookie', 'path']],
    ['GET', { cookie: '_ga=1' }, '/', []],
    ['GET', { 'x-original-url': '/other' }, '/', ['unkeyed-header']],
  ])('%s %j %s: %j, the first of which is decideRequest', (method, headers, target, expected) => {
    const all = passReasons(policy, method, { host: 'example.com', ...headers }, target, 'example.com', false);
    expect(all).toEqual(expected);
    expect(decideRequest(policy, method, { host: 'example.com', ...headers }, target, 'example.com', false)).toBe(all[0] ?? 'lookup');
  });
});

describe('notStoredReasons', () => {
  it.each([
    ['GET', {}, 200, { 'cache-control': 'max-age=60' }, []],
    ['GET', {}, 200, { 'cache-control': 'private, max-age=60', 'set-cookie': 'a=1', vary: '*' }, ['private', 'set-cookie', 'vary']],
    ['GET', {}, 500, { 'cache-control': 'no-store' }, ['status', 'no-store']],
    ['POST', { authorization: 'x' }, 200, { 'cache-control': 'max-age=60' }, ['method', 'authorization']],
    ['GET', {}, 200, {}, ['no-freshness']],
    ['GET', { cookie: 'sid=1' }, 200, { 'cache-control': 'max-age=60', vary: 'Cookie' }, ['request-cookie']],
    ['GET', { 'cache-control': 'no-store' }, 200, { 'cache-control': 'max-age=60' }, ['request-no-store']],
  ])('%s %j -> %s %j: %j, the first of which is decideStore', (method, reqHeaders, status, resHeaders, expected) => {
    const request = { method, url: '/', headers: reqHeaders };
    const response = { status, headers: resHeaders };
    const all = notStoredReasons(request, response, STORE);
    expect(all).toEqual(expected);
    const d = decideStore(request, response, STORE);
    expect(d.store ? undefined : d.reason).toBe(all[0]);
  });

  it('adds too-large for a body over the limit', () => {
    expect(notStoredReasons({ method: 'GET', url: '/', headers: {} }, { status: 200, headers: { 'cache-control': 'max-age=60' }, bodyBytes: 2048 }, STORE, 1024)).toEqual(['too-large']);
  });
});
