// The admin port's live stats page: the HTML (rendered with the numbers of the moment, so it reads without
// script too), its stylesheet and its script, each served as its own file under a strict Content-Security-
// Policy (no inline script or style, nothing from another origin). The script refreshes from /stats.json.

/** Content-Security-Policy of the page and its files: only this origin's script, style and JSON. */
export const STATS_CSP_DIRECTIVES = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  connectSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  baseUri: ["'none'"],
  formAction: ["'none'"],
  frameAncestors: ["'none'"],
};

export const STATS_CSS = `body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;padding:12px;max-width:1100px;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 4px}h2{font-size:1.05em;margin:18px 0 6px}
.summary{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}.summary div{background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px 10px;min-width:120px}
.summary b{display:block;font-size:1.3em}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:10px}
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px}
figcaption{font-weight:600;font-size:.9em}svg.chart{width:100%;height:140px;display:block}
.legend span{margin-right:10px;font-size:.85em;white-space:nowrap}.legend i{display:inline-block;width:10px;height:10px;margin-right:3px;border-radius:2px}
.wrap{overflow-x:auto}table{border-collapse:collapse;background:#fff;min-width:100%}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;font-size:.9em}
td.n{text-align:right;font-variant-numeric:tabular-nums}td.url{word-break:break-all;max-width:520px}
.down{color:#b00020;font-weight:700}.muted{color:#777}#error{color:#b00020}
.c-HIT{background:#2e7d32}.c-MISS{background:#f9a825}.c-BYPASS{background:#6d4c41}.c-EXPIRED{background:#ef6c00}.c-STALE{background:#8e24aa}
.c-UPDATING{background:#00838f}.c-REVALIDATED{background:#1565c0}.c-other{background:#9e9e9e}.c-ratio{background:#2e7d32}.c-p50{background:#1565c0}
.c-p99{background:#c62828}.c-bytes{background:#455a64}
`;

