import { ConfigError } from '../../errors.js';
import type { SymbolicTensor } from '../../graph/graph.js';
import type { BuildContext } from '../context.js';
import { Module } from '../module.js';
import { Layer } from './layer.js';

/**
 * `nn.Sequential`: layers numbered 0, 1, 2, ... (their state-dict names are
 * `<index>.<name>`), applied in order.
 *
 * @public
 */
export class Sequential extends Layer {
  private readonly layers: Layer[] = [];

  /** @param layers - the layers in order */
  constructor(layers: readonly Layer[] = []) {
    super();
    for (const layer of layers) this.append(layer);
  }

  /** Adds a layer at the next index and returns this. */
  append(layer: Layer): this {
    this.layers.push(this.registerModule(String(this.layers.length), layer));
    return this;
  }

  /** Number of layers. */
  get length(): number {
    return this.layers.length;
  }

  /** The layer at an index. */
  at(index: number): Layer {
    const layer = this.layers[index];
    if (!layer) throw new ConfigError(`Sequential: no layer ${index} (it has ${this.layers.length})`);
    return layer;
  }

  /** Applies the layers in order. */
  forward(context: BuildContext, x: SymbolicTensor): SymbolicTensor {
    return this.layers.reduce((h, layer) => layer.forward(context, h), x);
  }
}

/**
 * `nn.ModuleDict`: modules under string keys (their state-dict names are
 * `<key>.<name>`).
 *
 * @public
 */
export class ModuleDict<M extends Module = Module> extends Module {
  private readonly entries = new Map<string, M>();

  /** @param entries - key and module pairs, in order */
  constructor(entries: Iterable<readonly [string, M]> = []) {
    super();
    for (const [key, module] of entries) this.set(key, module);
  }

  /** Adds a module under a new key. */
  set(key: string, module: M): void {
    this.entries.set(key, this.registerModule(key, module));
  }

  /**
   * The module under a key.
   *
   * @throws `ConfigError` naming the known keys
   */
  get(key: string): M {
    const module = this.entries.get(key);
    if (!module) throw new ConfigError(`ModuleDict: no module '${key}'; it has ${[...this.entries.keys()].join(', ') || 'none'}`);
    return module;
  }

  /** The keys in order. */
  keys(): string[] {
    return [...this.entries.keys()];
  }
}
