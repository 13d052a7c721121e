'use strict';
// `npm run bench`: runs the benchmarks (test/bench/*.bench.ts) one after another, each in its own
// process; each prints its figures. `npm run bench -- webhook` runs the matching ones only.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const filters = process.argv.slice(2);
const benches = fs
  .readdirSync(path.join(root, 'test', 'bench'))
  .filter((name) => name.endsWith('.bench.ts'))
  .filter((name) => filters.length === 0 || filters.some((filter) => name.includes(filter)))
  .sort();
if (benches.length === 0) throw new Error(`no benchmark matches ${filters.join(', ')}`);

for (const bench of benches) {
  process.stdout.write(`\n=== ${bench} ===\n`);
  execFileSync(
    process.execPath,
    [
      '--require',
      path.join(__dirname, 'register-typescript.js'),
      path.join(root, 'test', 'bench', bench),
    ],
    { cwd: root, stdio: 'inherit' },
  );
}
