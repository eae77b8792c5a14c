/**
 * The live dashboard: one self-contained page (no external assets, the admin host may have no
 * Internet) that polls `/api/v1/status` every second and offers drain / disable / enable.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vpnlb</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
 h1{font-size:1.3em;margin:0 0 .2em} h2{font-size:1.1em;margin:1.2em 0 .3em}
 table{border-collapse:collapse;width:100%;background:#fff}
 th,td{border:1px solid #ddd;padding:.35em .5em;text-align:left;vertical-align:top}
 th{background:#f0f0f0} .meta{color:#666}
 .up{color:#087f23;font-weight:600} .down{color:#b00020;font-weight:600}
 .draining{color:#a15c00;font-weight:600} .disabled{color:#666;font-weight:600}
 .warn{background:#fff4e5;border:1px solid #f0c36d;padding:.4em .6em;margin:.3em 0}
 button{margin-right:.3em}
</style></head>
<body>
<h1>vpnlb</h1><div class="meta" id="meta">loading…</div>
<div id="warnings"></div><div id="services"></div>
<script>
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
async function act(ref, action) {
  await fetch('/api/v1/backends/' + encodeURIComponent(ref) + '/' + action, { method: 'POST' });
  refresh();
}
function counters(c) {
  const parts = [];
  for (const [k, v] of Object.entries(c || {})) parts.push(esc(k) + ' ' + esc(v));
  return parts.join('<br>');
}
function probe(p) {
  if (!p) return '';
  return '<span class="' + (p.ok ? 'up' : 'down') + '">' + (p.ok ? 'ok' : 'failed') + '</span> ' + esc(p.latencyMs) + ' ms<br>' +
    esc(p.detail) + '<br><span class="meta">' + esc(p.at) + ' · streak ' + esc(p.streak) + '</span>';
}
async function refresh() {
  try {
    const s = await (await fetch('/api/v1/status')).json();
    document.getElementById('meta').textContent =
      'config ' + s.config + ' · started ' + s.startedAt + ' · snapshot #' + s.snapshotVersion +
      (s.ha ? ' · pair: ' + s.ha.node + ' ' + s.ha.role + (s.ha.drained ? ' (drained)' : '') + ', peer ' + s.ha.peer.name +
        ', sync ' + s.ha.sync.conntrackd + (s.ha.lastFailover ? ', last failover ' + s.ha.lastFailover.at + ': ' + s.ha.lastFailover.cause : '') : '');
    document.getElementById('warnings').innerHTML = s.warnings.map((w) => '<div class="warn">' + esc(w) + '</div>').join('');
    document.getElementById('services').innerHTML = s.services.map((svc) =>
      '<h2>' + esc(svc.name) + ' <span class="meta">(' + esc(svc.kind) + ' · ' + esc(svc.virtualIp) + ' · ' +
      esc(svc.dataplane) + (svc.nat ? ' · nat ' + esc(svc.nat) : '') + (svc.mode ? ' · ' + esc(svc.mode) : '') +
      ' · ' + esc(svc.method) + ')</span></h2>' +
      '<table><tr><th>backend</th><th>address</th><th>state</th><th>reason</th><th>since</th><th>last probe</th><th>counters</th><th></th></tr>' +
      svc.backends.map((b) => '<tr><td>' + esc(b.name) + '</td><td>' + esc(b.address) + '</td><td class="' + esc(b.state) + '">' +
        esc(b.state) + '</td><td>' + esc(b.reason) + '</td><td>' + esc(b.since) + '</td><td>' + probe(b.lastProbe) + '</td><td>' + counters(b.counters) + '</td><td>' +
        ['drain', 'disable', 'enable'].map((a) => '<button data-ref="' + esc(b.pool + '/' + b.name) + '" data-action="' + a + '">' + a + '</button>').join('') +
        '</td></tr>').join('') + '</table>').join('');
  } catch (e) {
    document.getElementById('meta').textContent = 'cannot reach vpnlb: ' + e;
  }
}
document.addEventListener('click', (e) => {
  const t = e.target;
  if (t instanceof HTMLButtonElement && t.dataset.ref) act(t.dataset.ref, t.dataset.action);
});
refresh(); setInterval(refresh, 1000);
</script></body></html>
`;
