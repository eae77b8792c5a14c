// The dashboard's script, served from /assets/ (never inline: the page's CSP forbids inline
// script). It logs in once with an admin token (the session cookie is HttpOnly: this script never
// sees it), then sends the session's CSRF token with every state change. It polls the status
// every 2 s and the 15-minute history every 5 s; the charts are uPlot, served by vpnlb itself.
'use strict';

const state = {
  csrf: null,
  role: null,
  status: null,
  history: null,
  events: [],
  services: new Map(),
  timers: [],
};
const $ = (id) => document.getElementById(id);
const esc = (s) =>
  String(s ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );

// ---- formatting ----------------------------------------------------------------------------
function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min ago';
  return Math.floor(s / 86400) + ' d ago';
}
function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
  return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
}
function bytes(n) {
  if (!n) return '0 B';
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  const i = Math.min(u.length - 1, Math.floor(Math.log10(Math.abs(n)) / 3));
  return (n / 10 ** (3 * i)).toFixed(i === 0 ? 0 : 1) + ' ' + u[i];
}
const rate = (n) => bytes(n) + '/s';
const pct = (x) => (x * 100).toFixed(x > 0 && x < 0.1 ? 1 : 0) + ' %';
const clock = (iso) =>
  new Date(iso).toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  });

// ---- API ------------------------------------------------------------------------------------
async function api(path, init = {}) {
  const headers = { ...(init.headers || {}) };
  if (init.method === 'POST') headers['x-csrf-token'] = state.csrf || '';
  const res = await fetch(path, { ...init, headers, credentials: 'same-origin' });
  if (res.status === 401) {
    showLogin();
    throw new Error('not logged in');
  }
  return res;
}

function showLogin() {
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  $('app').hidden = true;
  $('logout').hidden = true;
  $('role').textContent = '';
  $('login').hidden = false;
  $('token').focus();
}

async function start() {
  const s = await (await fetch('/api/v1/session', { credentials: 'same-origin' })).json();
  if (!s.role) return showLogin();
  state.csrf = s.csrf;
  state.role = s.role;
  $('role').textContent = s.role;
  $('login').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = false;
  await Promise.all([refresh(), refreshHistory()]);
  state.timers.push(setInterval(refresh, 2000), setInterval(refreshHistory, 5000));
}

$('login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const res = await fetch('/api/v1/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: $('token').value }),
  });
  if (res.status !== 200) {
    $('login-error').textContent =
      res.status === 401 ? 'That token was refused.' : 'Login failed (' + res.status + ').';
    return;
  }
  $('token').value = '';
  $('login-error').textContent = '';
  start();
});
$('logout').addEventListener('click', async () => {
  await api('/api/v1/logout', { method: 'POST' }).catch(() => {});
  showLogin();
});

// ---- rendering ------------------------------------------------------------------------------
async function refresh() {
  try {
    const [status, events] = await Promise.all([
      api('/api/v1/status').then((r) => r.json()),
      api('/api/v1/events').then((r) => r.json()),
    ]);
    state.status = status;
    state.events = events.events;
    render();
  } catch (e) {
    if (!$('app').hidden) $('meta').textContent = 'cannot reach vpnlb: ' + e.message;
  }
}
async function refreshHistory() {
  try {
    state.history = await (await api('/api/v1/history')).json();
    drawCharts();
    if (state.status) renderServices();
  } catch {
    /* the status poll reports connectivity */
  }
}

function backendTunnels(b) {
  const c = b.counters || {};
  return c.connections ?? c.flows ?? null;
}

function render() {
  const s = state.status;
  $('meta').textContent =
    'config ' +
    s.config +
    ' · up ' +
    ago(s.startedAt).replace(' ago', '') +
    ' · snapshot #' +
    s.snapshotVersion;
  renderTotals(s);
  $('warnings').innerHTML = s.warnings
    .map((w) => '<div class="warn">⚠ ' + esc(w) + '</div>')
    .join('');
  renderServices();
  renderEvents();
}

