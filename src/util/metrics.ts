/**
 * Just enough of the Prometheus text exposition format (version 0.0.4) for
 * /metrics: counters, gauges and fixed-bucket histograms. Memory is fixed at
 * construction (one number per bucket per label value), whatever the traffic.
 */

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Seconds; from half a millisecond (a cached stat) to ten seconds (a stuck disk). */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(readonly buckets: readonly number[] = LATENCY_BUCKETS) {
    this.counts = new Array<number>(buckets.length).fill(0);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    // Cumulative buckets are computed when rendering; here each value lands in its first bucket only.
    const i = this.buckets.findIndex((le) => value <= le);
    if (i >= 0) this.counts[i]!++;
  }

  /** Exposition lines for this histogram, with `labels` (already formatted, e.g. `op="get"`). */
  render(name: string, labels: string): string[] {
    const sep = labels === '' ? '' : ',';
    const lines: string[] = [];
    let cumulative = 0;
    this.buckets.forEach((le, i) => {
      cumulative += this.counts[i]!;
      lines.push(`${name}_bucket{${labels}${sep}le="${le}"} ${cumulative}`);
    });
    lines.push(`${name}_bucket{${labels}${sep}le="+Inf"} ${this.count}`);
    const braces = labels === '' ? '' : `{${labels}}`;
    lines.push(`${name}_sum${braces} ${this.sum}`, `${name}_count${braces} ${this.count}`);
    return lines;
  }
}

/** Builds one exposition document; each metric family gets its HELP and TYPE once. */
export class MetricsText {
  private readonly lines: string[] = [];

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): this {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, value: number, labels: Record<string, string> = {}): this {
    const l = formatLabels(labels);
    this.lines.push(`${name}${l === '' ? '' : `{${l}}`} ${Number.isFinite(value) ? value : 0}`);
    return this;
  }

  histogram(name: string, histogram: Histogram, labels: Record<string, string> = {}): this {
    this.lines.push(...histogram.render(name, formatLabels(labels)));
    return this;
  }

  toString(): string {
    return this.lines.join('\n') + '\n';
  }
}

function formatLabels(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
}
