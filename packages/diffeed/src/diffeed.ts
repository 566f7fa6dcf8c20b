import {
  broadcastTo,
  ConfigError,
  HostTensor,
  Module,
  ModuleDict,
  RandomGenerator,
  stopGradient,
  type BuildContext,
  type Graph,
  type SymbolicTensor,
} from '@diffssl/core';
import { feedbackTarget, type DiffusionUNet, type UNetWeights } from '@diffssl/unet';
import { FeedbackNetwork } from './feedback-network.js';

/** The U-Net DifFeed runs twice: any diffusion U-Net (it builds with feedback inputs and describes its numbered blocks). @public */
export type FeedbackUNet = DiffusionUNet;

/** Options of {@link DifFeed}. @public */
export interface DifFeedOptions {
  /** The frozen U-Net. */
  unet: FeedbackUNet;
  /** Decoder blocks whose first-pass outputs feed back (`feedback_b_list`), in order: network i reads block feedbackFrom[i]. */
  feedbackFrom: readonly number[];
  /** The feedback arch string (`C_B_R`). */
  arch: string;
  /** Seed of the initialization (default 0), or a generator. */
  seed?: number | RandomGenerator;
}

/** What {@link DifFeed.buildPasses} returns. @public */
export interface DifFeedPasses {
  /** First-pass outputs of the requested blocks (no gradient flows into the first pass). */
  first: Map<number, SymbolicTensor>;
  /** Each feedback network's output, by source block. */
  feedback: Map<number, SymbolicTensor>;
  /** Second-pass outputs of the requested blocks. */
  second: Map<number, SymbolicTensor>;
}

/**
 * DifFeed's feedback: small networks (`feedback_layers.<i>.<j>`) map the
 * first pass's decoder block b onto encoder block 2*N_in + 2 - b; a second
 * pass adds each output, bilinearly resized, right after its target block.
 * The U-Net stays frozen (unless `buildPasses` gets `unetWeights`, to
 * fine-tune it through the second pass); gradients flow through its second
 * pass to the feedback networks, while the first pass stays out of the
 * backward pass (as the reference's `torch.no_grad()`).
 *
 * @example
 * ```ts
 * const difFeed = new DifFeed({ unet, feedbackFrom: [11, 13, 15, 17], arch: 'C_B_R' });
 * const passes = difFeed.buildPasses(context, { xt, timesteps: t, firstPassBlocks: [], secondPassBlocks: [10] });
 * ```
 * @public
 */
export class DifFeed extends Module {
  /** The feedback networks, in `feedbackFrom` order. */
  readonly networks: FeedbackNetwork[] = [];
  /** Source decoder block -> target encoder block. */
  readonly targets: ReadonlyMap<number, number>;
  /** The frozen U-Net. */
  readonly unet: FeedbackUNet;

  /** @throws `ConfigError` for a source that is not a decoder block, repeated sources or targets, or a bad arch */
  constructor(options: DifFeedOptions) {
    super();
    const { unet, feedbackFrom, arch } = options;
    this.unet = unet;
    if (feedbackFrom.length === 0) throw new ConfigError('DifFeed: expected at least one decoder block in feedbackFrom; found none');
    if (new Set(feedbackFrom).size !== feedbackFrom.length) throw new ConfigError(`DifFeed: feedbackFrom must be distinct; found [${feedbackFrom.join(', ')}]`);
    const generator = RandomGenerator.from(options.seed);
    const targets = new Map<number, number>();
    const list = this.registerModule('feedback_layers', new ModuleDict<FeedbackNetwork>());
    const blocks = unet.blocks;
    for (const source of feedbackFrom) {
      // feedbackTarget checked that both blocks exist.
      const target = feedbackTarget(blocks, source);
      targets.set(source, target);
      const network = new FeedbackNetwork(arch, blocks[source - 1]!.channels, blocks[target - 1]!.channels, generator);
      list.set(String(this.networks.length), network);
      this.networks.push(network);
    }
    this.targets = targets;
  }

  /** The decoder blocks that feed back, in order. */
  get sources(): number[] {
    return [...this.targets.keys()];
  }

  /**
   * Builds the two passes on already-noised images.
   *
   * @param context - the build context (train mode trains BatchNorm in the feedback networks)
   * @param inputs - `xt` [B, C, H, W] noised images, `timesteps` int64 [B], `classLabels` for class-conditional U-Nets, the blocks to read from each pass, the U-Net's compute `dtype`, and, to fine-tune the U-Net, its `unetWeights` (one of the context's modules; both passes read them, the first without gradient)
   * @throws `ConfigError` for blocks outside the U-Net
   */
  buildPasses(
    context: BuildContext,
    inputs: {
      xt: SymbolicTensor;
      timesteps: SymbolicTensor;
      classLabels?: SymbolicTensor;
      firstPassBlocks: readonly number[];
      secondPassBlocks: readonly number[];
      dtype?: 'float32' | 'float16';
      unetWeights?: UNetWeights;
    },
  ): DifFeedPasses {
    const { graph } = context;
    const sources = this.sources;
    const common = {
      x: inputs.xt,
      timesteps: inputs.timesteps,
      classLabels: inputs.classLabels,
      dtype: inputs.dtype,
      ...(inputs.unetWeights ? { trainable: { context, weights: inputs.unetWeights } } : {}),
    };
    const firstTaps = [...new Set([...sources, ...inputs.firstPassBlocks])];
    const firstPass = this.unet.build(graph, { ...common, taps: firstTaps });
    const first = new Map([...firstPass.blocks].map(([block, tensor]) => [block, stopGradient(tensor)]));
    const feedback = new Map<number, SymbolicTensor>();
    const injected = new Map<number, SymbolicTensor>();
    this.networks.forEach((network, i) => {
      const source = sources[i]!;
      const output = network.forward(context, first.get(source)!);
      feedback.set(source, output);
      injected.set(this.targets.get(source)!, output);
    });
    const second =
      inputs.secondPassBlocks.length > 0
        ? this.unet.build(graph, { ...common, taps: inputs.secondPassBlocks, feedback: injected }).blocks
        : new Map<number, SymbolicTensor>();
    return { first: new Map(inputs.firstPassBlocks.map((block) => [block, first.get(block)!])), feedback, second };
  }
}

/** An int64 [B] tensor holding `timestep` for every image of `like` [B, ...]. @public */
export function constantTimesteps(graph: Graph, timestep: number, like: SymbolicTensor): SymbolicTensor {
  return broadcastTo(graph.constant(HostTensor.from('int64', [1], [BigInt(timestep)])), [like.shape[0]!]);
}
