// The immutable-file RSS/throughput benchmark lives in src/bench/file-rss.ts so tsc builds it with the project.
// Run: npm run build && node dist/bench/file-rss.js [--gib 2] [--chunk-size 1048576] [--no-fsync] [--json]
export { runFileRss, formatFileRss, type FileRssOptions, type FileRssResult } from '../src/bench/file-rss.js';
