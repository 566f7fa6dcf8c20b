import { adaptiveAvgPool2d, ConfigError, Layer, Linear, Module, relu, reshape, ShapeError, type BuildContext, type RandomGenerator, type SymbolicTensor } from '@diffssl/core';
import { generatorFrom } from './seed.js';

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
  if (!parts.every((part) => /^\d+$/.test(part) && Number(part) > 0)) throw new ConfigError(`head_arc: expected positive integers joined by '_' (for example '2048_1024') or ''; found '${headArc}'`);
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
    for (const [name, value] of [['channels', channels], ['numClasses', numClasses], ['prePoolSize', prePoolSize]] as const) {
      if (!Number.isSafeInteger(value) || value <= 0) throw new ConfigError(`LinearHead: ${name} must be a positive integer; found ${value}`);
    }
    this.prePoolSize = prePoolSize;
    const generator = generatorFrom(options.seed);
    const widths = [channels * prePoolSize * prePoolSize, ...parseHeadArc(options.headArc ?? ''), numClasses];
    const list = this.registerModule('fcs', new LinearList());
    for (let i = 0; i + 1 < widths.length; i++) this.fcs.push(list.add(new Linear(widths[i]!, widths[i + 1]!, generator)));
  }

  /** Logits [B, numClasses] of a feature map [B, C, H, W]. */
  forward(context: BuildContext, x: SymbolicTensor): SymbolicTensor {
    const expected = this.fcs[0]!.inFeatures / (this.prePoolSize * this.prePoolSize);
    if (x.rank !== 4 || x.shape[1] !== expected) throw new ShapeError(`LinearHead: expected a feature map [batch, ${expected}, H, W]; found [${x.shape.join(', ')}]`);
    let h = reshape(adaptiveAvgPool2d(x, this.prePoolSize), [x.shape[0]!, -1]);
    this.fcs.forEach((fc, i) => {
      h = fc.forward(context, h);
      if (i < this.fcs.length - 1) h = relu(h);
    });
    return h;
  }
}

/** `nn.ModuleList` of Linear layers (names `0`, `1`, ...). */
class LinearList extends Module {
  private count = 0;
  add(linear: Linear): Linear {
    return this.registerModule(String(this.count++), linear);
  }
}