/** The page's script (served as /stats.js). Plain ES2017, no framework, no network beyond /stats.json. */
export const STATS_JS = String.raw`(function () {
  'use strict';
  var WINDOW = 900;
  var params = new URLSearchParams(location.search);
  var refresh = Math.max(250, Number(params.get('refresh')) || 2000);
  var COLORS = { HIT: '#2e7d32', MISS: '#f9a825', BYPASS: '#6d4c41', EXPIRED: '#ef6c00', STALE: '#8e24aa', UPDATING: '#00838f', REVALIDATED: '#1565c0', other: '#9e9e9e',
    ratio: '#2e7d32', p50: '#1565c0', p99: '#c62828', bytes: '#455a64' };
  var CACHED = ['HIT', 'STALE', 'UPDATING', 'REVALIDATED'];
  var SVG = 'http://www.w3.org/2000/svg';

  function $(id) { return document.getElementById(id); }
  function text(node, value) { node.textContent = value; }
  function num(n) { return n === null || n === undefined ? 'n/a' : (Math.round(n * 10) / 10).toLocaleString('en'); }
  function bytes(n) {
    if (n === null || n === undefined) return 'n/a';
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; var i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (Math.round(n * 10) / 10) + ' ' + u[i];
  }
  function sum(o) { var s = 0; for (var k in o) s += o[k]; return s; }
  function ratio(req) {
    var cached = 0; CACHED.forEach(function (k) { cached += req[k] || 0; });
    var lookups = cached + (req.MISS || 0) + (req.EXPIRED || 0);
    return lookups === 0 ? null : cached / lookups;
  }
  function row(cells) {
    var tr = document.createElement('tr');
    cells.forEach(function (c) {
      var td = document.createElement('td');
      if (c && typeof c === 'object') { text(td, c.v); if (c.cls) td.className = c.cls; if (c.data) td.setAttribute(c.data[0], c.data[1]); }
      else text(td, c);
      tr.appendChild(td);
    });
    return tr;
  }
  function fill(id, rows, empty, cols) {
    var body = $(id); while (body.firstChild) body.removeChild(body.firstChild);
    if (rows.length === 0) { var tr = row([empty]); tr.firstChild.setAttribute('colspan', String(cols)); tr.firstChild.className = 'muted'; body.appendChild(tr); return; }
    rows.forEach(function (r) { body.appendChild(r); });
  }
  function legend(id, names) {
    var box = $(id); while (box.firstChild) box.removeChild(box.firstChild);
    names.forEach(function (n) {
      var s = document.createElement('span'); var i = document.createElement('i'); i.className = 'c-' + n;
      s.appendChild(i); s.appendChild(document.createTextNode(n)); box.appendChild(s);
    });
  }

  /** Lines over the last 15 minutes: series of [t, value]; the y axis from 0 to the largest value. */
  function chart(id, series, unit) {
    var svg = $(id); var W = 600; var H = 140; var top = 14;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var now = Math.floor(Date.now() / 1000); var max = 0; var points = 0;
    series.forEach(function (s) { s.values.forEach(function (p) { if (p[1] !== null && p[1] > max) max = p[1]; }); });
    if (max === 0) max = 1;
    var grid = document.createElementNS(SVG, 'line');
    grid.setAttribute('x1', '0'); grid.setAttribute('x2', String(W)); grid.setAttribute('y1', String(top)); grid.setAttribute('y2', String(top));
    grid.setAttribute('stroke', '#ddd'); svg.appendChild(grid);
    var label = document.createElementNS(SVG, 'text');
    label.setAttribute('x', '2'); label.setAttribute('y', '11'); label.setAttribute('font-size', '11'); label.setAttribute('fill', '#555');
    label.textContent = num(max) + ' ' + unit + ' (15 min window)'; svg.appendChild(label);
    series.forEach(function (s) {
      var pts = [];
      s.values.forEach(function (p) {
        if (p[1] === null) return;
        var x = ((p[0] - (now - WINDOW)) / WINDOW) * W;
        var y = H - 2 - (p[1] / max) * (H - top - 4);
        pts.push(x.toFixed(1) + ',' + y.toFixed(1));
      });
      points += pts.length;
      var line = document.createElementNS(SVG, 'polyline');
      line.setAttribute('points', pts.join(' ')); line.setAttribute('fill', 'none');
      line.setAttribute('stroke', COLORS[s.name] || COLORS.other); line.setAttribute('stroke-width', '1.5');
      line.setAttribute('data-series', s.name);
      svg.appendChild(line);
    });
    svg.setAttribute('data-points', String(points));
  }

  function update(d) {
    var samples = d.samples;
    var status = d.health.status;
    var r = ratio(d.requests);
    var cached = 0; CACHED.forEach(function (k) { cached += d.requests[k] || 0; });
    var head = $('headline'); while (head.firstChild) head.removeChild(head.firstChild);
    var b1 = document.createElement('b'); text(b1, status); if (status !== 'ok') b1.className = 'down';
    var b2 = document.createElement('b'); text(b2, r === null ? 'n/a' : (r * 100).toFixed(1) + '%');
    head.appendChild(document.createTextNode('Health: ')); head.appendChild(b1);
    head.appendChild(document.createTextNode(' — Hit ratio: ')); head.appendChild(b2);
    head.appendChild(document.createTextNode(' (' + cached + ' from cache of ' + (cached + (d.requests.MISS || 0) + (d.requests.EXPIRED || 0)) + ' lookups)'));
    text($('workers'), d.health.workers === undefined ? '1' : String(d.health.workers));
    text($('ratio'), r === null ? 'n/a' : (r * 100).toFixed(1) + '%');
    var last = samples.slice(-10); var recent = 0; last.forEach(function (s) { recent += sum(s.requests); });
    text($('rps'), num(last.length === 0 ? 0 : recent / last.length));
    text($('total'), String(sum(d.requests)));
    text($('l1'), bytes(d.l1Bytes));
    text($('l1-evictions'), d.l1Evictions === null ? 'n/a' : String(d.l1Evictions));
    text($('updated'), new Date(d.now * 1000).toLocaleTimeString());

    var statuses = {};
    samples.forEach(function (s) { for (var k in s.requests) statuses[k] = true; });
    for (var k in d.requests) statuses[k] = true;
    var names = Object.keys(statuses).sort();
    chart('chart-requests', names.map(function (n) { return { name: n, values: samples.map(function (s) { return [s.t, s.requests[n] || 0]; }) }; }), 'req/s');
    legend('legend-requests', names);
    $('chart-requests').setAttribute('data-total', String(samples.reduce(function (a, s) { return a + sum(s.requests); }, 0)));
    chart('chart-ratio', [{ name: 'ratio', values: samples.map(function (s) { var x = ratio(s.requests); return [s.t, x === null ? null : x * 100]; }) }], '% hit ratio');
    chart('chart-latency', [
      { name: 'p50', values: samples.map(function (s) { return [s.t, s.originP50Ms]; }) },
      { name: 'p99', values: samples.map(function (s) { return [s.t, s.originP99Ms]; }) }], 'ms origin latency');
    chart('chart-bytes', [{ name: 'bytes', values: samples.map(function (s) { return [s.t, s.bytesOut]; }) }], 'bytes/s out');

    fill('totals', Object.keys(d.requests).sort().map(function (k) {
      return row([k, { v: String(d.requests[k]), cls: 'n', data: ['data-total', k] }]);
    }), 'no requests yet', 2);
    var errs = {}; var reqs = {};
    samples.forEach(function (s) { for (var u in s.origins) { errs[u] = (errs[u] || 0) + s.origins[u].errors; reqs[u] = (reqs[u] || 0) + s.origins[u].requests; } });
    fill('origins', d.health.origins.map(function (o) {
      return row([{ v: o.url, cls: 'url' }, { v: o.up ? 'up' : 'down', cls: o.up ? '' : 'down' }, { v: String(reqs[o.url] || 0), cls: 'n' },
        { v: String(errs[o.url] || 0), cls: 'n', data: ['data-errors', o.url] }, { v: num(d.originP50Ms), cls: 'n' }, { v: num(d.originP99Ms), cls: 'n' }]);
    }), 'no origin', 6);
    fill('top-origin', d.topOrigin.map(function (t) { return row([{ v: t.url, cls: 'url' }, { v: String(t.count), cls: 'n' }, { v: t.error ? '±' + t.error : '', cls: 'n' }]); }), 'none yet', 3);
    fill('top-not-stored', d.topNotStored.map(function (t) { return row([{ v: t.url, cls: 'url' }, t.reason || '', { v: String(t.count), cls: 'n' }]); }), 'none yet', 3);
    fill('reasons', Object.keys(d.notStored).sort().map(function (k) { return row([k, { v: String(d.notStored[k]), cls: 'n', data: ['data-reason', k] }]); }), 'none', 2);
    fill('nodes', d.memcached.map(function (n) {
      return row([n.node, { v: n.up ? 'up' : 'down', cls: n.up ? '' : 'down' }, { v: n.items === undefined ? '' : String(n.items), cls: 'n' },
        { v: n.bytes === undefined ? (n.error || '') : bytes(n.bytes) + ' of ' + bytes(n.limitBytes), cls: 'n' },
        { v: n.evictions === undefined ? '' : String(n.evictions), cls: 'n' },
        { v: n.getHitRatio === undefined || n.getHitRatio === null ? 'n/a' : (n.getHitRatio * 100).toFixed(1) + '%', cls: 'n' }]);
    }), 'embedded in-process store (no memcached)', 6);
    document.body.setAttribute('data-updated', String(d.now));
  }

  function tick() {
    fetch('stats.json', { cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) { if (!res.ok) throw new Error('stats.json answered ' + res.status); return res.json(); })
      .then(function (d) { update(d); text($('error'), ''); })
      .catch(function (err) { text($('error'), String(err && err.message || err)); })
      .then(function () { setTimeout(tick, refresh); });
  }
  tick();
})();
`;

