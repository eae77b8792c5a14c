/**
 * Prometheus metrics. Each component declares its metrics through this registry (get-or-create
 * by name, so two components that need the same metric share it); `docs/metrics.md` lists every
 * name and a unit test keeps the two in sync. Names follow `vpnlb_<area>_<what>[_total]`.
 */
import {
  AggregatorRegistry,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type CounterConfiguration,
  type GaugeConfiguration,
  type HistogramConfiguration,
  type MetricObjectWithValues,
  type MetricValue,
} from 'prom-client';

/** Other processes' metrics (worker processes), as prom-client's JSON, one array per process. */
export type MetricsSource = () => Promise<MetricObjectWithValues<MetricValue<string>>[][]>;

export class Metrics {
  readonly registry = new Registry();
  readonly #sources: MetricsSource[] = [];

  /** Adds other processes' metrics to `text()` (summed per name and label set with this registry's). */
  addSource(source: MetricsSource): void {
    this.#sources.push(source);
  }

  counter<L extends string>(config: Omit<CounterConfiguration<L>, 'registers'>): Counter<L> {
    return this.#getOrCreate(
      config.name,
      () => new Counter<L>({ ...config, registers: [this.registry] }),
    ) as Counter<L>;
  }

  gauge<L extends string>(config: Omit<GaugeConfiguration<L>, 'registers'>): Gauge<L> {
    return this.#getOrCreate(
      config.name,
      () => new Gauge<L>({ ...config, registers: [this.registry] }),
    ) as Gauge<L>;
  }

  histogram<L extends string>(config: Omit<HistogramConfiguration<L>, 'registers'>): Histogram<L> {
    return this.#getOrCreate(
      config.name,
      () => new Histogram<L>({ ...config, registers: [this.registry] }),
    ) as Histogram<L>;
  }

  /** The exposition text for `GET /metrics`. */
  async text(): Promise<string> {
    if (this.#sources.length === 0) return this.registry.metrics();
    const all = [
      await this.registry.getMetricsAsJSON(),
      ...(await Promise.all(this.#sources.map((s) => s()))).flat(),
    ];
    return AggregatorRegistry.aggregate(
      all as Parameters<typeof AggregatorRegistry.aggregate>[0],
    ).metrics();
  }

  #getOrCreate(name: string, create: () => unknown): unknown {
    return this.registry.getSingleMetric(name) ?? create();
  }
}
