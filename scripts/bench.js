'use strict';
// `npm run bench`: compiles the benchmarks (test/bench/*.bench.ts) with the sources and runs them
// one after another; each prints its figures. `npm run bench -- webhook` runs the matching ones.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const outDir = path.join(root, 'dist-bench');
fs.rmSync(outDir, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.bench.json'],
  {
    cwd: root,
    stdio: 'inherit',
  },
);

const filters = process.argv.slice(2);
const benches = fs
  .readdirSync(path.join(root, 'test', 'bench'))
  .filter((name) => name.endsWith('.bench.ts'))
  .filter((name) => filters.length === 0 || filters.some((filter) => name.includes(filter)))
  .sort();
if (benches.length === 0) throw new Error(`no benchmark matches ${filters.join(', ')}`);

for (const bench of benches) {
  const compiled = path.join(outDir, 'test', 'bench', bench.replace(/\.ts$/, '.js'));
  process.stdout.write(`\n=== ${bench} ===\n`);
  execFileSync(process.execPath, ['--expose-gc', compiled], { cwd: root, stdio: 'inherit' });
}
