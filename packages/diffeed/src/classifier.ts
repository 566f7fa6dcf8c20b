import { ConfigError, type BuildContext, type HostTensor, type LoadStateDictOptions, type Module, type SymbolicTensor } from '@diffssl/core';
import { fusionKey, type DifFormer } from '@diffssl/difformer';
import { noiseSchedule, qSampleGraph, type NoiseSchedule, type UNetWeights } from '@diffssl/unet';
import { constantTimesteps, type DifFeed } from './diffeed.js';

/** Inputs of {@link DifFeedClassifier.forward}. @public */
export interface DifFeedClassifierInputs {
  /** Clean images [B, C, H, W] in [-1, 1]. */
  xStart: SymbolicTensor;
  /** Gaussian noise [B, C, H, W] for each timestep the head reads. */
  noise: ReadonlyMap<number, SymbolicTensor>;
  /** int64 [B] timesteps to run each of the head's timesteps at (default: that timestep for every image). */
  timesteps?: ReadonlyMap<number, SymbolicTensor>;
  /** Class labels int64 [B] for class-conditional U-Nets. */
  classLabels?: SymbolicTensor;
  /** Compute precision of the U-Net passes (default float32). */
  dtype?: 'float32' | 'float16';
  /** Fine-tuning: the U-Net's weights, read through the context (one of its modules), so that they train too. */
  unetWeights?: UNetWeights;
}

/**
 * The whole DifFeed model: for each timestep the head reads, `q_sample`, the
 * first pass (no gradient), the feedback networks, the second pass with the
 * feedback added, and the head (a {@link DifFormer} reading first-pass blocks
 * then second-pass blocks). Its state dict joins the feedback networks'
 * (`feedback_layers.*`) and the head's names, as the reference saves them.
 *
 * @public
 */
export class DifFeedClassifier {
  private readonly schedule: NoiseSchedule;

  /**
   * @param difFeed - the feedback networks (and the frozen U-Net they run)
   * @param head - the fusion head; its second-pass blocks read the second pass
   * @throws `ConfigError` when the head's state-dict names clash with the feedback networks'
   */
  constructor(
    readonly difFeed: DifFeed,
    readonly head: DifFormer,
  ) {
    const clash = [...head.stateDict().keys()].filter((name) => name.startsWith('feedback_layers.'));
    if (clash.length > 0) throw new ConfigError(`DifFeedClassifier: the head has tensors named like the feedback networks: ${clash.join(', ')}`);
    const { noiseSchedule: schedule, diffusionSteps } = difFeed.unet.info;
    this.schedule = noiseSchedule(schedule, diffusionSteps);
  }

  /** The trainable modules (for a `BuildContext`): the feedback networks and the head. */
  modules(): Module[] {
    return [this.difFeed, this.head];
  }

  /** Logits [B, classes] of the two-pass model. */
  forward(context: BuildContext, inputs: DifFeedClassifierInputs): SymbolicTensor {
    const { timesteps, firstPassBlocks, secondPassBlocks } = this.head.reads;
    const features = new Map<string, SymbolicTensor>();
    for (const t of timesteps) {
      const noise = inputs.noise.get(t);
      if (!noise) throw new ConfigError(`DifFeedClassifier: no noise for timestep ${t}; given for ${[...inputs.noise.keys()].join(', ') || 'none'}`);
      const timesteps = inputs.timesteps?.get(t) ?? constantTimesteps(context.graph, t, inputs.xStart);
      const xt = qSampleGraph(this.schedule, inputs.xStart, noise, timesteps);
      const passes = this.difFeed.buildPasses(context, {
        xt,
        timesteps,
        classLabels: inputs.classLabels,
        firstPassBlocks,
        secondPassBlocks,
        dtype: inputs.dtype,
        unetWeights: inputs.unetWeights,
      });
      for (const [block, tensor] of passes.first) features.set(fusionKey(t, block), tensor);
      for (const [block, tensor] of passes.second) features.set(fusionKey(t, block, 'second'), tensor);
    }
    return this.head.forward(context, features);
  }

  /** The feedback networks' and the head's tensors by the reference's names. */
  stateDict(): Map<string, HostTensor> {
    return new Map([...this.difFeed.stateDict(), ...this.head.stateDict()]);
  }

  /**
   * Loads both parts from one set of named tensors.
   *
   * @throws `StateDictMismatchError` listing what does not fit
   */
  loadStateDict(tensors: ReadonlyMap<string, HostTensor>, options: LoadStateDictOptions = {}): void {
    const isFeedback = (name: string) => name.startsWith('feedback_layers.');
    this.difFeed.loadStateDict(new Map([...tensors].filter(([name]) => isFeedback(name))), options);
    this.head.loadStateDict(new Map([...tensors].filter(([name]) => !isFeedback(name))), options);
  }
}