function renderTotals(s) {
  const all = s.services.flatMap((svc) => svc.backends);
  const servers = new Map();
  for (const b of all) servers.set(b.pool + '/' + b.name, b.state);
  const up = [...servers.values()].filter((x) => x === 'up').length;
  const tunnels = all.map(backendTunnels).filter((x) => x !== null);
  const latest = latestRates();
  const card = (label, value, sub, id) =>
    '<div class="total"' +
    (id ? ' id="' + id + '"' : '') +
    '><div class="label">' +
    esc(label) +
    '</div><div class="value">' +
    esc(value) +
    '</div><div class="sub">' +
    esc(sub) +
    '</div></div>';
  $('totals').innerHTML =
    card('Services', s.services.length, s.services.map((x) => x.name).join(', ')) +
    card(
      'Servers up',
      up + ' / ' + servers.size,
      [...servers.values()].filter((x) => x !== 'up').length
        ? 'others: ' + [...new Set([...servers.values()].filter((x) => x !== 'up'))].join(', ')
        : 'all serving',
      'total-up',
    ) +
    card(
      'Tunnels / flows',
      tunnels.length ? tunnels.reduce((a, b) => a + b, 0) : '—',
      tunnels.length ? 'now' : 'the kernel plane counts packets, not tunnels',
    ) +
    card(
      'Traffic',
      rate(latest.in + latest.out),
      '↓ ' + rate(latest.in) + ' · ↑ ' + rate(latest.out),
    ) +
    card('Warnings', s.warnings.length, s.warnings.length ? 'see below' : 'none') +
    (s.ha ? haCard(s.ha, card) : '') +
    (s.bgp ? bgpCard(s.bgp, card) : '') +
    (s.bgp?.flowSync ? flowSyncCard(s.bgp.flowSync, card) : '');
}

/** This node in an active/standby pair: its role, the peer, the sync, the last failover (docs/high-availability.md). */
function haCard(h, card) {
  const sync =
    h.sync.conntrackd === 'running'
      ? 'sync: conntrackd running, ' + (h.sync.entries ?? '?') + ' entries'
      : 'sync: conntrackd not running (' + h.sync.detail + ')';
  const last = h.lastFailover
    ? 'last failover ' +
      ago(h.lastFailover.at) +
      ': ' +
      h.lastFailover.from +
      ' → ' +
      h.lastFailover.to +
      ', ' +
      h.lastFailover.cause
    : 'no failover yet';
  const sub =
    (h.drained ? 'drained · ' : '') +
    (h.check !== 'ok' ? 'check: ' + h.check + ' · ' : '') +
    'peer ' +
    h.peer.name +
    ' (priority ' +
    h.peer.priority +
    ', ours ' +
    h.priority +
    ') · ' +
    sync +
    ' · ' +
    last;
  return card('HA ' + h.node, h.role, sub, 'total-ha');
}

/** This node behind ECMP: how many addresses it announces, and its BGP peers (docs/scale-out.md). */
function bgpCard(b, card) {
  if (b.supervisor === 'absent') return card('BGP', 'not running', b.detail, 'total-bgp');
  const on = b.announcements.filter((a) => a.announced).length;
  const peers = b.peers.map((p) => p.name + ' ' + (p.established ? 'up' : p.state)).join(', ');
  const off = b.announcements
    .filter((a) => !a.announced)
    .map((a) => a.address + ': ' + a.reason)
    .join('; ');
  const sub =
    (b.supervisor === 'stale' ? 'supervisor silent since ' + b.updatedAt + ' · ' : '') +
    (b.drained ? 'drained · ' : '') +
    'peers ' +
    (peers || 'none') +
    (off ? ' · withdrawn ' + off : '');
  return card(
    'BGP ' + b.node,
    on + ' / ' + b.announcements.length + ' announced',
    sub,
    'total-bgp',
  );
}

/** The ike-spi flow state this node pulls from the other nodes (`bgp.flowSync`, docs/scale-out.md). */
function flowSyncCard(f, card) {
  const fresh = f.peers.filter((p) => p.lastOkAt && !p.lastError).length;
  const peers = f.peers
    .map(
      (p) =>
        p.name +
        (p.lastError
          ? ' failing: ' + p.lastError
          : p.lastOkAt
            ? ' pulled ' + ago(p.lastOkAt)
            : ' never pulled'),
    )
    .join(', ');
  const sub =
    (f.ready ? '' : 'starting, not announcing yet · ') +
    (peers || 'no other node') +
    ' · taken: ' +
    f.added +
    ' added, ' +
    f.refreshed +
    ' refreshed, ' +
    f.moved +
    ' moved' +
    (f.lastImportError ? ' · last round not applied: ' + f.lastImportError : '');
  return card('Flow sync', fresh + ' / ' + f.peers.length + ' nodes', sub, 'total-flow-sync');
}

