// A browser consumer of the browser-capable packages. Every export of each is
// kept (the namespaces are used as values), so the bundle holds all of their
// browser entries, and a tiny pipeline uses the main API on onnxruntime-web.
import * as core from '@diffssl/core';
import * as unet from '@diffssl/unet';
import * as pool from '@diffssl/pool';
import * as difformer from '@diffssl/difformer';
import * as heads from '@diffssl/eval/heads';

const exported = { core, unet, pool, difformer, heads };

/** Builds a tiny random U-Net, extracts features and scores them with a linear head, all on onnxruntime-web. */
export async function tinyPipeline(): Promise<number[]> {
  const config = unet.admConfig({
    image_size: 16,
    num_channels: 32,
    num_res_blocks: 1,
    channel_mult: '1,2',
    attention_resolutions: '8',
    num_head_channels: 32,
  });
  const model = new unet.AdmUNet(config, unet.initialAdmWeights(config, 0));
  const extractor = await unet.createFeatureExtractor({ unet: model, blocks: [3], timesteps: [150], runner: { executionProviders: ['wasm'] } });
  const images = core.HostTensor.zeros('float32', [2, 3, 16, 16]);
  const features = (await extractor.extract(images)).get(unet.featureKey(150, 3))!;
  await extractor.release();
  const head = new pool.LinearHead({ channels: features.shape[1]!, numClasses: 2, prePoolSize: 2 });
  const graph = new core.Graph();
  const context = new core.BuildContext(graph, head);
  const logits = head.forward(context, graph.input('x', 'float32', ['batch', ...features.shape.slice(1)]));
  const runner = await core.createRunner(core.compileModel({ outputs: { logits } }), { executionProviders: ['wasm'] });
  const result = await runner.run({ x: features });
  await runner.release();
  return result.logits!.toArray();
}

document.body.dataset.exports = Object.values(exported)
  .map((module) => Object.keys(module).length)
  .join(',');
document.body.addEventListener('click', () => void tinyPipeline());
