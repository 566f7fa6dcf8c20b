import { ConfigError } from '../errors.js';
import { HostTensor, shapeSize } from '../tensor/host-tensor.js';
import type { RandomGenerator } from '../random/generator.js';

/**
 * Parameter initializers with PyTorch's distributions, drawn from a seeded
 * {@link RandomGenerator} (the same distributions as PyTorch, not its random
 * stream). All return float32 tensors.
 *
 * @public
 */
export const init = {
  /** All zeros. */
  zeros(shape: readonly number[]): HostTensor<'float32'> {
    return HostTensor.zeros('float32', shape);
  },
  /** All ones. */
  ones(shape: readonly number[]): HostTensor<'float32'> {
    return HostTensor.full('float32', shape, 1) as HostTensor<'float32'>;
  },
  /** Uniform in [-bound, bound) (`nn.init.uniform_(-bound, bound)`). */
  uniform(shape: readonly number[], bound: number, generator: RandomGenerator): HostTensor<'float32'> {
    if (!(bound >= 0)) throw new ConfigError(`init.uniform: bound must be non-negative; found ${bound}`);
    const values = new Float32Array(shapeSize(shape));
    for (let i = 0; i < values.length; i++) values[i] = (2 * generator.uniform() - 1) * bound;
    return HostTensor.from('float32', shape, values);
  },
  /** Normal with mean 0 (`nn.init.normal_(std=std)`; `nn.Embedding`'s default with std 1). */
  normal(shape: readonly number[], std: number, generator: RandomGenerator): HostTensor<'float32'> {
    const values = new Float32Array(shapeSize(shape));
    for (let i = 0; i < values.length; i++) values[i] = generator.normal() * std;
    return HostTensor.from('float32', shape, values);
  },
  /**
   * PyTorch's default of `nn.Linear` and `nn.Conv*` weights and biases:
   * `kaiming_uniform_(a=sqrt(5))` for the weight and the bias rule both give
   * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_features (times the kernel
   * size for convolutions, divided by groups).
   */
  fanIn(shape: readonly number[], fanIn: number, generator: RandomGenerator): HostTensor<'float32'> {
    if (!(Number.isInteger(fanIn) && fanIn > 0)) throw new ConfigError(`init.fanIn: fan_in must be a positive integer; found ${fanIn}`);
    return init.uniform(shape, 1 / Math.sqrt(fanIn), generator);
  },
};
