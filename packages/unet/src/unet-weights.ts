import { ConfigError, Module, type HostTensor, type ModuleTensor } from '@diffssl/core';

/** One level of the dotted state-dict names (`input_blocks` -> `0` -> `0` -> ...). */
class WeightLevel extends Module {
  /** Registers the parameter at a dotted path, creating the levels on the way. @internal */
  add(path: readonly string[], value: HostTensor): ModuleTensor {
    const [head, ...rest] = path as [string, ...string[]];
    if (rest.length === 0) return this.registerParameter(head, value);
    const child = (this.children().get(head) as WeightLevel | undefined) ?? this.registerModule(head, new WeightLevel());
    return child.add(rest, value);
  }
}

/**
 * A U-Net's weights as a trainable {@link Module} (fine-tuning): one
 * float32 parameter per checkpoint tensor, under its PyTorch `state_dict`
 * name (`input_blocks.1.0.in_layers.2.weight`), so that `stateDict()` gives
 * back a checkpoint the reference reads. Float16 and float64 tensors are
 * converted to float32: a U-Net fine-tunes in float32.
 *
 * A U-Net built with `trainable: { context, weights }` reads every weight it
 * uses through the context, so a training step updates the weights on the
 * path to the deepest block read; weights the graph does not use (blocks
 * after the deepest block read, the output layers) get no gradient and keep
 * their values.
 *
 * @example
 * ```ts
 * const weights = unet.trainableWeights();
 * const context = new BuildContext(graph, [weights, head], { mode: 'train' });
 * const { blocks } = unet.build(graph, { x, timesteps, taps: [8], trainable: { context, weights } });
 * ```
 * @public
 */
export class UNetWeights extends WeightLevel {
  private readonly byName = new Map<string, ModuleTensor>();

  /**
   * @param weights - the checkpoint's tensors by state-dict name (float tensors)
   * @throws `ConfigError` for a tensor that is not a float, or a name that is not dotted letters, digits and `_`
   */
  constructor(weights: ReadonlyMap<string, HostTensor>) {
    super();
    for (const [name, tensor] of weights) {
      if (tensor.dtype !== 'float32' && tensor.dtype !== 'float16' && tensor.dtype !== 'float64')
        throw new ConfigError(`UNetWeights: ${name} must be a float tensor; found ${tensor.dtype}`);
      const value = tensor.dtype === 'float32' ? tensor.contiguous() : tensor.cast('float32');
      this.byName.set(name, this.add(name.split('.'), value));
    }
  }

  /**
   * The parameter holding a weight.
   *
   * @throws `ConfigError` for a name that is not one of the U-Net's weights
   */
  tensor(name: string): ModuleTensor {
    const tensor = this.byName.get(name);
    if (!tensor) throw new ConfigError(`UNetWeights: no weight '${name}'`);
    return tensor;
  }

  /** The weights' names in checkpoint order. */
  names(): string[] {
    return [...this.byName.keys()];
  }
}
