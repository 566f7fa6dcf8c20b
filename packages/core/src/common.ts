// Everything that is the same in the Node and browser entry points.
export * from './errors.js';
export { DATA_TYPES, bytesPerElement, dataFromBytes, isFloatDataType, type DataType, type DataTypeMap, type FloatDataType } from './tensor/dtype.js';
export { float16BitsToFloat32, float32ToFloat16Bits } from './tensor/float16.js';
export { HostTensor, contiguousStrides, shapeSize } from './tensor/host-tensor.js';
export { fromNdarray, toNdarray } from './tensor/ndarray.js';
export { readSafetensors, writeSafetensors, type SafetensorsFile } from './io/safetensors.js';
export { isStaticDim, type Dim } from './graph/dim.js';
export { attr, type OnnxAttribute } from './graph/attributes.js';
export { Graph, GraphNode, SymbolicTensor, type TensorInfo, type TensorSource } from './graph/graph.js';
export { defineOp, type GradientContext, type LoweringContext, type Op, type OpDefinition, type TensorLike } from './graph/op.js';
export * from './ops/index.js';
export { gradients } from './autodiff/gradients.js';
export { evaluateReference, type ReferenceOptions } from './reference/evaluate.js';
export {
  compileModel,
  validateFeeds,
  OnnxModel,
  OPSET_VERSION,
  type CompileOptions,
  type SerializeOptions,
  type SerializedModel,
  type ValueDescription,
} from './onnx/model.js';
export { formatPlacement, ortProviderName, placementFromProfile, type PlacedNode, type PlacementReport } from './runtime/placement.js';
export {
  Runner,
  fromOrtTensor,
  toOrtTensor,
  type ExecutionProvider,
  type ModelSource,
  type OrtBinding,
  type OrtSession,
  type OrtTensor,
  type OrtTensorConstructor,
  type RunnerOptions,
} from './runtime/runner.js';
export {
  adapterSummary,
  describeAdapter,
  type GpuAdapterInfoLike,
  type GpuAdapterLike,
  type WebGpuAdapterFound,
  type WebGpuAdapterInfo,
  type WebGpuAdapterMissing,
  type WebGpuAdapterReport,
} from './runtime/webgpu-adapter.js';
export { sgd, adamw, type Optimizer, type OptimizerUpdateInput, type SgdOptions, type AdamWOptions } from './train/optimizers.js';
export {
  TrainStep,
  type TrainStateRole,
  type TrainStepOptions,
  type TrainStepResult,
} from './train/train-step.js';
export { fmix32, RandomGenerator, xoshiro128 } from './random/generator.js';
export * from './nn/index.js';
