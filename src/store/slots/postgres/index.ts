export { PostgresSlotStore, DEFAULT_POOL_SIZE, type PostgresSlotStoreOptions } from './postgres-slot-store.js';
export { MIGRATIONS, SCHEMA_VERSION, SCHEMA_NAME_RE, migrate } from './migrations.js';
export { classifyPostgresError } from './errors.js';
