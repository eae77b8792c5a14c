// The dashboard's script (served from /assets/, never inline: the page's CSP forbids inline
// script). It logs in once with the admin token (a session cookie the script cannot read), then
// sends the session's CSRF token with every state change.
'use strict';
let csrf = null;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

async function api(path, init = {}) {
  const headers = { ...(init.headers || {}) };
  if (init.method === 'POST') headers['x-csrf-token'] = csrf || '';
  const res = await fetch(path, { ...init, headers, credentials: 'same-origin' });
  if (res.status === 401) { showLogin(); throw new Error('not logged in'); }
  return res;
}

function showLogin() {
  $('app').hidden = true; $('logout').hidden = true; $('login').hidden = false;
}

async function start() {
  const res = await fetch('/api/v1/session', { credentials: 'same-origin' });
  if (res.status !== 200) return showLogin();
  csrf = (await res.json()).csrf;
  $('login').hidden = true; $('app').hidden = false; $('logout').hidden = false;
  refresh();
}

$('login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const res = await fetch('/api/v1/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: $('token').value }) });
  if (res.status !== 200) { $('login-error').textContent = 'wrong token'; return; }
  $('token').value = ''; $('login-error').textContent = '';
  start();
});
$('logout').addEventListener('click', async () => { await api('/api/v1/logout', { method: 'POST' }); showLogin(); });

async function act(ref, action) {
  await api('/api/v1/backends/' + encodeURIComponent(ref) + '/' + action, { method: 'POST' });
  refresh();
}
function counters(c) {
  return Object.entries(c || {}).map(([k, v]) => esc(k) + ' ' + esc(v)).join('<br>');
}
function probe(p) {
  if (!p) return '';
  return '<span class="' + (p.ok ? 'up' : 'down') + '">' + (p.ok ? 'ok' : 'failed') + '</span> ' + esc(p.latencyMs) + ' ms<br>' + esc(p.detail);
}
async function refresh() {
  if ($('app').hidden) return;
  try {
    const s = await (await api('/api/v1/status')).json();
    $('meta').textContent = 'config ' + s.config + ' · started ' + s.startedAt + ' · snapshot #' + s.snapshotVersion;
    $('warnings').innerHTML = s.warnings.map((w) => '<div class="warn">' + esc(w) + '</div>').join('');
    $('services').innerHTML = s.services.map((svc) =>
      '<h2>' + esc(svc.name) + ' <span class="meta">(' + esc(svc.kind) + ' · ' + esc(svc.virtualIp) + ' · ' + esc(svc.dataplane) + ')</span></h2>' +
      '<table><tr><th>backend</th><th>address</th><th>state</th><th>reason</th><th>since</th><th>last probe</th><th>counters</th><th></th></tr>' +
      svc.backends.map((b) => '<tr><td>' + esc(b.name) + '</td><td>' + esc(b.address) + '</td><td class="' + esc(b.state) + '">' + esc(b.state) +
        '</td><td>' + esc(b.reason) + '</td><td>' + esc(b.since) + '</td><td>' + probe(b.lastProbe) + '</td><td>' + counters(b.counters) + '</td><td>' +
        ['drain', 'disable', 'enable'].map((a) => '<button data-ref="' + esc(b.pool + '/' + b.name) + '" data-action="' + a + '">' + a + '</button>').join('') +
        '</td></tr>').join('') + '</table>').join('');
  } catch (e) {
    $('meta').textContent = 'cannot reach vpnlb: ' + e.message;
  }
}
document.addEventListener('click', (e) => {
  const t = e.target;
  if (t instanceof HTMLButtonElement && t.dataset.ref) act(t.dataset.ref, t.dataset.action);
});
start();
setInterval(refresh, 1000);
