'use strict';
// Lets Node require the TypeScript sources directly: each .ts file is compiled with swc, with the
// same options as the Jest transform (swc-options.js). Used by the benchmarks and by tests that run
// the server as a child process, so neither needs a build.
const fs = require('node:fs');
const { transformSync } = require('@swc/core');
const swcOptions = require('./swc-options');

require.extensions['.ts'] = function compileTypeScript(module, filename) {
  const { code } = transformSync(fs.readFileSync(filename, 'utf8'), { ...swcOptions, filename });
  module._compile(code, filename);
};
