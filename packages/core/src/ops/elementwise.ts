import { DTypeError } from '../errors.js';
import type { OnnxAttribute } from '../graph/attributes.js';
import { SymbolicTensor, type TensorInfo } from '../graph/graph.js';
import { defineOp, expectDtype, FLOAT_TYPES, toTensor, type LoweringContext, type Op, type TensorLike } from '../graph/op.js';
import { broadcastShapes } from '../graph/shape.js';
import { binaryKernel, unaryKernel } from '../reference/kernel-utils.js';
import { reduceToShape } from './reduce-to-shape.js';

/** How an elementwise op lowers: an ONNX op type, or a custom emitter. */
type Lowering = string | ((context: LoweringContext, inputs: readonly string[]) => string);

function lowerWith(lowering: Lowering, context: LoweringContext, inputs: readonly string[], attributes?: Record<string, OnnxAttribute>): string[] {
  return typeof lowering === 'string' ? context.emit(lowering, inputs, attributes) : [lowering(context, inputs)];
}

/** Definition of an elementwise unary float op. */
export interface UnarySpec {
  name: string;
  onnx: Lowering;
  kernel: (x: number) => number;
  /** dx from dy, the input x and the output y. */
  gradient: (dy: SymbolicTensor, x: SymbolicTensor, y: SymbolicTensor) => SymbolicTensor;
  /** The output recomputed from x for the backward pass (`OpDefinition.rematerialize`). */
  rematerialize?: (x: SymbolicTensor) => SymbolicTensor;
}

/** Defines an elementwise unary op on float tensors. */
export function defineUnaryOp(spec: UnarySpec): Op<object> {
  return defineOp<object>({
    name: spec.name,
    infer([x]) {
      expectDtype(spec.name, 'x', x!, FLOAT_TYPES);
      return [{ dtype: x!.dtype, shape: x!.shape }];
    },
    lower: (context, inputs) => lowerWith(spec.onnx, context, inputs),
    reference: ([x]) => [unaryKernel(spec.name, x!, spec.kernel)],
    gradient: ({ inputs, outputs, outputGradients }) => [spec.gradient(outputGradients[0]!, inputs[0]!, outputs[0]!)],
    ...(spec.rematerialize ? { rematerialize: ([x]: readonly SymbolicTensor[]) => [spec.rematerialize!(x!)] } : {}),
  });
}

/** Definition of an elementwise binary float op with broadcasting. */
export interface BinarySpec {
  name: string;
  onnx: Lowering;
  kernel: (a: number, b: number) => number;
  /** Gradients with respect to a and b, in the broadcast output shape (reduced afterwards). */
  gradient: (
    dy: SymbolicTensor,
    a: SymbolicTensor,
    b: SymbolicTensor,
    y: SymbolicTensor,
    needs: readonly boolean[],
  ) => [SymbolicTensor | undefined, SymbolicTensor | undefined];
}

/** Defines an elementwise binary op with NumPy broadcasting. */
export function defineBinaryOp(spec: BinarySpec): Op<object> {
  return defineOp<object>({
    name: spec.name,
    infer([a, b]) {
      expectDtype(spec.name, 'a', a!, FLOAT_TYPES);
      if (a!.dtype !== b!.dtype) throw new DTypeError(`${spec.name}: expected a and b of one dtype; found ${a!.dtype} and ${b!.dtype}`);
      return [{ dtype: a!.dtype, shape: broadcastShapes(spec.name, a!.shape, b!.shape) }];
    },
    lower: (context, inputs) => lowerWith(spec.onnx, context, inputs),
    reference: ([a, b]) => [binaryKernel(spec.name, a!, b!, spec.kernel)],
    gradient: ({ inputs, outputs, outputGradients, needsGradient }) => {
      const [a, b] = inputs as [SymbolicTensor, SymbolicTensor];
      const [da, db] = spec.gradient(outputGradients[0]!, a, b, outputs[0]!, needsGradient);
      return [da && needsGradient[0] ? reduceToShape(da, a.shape) : undefined, db && needsGradient[1] ? reduceToShape(db, b.shape) : undefined];
    },
  });
}

/** Applies a binary op, turning a number operand into a constant of the other's dtype. */
export function applyBinary(op: Op<object>, a: TensorLike, b: TensorLike): SymbolicTensor {
  if (!(a instanceof SymbolicTensor) && !(b instanceof SymbolicTensor)) {
    throw new DTypeError(`${op.name}: expected at least one SymbolicTensor operand; found two numbers`);
  }
  const like = (a instanceof SymbolicTensor ? a : b) as SymbolicTensor;
  return op.apply([toTensor(a, like), toTensor(b, like)], {})[0]!;
}

/** Output info helper for ops whose output matches their input. */
export function sameAs(info: TensorInfo): TensorInfo {
  return { dtype: info.dtype, shape: info.shape };
}
