/**
 * `pnpm --filter @diffssl/core run bench:int8-conv`: one 3x3 convolution
 * (C -> C channels, padding 1) per shape, on the CPU provider, three ways:
 * 1. float32 `Conv` (ORT's NCHWc kernels);
 * 2. `quantizedConv2d`, the int8 extraction path: the input quantized per
 *    tensor at run time, im2col in 8 bits, one MatMulInteger against the
 *    constant int8 weight matrix (u8 x s8, VNNI where the CPU has it);
 * 3. the ONNX `ConvInteger` op (u8 input, s8 weight), the other dynamic
 *    scheme ONNX offers, with the same quantize and rescale around it.
 * Prints each rate (2*N*C*C*9*H*W operations per second) and the int8 paths'
 * speed-ups over float32: which layer shapes int8 can speed up at all.
 *
 * Options: --shapes N:C:S,... (batch, channels, side; default the shapes of
 * adm-fm28's blocks at batch 64 and of the 256x256 model's at batch 2),
 * --seconds S (per path, default 3).
 */
import { parseArgs } from 'node:util';
import { attr } from '../src/graph/attributes.js';
import { defineOp } from '../src/graph/op.js';
import { convWeightMatrix } from '../src/ops/quantized-conv2d.js';
import { compileModel, conv2d, createRunner, Graph, HostTensor, quantizedConv2d, quantizeWeightPerChannel, type SymbolicTensor } from '../src/index.js';
import { randomTensor, secondsPerRun } from '@diffssl/testing';

/** DynamicQuantizeLinear -> ConvInteger (3x3, padding 1) -> Cast -> scale per output channel. Bench-only: no reference kernel. */
const convIntegerOp = defineOp<object>({
  name: 'benchConvInteger',
  infer: ([x, w]) => [{ dtype: 'float32', shape: [x!.shape[0]!, w!.shape[0]!, x!.shape[2]!, x!.shape[3]!] }],
  lower(context, [x, w, scales]) {
    const [xq, xScale, xZeroPoint] = context.emit('DynamicQuantizeLinear', [x!], {}, 3) as [string, string, string];
    const accumulated = context.emit('ConvInteger', [xq, w!, xZeroPoint], { pads: attr.ints([1, 1, 1, 1]) })[0]!;
    const real = context.emit('Cast', [accumulated], { to: attr.int(1) })[0]!;
    return context.emit('Mul', [real, context.emit('Mul', [scales!, xScale])[0]!]);
  },
  reference: () => {
    throw new Error('benchConvInteger: bench-only op without a reference kernel');
  },
});

const { values } = parseArgs({
  options: {
    shapes: { type: 'string', default: '64:64:28,64:128:14,64:128:7,64:256:14,2:256:128,2:512:64,2:1024:32' },
    seconds: { type: 'string', default: '3' },
  },
});
const seconds = Number(values.seconds);
console.log('3x3 convolution C -> C, padding 1, CPU provider: GOP/s, and the int8 paths against float32');
for (const spec of values.shapes!.split(',')) {
  const [n, c, side] = spec.split(':').map(Number) as [number, number, number];
  if (![n, c, side].every((v) => Number.isSafeInteger(v) && v > 0))
    throw new Error(`bench:int8-conv: expected --shapes N:C:S,... of positive integers; found '${spec}'`);
  const x = randomTensor([n, c, side, side], 1);
  const weight = randomTensor([c, c, 3, 3], 2);
  const quantized = quantizeWeightPerChannel(weight);
  const operations = 2 * n * c * c * 9 * side * side;
  const rate = async (build: (graph: Graph, input: SymbolicTensor) => SymbolicTensor): Promise<number> => {
    const graph = new Graph();
    const input = graph.input('x', 'float32', [n, c, side, side]);
    const runner = await createRunner(compileModel({ outputs: { y: build(graph, input) } }), { executionProviders: ['cpu'] });
    const time = await secondsPerRun(() => runner.run({ x }), seconds);
    await runner.release();
    return operations / time / 1e9;
  };
  const float = await rate((graph, input) => conv2d(input, graph.weight('w', weight), undefined, { padding: 1 }));
  const im2col = await rate((graph, input) =>
    quantizedConv2d(input, { values: graph.weight('wq', convWeightMatrix(quantized.values)), scales: graph.weight('scales', quantized.scales) }, undefined, {
      padding: 1,
    }),
  );
  const convInteger = await rate(
    (graph, input) =>
      convIntegerOp.apply(
        [input, graph.weight('wq', quantized.values), graph.weight('scales', HostTensor.from('float32', [c, 1, 1], quantized.scales.data))],
        {},
      )[0]!,
  );
  console.log(
    `  [${n}, ${c}, ${side}, ${side}]: float32 ${float.toFixed(1)}, quantizedConv2d ${im2col.toFixed(1)} (${(im2col / float).toFixed(2)}x), ConvInteger ${convInteger.toFixed(1)} (${(convInteger / float).toFixed(2)}x)`,
  );
}
