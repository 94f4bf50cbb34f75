// V8's compile cost of a Wasm module, as Envoy pays it (bench/README.md, "Module size and cold
// start"). Run with V8's optimizing tier only and eager compilation, as Envoy's V8 compiles:
//
//   node --no-liftoff --no-wasm-lazy-compilation bench/scripts/compile.js M.wasm...
//
// Prints, per module, its size and the CPU time (user + system, all threads of this process,
// so V8's background compile threads count) and wall time of `new WebAssembly.Module(bytes)`.
// One compilation per process: run it several times and take the median.
'use strict';
const fs = require('fs');

for (const path of process.argv.slice(2)) {
  const bytes = fs.readFileSync(path);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  new WebAssembly.Module(bytes);
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  console.log(`${path}\t${bytes.length} bytes\tcpu ${cpuMs.toFixed(1)} ms\twall ${wall.toFixed(1)} ms`);
}
