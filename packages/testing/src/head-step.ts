import {
  BuildContext, compileModel, compileModuleTrainStep, createRunner, crossEntropy, gradients, Graph, sgd, type HostTensor, type Module, type SymbolicTensor,
} from '@diffssl/core';

/** What one reference-style training step of a head produced. */
export interface HeadStepResult {
  logits: HostTensor;
  loss: HostTensor;
  /** Gradients by state-dict name (from `gradients`, before the step). */
  grads: Map<string, HostTensor>;
  /** Parameters after one plain SGD step (through `compileModuleTrainStep`), by state-dict name. */
  after: Map<string, HostTensor>;
  /** Buffers after the step (running statistics), by state-dict name. */
  buffers: Map<string, HostTensor>;
}

/**
 * Runs a head as the fixtures were made: training mode, mean cross-entropy on
 * `labels`, gradients, and one plain SGD step at `learningRate`, through the
 * public API (BuildContext, gradients, compileModuleTrainStep).
 */
export async function runHeadStep(
  modules: Module | Module[],
  build: (context: BuildContext, graph: Graph) => { logits: SymbolicTensor; feeds: Record<string, HostTensor> },
  labels: HostTensor,
  learningRate: number,
): Promise<HeadStepResult> {
  const cpu = { executionProviders: ['cpu'] as const };
  // Gradients and forward values.
  const graph = new Graph();
  const context = new BuildContext(graph, modules, { mode: 'train' });
  const { logits, feeds } = build(context, graph);
  const labelInput = graph.input('labels', 'int64', [logits.shape[0]!]);
  const loss = crossEntropy(logits, labelInput);
  const trainable = context.trainableWeights();
  const grads = gradients(loss, trainable.map(({ weight }) => weight));
  const outputs: Record<string, SymbolicTensor> = { logits, loss };
  trainable.forEach(({ weight }, i) => (outputs[`grad/${weight.name}`] = grads[i]!));
  const runner = await createRunner(compileModel({ outputs }), cpu);
  const values = await runner.run({ ...feeds, labels });
  await runner.release();
  // One SGD step through the train-step path.
  const stepGraph = new Graph();
  const stepContext = new BuildContext(stepGraph, modules, { mode: 'train' });
  const stepBuilt = build(stepContext, stepGraph);
  const stepLabels = stepGraph.input('labels', 'int64', [stepBuilt.logits.shape[0]!]);
  const step = await compileModuleTrainStep({ context: stepContext, loss: crossEntropy(stepBuilt.logits, stepLabels), optimizer: sgd(), runner: cpu });
  await step.run({ ...stepBuilt.feeds, labels }, { learningRate });
  const after = new Map(Object.entries(step.step.parameters()));
  const buffers = new Map(Object.entries(step.step.buffers()));
  await step.release();
  return {
    logits: values.logits!,
    loss: values.loss!.reshape([1]),
    grads: new Map(trainable.map(({ weight }) => [weight.name!, values[`grad/${weight.name}`]!])),
    after,
    buffers,
  };
}
