import { DTypeError, ShapeError } from '../errors.js';
import { dimsEqual, formatShape } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp, expectDtype, FLOAT_TYPES } from '../graph/op.js';
import { broadcastShapes } from '../graph/shape.js';
import { broadcastIndices, broadcastStatic, floatData, floatTensor, type FloatArray } from '../reference/kernel-utils.js';
import { reduceToShape } from './reduce-to-shape.js';
import { reshape } from './reshape.js';
import { transposeLastTwo } from './transpose.js';

/** [..., m, k] -> [(...)*m, k]. */
function flattenRows(x: SymbolicTensor): SymbolicTensor {
  return reshape(x, [-1, x.shape[x.rank - 1]!]);
}

/** Reference matrix product `[m,k] x [k,n]` (i-k-j loop order). */
export function matmulKernel(a: FloatArray, b: FloatArray, out: FloatArray, m: number, k: number, n: number, aOffset = 0, bOffset = 0, outOffset = 0): void {
  for (let i = 0; i < m; i++) {
    const row = outOffset + i * n;
    for (let j = 0; j < n; j++) out[row + j] = 0;
    for (let p = 0; p < k; p++) {
      const value = a[aOffset + i * k + p]!;
      const bRow = bOffset + p * n;
      for (let j = 0; j < n; j++) out[row + j]! += value * b[bRow + j]!;
    }
  }
}

/**
 * The `matmul` op (NumPy semantics, rank >= 2). Gradient: dy·bᵀ and aᵀ·dy,
 * summed over broadcast batch axes. When b is one matrix shared by a batched
 * a (a linear layer's weight), b's gradient is a single 2-D product over the
 * flattened batch, never a per-matrix gradient [..., k, n] summed afterwards
 * (at a batch of 32 tokens x 4096 features that intermediate alone was 0.5
 * GiB).
 */
export const matmulOp = defineOp<object>({
  name: 'matmul',
  infer([a, b]) {
    expectDtype('matmul', 'a', a!, FLOAT_TYPES);
    if (a!.dtype !== b!.dtype) throw new DTypeError(`matmul: expected a and b of one dtype; found ${a!.dtype} and ${b!.dtype}`);
    if (a!.shape.length < 2 || b!.shape.length < 2) {
      throw new ShapeError(`matmul: expected a and b of rank >= 2; found ${formatShape(a!.shape)} and ${formatShape(b!.shape)}`);
    }
    const k = a!.shape[a!.shape.length - 1]!;
    if (!dimsEqual(k, b!.shape[b!.shape.length - 2]!)) {
      throw new ShapeError(
        `matmul: inner dimensions differ: a ${formatShape(a!.shape)} has ${k} columns, b ${formatShape(b!.shape)} has ${b!.shape[b!.shape.length - 2]} rows`,
      );
    }
    const batch = broadcastShapes('matmul', a!.shape.slice(0, -2), b!.shape.slice(0, -2));
    return [{ dtype: a!.dtype, shape: [...batch, a!.shape[a!.shape.length - 2]!, b!.shape[b!.shape.length - 1]!] }];
  },
  lower: (context, inputs) => context.emit('MatMul', inputs),
  reference([a, b]) {
    const m = a!.shape[a!.rank - 2]!;
    const k = a!.shape[a!.rank - 1]!;
    const n = b!.shape[b!.rank - 1]!;
    const batch = broadcastStatic(a!.shape.slice(0, -2), b!.shape.slice(0, -2));
    const out = floatTensor(a!.dtype, [...batch, m, n]);
    const ai = broadcastIndices(a!.shape.slice(0, -2), batch);
    const bi = broadcastIndices(b!.shape.slice(0, -2), batch);
    const ad = floatData('matmul', a!);
    const bd = floatData('matmul', b!);
    for (let i = 0; i < ai.length; i++) matmulKernel(ad, bd, out.data as FloatArray, m, k, n, ai[i]! * m * k, bi[i]! * k * n, i * m * n);
    return [out];
  },
  gradient: ({ inputs, outputGradients, needsGradient }) => {
    const [a, b] = inputs as [SymbolicTensor, SymbolicTensor];
    const dy = outputGradients[0]!;
    return [
      needsGradient[0] ? reduceToShape(matmul(dy, transposeLastTwo(b)), a.shape) : undefined,
      needsGradient[1]
        ? b.rank === 2 && a.rank > 2
          ? matmul(transposeLastTwo(flattenRows(a)), flattenRows(dy))
          : reduceToShape(matmul(transposeLastTwo(a), dy), b.shape)
        : undefined,
    ];
  },
});

/**
 * Matrix product with NumPy batch broadcasting (both operands rank >= 2).
 *
 * @param a - [..., m, k]
 * @param b - [..., k, n]
 * @returns [..., m, n]
 * @throws {@link ShapeError} when the inner dimensions differ
 * @public
 */
export function matmul(a: SymbolicTensor, b: SymbolicTensor): SymbolicTensor {
  return matmulOp.apply([a, b], {})[0]!;
}
