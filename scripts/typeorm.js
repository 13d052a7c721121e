'use strict';
// `npm run migration:*`: the TypeORM CLI over the compiled data source. Without DATABASE_URL the
// embedded Postgres under DATA_DIR is started for the duration of the command.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { buildIfNeeded, root } = require('./build-if-needed');

async function main() {
  buildIfNeeded();
  const [command, ...rest] = process.argv.slice(2);
  const args = [require.resolve('typeorm/cli.js'), command];
  if (command === 'migration:generate') {
    const name = rest.find((arg) => !arg.startsWith('-'));
    const flags = rest.filter((arg) => arg.startsWith('-'));
    if (!name)
      throw new Error('usage: npm run migration:generate -- <PascalName> [--check|--dryrun]');
    args.push(path.join('migrations', name), ...flags);
  } else {
    args.push(...rest);
  }
  args.push('-d', path.join(root, 'dist', 'src', 'database', 'data-source.js'));

  let embedded;
  const env = { ...process.env };
  if (!env.DATABASE_URL) {
    const { startEmbeddedPostgres } = require(
      path.join(root, 'dist', 'src', 'database', 'embedded-postgres.js'),
    );
    const { createPinoLogger } = require(
      path.join(root, 'dist', 'src', 'logging', 'app-logger.js'),
    );
    embedded = await startEmbeddedPostgres(env.DATA_DIR || './.data', createPinoLogger('warn'));
    env.DATABASE_URL = embedded.url;
  }
  const result = spawnSync(process.execPath, args, { cwd: root, env, stdio: 'inherit' });
  if (embedded) await embedded.stop();
  process.exitCode = result.status ?? 1;
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exitCode = 1;
});
