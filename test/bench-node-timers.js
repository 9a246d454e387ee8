// Node.js's answer to benchmark-loop's first case: 1,000,000 waits of
// 1000 ms started at once, each a setTimeout wrapped in a Promise, all
// awaited with Promise.all. Prints the time from the first setTimeout to
// the last wait's end, and peak RSS.
//
//   node test/bench-node-timers.js [COUNT] [MS]   (default 1000000 1000)
'use strict';

const count = Number(process.argv[2] || 1000000);
const ms = Number(process.argv[3] || 1000);
const rssBefore = process.memoryUsage().rss;

const wait = (i) => new Promise((resolve) => setTimeout(resolve, ms, i));

const t0 = process.hrtime.bigint();
const waits = new Array(count);
for (let i = 0; i < count; i++) waits[i] = wait(i);
const t1 = process.hrtime.bigint();

Promise.all(waits).then((done) => {
  const t2 = process.hrtime.bigint();
  if (done.length !== count) throw new Error('not every wait ended');
  const peak = process.resourceUsage().maxRSS; // KiB
  const toMs = (ns) => Number(ns) / 1e6;
  console.log(`node ${process.version}: ${count} waits of ${ms} ms`);
  console.log(`  setup ${toMs(t1 - t0).toFixed(1)} ms, done ` +
              `${toMs(t2 - t0).toFixed(1)} ms (over ` +
              `${(toMs(t2 - t0) - ms).toFixed(1)} ms)`);
  console.log(`  peak RSS ${(peak / 1024).toFixed(1)} MiB, ` +
              `${((peak * 1024 - rssBefore) / count).toFixed(1)} B/wait`);
});
