export { adaptiveAvgPool2d } from './adaptive-avg-pool2d.js';
export { add } from './add.js';
export { scaledDotProductAttention } from './attention.js';
export { avgPool2d } from './avg-pool2d.js';
export { batchNorm, type BatchNormTrainingResult } from './batch-norm.js';
export { broadcastTo } from './broadcast-to.js';
export { cast } from './cast.js';
export { concat } from './concat.js';
export { conv2d } from './conv2d.js';
export { conv2dBackpropFilter } from './conv2d-backprop-filter.js';
export { conv2dBackpropInput } from './conv2d-backprop-input.js';
export type { Conv2dOptions } from './conv-geometry.js';
export { cos } from './cos.js';
export { crossEntropy, type Reduction } from './cross-entropy.js';
export { div } from './div.js';
export { equal } from './equal.js';
export { erf } from './erf.js';
export { exp } from './exp.js';
export { gather } from './gather.js';
export { gelu } from './gelu.js';
export { greater } from './greater.js';
export { groupNorm } from './group-norm.js';
export { layerNorm } from './layer-norm.js';
export { linear } from './linear.js';
export { log } from './log.js';
export { logSoftmax } from './log-softmax.js';
export { matmul } from './matmul.js';
export { max } from './max.js';
export { mean } from './mean.js';
export { mul } from './mul.js';
export { neg } from './neg.js';
export { oneHot } from './one-hot.js';
export { pad } from './pad.js';
export { pow } from './pow.js';
export {
  convWeightMatrix,
  dynamicQuantizationParameters,
  quantizedConv2d,
  quantizeWeightPerChannel,
  roundHalfEven,
  type DynamicQuantization,
  type QuantizedWeight,
} from './quantized-conv2d.js';
export { relu } from './relu.js';
export { reshape } from './reshape.js';
export { resizeBilinear } from './resize-bilinear.js';
export { scatterAdd } from './scatter-add.js';
export { separableMap } from './separable-map.js';
export { sigmoid } from './sigmoid.js';
export { silu } from './silu.js';
export { sin } from './sin.js';
export { sizeOf } from './size-of.js';
export { slice } from './slice.js';
export { softmax } from './softmax.js';
export { sqrt } from './sqrt.js';
export { stopGradient } from './stop-gradient.js';
export { sub } from './sub.js';
export { sum } from './sum.js';
export { tanh } from './tanh.js';
export { transpose, transposeLastTwo } from './transpose.js';
export { upsampleNearest2x } from './upsample-nearest2x.js';
