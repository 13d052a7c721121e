'use strict';
// `npm start`: build when needed, then run the server in this process, so SIGTERM sent to
// `npm start` (npm passes it on) reaches the server's own shutdown handler.
const path = require('node:path');
const { buildIfNeeded, root } = require('./build-if-needed');

buildIfNeeded();
require(path.join(root, 'dist', 'src', 'main.js'));
