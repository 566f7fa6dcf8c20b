import { ConfigError } from '../errors.js';
import { isFloatDataType } from '../tensor/dtype.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import { checkStateDict } from './state-dict.js';

/** Whether a module tensor is learned (`parameter`) or state carried along (`buffer`, such as BatchNorm's running mean). @public */
export type ModuleTensorRole = 'parameter' | 'buffer';

/**
 * One named tensor of a {@link Module}: a learnable parameter or a buffer.
 * Its value is a host tensor; graphs built from the module read it as an
 * initializer or feed it as a trainable weight.
 *
 * @public
 */
export class ModuleTensor {
  /**
   * @param value - the current value
   * @param role - parameter or buffer
   * @param trainable - whether a train step updates it (parameters only; see {@link Module.freeze})
   */
  constructor(
    public value: HostTensor,
    readonly role: ModuleTensorRole,
    public trainable: boolean,
  ) {}
}

const NAME_PATTERN = /^[A-Za-z0-9_]+$/;

/** Options of {@link Module.loadStateDict}. @public */
export interface LoadStateDictOptions {
  /** Names that may be present without belonging to the module (ignored). Default: none. */
  allowUnexpected?: (name: string) => boolean;
  /** Names that may be absent (the module keeps its value). Default: none. */
  allowMissing?: (name: string) => boolean;
}

/**
 * The base of every layer, head and network: it owns named parameters,
 * buffers and child modules, and names them as PyTorch does
 * (`pre_layer.12.1.weight`), so that weights move between the two
 * implementations as safetensors. The graph of a module is built by its
 * `forward` with a {@link BuildContext}, which fixes train or eval mode.
 *
 * @example
 * ```ts
 * class Affine extends Module {
 *   readonly scale = this.registerParameter('scale', HostTensor.full('float32', [4], 1));
 *   forward(context: BuildContext, x: SymbolicTensor) { return mul(x, context.weight(this.scale)); }
 * }
 * ```
 * @public
 */
export abstract class Module {
  private readonly ownTensors = new Map<string, ModuleTensor>();
  private readonly childModules = new Map<string, Module>();

  private checkName(kind: string, name: string): void {
    if (!NAME_PATTERN.test(name))
      throw new ConfigError(`${this.constructor.name}: ${kind} name '${name}' must be letters, digits and '_' (dots separate levels)`);
    if (this.ownTensors.has(name) || this.childModules.has(name)) throw new ConfigError(`${this.constructor.name}: the name '${name}' is already used`);
  }

  /** Registers a learnable parameter (trainable). */
  protected registerParameter(name: string, value: HostTensor): ModuleTensor {
    this.checkName('parameter', name);
    const tensor = new ModuleTensor(value, 'parameter', true);
    this.ownTensors.set(name, tensor);
    return tensor;
  }

  /** Registers a buffer: state saved with the module but never differentiated (running statistics). */
  protected registerBuffer(name: string, value: HostTensor): ModuleTensor {
    this.checkName('buffer', name);
    const tensor = new ModuleTensor(value, 'buffer', false);
    this.ownTensors.set(name, tensor);
    return tensor;
  }

  /** Registers a child module under `name` and returns it. */
  protected registerModule<M extends Module>(name: string, module: M): M {
    this.checkName('module', name);
    this.childModules.set(name, module);
    return module;
  }

  /** The child modules by name, in registration order. */
  children(): ReadonlyMap<string, Module> {
    return this.childModules;
  }

  /**
   * Every tensor with its full dotted name, in PyTorch's `state_dict` order:
   * own parameters, own buffers, then each child in registration order.
   */
  namedTensors(prefix = ''): [string, ModuleTensor][] {
    const own = [...this.ownTensors];
    const out: [string, ModuleTensor][] = [...own.filter(([, t]) => t.role === 'parameter'), ...own.filter(([, t]) => t.role === 'buffer')].map(
      ([name, tensor]) => [`${prefix}${name}`, tensor],
    );
    for (const [name, child] of this.childModules) out.push(...child.namedTensors(`${prefix}${name}.`));
    return out;
  }

  /** The parameters with their full names. */
  namedParameters(): [string, ModuleTensor][] {
    return this.namedTensors().filter(([, tensor]) => tensor.role === 'parameter');
  }

  /** The buffers with their full names. */
  namedBuffers(): [string, ModuleTensor][] {
    return this.namedTensors().filter(([, tensor]) => tensor.role === 'buffer');
  }

  /** Number of parameter elements. */
  parameterCount(): number {
    return this.namedParameters().reduce((total, [, tensor]) => total + tensor.value.size, 0);
  }

  /** Current values of every parameter and buffer by full name (PyTorch's `state_dict()`). */
  stateDict(): Map<string, HostTensor> {
    return new Map(this.namedTensors().map(([name, tensor]) => [name, tensor.value]));
  }

  /**
   * Replaces parameter and buffer values by full name (PyTorch's
   * `load_state_dict(strict=True)`). Floats of another float dtype are
   * converted; shapes must match exactly. Nothing changes when anything does
   * not fit.
   *
   * @throws {@link @diffssl/core!StateDictMismatchError} listing missing, unexpected and mis-shaped names
   */
  loadStateDict(tensors: ReadonlyMap<string, HostTensor> | Readonly<Record<string, HostTensor>>, options: LoadStateDictOptions = {}): void {
    const given = tensors instanceof Map ? (tensors as ReadonlyMap<string, HostTensor>) : new Map(Object.entries(tensors));
    const own = new Map(this.namedTensors());
    const expected = new Map([...own].filter(([name]) => given.has(name) || !options.allowMissing?.(name)).map(([name, tensor]) => [name, tensor.value]));
    const converted = new Map<string, HostTensor>();
    for (const [name, value] of given) {
      const target = own.get(name)?.value;
      converted.set(
        name,
        target && value.dtype !== target.dtype && isFloatDataType(value.dtype) && isFloatDataType(target.dtype) ? value.cast(target.dtype) : value,
      );
    }
    checkStateDict(`${this.constructor.name}.loadStateDict`, expected, converted, options.allowUnexpected);
    for (const [name, value] of converted) {
      const tensor = own.get(name);
      if (tensor) tensor.value = value.contiguous();
    }
  }

  /** Marks every parameter as not trainable (train steps leave it unchanged; gradients still flow through). Returns this module. */
  freeze(): this {
    for (const [, tensor] of this.namedParameters()) tensor.trainable = false;
    return this;
  }
}
