import { ShapeError } from '../errors.js';
import { dimsEqual, formatShape, type Dim } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp } from '../graph/op.js';
import { broadcastShapes } from '../graph/shape.js';
import { HostTensor } from '../tensor/host-tensor.js';
import { broadcastIndices } from '../reference/kernel-utils.js';
import { reduceToShape } from './reduce-to-shape.js';

/** Attributes of {@link broadcastTo}. */
export interface BroadcastToAttributes {
  readonly shape: readonly Dim[];
}

/** The `broadcastTo` op (ONNX Expand). Gradient: sum over the broadcast axes. */
export const broadcastToOp = defineOp<BroadcastToAttributes>({
  name: 'broadcastTo',
  infer([x], { shape }) {
    const result = broadcastShapes('broadcastTo', x!.shape, shape);
    if (result.length !== shape.length || result.some((d, i) => !dimsEqual(d, shape[i]!))) {
      throw new ShapeError(`broadcastTo: cannot broadcast ${formatShape(x!.shape)} to ${formatShape(shape)}`);
    }
    return [{ dtype: x!.dtype, shape }];
  },
  lower: (context, [x], { shape }) => context.emit('Expand', [x!, context.shapeTensor(shape)]),
  reference([x], { shape }, context) {
    const target = context.resolve(shape);
    const values = x!.contiguous();
    const indices = broadcastIndices(x!.shape, target);
    const out = HostTensor.zeros(x!.dtype, target);
    const source = values.data as unknown as ArrayLike<number>;
    const destination = out.data as unknown as { [i: number]: number };
    for (let i = 0; i < indices.length; i++) destination[i] = source[indices[i]!]!;
    return [out];
  },
  gradient: ({ inputs, outputGradients }) => [reduceToShape(outputGradients[0]!, inputs[0]!.shape)],
});

/**
 * Broadcasts a tensor to a shape (NumPy rules; named dimensions allowed).
 *
 * @throws {@link ShapeError} when the shape is not a broadcast of x's
 * @public
 */
export function broadcastTo(x: SymbolicTensor, shape: readonly Dim[]): SymbolicTensor {
  if (x.rank === shape.length && x.shape.every((d, i) => dimsEqual(d, shape[i]!))) return x;
  return broadcastToOp.apply([x], { shape })[0]!;
}
