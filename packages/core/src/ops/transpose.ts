import { attr } from '../graph/attributes.js';
import { ShapeError } from '../errors.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp } from '../graph/op.js';

/** Attributes of {@link transpose}. */
export interface TransposeAttributes {
  readonly permutation: readonly number[];
}

/** The `transpose` op. Gradient: the inverse permutation. */
export const transposeOp = defineOp<TransposeAttributes>({
  name: 'transpose',
  infer([x], { permutation }) {
    const sorted = [...permutation].sort((a, b) => a - b);
    if (permutation.length !== x!.shape.length || sorted.some((axis, i) => axis !== i)) {
      throw new ShapeError(`transpose: expected a permutation of 0..${x!.shape.length - 1}; found [${permutation.join(', ')}]`);
    }
    return [{ dtype: x!.dtype, shape: permutation.map((axis) => x!.shape[axis]!) }];
  },
  lower: (context, inputs, { permutation }) => context.emit('Transpose', inputs, { perm: attr.ints(permutation) }),
  reference: ([x], { permutation }) => [x!.transpose(permutation).contiguous()],
  gradient: ({ outputGradients, attributes }) => {
    const inverse = new Array<number>(attributes.permutation.length);
    attributes.permutation.forEach((axis, i) => (inverse[axis] = i));
    return [transpose(outputGradients[0]!, inverse)];
  },
});

/**
 * Permutes the axes of a tensor.
 *
 * @param x - the tensor
 * @param permutation - new order of the axes; reverses them when omitted
 * @throws {@link ShapeError} when it is not a permutation
 * @public
 */
export function transpose(x: SymbolicTensor, permutation?: readonly number[]): SymbolicTensor {
  const perm = permutation ?? x.shape.map((_, i) => x.rank - 1 - i);
  if (perm.every((axis, i) => axis === i) && perm.length === x.rank) return x;
  return transposeOp.apply([x], { permutation: perm })[0]!;
}

/** The permutation of `rank` axes (>= 2) that swaps the last two. @internal */
export function lastTwoSwapped(rank: number): number[] {
  return [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
}

/** Swaps the last two axes (rank >= 2). @public */
export function transposeLastTwo(x: SymbolicTensor): SymbolicTensor {
  if (x.rank < 2) throw new ShapeError(`transposeLastTwo: expected rank >= 2; found ${x.describe()}`);
  return transpose(x, lastTwoSwapped(x.rank));
}