/** Latest per-second rates summed over every backend (from the history). */
function latestRates(prefix) {
  const out = { in: 0, out: 0, byKey: {} };
  const series = state.history?.series || {};
  for (const [key, v] of Object.entries(series)) {
    if (prefix && !key.startsWith(prefix + '/')) continue;
    const i = v.t.length - 1;
    if (i < 0) continue;
    const r = { in: v.bytesInPerSec[i] ?? 0, out: v.bytesOutPerSec[i] ?? 0 };
    out.in += r.in;
    out.out += r.out;
    out.byKey[key] = r;
  }
  return out;
}

function serviceFacts(svc) {
  const facts = [
    svc.kind.toUpperCase(),
    ...(svc.listeners.length ? svc.listeners : [svc.virtualIp]),
    svc.dataplane,
  ];
  if (svc.nat) facts.push(svc.nat === 'transparent' ? 'transparent (client IP kept)' : 'full NAT');
  if (svc.affinity) facts.push('affinity ' + svc.affinity);
  if (svc.mode) facts.push(svc.mode);
  if (svc.persistence) facts.push('persistence ' + svc.persistence);
  facts.push(svc.method);
  if (svc.monitor) facts.push('monitor ' + svc.monitor);
  return facts;
}

function renderServices() {
  const s = state.status;
  const root = $('services');
  const names = s.services.map((x) => x.name).join('|');
  if (root.dataset.names !== names) {
    // The set of services changed (first render, reload): rebuild the cards and their charts.
    for (const v of state.services.values()) for (const c of v.charts) c.plot?.destroy();
    state.services.clear();
    root.innerHTML = '';
    root.dataset.names = names;
    for (const svc of s.services) {
      const card = document.createElement('section');
      card.className = 'card service';
      card.dataset.service = svc.name;
      card.innerHTML =
        '<div class="service-head"><h2>' +
        esc(svc.name) +
        '</h2><div class="facts"></div></div>' +
        '<table class="backends"><thead><tr><th>Server</th><th>State</th><th>Weight · share</th><th>Tunnels</th><th>Traffic</th><th>Last probe</th><th>Downtime</th><th></th></tr></thead><tbody></tbody></table>' +
        '<div class="charts"><div class="chart"><h3>Traffic, last 15 min (bytes/s, both ways)</h3><div class="plot" data-chart="traffic"></div></div>' +
        '<div class="chart"><h3>Probe latency, last 15 min (ms)</h3><div class="plot" data-chart="latency"></div></div></div>';
      root.appendChild(card);
      state.services.set(svc.name, {
        card,
        charts: [
          { kind: 'traffic', el: card.querySelector('[data-chart=traffic]') },
          { kind: 'latency', el: card.querySelector('[data-chart=latency]') },
        ],
      });
    }
    drawCharts();
  }
  const rates = latestRates();
  const downtime = state.history?.downtimeMs || {};
  for (const svc of s.services) {
    const { card } = state.services.get(svc.name);
    card.querySelector('.facts').innerHTML =
      serviceFacts(svc)
        .map((f) => '<span class="fact">' + esc(f) + '</span>')
        .join('') + (svc.dataplaneInSync ? '' : '<span class="fact">applying…</span>');
    card.querySelector('tbody').innerHTML = svc.backends
      .map((b) =>
        backendRow(svc, b, rates.byKey[svc.name + '/' + b.name], downtime[svc.name + '/' + b.name]),
      )
      .join('');
    applyShareWidths(card);
  }
}

function backendRow(svc, b, r, downMs) {
  const p = b.lastProbe;
  const probe = !p
    ? '<span class="small">' + (svc.monitor ? 'not yet probed' : 'no monitor') + '</span>'
    : '<span class="' +
      (p.ok ? 'ok' : 'fail') +
      '">' +
      (p.ok ? 'ok' : 'failed') +
      '</span> <span class="num">' +
      esc(Math.round(p.latencyMs * 10) / 10) +
      ' ms</span>' +
      '<div class="small">' +
      (p.ok ? '' : esc(p.detail) + ' · ' + esc(p.streak) + ' in a row · ') +
      esc(ago(p.at)) +
      '</div>';
  const tunnels = backendTunnels(b);
  const cell = (label, html) => '<td data-label="' + label + '"><div>' + html + '</div></td>';
  return (
    '<tr data-backend="' +
    esc(b.name) +
    '">' +
    cell(
      'Server',
      '<div class="name">' +
        esc(b.name) +
        '</div><div class="addr">' +
        esc(b.address) +
        (b.pool ? ' · pool ' + esc(b.pool) : '') +
        '</div>',
    ) +
    cell(
      'State',
      '<span class="state ' +
        esc(b.state) +
        '">' +
        esc(b.state) +
        '</span><div class="small">' +
        esc(b.reason) +
        '</div><div class="small">since ' +
        esc(ago(b.since)) +
        '</div>',
    ) +
    cell(
      'Weight · share',
      '<span class="num">' +
        esc(b.weight) +
        ' · ' +
        pct(b.share || 0) +
        '</span><div class="share"><span data-share="' +
        (b.share || 0) +
        '"></span></div>',
    ) +
    cell('Tunnels', '<span class="num">' + (tunnels === null ? '—' : esc(tunnels)) + '</span>') +
    cell(
      'Traffic',
      r
        ? '<span class="num">↓ ' +
            rate(r.in) +
            '</span><div class="num small">↑ ' +
            rate(r.out) +
            '</div>'
        : '—',
    ) +
    cell('Last probe', probe) +
    cell('Downtime', '<span class="num">' + (downMs ? duration(downMs) : '0 s') + '</span>') +
    cell('', state.role === 'operator' ? actionsFor(svc, b) : '') +
    '</tr>'
  );
}

