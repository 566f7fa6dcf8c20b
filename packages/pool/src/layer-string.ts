import { ConfigError } from '@diffssl/core';

/** Activation of a `Dense` entry. @public */
export type DenseActivation = 'relu' | 'sigmoid' | 'tanh' | 'identity';

/**
 * One layer of an attention head, as the reference's layer-string grammar
 * names it (`Pool:k:s`, `Reshape`, `Insert_CLS_Token`,
 * `Attention:dim:heads:mlp_ratio:blocks`, `Extract_CLS_Token`, `FullyPool`,
 * `Flatten`, `Dense:in:out:act`).
 *
 * @public
 */
export type HeadLayerSpec =
  | {
      /** `Pool:k:s`: 2-D average pooling of the feature map. */
      readonly kind: 'pool';
      /** Kernel size k. */
      readonly kernel: number;
      /** Stride s. */
      readonly stride: number;
    }
  | {
      /** `Reshape`: [B, C, h, w] feature maps to [B, h*w, C] tokens. */
      readonly kind: 'reshape';
    }
  | {
      /** `Insert_CLS_Token`: prepend the learned CLS token to the tokens. */
      readonly kind: 'insertClsToken';
    }
  | {
      /** `Attention:dim:heads:mlp_ratio:blocks`: transformer blocks over the tokens. */
      readonly kind: 'attention';
      /** Token size. */
      readonly dim: number;
      /** Attention heads. */
      readonly heads: number;
      /** Hidden size of the MLP as a multiple of `dim`. */
      readonly mlpRatio: number;
      /** Number of transformer blocks. */
      readonly blocks: number;
    }
  | {
      /** `Extract_CLS_Token`: keep only the CLS token, [B, dim]. */
      readonly kind: 'extractClsToken';
    }
  | {
      /** `FullyPool`: the mean over tokens, [B, dim]. */
      readonly kind: 'fullyPool';
    }
  | {
      /** `Flatten`: everything after the batch axis into one axis. */
      readonly kind: 'flatten';
    }
  | {
      /** `Dense:in:out:act`: a linear layer and its activation. */
      readonly kind: 'dense';
      /** Input features. */
      readonly inFeatures: number;
      /** Output features. */
      readonly outFeatures: number;
      /** The activation after the linear layer. */
      readonly activation: DenseActivation;
    };

/**
 * A typed attention-head configuration: an optional CLS token (a learned
 * [1, 1, dim] parameter starting at zeros, as the reference) and the layers.
 *
 * @public
 */
export interface AttentionHeadConfig {
  /** The CLS token's size, when the head uses one (`Use_CLS_Token:True:dim`). */
  readonly clsToken?: {
    /** The token's size (its shape is [1, 1, dim]). */
    readonly dim: number;
  };
  /** The layers in order. */
  readonly layers: readonly HeadLayerSpec[];
}

const GRAMMAR =
  'Use_CLS_Token:True|False:dim (first entry only), Pool:k:s, Reshape, Insert_CLS_Token, Attention:dim:heads:mlp_ratio:blocks, Extract_CLS_Token, FullyPool, Flatten, Dense:in:out:relu|sigmoid|tanh|identity';

function fail(entry: string, problem: string): never {
  throw new ConfigError(`attention head layer string: entry '${entry}' ${problem}; valid entries: ${GRAMMAR}`);
}

function integerField(entry: string, field: string, text: string | undefined): number {
  if (text === undefined || !/^\d+$/.test(text.trim()) || Number(text) <= 0)
    fail(entry, `has ${field} ${text === undefined ? 'missing' : `'${text}'`}; expected a positive integer`);
  return Number(text);
}

function numberField(entry: string, field: string, text: string | undefined): number {
  const value = text === undefined ? NaN : Number(text.trim());
  if (text === undefined || text.trim() === '' || !Number.isFinite(value) || value <= 0)
    fail(entry, `has ${field} ${text === undefined ? 'missing' : `'${text}'`}; expected a positive number`);
  return value;
}

function fields(entry: string, parts: string[], count: number): void {
  if (parts.length !== count + 1) fail(entry, `has ${parts.length - 1} field(s); expected ${count}`);
}

/**
 * Parses the reference's layer string strictly. Where the reference is lax,
 * this parser refuses with an error that quotes the entry and lists the valid
 * ones: an unknown entry (the reference silently ignores `FullPool`), a
 * malformed number, `Use_CLS_Token:False` (the reference enables the token for
 * any non-empty text), CLS entries without a CLS token, and widths that do not
 * chain (Attention and Dense sizes against what precedes them).
 *
 * @param layerString - comma-separated entries, for example `Use_CLS_Token:True:64,Insert_CLS_Token,Attention:64:4:4:2,Extract_CLS_Token`
 * @returns the typed configuration
 * @throws `ConfigError` quoting the offending entry
 * @public
 */