export interface PageNumbers {
  readonly status: string;
  readonly workers: number | undefined;
  readonly requests: Readonly<Record<string, number>>;
  readonly origins: readonly { readonly url: string; readonly up: boolean; readonly requests: number; readonly errors: number; readonly failures: number }[];
  readonly memcached: readonly { readonly name: string; readonly up: boolean; readonly failures: number }[];
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page as first served: today's numbers in place, then /stats.js keeps them current. */
export function statsPageHtml(n: PageNumbers): string {
  const r = n.requests;
  const cached = (r.HIT ?? 0) + (r.STALE ?? 0) + (r.UPDATING ?? 0) + (r.REVALIDATED ?? 0);
  const lookups = cached + (r.MISS ?? 0) + (r.EXPIRED ?? 0);
  const ratio = lookups === 0 ? 'n/a' : `${((cached / lookups) * 100).toFixed(1)}%`;
  const total = Object.values(r).reduce((a, b) => a + b, 0);
  const chart = (id: string, title: string): string =>
    `<figure><figcaption>${title}</figcaption><div class="legend" id="legend-${id}"></div><svg class="chart" id="chart-${id}" viewBox="0 0 600 140" preserveAspectRatio="none" role="img" aria-label="${title}"></svg></figure>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>edge-page-cache</title><link rel="stylesheet" href="stats.css"></head>
<body><h1>edge-page-cache</h1>
<p><span id="headline">Health: <b>${escapeHtml(n.status)}</b> — Hit ratio: <b>${ratio}</b> (${cached} from cache of ${lookups} lookups)${n.workers ? ` — ${n.workers} workers` : ''}</span> <span class="muted">updated <span id="updated">now</span></span> <span id="error"></span></p>
<div class="summary"><div>hit ratio<b id="ratio">${ratio}</b></div><div>requests/s (10 s)<b id="rps">n/a</b></div><div>requests<b id="total">${total}</b></div><div>workers<b id="workers">${n.workers ?? 1}</b></div><div>L1 bytes<b id="l1">n/a</b></div><div>L1 evictions<b id="l1-evictions">n/a</b></div></div>
<div class="charts">${chart('requests', 'Requests/s by cache status')}${chart('ratio', 'Hit ratio')}${chart('latency', 'Origin latency p50 / p99')}${chart('bytes', 'Bytes out per second')}</div>
<h2>Requests by cache status</h2><div class="wrap"><table><thead><tr><th>status</th><th>requests</th></tr></thead><tbody id="totals">
${Object.entries(r).map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td class="n" data-total="${escapeHtml(k)}">${v}</td></tr>`).join('')}</tbody></table></div>
<h2>Origins</h2><div class="wrap"><table><thead><tr><th>origin</th><th>state</th><th>requests (15 min)</th><th>errors (15 min)</th><th>p50 ms (bucket)</th><th>p99 ms (bucket)</th></tr></thead><tbody id="origins">
${n.origins.map((o) => `<tr><td class="url">${escapeHtml(o.url)}</td><td>${o.up ? 'up' : '<b>down</b>'}</td><td class="n">${o.requests}</td><td class="n">${o.errors}</td><td></td><td></td></tr>`).join('')}</tbody></table></div>
<h2>Top URLs sent to the origin (misses and passes)</h2><div class="wrap"><table><thead><tr><th>URL</th><th>count</th><th>error bound</th></tr></thead><tbody id="top-origin"></tbody></table></div>
<h2>Top URLs not stored</h2><div class="wrap"><table><thead><tr><th>URL</th><th>reason</th><th>count</th></tr></thead><tbody id="top-not-stored"></tbody></table></div>
<h2>Not stored, by reason</h2><div class="wrap"><table><thead><tr><th>reason</th><th>responses</th></tr></thead><tbody id="reasons"></tbody></table></div>
<h2>memcached</h2><div class="wrap"><table><thead><tr><th>node</th><th>state</th><th>items</th><th>bytes of limit</th><th>evictions</th><th>get hit ratio</th></tr></thead><tbody id="nodes">
${n.memcached.length === 0 ? '<tr><td colspan="6">embedded in-process store</td></tr>' : n.memcached.map((m) => `<tr><td>${escapeHtml(m.name)}</td><td>${m.up ? 'up' : '<b>down</b>'}</td><td colspan="4">${m.failures} failures</td></tr>`).join('')}</tbody></table></div>
<script src="stats.js"></script></body></html>`;
}