/** Only the actions that make sense in the backend's administrative state. */
function actionsFor(svc, b) {
  const acts =
    b.admin === 'enabled'
      ? ['drain', 'disable']
      : b.admin === 'draining'
        ? ['enable', 'disable']
        : ['enable'];
  return (
    '<div class="actions">' +
    acts
      .map(
        (a) =>
          '<button data-ref="' +
          esc(b.pool + '/' + b.name) +
          '" data-action="' +
          a +
          '" data-service="' +
          esc(svc.name) +
          '"' +
          (a === 'disable' ? ' class="danger"' : '') +
          '>' +
          a +
          '</button>',
      )
      .join('') +
    '</div>'
  );
}

/** The share bars' widths, set through the CSSOM: the CSP forbids inline style attributes. */
function applyShareWidths(root) {
  for (const el of root.querySelectorAll('[data-share]'))
    el.style.width = Math.round(Number(el.dataset.share) * 100) + '%';
}

function renderEvents() {
  const list = state.events.slice(-150).reverse();
  $('events').innerHTML =
    list.length === 0
      ? '<li><span></span><span></span><span class="small">nothing yet</span></li>'
      : list
          .map(
            (e) =>
              '<li><time datetime="' +
              esc(e.at) +
              '" title="' +
              esc(e.at) +
              '">' +
              esc(clock(e.at)) +
              '</time><span class="kind ' +
              esc(e.severity === 'info' ? e.kind : e.severity) +
              '">' +
              esc(e.kind) +
              '</span>' +
              '<span>' +
              (e.service || e.backend
                ? '<b>' + esc([e.service, e.backend].filter(Boolean).join('/')) + '</b> '
                : '') +
              esc(e.message) +
              '</span></li>',
          )
          .join('');
}

// ---- charts ---------------------------------------------------------------------------------
const PALETTE = [
  '#2457c5',
  '#d9480f',
  '#2b8a3e',
  '#862e9c',
  '#c2255c',
  '#0b7285',
  '#e67700',
  '#5c940d',
];

function drawCharts() {
  if (typeof uPlot === 'undefined' || !state.history || !state.status) return;
  for (const svc of state.status.services) {
    const entry = state.services.get(svc.name);
    if (!entry) continue;
    const keys = svc.backends
      .map((b) => svc.name + '/' + b.name)
      .filter((k) => state.history.series[k]);
    if (keys.length === 0) continue;
    const t = state.history.series[keys[0]].t.map((ms) => ms / 1000);
    const align = (arr) => arr.slice(-t.length);
    for (const chart of entry.charts) {
      const traffic = chart.kind === 'traffic';
      const data = [
        t,
        ...keys.map((k) => {
          const s = state.history.series[k];
          return align(
            traffic
              ? s.bytesInPerSec.map((v, i) => (v === null ? null : v + (s.bytesOutPerSec[i] ?? 0)))
              : s.probeLatencyMs,
          );
        }),
      ];
      const width = Math.max(260, chart.el.clientWidth || 400);
      if (chart.plot && chart.keys === keys.join('|')) {
        chart.plot.setData(data);
        if (Math.abs(chart.plot.width - width) > 4) chart.plot.setSize({ width, height: 150 });
        continue;
      }
      chart.plot?.destroy();
      chart.keys = keys.join('|');
      chart.plot = new uPlot(
        {
          width,
          height: 150,
          legend: { show: true },
          cursor: { drag: { x: false, y: false } },
          scales: { x: { time: true } },
          axes: [
            { stroke: '#647084', grid: { stroke: '#eef1f5' } },
            {
              stroke: '#647084',
              grid: { stroke: '#eef1f5' },
              size: 60,
              values: (_u, vals) => vals.map((v) => (traffic ? bytes(v) : v + ' ms')),
            },
          ],
          series: [
            {},
            ...keys.map((k, i) => ({
              label: k.split('/')[1],
              stroke: PALETTE[i % PALETTE.length],
              width: 1.6,
              spanGaps: false,
              value: (_u, v) => (v == null ? '—' : traffic ? rate(v) : v + ' ms'),
            })),
          ],
        },
        data,
        chart.el,
      );
    }
  }
}
window.addEventListener('resize', () => drawCharts());

