import {
  add,
  ConfigError,
  gelu,
  Layer,
  LayerNorm,
  Linear,
  reshape,
  ShapeError,
  scaledDotProductAttention,
  slice,
  transpose,
  type BuildContext,
  type RandomGenerator,
  type SymbolicTensor,
} from '@diffssl/core';

/**
 * timm's multi-head self-attention as the reference uses it: one `qkv`
 * Linear without bias, scale `head_dim^-0.5` applied to q, softmax, and an
 * output projection `proj` with bias.
 *
 * @public
 */
export class SelfAttention extends Layer {
  /** [3*dim, dim], no bias. */
  readonly qkv: Linear;
  /** [dim, dim] with bias. */
  readonly proj: Linear;

  /**
   * @param dim - token width
   * @param heads - number of heads (must divide dim)
   * @param generator - draws the initial values
   */
  constructor(
    readonly dim: number,
    readonly heads: number,
    generator: RandomGenerator,
  ) {
    super();
    if (!Number.isInteger(heads) || heads <= 0 || dim % heads !== 0)
      throw new ConfigError(`SelfAttention: dim ${dim} must be divisible by a positive number of heads; found ${heads}`);
    this.qkv = this.registerModule('qkv', new Linear(dim, 3 * dim, generator, { bias: false }));
    this.proj = this.registerModule('proj', new Linear(dim, dim, generator));
  }

  /** Attention over tokens [B, N, dim]. */
  forward(context: BuildContext, x: SymbolicTensor): SymbolicTensor {
    const [batch, tokens, width] = x.shape;
    if (x.rank !== 3 || width !== this.dim || typeof tokens !== 'number')
      throw new ShapeError(`SelfAttention: expected tokens [batch, N, ${this.dim}] with a static N; found [${x.shape.join(', ')}]`);
    const headDim = this.dim / this.heads;
    const qkv = transpose(reshape(this.qkv.forward(context, x), [batch!, tokens, 3, this.heads, headDim]), [2, 0, 3, 1, 4]);
    const part = (i: number) => reshape(slice(qkv, [i], [i + 1], [0]), [batch!, this.heads, tokens, headDim]);
    // softmax(q k^T / sqrt(head_dim)) v; the backward pass recomputes the [B, heads, N, N] probabilities instead of keeping them.
    const attended = scaledDotProductAttention(part(0), part(1), part(2), headDim ** -0.5);
    const mixed = reshape(transpose(attended, [0, 2, 1, 3]), [batch!, tokens, this.dim]);
    return this.proj.forward(context, mixed);
  }
}

/**
 * A pre-norm ViT block (timm's `Block`, as the reference's attention head
 * builds it): `x + attn(norm1(x))`, then `x + mlp(norm2(x))` with
 * `mlp = fc1 -> GELU (exact) -> fc2`, hidden width `int(dim * mlpRatio)`,
 * LayerNorm eps 1e-5. State-dict names: `norm1`, `attn.qkv`, `attn.proj`,
 * `norm2`, `mlp.fc1`, `mlp.fc2`.
 *
 * @public
 */
export class TransformerBlock extends Layer {
  /** Pre-attention norm. */
  readonly norm1: LayerNorm;
  /** Self-attention. */
  readonly attn: SelfAttention;
  /** Pre-MLP norm. */
  readonly norm2: LayerNorm;
  /** The MLP (`fc1`, `fc2`). */
  readonly mlp: Mlp;

  /**
   * @param dim - token width
   * @param heads - attention heads
   * @param mlpRatio - hidden width of the MLP relative to dim
   * @param generator - draws the initial values
   */
  constructor(dim: number, heads: number, mlpRatio: number, generator: RandomGenerator) {
    super();
    this.norm1 = this.registerModule('norm1', new LayerNorm([dim]));
    this.attn = this.registerModule('attn', new SelfAttention(dim, heads, generator));
    this.norm2 = this.registerModule('norm2', new LayerNorm([dim]));
    this.mlp = this.registerModule('mlp', new Mlp(dim, Math.trunc(dim * mlpRatio), generator));
  }

  /** The block over tokens [B, N, dim]. */
  forward(context: BuildContext, x: SymbolicTensor): SymbolicTensor {
    const h = add(x, this.attn.forward(context, this.norm1.forward(context, x)));
    return add(h, this.mlp.forward(context, this.norm2.forward(context, h)));
  }
}

/**
 * timm's `Mlp`: `fc1 -> GELU -> fc2`.
 *
 * @public
 */
export class Mlp extends Layer {
  /** [hidden, dim] */
  readonly fc1: Linear;
  /** [dim, hidden] */
  readonly fc2: Linear;

  /**
   * @param dim - input and output width
   * @param hidden - hidden width
   * @param generator - draws the initial values
   */
  constructor(dim: number, hidden: number, generator: RandomGenerator) {
    super();
    this.fc1 = this.registerModule('fc1', new Linear(dim, hidden, generator));
    this.fc2 = this.registerModule('fc2', new Linear(hidden, dim, generator));
  }

  /** The MLP over the last axis. */
  forward(context: BuildContext, x: SymbolicTensor): SymbolicTensor {
    return this.fc2.forward(context, gelu(this.fc1.forward(context, x)));
  }
}