export function parseLayerString(layerString: string): AttentionHeadConfig {
  if (typeof layerString !== 'string' || layerString.trim() === '')
    throw new ConfigError(`attention head layer string: expected comma-separated entries; found ${JSON.stringify(layerString)}; valid entries: ${GRAMMAR}`);
  const entries = layerString.split(',').map((entry) => entry.trim());
  let clsToken: { dim: number } | undefined;
  const layers: HeadLayerSpec[] = [];
  entries.forEach((entry, index) => {
    const parts = entry.split(':').map((part) => part.trim());
    const name = parts[0]!;
    switch (name) {
      case 'Use_CLS_Token': {
        if (index !== 0) fail(entry, 'must be the first entry');
        fields(entry, parts, 2);
        const flag = parts[1]!;
        if (!['True', 'False', 'true', 'false'].includes(flag))
          fail(entry, `has flag '${flag}'; expected True or False (the reference reads any text, even 'False', as true)`);
        const dim = integerField(entry, 'dim', parts[2]);
        if (flag.toLowerCase() === 'true') clsToken = { dim };
        return;
      }
      case 'Pool':
        fields(entry, parts, 2);
        layers.push({ kind: 'pool', kernel: integerField(entry, 'kernel size', parts[1]), stride: integerField(entry, 'stride', parts[2]) });
        return;
      case 'Reshape':
      case 'Insert_CLS_Token':
      case 'Extract_CLS_Token':
      case 'FullyPool':
      case 'Flatten': {
        fields(entry, parts, 0);
        const kinds = {
          Reshape: 'reshape',
          Insert_CLS_Token: 'insertClsToken',
          Extract_CLS_Token: 'extractClsToken',
          FullyPool: 'fullyPool',
          Flatten: 'flatten',
        } as const;
        if ((name === 'Insert_CLS_Token' || name === 'Extract_CLS_Token') && !clsToken)
          fail(entry, 'needs a CLS token: start the string with Use_CLS_Token:True:<dim>');
        layers.push({ kind: kinds[name] });
        return;
      }
      case 'Attention': {
        fields(entry, parts, 4);
        const dim = integerField(entry, 'dim', parts[1]);
        const heads = integerField(entry, 'heads', parts[2]);
        if (dim % heads !== 0) fail(entry, `has dim ${dim} not divisible by heads ${heads}`);
        layers.push({ kind: 'attention', dim, heads, mlpRatio: numberField(entry, 'mlp_ratio', parts[3]), blocks: integerField(entry, 'blocks', parts[4]) });
        return;
      }
      case 'Dense': {
        fields(entry, parts, 3);
        const activation = parts[3]!;
        if (!['relu', 'sigmoid', 'tanh', 'identity'].includes(activation))
          fail(entry, `has activation '${activation}'; expected relu, sigmoid, tanh or identity`);
        layers.push({
          kind: 'dense',
          inFeatures: integerField(entry, 'in', parts[1]),
          outFeatures: integerField(entry, 'out', parts[2]),
          activation: activation as DenseActivation,
        });
        return;
      }
      default:
        fail(entry, `is unknown${name === 'FullPool' ? " (did you mean 'FullyPool'? the reference silently ignores 'FullPool')" : ''}`);
    }
  });
  if (layers.length === 0) throw new ConfigError(`attention head layer string '${layerString}' has no layers; valid entries: ${GRAMMAR}`);
  const config = clsToken ? { clsToken, layers } : { layers };
  checkChain(config, undefined);
  return config;
}

/** The shape a value has between layers: a feature map, a token sequence or a vector. */
type Stage =
  | { kind: 'map'; channels: number | undefined }
  | { kind: 'tokens'; width: number | undefined; hasCls: boolean }
  | { kind: 'vector'; width: number | undefined };

function describeEntry(layer: HeadLayerSpec): string {
  switch (layer.kind) {
    case 'pool':
      return `Pool:${layer.kernel}:${layer.stride}`;
    case 'attention':
      return `Attention:${layer.dim}:${layer.heads}:${layer.mlpRatio}:${layer.blocks}`;
    case 'dense':
      return `Dense:${layer.inFeatures}:${layer.outFeatures}:${layer.activation}`;
    default:
      return { reshape: 'Reshape', insertClsToken: 'Insert_CLS_Token', extractClsToken: 'Extract_CLS_Token', fullyPool: 'FullyPool', flatten: 'Flatten' }[
        layer.kind
      ];
  }
}

