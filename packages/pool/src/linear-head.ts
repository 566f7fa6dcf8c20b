import {
  adaptiveAvgPool2d,
  ConfigError,
  Layer,
  Linear,
  ModuleDict,
  positiveSize,
  RandomGenerator,
  relu,
  reshape,
  ShapeError,
  type BuildContext,
  type SymbolicTensor,
} from '@diffssl/core';

/** Options of {@link LinearHead} (the reference's argument names in camelCase). @public */
export interface LinearHeadOptions {
  /** Channels of the feature map the head reads. */
  channels: number;
  /** Number of classes. */
  numClasses: number;
  /** Side of the adaptive average pooling before flattening (`pre_pool_size`; FM-10k uses 2). */
  prePoolSize: number;
  /** Hidden layers, as the reference's `head_arc`: `''` (linear, default), `'1024'` or `'2048_1024'` (ReLU between layers). */
  headArc?: string;
  /** Seed of the initialization (default 0), or a generator. */
  seed?: number | RandomGenerator;
}

/**
 * Parses the reference's `head_arc`: `''` -> no hidden layer, `'2048_1024'`
 * -> [2048, 1024].
 *
 * @throws `ConfigError` for anything but positive integers joined by `_`
 * @public
 */
export function parseHeadArc(headArc: string): number[] {
  if (headArc.trim() === '') return [];
  const parts = headArc.split('_');
  if (!parts.every((part) => /^\d+$/.test(part) && Number(part) > 0))
    throw new ConfigError(`head_arc: expected positive integers joined by '_' (for example '2048_1024') or ''; found '${headArc}'`);
  return parts.map(Number);
}

/**
 * The paper's GD(L) head (the reference's `Head`): adaptive average pooling to
 * `prePoolSize` x `prePoolSize`, flatten channel-major (as `torch.flatten` on
 * NCHW), then `fcs.0`, `fcs.1`, ... Linear layers with ReLU between them.
 *
 * @example
 * ```ts
 * const head = new LinearHead({ channels: 64, numClasses: 10, prePoolSize: 2, seed: 0 });
 * const logits = head.forward(context, features); // [B, 10]
 * ```
 * @public
 */
export class LinearHead extends Layer {
  /** The Linear layers `fcs.<i>`. */
  readonly fcs: Linear[] = [];
  private readonly prePoolSize: number;

  /** @throws `ConfigError` for bad sizes or head_arc */
  constructor(options: LinearHeadOptions) {
    super();
    const { channels, numClasses, prePoolSize } = options;
    for (const [name, value] of [
      ['channels', channels],
      ['numClasses', numClasses],
      ['prePoolSize', prePoolSize],
    ] as const)
      positiveSize('LinearHead', name, value);
    this.prePoolSize = prePoolSize;
    const generator = RandomGenerator.from(options.seed);
    const widths = [channels * prePoolSize * prePoolSize, ...parseHeadArc(options.headArc ?? ''), numClasses];
    const list = this.registerModule('fcs', new ModuleDict<Linear>());
    for (let i = 0; i + 1 < widths.length; i++) {
      const fc = new Linear(widths[i]!, widths[i + 1]!, generator);
      list.set(String(i), fc);
      this.fcs.push(fc);
    }
  }

  /** Logits [B, numClasses] of a feature map [B, C, H, W]. */
  forward(context: BuildContext, x: SymbolicTensor): SymbolicTensor {
    const expected = this.fcs[0]!.inFeatures / (this.prePoolSize * this.prePoolSize);
    if (x.rank !== 4 || x.shape[1] !== expected)
      throw new ShapeError(`LinearHead: expected a feature map [batch, ${expected}, H, W]; found [${x.shape.join(', ')}]`);
    let h = reshape(adaptiveAvgPool2d(x, this.prePoolSize), [x.shape[0]!, -1]);
    this.fcs.forEach((fc, i) => {
      h = fc.forward(context, h);
      if (i < this.fcs.length - 1) h = relu(h);
    });
    return h;
  }
}
