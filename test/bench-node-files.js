// Node.js's side of test/benchmark-file.c: COUNT files written at once with
// fs.promises, each a file of its own in DIR (f0, f1...), KIB KiB of one
// shared buffer; with FSYNC 1, each opened, written, fsync'ed and closed
// (FileHandle.sync()), else fs.promises.writeFile(). libuv runs every
// request on its thread pool (UV_THREADPOOL_SIZE, 4 by default).
//
//   node test/bench-node-files.js DIR COUNT KIB FSYNC
//
// Prints one line, from the first write asked for to the last one done:
//   result WALL_MS CPU_MS USER_MS SYS_MS OK FAILED FIRST_ERROR|-
'use strict';

const fsp = require('fs/promises');
const path = require('path');

async function writeSynced(name, buf) {
  const fh = await fsp.open(name, 'w');
  try {
    await fh.writeFile(buf);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function main() {
  const [dir, countText, kibText, fsyncText] = process.argv.slice(2);
  const count = Number(countText), kib = Number(kibText);
  const buf = Buffer.alloc(kib * 1024, 'abcdefghijklmnopqrstuvwxyz');
  const write = fsyncText === '1' ? writeSynced : fsp.writeFile;
  let ok = 0, failed = 0, error = null;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const all = [];
  for (let i = 0; i < count; i++)
    all.push(write(path.join(dir, 'f' + i), buf).then(() => { ok++; },
      (e) => { failed++; error ??= String(e); }));
  await Promise.all(all);
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  const words = error === null ? '-' : error.replace(/\s+/g, ' ');
  console.log(`result ${wall.toFixed(3)} ${((cpu.user + cpu.system) / 1e3).toFixed(3)} ` +
    `${(cpu.user / 1e3).toFixed(3)} ${(cpu.system / 1e3).toFixed(3)} ${ok} ${failed} ${words}`);
  process.exitCode = failed === 0 ? 0 : 1;
}

main();
