/** src/quota: per-account byte and file quotas (quotas file, usage counters, enforcement for the SFTP frontend). */
export { parseQuotas, parseSize, formatQuotaSize, formatQuotaLine, readQuotas, setQuotaLine, type Quota } from './quotas-file.js';
export { UsageBook, type Usage } from './usage.js';
export { countTree, type TreeUsage } from './count.js';
export { QuotaGuard, type QuotaGuardOptions } from './guard.js';
