'use strict';
// Compiles to dist/ when dist/ is missing or older than any source file.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

function buildIfNeeded() {
  const marker = path.join(root, 'dist', 'src', 'main.js');
  const sources = Math.max(
    newestMtime(path.join(root, 'src')),
    newestMtime(path.join(root, 'migrations')),
    fs.statSync(path.join(root, 'package-lock.json')).mtimeMs,
  );
  if (fs.existsSync(marker) && fs.statSync(marker).mtimeMs >= sources) return;
  process.stderr.write('Building dist/ ...\n');
  execFileSync(process.execPath, [require.resolve('@nestjs/cli/bin/nest.js'), 'build'], {
    cwd: root,
    stdio: 'inherit',
  });
  fs.utimesSync(marker, new Date(), new Date());
}

module.exports = { buildIfNeeded, root };

if (require.main === module) buildIfNeeded();
