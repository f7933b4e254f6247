"""The live status page served at ``GET /`` of ``status_listen``: one self-contained
HTML document (no external assets) whose script polls ``/status.json`` every two
seconds; rates come from the difference of two polls.  Narrow screens get one
column."""

from __future__ import annotations

__all__ = ["PAGE"]

PAGE = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mailgate status</title>
<style>
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #f6f7f9; --card: #fff; --dim: #68707a;
        --ok: #1a7f37; --bad: #cf222e; --line: #d8dde3; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6e8eb; --bg: #111418; --card: #1b2027; --dim: #9aa3ad; --line: #2d343d; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif;
       color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: baseline;
         padding: .8rem 1rem; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.2rem; margin: 0; }
h2 { font-size: .8rem; margin: 0 0 .5rem; color: var(--dim); text-transform: uppercase;
     letter-spacing: .05em; }
main { display: grid; gap: .8rem; padding: .8rem;
       grid-template-columns: repeat(auto-fit, minmax(290px, 1fr)); }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
          padding: .8rem; overflow-x: auto; }
.big { font-size: 2.2rem; font-weight: 600; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: right; padding: .2rem .4rem; border-bottom: 1px solid var(--line); }
th:first-child, td:first-child { text-align: left; }
th { font-weight: 500; color: var(--dim); }
.state { padding: .1rem .5rem; border-radius: 99px; color: #fff; background: var(--ok); }
.state.draining, .state.down { background: var(--bad); }
.dim { color: var(--dim); }
</style>
</head>
<body>
<header>
  <h1>mailgate</h1>
  <span id="state" class="state">&hellip;</span>
  <span class="dim" id="updated"></span>
</header>
<main>
  <section>
    <h2>Active sessions</h2>
    <div class="big" id="active-total">&ndash;</div>
    <table id="active"><thead><tr><th>protocol</th><th>logging in</th><th>relaying</th>
      <th>total</th></tr></thead><tbody></tbody></table>
    <p class="dim" id="inflight"></p>
  </section>
  <section>
    <h2>Rates (per second)</h2>
    <table id="rates"><tbody></tbody></table>
  </section>
  <section>
    <h2>Auth outcomes</h2>
    <table id="auth"><thead><tr><th>protocol</th><th>ok</th><th>failed</th><th>error</th>
      <th>wait</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>TLS handshakes</h2>
    <div class="big" id="resumption">&ndash;</div>
    <div class="dim">resumed of all handshakes</div>
    <table id="tls"><thead><tr><th>version</th><th>full</th><th>resumed</th></tr></thead>
      <tbody></tbody></table>
  </section>
  <section>
    <h2>Backends</h2>
    <table id="backends"><thead><tr><th>backend</th><th>open</th><th>sessions</th>
      <th>failed logins</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Workers</h2>
    <table id="workers"><thead><tr><th>pid</th><th>memory</th></tr></thead><tbody></tbody>
    </table>
    <p class="dim" id="finished"></p>
  </section>
</main>
<script>
"use strict";
let previous = null;
const $ = (id) => document.getElementById(id);
function rows(id, data) {
  const body = $(id).tBodies[0];
  body.replaceChildren(...data.map((cells) => {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      td.textContent = cell;
      tr.append(td);
    }
    return tr;
  }));
}
const sum = (object) => Object.values(object).reduce((a, b) => a + b, 0);
const mib = (bytes) => (bytes / 1048576).toFixed(1) + " MiB";
function totals(s) {
  let finished = 0, proxied = 0, failed = 0;
  for (const outcomes of Object.values(s.sessions)) {
    finished += sum(outcomes);
    proxied += outcomes.proxied;
    failed += outcomes.auth_failed;
  }
  return { finished, proxied, failed, bytes: sum(s.bytes), at: Date.now() / 1000 };
}
function show(facts) {
  const s = facts.stats;
  const state = $("state");
  state.textContent = facts.draining ? "draining" : "accepting";
  state.className = "state" + (facts.draining ? " draining" : "");
  $("updated").textContent = "updated " + new Date().toLocaleTimeString() +
    " \\u00b7 mailgate " + facts.version;
  $("active-total").textContent = sum(s.sessions_active);
  rows("active", Object.keys(s.sessions_active).map((p) => [p,
    s.sessions_active[p] - s.sessions_relaying[p], s.sessions_relaying[p], s.sessions_active[p]]));
  $("inflight").textContent = s.auth_http_in_flight + " auth requests waiting, " +
    s.backend_connections + " backend connections open";
  const now = totals(s);
  if (previous) {
    const dt = Math.max(now.at - previous.at, 0.001);
    const rate = (key) => ((now[key] - previous[key]) / dt).toFixed(2);
    rows("rates", [["sessions finished", rate("finished")], ["sessions proxied", rate("proxied")],
      ["logins refused", rate("failed")], ["relayed bytes", rate("bytes")]]);
  }
  previous = now;
  rows("auth", Object.entries(s.auth).map(([p, r]) => [p, r.ok, r.failed, r.error, r.wait]));
  let full = 0, resumed = 0;
  rows("tls", Object.entries(s.tls_handshakes).map(([v, k]) => {
    full += k.full; resumed += k.resumed;
    return [v, k.full, k.resumed];
  }));
  $("resumption").textContent = full + resumed ?
    (100 * resumed / (full + resumed)).toFixed(1) + " %" : "\\u2013";
  rows("backends", Object.entries(s.backends).map(([b, e]) => [b, e.active, e.sessions, e.errors]));
  rows("workers", facts.workers.map((w) => [w.pid, mib(w.rss_bytes)]));
  $("finished").textContent = now.finished + " sessions finished since start";
}
async function poll() {
  try {
    const answer = await fetch("status.json", { cache: "no-store" });
    show(await answer.json());
  } catch (error) {
    const state = $("state");
    state.textContent = "unreachable";
    state.className = "state down";
  }
  setTimeout(poll, 2000);
}
poll();
</script>
</body>
</html>
"""
