// Node.js's side of test/benchmark-http.c: COUNT GET requests to URL, all
// at once, awaited with Promise.all, with fetch() (undici, Node's global
// dispatcher: keep-alive, no cap on connections) or the http module (an
// agent with keepAlive and maxSockets Infinity). Every answer must be 200
// with the body "done MS\n" (MS from the URL's /wait/MS).
//
//   node test/bench-node-http.js fetch|http URL [COUNT]   (default 10000)
//
// Prints one line for benchmark-http, from the first request to the last
// answer read:
//   result WALL_MS CPU_MS USER_MS SYS_MS OK FAILED FIRST_ERROR|-
// Open files: Node cannot raise its own limit; benchmark-http raises it
// before it starts node (or run `ulimit -n $(ulimit -Hn)` first).
'use strict';

const http = require('http');

const [mode, url, countArg] = process.argv.slice(2);
const count = Number(countArg || 10000);
if (!['fetch', 'http'].includes(mode) || !url || !(count > 0)) {
  console.error('usage: node bench-node-http.js fetch|http URL [COUNT]');
  process.exit(2);
}
const ms = (url.match(/\/wait\/(\d+)/) || [])[1];
const expected = `done ${ms}\n`;

let ok = 0;
let failed = 0;
let firstError = null;
const fail = (what) => {
  failed++;
  if (firstError === null) firstError = String(what).replace(/\s+/g, ' ');
};
const check = (status, body) => {
  if (status === 200 && body === expected) ok++;
  else fail(`HTTP ${status}, body ${JSON.stringify(body)}`);
};

async function withFetch() {
  const res = await fetch(url);
  check(res.status, await res.text());
}

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
function withHttp() {
  return new Promise((resolve) => {
    const req = http.get(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => { check(res.statusCode, body); resolve(); });
      res.on('error', (e) => { fail(e.code || e.message); resolve(); });
    });
    req.on('error', (e) => { fail(e.code || e.message); resolve(); });
  });
}

// Requests that never settle (a connection dropped without an error) let
// the loop run dry: say so rather than exit without a result.
let done = false;
process.on('beforeExit', () => {
  if (done) return;
  done = true;
  fail(`${count - ok - failed} requests never settled`);
  console.log(`result 0 0 0 0 ${ok} ${count - ok} ${firstError}`);
});

const one = mode === 'fetch' ? withFetch : withHttp;
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const requests = new Array(count);
for (let i = 0; i < count; i++) {
  requests[i] = one().catch((e) => {
    fail((e.cause && (e.cause.code || e.cause.message)) || e.message);
  });
}
Promise.all(requests).then(() => {
  done = true;
  const t1 = process.hrtime.bigint();
  const cpu = process.cpuUsage(cpu0); // microseconds
  const user = cpu.user / 1e3;
  const sys = cpu.system / 1e3;
  console.log(`result ${(Number(t1 - t0) / 1e6).toFixed(3)} ` +
              `${(user + sys).toFixed(3)} ${user.toFixed(3)} ` +
              `${sys.toFixed(3)} ${ok} ${failed} ${firstError || '-'}`);
  agent.destroy();
  process.exit(0); // fetch's idle keep-alive sockets would hold the loop
});
