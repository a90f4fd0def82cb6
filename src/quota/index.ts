/** src/quota: per-account byte and file quotas (quotas file, usage counters, enforcement for the SFTP frontend). */
export { parseQuotas, parseSize, formatQuotaSize, formatQuotaLine, readQuotas, setQuotaLine, type Quota } from './quotas-file.js';
export { fitsLimit, type Usage, type UsageLedger } from './ledger.js';
export { UsageBook } from './usage.js';
export { PostgresUsageLedger, QUOTA_USAGE_SCHEMA, type PostgresUsageLedgerOptions } from './postgres-ledger.js';
export { countTree, entryUsage, type TreeUsage } from './count.js';
export { QuotaGuard, type QuotaGuardOptions } from './guard.js';
