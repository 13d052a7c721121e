'use strict';
// How every TypeScript source is compiled outside `nest build`: by the Jest transform and by the
// require hook for benchmarks and child-process tests, so both run the same code.
module.exports = {
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    target: 'es2023',
  },
  module: { type: 'commonjs' },
  sourceMaps: 'inline',
};
