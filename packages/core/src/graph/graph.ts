import { ConfigError, DTypeError, ShapeError } from '../errors.js';
import { assertDataType, type DataType } from '../tensor/dtype.js';
import { HostTensor } from '../tensor/host-tensor.js';
import { normalizeDim, type Dim } from './dim.js';
import type { OpDefinition } from './op.js';

/** Where a symbolic tensor comes from. @public */
export type TensorSource = 'input' | 'constant' | 'weight' | 'node';

/**
 * The static description of a tensor: data type and (possibly named) shape.
 *
 * @public
 */
export interface TensorInfo {
  /** Element data type. */
  readonly dtype: DataType;
  /** Dimensions; strings are sizes known at run time. */
  readonly shape: readonly Dim[];
}

/**
 * A tensor in a {@link Graph}: the result of an op, a graph input, a constant
 * or a named weight. It holds no values (except constants and weights, whose
 * value is the initializer).
 *
 * @public
 */
export class SymbolicTensor implements TensorInfo {
  /** The graph this tensor belongs to. */
  readonly graph: Graph;
  /** Creation index, unique within the graph (creation order is a topological order). */
  readonly id: number;
  /** Element data type. */
  readonly dtype: DataType;
  /** Dimensions. */
  readonly shape: readonly Dim[];
  /** What produced it. */
  readonly source: TensorSource;
  /** User-facing name (inputs and weights). */
  readonly name: string | undefined;
  /** The node that produced it (source `'node'`). */
  readonly producer: GraphNode | undefined;
  /** Which output of the producer this is. */
  readonly outputIndex: number;
  /** Value of a constant or weight. Replace a weight's value with {@link Graph.setWeightValue}. */
  value: HostTensor | undefined;

  /** @internal */
  constructor(
    graph: Graph,
    id: number,
    info: TensorInfo,
    source: TensorSource,
    extra: { name?: string; producer?: GraphNode; outputIndex?: number; value?: HostTensor },
  ) {
    this.graph = graph;
    this.id = id;
    this.dtype = info.dtype;
    this.shape = Object.freeze(info.shape.map(normalizeDim));
    this.source = source;
    this.name = extra.name;
    this.producer = extra.producer;
    this.outputIndex = extra.outputIndex ?? 0;
    this.value = extra.value;
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** A short description for error messages. */
  describe(): string {
    const label = this.name ?? (this.producer ? `${this.producer.op.name} output` : this.source);
    return `${label} ${this.dtype}[${this.shape.join(', ')}]`;
  }
}

/**
 * One op application in a graph.
 *
 * @public
 */
export class GraphNode {
  /** Creation index within the graph. */
  readonly id: number;
  /** The op. */
  readonly op: OpDefinition<object>;
  /** Inputs (all in the same graph). */
  readonly inputs: readonly SymbolicTensor[];
  /** Op attributes as given to the op. */
  readonly attributes: object;
  /** Outputs, created with the node. */
  outputs: readonly SymbolicTensor[] = [];

  /** @internal */
  constructor(id: number, op: OpDefinition<object>, inputs: readonly SymbolicTensor[], attributes: object) {
    this.id = id;
    this.op = op;
    this.inputs = inputs;
    this.attributes = attributes;
  }
}

/**
 * A graph of symbolic tensors. Build it with {@link Graph.input},
 * {@link Graph.weight}, {@link Graph.constant} and the op functions; compile it
 * to ONNX with `compileModel`, differentiate it with `gradients`, or evaluate it
 * with the reference kernels with `evaluateReference`.
 *
 * @example
 * ```ts
 * const graph = new Graph();
 * const x = graph.input('x', 'float32', ['batch', 3]);
 * const w = graph.weight('w', HostTensor.from('float32', [3, 2], [1, 2, 3, 4, 5, 6]));
 * const y = matmul(x, w);
 * ```
 * @public
 */
export class Graph {
  private nextId = 0;
  private readonly namedTensors = new Map<string, SymbolicTensor>();
  /** Every node, in creation (topological) order. */
  readonly nodes: GraphNode[] = [];

