import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from './data-source-options';

/**
 * The TypeORM CLI's data source (`npm run migration:*`). scripts/typeorm.js sets DATABASE_URL,
 * starting the embedded Postgres first when none is configured.
 */
const url = process.env.DATABASE_URL;
if (!url) throw new Error('DATABASE_URL is not set (run the CLI through npm run migration:*)');

export default new DataSource(dataSourceOptions(url, { poolSize: 2 }));
