// A CommonJS consumer of every public package, as in a project made with
// `npm init -y`: `require()` resolves each package's `require` condition (the
// .cjs build), and each one runs something, not only loads.
'use strict';
const assert = require('node:assert/strict');
const { mkdtempSync, readdirSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const core = require('@diffssl/core');
const unet = require('@diffssl/unet');
const pool = require('@diffssl/pool');
const difformer = require('@diffssl/difformer');
const diffeed = require('@diffssl/diffeed');
const evaluation = require('@diffssl/eval');
const classifier = require('@diffssl/eval/classifier');
const heads = require('@diffssl/eval/heads');

for (const [name, path] of Object.entries({ core: '@diffssl/core', unet: '@diffssl/unet', eval: '@diffssl/eval' })) {
  const resolved = require.resolve(path);
  assert.ok(resolved.endsWith('.cjs'), `${name}: require() resolved ${resolved}, expected the CommonJS build (.cjs)`);
}

async function main() {
  const { BuildContext, Graph, HostTensor, compileModel, createRunner, relu, ConfigError, DiffSSLError } = core;
  const cpu = { executionProviders: ['cpu'] };

  // core: a graph on the in-thread runner and on the worker-thread runner (whose worker resolves onnxruntime-node beside the .cjs file).
  for (const thread of ['main', 'worker']) {
    const graph = new Graph();
    const x = graph.input('x', 'float32', ['batch', 4]);
    const runner = await createRunner(compileModel({ outputs: { y: relu(x) } }), { ...cpu, thread });
    const { y } = await runner.run({ x: HostTensor.from('float32', [1, 4], [-1, 2, -3, 4]) });
    await runner.release();
    assert.deepEqual(y.toArray(), [0, 2, 0, 4]);
  }
  assert.ok(new ConfigError('x') instanceof DiffSSLError);

  // unet: a tiny ADM U-Net's features through the compiled-model cache (package versions read beside the .cjs file), twice.
  const config = unet.admConfig({
    image_size: 16,
    num_channels: 32,
    num_res_blocks: 1,
    channel_mult: '1,2',
    attention_resolutions: '8',
    num_head_channels: 32,
  });
  const model = new unet.AdmUNet(config, unet.initialAdmWeights(config, 0));
  const images = HostTensor.from(
    'float32',
    [2, 3, 16, 16],
    Array.from({ length: 2 * 3 * 16 * 16 }, (_, i) => 0.9 * Math.sin(i)),
  );
  const cacheDirectory = mkdtempSync(join(tmpdir(), 'diffssl-cjs-'));
  let features;
  try {
    for (const expectCached of [false, true]) {
      const extractor = await unet.createFeatureExtractor({ unet: model, blocks: [3], timesteps: [150], runner: cpu, cacheDirectory });
      features = (await extractor.extract(images)).get(unet.featureKey(150, 3));
      assert.equal(extractor.fromCache, expectCached);
      await extractor.release();
    }
    assert.equal(readdirSync(cacheDirectory).length, 1);
  } finally {
    rmSync(cacheDirectory, { recursive: true, force: true });
  }
  assert.deepEqual(features.shape, [2, 32, 8, 8]);
  assert.equal(unet.feedbackTarget(model.blocks, 6), 4);

  // pool, difformer, diffeed: build each module's graph and run it once.
  const head = new pool.LinearHead({ channels: 32, numClasses: 3, prePoolSize: 2, seed: 0 });
  const graph = new Graph();
  const logits = head.forward(new BuildContext(graph, head), graph.input('x', 'float32', ['batch', 32, 8, 8]));
  const runner = await createRunner(compileModel({ outputs: { logits } }), cpu);
  const scores = (await runner.run({ x: features })).logits;
  await runner.release();
  assert.deepEqual(scores.shape, [2, 3]);
  assert.equal(typeof difformer.DifFormer, 'function');
  const difFeed = new diffeed.DifFeed({ unet: model, feedbackFrom: [6], arch: 'C_B_R' });
  assert.deepEqual([...difFeed.targets], [[6, 4]]);

  // eval: metrics and the classifier entry.
  const metrics = evaluation.classificationMetrics(scores, [0, 1]);
  assert.ok(metrics.top1 >= 0 && metrics.top1 <= 100);
  assert.equal(typeof classifier.classifierFeeds, 'function');
  // eval/heads: the head registry builds a protocol model on the tiny U-Net.
  assert.deepEqual(heads.PROTOCOLS, ['pixels', 'random', 'linear', 'attention', 'difformer', 'diffeed']);
  const attention = heads.createProtocolModel(
    {
      protocol: 'attention',
      blocks: [3],
      timesteps: [150],
      numClasses: 4,
      fusionArc: 'Use_CLS_Token:True:32,Insert_CLS_Token,Attention:32:2:2:1,Extract_CLS_Token',
    },
    model,
  );
  assert.deepEqual([...attention.inputs().keys()], ['t150/block03']);
  console.log(`required 8 entry points from CommonJS; features [${features.shape.join(', ')}], logits [${scores.shape.join(', ')}], top-1 ${metrics.top1}%`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