  private allocateId(): number {
    return this.nextId++;
  }

  private register(name: string, tensor: SymbolicTensor): SymbolicTensor {
    if (this.namedTensors.has(name)) {
      throw new ConfigError(
        `Graph: the name '${name}' is already used by ${this.namedTensors.get(name)!.describe()}; names of inputs and weights must be unique`,
      );
    }
    this.namedTensors.set(name, tensor);
    return tensor;
  }

  /**
   * Declares a graph input.
   *
   * @param name - name of the ONNX input
   * @param dtype - element type
   * @param shape - dimensions; strings name sizes given at run time
   * @throws {@link ConfigError} when the name is taken; {@link ShapeError} for a bad dimension
   */
  input(name: string, dtype: DataType, shape: readonly Dim[]): SymbolicTensor {
    assertDataType(dtype);
    for (const dim of shape) {
      if (typeof dim === 'number' && !(Number.isSafeInteger(dim) && dim >= 0)) {
        throw new ShapeError(`Graph.input '${name}': expected non-negative integer or named dimensions; found [${shape.join(', ')}]`);
      }
    }
    return this.register(name, new SymbolicTensor(this, this.allocateId(), { dtype, shape }, 'input', { name }));
  }

  /**
   * Declares a named weight with an initial value. Weights are initializers
   * (frozen) unless a train step makes them trainable.
   *
   * @throws {@link ConfigError} when the name is taken
   */
  weight(name: string, value: HostTensor): SymbolicTensor {
    return this.register(name, new SymbolicTensor(this, this.allocateId(), { dtype: value.dtype, shape: value.shape }, 'weight', { name, value }));
  }

  /** An anonymous constant tensor. */
  constant(value: HostTensor): SymbolicTensor {
    return new SymbolicTensor(this, this.allocateId(), { dtype: value.dtype, shape: value.shape }, 'constant', { value });
  }

  /** A rank-0 constant of `dtype`. */
  scalar(value: number, dtype: DataType = 'float32'): SymbolicTensor {
    return this.constant(HostTensor.from(dtype, [], dtype === 'int64' ? [BigInt(value)] : [value]));
  }

  /** The input or weight with this name. */
  get(name: string): SymbolicTensor | undefined {
    return this.namedTensors.get(name);
  }

  /** All named weights, in creation order. */
  weights(): SymbolicTensor[] {
    return [...this.namedTensors.values()].filter((t) => t.source === 'weight');
  }

  /**
   * Replaces the value of a weight (same dtype and shape).
   *
   * @throws {@link ShapeError} or {@link DTypeError} when the value does not fit
   */
  setWeightValue(weight: SymbolicTensor, value: HostTensor): void {
    if (weight.source !== 'weight') throw new ConfigError(`setWeightValue: expected a weight; found ${weight.describe()}`);
    if (value.dtype !== weight.dtype) throw new DTypeError(`setWeightValue '${weight.name}': expected ${weight.dtype}; found ${value.dtype}`);
    if (value.shape.length !== weight.shape.length || value.shape.some((d, i) => d !== weight.shape[i])) {
      throw new ShapeError(`setWeightValue '${weight.name}': expected shape [${weight.shape.join(', ')}]; found [${value.shape.join(', ')}]`);
    }
    weight.value = value;
  }

  /** @internal Adds a node; used by op definitions. */
  addNode(op: OpDefinition<object>, inputs: readonly SymbolicTensor[], attributes: object, outputs: readonly TensorInfo[]): SymbolicTensor[] {
    const node = new GraphNode(this.allocateId(), op, inputs, attributes);
    node.outputs = outputs.map((info, outputIndex) => new SymbolicTensor(this, this.allocateId(), info, 'node', { producer: node, outputIndex }));
    this.nodes.push(node);
    return [...node.outputs];
  }
}
