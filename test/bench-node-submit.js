// Node.js's side of test/benchmark-submit.c: work submitted one at a time
// to a group of promises that ends once it has been closed and every
// promise in it has settled (Promise.all cannot take a promise made after
// it was called, so the group counts; the first rejection is its error).
//
//   node test/bench-node-submit.js spawn COUNT MS
//       COUNT promises, made one by one, each a setTimeout of MS ms.
//   node test/bench-node-submit.js chain COUNT
//       a chain of COUNT async functions: each awaits setImmediate (a
//       turn of the loop: setTimeout(0) would be a 1 ms timer) and then
//       adds the next to the group.
//
// Prints one line for benchmark-submit, from the first promise made to the
// group's end:
//   result WALL_MS CPU_MS USER_MS SYS_MS OK FAILED FIRST_ERROR|-
// and, when IOB_BENCH_SETUP_FD names a file descriptor, "setup MS" there:
// the time the loop that makes the promises took.
'use strict';

const fs = require('fs');

class Group {
  constructor() {
    this.pending = 0;
    this.ok = 0;
    this.failed = 0;
    this.error = null;
    this.closed = false;
    this.done = new Promise((resolve) => { this.resolve = resolve; });
  }
  spawn(promise) {
    this.pending++;
    promise.then(() => { this.ok++; this.settled(); },
      (e) => { this.failed++; this.error ??= String(e); this.settled(); });
  }
  settled() {
    if (--this.pending === 0 && this.closed) this.resolve();
  }
  close() {
    this.closed = true;
    if (this.pending === 0) this.resolve();
    return this.done;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const turn = () => new Promise((resolve) => setImmediate(resolve));

async function link(group, i, n) {
  await turn();
  if (i + 1 < n) group.spawn(link(group, i + 1, n));
}

const [shape, countArg, msArg] = process.argv.slice(2);
const count = Number(countArg);
if (!((shape === 'spawn' && msArg !== undefined) || shape === 'chain') ||
    !(count >= 0)) {
  console.error('usage: node bench-node-submit.js spawn COUNT MS | chain COUNT');
  process.exit(2);
}
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const group = new Group();
if (shape === 'spawn') {
  const ms = Number(msArg);
  for (let i = 0; i < count; i++) group.spawn(sleep(ms));
} else if (count > 0) {
  group.spawn(link(group, 0, count));
}
const t1 = process.hrtime.bigint();
group.close().then(() => {
  const t2 = process.hrtime.bigint();
  const cpu = process.cpuUsage(cpu0);
  const toMs = (ns) => Number(ns) / 1e6;
  const user = cpu.user / 1e3;
  const sys = cpu.system / 1e3;
  const error = group.error === null ? '-' : group.error.replace(/\s+/g, ' ');
  console.log(`result ${toMs(t2 - t0).toFixed(1)} ${(user + sys).toFixed(1)} ` +
              `${user.toFixed(1)} ${sys.toFixed(1)} ${group.ok} ` +
              `${count - group.ok} ${error}`);
  const fd = process.env.IOB_BENCH_SETUP_FD;
  if (fd !== undefined)
    fs.writeSync(Number(fd), `setup ${toMs(t1 - t0).toFixed(1)}\n`);
});