// ---- actions --------------------------------------------------------------------------------
const CONSEQUENCES = {
  drain: (_b, n, pools) =>
    'New clients go to the other servers' +
    pools +
    '. ' +
    (n === null ? 'Its existing tunnels stay' : 'Its ' + n + ' existing tunnel(s) stay') +
    ' until they end (SSTP: at most drainTimeout).',
  disable: (_b, n, pools) =>
    'It gets no new clients' +
    pools +
    ' and ' +
    (n === null
      ? 'its existing tunnels are cut now'
      : 'its ' + n + ' existing tunnel(s) are cut now') +
    ': those clients reconnect to the other servers.',
  enable: (_b, _n, pools) =>
    'It receives new clients again' +
    pools +
    ' as soon as its monitor finds it up. Tunnels on other servers stay where they are.',
};

document.addEventListener('click', async (e) => {
  const t = e.target;
  if (!(t instanceof HTMLButtonElement) || !t.dataset.ref) return;
  const svc = state.status.services.find((s) => s.name === t.dataset.service);
  const b = svc?.backends.find((x) => x.pool + '/' + x.name === t.dataset.ref);
  if (!b) return;
  const usedBy = state.status.services.filter((s) => s.pool === b.pool).map((s) => s.name);
  const pools = usedBy.length > 1 ? ' (in ' + usedBy.join(', ') + ')' : '';
  const action = t.dataset.action;
  $('confirm-title').textContent =
    action[0].toUpperCase() + action.slice(1) + ' ' + b.name + ' (' + b.address + ')?';
  $('confirm-text').textContent = CONSEQUENCES[action](b, backendTunnels(b), pools);
  $('confirm-ok').textContent = action[0].toUpperCase() + action.slice(1);
  $('confirm-ok').className = action === 'disable' ? 'danger' : 'primary';
  $('confirm').returnValue = '';
  $('confirm').showModal();
  $('confirm').addEventListener('close', async function onClose() {
    $('confirm').removeEventListener('close', onClose);
    if ($('confirm').returnValue !== 'ok') return;
    const res = await api('/api/v1/backends/' + encodeURIComponent(t.dataset.ref) + '/' + action, {
      method: 'POST',
    });
    if (res.status !== 200) alertError((await res.json()).error);
    refresh();
  });
});

function alertError(message) {
  $('warnings').insertAdjacentHTML('afterbegin', '<div class="warn">' + esc(message) + '</div>');
}

// ---- which server ---------------------------------------------------------------------------
$('which').addEventListener('submit', async (e) => {
  e.preventDefault();
  const q = new URLSearchParams({ client: $('which-client').value.trim() });
  const spi = $('which-spi').value.trim();
  if (spi) q.set('spi', spi);
  const res = await api('/api/v1/which?' + q);
  const body = await res.json();
  $('which-answer').innerHTML =
    res.status !== 200
      ? '<li class="fail">' + esc(body.error) + '</li>'
      : body.answers
          .map(
            (a) =>
              '<li><b>' +
              esc(a.service) +
              '</b>: ' +
              (a.note
                ? esc(a.note)
                : a.backend
                  ? '<span class="name">' +
                    esc(a.backend) +
                    '</span> <span class="addr">' +
                    esc(a.address) +
                    '</span> <span class="small">— by ' +
                    esc(
                      a.keyKind === 'ike-spi'
                        ? 'IKE SPI'
                        : a.keyKind === 'source-ip'
                          ? 'source address'
                          : a.keyKind,
                    ) +
                    (a.slot !== null && a.slot !== undefined
                      ? ', Maglev slot ' + esc(a.slot)
                      : '') +
                    '</span>'
                  : 'no server available') +
              '</li>',
          )
          .join('');
});

start();
