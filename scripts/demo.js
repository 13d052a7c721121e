'use strict';
// `npm run demo`: build when needed, then run the demo (embedded Postgres, the Bitrix24 emulator,
// the app, demo portals and a trickle of CRM changes) in this process, so Ctrl-C reaches it.
const path = require('node:path');
const { buildIfNeeded, root } = require('./build-if-needed');

buildIfNeeded();
require(path.join(root, 'dist', 'src', 'demo', 'main.js'));
