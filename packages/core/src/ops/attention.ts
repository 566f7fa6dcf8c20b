import { ConfigError, DTypeError, ShapeError } from '../errors.js';
import { attr } from '../graph/attributes.js';
import { dimsEqual, formatShape } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { defineOp, expectDtype, FLOAT_TYPES } from '../graph/op.js';
import { HostTensor } from '../tensor/host-tensor.js';
import { matmul, matmulOp } from './matmul.js';
import { mul, mulOp } from './mul.js';
import { scalarLike } from './scalar-like.js';
import { softmax, softmaxKernel } from './softmax.js';
import { sub } from './sub.js';
import { sum } from './sum.js';
import { lastTwoSwapped, transposeLastTwo } from './transpose.js';

/** Attributes of {@link scaledDotProductAttention}. */
export interface AttentionAttributes {
  /** Multiplies q before the scores are formed (`head_dim^-0.5` in a transformer). */
  readonly scale: number;
}

/**
 * The `scaledDotProductAttention` op: `softmax((q * scale) kᵀ) v` over the
 * last two axes. It lowers to exactly the ops it replaces (Mul, Transpose,
 * MatMul, Softmax, MatMul), so the forward numbers are those of the
 * composition. Its gradient recomputes the attention probabilities from q and
 * k instead of reading the forward's: the forward probabilities, [..., N, N]
 * per layer and the largest activation of a transformer (0.16 GiB per layer
 * for the paper's DifFormer at batch 16), are freed as soon as the forward
 * has used them. The recomputation forms `q (k * scale)ᵀ`, which differs
 * from the forward's nodes (so ONNX Runtime does not merge the two) by at
 * most a rounding per product term.
 */
export const attentionOp = defineOp<AttentionAttributes>({
  name: 'scaledDotProductAttention',
  infer([q, k, v], { scale }) {
    expectDtype('scaledDotProductAttention', 'q', q!, FLOAT_TYPES);
    if (k!.dtype !== q!.dtype || v!.dtype !== q!.dtype) {
      throw new DTypeError(`scaledDotProductAttention: expected q, k and v of one dtype; found ${q!.dtype}, ${k!.dtype} and ${v!.dtype}`);
    }
    if (!Number.isFinite(scale)) throw new ConfigError(`scaledDotProductAttention: expected a finite scale; found ${scale}`);
    const rank = q!.shape.length;
    const leadingAgree = (x: typeof q) => x!.shape.length === rank && x!.shape.slice(0, -2).every((d, i) => dimsEqual(d, q!.shape[i]!));
    const [tokens, width] = [k!.shape[rank - 2], q!.shape[rank - 1]];
    if (rank < 2 || !leadingAgree(k) || !leadingAgree(v) || !dimsEqual(k!.shape[rank - 1]!, width!) || !dimsEqual(v!.shape[rank - 2]!, tokens!)) {
      throw new ShapeError(
        `scaledDotProductAttention: expected q [..., Nq, d], k [..., Nk, d] and v [..., Nk, dv] with the same leading axes; found q ${formatShape(q!.shape)}, k ${formatShape(k!.shape)}, v ${formatShape(v!.shape)}`,
      );
    }
    return [{ dtype: q!.dtype, shape: [...q!.shape.slice(0, -1), v!.shape[rank - 1]!] }];
  },
  lower(context, [q, k, v], { scale }) {
    const rank = context.node.inputs[0]!.rank;
    const scaled = context.emit('Mul', [q!, context.constant(scalarLike(context, scale))])[0]!;
    const keysT = context.emit('Transpose', [k!], { perm: attr.ints(lastTwoSwapped(rank)) })[0]!;
    const scores = context.emit('MatMul', [scaled, keysT])[0]!;
    const probabilities = context.emit('Softmax', [scores], { axis: attr.int(rank - 1) })[0]!;
    return context.emit('MatMul', [probabilities, v!]);
  },
  reference([q, k, v], { scale }, context) {
    const rank = q!.rank;
    const scaled = mulOp.reference([q!, HostTensor.from(q!.dtype, [], [scale])], {}, context)[0]!;
    const keysT = k!.transpose(lastTwoSwapped(rank)).contiguous();
    const scores = matmulOp.reference([scaled, keysT], {}, context)[0]!;
    return matmulOp.reference([softmaxKernel('scaledDotProductAttention', scores, rank - 1, false), v!], {}, context);
  },
  gradient({ inputs: [q, k, v], outputGradients: [dy], attributes: { scale }, needsGradient }) {
    // q (k * scale)ᵀ: not the forward's (q * scale) kᵀ, so ORT does not merge the two; and no unscaled q kᵀ that could overflow in float16.
    const probabilities = softmax(matmul(q!, transposeLastTwo(mul(k!, scale))), -1);
    const dProbabilities = matmul(dy!, transposeLastTwo(v!));
    const dScores = mul(probabilities, sub(dProbabilities, sum(mul(dProbabilities, probabilities), -1, true)));
    return [
      needsGradient[0] ? mul(matmul(dScores, k!), scale) : undefined,
      needsGradient[1] ? mul(matmul(transposeLastTwo(dScores), q!), scale) : undefined,
      needsGradient[2] ? matmul(transposeLastTwo(probabilities), dy!) : undefined,
    ];
  },
});

/**
 * Scaled dot-product attention, `softmax((q * scale) kᵀ) v` over the last two
 * axes (the attention of a transformer, heads along a leading axis). Its
 * backward pass recomputes the attention probabilities rather than keeping
 * them from the forward pass, which saves the largest activation of a
 * transformer at the cost of one extra `q kᵀ` product.
 *
 * @param q - queries [..., Nq, d]
 * @param k - keys [..., Nk, d], the same leading axes as q
 * @param v - values [..., Nk, dv]
 * @param scale - multiplies q before the scores (`d^-0.5` in a transformer)
 * @returns [..., Nq, dv]
 * @throws {@link ShapeError} when the shapes do not fit; {@link DTypeError} when the dtypes differ; {@link ConfigError} for a scale that is not finite
 * @public
 */
export function scaledDotProductAttention(q: SymbolicTensor, k: SymbolicTensor, v: SymbolicTensor, scale: number): SymbolicTensor {
  return attentionOp.apply([q, k, v], { scale })[0]!;
}
