import { DTypeError } from '../errors.js';
import type { SymbolicTensor, TensorInfo } from '../graph/graph.js';
import { defineOp, toTensor, type Op, type TensorLike } from '../graph/op.js';
import { broadcastShapes } from '../graph/shape.js';
import { HostTensor } from '../tensor/host-tensor.js';
import { broadcastIndices, broadcastStatic } from '../reference/kernel-utils.js';

/** Defines a broadcasting comparison with a bool output (not differentiable). */
export function defineComparison(name: string, onnx: string, compare: (a: number, b: number) => boolean): Op<object> {
  return defineOp<object>({
    name,
    infer([a, b]): TensorInfo[] {
      if (a!.dtype !== b!.dtype) throw new DTypeError(`${name}: expected a and b of one dtype; found ${a!.dtype} and ${b!.dtype}`);
      return [{ dtype: 'bool', shape: broadcastShapes(name, a!.shape, b!.shape) }];
    },
    lower: (context, inputs) => context.emit(onnx, inputs),
    reference([a, b]) {
      const shape = broadcastStatic(a!.shape, b!.shape);
      const av = a!.toArray();
      const bv = b!.toArray();
      const ai = broadcastIndices(a!.shape, shape);
      const bi = broadcastIndices(b!.shape, shape);
      const out = HostTensor.zeros('bool', shape);
      for (let i = 0; i < out.data.length; i++) out.data[i] = compare(av[ai[i]!]!, bv[bi[i]!]!) ? 1 : 0;
      return [out];
    },
  });
}

/** Applies a comparison, turning a number into a constant of the other operand's dtype. */
export function applyComparison(op: Op<object>, a: SymbolicTensor, b: TensorLike): SymbolicTensor {
  return op.apply([a, toTensor(b, a)], {})[0]!;
}
