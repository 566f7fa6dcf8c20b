/**
 * Shared test helpers of the DiffSSL workspace. Private: never published.
 *
 * @packageDocumentation
 */
export {
  ASSETS,
  EMBEDDED_DATA,
  EMBEDDED_MODEL,
  FIXTURES,
  embeddedFlags,
  fixturePath,
  loadFeatures,
  loadTensorFixture,
  type FeatureFixture,
  type TensorFixture,
} from './assets.js';
export { expectClose, randomTensor, relativeError, runOnnx, scaledMaxError, seededRandom } from './tensors.js';
export {
  adaptiveAvgPool64,
  batchNorm64,
  conv1x1_64,
  difFormer64,
  erf64,
  fromTensor64,
  gelu64,
  layerNorm64,
  linear64,
  relu64,
  toTensor64,
  transformerBlock64,
  type BatchNorm64Result,
  type DifFormer64Options,
  type DifFormer64Result,
  type Tensor64,
} from './float64-reference.js';
export { matmulRate, secondsPerRun, vitForwardFlops } from './bench.js';
export {
  expectFirstStepRunningStatistics,
  expectMatchesReferenceStep,
  referenceStep,
  runHeadStep,
  type HeadStepResult,
  type ReferenceStep,
} from './head-step.js';
export { statePickle, storedZip, storedZipChunks, writeStateDict, writeTorchZip, type TensorRecord } from './torch-zip-writer.js';
export { FakeTensor, fakeOrt, type FakeOrt, type FakeSessionOptions } from './fake-ort.js';
export { webGpuUnavailable } from './webgpu.js';
