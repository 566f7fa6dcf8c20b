import { ConfigError, DTypeError } from '../errors.js';
import type { DataType } from '../tensor/dtype.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import type { OnnxAttribute } from './attributes.js';
import type { Dim } from './dim.js';
import { type Graph, SymbolicTensor, type GraphNode, type TensorInfo } from './graph.js';

/**
 * What an op's ONNX lowering can do: emit ONNX nodes, add constant
 * initializers, and compute runtime shape tensors for symbolic dimensions.
 *
 * @public
 */
export interface LoweringContext {
  /** Emits one ONNX node and returns the names of its outputs. */
  emit(opType: string, inputs: readonly string[], attributes?: Record<string, OnnxAttribute>, outputCount?: number): string[];
  /** Adds a constant initializer and returns its name. */
  constant(value: HostTensor): string;
  /** A 1-D int64 constant. */
  int64s(values: readonly number[]): string;
  /** A 1-D int64 tensor holding the sizes of `shape` at run time (a constant when static). */
  shapeTensor(shape: readonly Dim[]): string;
  /** The symbolic node being lowered. */
  readonly node: GraphNode;
}

/**
 * What a reference kernel can ask of the interpreter.
 *
 * @public
 */
export interface ReferenceContext {
  /** The run-time sizes of a symbolic shape. */
  resolve(shape: readonly Dim[]): number[];
}

/**
 * What an op's gradient function receives. It returns one gradient per input
 * (`undefined` for inputs that are not differentiable), built with op
 * functions, so the backward pass is an ordinary graph.
 *
 * @public
 */
export interface GradientContext<A> {
  /**
   * The forward inputs, each replaced by its recomputed copy where its
   * producer defines {@link OpDefinition.rematerialize}: the same values,
   * dtype and shape, but not always the same tensor object, so a gradient
   * function must not depend on a tensor's identity, name or source.
   */
  readonly inputs: readonly SymbolicTensor[];
  /** The forward outputs, recomputed copies where the op defines {@link OpDefinition.rematerialize} (see `inputs`). */
  readonly outputs: readonly SymbolicTensor[];
  /** Gradient of the loss with respect to each output (undefined where none flows). */
  readonly outputGradients: readonly (SymbolicTensor | undefined)[];
  /** The op attributes. */
  readonly attributes: A;
  /** Which inputs need a gradient (others may be returned as undefined). */
  readonly needsGradient: readonly boolean[];
}

/**
 * One op: its shape rule, its ONNX lowering, its reference kernel and its
 * gradient, kept together.
 *
 * @public
 */
export interface OpDefinition<A extends object> {
  /** The op name used in errors (`'conv2d'`). */
  readonly name: string;
  /** Shape and dtype rule: validates inputs (throwing errors that name the op and the argument) and returns the output infos. */
  infer(inputs: readonly TensorInfo[], attributes: A): TensorInfo[];
  /** Emits the ONNX nodes computing the outputs from the inputs' value names. */
  lower(context: LoweringContext, inputs: readonly string[], attributes: A): string[];
  /** Plain TypeScript kernel on host tensors (float32 or float64 floats). */
  reference(inputs: readonly HostTensor[], attributes: A, context: ReferenceContext): HostTensor[];
  /** Input gradients from output gradients; omitted for ops that are not differentiable. */
  gradient?(context: GradientContext<A>): (SymbolicTensor | undefined)[];
  /** Autodiff treats the outputs as constants: nothing before the op joins the backward pass (`stopGradient`). */
  readonly stopsGradient?: boolean;
  /**
   * Recomputes the outputs from the inputs for the backward pass, so that the
   * forward outputs are freed after their last forward use instead of living
   * until the backward pass reads them. For cheap ops with large outputs
   * (GELU). Contract: it receives the inputs (recomputed copies where those
   * are rematerialized too) and the attributes, returns one tensor per output
   * with the output's dtype and shape (`gradients` checks this), and must be
   * deterministic (no random ops such as dropout). The nodes it builds must
   * differ from the forward lowering: ONNX Runtime merges identical nodes on
   * identical inputs, which would keep the forward output alive after all.
   */
  rematerialize?(inputs: readonly SymbolicTensor[], attributes: A): SymbolicTensor[];
}

/**
 * A defined op with a function that applies it in a graph.
 *
 * @public
 */
export interface Op<A extends object> extends OpDefinition<A> {
  /** Adds the op to the inputs' graph and returns its outputs. */
  apply(inputs: readonly SymbolicTensor[], attributes: A): SymbolicTensor[];
}

/**
 * Defines an op. The returned object carries the definition and an `apply`
 * that checks the inputs share one graph, runs the shape rule and adds the
 * node.
 *
 * @public
 */
export function defineOp<A extends object>(definition: OpDefinition<A>): Op<A> {
  const op: Op<A> = {
    ...definition,
    apply(inputs, attributes) {
      const graph = graphOf(definition.name, inputs);
      const outputs = definition.infer(inputs, attributes);
      return graph.addNode(op as unknown as OpDefinition<object>, inputs, attributes, outputs);
    },
  };
  return op;
}

/**
 * The graph shared by some tensors.
 *
 * @throws {@link ConfigError} when there are none or they belong to different graphs
 */
export function graphOf(opName: string, inputs: readonly SymbolicTensor[]): Graph {
  const first = inputs[0];
  if (!first) throw new ConfigError(`${opName}: expected at least one tensor input; found none`);
  for (const [index, input] of inputs.entries()) {
    if (!(input instanceof SymbolicTensor)) {
      throw new ConfigError(`${opName}: input ${index} must be a SymbolicTensor; found ${input === null ? 'null' : typeof input}`);
    }
    if (input.graph !== first.graph) {
      throw new ConfigError(`${opName}: input ${index} (${input.describe()}) belongs to another graph than input 0`);
    }
  }
  return first.graph;
}

/** A tensor or a number to be turned into a constant of the other operand's dtype. */
export type TensorLike = SymbolicTensor | number;

/** Turns numbers into scalar constants of `like`'s graph and dtype. */
export function toTensor(value: TensorLike, like: SymbolicTensor): SymbolicTensor {
  return value instanceof SymbolicTensor ? value : like.graph.scalar(value, like.dtype);
}

/**
 * Checks that a tensor has one of the allowed dtypes.
 *
 * @throws {@link DTypeError} naming the op and the argument
 */
export function expectDtype(opName: string, argument: string, info: TensorInfo, allowed: readonly DataType[]): void {
  if (!allowed.includes(info.dtype)) {
    throw new DTypeError(`${opName}: expected ${argument} of dtype ${allowed.join(' or ')}; found ${info.dtype}`);
  }
}

/** The float data types ops compute in. */
export const FLOAT_TYPES: readonly DataType[] = ['float32', 'float16', 'float64'];
