/**
 * Shared test helpers of the DiffSSL workspace. Private: never published.
 *
 * @packageDocumentation
 */
export { ASSETS, EMBEDDED_DATA, EMBEDDED_MODEL, FIXTURES, embeddedFlags, fixturePath, loadFeatures, loadTensorFixture, type FeatureFixture, type TensorFixture } from './assets.js';
export { expectClose, randomTensor, relativeError, runOnnx, seededRandom } from './tensors.js';
export { matmulRate, secondsPerRun, vitForwardFlops } from './bench.js';
export { expectMatchesReferenceStep, referenceStep, runHeadStep, type HeadStepResult, type ReferenceStep } from './head-step.js';
export { adaptiveAvgPool2dFloat64, batchNormTrainFloat64, type BatchNormState, type Float64Map } from './batch-norm-reference.js';
export { statePickle, storedZip, storedZipChunks, writeStateDict, writeTorchZip, type TensorRecord } from './torch-zip-writer.js';