/**
 * What a head's first layer takes: tokens [B, N, D] for `Insert_CLS_Token`,
 * `Attention`, `Extract_CLS_Token` and `FullyPool` (as in DifFormer, whose
 * pre-layers make the tokens), a feature map [B, C, H, W] otherwise.
 *
 * @public
 */
export function inputKindOf(config: AttentionHeadConfig): 'map' | 'tokens' {
  const first = config.layers[0]?.kind;
  return first === 'insertClsToken' || first === 'attention' || first === 'extractClsToken' || first === 'fullyPool' ? 'tokens' : 'map';
}

/**
 * Follows the widths through the layers and checks that they chain, from an
 * input of `inputChannels` channels or token width (unknown when undefined).
 * Returns the output width when it is known.
 *
 * @param config - the head configuration
 * @param inputChannels - channels of the feature map, or width of the tokens
 * @param inputKind - what the input is (default: what the first layer takes, see {@link inputKindOf})
 * @throws `ConfigError` quoting the first entry whose input does not fit
 * @public
 */
export function checkChain(
  config: AttentionHeadConfig,
  inputChannels: number | undefined,
  inputKind: 'map' | 'tokens' = inputKindOf(config),
): number | undefined {
  let stage: Stage = inputKind === 'map' ? { kind: 'map', channels: inputChannels } : { kind: 'tokens', width: inputChannels, hasCls: false };
  const width = (s: Stage) => (s.kind === 'map' ? s.channels : s.width);
  for (const layer of config.layers) {
    const entry = describeEntry(layer);
    const expectStage = (kinds: Stage['kind'][], what: string) => {
      if (!kinds.includes(stage.kind))
        fail(
          entry,
          `needs ${what} as input, but the layers before it produce ${stage.kind === 'map' ? 'a feature map [B, C, H, W]' : stage.kind === 'tokens' ? 'tokens [B, N, D]' : 'vectors [B, D]'}`,
        );
    };
    switch (layer.kind) {
      case 'pool':
        expectStage(['map'], 'a feature map [B, C, H, W]');
        break;
      case 'reshape':
        expectStage(['map'], 'a feature map [B, C, H, W]');
        stage = { kind: 'tokens', width: width(stage), hasCls: false };
        break;
      case 'insertClsToken': {
        expectStage(['tokens'], 'tokens [B, N, D] (put Reshape before it)');
        const dim = config.clsToken!.dim;
        if (width(stage) !== undefined && width(stage) !== dim) fail(entry, `inserts a CLS token of dim ${dim} into tokens of width ${width(stage)}`);
        stage = { kind: 'tokens', width: dim, hasCls: true };
        break;
      }
      case 'attention':
        expectStage(['tokens'], 'tokens [B, N, D] (put Reshape before it)');
        if (width(stage) !== undefined && width(stage) !== layer.dim) fail(entry, `has dim ${layer.dim}, but its input tokens have width ${width(stage)}`);
        stage = { ...stage, width: layer.dim } as Stage;
        break;
      case 'extractClsToken':
        expectStage(['tokens'], 'tokens with a CLS token');
        if (stage.kind === 'tokens' && !stage.hasCls) fail(entry, 'has no CLS token to extract: put Insert_CLS_Token before it');
        stage = { kind: 'vector', width: width(stage) };
        break;
      case 'fullyPool':
        expectStage(['tokens'], 'tokens [B, N, D]');
        stage = { kind: 'vector', width: width(stage) };
        break;
      case 'flatten': {
        // nn.Flatten(): every axis after the batch one; the width depends on sizes known only at build time.
        stage = { kind: 'vector', width: stage.kind === 'vector' ? stage.width : undefined };
        break;
      }
      case 'dense':
        expectStage(['vector', 'tokens'], 'vectors [B, D] or tokens [B, N, D]');
        if (width(stage) !== undefined && width(stage) !== layer.inFeatures)
          fail(entry, `takes ${layer.inFeatures} inputs, but the layers before it produce width ${width(stage)}`);
        stage = { ...stage, width: layer.outFeatures } as Stage;
        break;
    }
  }
  return width(stage);
}

/** The layer string of a typed configuration (the inverse of {@link parseLayerString}). @public */
export function formatLayerString(config: AttentionHeadConfig): string {
  const entries = config.layers.map(describeEntry);
  return [...(config.clsToken ? [`Use_CLS_Token:True:${config.clsToken.dim}`] : []), ...entries].join(',');
}
