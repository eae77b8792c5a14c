/**
 * Prometheus metrics. Each component declares its metrics through this registry (get-or-create
 * by name, so two components that need the same metric share it); `docs/metrics.md` lists every
 * name and a unit test keeps the two in sync. Names follow `vpnlb_<area>_<what>[_total]`.
 */
import { Counter, Gauge, Histogram, Registry, type CounterConfiguration, type GaugeConfiguration, type HistogramConfiguration } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();

  counter<L extends string>(config: Omit<CounterConfiguration<L>, 'registers'>): Counter<L> {
    return this.#getOrCreate(config.name, () => new Counter<L>({ ...config, registers: [this.registry] })) as Counter<L>;
  }

  gauge<L extends string>(config: Omit<GaugeConfiguration<L>, 'registers'>): Gauge<L> {
    return this.#getOrCreate(config.name, () => new Gauge<L>({ ...config, registers: [this.registry] })) as Gauge<L>;
  }

  histogram<L extends string>(config: Omit<HistogramConfiguration<L>, 'registers'>): Histogram<L> {
    return this.#getOrCreate(config.name, () => new Histogram<L>({ ...config, registers: [this.registry] })) as Histogram<L>;
  }

  /** The exposition text for `GET /metrics`. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  #getOrCreate(name: string, create: () => unknown): unknown {
    return this.registry.getSingleMetric(name) ?? create();
  }
}
